"""Through 1:1 NAT: local is the private address, remote the peer's public one, and pings pass."""

from __future__ import annotations

import pytest
from conftest import ping

PEER = {"hosta": "hostb", "hostb": "hosta"}


@pytest.mark.parametrize("name", sorted(PEER))
def test_local_is_private_and_remote_is_the_peers_public(gre_links, hostvars, name):
    peer = PEER[name]
    link = gre_links(name)[f"gre-{peer}"]
    assert hostvars(name)["lab_address"] != hostvars(name)["lab_public_address"]
    assert link["local"] == hostvars(name)["lab_address"]
    assert link["remote"] == hostvars(peer)["lab_public_address"]


@pytest.mark.parametrize("name", sorted(PEER))
def test_ping_through_the_nat(gre_links, ping_through, name):
    peer = PEER[name]
    (address,) = gre_links(peer)[f"gre-{name}"]["addresses"]
    ping_through(name, f"gre-{peer}", address.split("/")[0])


def test_hostb_sees_gre_from_hostas_public_address(lab_host, hostvars, gre_links, gre_capture):
    """tcpdump proto 47 on HostB: the packets arrive from HostA's public address, not its private one."""
    public = hostvars("hosta")["lab_public_address"]
    nic = hostvars("hostb")["lab_underlay"][0]["device"]
    (address,) = gre_links("hostb")["gre-hosta"]["addresses"]

    def through() -> None:
        ping(lab_host("hosta"), f"-c 3 -i 0.2 -W 2 -I gre-hostb {address.split('/')[0]}")

    capture = gre_capture("hostb", nic, public, through)
    assert any(f"IP {public} > {hostvars('hostb')['lab_address']}: GREv0" in line for line in capture.splitlines()), (
        capture
    )


LAN = {"hosta": "198.51.100.65", "hostb": "198.51.100.97"}


@pytest.mark.parametrize("name", sorted(PEER))
def test_the_peers_network_is_routed_through_the_tunnel(lab_host, name):
    """The route gre_tunnel made (proto 250) to the network behind the peer, over the tunnel to it."""
    peer = PEER[name]
    route = lab_host(name).check_output(f"ip route get {LAN[peer]} from {LAN[name]}")
    assert f"dev gre-{peer}" in route, route


@pytest.mark.parametrize("name", sorted(PEER))
def test_network_to_network_through_both_nats(lab_host, hostvars, gre_capture, name):
    """Sourced from the host's network address to the peer's: the replies come back, inside GRE from the host's
    public address; on the sender's underlay no packet carries either network address in its outer header."""
    peer = PEER[name]
    nic = hostvars(peer)["lab_underlay"][0]["device"]
    public = hostvars(name)["lab_public_address"]
    sender = lab_host(name)
    captured = {}

    def network_to_network() -> None:
        ping(sender, f"-c 3 -i 0.2 -W 2 -I {LAN[name]} {LAN[peer]}")

    def gre_at_the_peer() -> None:
        captured["gre"] = gre_capture(peer, nic, public, network_to_network)

    plain = gre_capture(
        name,
        hostvars(name)["lab_underlay"][0]["device"],
        None,
        gre_at_the_peer,
        expression=f"host {LAN[name]} or host {LAN[peer]}",
    )
    assert f"IP {public} > {hostvars(peer)['lab_address']}: GREv0" in captured["gre"], captured["gre"]
    assert "listening on" in plain and "\n0 packets captured" in plain, plain
