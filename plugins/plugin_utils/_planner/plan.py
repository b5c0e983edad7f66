# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the inventory planner, from topology settings to every host's tunnels.

Three entry points, one pipeline (``build``):

* ``plan_mesh`` checks the whole topology and plans the hosts asked for. It reads the variables of
  every node once and does work in proportion to the number of links.
* ``check_mesh`` does the same and adds what ``plan_host`` needs: each node's id, public address,
  interface name and underlay MTUs, the keys that links need because of other links (see
  ``assign_keys``), and a digest of the settings.
* ``plan_host`` plans one host from the result of ``check_mesh``. It reads the variables of that
  host alone (its local address, its groups) and does work in proportion to its links.

Tunnels come in the shape the gre_tunnel module's ``tunnels`` option takes. Bad input raises
``MeshError``, whose message names the host (or the link) and the variable.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import hashlib
import ipaddress
import json
import socket
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    DEFAULT_ENCAP_PORT,
    MAX_KEY,
    MAX_NAME_LENGTH,
    max_tunnel_mtu,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.changes import creation_lines
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import TunnelError, parse_mtu, wanted_tunnel
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import Tunnel
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.spec import with_defaults
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.addresses import (
    assign_addresses,
    check_overlaps,
    check_underlay,
    pair_index,
    underlay_addresses,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.agreement import check_agreement
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.encap import (
    check_ipsec,
    check_modes,
    check_ports,
    encap_option,
    encap_peers,
    fou_commands,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.ipsec import (
    check_external_ends,
    check_secrets,
    ipsec_entry,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import (
    DEFAULT_MODE,
    DEFAULT_POOL,
    DEFAULT_PREFIX,
    DEFAULT_PREFIX6,
    DEFAULT_TTL,
    IPAddress,
    IPNetwork,
    Link,
    LinkSpec,
    MeshError,
    Node,
    Problems,
    Settings,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.mtu import (
    COMPUTED,
    add_underlay_mtus,
    assign_mtus,
    family,
    underlay_fit_problem,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.nodes import (
    FAILED,
    external_nodes,
    host_local,
    host_node,
    interface_name,
    read_var,
    underlay_subnets,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.routes import (
    NETWORKS_VARIABLE,
    Route,
    check_link_networks,
    check_networks,
    plan_routes,
    read_summaries,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.settings import NO_ENCAP, parse_settings
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.topology import Scope, expand_topology

AUTOMATIC_KEY = "automatic key"
HostVars = t.Mapping[str, t.Mapping[str, t.Any]]
Adjacency = dict[str, list[Link]]
# A node as check_mesh describes it to plan_host: [id, public address, interface name, external,
# underlay MTU for IPv4, for IPv6] (an MTU is None when unknown, or when no link of the node needs it).
TableEntry = t.Sequence[t.Any]

# The topology settings (the role's gre_mesh_* variables without the prefix) and their defaults.
DEFAULTS: dict[str, t.Any] = {
    "links": None,
    "full_mesh": None,
    "hub_spoke": None,
    "external_peers": None,
    "pool": DEFAULT_POOL,
    "prefix": DEFAULT_PREFIX,
    "pool6": None,
    "prefix6": DEFAULT_PREFIX6,
    "mode": DEFAULT_MODE,
    "ttl": DEFAULT_TTL,
    "key": None,
    "mtu": None,
    "ipsec": False,
    "encap": NO_ENCAP,
    "encap_port": DEFAULT_ENCAP_PORT,
}
NEEDS_CHECK = (
    "gre_plan: check must be the result of linuxnet.gre.gre_plan_check over the whole inventory, run once before it "
    "with the same settings"
)


@dataclasses.dataclass
class Mesh:
    """The planned topology: its nodes, links (with addresses and keys) and interface names."""

    nodes: dict[str, Node]
    externals: dict[str, Node]
    links: list[Link]
    adjacency: Adjacency
    names: dict[str, str]
    planned: list[str]
    # Each node's routes to the networks behind other nodes, and the address families it forwards.
    routes: dict[str, list[Route]] = dataclasses.field(default_factory=dict)
    forward: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    # Each network that some nodes connected to its owner get no route to, because links with
    # ``networks`` may not carry it: (network, owner, those nodes).
    unrouted: list[tuple[IPNetwork, str, list[str]]] = dataclasses.field(default_factory=list)


def plan_mesh(
    hostvars: HostVars, groups: t.Mapping[str, t.Sequence[str]], hosts: t.Any = None, **settings: t.Any
) -> dict[str, t.Any]:
    """Check the whole topology and plan the tunnels of ``hosts`` (default: every host that has links).

    ``hostvars`` maps each inventory host to its variables and ``groups`` each group to its hosts,
    as Ansible's variables of those names do; ``settings`` are the topology settings (``DEFAULTS``).
    Returns ``{"hosts": {host: {"tunnels": [...], "peers": [...]}}, "external_peers": {...}}``.
    """
    mesh = build(hostvars, groups, hosts, settings)
    return {
        "hosts": {host: node_plan(mesh.nodes.get(host), mesh) for host in mesh.planned},
        "external_peers": external_plans(mesh),
    }


def check_mesh(
    hostvars: HostVars,
    groups: t.Mapping[str, t.Sequence[str]],
    hosts: t.Any = None,
    plans: bool = True,
    play_hosts: t.Sequence[str] | None = None,
    **settings: t.Any,
) -> dict[str, t.Any]:
    """Check the whole topology, plan ``hosts``, and add what ``plan_host`` needs to plan any host alone.

    Returns what ``plan_mesh`` does (without the hosts' tunnels unless ``plans``: their local
    addresses are checked all the same), and ``"digest"`` (of the settings), ``"summary"`` (numbers
    of hosts with links, links and external peers), ``"nodes"`` (``{name: [id, public address,
    interface name, external, underlay MTU for IPv4, for IPv6]}``) and ``"keys"`` (the automatic keys,
    ``[[node, node, key], ...]``).

    With ``play_hosts`` (the play's hosts), it first checks that every host the run concerns sees
    the same topology settings in its variables (see _mesh_agreement), so that the plan does not
    depend on which host plans.
    """
    if play_hosts is not None:
        problems = Problems()
        values = {name: settings.get(name, default) for name, default in DEFAULTS.items() if name in settings}
        check_agreement(hostvars, groups, play_hosts, values, DEFAULTS, problems)
        problems.raise_any()
    mesh = build(hostvars, groups, hosts, settings)
    keys = [[*link.spec.ends, link.key] for link in mesh.links if link.key_source == AUTOMATIC_KEY]
    return {
        "digest": settings_digest(settings),
        "summary": {
            "hosts": sum(1 for node in mesh.nodes.values() if not node.external),
            "links": len(mesh.links),
            "external_peers": len(mesh.externals),
        },
        "hosts": {host: node_plan(mesh.nodes.get(host), mesh) for host in mesh.planned} if plans else {},
        "external_peers": external_plans(mesh),
        "nodes": {
            name: [
                node.node_id,
                node.public_text,
                mesh.names[name],
                node.external,
                node.underlay_mtu.get(4),
                node.underlay_mtu.get(6),
            ]
            for name, node in mesh.nodes.items()
        },
        "keys": sorted(keys),
        "routing": {
            name: [
                mesh.forward.get(name, []),
                [[route.peer, route.prefix_text, route.via, route.metric] for route in mesh.routes.get(name, [])],
            ]
            for name in sorted(set(mesh.routes) | set(mesh.forward))
            if not mesh.nodes[name].external
        },
    }


def plan_host(
    hostvars: HostVars, groups: t.Mapping[str, t.Sequence[str]], host: t.Any, check: t.Any, **settings: t.Any
) -> dict[str, t.Any]:
    """The tunnels of one host, given the result of ``check_mesh`` with the same settings."""
    if not isinstance(host, str) or host not in hostvars:
        raise MeshError([f"gre_plan: {host!r} is not a host of the inventory"])
    table, keys = read_check(check, settings_digest(settings))
    if host not in table:
        return empty_plan()
    host_vars = hostvars[host]
    scope = Scope(host, frozenset(groups_of(host, host_vars, groups)))
    mesh = build(hostvars, groups, [host], settings, scope, table, keys)
    add_routing(mesh, host, check.get("routing"))
    return node_plan(mesh.nodes.get(host), mesh)


def add_routing(mesh: Mesh, host: str, routing: t.Any) -> None:
    """The host's routes and forwarding as check_mesh planned them over the whole topology (none in an older check)."""
    if not isinstance(routing, c.Mapping) or host not in routing:
        return
    forward, routes = routing[host]
    mesh.forward[host] = [int(version) for version in forward]
    # [peer, prefix, via, metric]; a check from before link metrics has no metric.
    mesh.routes[host] = [
        Route(ipaddress.ip_network(route[1]), route[0], route[2], route[3] if len(route) > 3 else None, route[1])
        for route in routes
    ]


def settings_digest(settings: dict[str, t.Any]) -> str:
    """A fingerprint of the settings, so that gre_plan can tell that its check was made with the same ones."""
    normalized = {name: settings.get(name, default) for name, default in DEFAULTS.items()}
    text = json.dumps(normalized, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_check(check: t.Any, digest: str) -> tuple[t.Mapping[str, TableEntry], dict[tuple[str, str], int]]:
    """The node table and the automatic keys (by pair of node names) of a check_mesh result."""
    if not isinstance(check, c.Mapping) or not all(
        isinstance(check.get(name), kind) for name, kind in (("nodes", c.Mapping), ("keys", c.Sequence))
    ):
        raise MeshError([NEEDS_CHECK])
    if check.get("digest") != digest:
        raise MeshError(
            [
                "gre_plan: check comes from linuxnet.gre.gre_plan_check with other settings; give both filters the "
                "same gre_mesh_* values"
            ]
        )
    return check["nodes"], {(str(a), str(b)): int(key) for a, b, key in check["keys"]}


def groups_of(host: str, host_vars: t.Mapping[str, t.Any], groups: t.Mapping[str, t.Sequence[str]]) -> set[str]:
    """The groups of a host: Ansible's ``group_names`` (which leaves out ``all``) when there, else a search."""
    names = host_vars.get("group_names")
    if isinstance(names, c.Sequence) and not isinstance(names, str):
        return {str(name) for name in names} | {"all"}
    return {name for name, members in groups.items() if host in members}


class ExternalNames(c.Container):
    """The external peers of a node table, without going through the whole table."""

    def __init__(self, table: t.Mapping[str, TableEntry]) -> None:
        self._table = table

    def __contains__(self, name: object) -> bool:
        entry = self._table.get(name) if isinstance(name, str) else None
        return bool(entry and entry[3])


def table_nodes(table: t.Mapping[str, TableEntry], specs: dict[tuple[str, str], LinkSpec]) -> dict[str, Node]:
    """The nodes of one host's links, as check_mesh described them."""
    names = sorted({name for pair in specs for name in pair})
    missing = [name for name in names if name not in table]
    if missing:
        raise MeshError(
            [
                f"gre_plan: check does not know {missing[0]!r}; the inventory changed since gre_plan_check ran, run it again"
            ]
        )
    return {name: table_node(name, table[name]) for name in names}


def table_node(name: str, entry: TableEntry) -> Node:
    node_id, public, _interface, external = entry[:4]
    public = str(public)
    # A check from before underlay MTUs were planned has four fields: the MTUs are unknown.
    mtus = {version: int(mtu) for version, mtu in zip((4, 6), entry[4:6], strict=False) if mtu is not None}
    return Node(
        name=name,
        external=bool(external),
        node_id=int(node_id),
        id_source="gre_plan_check",
        public=canonical_address(public),
        public_source="gre_plan_check",
        short_name=name,
        public_text=public,
        underlay_mtu=mtus,
        underlay_mtu_source=dict.fromkeys(mtus, "gre_plan_check"),
    )


def canonical_address(text: str) -> IPAddress:
    """An address as check_mesh wrote it (the way ipaddress does), read faster than ipaddress reads text."""
    if ":" in text:
        return ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text))
    return ipaddress.IPv4Address(socket.inet_aton(text))


def build(
    hostvars: HostVars,
    groups: t.Mapping[str, t.Sequence[str]],
    hosts: t.Any,
    settings: dict[str, t.Any],
    scope: Scope | None = None,
    table: t.Mapping[str, TableEntry] | None = None,
    keys: dict[tuple[str, str], int] | None = None,
) -> Mesh:
    """The pipeline: settings, topology, nodes, links, addresses, names, keys, MTUs; each phase's problems together.

    For the whole topology, nodes (with their underlay MTUs) come from ``hostvars`` and the external
    peers' settings, and keys from comparing every node's links. For one host (``scope``), the peers
    (and the host itself) come from the node ``table`` and the automatic ``keys`` of check_mesh, and
    only that host's variables are read. MTUs come last: a key adds to a tunnel's overhead.
    """
    problems = Problems()
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise MeshError([f"unknown setting {unknown[0]!r}; the settings are {', '.join(DEFAULTS)}"])
    values = {name: settings.get(name, default) for name, default in DEFAULTS.items()}
    parsed = parse_settings(
        values["pool"],
        values["prefix"],
        values["pool6"],
        values["prefix6"],
        values["mode"],
        values["ttl"],
        values["key"],
        values["mtu"],
        values["ipsec"],
        problems=problems,
        encap=values["encap"],
        encap_port=values["encap_port"],
    )

    def is_host(name: str) -> bool:
        return name in hostvars

    if table is None:
        externals, declared = external_nodes(values["external_peers"], is_host, problems)
        external_names: t.Container[str] = declared
    else:
        externals = {}
        external_names = ExternalNames(table)
    specs = expand_topology(
        groups, is_host, external_names, values["links"], values["full_mesh"], values["hub_spoke"], problems, scope
    )
    planned = planned_hosts(hosts, specs, is_host, problems)
    problems.raise_any()
    settings_ = t.cast(Settings, parsed)

    if table is None:
        nodes = read_nodes(hostvars, specs, externals, problems)
        problems.raise_any()
        check_unique_ids(nodes, problems)
        names = {node.name: interface_name(node) for node in nodes.values()}
    else:
        nodes = table_nodes(table, specs)
        names = {name: str(table[name][2]) for name in nodes}
    problems.raise_any()

    links = resolve_links(specs, nodes, settings_, problems)
    check_external_ends(links, problems)
    check_ipsec(links, problems)
    check_modes(links, problems)
    add_locals(links, hostvars, planned, problems, check_externals=table is None)
    check_own_addresses(links, nodes, problems)
    if table is None:
        add_underlay_mtus(links, hostvars, problems)
        check_secrets(links, hostvars, problems)
    problems.raise_any()
    assign_addresses(links, settings_, problems)
    check_overlaps(links, problems)
    check_underlay(links, nodes.values(), settings_, problems)
    problems.raise_any()
    routes: dict[str, list[Route]] = {}
    forward: dict[str, list[int]] = {}
    unrouted: list[tuple[IPNetwork, str, list[str]]] = []
    if table is None:
        check_unlinked_networks(hostvars, planned, nodes, problems)
        underlay = underlay_addresses(nodes.values())
        if any(node.networks for node in nodes.values()):
            subnets = underlay_subnets(hostvars, nodes.values())
            check_networks(nodes.values(), links, settings_, underlay, problems, subnets)
            problems.raise_any()
        check_link_networks(nodes.values(), links, problems)
        summaries = read_summaries(groups, values["hub_spoke"], nodes, underlay, problems)
        problems.raise_any()
        if any(node.networks for node in nodes.values()):
            routes, forward = plan_routes(nodes, links, problems, summaries, unrouted)
        problems.raise_any()

    adjacency = adjacent_links(links)
    check_interface_names(adjacency, names, problems)
    check_ports(adjacency, problems)
    if keys is None:
        assign_keys(adjacency, problems)
    else:
        apply_keys(links, keys)
    check_keys_apart(adjacency, problems)
    assign_mtus(links)
    check_mtus(links, problems)
    problems.raise_any()
    return Mesh(nodes, externals, links, adjacency, names, planned, routes, forward, unrouted)


def check_unlinked_networks(hostvars: HostVars, planned: list[str], nodes: dict[str, Node], problems: Problems) -> None:
    """A planned host (one of the play's) with networks behind it but no link: nothing would reach them."""
    for name in planned:
        if name in nodes:
            continue
        value = read_var(hostvars[name], NETWORKS_VARIABLE, problems)
        if value is FAILED or value is None or value == [] or value == "":
            continue
        problems.add(
            f"host {name}: {NETWORKS_VARIABLE}: lists networks, but {name} has no tunnels (it is in no link of "
            "gre_mesh_links, gre_mesh_full_mesh or gre_mesh_hub_spoke), so no host would reach them; add it to the "
            f"topology, or remove {NETWORKS_VARIABLE}"
        )


def planned_hosts(
    hosts: t.Any, specs: dict[tuple[str, str], LinkSpec], is_host: t.Callable[[str], bool], problems: Problems
) -> list[str]:
    """The hosts whose tunnels are planned: the ones asked for, or every host with links."""
    if hosts is None:
        return sorted({name for pair in specs for name in pair if is_host(name)})
    if not isinstance(hosts, c.Sequence) or isinstance(hosts, (str, bytes)):
        problems.add(f"hosts: must be a list of inventory host names (such as ansible_play_batch), not {hosts!r}")
        return []
    result = []
    for name in hosts:
        if not isinstance(name, str) or not is_host(name):
            problems.add(f"hosts: {name!r} is not a host of the inventory")
        else:
            result.append(name)
    return sorted(set(result))


def read_nodes(
    hostvars: HostVars, specs: dict[tuple[str, str], LinkSpec], externals: dict[str, Node], problems: Problems
) -> dict[str, Node]:
    """The nodes with links: external peers as parsed, hosts from their variables (read once each)."""
    nodes: dict[str, Node] = {}
    for name in sorted({name for pair in specs for name in pair}):
        if name in externals:
            nodes[name] = externals[name]
            continue
        node = host_node(name, hostvars[name], problems)
        if node is not None:
            nodes[name] = node
    return nodes


def check_unique_ids(nodes: dict[str, Node], problems: Problems) -> None:
    owners: dict[int, Node] = {}
    for node in nodes.values():
        other = owners.setdefault(node.node_id, node)
        if other is node:
            continue
        fix = (
            "set gre_mesh_id on one of them"
            if not (other.external or node.external)
            else "set gre_mesh_id on the host, or id on the external peer"
        )
        problems.add(
            f"{other.label} and {node.label} both have id {node.node_id} ({other.label}: {other.id_source}, "
            f"{node.label}: {node.id_source}); ids must be unique, {fix}"
        )


def resolve_links(
    specs: dict[tuple[str, str], LinkSpec], nodes: dict[str, Node], settings: Settings, problems: Problems
) -> list[Link]:
    """Each link with its ends ordered by id, its number and settings, and its underlay family checked."""
    result = []
    for spec in specs.values():
        first, second = nodes[spec.ends[0]], nodes[spec.ends[1]]
        low, high = (first, second) if first.node_id < second.node_id else (second, first)
        overrides = spec.overrides
        encap = overrides.get("encap", settings.encap)
        link = Link(
            spec=spec,
            low=low,
            high=high,
            index=pair_index(low.node_id, high.node_id),
            mode=overrides.get("mode", settings.mode),
            ttl=overrides.get("ttl", settings.ttl),
            key=overrides.get("key", settings.key),
            key_source=f"{spec.override_origin}.key" if "key" in overrides else "gre_mesh_key",
            mtu=overrides.get("mtu", settings.mtu),
            mtu_source=f"{spec.override_origin}.mtu" if "mtu" in overrides else "gre_mesh_mtu",
            ipsec=overrides.get("ipsec", settings.ipsec),
            encap=None if encap == NO_ENCAP else encap,
            encap_port=None if encap == NO_ENCAP else overrides.get("encap_port", settings.encap_port),
        )
        if check_public_family(link, problems):
            result.append(link)
    return result


def check_public_family(link: Link, problems: Problems) -> bool:
    low, high = link.low, link.high
    if low.public == high.public:
        problems.add(
            f"{link.label}: {low.label} and {high.label} have the same public address {low.public} ({low.name}: "
            f"{low.public_source}, {high.name}: {high.public_source}), so each end would send GRE to itself or its own "
            "NAT address; give each its own gre_mesh_public, the address its peers reach it at"
        )
        return False
    if low.public.version != high.public.version:
        problems.add(
            f"{link.label} mixes address families: the public address of {low.label} is {low.public} "
            f"(IPv{low.public.version}, {low.public_source}), that of {high.label} is {high.public} "
            f"(IPv{high.public.version}, {high.public_source})"
        )
        return False
    wanted = family(link.mode)
    if low.public.version != wanted:
        problems.add(
            f"{link.label}: mode {link.mode} needs IPv{wanted} underlay addresses, but the public addresses of "
            f"{low.name} and {high.name} are IPv{low.public.version}; choose another mode (gre_mesh_mode, "
            "or mode on the link in gre_mesh_links)"
        )
        return False
    return True


def add_locals(
    links: list[Link], hostvars: HostVars, planned: list[str], problems: Problems, check_externals: bool = True
) -> None:
    """The local address of each planned host for the family of each of its links; external peers have theirs."""
    wanted = set(planned)
    failed: set[tuple[str, int]] = set()
    for link in links:
        version = family(link.mode)
        for node in (link.low, link.high):
            if version in node.local or (node.name, version) in failed:
                continue
            if node.external and check_externals:
                problem: str | None = external_family_problem(node, link, version)
            elif node.name in wanted:
                problem = add_host_local(node, hostvars[node.name], link, version)
            else:
                continue
            if problem is not None:
                problems.add(problem)
                failed.add((node.name, version))


def external_family_problem(node: Node, link: Link, version: int) -> str:
    (address,) = node.local.values()
    (source,) = node.local_source.values()
    return (
        f"{source}: {address} is IPv{address.version}, but {link.label} uses mode {link.mode}, which needs IPv{version}"
    )


def add_host_local(node: Node, host_vars: t.Mapping[str, t.Any], link: Link, version: int) -> str | None:
    address, source, problem = host_local(node, host_vars, version)
    if problem is not None or address is None:
        return problem
    if address.version != version:
        return (
            f"host {node.name}: {source}: {address} is IPv{address.version}, but {link.label} uses mode {link.mode}, "
            f"which needs IPv{version}"
        )
    node.local[version] = address
    node.local_source[version] = source
    return None


def check_own_addresses(links: list[Link], nodes: dict[str, Node], problems: Problems) -> None:
    """No tunnel is sent to its own host: a peer's public address is never the address a node sends from.

    Hosts may share a public address only as the one NAT address they are all behind (their links
    then get keys); a host that sends from an address itself owns it, and no other node may claim it.
    """
    sharing: dict[t.Any, list[Node]] = {}
    for node in nodes.values():
        sharing.setdefault(node.public, []).append(node)
    reported: set[tuple[str, str]] = set()
    for link in links:
        for node in (link.low, link.high):
            peer = link.peer_of(node)
            version = peer.public.version
            if node.local.get(version) == peer.public and (node.name, peer.name) not in reported:
                reported.add((node.name, peer.name))
                problems.add(
                    f"{link.label}: {node.label} would send GRE to {peer.public}, the public address of {peer.label} "
                    f"({peer.public_source}), which is {node.name}'s own local address ({node.local_source[version]}); "
                    f"give {peer.name} its own gre_mesh_public, the address its peers reach it at"
                )
    for owners in sharing.values():
        # External peers may share one: several tunnels on one router.
        sender = next(
            (node for node in owners if not node.external and node.local.get(node.public.version) == node.public), None
        )
        if sender is None:
            continue
        for other in owners:
            if other is not sender and (other.name, sender.name) not in reported:
                reported.add((other.name, sender.name))
                problems.add(
                    f"{other.label}: its public address {other.public} ({other.public_source}) is the address "
                    f"{sender.label} sends from ({sender.local_source[sender.public.version]}); give {other.name} "
                    "its own gre_mesh_public. Hosts share a public address only behind one NAT address, which "
                    "none of them sends from"
                )


def adjacent_links(links: list[Link]) -> Adjacency:
    result: Adjacency = {}
    for link in links:
        result.setdefault(link.low.name, []).append(link)
        result.setdefault(link.high.name, []).append(link)
    return result


def node_of(links: list[Link], name: str) -> Node:
    link = links[0]
    return link.low if link.low.name == name else link.high


def check_interface_names(adjacency: Adjacency, names: dict[str, str], problems: Problems) -> None:
    """On each node, the interfaces to its peers need distinct names (long names are cut to MAX_NAME_LENGTH bytes)."""
    for name, links in adjacency.items():
        node = node_of(links, name)
        seen: dict[str, Node] = {}
        for link in links:
            peer = link.peer_of(node)
            other = seen.setdefault(names[peer.name], peer)
            if other is not peer:
                first, second = sorted((other, peer), key=lambda n: n.name)
                problems.add(
                    f"{node.label}: the tunnels to {first.name} and {second.name} would both be named "
                    f"{names[peer.name]!r} (interface names have at most {MAX_NAME_LENGTH} bytes); give one of them another "
                    "gre_mesh_short_name (short_name for an external peer)"
                )


def assign_keys(adjacency: Adjacency, problems: Problems) -> None:
    """Keys where two tunnels of one node would share mode and endpoints.

    The kernel tells a node's tunnels apart by mode, local and remote address and key. All tunnels
    of a node have the same local address, so two links to peers with the same public address (two
    hosts behind one NAT address, two external peers on one router) need different keys. Such links
    that have no key get the key ``link number + 1``: the same on both ends, unique among links.
    Whether a link needs one depends on the links of both its ends, so only the whole topology
    tells; ``check_mesh`` finds them and ``plan_host`` takes them from its result.
    """
    to_key: dict[int, Link] = {}
    for name, links in adjacency.items():
        node = node_of(links, name)
        for twins in twin_groups(node, links):
            unkeyed = [link for link in twins if link.key is None]
            if len(unkeyed) > 1:
                to_key.update((id(link), link) for link in unkeyed)
    for link in to_key.values():
        if link.index + 1 > MAX_KEY:
            problems.add(f"{link.label}: needs a key, but its link number {link.index} is too large for one")
            continue
        link.key = link.index + 1
        link.key_source = AUTOMATIC_KEY


def apply_keys(links: list[Link], keys: dict[tuple[str, str], int]) -> None:
    """The automatic keys found by check_mesh."""
    for link in links:
        key = keys.get(link.spec.ends)
        if key is not None and link.key is None:
            link.key = key
            link.key_source = AUTOMATIC_KEY


def check_keys_apart(adjacency: Adjacency, problems: Problems) -> None:
    """Every node's tunnels with the same mode and remote address have different keys."""
    for name, links in adjacency.items():
        node = node_of(links, name)
        for twins in twin_groups(node, links):
            by_key: dict[int | None, Link] = {}
            for link in twins:
                other = by_key.setdefault(link.key, link)
                if other is not link:
                    problems.add(
                        f"{node.label}: the tunnels to {other.peer_of(node).name} and {link.peer_of(node).name} "
                        f"would have the same mode {link.mode}, remote address {link.peer_of(node).public} and key "
                        f"{link.key} ({other.key_source}, {link.key_source}), which the kernel cannot tell apart; "
                        "give the links different keys (key in gre_mesh_links)"
                    )


def twin_groups(node: Node, links: list[Link]) -> list[list[Link]]:
    """The node's links that share mode and remote address, in groups of two or more."""
    groups: dict[tuple[str, t.Any], list[Link]] = {}
    for link in links:
        groups.setdefault((link.mode, link.peer_of(node).public_text), []).append(link)
    return [group for group in groups.values() if len(group) > 1]


def check_mtus(links: list[Link], problems: Problems) -> None:
    """The gre_tunnel module's MTU rules (they depend on mode, key and inner IPv6), before any host changes.

    They apply to the MTUs computed from the underlay too: a tunnel over a small underlay may be
    too small for IPv6 inside.
    """
    for link in links:
        if link.mtu is None:
            continue
        addresses = [ipaddress.ip_interface(address) for address in link.addresses["low"]]
        try:
            parse_mtu("link", link.mtu, addresses, link.mode, keyed=link.key is not None)
        except TunnelError as exc:
            problem = exc.problem
            hint = (
                "; raise the underlay MTU, or give the link an mtu of its own (gre_mesh_links)"
                if link.mtu_source.startswith(COMPUTED)
                else ""
            )
            problems.add(f"{link.label}: {link.mtu_source}: {problem}{hint}")
        else:
            too_large = encap_limit_problem(link) or underlay_fit_problem(link)
            if too_large is not None:
                problems.add(too_large)


def encap_limit_problem(link: Link) -> str | None:
    """A given MTU that the kernel takes for the mode and key, but not with the link's encapsulation in UDP too."""
    keyed = link.key is not None
    largest = max_tunnel_mtu(link.mode, keyed, link.encap)
    if link.encap is None or link.mtu is None or link.mtu <= largest:
        return None
    return (
        f"{link.label}: {link.mtu_source}: {link.mtu} is above {largest}, the largest the kernel allows for "
        f"{link.mode} {'with' if keyed else 'without'} a key in UDP with {link.encap}"
    )


def tunnel_of(
    node: Node, link: Link, names: dict[str, str], local: dict[int, str]
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """This node's tunnel of the link, in gre_tunnel's shape, and what the role needs to ping its peer.

    The tunnel is named after the peer (``names``), unless the node is an external peer that names
    its own interface to this peer (``interfaces``).
    """
    peer = link.peer_of(node)
    mine, theirs = ("low", "high") if node is link.low else ("high", "low")
    tunnel: dict[str, t.Any] = {
        "name": node.interfaces.get(peer.name, names[peer.name]),
        "mode": link.mode,
        "local": local[family(link.mode)],
        "remote": peer.public_text,
        "ttl": link.ttl,
    }
    if link.key is not None:
        tunnel["key"] = str(link.key)
    if link.mtu is not None:
        tunnel["mtu"] = link.mtu
    if link.encap is not None:
        tunnel["encap"] = encap_option(link)
    tunnel["addresses"] = list(link.addresses[mine])
    tunnel["state"] = "present"
    peer_info = {
        "interface": tunnel["name"],
        "peer": peer.name,
        "external": peer.external,
        "addresses": [address.split("/", 1)[0] for address in link.addresses[theirs]],
    }
    return tunnel, peer_info


def node_plan(node: Node | None, mesh: Mesh) -> dict[str, list[t.Any]]:
    """A node's tunnels, sorted by name, its peers' inner addresses in the same order, and what it forwards.

    Each tunnel holds its ``routes`` (``{prefix, via}``, gre_tunnel's option): the networks behind
    other nodes whose next hop is this tunnel's peer, to that hop's inner address; an empty list when
    none, so gre_tunnel removes the routes it made for networks no longer planned. ``forward`` lists
    the address families (4, 6) the node forwards for others. ``ipsec``, only where a link of the
    node has IPsec, lists the IKE connections the role configures for them (ipsec.ipsec_entry).
    ``encap_peers``, only where a link of the node carries GRE in UDP, lists per UDP port the peers
    whose GRE in UDP its firewall lets in (encap.encap_peers); the tunnels of those links have ``encap``.
    """
    if node is None:
        return empty_plan()
    local = {version: str(address) for version, address in node.local.items()}
    pairs = sorted(
        (tunnel_of(node, link, mesh.names, local) for link in mesh.adjacency.get(node.name, [])),
        key=lambda pair: pair[0]["name"],
    )
    by_peer: dict[str, list[dict[str, str]]] = {}
    for route in mesh.routes.get(node.name, []):
        entry: dict[str, t.Any] = {"prefix": route.prefix_text, "via": route.via}
        if route.metric is not None:
            entry["metric"] = route.metric
        by_peer.setdefault(route.peer, []).append(entry)
    for tunnel, peer in pairs:
        tunnel["routes"] = by_peer.get(peer["peer"], [])
    tunnels = [tunnel for tunnel, _peer in pairs]
    forward = list(mesh.forward.get(node.name, []))
    plan: dict[str, list[t.Any]] = {
        "tunnels": tunnels,
        "peers": [peer for _tunnel, peer in pairs],
        "forward": forward,
        **tunnel_lists(tunnels, forward),
    }
    # The IKE connections of the links with IPsec, only where there are any.
    by_peer_name = {peer["peer"]: tunnel for tunnel, peer in pairs}
    ipsec = [
        ipsec_entry(node, link, by_peer_name[link.peer_of(node).name])
        for link in mesh.adjacency.get(node.name, [])
        if link.ipsec
    ]
    if ipsec:
        plan["ipsec"] = sorted(ipsec, key=lambda entry: entry["name"])
    udp = encap_peers(node, mesh.adjacency.get(node.name, []))
    if udp:
        plan["encap_peers"] = udp
    return plan


def empty_plan() -> dict[str, list[t.Any]]:
    """The plan of a host without links."""
    return {"tunnels": [], "peers": [], "forward": [], **tunnel_lists([], [])}


def tunnel_lists(tunnels: list[dict[str, t.Any]], forward: list[int]) -> dict[str, list[t.Any]]:
    """What the role's tasks take from a node's tunnels, each list made once here.

    In a play, every value read from a variable costs ansible-core 2.19 some 10 us: a task that
    derived these lists from a mesh node's 149 tunnels in Jinja paid 15 ms a host for each.
    ``modes``: the tunnels' modes, each once; ``in_udp``: the names of the tunnels in GRE in UDP;
    ``gre_peers``: the remote addresses of the others, each once, in tunnel order (whose GRE the
    firewall lets in); ``routed``: the tunnels that carry routed traffic (every tunnel of a node
    that forwards, else those with routes); ``routed_networks``: for each tunnel with routes,
    ``{interface, networks}`` with the routes' prefixes.
    """
    with_routes = [tunnel for tunnel in tunnels if tunnel.get("routes")]
    return {
        "modes": sorted({tunnel["mode"] for tunnel in tunnels}),
        "in_udp": [tunnel["name"] for tunnel in tunnels if tunnel.get("encap")],
        "gre_peers": list(dict.fromkeys(tunnel["remote"] for tunnel in tunnels if "encap" not in tunnel)),
        "routed": [tunnel["name"] for tunnel in (tunnels if forward else with_routes)],
        "routed_networks": [
            {"interface": tunnel["name"], "networks": [route["prefix"] for route in tunnel["routes"]]}
            for tunnel in with_routes
        ],
    }


def external_plans(mesh: Mesh) -> dict[str, dict[str, t.Any]]:
    """What the user configures on each external peer: its address, its tunnels and the iproute2 commands for them.

    The address tells apart the peers, whose commands may look alike (``ip link add name gre-hosta ...``).
    """
    check_own_interfaces(mesh)
    result = {}
    for name in sorted(mesh.externals):
        if name in mesh.adjacency:
            node = mesh.externals[name]
            own = node_plan(node, mesh)
            tunnels = own["tunnels"]
            result[name] = {
                "address": node.public_text,
                "tunnels": tunnels,
                "forward": own["forward"],
                "commands": fou_commands(tunnels)
                + [line for tunnel in tunnels for line in ip_commands(tunnel)]
                + route_commands(tunnels, own["forward"]),
            }
    return result


def check_own_interfaces(mesh: Mesh) -> None:
    """The interface names external peers give themselves (``interfaces``), checked against their links.

    Each names a peer it has a link with, and differs from the names of its other tunnels. Raises
    MeshError with every problem of every external peer.
    """
    problems = Problems()
    for name in sorted(mesh.externals):
        node = mesh.externals[name]
        if not node.interfaces:
            continue
        linked = sorted(link.peer_of(node).name for link in mesh.adjacency.get(name, []))
        variable = f"{node.origin}.interfaces"
        for host in sorted(set(node.interfaces) - set(linked)):
            problems.add(
                f"{variable}: {name} has no link with {host!r}; the keys are the inventory hosts it links to "
                f"({', '.join(linked) or 'none yet'})"
            )
        owners: dict[str, str] = {}
        for peer in sorted(linked, key=lambda peer: peer not in node.interfaces):  # its own names first
            interface = node.interfaces.get(peer, mesh.names[peer])
            first = owners.setdefault(interface, peer)
            if first != peer:
                problems.add(
                    f"{variable}.{first}: {interface!r} is the name of its tunnel to {peer} too; choose another name"
                )
    problems.raise_any()


FORWARDING_SYSCTL = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}


def route_commands(tunnels: list[dict[str, t.Any]], forward: list[int]) -> list[str]:
    """The commands that give an external peer its tunnels' routes (after its tunnels exist) and its forwarding."""
    lines = [
        f"ip route replace {route['prefix']} via {route['via']} dev {tunnel['name']}"
        + (f" metric {route['metric']}" if "metric" in route else "")
        for tunnel in tunnels
        for route in tunnel["routes"]
    ]
    return lines + [f"sysctl -w {FORWARDING_SYSCTL[version]}=1" for version in forward]


def ip_commands(tunnel: dict[str, t.Any]) -> list[str]:
    """The commands that make an external peer's tunnel: those gre_tunnel runs to create it, without its mark.

    The peer is not this collection's to manage, so its interface gets no managed alias.
    """
    created = wanted_tunnel(with_defaults(tunnel))
    links, addresses = creation_lines(t.cast(Tunnel, created), alias=None)
    return [f"ip {line}" for line in links + addresses]
