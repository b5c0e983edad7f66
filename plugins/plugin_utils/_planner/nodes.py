# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the planner's nodes, their ids, underlay addresses and short names.

A node is an inventory host with links, or an unmanaged external peer. Each node has:

* an id, ``gre_mesh_id`` when pinned, else derived from the name alone (see ``derive_id``), so
  that adding or removing other nodes never changes it;
* a public address, the one its peers send to: ``gre_mesh_public``, else ``ansible_host`` (or the
  inventory name) when that is an IP address;
* a local address, the one it sends from, needed only for the nodes whose tunnels are planned:
  ``gre_mesh_local``, else the default address of the family from the host's facts;
* a short name for its peers' interface names: ``gre_mesh_short_name``, else its name;
* an underlay MTU, when known (see _mesh_mtu): ``gre_mesh_underlay_mtu``, else the MTU of the
  default interface from facts; ``mtu`` for an external peer.

Underlay addresses are IP addresses, never names (nothing is resolved), and never addresses that
cannot be a tunnel's end (``read_address``): loopback, unspecified, multicast, broadcast, 240/4,
IPv4-mapped, IPv6 link-local. An IPv4 link-local address is taken where given explicitly (it works
on one segment) but never from ``ansible_host``, where it is a management address peers do not
route to.
"""

from __future__ import annotations

import collections.abc as c
import ipaddress
import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MAX_NAME_LENGTH
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import (
    forbidden_in_name,
    name_bytes,
    tunnel_name_problem,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import (
    LOCALHOST_NAMES,
    IPAddress,
    IPNetwork,
    Node,
    Problems,
    VariableError,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.routes import NETWORKS_VARIABLE
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.settings import (
    Checker,
    as_int,
    is_unset,
    parse_networks,
)

IFNAME_PREFIX = "gre-"
TRAILING_NUMBER = re.compile(r"([0-9]+)$")
EXTERNAL_KEYS = ("name", "address", "local", "id", "short_name", "mtu", "interfaces", "networks")
FACTS = {4: "default_ipv4", 6: "default_ipv6"}
# Text that looks like a DNS name (labels, at least one letter): given for an address, it is not resolved.
DNS_NAME = re.compile(r"^(?=[^/]*[A-Za-z])[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")
RESERVED_IPV4 = ipaddress.IPv4Network("240.0.0.0/4")
BROADCAST_IPV4 = ipaddress.IPv4Address("255.255.255.255")


def derive_id(name: str) -> int | None:
    """The id a name implies: its trailing counter, or None when it has none.

    The counter is the number the name ends with (``node7`` → 7, ``web-012`` → 12), else the place in
    the alphabet, from 0, of the letter it ends with (``hosta`` → 0, ``hostb`` → 1). Only the first
    label of a DNS name counts (``web1.example.com`` → 1); an IP address counts as a whole.
    """
    try:
        ipaddress.ip_address(name)
        base = name
    except ValueError:
        base = name.split(".", 1)[0]
    match = TRAILING_NUMBER.search(base)
    if match:
        return int(match.group(1))
    last = base[-1:].lower()
    if last.isascii() and last.isalpha():
        return ord(last) - ord("a")
    return None


def interface_name(node: Node) -> str:
    """The name of the tunnel interface that leads to this node, on each of its peers.

    ``gre-<short name>`` when that fits in 15 bytes of UTF-8 (the kernel counts bytes: ``ü`` is
    two); else the short name cut, never inside a character, and followed by the node's id, which
    tells apart long names that begin alike (``gre-customer-17``, ``gre-münchen-1``). It depends on
    this node alone, so it never changes when other nodes come or go.
    """
    short = "".join(map(name_character, node.short_name))
    name = IFNAME_PREFIX + short
    if name_bytes(name) <= MAX_NAME_LENGTH:
        return name
    suffix = f"-{node.node_id}"
    room = MAX_NAME_LENGTH - name_bytes(IFNAME_PREFIX) - len(suffix)
    stem = cut_to_bytes(short, room).rstrip("-_.") if room > 0 else ""
    return cut_to_bytes(IFNAME_PREFIX + stem + suffix, MAX_NAME_LENGTH)


def cut_to_bytes(text: str, limit: int) -> str:
    """The longest start of ``text`` whose UTF-8 has at most ``limit`` bytes: whole characters only."""
    used = 0
    for position, character in enumerate(text):
        used += name_bytes(character)
        if used > limit:
            return text[:position]
    return text


def name_character(character: str) -> str:
    """A character of a short name as an interface name holds it.

    '-' for one that no interface name may hold (forbidden_in_name) or that no UTF-8 can encode (a lone surrogate).
    """
    return "-" if forbidden_in_name(character) or "\ud800" <= character <= "\udfff" else character


def planned_name_problem(node: Node, variable: str) -> str | None:
    """The tunnel name the node's peers would get, checked with gre_tunnel's rule; None when fine."""
    name = interface_name(node)
    problem = tunnel_name_problem(name)
    if problem is None:
        return None
    return f"{variable}: {node.short_name!r} gives its peers the interface name {name!r}, which {problem}"


FAILED = object()


def read_var(host_vars: t.Mapping[str, t.Any], name: str, problems: Problems) -> t.Any:
    """A variable of a host, None when unset, FAILED when its template failed (the problem is recorded)."""
    try:
        return host_vars.get(name)
    except VariableError as exc:
        problems.add(str(exc))
        return FAILED


def read_address(value: t.Any) -> tuple[IPAddress | None, str | None]:
    """An underlay address given as text: (the address, when the text is one, and why it cannot be a tunnel's end).

    The problem, None when there is none, starts with the value as given.
    """
    if not isinstance(value, str):
        return None, f"{value!r} is not an IP address"
    text = value.strip()
    try:
        address: IPAddress = ipaddress.ip_address(text)
    except ValueError:
        return None, f"{value!r} {not_an_address(text)}"
    problem = endpoint_problem(address)
    zone = getattr(address, "scope_id", None)  # Python 3.9 and later read `fd00::1%eth0`
    if problem is None and zone:
        problem = f"has a zone index (%{zone}), which a tunnel's end cannot carry; give the address alone"
    return address, None if problem is None else f"{value!r} {problem}"


def not_an_address(text: str) -> str:
    """Why text that ipaddress refuses is not an address: a prefix length, a name, or anything else."""
    if "/" in text:
        try:
            interface = ipaddress.ip_interface(text)
        except ValueError:
            return "is not an IP address"
        return f"is an address with a prefix length; give the address alone: {interface.ip}"
    if DNS_NAME.match(text):
        return "is a name, and names are not resolved (the plan depends on the inventory alone); give an IP address"
    return "is not an IP address"


def endpoint_problem(address: IPAddress) -> str | None:
    """Why an address cannot be the end of a tunnel over the underlay, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"is an IPv4-mapped IPv6 address; give the IPv4 address {address.ipv4_mapped} (modes gre, gretap)"
        if address.is_link_local:
            return (
                "is an IPv6 link-local address, which needs an interface (a zone) that a tunnel's end cannot carry; "
                "give a global or unique-local address"
            )
    if address.is_loopback:
        return "is a loopback address, which never leaves its host: it cannot be a GRE endpoint"
    if address.is_unspecified:
        return "is the unspecified address, which cannot be a GRE endpoint"
    if address.is_multicast:
        return "is a multicast address, which cannot be a GRE endpoint"
    if address == BROADCAST_IPV4:
        return "is the broadcast address, which cannot be a GRE endpoint"
    if isinstance(address, ipaddress.IPv4Address) and address in RESERVED_IPV4:
        return "is in 240.0.0.0/4, reserved and not routed: it cannot be a GRE endpoint"
    return None


def parse_address(value: t.Any) -> IPAddress | None:
    """An address that can be a tunnel's end, or None."""
    address, problem = read_address(value)
    return address if problem is None else None


def host_node(name: str, host_vars: t.Mapping[str, t.Any], problems: Problems) -> Node | None:
    """The node of an inventory host, from its variables; None when a variable is wrong."""
    before = len(problems.items)
    node_id, id_source = host_id(name, host_vars, problems)
    public, public_source = host_public(name, host_vars, problems)
    short_name = read_var(host_vars, "gre_mesh_short_name", problems)
    if is_unset(short_name):
        short_name = name
    elif short_name is not FAILED and not isinstance(short_name, str):
        problems.add(f"host {name}: gre_mesh_short_name: {short_name!r} is not a string")
    networks_value = read_var(host_vars, NETWORKS_VARIABLE, problems)
    networks = (
        []
        if networks_value is FAILED
        else parse_networks(f"host {name}: {NETWORKS_VARIABLE}", networks_value, problems)
    )
    if len(problems.items) > before:
        return None
    node = Node(
        name=name,
        external=False,
        node_id=t.cast(int, node_id),
        id_source=id_source,
        public=t.cast(IPAddress, public),
        public_source=public_source,
        short_name=str(short_name).strip(),
        networks=networks,
        networks_source=NETWORKS_VARIABLE,
    )
    problem = planned_name_problem(node, f"host {name}: gre_mesh_short_name")
    if problem is not None:
        problems.add(problem)
        return None
    return node


def host_id(name: str, host_vars: t.Mapping[str, t.Any], problems: Problems) -> tuple[int | None, str]:
    pinned = read_var(host_vars, "gre_mesh_id", problems)
    if pinned is FAILED:
        return None, "gre_mesh_id"
    if not is_unset(pinned):
        node_id = as_int(pinned)
        if node_id is None or node_id < 0:
            problems.add(f"host {name}: gre_mesh_id: {pinned!r} is not a whole number of 0 or more")
            return None, "gre_mesh_id"
        return node_id, "gre_mesh_id"
    node_id = derive_id(name)
    if node_id is None:
        problems.add(
            f"host {name}: gre_mesh_id: not set, and the name ends in neither a number nor a letter to derive it from; "
            "set gre_mesh_id"
        )
    return node_id, "derived from the name"


def host_public(name: str, host_vars: t.Mapping[str, t.Any], problems: Problems) -> tuple[IPAddress | None, str]:
    value = read_var(host_vars, "gre_mesh_public", problems)
    if value is FAILED:
        return None, "gre_mesh_public"
    if not is_unset(value):
        address, problem = read_address(value)
        if problem is not None:
            problems.add(f"host {name}: gre_mesh_public: {problem}")
            return None, "gre_mesh_public"
        return address, "gre_mesh_public"
    fallback = read_var(host_vars, "ansible_host", problems)
    if fallback is FAILED:
        return None, "ansible_host"
    source = "ansible_host"
    if is_unset(fallback):
        fallback, source = name, "the inventory name"
    address, problem = read_address(fallback)
    if problem is None and address is not None and not address.is_link_local:
        return address, source
    problems.add(f"host {name}: gre_mesh_public: not set, and {fallback_problem(name, host_vars, source, fallback)}")
    return None, source


def fallback_problem(name: str, host_vars: t.Mapping[str, t.Any], source: str, value: t.Any) -> str:
    """Why ``ansible_host`` (or the inventory name) gives no public address, and what to do instead."""
    address, problem = read_address(value)
    control = control_node(name, host_vars, source, address)
    if control is not None:
        return (
            f"{control}; a loopback address cannot be a GRE endpoint: link the managed host by its inventory name "
            f"instead, or, if {name} really is a tunnel end, set gre_mesh_public to its real underlay address"
        )
    fix = "set gre_mesh_public to the address its peers send to"
    if address is None:
        unresolved = " (names are not resolved)" if source == "ansible_host" and DNS_NAME.match(str(value)) else ""
        return f"{source} {value!r} is not an IP address to take it from{unresolved}; {fix}"
    if address.is_link_local:
        return (
            f"{source} {value!r} is a link-local address, a management address that peers do not route to; set "
            "gre_mesh_public to the underlay address its peers send to"
        )
    return f"{source} {problem}; {fix}"


def control_node(name: str, host_vars: t.Mapping[str, t.Any], source: str, address: IPAddress | None) -> str | None:
    """How a host without a public address shows itself to be Ansible's control node, or to be reached on it."""
    if name in LOCALHOST_NAMES:
        return f"{name} is Ansible's control node"
    if read_var(host_vars, "ansible_connection", Problems()) == "local":
        return f"{name} is Ansible's control node (ansible_connection: local)"
    if address is not None and address.is_loopback:
        return (
            f"{source} {str(address)!r} is a loopback address (Ansible's control node, or a port forwarded to {name})"
        )
    return None


def host_local(node: Node, host_vars: t.Mapping[str, t.Any], version: int) -> tuple[IPAddress | None, str, str | None]:
    """The address this host sends from for tunnels of one IP version: (address, source, problem)."""
    local_problems = Problems()
    value = read_var(host_vars, "gre_mesh_local", local_problems)
    if local_problems.items:
        return None, "gre_mesh_local", local_problems.items[0]
    if not is_unset(value):
        address, problem = read_address(value)
        if problem is not None:
            return None, "gre_mesh_local", f"host {node.name}: gre_mesh_local: {problem}"
        return address, "gre_mesh_local", None
    fact = fact_address(host_vars, FACTS[version], local_problems)
    source = f"ansible_{FACTS[version]}.address"
    if is_unset(fact):
        return (
            None,
            source,
            f"host {node.name}: gre_mesh_local: not set, and there are no facts (ansible_{FACTS[version]}) to take it "
            f"from; gather facts on {node.name} or set gre_mesh_local",
        )
    address, problem = read_address(fact)
    if problem is not None:
        fix = "set gre_mesh_local to the address it sends from"
        return None, source, f"host {node.name}: gre_mesh_local: not set, and {source} {problem}; {fix}"
    return address, source, None


def fact_address(host_vars: t.Mapping[str, t.Any], fact: str, problems: Problems) -> t.Any:
    """``ansible_facts[fact].address``, or the injected ``ansible_<fact>.address``, as found (None when missing)."""
    facts = read_var(host_vars, "ansible_facts", problems)
    found = facts.get(fact) if isinstance(facts, c.Mapping) else None
    if not isinstance(found, c.Mapping):
        found = read_var(host_vars, f"ansible_{fact}", problems)
    if isinstance(found, c.Mapping):
        return found.get("address")
    return None


def underlay_subnets(
    host_vars_of: t.Mapping[str, t.Mapping[str, t.Any]], nodes: t.Iterable[Node]
) -> list[tuple[IPNetwork, str]]:
    """The underlay subnets the facts of the hosts tell (their default route's interface), with whose each is.

    The facts ``default_ipv4`` and ``default_ipv6`` (of the setup module, or of gre_host_facts where
    the role discovers the local address) give the address and prefix length of the interface of the
    default route. The subnets of other interfaces, and of hosts without facts, are not known.
    """
    result: list[tuple[IPNetwork, str]] = []
    for node in nodes:
        if node.external:
            continue
        ignored = Problems()
        facts = read_var(host_vars_of[node.name], "ansible_facts", ignored)
        for version, fact in sorted(FACTS.items()):
            found = facts.get(fact) if isinstance(facts, c.Mapping) else None
            if not isinstance(found, c.Mapping):
                continue
            length = found.get("prefix")
            if is_unset(length):
                length = found.get("netmask")
            try:
                subnet = ipaddress.ip_interface(f"{str(found.get('address')).strip()}/{str(length).strip()}").network
            except ValueError:
                continue
            if subnet.version == version and subnet.prefixlen > 0:
                result.append((subnet, f"the underlay subnet of host {node.name} (ansible_facts.{fact})"))
    return result


def external_nodes(
    value: t.Any, is_host: t.Callable[[str], bool], problems: Problems
) -> tuple[dict[str, Node], set[str]]:
    """The external peers (gre_mesh_external_peers) by name, and every name given (of the wrong ones too).

    Links to an external peer with a problem are not reported as links to an unknown node again.
    """
    result: dict[str, Node] = {}
    names: set[str] = set()
    if value is None:
        return result, names
    if not isinstance(value, c.Sequence) or isinstance(value, (str, bytes)):
        problems.add("gre_mesh_external_peers: must be a list of dicts, each with name and address")
        return result, names
    for number, entry in enumerate(value):
        if isinstance(entry, c.Mapping) and isinstance(entry.get("name"), str):
            names.add(entry["name"].strip())
        node = external_node(f"gre_mesh_external_peers[{number}]", entry, is_host, problems)
        if node is None:
            continue
        if node.name in result:
            problems.add(f"gre_mesh_external_peers[{number}]: name {node.name!r} is used by an earlier external peer")
            continue
        result[node.name] = node
    return result, names


def external_node(origin: str, entry: t.Any, is_host: t.Callable[[str], bool], problems: Problems) -> Node | None:
    if not isinstance(entry, c.Mapping):
        problems.add(f"{origin}: must be a dict with name and address, not {entry!r}")
        return None
    unknown = sorted(str(key) for key in entry if key not in EXTERNAL_KEYS)
    if unknown:
        problems.add(f"{origin}: unknown key {unknown[0]!r}; an external peer has {', '.join(EXTERNAL_KEYS)}")
        return None
    before = len(problems.items)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add(f"{origin}.name: must be a non-empty string")
        return None
    name = name.strip()
    if is_host(name):
        problems.add(f"{origin}.name: {name!r} is a host of the inventory; an external peer needs a name of its own")
    address = external_address(f"{origin}.address", entry.get("address"), problems)
    local = address
    if not is_unset(entry.get("local")):
        local = external_address(f"{origin}.local", entry.get("local"), problems)
    if is_unset(entry.get("id")):
        node_id = derive_id(name)
        id_source = "derived from the name"
        if node_id is None:
            problems.add(f"{origin}.id: not set, and the name ends in neither a number nor a letter to derive it from")
    else:
        node_id = as_int(entry.get("id"))
        id_source = f"{origin}.id"
        if node_id is None or node_id < 0:
            problems.add(f"{origin}.id: {entry.get('id')!r} is not a whole number of 0 or more")
    short_name = entry.get("short_name")
    if is_unset(short_name):
        short_name = name
    elif not isinstance(short_name, str):
        problems.add(f"{origin}.short_name: {short_name!r} is not a string")
    mtu = Checker(problems).mtu(f"{origin}.mtu", entry.get("mtu"))
    interfaces = own_interfaces(f"{origin}.interfaces", entry.get("interfaces"), problems)
    networks = parse_networks(f"{origin}.networks", entry.get("networks"), problems)
    if len(problems.items) > before:
        return None
    address = t.cast(IPAddress, address)
    local = t.cast(IPAddress, local)
    local_source = f"{origin}.local" if not is_unset(entry.get("local")) else f"{origin}.address"
    node = Node(
        name=name,
        external=True,
        node_id=t.cast(int, node_id),
        id_source=id_source,
        public=address,
        public_source=f"{origin}.address",
        short_name=str(short_name).strip(),
        local={local.version: local},
        local_source={local.version: local_source},
        underlay_mtu={} if mtu is None else {local.version: mtu},
        underlay_mtu_source={} if mtu is None else {local.version: f"{origin}.mtu"},
        origin=origin,
        interfaces=interfaces,
        networks=networks,
        networks_source=f"{origin}.networks",
    )
    problem = planned_name_problem(node, f"{origin}.short_name")
    if problem is not None:
        problems.add(problem)
        return None
    return node


def external_address(variable: str, value: t.Any, problems: Problems) -> IPAddress | None:
    """An external peer's address or local address, or None (the problem recorded)."""
    if is_unset(value):
        problems.add(f"{variable}: not set; give the peer's underlay IP address")
        return None
    address, problem = read_address(value)
    if problem is not None:
        problems.add(f"{variable}: {problem}")
        return None
    return address


def own_interfaces(variable: str, value: t.Any, problems: Problems) -> dict[str, str]:
    """An external peer's ``interfaces``: for an inventory host it links to, the name of its interface there.

    Whether it links to each of those hosts, and whether the names clash with those of its other
    tunnels, only its links tell (see _mesh_plan.check_own_interfaces).
    """
    if is_unset(value):
        return {}
    if not isinstance(value, c.Mapping):
        problems.add(
            f"{variable}: must be a dict such as {{hosta: gre1}}: for an inventory host the peer links to, the name "
            f"of the peer's interface to it; not {value!r}"
        )
        return {}
    result: dict[str, str] = {}
    owners: dict[str, str] = {}
    for host, name in value.items():
        if not isinstance(host, str) or not host:
            problems.add(f"{variable}: {host!r} is not an inventory host name")
            continue
        problem = tunnel_name_problem(name) if isinstance(name, str) else "is not an interface name"
        if problem is not None:
            problems.add(f"{variable}.{host}: {name!r} {problem}")
            continue
        first = owners.setdefault(name, host)
        if first != host:
            problems.add(
                f"{variable}: {first} and {host} both get the interface name {name!r}; each tunnel of the peer needs "
                "a name of its own"
            )
            continue
        result[host] = name
    return result
