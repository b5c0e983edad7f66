"""The lab's substrate, checked on every real guest."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://all"]


def test_guest_booted(host):
    state = host.run("systemctl is-system-running --wait")
    assert state.stdout.strip() == "running", host.run("systemctl --failed --no-legend").stdout


def test_kernel_has_gre(host):
    assert host.run("modprobe ip_gre").rc == 0
    assert host.file("/sys/module/ip_gre").is_directory


def test_tools_present(host):
    for tool in ("tcpdump", "ip", "ping", "nft", "iptables", "python3"):
        assert host.exists(tool), tool


def test_underlay_addresses_configured(host):
    for nic in host.ansible.get_variables()["lab_underlay"]:
        link = json.loads(host.check_output(f"ip -json addr show dev {nic['device']}"))[0]
        configured = {f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]}
        assert nic["address"] in configured
        assert "UP" in link["flags"]
