# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The networks behind the tunnels (gre_mesh_networks, issue 16): routes, forwarding, and the inputs refused."""

from __future__ import annotations

import ipaddress
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh, plan_host

from .inventories import PAIR, plain, plan, problem

# A hub (id 0) and three spokes, each spoke with a network behind it.
HUB_SPOKE = {
    "hub": plain("203.0.113.1") | {"gre_mesh_id": 0},
    "site1": plain("198.51.100.1") | {"gre_mesh_networks": ["192.168.1.0/24"]},
    "site2": plain("198.51.100.2") | {"gre_mesh_networks": ["192.168.2.0/24", "10.200.0.2/32"]},
    "site3": plain("198.51.100.3"),
}
HUB_GROUPS = {"hubs": ["hub"], "spokes": ["site1", "site2", "site3"]}
HUB_SETTINGS: dict[str, t.Any] = {"hub_spoke": [{"hubs": "hubs", "spokes": "spokes"}]}


def routes(result: dict, name: str) -> list[tuple[str, str, str]]:
    """A host's routes, each with its tunnel, in the order of their prefixes (IPv4 first)."""
    found = [
        (route["prefix"], tunnel["name"], route["via"])
        for tunnel in result["hosts"][name]["tunnels"]
        for route in tunnel["routes"]
    ]
    return sorted(found, key=lambda route: prefix_order(route[0]))


def prefix_order(prefix: str) -> tuple[int, int, int]:
    network = ipaddress.ip_network(prefix)
    return (network.version, int(network.network_address), network.prefixlen)


def test_a_spoke_reaches_another_spokes_network_through_the_hub() -> None:
    result = plan(HUB_SPOKE, HUB_GROUPS, **HUB_SETTINGS)
    assert routes(result, "site1") == [
        ("10.200.0.2/32", "gre-hub", "10.0.0.1"),
        ("192.168.2.0/24", "gre-hub", "10.0.0.1"),
    ]
    assert routes(result, "hub") == [
        ("10.200.0.2/32", "gre-site2", "10.0.0.6"),
        ("192.168.1.0/24", "gre-site1", "10.0.0.2"),
        ("192.168.2.0/24", "gre-site2", "10.0.0.6"),
    ]
    assert routes(result, "site3")[0] == ("10.200.0.2/32", "gre-hub", "10.0.0.13")
    # The hub forwards between its tunnels; the sites forward to the networks behind them; site3 to nothing.
    assert {name: result["hosts"][name]["forward"] for name in HUB_SPOKE} == {
        "hub": [4],
        "site1": [4],
        "site2": [4],
        "site3": [],
    }


def test_a_direct_link_wins_over_the_path_through_the_hub() -> None:
    result = plan(HUB_SPOKE, HUB_GROUPS, **HUB_SETTINGS, links=[["site1", "site2"]])
    assert {interface for _prefix, interface, _via in routes(result, "site1")} == {"gre-site2"}
    assert {interface for _prefix, interface, _via in routes(result, "site3")} == {"gre-hub"}


def test_equal_paths_go_through_the_next_hop_with_the_lowest_id() -> None:
    hostvars = {
        "node1": plain("198.51.100.1"),
        "node2": plain("198.51.100.2"),
        "node3": plain("198.51.100.3"),
        "node4": plain("198.51.100.4") | {"gre_mesh_networks": ["192.168.4.0/24"]},
    }
    links = [["node1", "node3"], ["node1", "node2"], ["node3", "node4"], ["node2", "node4"]]
    result = plan(hostvars, links=links)
    assert routes(result, "node1") == [("192.168.4.0/24", "gre-node2", "10.0.0.10")]
    assert result["hosts"]["node2"]["forward"] == [4]
    assert result["hosts"]["node3"]["forward"] == []


def test_ipv6_networks_travel_over_links_with_ipv6_inside() -> None:
    hostvars = {"hosta": plain("203.0.113.1"), "hostb": plain("198.51.100.1") | {"gre_mesh_networks": ["fd10::/64"]}}
    result = plan(hostvars, links=[["hosta", "hostb"]], pool6="fd00::/64")
    assert routes(result, "hosta") == [("fd10::/64", "gre-hostb", "fd00::1")]
    assert result["hosts"]["hostb"]["forward"] == [6]


def test_an_external_peer_gets_its_routes_and_forwarding_among_its_commands() -> None:
    hostvars = {"hosta": plain("203.0.113.1") | {"gre_mesh_networks": ["192.168.1.0/24"]}}
    external = [{"name": "dc", "address": "198.51.100.250", "id": 9, "networks": ["172.20.0.0/16"]}]
    result = plan(hostvars, links=[["hosta", "dc"]], external_peers=external)
    peer = result["external_peers"]["dc"]
    assert [tunnel["routes"] for tunnel in peer["tunnels"]] == [[{"prefix": "192.168.1.0/24", "via": "10.0.0.145"}]]
    assert peer["forward"] == [4]
    assert peer["commands"][-2:] == [
        "ip route replace 192.168.1.0/24 via 10.0.0.145 dev gre-hosta",
        "sysctl -w net.ipv4.ip_forward=1",
    ]
    assert routes(result, "hosta") == [("172.20.0.0/16", "gre-dc", "10.0.0.146")]


def test_one_host_at_a_time_gets_the_routes_of_the_whole_plan() -> None:
    groups = {"all": sorted(HUB_SPOKE), **HUB_GROUPS}
    check = check_mesh(HUB_SPOKE, groups, plans=False, **HUB_SETTINGS)
    whole = plan(HUB_SPOKE, HUB_GROUPS, **HUB_SETTINGS)
    for name in HUB_SPOKE:
        assert plan_host(HUB_SPOKE, groups, name, check, **HUB_SETTINGS) == whole["hosts"][name]


@pytest.mark.parametrize(
    ("networks", "expected"),
    [
        pytest.param(
            ["192.168.1.5"],
            "host hostb: gre_mesh_networks: '192.168.1.5' is an address where a network is meant; write "
            "192.168.1.5/32 for this one address, or the network it belongs to (such as 192.168.10.0/24)",
            id="address",
        ),
        pytest.param(
            ["192.168.1.5/24"],
            "host hostb: gre_mesh_networks: '192.168.1.5/24' has host bits set; the network is 192.168.1.0/24",
            id="host bits",
        ),
        pytest.param(
            ["lan"],
            "host hostb: gre_mesh_networks: 'lan' is not a network; write it as address/length, such as 192.168.10.0/24",
            id="name",
        ),
        pytest.param(
            "192.168.1.0/24",
            "host hostb: gre_mesh_networks: must be a list of networks such as 192.168.10.0/24, not '192.168.1.0/24'",
            id="not a list",
        ),
        pytest.param(
            ["10.0.128.0/24"],
            "host hostb: gre_mesh_networks: 10.0.128.0/24 overlaps the tunnel pool gre_mesh_pool (10.0.0.0/16); the "
            "tunnels' inner addresses and the networks behind them must not overlap, remove 10.0.128.0/24 or choose "
            "another pool",
            id="pool",
        ),
        pytest.param(
            ["203.0.113.0/24"],
            "host hostb: gre_mesh_networks: 203.0.113.0/24 contains 203.0.113.1, the public address of host hosta "
            "(ansible_host); a route to it through a tunnel would carry the tunnel's own packets (recursive routing); "
            "remove it or list a smaller network",
            id="underlay",
        ),
        pytest.param(
            ["fd10::/64"],
            "host hostb: gre_mesh_networks: lists IPv6 networks, but none of its links has IPv6 addresses inside to "
            "carry them; set gre_mesh_pool6 (or subnet6 on its links), or remove them",
            id="family",
        ),
        pytest.param(
            ["192.168.0.0/16", "192.168.1.0/24"],
            "host hostb: gre_mesh_networks: 192.168.1.0/24 is inside 192.168.0.0/16, which it lists too; list only "
            "the larger one",
            id="nested",
        ),
    ],
)
def test_bad_networks_are_refused_naming_host_and_variable(networks: t.Any, expected: str) -> None:
    hostvars = {**PAIR, "hostb": PAIR["hostb"] | {"gre_mesh_networks": networks}}
    assert problem(hostvars, links=[["hosta", "hostb"]]) == expected


def test_two_hosts_claiming_overlapping_networks_are_refused() -> None:
    hostvars = {
        "hosta": PAIR["hosta"] | {"gre_mesh_networks": ["192.168.0.0/16"]},
        "hostb": PAIR["hostb"] | {"gre_mesh_networks": ["192.168.1.0/24"]},
    }
    assert problem(hostvars, links=[["hosta", "hostb"]]) == (
        "host hosta (gre_mesh_networks: 192.168.0.0/16) and host hostb (gre_mesh_networks: 192.168.1.0/24) claim "
        "overlapping networks; a network is behind one node, remove it from one of them"
    )
