# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the data model of the inventory planner (gre_plan filter).

The planner turns the inventory (hosts, groups, and the ``gre_mesh_*`` settings) into the tunnels
of every host. It is pure Python: no I/O, no Ansible objects; the filter adapts Ansible's
``hostvars`` and ``groups`` to plain mappings before calling it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import DEFAULT_ENCAP_PORT

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Defaults of the settings; the role's defaults/main.yml must say the same.
DEFAULT_POOL = "10.0.0.0/16"
DEFAULT_PREFIX = 30
DEFAULT_PREFIX6 = 127
DEFAULT_MODE = "gre"
DEFAULT_TTL = 255

# The names Ansible takes for its control node (its implicit localhost): never a tunnel's end.
LOCALHOST_NAMES = ("localhost", "127.0.0.1", "::1")

# Every problem found in one phase is reported together, up to this many lines.
MAX_PROBLEMS = 20


class MeshError(Exception):
    """Bad input to the planner. The message names the host (or link) and the variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS} more problems")
        super().__init__("\n".join(shown))

    @property
    def msg(self) -> str:
        return str(self)


class VariableError(Exception):
    """A variable of a host could not be read (its template failed); raised by the filter's hostvars adapter."""

    def __init__(self, host: str, variable: str, detail: str) -> None:
        super().__init__(f"host {host}: {variable}: cannot be evaluated: {detail}")
        self.host = host
        self.variable = variable


class Problems:
    """Collects the problems of one planning phase, then raises them together."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, problem: str) -> None:
        self.items.append(problem)

    def raise_any(self) -> None:
        if self.items:
            raise MeshError(self.items)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The topology-wide settings (the role's ``gre_mesh_*`` variables), checked."""

    pool: ipaddress.IPv4Network | None
    prefix: int
    pool6: ipaddress.IPv6Network | None
    prefix6: int
    mode: str
    ttl: int
    key: int | None
    mtu: int | None
    ipsec: bool = False
    # GRE in UDP: none, fou or gue, and the UDP port both ends receive it on.
    encap: str = "none"
    encap_port: int = DEFAULT_ENCAP_PORT


@dataclasses.dataclass
class LinkSpec:
    """One link of the topology before addresses are assigned.

    ``ends`` is the two node names in sorted order. ``origin`` says where the link comes from, for
    error messages (``gre_mesh_links[3]``, ``gre_mesh_full_mesh group 'core'``…). ``overrides``
    holds the checked per-link settings of an explicit link, and ``override_origin`` the variable
    they come from.
    """

    ends: tuple[str, str]
    origin: str
    overrides: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    override_origin: str | None = None


@dataclasses.dataclass
class Node:
    """A host of the inventory, or an unmanaged external peer, that has links.

    ``public`` is the underlay address peers send to, ``local`` the one this node sends from:
    ``local`` maps an address family (4 or 6) to the address, filled only for the nodes whose
    tunnels are planned (and for external peers). ``underlay_mtu`` maps a family to the MTU of the
    node's underlay, when known. The ``*_source`` fields name the variable a value came from, for
    error messages. An external peer has an ``origin`` (``gre_mesh_external_peers[3]``) and may
    name its own interfaces: ``interfaces`` maps a peer to the name of its tunnel there. ``networks``
    are the networks behind the node (``gre_mesh_networks``, ``networks`` of an external peer), read
    from ``networks_source``.
    """

    name: str
    external: bool
    node_id: int
    id_source: str
    public: IPAddress
    public_source: str
    short_name: str
    local: dict[int, IPAddress] = dataclasses.field(default_factory=dict)
    local_source: dict[int, str] = dataclasses.field(default_factory=dict)
    public_text: str = ""
    underlay_mtu: dict[int, int] = dataclasses.field(default_factory=dict)
    underlay_mtu_source: dict[int, str] = dataclasses.field(default_factory=dict)
    origin: str = ""
    interfaces: dict[str, str] = dataclasses.field(default_factory=dict)
    networks: list[IPNetwork] = dataclasses.field(default_factory=list)
    networks_source: str = ""

    def __post_init__(self) -> None:
        if not self.public_text:
            self.public_text = str(self.public)

    @property
    def label(self) -> str:
        return f"external peer {self.name}" if self.external else f"host {self.name}"


class Block(t.NamedTuple):
    """An inner subnet as numbers, cheaper than ipaddress's objects for the many links of a large mesh."""

    version: int
    start: int
    prefixlen: int

    @property
    def end(self) -> int:
        return self.start + (1 << ((32 if self.version == 4 else 128) - self.prefixlen)) - 1

    def __str__(self) -> str:
        network_type = ipaddress.IPv4Network if self.version == 4 else ipaddress.IPv6Network
        return str(network_type((self.start, self.prefixlen)))


@dataclasses.dataclass
class Link:
    """A link with everything both of its tunnels need. ``low`` is the end with the lower id."""

    spec: LinkSpec
    low: Node
    high: Node
    index: int
    mode: str
    ttl: int
    key: int | None
    key_source: str
    mtu: int | None
    mtu_source: str
    # GRE over IPsec (ESP in transport mode, keyed by IKEv2) between the two underlay addresses.
    ipsec: bool = False
    # GRE in UDP (the kernel's FOU or GUE, ``encap``), to UDP port ``encap_port`` on both ends; None: plain GRE.
    encap: str | None = None
    encap_port: int | None = None
    # The inner subnets (IPv4 first), and the inner addresses (address/prefix) of the low and the high end.
    blocks: list[Block] = dataclasses.field(default_factory=list)
    addresses: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"link {self.spec.ends[0]} <-> {self.spec.ends[1]} ({self.spec.origin})"

    def peer_of(self, node: Node) -> Node:
        return self.high if node is self.low else self.low
