# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the networks behind the tunnels (routed sites).

A node may have networks behind it (``gre_mesh_networks`` on a host, ``networks`` on an external
peer). Every other node that reaches it over the planned links gets one route per network, through
the tunnel to its next hop. Paths are the fewest links of the network's address family (links
with inner addresses of that family), so a direct link wins over a path through a hub; among next
hops at the same distance the one with the lowest id wins (ids are unique): never dict order.
Following next hops gets one link closer each time, so routes never loop.

A node forwards a family when others send it packets of that family that are not its own: its
networks are behind it, or it is the next hop towards another node's network (a hub).
"""

from __future__ import annotations

import bisect
import collections
import collections.abc as c
import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import (
    IPNetwork,
    Link,
    Node,
    Problems,
    Settings,
)

NETWORKS_VARIABLE = "gre_mesh_networks"


def parse_networks(variable: str, value: t.Any, problems: Problems) -> list[IPNetwork]:
    """The networks of one node, checked: prefixes with a length and without host bits, each once."""
    if value is None or value == [] or value == "":
        return []
    if not isinstance(value, c.Sequence) or isinstance(value, (str, bytes)):
        problems.add(f"{variable}: must be a list of networks such as 192.168.10.0/24, not {value!r}")
        return []
    result: list[IPNetwork] = []
    for item in value:
        network = parse_network(variable, item, problems)
        if network is None:
            continue
        if network in result:
            problems.add(f"{variable}: {network} is listed twice; list it once")
            continue
        result.append(network)
    return result


def parse_network(variable: str, item: t.Any, problems: Problems) -> IPNetwork | None:
    if not isinstance(item, str) or "/" not in item:
        try:
            address = ipaddress.ip_address(str(item).strip())
        except ValueError:
            problems.add(f"{variable}: {item!r} is not a network; write it as address/length, such as 192.168.10.0/24")
            return None
        length = address.max_prefixlen
        problems.add(
            f"{variable}: {item!r} is an address where a network is meant; write {address}/{length} for this one "
            "address, or the network it belongs to (such as 192.168.10.0/24)"
        )
        return None
    text = item.strip()
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        problems.add(f"{variable}: {item!r} is not a network; write it as address/length, such as 192.168.10.0/24")
        return None
    problems.add(f"{variable}: {item!r} has host bits set; the network is {network}")
    return None


def check_networks(
    nodes: t.Iterable[Node],
    links: list[Link],
    settings: Settings,
    underlay: list[tuple[t.Any, str]],
    problems: Problems,
) -> None:
    """Networks must not overlap each other, the inner subnets, or contain an underlay address.

    ``underlay`` is every known underlay address with whose it is. A network that contains one
    would route the tunnel's own packets into the tunnel (recursive routing).
    """
    claimed: list[tuple[IPNetwork, Node]] = [(network, node) for node in nodes for network in node.networks]
    if not claimed:
        return
    claimed.sort(key=lambda item: (item[0].version, int(item[0].network_address), item[0].prefixlen, item[1].name))
    check_claims(claimed, problems)
    inner: list[tuple[str, IPNetwork]] = []
    if settings.pool is not None:
        inner.append(("the tunnel pool gre_mesh_pool", settings.pool))
    if settings.pool6 is not None:
        inner.append(("the tunnel pool gre_mesh_pool6", settings.pool6))
    for link in links:
        for name in ("subnet", "subnet6"):
            if name in link.spec.overrides:
                inner.append((f"{link.spec.override_origin}.{name}", link.spec.overrides[name]))
    for network, node in claimed:
        for variable, subnet in inner:
            if network.version == subnet.version and network.overlaps(subnet):
                problems.add(
                    f"{node.label}: {node.networks_source}: {network} overlaps {variable} ({subnet}); the tunnels' "
                    f"inner addresses and the networks behind them must not overlap, remove {network} or choose "
                    "another pool"
                )
    addresses = sorted(underlay, key=lambda item: (item[0].version, int(item[0])))
    keys = [(address.version, int(address)) for address, _owner in addresses]
    for network, node in claimed:
        start = int(network.network_address)
        first = bisect.bisect_left(keys, (network.version, start))
        last = bisect.bisect_right(keys, (network.version, start + network.num_addresses - 1))
        for address, owner in addresses[first:last]:
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
    """A route of a node: the network, through the tunnel to ``peer``, to its inner address ``via``."""

    prefix: IPNetwork
    peer: str
    via: str


def family_links(links: list[Link], version: int) -> dict[str, list[tuple[Node, Link]]]:
    """Each node's neighbours over the links that carry ``version`` inside."""
    result: dict[str, list[tuple[Node, Link]]] = collections.defaultdict(list)
    for link in links:
        if any(block.version == version for block in link.blocks):
            result[link.low.name].append((link.high, link))
            result[link.high.name].append((link.low, link))
    return result


def plan_routes(
    nodes: t.Mapping[str, Node], links: list[Link], problems: Problems
) -> tuple[dict[str, list[Route]], dict[str, list[int]]]:
    """Every node's routes to the other nodes' networks, and the families each node forwards."""
    routes: dict[str, list[Route]] = collections.defaultdict(list)
    forward: dict[str, set[int]] = collections.defaultdict(set)
    owners = sorted((node for node in nodes.values() if node.networks), key=lambda node: node.node_id)
    graphs: dict[int, dict[str, list[tuple[Node, Link]]]] = {}
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
            prefixes = [network for network in owner.networks if network.version == version]
            for name, hop, link in next_hops(owner, graph):
                via = inner_address(link, hop, version)
                routes[name].extend(Route(prefix, hop.name, via) for prefix in prefixes)
                forward[hop.name].add(version)
    for name in routes:
        routes[name].sort(
            key=lambda route: (route.prefix.version, int(route.prefix.network_address), route.prefix.prefixlen)
        )
    return dict(routes), {name: sorted(versions) for name, versions in forward.items()}


def next_hops(owner: Node, graph: dict[str, list[tuple[Node, Link]]]) -> list[tuple[str, Node, Link]]:
    """For every node that reaches ``owner``: its next hop towards it and the link to that hop.

    Breadth first from the owner: a node's next hop is its neighbour one link closer, the one with
    the lowest id when several are.
    """
    distance = {owner.name: 0}
    order = [owner]
    queue = collections.deque([owner])
    while queue:
        node = queue.popleft()
        for neighbour, _link in graph.get(node.name, []):
            if neighbour.name not in distance:
                distance[neighbour.name] = distance[node.name] + 1
                order.append(neighbour)
                queue.append(neighbour)
    result = []
    for node in order[1:]:
        closer = [
            (neighbour, link)
            for neighbour, link in graph[node.name]
            if distance.get(neighbour.name) == distance[node.name] - 1
        ]
        hop, link = min(closer, key=lambda pair: pair[0].node_id)
        result.append((node.name, hop, link))
    return result


def inner_address(link: Link, node: Node, version: int) -> str:
    """The inner address (without length) of ``node``'s end of the link, in ``version``."""
    side = "low" if node is link.low else "high"
    for address in link.addresses[side]:
        if ipaddress.ip_interface(address).version == version:
            return address.split("/", 1)[0]
    raise AssertionError(f"{link.label} has no IPv{version} address")  # family_links keeps only links that have one
