# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection: the planner's nodes, their ids, underlay addresses and short names.

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
"""

from __future__ import annotations

import collections.abc as c
import ipaddress
import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._gre_desired import MAX_NAME_LENGTH
from ansible_collections.linuxnet.gre.plugins.module_utils._mesh_model import (
    IPAddress,
    Node,
    Problems,
    VariableError,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._mesh_settings import Checker, as_int, is_unset

IFNAME_PREFIX = "gre-"
# What the kernel refuses in interface names ('/', whitespace), what iproute2 reserves (':'), and
# '%', which `ip link add` would expand as a name template.
IFNAME_UNSAFE = re.compile(r"[/:%\s]")
TRAILING_NUMBER = re.compile(r"([0-9]+)$")
EXTERNAL_KEYS = ("name", "address", "local", "id", "short_name", "mtu")
FACTS = {4: "default_ipv4", 6: "default_ipv6"}


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

    ``gre-<short name>`` when that fits in 15 characters; else the short name cut and followed by
    the node's id, which tells apart long names that begin alike (``gre-customer-17``). It depends
    on this node alone, so it never changes when other nodes come or go.
    """
    short = IFNAME_UNSAFE.sub("-", node.short_name)
    name = IFNAME_PREFIX + short
    if len(name) <= MAX_NAME_LENGTH:
        return name
    suffix = f"-{node.node_id}"
    room = MAX_NAME_LENGTH - len(IFNAME_PREFIX) - len(suffix)
    stem = short[:room].rstrip("-_.") if room > 0 else ""
    return (IFNAME_PREFIX + stem + suffix)[:MAX_NAME_LENGTH]


FAILED = object()


def read_var(host_vars: t.Mapping[str, t.Any], name: str, problems: Problems) -> t.Any:
    """A variable of a host, None when unset, FAILED when its template failed (the problem is recorded)."""
    try:
        return host_vars.get(name)
    except VariableError as exc:
        problems.add(str(exc))
        return FAILED


def parse_address(value: t.Any) -> IPAddress | None:
    """A unicast IP address, or None."""
    if not isinstance(value, str):
        return None
    try:
        address: IPAddress = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if address.is_unspecified or address.is_multicast:
        return None
    return address


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
    if len(problems.items) > before:
        return None
    return Node(
        name=name,
        external=False,
        node_id=t.cast(int, node_id),
        id_source=id_source,
        public=t.cast(IPAddress, public),
        public_source=public_source,
        short_name=str(short_name).strip(),
    )


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
        address = parse_address(value)
        if address is None:
            problems.add(f"host {name}: gre_mesh_public: {value!r} is not a unicast IP address")
        return address, "gre_mesh_public"
    fallback = read_var(host_vars, "ansible_host", problems)
    if fallback is FAILED:
        return None, "ansible_host"
    source = "ansible_host"
    if is_unset(fallback):
        fallback, source = name, "the inventory name"
    address = parse_address(fallback)
    if address is None:
        problems.add(
            f"host {name}: gre_mesh_public: not set, and {source} {fallback!r} is not an IP address to take it from; "
            "set gre_mesh_public to the address its peers send to"
        )
    return address, source


def host_local(node: Node, host_vars: t.Mapping[str, t.Any], version: int) -> tuple[IPAddress | None, str, str | None]:
    """The address this host sends from for tunnels of one IP version: (address, source, problem)."""
    local_problems = Problems()
    value = read_var(host_vars, "gre_mesh_local", local_problems)
    if local_problems.items:
        return None, "gre_mesh_local", local_problems.items[0]
    if not is_unset(value):
        address = parse_address(value)
        if address is None:
            return None, "gre_mesh_local", f"host {node.name}: gre_mesh_local: {value!r} is not a unicast IP address"
        return address, "gre_mesh_local", None
    address = fact_address(host_vars, FACTS[version], local_problems)
    source = f"ansible_{FACTS[version]}.address"
    if address is None:
        return (
            None,
            source,
            f"host {node.name}: gre_mesh_local: not set, and there are no facts (ansible_{FACTS[version]}) to take it "
            f"from; gather facts on {node.name} or set gre_mesh_local",
        )
    return address, source, None


def fact_address(host_vars: t.Mapping[str, t.Any], fact: str, problems: Problems) -> IPAddress | None:
    """``ansible_facts[fact].address``, or the injected ``ansible_<fact>.address``."""
    facts = read_var(host_vars, "ansible_facts", problems)
    found = facts.get(fact) if isinstance(facts, c.Mapping) else None
    if not isinstance(found, c.Mapping):
        found = read_var(host_vars, f"ansible_{fact}", problems)
    if isinstance(found, c.Mapping):
        return parse_address(found.get("address"))
    return None


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
    address = parse_address(entry.get("address"))
    if address is None:
        problems.add(f"{origin}.address: {entry.get('address')!r} is not a unicast IP address")
    local = address
    if not is_unset(entry.get("local")):
        local = parse_address(entry.get("local"))
        if local is None:
            problems.add(f"{origin}.local: {entry.get('local')!r} is not a unicast IP address")
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
    if len(problems.items) > before:
        return None
    address = t.cast(IPAddress, address)
    local = t.cast(IPAddress, local)
    local_source = f"{origin}.local" if not is_unset(entry.get("local")) else f"{origin}.address"
    return Node(
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
    )
