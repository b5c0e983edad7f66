# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: the tunnel data model shared by the gre_tunnel helpers."""

from __future__ import annotations

import dataclasses
import typing as t

TOS_INHERIT = "inherit"


@dataclasses.dataclass(frozen=True)
class Encap:
    """A tunnel's GRE in UDP (``encap``): the kernel's FOU or GUE encapsulation of its packets.

    ``dport``: the UDP port of the other end (which receives on a FOU port of that number and type);
    ``sport`` 0: the kernel picks a source port per flow (``encap-sport auto``).
    """

    type: str
    dport: int
    sport: int = 0
    csum: bool = False
    remcsum: bool = False

    def as_dict(self) -> dict[str, t.Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True, order=True)
class FouPort:
    """A FOU receive port of the kernel (IPv4): ``type`` fou takes GRE off UDP (``ipproto 47``), gue GUE.

    ``type`` is ``other`` for a port of another configuration (another protocol, or bound to addresses).
    """

    port: int
    type: str

    def as_dict(self) -> dict[str, t.Any]:
        return {"port": self.port, "type": self.type}


@dataclasses.dataclass(frozen=True)
class Tunnel:
    """A GRE tunnel, as wanted by the user or as found in the kernel.

    Addresses are ``address/prefix`` strings in the form Python's ipaddress prints them, sorted.
    ``tos`` is ``inherit`` or two hex digits (``0x10``), as iproute2 prints it.
    ``pmtudisc`` is None for the IPv6 modes, which have no such setting.
    ``mtu`` is None when the user leaves the MTU to the kernel.
    """

    name: str
    mode: str
    remote: str
    local: str | None = None
    ttl: int = 255
    tos: str = "0x00"
    ikey: int | None = None
    okey: int | None = None
    pmtudisc: bool | None = True
    mtu: int | None = None
    dev: str | None = None
    addresses: tuple[str, ...] = ()
    up: bool = True
    encap: Encap | None = None

    def as_dict(self) -> dict[str, t.Any]:
        """The tunnel as the module returns it (field by field: dataclasses.asdict deep-copies each value, a third of
        the plan's time for 200 tunnels)."""
        result = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        result["addresses"] = list(self.addresses)
        result["encap"] = None if self.encap is None else self.encap.as_dict()
        result["state"] = "present"
        return result


@dataclasses.dataclass(frozen=True)
class Absent:
    """A tunnel the user wants gone."""

    name: str


Wanted = t.Union[Tunnel, Absent]


@dataclasses.dataclass(frozen=True)
class Interface:
    """Any network interface of the host, as the kernel reports it.

    ``kind`` is the link kind (``gre``, ``veth``…) or None for devices without one
    (physical NICs, loopback). ``tunnel`` is set for the four GRE kinds this module handles.
    ``link_local`` holds the IPv6 link-local addresses (the kernel adds them itself; they are not in
    ``tunnel.addresses``). ``address_order`` lists every address in the kernel's order, which puts
    an IPv4 subnet's primary address before its secondaries.
    """

    name: str
    kind: str | None
    managed: bool
    tunnel: Tunnel | None = None
    link_local: tuple[str, ...] = ()
    address_order: tuple[str, ...] = ()

    @property
    def is_gre(self) -> bool:
        return self.tunnel is not None


@dataclasses.dataclass(frozen=True)
class Route:
    """A route through a tunnel, as wanted or as found in the kernel's main table.

    ``prefix`` is a network as Python's ipaddress prints it; ``via`` the inner next hop (None: the
    tunnel itself); ``metric`` is always set (the family's default when the user gives none).
    ``ours``: made by this module (route protocol ROUTE_PROTOCOL); ``protocol`` as ip prints it.
    """

    prefix: str
    dev: str
    via: str | None = None
    metric: int = 0
    ours: bool = True
    protocol: str = ""

    @property
    def key(self) -> tuple[str, int]:
        """What the kernel tells routes of one table apart by (with ``ip route replace``)."""
        return (self.prefix, self.metric)

    def as_dict(self) -> dict[str, t.Any]:
        return {"prefix": self.prefix, "via": self.via, "metric": self.metric}


def absent_dict(name: str) -> dict[str, t.Any]:
    return {"name": name, "state": "absent"}
