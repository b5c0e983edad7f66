# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the networks behind the tunnels (routed sites).

A node may have networks behind it (``gre_mesh_networks`` on a host, ``networks`` on an external
peer). Every other node that reaches it over the planned links gets one route per network, through
the tunnel to its next hop. Paths are the cheapest over the links of the network's address family
(links with inner addresses of that family), each link costing its ``metric`` (default 1): without
metrics the fewest links, so a direct link wins over a path through a hub. On equal cost the path
of fewer links wins, then the next hop with the lowest id (ids are unique): never dict order.
Following next hops gets strictly cheaper each time, so routes never loop. A link with
``networks`` (gre_mesh_links) carries only the networks inside those: the paths to any other
network are searched without it (so they go around it, or there is none). A spoke of a
gre_mesh_hub_spoke entry with a ``summary`` routes the summary through its hub instead of the
networks inside it that it reaches through that hub.

A node forwards a family when others send it packets of that family that are not its own: its
networks are behind it, or it is the next hop towards another node's network (a hub).
"""

from __future__ import annotations

import bisect
import collections
import collections.abc as c
import heapq
import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.addresses import addresses_in, inner_networks
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import (
    IPNetwork,
    Link,
    Node,
    Problems,
    Settings,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.settings import parse_networks
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.topology import SUMMARY_KEY, members_of

NETWORKS_VARIABLE = "gre_mesh_networks"
# The key of a gre_mesh_links entry that lists the networks the link may carry (settings.OVERRIDES).
LINK_NETWORKS_KEY = "networks"


def check_networks(
    nodes: t.Iterable[Node],
    links: list[Link],
    settings: Settings,
    underlay: list[tuple[t.Any, str]],
    problems: Problems,
    subnets: t.Sequence[tuple[IPNetwork, str]] = (),
) -> None:
    """Networks must not overlap each other, the inner subnets, the known underlay subnets, or contain an underlay address.

    ``underlay`` is every known underlay address with whose it is. A network that contains one
    would route the tunnel's own packets into the tunnel (recursive routing). ``subnets`` are the
    underlay subnets the facts tell, with whose each is: a host on one reaches it directly, and a
    route to the same addresses through a tunnel would take them away from it (or be refused by
    gre_tunnel, as another route to the same prefix).
    """
    claimed: list[tuple[IPNetwork, Node]] = [(network, node) for node in nodes for network in node.networks]
    if not claimed:
        return
    claimed.sort(key=lambda item: (item[0].version, int(item[0].network_address), item[0].prefixlen, item[1].name))
    check_claims(claimed, problems)
    inner = [
        (f"the tunnel pool {variable}" if variable.startswith("gre_mesh_pool") else variable, subnet)
        for variable, subnet in inner_networks(links, settings)
    ]
    for network, node in claimed:
        for variable, subnet in inner:
            if network.version == subnet.version and network.overlaps(subnet):
                problems.add(
                    f"{node.label}: {node.networks_source}: {network} overlaps {variable} ({subnet}); the tunnels' "
                    f"inner addresses and the networks behind them must not overlap, remove {network} or choose "
                    "another pool"
                )
    for network, node in claimed:
        for subnet, owner in subnets:
            if network.version == subnet.version and network.overlaps(subnet):
                problems.add(
                    f"{node.label}: {node.networks_source}: {network} overlaps {subnet}, {owner}; that host reaches "
                    "those addresses over its underlay, not through a tunnel; remove it or list a network outside "
                    "the underlay"
                )
    addresses = sorted(underlay, key=lambda item: (item[0].version, int(item[0])))
    keys = [(address.version, int(address)) for address, _owner in addresses]
    for network, node in claimed:
        for address, owner in addresses_in(addresses, keys, network):
            problems.add(
                f"{node.label}: {node.networks_source}: {network} contains {address}, {owner}; a route to it through "
                "a tunnel would carry the tunnel's own packets (recursive routing); remove it or list a smaller network"
            )


def check_claims(claimed: list[tuple[IPNetwork, Node]], problems: Problems) -> None:
    """No two claims overlap: each network has one node behind it (claims sorted by family and start)."""
    open_claims: list[tuple[IPNetwork, Node]] = []
    for network, node in claimed:
        open_claims = [
            (other, owner)
            for other, owner in open_claims
            if other.version == network.version and int(other.broadcast_address) >= int(network.network_address)
        ]
        for other, owner in open_claims:
            if owner is node:
                problems.add(
                    f"{node.label}: {node.networks_source}: {network} is inside {other}, which it lists too; "
                    "list only the larger one"
                )
            else:
                problems.add(
                    f"{owner.label} ({owner.networks_source}: {other}) and {node.label} ({node.networks_source}: "
                    f"{network}) claim overlapping networks; a network is behind one node, remove it from one of them"
                )
        open_claims.append((network, node))


class Route(t.NamedTuple):
    """A route of a node: the network, through the tunnel to ``peer``, to its inner address ``via``.

    ``metric`` is the metric of the link to ``peer`` when it has one (``metric`` in gre_mesh_links),
    else None (the kernel's default). ``text`` is the prefix as text, made once per network rather
    than once per route (a hub and spoke of 200 sites has 160000 routes).
    """

    prefix: IPNetwork
    peer: str
    via: str
    metric: int | None = None
    text: str = ""

    @property
    def prefix_text(self) -> str:
        return self.text or str(self.prefix)


class Summary(t.NamedTuple):
    """A summary of a gre_mesh_hub_spoke entry: its spokes route ``network`` through their hub."""

    network: IPNetwork
    origin: str
    hubs: tuple[str, ...]
    spokes: tuple[str, ...]


# A neighbour over a link of one family: the node, the link, and the link's cost.
Neighbour = tuple[Node, Link, int]
# A network behind a node, with its family and first and last addresses as numbers (span).
Claim = tuple[tuple[int, int, int], IPNetwork, Node]


def link_metric(link: Link) -> int | None:
    return t.cast("int | None", link.spec.overrides.get("metric"))


def family_links(links: list[Link], version: int) -> dict[str, list[Neighbour]]:
    """Each node's neighbours over the links that carry ``version`` inside, with the links' costs."""
    result: dict[str, list[Neighbour]] = collections.defaultdict(list)
    for link in links:
        if any(block.version == version for block in link.blocks):
            cost = link_metric(link) or 1
            result[link.low.name].append((link.high, link, cost))
            result[link.high.name].append((link.low, link, cost))
    return result


def carries(link: Link, network: IPNetwork) -> bool:
    """Whether routes to ``network`` may use the link: it has no ``networks``, or one of them holds ``network``."""
    allowed = link.spec.overrides.get(LINK_NETWORKS_KEY)
    return allowed is None or any(within(network, outer) for outer in allowed)


def span(network: IPNetwork) -> tuple[int, int, int]:
    """A network as its family and its first and last addresses, as numbers (cheaper to compare than objects)."""
    return network.version, int(network.network_address), int(network.broadcast_address)


def left_out(network: IPNetwork, restricted: list[tuple[int, list[tuple[int, int, int]]]]) -> frozenset[int]:
    """The numbers of the links with ``networks`` (``restricted``, see plan_routes) that may not carry ``network``."""
    version, first, last = span(network)
    return frozenset(
        index
        for index, spans in restricted
        if not any(family == version and low <= first and last <= high for family, low, high in spans)
    )


def without_links(graph: dict[str, list[Neighbour]], excluded: frozenset[int]) -> dict[str, list[Neighbour]]:
    """The graph without the links numbered in ``excluded`` (Link.index)."""
    if not excluded:
        return graph
    return {
        name: [neighbour for neighbour in neighbours if neighbour[1].index not in excluded]
        for name, neighbours in graph.items()
    }


def reached(owner: Node, graph: dict[str, list[Neighbour]]) -> set[str]:
    """The names of the nodes connected to ``owner`` over the graph, the owner's included."""
    seen = {owner.name}
    todo = [owner.name]
    while todo:
        for neighbour, _link, _weight in graph.get(todo.pop(), ()):
            if neighbour.name not in seen:
                seen.add(neighbour.name)
                todo.append(neighbour.name)
    return seen


def plan_routes(
    nodes: t.Mapping[str, Node],
    links: list[Link],
    problems: Problems,
    summaries: t.Sequence[Summary] = (),
    unrouted: list[tuple[IPNetwork, str, list[str]]] | None = None,
) -> tuple[dict[str, list[Route]], dict[str, list[int]]]:
    """Every node's routes to the other nodes' networks, and the families each node forwards.

    A link with ``networks`` (gre_mesh_links) is left out of the paths to any other network, so
    each network has its own graph: one path search per owner, family and set of links left out
    (one per owner and family without such links). ``unrouted``, when given, receives each network
    with its owner and the nodes that reach the owner over the family's links but get no route to
    it because of those restrictions.
    """
    routes: dict[str, list[Route]] = collections.defaultdict(list)
    forward: dict[str, set[int]] = collections.defaultdict(set)
    owners = sorted((node for node in nodes.values() if node.networks), key=lambda node: node.node_id)
    graphs: dict[int, dict[str, list[Neighbour]]] = {}
    # The links with ``networks``, each with those as (family, first address, last address).
    restricted = [
        (link.index, [span(outer) for outer in link.spec.overrides[LINK_NETWORKS_KEY]])
        for link in links
        if LINK_NETWORKS_KEY in link.spec.overrides
    ]
    # The graph of a family without the links that may not carry a network, by family and those links.
    filtered: dict[tuple[int, frozenset[int]], dict[str, list[Neighbour]]] = {}
    # For each network, the links its routes may not use (empty without restricted links).
    excluded_of: dict[IPNetwork, frozenset[int]] = {}
    # For each owner, family and links left out: each node that reaches it, its next hop, the hop's
    # inner address, the metric.
    tables: dict[tuple[str, int, frozenset[int]], list[tuple[str, str, str, int | None]]] = {}
    for owner in owners:
        for version in sorted({network.version for network in owner.networks}):
            if version not in graphs:
                graphs[version] = family_links(links, version)
            graph = graphs[version]
            if not graph.get(owner.name):
                families = "IPv4" if version == 4 else "IPv6"
                pool = "gre_mesh_pool" if version == 4 else "gre_mesh_pool6 (or subnet6 on its links)"
                problems.add(
                    f"{owner.label}: {owner.networks_source}: lists {families} networks, but none of its links has "
                    f"{families} addresses inside to carry them; set {pool}, or remove them"
                )
                continue
            connected: set[str] | None = None
            for network in owner.networks:
                if network.version != version:
                    continue
                excluded = left_out(network, restricted) if restricted else frozenset()
                excluded_of[network] = excluded
                key = (owner.name, version, excluded)
                if key not in tables:
                    if (version, excluded) not in filtered:
                        filtered[(version, excluded)] = without_links(graph, excluded)
                    hops = []
                    for name, hop, link in next_hops(owner, filtered[(version, excluded)]):
                        hops.append((name, hop.name, inner_address(link, hop, version), link_metric(link)))
                        forward[hop.name].add(version)
                    tables[key] = hops
                if excluded and unrouted is not None:
                    connected = reached(owner, graph) if connected is None else connected
                    routed = {name for name, *_rest in tables[key]} | {owner.name}
                    missing = sorted(connected - routed)
                    if missing:
                        unrouted.append((network, owner.name, missing))
    # One network after the other in the order of their prefixes (IPv4 first), so that each node's
    # routes come out in that order without sorting them.
    claimed = sorted(
        ((network, owner.name) for owner in owners for network in owner.networks),
        key=lambda item: (item[0].version, int(item[0].network_address), item[0].prefixlen),
    )
    chosen = summary_hubs(nodes, links, summaries, problems) if summaries else {}
    # For each spoke with summaries: its hub for each summary; a route to a network inside one through
    # that hub gives way to the summary's route.
    replaced = {
        spoke: {summary.network: hub.name for summary, hub, _link in entries} for spoke, entries in chosen.items()
    }
    for network, owner_name in claimed:
        text = str(network)
        covering = [summary.network for summary in summaries if within(network, summary.network)]
        key = (owner_name, network.version, excluded_of.get(network, frozenset()))
        for name, hop_name, via, metric in tables.get(key, ()):
            if covering and name in replaced and any(replaced[name].get(outer) == hop_name for outer in covering):
                continue
            routes[name].append(Route(network, hop_name, via, metric, text))
    for spoke, entries in chosen.items():
        kept = routes[spoke]
        for summary, hub, link in entries:
            network = summary.network
            kept.append(Route(network, hub.name, inner_address(link, hub, network.version), link_metric(link)))
            forward[hub.name].add(network.version)
        kept.sort(key=lambda route: (route.prefix.version, int(route.prefix.network_address), route.prefix.prefixlen))
    return dict(routes), {name: sorted(versions) for name, versions in forward.items()}


def next_hops(owner: Node, graph: dict[str, list[Neighbour]]) -> list[tuple[str, Node, Link]]:
    """For every node that reaches ``owner``: its next hop towards it and the link to that hop.

    Dijkstra from the owner over the links' costs (``metric``, default 1). A path is shorter when it
    costs less, then when it has fewer links; a node's next hop is a neighbour on one of its shortest
    paths, the one with the lowest id when several are. Every link costs at least 1, so each next
    hop is strictly closer to the owner and routes never loop.
    """
    best: dict[str, tuple[int, int]] = {owner.name: (0, 0)}
    done: set[str] = set()
    order: list[Node] = []
    heap: list[tuple[int, int, int, str]] = [(0, 0, owner.node_id, owner.name)]
    by_name = {owner.name: owner}
    while heap:
        cost, links, _node_id, name = heapq.heappop(heap)
        if name in done:
            continue
        done.add(name)
        order.append(by_name[name])
        for neighbour, _link, weight in graph.get(name, []):
            candidate = (cost + weight, links + 1)
            known = best.get(neighbour.name)
            if known is None or candidate < known:
                best[neighbour.name] = candidate
                by_name[neighbour.name] = neighbour
                heapq.heappush(heap, (*candidate, neighbour.node_id, neighbour.name))
    result = []
    for node in order[1:]:
        cost, links = best[node.name]
        closer = [
            (neighbour, link)
            for neighbour, link, weight in graph[node.name]
            if best.get(neighbour.name) == (cost - weight, links - 1)
        ]
        hop, link = min(closer, key=lambda pair: pair[0].node_id)
        result.append((node.name, hop, link))
    return result


def read_summaries(
    groups: t.Mapping[str, t.Sequence[str]],
    hub_spoke: t.Any,
    nodes: t.Mapping[str, Node],
    underlay: list[tuple[t.Any, str]],
    problems: Problems,
) -> list[Summary]:
    """The summaries of the gre_mesh_hub_spoke entries (``summary``), checked (the entries are, already).

    A summary stands for networks behind other nodes: it must contain at least one of them, and
    every one it overlaps whole; it must not contain an underlay address (the default route, which
    contains them all, included).
    """
    if not isinstance(hub_spoke, c.Sequence) or isinstance(hub_spoke, (str, bytes)):
        return []
    if not any(isinstance(item, c.Mapping) and item.get(SUMMARY_KEY) not in (None, "", []) for item in hub_spoke):
        return []
    claimed = sorted(
        ((network, node) for node in nodes.values() for network in node.networks),
        key=lambda item: (item[0].version, int(item[0].network_address)),
    )
    result: list[Summary] = []
    for number, item in enumerate(hub_spoke):
        if not isinstance(item, c.Mapping) or item.get(SUMMARY_KEY) in (None, "", []):
            continue
        origin = f"gre_mesh_hub_spoke[{number}]"
        variable = f"{origin}.{SUMMARY_KEY}"
        networks = parse_networks(variable, item[SUMMARY_KEY], problems)
        for position, network in enumerate(networks):
            for other in networks[:position]:
                if other.version == network.version and other.overlaps(network):
                    problems.add(
                        f"{variable}: {network} overlaps {other}, which it lists too; list only the larger one"
                    )
        for network in networks:
            problem = summary_problem(network, claimed, underlay)
            if problem is not None:
                problems.add(f"{variable}: {problem}")
                continue
            hubs = tuple(members_of(groups, item["hubs"]))
            spokes = tuple(members_of(groups, item["spokes"]))
            result.append(Summary(network, origin, hubs, spokes))
    return result


def check_link_networks(nodes: t.Iterable[Node], links: list[Link], problems: Problems) -> None:
    """Each network a link lists (``networks`` of a gre_mesh_links entry) holds a network behind a node,
    of a family the link carries inside."""
    claimed = sorted(
        ((span(network), network, node) for node in nodes for network in node.networks), key=lambda item: item[0]
    )
    starts = [item[0][:2] for item in claimed]
    for link in links:
        allowed = link.spec.overrides.get(LINK_NETWORKS_KEY)
        if allowed is None:
            continue
        variable = f"{link.spec.override_origin}.{LINK_NETWORKS_KEY}"
        versions = {block.version for block in link.blocks}
        for outer in allowed:
            if outer.version not in versions:
                pool = "gre_mesh_pool (or subnet" if outer.version == 4 else "gre_mesh_pool6 (or subnet6"
                problems.add(
                    f"{variable}: {outer} is IPv{outer.version}, but the link {link.spec.ends[0]} <-> "
                    f"{link.spec.ends[1]} has no IPv{outer.version} addresses inside to carry it; remove it, or set "
                    f"{pool} on the link)"
                )
                continue
            inside, holder = containing(claimed, starts, outer)
            if inside:
                continue
            if holder is not None:
                _span, network, node = holder
                problems.add(
                    f"{variable}: {outer} is only part of {network}, a network of {node.label} ({node.networks_source}); "
                    f"a link carries a network whole, list {network} or a range that holds it"
                )
                continue
            problems.add(
                f"{variable}: {outer} holds none of the networks behind the nodes: no host's gre_mesh_networks (nor "
                "an external peer's networks) lies inside it; correct it (a typo?) or remove it"
            )


def containing(claimed: list[Claim], starts: list[tuple[int, int]], outer: IPNetwork) -> tuple[bool, Claim | None]:
    """Whether a network of ``claimed`` lies inside ``outer``; when none does, the one that holds ``outer``, if any.

    ``claimed`` is sorted by family and first address, ``starts`` those keys. The networks behind the
    nodes do not overlap (check_networks), and of two networks that overlap one holds the other: the
    first network that starts inside ``outer`` lies inside it or starts where it does and holds it;
    if none starts inside it, only the network before may hold it.
    """
    version, first, last = span(outer)
    position = bisect.bisect_left(starts, (version, first))
    if position < len(claimed) and claimed[position][0][0] == version and claimed[position][0][1] <= last:
        inside = claimed[position][0][2] <= last
        return inside, None if inside else claimed[position]
    if position and claimed[position - 1][0][0] == version and claimed[position - 1][0][2] >= last:
        return False, claimed[position - 1]
    return False, None


def summary_problem(
    network: IPNetwork, claimed: list[tuple[IPNetwork, Node]], underlay: list[tuple[t.Any, str]]
) -> str | None:
    """Why a summary cannot be routed through the hubs, or None."""
    if network.prefixlen == 0:
        return (
            f"{network} is a default route; through the hub it would take the spokes' underlay traffic too, the "
            "tunnels' own packets included (recursive routing); list the range that holds the sites' networks "
            "instead, such as 10.0.0.0/8"
        )
    for address, owner in underlay:
        if address.version == network.version and address in network:
            return (
                f"{network} contains {address}, {owner}; the spokes' route to it through the hub would carry the "
                "tunnel's own packets (recursive routing); list a range without underlay addresses"
            )
    inside = 0
    for other, node in claimed:
        if other.version != network.version or not other.overlaps(network):
            continue
        if other.prefixlen <= network.prefixlen:
            return (
                f"{network} does not contain more than {other}, a network of {node.label} ({node.networks_source}); "
                "a summary stands for several networks, list a larger one or none"
            )
        inside += 1
    if not inside:
        return (
            f"{network} contains none of the networks behind the nodes (gre_mesh_networks, networks of external "
            "peers); list the range that holds the sites' networks, or remove it"
        )
    return None


def summary_hubs(
    nodes: t.Mapping[str, Node], links: list[Link], summaries: t.Sequence[Summary], problems: Problems
) -> dict[str, list[tuple[Summary, Node, Link]]]:
    """Each spoke's summaries, each with the hub (and the link to it) the spoke routes it through.

    The hub is the spoke's hub (of the summary's entry) with the lowest id among those whose link
    carries the summary's family and may carry the summary (a link with ``networks`` only when one
    of them holds the whole summary; when no such link is left, the spoke keeps its routes per
    network, each over a link that may carry it). The spoke's routes through that hub to networks inside the
    summary give way to the summary's (plan_routes); routes to networks inside it through another
    node (a direct link, another hub) stay: they are more specific, so the kernel prefers them.
    """
    by_pair = {link.spec.ends: link for link in links}
    chosen: dict[str, list[tuple[Summary, Node, Link]]] = collections.defaultdict(list)
    for summary in summaries:
        hubs = sorted((nodes[name] for name in summary.hubs if name in nodes), key=lambda node: node.node_id)
        for spoke in summary.spokes:
            if spoke not in nodes:
                continue
            to_hubs = [
                (hub, link)
                for hub in hubs
                for link in [by_pair.get((spoke, hub.name) if spoke < hub.name else (hub.name, spoke))]
                if link is not None
            ]
            if not to_hubs:
                continue  # the entry has no hubs: no link, nothing to route
            version = summary.network.version
            in_family = [(hub, link) for hub, link in to_hubs if any(block.version == version for block in link.blocks)]
            if in_family and not any(carries(link, summary.network) for _hub, link in in_family):
                continue  # its links to the hubs may not carry the summary: the spoke keeps its routes per network
            found = next(((hub, link) for hub, link in in_family if carries(link, summary.network)), None)
            if found is None:
                family = f"IPv{version}"
                pool = "gre_mesh_pool (or subnet" if version == 4 else "gre_mesh_pool6 (or subnet6"
                problems.add(
                    f"{summary.origin}.{SUMMARY_KEY}: {summary.network} is {family}, but no link of host {spoke} to "
                    f"a hub of that entry has {family} addresses inside; set {pool} on those links), or remove it"
                )
                continue
            for other, _hub, _link in chosen[spoke]:
                if other.network.version == summary.network.version and other.network.overlaps(summary.network):
                    problems.add(
                        f"host {spoke}: {other.origin}.{SUMMARY_KEY} ({other.network}) and {summary.origin}."
                        f"{SUMMARY_KEY} ({summary.network}) overlap; a spoke takes one summary per range, remove one"
                    )
            chosen[spoke].append((summary, *found))
    for spoke, entries in chosen.items():
        for summary, hub, _link in entries:
            for other, back, _back_link in chosen.get(hub.name, []):
                if back.name == spoke and other.network.overlaps(summary.network) and spoke < hub.name:
                    problems.add(
                        f"hosts {spoke} and {hub.name}: each routes a summary through the other ({summary.origin}."
                        f"{SUMMARY_KEY}: {summary.network}, {other.origin}.{SUMMARY_KEY}: {other.network}), so "
                        "packets to an address of it that no site has would go back and forth; remove one"
                    )
    return chosen


def within(network: IPNetwork, outer: IPNetwork) -> bool:
    """Whether ``network`` lies inside ``outer`` (or is it)."""
    return (
        network.version == outer.version
        and network.prefixlen >= outer.prefixlen
        and int(network.network_address) >> (network.max_prefixlen - outer.prefixlen)
        == int(outer.network_address) >> (outer.max_prefixlen - outer.prefixlen)
    )


def inner_address(link: Link, node: Node, version: int) -> str:
    """The inner address (without length) of ``node``'s end of the link, in ``version``."""
    side = "low" if node is link.low else "high"
    for address in link.addresses[side]:
        if (":" in address) == (version == 6):
            return address.split("/", 1)[0]
    raise AssertionError(f"{link.label} has no IPv{version} address")  # family_links keeps only links that have one
