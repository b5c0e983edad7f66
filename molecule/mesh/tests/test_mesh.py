"""A full mesh built by site.yml: every pair of hosts linked, each link's two ends agree, pings pass.

The first verify sees the four-host mesh; after the side effect (node5 joins), the second sees
five hosts and checks that the links of the four kept the addresses they had.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
from pathlib import Path

import pytest

BEFORE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "mesh4-addresses.json"
GROWN = BEFORE.exists()
MESH = ["node1", "node2", "node3", "node4"] + (["node5"] if GROWN else [])
PAIRS = list(itertools.combinations(MESH, 2))


@pytest.mark.parametrize("name", MESH)
def test_tunnels_are_exactly_the_peers(gre_links, name):
    links = gre_links(name)
    assert sorted(links) == sorted(f"gre-{peer}" for peer in MESH if peer != name)
    assert all(link["up"] and link["ttl"] == 255 for link in links.values()), links


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_both_ends_agree(gre_links, hostvars, a, b):
    at_a, at_b = gre_links(a)[f"gre-{b}"], gre_links(b)[f"gre-{a}"]
    assert (at_a["local"], at_a["remote"]) == (hostvars(a)["lab_address"], hostvars(b)["lab_public_address"])
    assert (at_b["local"], at_b["remote"]) == (hostvars(b)["lab_address"], hostvars(a)["lab_public_address"])
    (address_a,), (address_b,) = at_a["addresses"], at_b["addresses"]
    interface_a, interface_b = ipaddress.ip_interface(address_a), ipaddress.ip_interface(address_b)
    assert interface_a.network == interface_b.network and interface_a.network.prefixlen == 30
    assert interface_a.ip != interface_b.ip
    assert interface_a.network.subnet_of(ipaddress.ip_network("10.0.0.0/16"))


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_ping_both_ways(gre_links, ping_through, a, b):
    (address_a,), (address_b,) = gre_links(a)[f"gre-{b}"]["addresses"], gre_links(b)[f"gre-{a}"]["addresses"]
    ping_through(a, f"gre-{b}", address_b.split("/")[0])
    ping_through(b, f"gre-{a}", address_a.split("/")[0])


def test_no_two_links_share_a_subnet(gre_links):
    subnets = [ipaddress.ip_interface(gre_links(a)[f"gre-{b}"]["addresses"][0]).network for a, b in PAIRS]
    assert len(set(subnets)) == len(PAIRS)


@pytest.mark.skipif(not GROWN, reason="checked after node5 joined (side effect)")
@pytest.mark.parametrize("name", MESH[:4])
def test_links_kept_their_addresses_when_node5_joined(gre_links, name):
    before = {
        link["ifname"]: sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["scope"] == "global")
        for link in json.loads(BEFORE.read_text())[name]
        if link["ifname"].startswith("gre-")
    }
    assert sorted(before) == sorted(f"gre-{peer}" for peer in MESH[:4] if peer != name)
    now = gre_links(name)
    assert {interface: sorted(now[interface]["addresses"]) for interface in before} == before
