"""Three containers meshed by site.yml: each is a container, every tunnel pings both ways, and the
underlay (the container network) carries GRE (IP protocol 47) between the containers' addresses."""

from __future__ import annotations

import itertools
import json

import pytest

MESH = ["ct1", "ct2", "ct3"]
PAIRS = list(itertools.combinations(MESH, 2))


def underlay_device(lab_host, hostvars, name):
    """The container's NIC on the container network: the one holding its gre_mesh_local address."""
    local = hostvars(name)["gre_mesh_local"]
    for link in json.loads(lab_host(name).check_output("ip -4 -json address show")):
        if any(a["local"] == local for a in link["addr_info"]):
            return link["ifname"]
    raise AssertionError(f"{name}: no NIC holds {local}")


@pytest.mark.parametrize("name", MESH)
def test_is_a_container_with_a_network_namespace_of_its_own(lab_host, hostvars, name):
    host = lab_host(name)
    assert host.file("/run/.containerenv").exists or host.file("/.dockerenv").exists
    # Its own namespace: its underlay address is on one of its own NICs, and no peer's is.
    addresses = host.check_output("ip -4 -brief address show")
    assert hostvars(name)["gre_mesh_local"] in addresses
    assert not any(hostvars(peer)["gre_mesh_local"] + "/" in addresses for peer in MESH if peer != name)


@pytest.mark.parametrize("name", MESH)
def test_tunnels_are_exactly_the_peers(gre_links, hostvars, name):
    links = gre_links(name)
    assert sorted(links) == sorted(f"gre-{peer}" for peer in MESH if peer != name)
    for peer in MESH:
        if peer != name:
            link = links[f"gre-{peer}"]
            assert link["up"], link
            assert (link["local"], link["remote"]) == (
                hostvars(name)["gre_mesh_local"],
                hostvars(peer)["gre_mesh_public"],
            )


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_ping_through_every_tunnel_both_ways(gre_links, ping_through, a, b):
    (address_a,), (address_b,) = gre_links(a)[f"gre-{b}"]["addresses"], gre_links(b)[f"gre-{a}"]["addresses"]
    ping_through(a, f"gre-{b}", address_b.split("/")[0])
    ping_through(b, f"gre-{a}", address_a.split("/")[0])


# Each container receives from one peer (a ring): every container's NIC and every address is seen.
@pytest.mark.parametrize(("sender", "receiver"), [("ct1", "ct2"), ("ct2", "ct3"), ("ct3", "ct1")])
def test_underlay_carries_gre_from_the_peer(lab_host, hostvars, gre_links, gre_capture, sender, receiver):
    """tcpdump proto 47 on the receiver's container NIC sees the sender's tunnel packets, from its address."""
    source, destination = hostvars(sender)["gre_mesh_local"], hostvars(receiver)["gre_mesh_local"]
    (address,) = gre_links(receiver)[f"gre-{sender}"]["addresses"]

    def ping() -> None:
        result = lab_host(sender).run(f"ping -c 3 -i 0.2 -W 2 -I gre-{receiver} {address.split('/')[0]}")
        assert result.rc == 0, result.stdout + result.stderr

    capture = gre_capture(receiver, underlay_device(lab_host, hostvars, receiver), source, ping)
    assert any(f"IP {source} > {destination}: GREv0" in line for line in capture.splitlines()), capture
