"""The seed's test and the seed's own debug command, on the lab's real kernels."""

from __future__ import annotations

import json

import pytest
from conftest import ping

SEED = {"hosta": "10.0.0.1", "hostb": "10.0.0.2"}


@pytest.mark.parametrize(("source", "target"), [("hosta", "hostb"), ("hostb", "hosta")])
def test_ping_through_the_tunnel(lab_host, source, target):
    ping(lab_host(source), f"-c 3 -i 0.2 -W 2 {SEED[target]}")


@pytest.mark.parametrize("name", sorted(SEED))
def test_interface_is_the_seeds(lab_host, hostvars, name):
    peer = "hostb" if name == "hosta" else "hosta"
    link = json.loads(lab_host(name).check_output("ip -details -json addr show dev gre1"))[0]
    info = link["linkinfo"]["info_data"]
    assert link["linkinfo"]["info_kind"] == "gre"
    assert info["local"] == hostvars(name)["lab_address"]
    assert info["remote"] == hostvars(peer)["lab_address"]
    assert info["ttl"] == 255
    assert "UP" in link["flags"]
    inet = [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet"]
    assert inet == [f"{SEED[name]}/30"]


def test_gre_packets_on_hostb_underlay(lab_host, hostvars, gre_capture):
    """The seed's debug step: tcpdump -i eth0 proto 47 on HostB sees HostA's GRE packets."""
    source = hostvars("hosta")["lab_address"]
    nic = hostvars("hostb")["lab_underlay"][0]["device"]

    def ping() -> None:
        assert lab_host("hosta").run(f"ping -c 3 -i 0.2 -W 2 {SEED['hostb']}").rc == 0

    capture = gre_capture("hostb", nic, source, ping)
    requests = [line for line in capture.splitlines() if f"IP {source} > " in line and "GREv0" in line]
    assert any(f"IP {SEED['hosta']} > {SEED['hostb']}: ICMP echo request" in line for line in requests), capture
