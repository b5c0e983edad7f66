# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The networks behind the tunnels (gre_mesh_networks, issue 16): routes, forwarding, and the inputs refused."""

from __future__ import annotations

import ipaddress
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import build, check_mesh, plan_host

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


def test_the_role_gets_the_routed_tunnels_and_their_networks_from_the_plan() -> None:
    hosts = plan(HUB_SPOKE, HUB_GROUPS, **HUB_SETTINGS)["hosts"]
    # The hub forwards: each of its tunnels carries routed traffic, with routes or not.
    assert hosts["hub"]["routed"] == ["gre-site1", "gre-site2", "gre-site3"]
    assert hosts["hub"]["routed_networks"] == [
        {"interface": "gre-site1", "networks": ["192.168.1.0/24"]},
        {"interface": "gre-site2", "networks": ["10.200.0.2/32", "192.168.2.0/24"]},
    ]
    # site3 forwards nothing; its tunnel has routes to the other sites' networks.
    assert hosts["site3"]["forward"] == []
    assert hosts["site3"]["routed"] == ["gre-hub"]
    assert [entry["interface"] for entry in hosts["site3"]["routed_networks"]] == ["gre-hub"]
    assert sorted(hosts["site3"]["routed_networks"][0]["networks"]) == [
        "10.200.0.2/32",
        "192.168.1.0/24",
        "192.168.2.0/24",
    ]
    assert hosts["hub"]["gre_peers"] == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]


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


def assert_each_host_alone_is_planned_as_in_the_whole(hosts: dict[str, t.Any], settings: dict[str, t.Any]) -> None:
    groups = {"all": sorted(hosts), **HUB_GROUPS}
    check = check_mesh(hosts, groups, plans=False, **settings)
    whole = plan(hosts, HUB_GROUPS, **settings)
    for name in hosts:
        assert plan_host(hosts, groups, name, check, **settings) == whole["hosts"][name]


def test_one_host_at_a_time_gets_the_routes_of_the_whole_plan() -> None:
    assert_each_host_alone_is_planned_as_in_the_whole(HUB_SPOKE, HUB_SETTINGS)


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


def tunnel_routes(result: dict, name: str) -> dict[str, list[dict[str, t.Any]]]:
    """A host's routes as gre_tunnel takes them, by tunnel."""
    return {tunnel["name"]: tunnel["routes"] for tunnel in result["hosts"][name]["tunnels"]}


# Two paths from node1 to node4's network besides the direct link: through node2 and through node3.
SQUARE = {
    "node1": plain("198.51.100.1"),
    "node2": plain("198.51.100.2"),
    "node3": plain("198.51.100.3"),
    "node4": plain("198.51.100.4") | {"gre_mesh_networks": ["192.168.4.0/24"]},
}


def square(direct: int, through2: int | None = None, through3: int | None = None) -> list[t.Any]:
    """The square's links, with metrics on node1's: to node4 (direct), to node2, to node3 (None: no metric)."""
    return [
        {"hosts": ["node1", "node4"], "metric": direct},
        {"hosts": ["node1", "node2"], "metric": through2} if through2 else ["node1", "node2"],
        ["node2", "node4"],
        {"hosts": ["node1", "node3"], "metric": through3} if through3 else ["node1", "node3"],
        ["node3", "node4"],
    ]


def test_the_path_of_lowest_total_metric_wins_and_its_routes_carry_the_first_links_metric() -> None:
    # Direct: 5; through node2: 3 + 1; through node3: 2 + 1.
    result = plan(SQUARE, links=square(5, through2=3, through3=2))
    assert tunnel_routes(result, "node1") == {
        "gre-node2": [],
        "gre-node3": [{"prefix": "192.168.4.0/24", "via": "10.0.0.18", "metric": 2}],
        "gre-node4": [],
    }
    # node3's own link to node4 has no metric: its route has none (the kernel's default).
    assert tunnel_routes(result, "node3")["gre-node4"] == [{"prefix": "192.168.4.0/24", "via": "10.0.0.38"}]
    assert {name: result["hosts"][name]["forward"] for name in SQUARE} == {
        "node1": [],
        "node2": [],
        "node3": [4],
        "node4": [4],
    }


def test_equal_metrics_go_over_fewer_links_then_through_the_next_hop_with_the_lowest_id() -> None:
    # Direct: 2; through node2 or node3: 1 + 1 each. Fewer links: the direct one.
    result = plan(SQUARE, links=square(2))
    assert routes(result, "node1") == [("192.168.4.0/24", "gre-node4", "10.0.0.30")]
    assert tunnel_routes(result, "node1")["gre-node4"] == [
        {"prefix": "192.168.4.0/24", "via": "10.0.0.30", "metric": 2}
    ]
    # Direct: 3; through node2 or node3: 2 links each at cost 2: node2, the lower id.
    assert routes(plan(SQUARE, links=square(3)), "node1") == [("192.168.4.0/24", "gre-node2", "10.0.0.10")]


def test_an_external_peers_route_command_carries_the_links_metric() -> None:
    hostvars = {"hosta": plain("203.0.113.1") | {"gre_mesh_networks": ["192.168.1.0/24"]}}
    external = [{"name": "dc", "address": "198.51.100.250", "id": 9}]
    result = plan(hostvars, links=[{"hosts": ["hosta", "dc"], "metric": 20}], external_peers=external)
    # dc forwards nothing: hosta's network is behind hosta, its next hop.
    assert result["external_peers"]["dc"]["commands"][-1] == (
        "ip route replace 192.168.1.0/24 via 10.0.0.145 dev gre-hosta metric 20"
    )


@pytest.mark.parametrize("metric", [0, -1, 2**32, "low", True])
def test_a_metric_outside_1_to_2_32_minus_1_is_refused(metric: t.Any) -> None:
    assert problem(PAIR, links=[{"hosts": ["hosta", "hostb"], "metric": metric}]) == (
        f"gre_mesh_links[0].metric: {metric!r} is not a number from 1 to 4294967295"
    )


# The hub and spoke with the summary 192.168.0.0/16 for the spokes.
SUMMARY_SETTINGS: dict[str, t.Any] = {
    "hub_spoke": [{"hubs": "hubs", "spokes": "spokes", "summary": ["192.168.0.0/16"]}]
}


def test_a_summary_replaces_a_spokes_routes_through_its_hub() -> None:
    result = plan(HUB_SPOKE, HUB_GROUPS, **SUMMARY_SETTINGS)
    # site1's own network is inside the summary too: its route on its LAN is more specific.
    assert routes(result, "site1") == [
        ("10.200.0.2/32", "gre-hub", "10.0.0.1"),
        ("192.168.0.0/16", "gre-hub", "10.0.0.1"),
    ]
    assert routes(result, "site3") == [
        ("10.200.0.2/32", "gre-hub", "10.0.0.13"),
        ("192.168.0.0/16", "gre-hub", "10.0.0.13"),
    ]
    # The hub keeps one route per network.
    assert routes(result, "hub") == routes(plan(HUB_SPOKE, HUB_GROUPS, **HUB_SETTINGS), "hub")
    assert result["hosts"]["hub"]["forward"] == [4]


def test_a_summary_leaves_the_routes_over_a_direct_link_which_are_more_specific() -> None:
    result = plan(HUB_SPOKE, HUB_GROUPS, **SUMMARY_SETTINGS, links=[["site1", "site2"]])
    assert routes(result, "site1") == [
        ("10.200.0.2/32", "gre-site2", "10.0.0.10"),
        ("192.168.0.0/16", "gre-hub", "10.0.0.1"),
        ("192.168.2.0/24", "gre-site2", "10.0.0.10"),
    ]


def test_a_spoke_takes_the_summary_through_its_hub_with_the_lowest_id() -> None:
    hostvars = {**HUB_SPOKE, "hub2": plain("203.0.113.2") | {"gre_mesh_id": 7}}
    groups = {**HUB_GROUPS, "hubs": ["hub2", "hub"]}
    result = plan(hostvars, groups, **SUMMARY_SETTINGS)
    assert {interface for _prefix, interface, _via in routes(result, "site3")} == {"gre-hub"}


def test_one_host_at_a_time_gets_the_summary_of_the_whole_plan() -> None:
    groups = {"all": sorted(HUB_SPOKE), **HUB_GROUPS}
    check = check_mesh(HUB_SPOKE, groups, plans=False, **SUMMARY_SETTINGS)
    whole = plan(HUB_SPOKE, HUB_GROUPS, **SUMMARY_SETTINGS)
    for name in HUB_SPOKE:
        assert plan_host(HUB_SPOKE, groups, name, check, **SUMMARY_SETTINGS) == whole["hosts"][name]


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        pytest.param(
            ["0.0.0.0/0"],
            "gre_mesh_hub_spoke[0].summary: 0.0.0.0/0 is a default route; through the hub it would take the spokes' "
            "underlay traffic too, the tunnels' own packets included (recursive routing); list the range that holds "
            "the sites' networks instead, such as 10.0.0.0/8",
            id="default route",
        ),
        pytest.param(
            ["192.0.0.0/2"],
            "gre_mesh_hub_spoke[0].summary: 192.0.0.0/2 contains 203.0.113.1, the public address of host hub "
            "(ansible_host); the spokes' route to it through the hub would carry the tunnel's own packets "
            "(recursive routing); list a range without underlay addresses",
            id="underlay",
        ),
        pytest.param(
            ["172.16.0.0/12"],
            "gre_mesh_hub_spoke[0].summary: 172.16.0.0/12 contains none of the networks behind the nodes "
            "(gre_mesh_networks, networks of external peers); list the range that holds the sites' networks, or "
            "remove it",
            id="empty",
        ),
        pytest.param(
            ["192.168.2.0/24"],
            "gre_mesh_hub_spoke[0].summary: 192.168.2.0/24 does not contain more than 192.168.2.0/24, a network of "
            "host site2 (gre_mesh_networks); a summary stands for several networks, list a larger one or none",
            id="a network",
        ),
        pytest.param(
            ["192.168.1.128/25"],
            "gre_mesh_hub_spoke[0].summary: 192.168.1.128/25 does not contain more than 192.168.1.0/24, a network of "
            "host site1 (gre_mesh_networks); a summary stands for several networks, list a larger one or none",
            id="inside a network",
        ),
        pytest.param(
            ["192.168.0.0/16", "192.168.0.0/17"],
            "gre_mesh_hub_spoke[0].summary: 192.168.0.0/17 overlaps 192.168.0.0/16, which it lists too; list only "
            "the larger one",
            id="nested",
        ),
        pytest.param(
            ["192.168.0.0/16", "fd10::/32"],
            "gre_mesh_hub_spoke[0].summary: fd10::/32 contains none of the networks behind the nodes "
            "(gre_mesh_networks, networks of external peers); list the range that holds the sites' networks, or "
            "remove it",
            id="other family, no network",
        ),
        pytest.param(
            ["192.168.1.5/16"],
            "gre_mesh_hub_spoke[0].summary: '192.168.1.5/16' has host bits set; the network is 192.168.0.0/16",
            id="host bits",
        ),
        pytest.param(
            "192.168.0.0/16",
            "gre_mesh_hub_spoke[0].summary: must be a list of networks such as 192.168.10.0/24, not '192.168.0.0/16'",
            id="not a list",
        ),
    ],
)
def test_bad_summaries_are_refused_naming_the_entry(summary: t.Any, expected: str) -> None:
    settings = {"hub_spoke": [{"hubs": "hubs", "spokes": "spokes", "summary": summary}]}
    assert problem(HUB_SPOKE, HUB_GROUPS, **settings) == expected


def test_an_ipv6_summary_needs_ipv6_inside_the_spokes_links_to_their_hub() -> None:
    hostvars = {**HUB_SPOKE, "site3": plain("198.51.100.3") | {"gre_mesh_networks": ["fd10:3::/64"]}}
    settings = {"hub_spoke": [{"hubs": "hubs", "spokes": "spokes", "summary": ["fd10::/16"]}]}
    # site3's network needs IPv6 inside: a link subnet6 on site3's link only.
    links = [{"hosts": ["hub", "site3"], "subnet6": "fd00:1::/64"}]
    assert problem(hostvars, HUB_GROUPS, **settings, links=links) == (
        "gre_mesh_hub_spoke[0].summary: fd10::/16 is IPv6, but no link of host site1 to a hub of that entry has IPv6 "
        "addresses inside; set gre_mesh_pool6 (or subnet6 on those links), or remove it\n"
        "gre_mesh_hub_spoke[0].summary: fd10::/16 is IPv6, but no link of host site2 to a hub of that entry has IPv6 "
        "addresses inside; set gre_mesh_pool6 (or subnet6 on those links), or remove it"
    )


def test_two_summaries_of_one_spoke_must_not_overlap() -> None:
    groups = {**HUB_GROUPS, "hubs2": ["hub2"]}
    hostvars = {**HUB_SPOKE, "hub2": plain("203.0.113.2") | {"gre_mesh_id": 7}}
    settings = {
        "hub_spoke": [
            {"hubs": "hubs", "spokes": "spokes", "summary": ["192.168.0.0/16"]},
            {"hubs": "hubs2", "spokes": "spokes", "summary": ["192.168.0.0/20"]},
        ]
    }
    assert problem(hostvars, groups, **settings).splitlines()[0] == (
        "host site1: gre_mesh_hub_spoke[0].summary (192.168.0.0/16) and gre_mesh_hub_spoke[1].summary "
        "(192.168.0.0/20) overlap; a spoke takes one summary per range, remove one"
    )


def test_a_network_overlapping_an_underlay_subnet_from_the_facts_is_refused() -> None:
    hostvars = {
        "hosta": {
            "ansible_host": "203.0.113.1",
            "ansible_facts": {"default_ipv4": {"address": "172.16.5.10", "prefix": "24", "netmask": "255.255.255.0"}},
        },
        "hostb": plain("198.51.100.1") | {"gre_mesh_networks": ["172.16.0.0/16"]},
    }
    assert problem(hostvars, links=[["hosta", "hostb"]]) == (
        "host hostb: gre_mesh_networks: 172.16.0.0/16 overlaps 172.16.5.0/24, the underlay subnet of host hosta "
        "(ansible_facts.default_ipv4); that host reaches those addresses over its underlay, not through a tunnel; "
        "remove it or list a network outside the underlay\n"
        "host hostb: gre_mesh_networks: 172.16.0.0/16 contains 172.16.5.10, the local address of host hosta "
        "(ansible_default_ipv4.address); a route to it through a tunnel would carry the tunnel's own packets "
        "(recursive routing); remove it or list a smaller network"
    )
    # Only the netmask (an older setup module): the same subnet.
    hostvars["hosta"]["ansible_facts"]["default_ipv4"].pop("prefix")
    hostvars["hostb"]["gre_mesh_networks"] = ["172.16.5.128/25"]
    assert problem(hostvars, links=[["hosta", "hostb"]]) == (
        "host hostb: gre_mesh_networks: 172.16.5.128/25 overlaps 172.16.5.0/24, the underlay subnet of host hosta "
        "(ansible_facts.default_ipv4); that host reaches those addresses over its underlay, not through a tunnel; "
        "remove it or list a network outside the underlay"
    )


def test_a_host_with_networks_but_no_link_is_refused() -> None:
    hostvars = {**PAIR, "hostc": plain("198.51.100.3") | {"gre_mesh_networks": ["192.168.3.0/24"]}}
    assert problem(hostvars, hosts=["hosta", "hostb", "hostc"], links=[["hosta", "hostb"]]) == (
        "host hostc: gre_mesh_networks: lists networks, but hostc has no tunnels (it is in no link of gre_mesh_links, "
        "gre_mesh_full_mesh or gre_mesh_hub_spoke), so no host would reach them; add it to the topology, or remove "
        "gre_mesh_networks"
    )
    # Without networks, a host of the play without links just has nothing to plan.
    hostvars["hostc"].pop("gre_mesh_networks")
    assert plan(hostvars, hosts=["hostc"], links=[["hosta", "hostb"]])["hosts"]["hostc"]["tunnels"] == []


def test_two_hosts_that_route_a_summary_through_each_other_are_refused() -> None:
    hostvars = {
        "hosta": plain("203.0.113.1") | {"gre_mesh_networks": ["192.168.1.0/24"]},
        "hostb": plain("198.51.100.1") | {"gre_mesh_networks": ["192.168.2.0/24"]},
        "hostc": plain("198.51.100.3") | {"gre_mesh_networks": ["192.168.3.0/24"]},
    }
    groups = {"a": ["hosta"], "b": ["hostb"], "c": ["hostc"]}
    settings = {
        "hub_spoke": [
            {"hubs": "a", "spokes": "b", "summary": ["192.168.0.0/16"]},
            {"hubs": "b", "spokes": "a", "summary": ["192.168.0.0/16"]},
            {"hubs": "a", "spokes": "c"},
        ]
    }
    assert problem(hostvars, groups, **settings) == (
        "hosts hosta and hostb: each routes a summary through the other (gre_mesh_hub_spoke[1].summary: "
        "192.168.0.0/16, gre_mesh_hub_spoke[0].summary: 192.168.0.0/16), so packets to an address of it that no site "
        "has would go back and forth; remove one"
    )


def test_the_check_hands_each_host_its_routes_with_their_metrics() -> None:
    groups = {"all": sorted(SQUARE)}
    links = square(5, through2=3, through3=2)
    check = check_mesh(SQUARE, groups, plans=False, links=links)
    assert check["routing"]["node1"] == [[], [["node3", "192.168.4.0/24", "10.0.0.18", 2]]]
    assert check["routing"]["node3"] == [[4], [["node4", "192.168.4.0/24", "10.0.0.38", None]]]
    assert plan_host(SQUARE, groups, "node1", check, links=links) == plan(SQUARE, links=links)["hosts"]["node1"]
    # A check from before metrics ([peer, prefix, via]): the routes, without a metric.
    check["routing"]["node1"] = [[], [["node3", "192.168.4.0/24", "10.0.0.18"]]]
    one = plan_host(SQUARE, groups, "node1", check, links=links)
    assert [tunnel["routes"] for tunnel in one["tunnels"]] == [
        [],
        [{"prefix": "192.168.4.0/24", "via": "10.0.0.18"}],
        [],
    ]


def test_a_summary_without_any_network_behind_the_nodes_is_refused() -> None:
    hostvars = {
        name: {k: v for k, v in variables.items() if k != "gre_mesh_networks"} for name, variables in HUB_SPOKE.items()
    }
    assert problem(hostvars, HUB_GROUPS, **SUMMARY_SETTINGS) == (
        "gre_mesh_hub_spoke[0].summary: 192.168.0.0/16 contains none of the networks behind the nodes "
        "(gre_mesh_networks, networks of external peers); list the range that holds the sites' networks, or remove it"
    )


# Per-link networks (`networks` on a gre_mesh_links entry): the hub and spoke, site3 with a network too,
# and site4 linked only to site2.
SITES = {
    **HUB_SPOKE,
    "site3": plain("198.51.100.3") | {"gre_mesh_networks": ["192.168.3.0/24"]},
    "site4": plain("198.51.100.4") | {"gre_mesh_networks": ["192.168.4.0/24"]},
}
# The direct link between site1 and site2, for their two LANs only; site4 hangs off site2.
BACKUP_LINKS: list[t.Any] = [
    {"hosts": ["site1", "site2"], "networks": ["192.168.1.0/24", "192.168.2.0/24"]},
    ["site2", "site4"],
]


def interfaces(result: dict, name: str) -> dict[str, str]:
    """A host's routes as prefix -> tunnel."""
    return {prefix: interface for prefix, interface, _via in routes(result, name)}


def test_a_link_with_networks_carries_only_those_and_the_others_go_around_it() -> None:
    result = plan(SITES, HUB_GROUPS, **HUB_SETTINGS, links=BACKUP_LINKS)
    # site1 reaches site2's LAN over the direct link; site2's /32, site3 and site4 (behind site2, two links
    # away over the direct link) through the hub.
    assert interfaces(result, "site1") == {
        "10.200.0.2/32": "gre-hub",
        "192.168.2.0/24": "gre-site2",
        "192.168.3.0/24": "gre-hub",
        "192.168.4.0/24": "gre-hub",
    }
    assert interfaces(result, "site2") == {
        "192.168.1.0/24": "gre-site1",
        "192.168.3.0/24": "gre-hub",
        "192.168.4.0/24": "gre-site4",
    }
    # Routes are by destination: site4 reaches site1's LAN through site2, then over the direct link.
    assert interfaces(result, "site4")["192.168.1.0/24"] == "gre-site2"
    # Without networks, site1 would reach site4 over the direct link.
    unrestricted = [["site1", "site2"], ["site2", "site4"]]
    assert interfaces(plan(SITES, HUB_GROUPS, **HUB_SETTINGS, links=unrestricted), "site1")["192.168.4.0/24"] == (
        "gre-site2"
    )


def test_a_link_for_a_larger_range_carries_every_network_inside_it() -> None:
    links = [{"hosts": ["site1", "site2"], "networks": ["192.168.0.0/16"]}]
    result = plan(SITES, HUB_GROUPS, **HUB_SETTINGS, links=links)
    assert interfaces(result, "site1") == {
        "10.200.0.2/32": "gre-hub",
        "192.168.2.0/24": "gre-site2",
        "192.168.3.0/24": "gre-hub",
    }


def test_hosts_without_another_path_get_no_route_to_a_network_their_link_may_not_carry() -> None:
    hostvars = {
        "hosta": plain("203.0.113.1") | {"gre_mesh_networks": ["192.168.1.0/24"]},
        "hostb": plain("198.51.100.1") | {"gre_mesh_networks": ["192.168.2.0/24", "192.168.22.0/24"]},
    }
    # A link dedicated to one network of hostb.
    links = [{"hosts": ["hosta", "hostb"], "networks": ["192.168.2.0/24"]}]
    result = plan(hostvars, links=links)
    assert routes(result, "hosta") == [("192.168.2.0/24", "gre-hostb", "10.0.0.2")]
    assert routes(result, "hostb") == []
    assert result["hosts"]["hosta"]["forward"] == []
    assert result["hosts"]["hostb"]["forward"] == [4]
    groups = {"all": sorted(hostvars)}
    mesh = build(hostvars, groups, None, {"links": links})
    assert [(str(network), owner, nodes) for network, owner, nodes in mesh.unrouted] == [
        ("192.168.1.0/24", "hosta", ["hostb"]),
        ("192.168.22.0/24", "hostb", ["hosta"]),
    ]
    assert build(hostvars, groups, None, {"links": [["hosta", "hostb"]]}).unrouted == []


def test_an_external_peers_link_with_networks_carries_only_those() -> None:
    hostvars = {
        "hosta": plain("203.0.113.1") | {"gre_mesh_networks": ["192.168.1.0/24"]},
        "hostb": plain("198.51.100.1") | {"gre_mesh_networks": ["192.168.2.0/24"]},
    }
    external = [{"name": "dc", "address": "198.51.100.250", "id": 9, "networks": ["172.20.0.0/16"]}]
    links = [["hosta", "hostb"], {"hosts": ["hosta", "dc"], "networks": ["192.168.1.0/24", "172.20.0.0/16"]}]
    result = plan(hostvars, links=links, external_peers=external)
    peer = result["external_peers"]["dc"]
    # dc reaches hosta's LAN, not hostb's (the link may not carry it); hostb reaches dc through hosta.
    assert [route["prefix"] for tunnel in peer["tunnels"] for route in tunnel["routes"]] == ["192.168.1.0/24"]
    assert [command for command in peer["commands"] if command.startswith("ip route")] == [
        "ip route replace 192.168.1.0/24 via 10.0.0.145 dev gre-hosta"
    ]
    assert interfaces(result, "hostb") == {"172.20.0.0/16": "gre-hosta", "192.168.1.0/24": "gre-hosta"}
    assert result["hosts"]["hosta"]["forward"] == [4]


def test_a_summary_takes_a_link_with_networks_only_when_they_hold_the_whole_summary() -> None:
    # The hub's link to site1 may carry all of 192.168.0.0/16: site1 takes the summary through it, and has no
    # route to site2's 10.200.0.2/32, outside it.
    holding = [{"hosts": ["hub", "site1"], "networks": ["192.168.0.0/16"]}]
    result = plan(SITES, HUB_GROUPS, **SUMMARY_SETTINGS, links=holding)
    assert interfaces(result, "site1") == {"192.168.0.0/16": "gre-hub"}
    assert interfaces(result, "site3") == {"10.200.0.2/32": "gre-hub", "192.168.0.0/16": "gre-hub"}
    # A link for some of the networks inside it: site1 keeps one route per network, for those.
    some = [{"hosts": ["hub", "site1"], "networks": ["192.168.2.0/24", "192.168.3.0/24"]}]
    result = plan(SITES, HUB_GROUPS, **SUMMARY_SETTINGS, links=some)
    assert interfaces(result, "site1") == {"192.168.2.0/24": "gre-hub", "192.168.3.0/24": "gre-hub"}
    # Nor does the hub reach site1's network: the link may not carry it.
    assert "192.168.1.0/24" not in interfaces(result, "hub")


def test_one_host_at_a_time_gets_the_routes_of_links_with_networks() -> None:
    assert_each_host_alone_is_planned_as_in_the_whole(SITES, {**SUMMARY_SETTINGS, "links": BACKUP_LINKS})


@pytest.mark.parametrize(
    ("networks", "expected"),
    [
        (
            "192.168.2.0/24",
            "gre_mesh_links[0].networks: must be a list of networks such as 192.168.10.0/24, not '192.168.2.0/24'",
        ),
        (
            ["lan2"],
            "gre_mesh_links[0].networks: 'lan2' is not a network; write it as address/length, such as 192.168.10.0/24",
        ),
        (
            ["192.168.2.1/24"],
            "gre_mesh_links[0].networks: '192.168.2.1/24' has host bits set; the network is 192.168.2.0/24",
        ),
        (
            ["192.168.2.1"],
            "gre_mesh_links[0].networks: '192.168.2.1' is an address where a network is meant; write 192.168.2.1/32 "
            "for this one address, or the network it belongs to (such as 192.168.10.0/24)",
        ),
        (
            [],
            "gre_mesh_links[0].networks: is empty, so the link would carry no network; remove the key to carry every "
            "network",
        ),
        (
            ["192.168.2.0/24", "192.168.2.0/24"],
            "gre_mesh_links[0].networks: 192.168.2.0/24 is listed twice; list it once",
        ),
        (
            ["192.168.2.0/24", "192.168.0.0/16"],
            "gre_mesh_links[0].networks: 192.168.2.0/24 is inside 192.168.0.0/16, which it lists too; list only the "
            "larger one",
        ),
        (
            ["192.168.9.0/24"],
            "gre_mesh_links[0].networks: 192.168.9.0/24 holds none of the networks behind the nodes: no host's "
            "gre_mesh_networks (nor an external peer's networks) lies inside it; correct it (a typo?) or remove it",
        ),
        (
            ["192.168.2.128/25"],
            "gre_mesh_links[0].networks: 192.168.2.128/25 is only part of 192.168.2.0/24, a network of host site2 "
            "(gre_mesh_networks); a link carries a network whole, list 192.168.2.0/24 or a range that holds it",
        ),
        (
            ["192.168.2.0/25"],
            "gre_mesh_links[0].networks: 192.168.2.0/25 is only part of 192.168.2.0/24, a network of host site2 "
            "(gre_mesh_networks); a link carries a network whole, list 192.168.2.0/24 or a range that holds it",
        ),
        (
            ["fd10::/64"],
            "gre_mesh_links[0].networks: fd10::/64 is IPv6, but the link site1 <-> site2 has no IPv6 addresses inside "
            "to carry it; remove it, or set gre_mesh_pool6 (or subnet6 on the link)",
        ),
    ],
)
def test_bad_link_networks_are_refused_naming_the_entry(networks: t.Any, expected: str) -> None:
    assert problem(SITES, HUB_GROUPS, **HUB_SETTINGS, links=[{"hosts": ["site1", "site2"], "networks": networks}]) == (
        expected
    )
