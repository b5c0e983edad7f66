"""What the integration playbook leaves behind: the module's gre1 on each GRE host, marked as its
own, carrying traffic; nothing else of the module's left over from purge."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://gre_hosts"]


def test_gre1_is_marked_as_managed(host):
    link = json.loads(host.check_output("ip -details -json link show dev gre1"))[0]
    assert link.get("ifalias") == "managed-by: linuxnet.gre"
    assert link["linkinfo"]["info_kind"] == "gre"


def test_gre1_carries_traffic(host):
    address = json.loads(host.check_output("ip -json -4 addr show dev gre1"))[0]["addr_info"][0]
    local = address["local"]
    peer = local[: local.rfind(".") + 1] + ("2" if local.endswith(".1") else "1")
    ping = host.run(f"ping -I gre1 -c 3 -i 0.2 -W 2 {peer}")
    assert ping.rc == 0, ping.stdout


def test_only_listed_tunnels_remain_managed(host):
    links = json.loads(host.check_output("ip -details -json link show type gre"))
    managed = sorted(link["ifname"] for link in links if link.get("ifalias") == "managed-by: linuxnet.gre")
    assert managed == ["gre1"]
