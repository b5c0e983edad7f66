"""Through 1:1 NAT: local is the private address, remote the peer's public one, and pings pass."""

from __future__ import annotations

import pytest

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

    def ping() -> None:
        assert lab_host("hosta").run(f"ping -c 3 -i 0.2 -W 2 -I gre-hostb {address.split('/')[0]}").rc == 0

    capture = gre_capture("hostb", nic, public, ping)
    assert any(f"IP {public} > {hostvars('hostb')['lab_address']}: GREv0" in line for line in capture.splitlines()), (
        capture
    )
