# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Properties of the inventory planner over random inventories (hypothesis).

Both ends of every link agree; no two links share inner addresses; adding or removing hosts and
links never changes the tunnels that stay; planning one host at a time (gre_plan, after
gre_plan_check) gives what planning all at once gives; a link's two tunnels have the same MTU, the
one its underlay MTUs call for, whichever way it is planned; and the gre_tunnel module takes every
plan.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MAX_TUNNEL_MTU, overhead
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import wanted_routes, wanted_tunnels
from ansible_collections.linuxnet.gre.plugins.modules.gre_tunnel import argument_spec
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import MeshError
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh, plan_host, plan_mesh

MAX_ID = 60
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclasses.dataclass
class Inventory:
    """A random inventory: host variables, groups, and the topology settings."""

    hostvars: dict[str, dict[str, t.Any]]
    groups: dict[str, list[str]]
    settings: dict[str, t.Any]

    def plan(self) -> dict[str, t.Any]:
        return plan_mesh(self.hostvars, self.groups, **self.settings)


def host_name(node_id: int, pinned: bool) -> str:
    """A name that derives this id, or (pinned) a name that would derive another one."""
    return f"pin{node_id}x" if pinned else f"node{node_id:02d}"


# Where a host's underlay MTU comes from: nowhere (unknown), its facts, or gre_mesh_underlay_mtu.
UNDERLAY_SOURCES = ("none", "facts", "variable")
# Large enough for IPv6 inside (pool6) with every mode and key the inventories use.
UNDERLAY_MTUS = st.integers(1322, 9000)


def host_vars(
    node_id: int,
    pinned: bool,
    nat: bool,
    shared_public: int | None,
    via_facts: bool,
    underlay: tuple[str, int] = ("none", 0),
) -> dict[str, t.Any]:
    # Hosts that share a public address are behind one NAT address: 198.18.200.x, apart from the others.
    public = f"198.18.0.{node_id + 1}" if shared_public is None else f"198.18.200.{shared_public + 1}"
    local = f"172.16.{node_id // 250}.{node_id % 250 + 1}" if nat else public
    result: dict[str, t.Any] = {"ansible_host": public}
    if pinned:
        result["gre_mesh_id"] = node_id
    source, mtu = underlay
    fact: dict[str, t.Any] = {"mtu": mtu} if source == "facts" else {}
    if via_facts:
        result["ansible_facts"] = {"default_ipv4": {"address": local, **fact}}
    else:
        result["gre_mesh_local"] = local
        if fact:
            result["ansible_facts"] = {"default_ipv4": fact}
    if source == "variable":
        result["gre_mesh_underlay_mtu"] = mtu
    return result


def underlay_mtu(variables: dict[str, t.Any]) -> int | None:
    if "gre_mesh_underlay_mtu" in variables:
        return variables["gre_mesh_underlay_mtu"]
    return variables.get("ansible_facts", {}).get("default_ipv4", {}).get("mtu")


@st.composite
def hosts(draw: st.DrawFn, ids: list[int]) -> dict[str, dict[str, t.Any]]:
    """Hosts with these ids: some pinned, some behind NAT, some sharing one NAT address."""
    result = {}
    for node_id in ids:
        pinned = draw(st.booleans())
        shared = draw(st.one_of(st.none(), st.none(), st.integers(0, 2)))
        result[host_name(node_id, pinned)] = host_vars(
            node_id,
            pinned,
            nat=shared is not None or draw(st.booleans()),
            shared_public=shared,
            via_facts=draw(st.booleans()),
            underlay=(draw(st.sampled_from(UNDERLAY_SOURCES)), draw(UNDERLAY_MTUS)),
        )
    return result


@st.composite
def link_settings(draw: st.DrawFn, number: int) -> dict[str, t.Any]:
    """Per-link settings that cannot clash: explicit keys are above every automatic one."""
    result: dict[str, t.Any] = {}
    if draw(st.booleans()):
        result["mode"] = draw(st.sampled_from(["gre", "gretap"]))
    if draw(st.booleans()):
        result["ttl"] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        result["mtu"] = draw(st.integers(1280, 1476))
    if draw(st.booleans()):
        result["key"] = 100_000 + number
    if draw(st.booleans()):
        result["metric"] = draw(st.integers(1, 5))
    return result


def one_per_address(names: list[str], public: dict[str, str]) -> list[str]:
    seen: set[str] = set()
    result = []
    for name in names:
        if public[name] not in seen:
            seen.add(public[name])
            result.append(name)
    return result


def fitting_mtu(overrides: dict[str, t.Any], ends: list[dict[str, t.Any]]) -> int:
    """A link's own MTU, lowered to what the known underlay MTUs of its ends take (the planner refuses more).

    Counted with a key, which the link may get automatically.
    """
    known = [mtu for mtu in (underlay_mtu(variables) for variables in ends) if mtu is not None]
    if not known:
        return overrides["mtu"]
    return min(overrides["mtu"], min(known) - overhead(overrides.get("mode", "gre"), keyed=True))


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    ids = draw(st.lists(st.integers(0, MAX_ID), min_size=2, max_size=14, unique=True))
    hostvars = draw(hosts(ids))
    names = sorted(hostvars)
    # Hosts behind one NAT address are never linked with each other (the planner refuses it): a mesh
    # takes one of them, a spoke behind its hub's address is left out, and such pairs are not drawn.
    public = {name: variables["ansible_host"] for name, variables in hostvars.items()}
    mesh = one_per_address(draw(st.lists(st.sampled_from(names), unique=True)), public)
    hubs = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
    spokes = draw(st.lists(st.sampled_from([n for n in names if n not in hubs] or names), unique=True))
    hub_addresses = {public[name] for name in hubs}
    spokes = [name for name in spokes if name not in hubs and public[name] not in hub_addresses]
    apart = [pair for pair in itertools.combinations(names, 2) if public[pair[0]] != public[pair[1]]]
    pairs = draw(st.lists(st.sampled_from(apart), max_size=12, unique=True)) if apart else []
    links: list[t.Any] = []
    for number, pair in enumerate(pairs):
        overrides = draw(link_settings(number))
        if "mtu" in overrides:
            overrides["mtu"] = fitting_mtu(overrides, [hostvars[name] for name in pair])
        links.append({"hosts": list(pair), **overrides} if overrides else list(pair))
    prefix = draw(st.sampled_from([30, 31]))
    pool6 = draw(st.sampled_from([None, "fd00:6e65:7400::/64"]))
    return Inventory(
        hostvars=hostvars,
        groups={"all": names, "mesh": mesh, "hubs": hubs, "spokes": spokes},
        settings={
            "links": links,
            "full_mesh": ["mesh"],
            "hub_spoke": [{"hubs": "hubs", "spokes": "spokes"}],
            "prefix": prefix,
            "pool6": pool6,
        },
    )


def local_of(variables: dict[str, t.Any]) -> str:
    return variables.get("gre_mesh_local") or variables["ansible_facts"]["default_ipv4"]["address"]


def tunnel_pairs(result: dict[str, t.Any]) -> t.Iterator[tuple[str, dict, str, dict]]:
    """Each link once, as (host, its tunnel, peer, the peer's tunnel)."""
    by_peer = {
        name: {info["peer"]: tunnel for tunnel, info in zip(entry["tunnels"], entry["peers"], strict=True)}
        for name, entry in result["hosts"].items()
    }
    for name, tunnels in by_peer.items():
        for peer, tunnel in tunnels.items():
            if name < peer:
                yield name, tunnel, peer, by_peer[peer][name]


@PROPERTY_SETTINGS
@given(inventories())
def test_both_ends_of_every_link_agree(inventory: Inventory) -> None:
    result = inventory.plan()
    for name, mine, peer, theirs in tunnel_pairs(result):
        assert mine["local"] == local_of(inventory.hostvars[name])
        assert theirs["local"] == local_of(inventory.hostvars[peer])
        assert mine["remote"] == inventory.hostvars[peer]["ansible_host"]
        assert theirs["remote"] == inventory.hostvars[name]["ansible_host"]
        if mine["local"] == inventory.hostvars[name]["ansible_host"]:  # no NAT: the peer sends to where I send from
            assert theirs["remote"] == mine["local"]
        for field in ("mode", "ttl", "key", "mtu"):
            assert mine.get(field) == theirs.get(field)
        assert len(mine["addresses"]) == len(theirs["addresses"]) >= 1
        for a, b in zip(mine["addresses"], theirs["addresses"], strict=True):
            assert a != b
            assert ipaddress.ip_interface(a).network == ipaddress.ip_interface(b).network


@PROPERTY_SETTINGS
@given(inventories())
def test_no_two_links_share_an_inner_subnet(inventory: Inventory) -> None:
    result = inventory.plan()
    networks = sorted(
        (
            ipaddress.ip_interface(address).network
            for _name, mine, _peer, _theirs in tunnel_pairs(result)
            for address in mine["addresses"]
        ),
        key=lambda network: (network.version, network.network_address),
    )
    for previous, current in zip(networks, networks[1:], strict=False):
        assert previous.version != current.version or not previous.overlaps(current)


@st.composite
def grown(draw: st.DrawFn) -> tuple[Inventory, Inventory]:
    """An inventory, and the same with more hosts (in the groups, and with new explicit links)."""
    small = draw(inventories())
    extra_ids = draw(st.lists(st.integers(MAX_ID + 1, MAX_ID + 40), min_size=1, max_size=6, unique=True))
    extra = {}
    for node_id in extra_ids:
        pinned = draw(st.booleans())
        # New hosts have addresses of their own: a shared NAT address would add keys, by design.
        extra[host_name(node_id, pinned)] = host_vars(
            node_id,
            pinned,
            draw(st.booleans()),
            None,
            draw(st.booleans()),
            (draw(st.sampled_from(UNDERLAY_SOURCES)), draw(UNDERLAY_MTUS)),
        )
    hostvars = {**small.hostvars, **extra}
    names = sorted(hostvars)
    groups = {key: list(members) for key, members in small.groups.items()}
    groups["all"] = names
    for name in extra:
        group = draw(st.sampled_from(["mesh", "spokes", "none"]))
        if group != "none":
            groups[group].append(name)
    linked = {tuple(sorted(link if isinstance(link, list) else link["hosts"])) for link in small.settings["links"]}
    new_links = draw(
        st.lists(st.tuples(st.sampled_from(sorted(extra)), st.sampled_from(names)), max_size=5, unique=True)
    )
    links = list(small.settings["links"])
    for a, b in new_links:
        if a != b and tuple(sorted((a, b))) not in linked:
            linked.add(tuple(sorted((a, b))))
            links.append([a, b])
    return small, Inventory(hostvars, groups, {**small.settings, "links": links})


@PROPERTY_SETTINGS
@given(grown())
def test_adding_or_removing_hosts_and_links_changes_no_tunnel_that_stays(pair: tuple[Inventory, Inventory]) -> None:
    small, large = pair
    before, after = small.plan(), large.plan()
    for name, entry in before["hosts"].items():
        now = {tunnel["name"]: tunnel for tunnel in after["hosts"][name]["tunnels"]}
        for tunnel in entry["tunnels"]:
            assert now[tunnel["name"]] == tunnel


@PROPERTY_SETTINGS
@given(inventories())
def test_the_gre_tunnel_module_takes_every_plan(inventory: Inventory) -> None:
    assert_gre_tunnel_takes(inventory)


def assert_gre_tunnel_takes(inventory: Inventory) -> None:
    """The module's argument spec and its own checks (names, keys, MTU, twin tunnels, and each route's prefix, next
    hop on the tunnel's subnet, no underlay address inside, no prefix twice) accept each host's tunnels."""
    result = inventory.plan()
    validator = ArgumentSpecValidator(argument_spec())
    for entry in result["hosts"].values():
        validated = validator.validate({"tunnels": entry["tunnels"], "purge": True})
        assert not validated.error_messages
        wanted = wanted_tunnels(validated.validated_parameters)
        assert len(wanted) == len(entry["tunnels"])
        routes = wanted_routes(validated.validated_parameters, wanted) or {}
        assert sum(len(r) for r in routes.values()) == sum(len(tunnel["routes"]) for tunnel in entry["tunnels"])


@PROPERTY_SETTINGS
@given(inventories())
def test_planning_one_host_at_a_time_gives_the_whole_plan(inventory: Inventory) -> None:
    whole = inventory.plan()
    check = check_mesh(inventory.hostvars, inventory.groups, **inventory.settings)
    for name, entry in whole["hosts"].items():
        assert plan_host(inventory.hostvars, inventory.groups, name, check, **inventory.settings) == entry


@PROPERTY_SETTINGS
@given(inventories())
def test_a_links_two_tunnels_have_the_same_mtu_the_underlay_calls_for(inventory: Inventory) -> None:
    """Whole plan or one host at a time: both ends get one MTU, the link's own, else the smaller underlay's less
    the overhead, else none (left to the kernel) when either end's underlay MTU is unknown."""
    whole = inventory.plan()
    check = check_mesh(inventory.hostvars, inventory.groups, **inventory.settings)
    alone = {
        name: plan_host(inventory.hostvars, inventory.groups, name, check, **inventory.settings)
        for name in whole["hosts"]
    }
    explicit = {
        tuple(sorted(link["hosts"])): link["mtu"]
        for link in inventory.settings["links"]
        if isinstance(link, dict) and "mtu" in link
    }
    for name, mine, peer, theirs in tunnel_pairs(whole):
        in_alone = {
            info["peer"]: tunnel for tunnel, info in zip(alone[name]["tunnels"], alone[name]["peers"], strict=True)
        }
        assert mine.get("mtu") == theirs.get("mtu") == in_alone[peer].get("mtu")
        underlays = [underlay_mtu(inventory.hostvars[name]), underlay_mtu(inventory.hostvars[peer])]
        if tuple(sorted((name, peer))) in explicit:
            expected = explicit[tuple(sorted((name, peer)))]
        elif None in underlays:
            expected = None
        else:
            keyed = "key" in mine
            cost = overhead(mine["mode"], keyed)
            expected = min(min(t.cast(list[int], underlays)) - cost, MAX_TUNNEL_MTU[mine["mode"]][keyed])
        assert mine.get("mtu") == expected


@st.composite
def routed(draw: st.DrawFn) -> Inventory:
    """An inventory whose hosts have, some of them, networks behind them (IPv6 ones when there is a pool6)."""
    inventory = draw(inventories())
    for name, variables in inventory.hostvars.items():
        number = int("".join(filter(str.isdigit, name)))
        networks = []
        if draw(st.booleans()):
            networks.append(f"192.168.{number}.0/24")
        if inventory.settings["pool6"] and draw(st.booleans()):
            networks.append(f"fd10:{number:x}::/64")
        if networks:
            variables["gre_mesh_networks"] = networks
    return inventory


def link_costs(inventory: Inventory) -> dict[tuple[str, str], int]:
    """The metric of each explicit link that has one, by its sorted pair of hosts (every other link costs 1)."""
    return {
        t.cast(tuple[str, str], tuple(sorted(link["hosts"]))): link["metric"]
        for link in inventory.settings["links"]
        if isinstance(link, dict) and "metric" in link
    }


def cheapest(result: dict[str, t.Any], costs: dict[tuple[str, str], int], owner: str) -> dict[str, int]:
    """The cost of the cheapest path from each host to ``owner`` over the planned links (Bellman-Ford, for an
    answer found another way than the planner's)."""
    best = {owner: 0}
    for _round in range(len(result["hosts"])):
        for name, entry in result["hosts"].items():
            for peer in entry["peers"]:
                other = peer["peer"]
                if other in best:
                    cost = best[other] + costs.get(t.cast(tuple[str, str], tuple(sorted((name, other)))), 1)
                    if cost < best.get(name, cost + 1):
                        best[name] = cost
    return best


def next_hop(result: dict[str, t.Any], here: str, prefix: str) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """The one route to ``prefix`` in ``here``'s tunnels, and the peer at the other end of its tunnel."""
    entry = result["hosts"][here]
    ((interface, route),) = [
        (tunnel["name"], route)
        for tunnel in entry["tunnels"]
        for route in tunnel["routes"]
        if route["prefix"] == prefix
    ]
    (peer,) = [peer for peer in entry["peers"] if peer["interface"] == interface]
    return route, peer


def components(result: dict[str, t.Any]) -> dict[str, int]:
    """Each planned host's connected component over the planned links (every link carries both families here)."""
    component: dict[str, int] = {}
    for start in sorted(result["hosts"]):
        if start in component:
            continue
        component[start] = len(component)
        stack = [start]
        while stack:
            name = stack.pop()
            for peer in result["hosts"][name]["peers"]:
                if peer["peer"] not in component:
                    component[peer["peer"]] = component[start]
                    stack.append(peer["peer"])
    return component


@PROPERTY_SETTINGS
@given(routed())
def test_every_network_is_reached_from_every_host_linked_to_it(inventory: Inventory) -> None:
    """Following each hop's route leads to the host the network is behind, from every host connected to it, over
    the cheapest path (the links' metrics), and each route carries the metric of its link."""
    result = inventory.plan()
    component = components(result)
    costs = link_costs(inventory)
    for owner, variables in inventory.hostvars.items():
        if owner not in result["hosts"] or not result["hosts"][owner]["tunnels"]:
            continue
        for network in variables.get("gre_mesh_networks", []):
            prefix = str(ipaddress.ip_network(network))
            shortest = cheapest(result, costs, owner)
            for start in result["hosts"]:
                if start == owner or component[start] != component[owner]:
                    continue
                here, steps, spent = start, 0, 0
                while here != owner:
                    route, peer = next_hop(result, here, prefix)
                    assert route["via"] in peer["addresses"]
                    cost = costs.get(t.cast(tuple[str, str], tuple(sorted((here, peer["peer"])))))
                    assert route.get("metric") == cost
                    spent += cost or 1
                    assert ipaddress.ip_address(route["via"]).version == ipaddress.ip_network(prefix).version
                    here, steps = peer["peer"], steps + 1
                    assert steps <= len(result["hosts"])
                    if here != owner:
                        assert ipaddress.ip_network(prefix).version in result["hosts"][here]["forward"]
                assert spent == shortest[start]
                assert ipaddress.ip_network(prefix).version in result["hosts"][owner]["forward"]


@PROPERTY_SETTINGS
@given(routed())
def test_no_route_takes_the_underlay_address_of_its_own_tunnel(inventory: Inventory) -> None:
    """No route's prefix contains the remote or local address of the tunnel it goes through, and plans agree."""
    result = inventory.plan()
    check = check_mesh(inventory.hostvars, inventory.groups, **inventory.settings)
    for name, entry in result["hosts"].items():
        for tunnel in entry["tunnels"]:
            for route in tunnel["routes"]:
                prefix = ipaddress.ip_network(route["prefix"])
                for end in (tunnel["remote"], tunnel["local"]):
                    assert ipaddress.ip_address(end) not in prefix
        assert plan_host(inventory.hostvars, inventory.groups, name, check, **inventory.settings) == entry


@PROPERTY_SETTINGS
@given(routed())
def test_the_gre_tunnel_module_takes_every_routed_plan(inventory: Inventory) -> None:
    """With networks behind the hosts too: the module's route checks accept every planned route."""
    assert_gre_tunnel_takes(inventory)


@PROPERTY_SETTINGS
@given(routed())
def test_with_a_summary_on_the_spokes_every_network_is_still_reached(inventory: Inventory) -> None:
    """With ``summary`` on the hub and spoke entry, following the most specific route at each hop still leads
    from every connected host to each network's host, and a spoke's routes through its hub inside the summary
    are the summary alone."""
    inventory.settings["hub_spoke"] = [{"hubs": "hubs", "spokes": "spokes", "summary": ["192.168.0.0/16"]}]
    try:
        result = inventory.plan()
    except MeshError as exc:
        # No network inside the summary is behind a node with links: nothing to summarize.
        assume("contains none of the networks" not in str(exc))
        raise
    component = components(result)
    for owner, variables in inventory.hostvars.items():
        if owner not in result["hosts"] or not result["hosts"][owner]["tunnels"]:
            continue
        for network in variables.get("gre_mesh_networks", []):
            target = ipaddress.ip_network(network).network_address
            for start in result["hosts"]:
                if start == owner or component[start] != component[owner]:
                    continue
                here, steps = start, 0
                while here != owner:
                    entry = result["hosts"][here]
                    matches = [
                        (ipaddress.ip_network(route["prefix"]).prefixlen, tunnel["name"])
                        for tunnel in entry["tunnels"]
                        for route in tunnel["routes"]
                        if target in ipaddress.ip_network(route["prefix"])
                    ]
                    _length, interface = max(matches)
                    (peer,) = [peer for peer in entry["peers"] if peer["interface"] == interface]
                    here, steps = peer["peer"], steps + 1
                    assert steps <= len(result["hosts"])
    summary = ipaddress.ip_network("192.168.0.0/16")
    hubs = set(inventory.groups["hubs"])
    for spoke in inventory.groups["spokes"]:
        entry = result["hosts"].get(spoke)
        if entry is None or not hubs & {peer["peer"] for peer in entry["peers"]}:
            continue
        inside = [
            (route["prefix"], peer["peer"])
            for tunnel, peer in zip(entry["tunnels"], entry["peers"], strict=True)
            for route in tunnel["routes"]
            if ipaddress.ip_network(route["prefix"]).version == 4
            and ipaddress.ip_network(route["prefix"]).subnet_of(summary)  # type: ignore[arg-type]
        ]
        ((hub,),) = [[peer for prefix, peer in inside if prefix == str(summary)]]
        assert hub in hubs
        assert [prefix for prefix, peer in inside if peer == hub] == [str(summary)]


@st.composite
def restricted(draw: st.DrawFn) -> Inventory:
    """A routed inventory where some explicit links carry only some networks (``networks``): each a few of the
    networks behind the ends of the explicit links (which are nodes, so each listed network is behind one)."""
    inventory = draw(routed())
    links = inventory.settings["links"]
    ends = sorted({name for link in links for name in (link["hosts"] if isinstance(link, dict) else link)})
    candidates = sorted({network for name in ends for network in inventory.hostvars[name].get("gre_mesh_networks", [])})
    if not candidates:
        return inventory
    for number, link in enumerate(links):
        if not draw(st.booleans()):
            continue
        chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True))
        links[number] = (
            {"hosts": link["hosts"], **link, "networks": chosen}
            if isinstance(link, dict)
            else {
                "hosts": list(link),
                "networks": chosen,
            }
        )
    return inventory


def link_networks(inventory: Inventory) -> dict[tuple[str, str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """The networks each explicit link with ``networks`` may carry, by its sorted pair of hosts."""
    return {
        t.cast(tuple[str, str], tuple(sorted(link["hosts"]))): [ipaddress.ip_network(item) for item in link["networks"]]
        for link in inventory.settings["links"]
        if isinstance(link, dict) and "networks" in link
    }


@PROPERTY_SETTINGS
@given(restricted())
def test_every_route_follows_only_links_that_may_carry_its_network(inventory: Inventory) -> None:
    """With ``networks`` on random links: following each hop's route to a network uses only links that may carry
    it, never loops, reaches the network's host over the cheapest such path, and every host connected to that
    host over such links has a route to it (the others none)."""
    result = inventory.plan()
    costs = link_costs(inventory)
    limits = link_networks(inventory)

    def may_carry(pair: tuple[str, str], network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
        return pair not in limits or any(
            network.version == outer.version and network.subnet_of(outer)  # type: ignore[arg-type]
            for outer in limits[pair]
        )

    for owner, variables in inventory.hostvars.items():
        if owner not in result["hosts"] or not result["hosts"][owner]["tunnels"]:
            continue
        for text in variables.get("gre_mesh_networks", []):
            network = ipaddress.ip_network(text)
            prefix = str(network)
            # The cheapest cost from each host over the links that may carry the network (Bellman-Ford).
            best = {owner: 0}
            for _round in range(len(result["hosts"])):
                for name, entry in result["hosts"].items():
                    for peer in entry["peers"]:
                        pair = t.cast(tuple[str, str], tuple(sorted((name, peer["peer"]))))
                        if peer["peer"] in best and may_carry(pair, network):
                            cost = best[peer["peer"]] + costs.get(pair, 1)
                            if cost < best.get(name, cost + 1):
                                best[name] = cost
            for start, entry in result["hosts"].items():
                if start == owner:
                    continue
                has_route = any(route["prefix"] == prefix for tunnel in entry["tunnels"] for route in tunnel["routes"])
                assert has_route == (start in best), (start, prefix)
                if not has_route:
                    continue
                here, steps, spent = start, 0, 0
                while here != owner:
                    _route, peer = next_hop(result, here, prefix)
                    pair = t.cast(tuple[str, str], tuple(sorted((here, peer["peer"]))))
                    assert may_carry(pair, network), (here, peer["peer"], prefix)
                    spent += costs.get(pair, 1)
                    here, steps = peer["peer"], steps + 1
                    assert steps <= len(result["hosts"])
                assert spent == best[start]
