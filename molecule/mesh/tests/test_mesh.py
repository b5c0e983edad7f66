"""A full mesh built by site.yml: every pair of hosts linked, each link's two ends agree, pings pass.

The first verify sees the four-host mesh; after the side effect (node5 joins), the second sees
five hosts and checks that the links of the four kept the addresses they had.

The underlay of node4 and node5 (mesh-b, behind the router) has MTU 1400, the others' 1500: every
tunnel's MTU is the smaller underlay MTU of its ends less GRE's 24 bytes, and a full-size packet
with DF set passes through every tunnel both ways.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
from pathlib import Path

import pytest
from conftest import ping

GRE_OVERHEAD = 24  # an outer IPv4 header and a GRE header without key: what the planner subtracts for mode gre

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


@pytest.fixture(scope="module")
def mtus(lab_host):
    """A host's interface MTUs by name, as its kernel has them, and the name of its default route's interface."""
    seen = {}

    def get(name):
        if name not in seen:
            links, routes = (
                lab_host(name).check_output("ip -json link show; echo; ip -json route show default").split("\n", 1)
            )
            (default,) = json.loads(routes)
            seen[name] = ({link["ifname"]: link["mtu"] for link in json.loads(links)}, default["dev"])
        return seen[name]

    return get


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_tunnel_mtu_is_the_smaller_underlay_mtu_less_the_gre_overhead(gre_links, mtus, hostvars, a, b):
    (links_a, underlay_a), (links_b, underlay_b) = mtus(a), mtus(b)
    # The underlay is what the topology says (mesh-b 1400, mesh-a 1500), from the kernel itself.
    assert links_a[underlay_a] == hostvars(a)["lab_underlay"][0]["mtu"]
    assert links_b[underlay_b] == hostvars(b)["lab_underlay"][0]["mtu"]
    expected = min(links_a[underlay_a], links_b[underlay_b]) - GRE_OVERHEAD
    assert (links_a[f"gre-{b}"], links_b[f"gre-{a}"]) == (expected, expected)
    # Any link with an end on mesh-b: 1400 - 24, crossing the router or not; the others 1500 - 24, the kernel's.
    assert expected == (1376 if {a, b} & {"node4", "node5"} else 1476)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_full_size_ping_with_df_passes_both_ways(gre_links, mtus, lab_host, a, b):
    """The largest packet each tunnel takes, DF set: it must pass whole (a tunnel MTU too large would lose it)."""
    for source, peer in ((a, b), (b, a)):
        interface = f"gre-{peer}"
        size = mtus(source)[0][interface] - 28  # the ICMP payload: the MTU less 20 (IPv4) and 8 (ICMP) bytes
        (address,) = gre_links(peer)[f"gre-{source}"]["addresses"]
        ping(lab_host(source), f"-M do -s {size} -c 2 -W 2 -I {interface} {address.split('/')[0]}")


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
