# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: compares wanted tunnels with the kernel's and plans the ip commands.

Pure functions: the plan is the same in check mode and in a real run, so check mode predicts
``changed`` exactly.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    FALLBACK_DEVICES,
    FOU_MODULE,
    GRE_PROTOCOL,
    IPV6_MODES,
    KERNEL_MODULE,
    MANAGED_ALIAS,
    ROUTE_PROTOCOL,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import (
    TunnelError,
    raise_twin,
    sort_addresses,
    twin_key,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import (
    Absent,
    Encap,
    FouPort,
    Interface,
    Route,
    Tunnel,
    Wanted,
    absent_dict,
)

# Compared in this order; the first group goes to `ip link set … type MODE`.
TYPE_FIELDS = ("local", "remote", "ttl", "tos", "ikey", "okey", "pmtudisc", "dev", "encap")
FIELDS = ("mode", *TYPE_FIELDS, "mtu", "addresses", "up")


@dataclasses.dataclass(frozen=True)
class Change:
    name: str
    action: str  # create, update, recreate, delete or adopt
    fields: tuple[str, ...] = ()
    adopted: tuple[str, ...] = ()  # for adopt: the interfaces not made by this module that it replaces

    def as_dict(self) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {"name": self.name, "action": self.action, "fields": list(self.fields)}
        if self.adopted:
            result["adopted"] = list(self.adopted)
        return result


@dataclasses.dataclass
class Plan:
    changes: list[Change] = dataclasses.field(default_factory=list)
    modules: list[str] = dataclasses.field(default_factory=list)
    tunnels: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    # The present tunnels as the run leaves them, in the order wanted: what persist writes for boot.
    # An existing tunnel keeps its MTU when the user gives none; a created one is as wanted.
    settled: list[Tunnel] = dataclasses.field(default_factory=list)
    before: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    after: dict[str, dict[str, t.Any]] = dataclasses.field(default_factory=dict)
    # ip -batch lines by phase, and the interface each line is about.
    deletes: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # FOU receive ports (their lines name the port, ``fou:PORT``): after the tunnels that go, before the
    # tunnels that need them. ``ports_added``/``ports_removed``: what they change.
    fou_deletes: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    fou_adds: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    ports_added: list[FouPort] = dataclasses.field(default_factory=list)
    ports_removed: list[FouPort] = dataclasses.field(default_factory=list)
    updates: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    creates: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    address_deletes: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    address_adds: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # Routes last: a next hop must be on a subnet of a tunnel that is up.
    route_deletes: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    route_adds: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def steps(self) -> list[tuple[str, str]]:
        """(interface, ip -batch line): deletions first, so freed names and endpoints can be reused."""
        return (
            self.deletes
            + self.fou_deletes
            + self.fou_adds
            + self.updates
            + self.creates
            + self.address_deletes
            + self.address_adds
            + self.route_deletes
            + self.route_adds
        )


def plan(wanted: list[Wanted], interfaces: dict[str, Interface], purge: bool, adopt: bool = False) -> Plan:
    """What must change so that the host has exactly the wanted tunnels."""
    taken = adoptions(wanted, interfaces) if adopt else {}
    check_against_host(wanted, interfaces, purge, taken)
    result = Plan()
    for item in wanted:
        iface = interfaces.get(item.name)
        current = iface.tunnel if iface is not None else None
        if isinstance(item, Absent):
            plan_absent(result, item.name, current)
            result.tunnels.append(absent_dict(item.name))
        else:  # iface is None, managed, or replaced: check_against_host refused the rest
            plan_present(result, item, iface if iface is not None and iface.managed else None)
            if item.name in taken:
                plan_adoption(result, item.name, [interfaces[name] for name in taken[item.name]])
    if purge:
        for name in purge_names(wanted, interfaces):
            plan_absent(result, name, interfaces[name].tunnel)
    made = created(result)
    result.modules = sorted({KERNEL_MODULE[w.mode] for w in wanted if isinstance(w, Tunnel) and w.name in made})
    return result


def created(result: Plan) -> set[str]:
    """The tunnels the plan creates (one set: a search of the changes per tunnel grows with the square of them)."""
    return {c.name for c in result.changes if c.action in ("create", "recreate", "adopt")}


def adoptable(iface: Interface) -> bool:
    """A GRE tunnel of the four kinds this module handles that it did not create (nor the kernel for itself)."""
    return iface.is_gre and not iface.managed and iface.name not in FALLBACK_DEVICES


def adoptions(wanted: list[Wanted], interfaces: dict[str, Interface]) -> dict[str, list[str]]:
    """With adopt: the unmanaged GRE tunnels each wanted tunnel replaces, by its name.

    Those with its name, and those the kernel would take for it (same twin_key) unless their own
    name is listed (then they are that entry's). Nothing else is ever taken.
    """
    listed = {w.name for w in wanted}
    taken: dict[str, list[str]] = {}
    for item in wanted:
        if not isinstance(item, Tunnel):
            continue
        names = sorted(
            iface.name
            for iface in interfaces.values()
            if adoptable(iface)
            and (
                iface.name == item.name
                or (iface.name not in listed and twin_key(t.cast(Tunnel, iface.tunnel)) == twin_key(item))
            )
        )
        if names:
            taken[item.name] = names
    return taken


def adopt_hint(name: str) -> str:
    return f"set adopt: true to replace it with this tunnel, or delete it with 'ip link del {name}'"


def twin_fixes(other: Interface) -> str:
    """Besides different keys: for a tunnel made by hand, what migrating to this module wants."""
    return "" if other.managed else f"{other.name} was not created by linuxnet.gre: {adopt_hint(other.name)}; or "


def purge_names(wanted: list[Wanted], interfaces: dict[str, Interface]) -> list[str]:
    listed = {w.name for w in wanted}
    return sorted(n for n, i in interfaces.items() if i.managed and i.is_gre and n not in listed)


def check_against_host(
    wanted: list[Wanted], interfaces: dict[str, Interface], purge: bool, taken: dict[str, list[str]]
) -> None:
    """Refuse, before anything changes, what the host's interfaces make impossible.

    ``taken``: what adopt replaces (adoptions), allowed here and otherwise refused.
    """
    adopted = {name for names in taken.values() for name in names}
    for item in wanted:
        iface = interfaces.get(item.name)
        if iface is not None and not iface.is_gre:
            kind = iface.kind or "device without a link kind"
            raise TunnelError(
                item.name,
                "name",
                f"interface {item.name} exists and is not a GRE tunnel ({kind}); it is never converted or deleted",
            )
        if iface is not None and not iface.managed and item.name not in adopted:
            # adopt replaces only with a tunnel, never to delete: the hint is for the present ones.
            hint = f": {adopt_hint(item.name)}" if isinstance(item, Tunnel) else ""
            raise TunnelError(
                item.name,
                "name",
                f"interface {item.name} exists but was not created by linuxnet.gre "
                f"(its alias is not {MANAGED_ALIAS!r}); it is never changed or deleted{hint}",
            )
        if isinstance(item, Tunnel) and item.dev is not None and item.dev not in interfaces:
            raise TunnelError(item.name, "dev", f"there is no interface {item.dev} on this host")
    staying = remaining_tunnels(wanted, interfaces, purge, adopted)
    for item in wanted:
        if isinstance(item, Tunnel):
            for other in staying:
                if twin_key(other) == twin_key(item):
                    raise_twin(item, f"existing interface {other.name!r}", twin_fixes(interfaces[other.name]))


def remaining_tunnels(
    wanted: list[Wanted], interfaces: dict[str, Interface], purge: bool, adopted: set[str]
) -> list[Tunnel]:
    """Tunnels of the host that this invocation leaves as they are."""
    listed = {w.name for w in wanted}
    return [
        i.tunnel
        for i in interfaces.values()
        if i.tunnel is not None and i.name not in listed and i.name not in adopted and not (purge and i.managed)
    ]


def plan_absent(result: Plan, name: str, current: Tunnel | None) -> None:
    if current is None:
        return
    result.changes.append(Change(name, "delete"))
    result.deletes.append((name, f"link del dev {name}"))
    result.before[name] = current.as_dict()
    result.after[name] = absent_dict(name)


def plan_present(result: Plan, wanted: Tunnel, iface: Interface | None) -> None:
    """``iface``: the managed tunnel of that name, None when there is none (or adopt replaces it)."""
    if iface is None or iface.tunnel is None:
        result.changes.append(Change(wanted.name, "create"))
        add_create_steps(result, wanted)
        result.before[wanted.name] = absent_dict(wanted.name)
        result.after[wanted.name] = wanted.as_dict()
        result.tunnels.append(wanted.as_dict())
        result.settled.append(wanted)
        return
    current = with_listed_link_local(iface.tunnel, iface, wanted)
    after = settled(current, wanted)
    fields = differing_fields(current, after)
    recreate = bool(fields) and needs_recreate(current, wanted)
    result.before[wanted.name] = current.as_dict()
    result.after[wanted.name] = (wanted if recreate else after).as_dict()
    result.tunnels.append(result.after[wanted.name])
    result.settled.append(wanted if recreate else after)
    if not fields:
        return
    if recreate:
        result.changes.append(Change(wanted.name, "recreate", fields))
        result.deletes.append((wanted.name, f"link del dev {wanted.name}"))
        add_create_steps(result, wanted)
        return
    result.changes.append(Change(wanted.name, "update", fields))
    add_update_steps(result, iface, current, after, wanted.mtu)


def plan_adoption(result: Plan, name: str, replaced: list[Interface]) -> None:
    """Delete the unmanaged tunnels that wanted tunnel ``name`` replaces (adopt), in the batch's first phase.

    The tunnel's own change (planned before, as if they were not there) becomes ``adopt``; the diff
    shows them before, gone (or, with the same name, replaced) after.
    """
    names = tuple(iface.name for iface in replaced)
    for iface in replaced:
        result.deletes.append((iface.name, f"link del dev {iface.name}"))
        result.before[iface.name] = t.cast(Tunnel, iface.tunnel).as_dict()
        result.after.setdefault(iface.name, absent_dict(iface.name))
    own = [c for c in result.changes if c.name == name]
    fields = own[0].fields if own else ()
    result.changes[:] = [c for c in result.changes if c.name != name]
    result.changes.append(Change(name, "adopt", fields, names))


def with_listed_link_local(current: Tunnel, iface: Interface, wanted: Tunnel) -> Tunnel:
    """The kernel's own link-local addresses count only when the user lists them."""
    listed = tuple(a for a in iface.link_local if a in wanted.addresses)
    if not listed:
        return current
    return dataclasses.replace(current, addresses=sort_addresses(current.addresses + listed))


def settled(current: Tunnel, wanted: Tunnel) -> Tunnel:
    """The wanted tunnel, with the MTU the kernel keeps when the user leaves it unset."""
    if wanted.mtu is None:
        return dataclasses.replace(wanted, mtu=current.mtu)
    return wanted


def differing_fields(current: Tunnel, wanted: Tunnel) -> tuple[str, ...]:
    return tuple(f for f in FIELDS if getattr(current, f) != getattr(wanted, f))


def needs_recreate(current: Tunnel, wanted: Tunnel) -> bool:
    """What `ip link set … type MODE` cannot change in place (measured: fixtures/inplace.txt).

    The mode; dropping a key or the bound device (iproute2 starts a change from the tunnel's
    current settings and has no word to clear them); and a remote of ``any`` (a gre device without
    a remote is not point-to-point, and the kernel refuses to change that in place).
    """
    return (
        current.mode != wanted.mode
        or current.remote == "any"
        or (current.ikey is not None and wanted.ikey is None)
        or (current.okey is not None and wanted.okey is None)
        or (current.dev is not None and wanted.dev is None)
    )


def tunnel_words(tunnel: Tunnel, fields: t.Iterable[str]) -> list[str]:
    """The `type MODE …` arguments of iproute2 for the given fields."""
    ipv6 = tunnel.mode in IPV6_MODES
    words: list[str] = []
    for field in fields:
        value = getattr(tunnel, field)
        if field == "local":
            words += ["local", value or "any"]
        elif field == "remote":
            words += ["remote", value]
        elif field == "ttl":
            words += ["ttl", str(value)]
        elif field == "tos":
            words += ["tclass" if ipv6 else "tos", value]
        elif field in ("ikey", "okey") and value is not None:
            words += [field, str(value)]
        elif field == "pmtudisc" and value is not None:
            words.append("pmtudisc" if value else "nopmtudisc")
        elif field == "dev" and value is not None:
            words += ["dev", value]
        elif field == "encap":
            words += encap_words(value)
    return words


def encap_words(encap: Encap | None) -> list[str]:
    """Every encap setting, or ``encap none``.

    Always all of them: iproute2 6.1 starts a change from the tunnel's current settings and swaps the bytes
    of the ports it did not get (``encap-dport 5556`` becomes 46101; fixtures/fou-inplace.txt).
    """
    if encap is None:
        return ["encap", "none"]
    return [
        "encap",
        encap.type,
        "encap-sport",
        str(encap.sport) if encap.sport else "auto",
        "encap-dport",
        str(encap.dport),
        "encap-csum" if encap.csum else "noencap-csum",
        "encap-remcsum" if encap.remcsum else "noencap-remcsum",
    ]


def create_line(tunnel: Tunnel) -> str:
    """The ``ip -batch`` line that creates ``tunnel``: every setting, its MTU when it has one."""
    mtu = f" mtu {tunnel.mtu}" if tunnel.mtu is not None else ""
    local = ("local",) if tunnel.local is not None else ()
    encap = ("encap",) if tunnel.encap is not None else ()
    words = tunnel_words(tunnel, ("remote", *local, "ttl", "tos", "pmtudisc", "ikey", "okey", "dev", *encap))
    return f"link add name {tunnel.name}{mtu} type {tunnel.mode} {' '.join(words)}"


def creation_lines(tunnel: Tunnel, alias: str | None = MANAGED_ALIAS) -> tuple[list[str], list[str]]:
    """The ``ip -batch`` lines that make ``tunnel`` on a host without it: (link lines, address lines).

    The link is created, given ``alias`` (the mark of this collection's tunnels; None for a tunnel
    this collection will not manage, such as an external peer's) and brought up; then its addresses.
    """
    name = tunnel.name
    marked = f' alias "{alias}"' if alias is not None else ""
    links = [create_line(tunnel), f"link set dev {name}{marked} up"]
    return links, [f"address add {address} dev {name}" for address in tunnel.addresses]


def add_create_steps(result: Plan, wanted: Tunnel) -> None:
    links, addresses = creation_lines(wanted)
    result.creates += [(wanted.name, line) for line in links]
    result.address_adds += [(wanted.name, line) for line in addresses]


def add_update_steps(result: Plan, iface: Interface, current: Tunnel, wanted: Tunnel, wanted_mtu: int | None) -> None:
    """``wanted`` is settled (its MTU is the current one when the user gave none, ``wanted_mtu`` None)."""
    name = wanted.name
    type_fields = [f for f in TYPE_FIELDS if getattr(current, f) != getattr(wanted, f)]
    if type_fields and wanted.encap is not None and "encap" not in type_fields:
        type_fields.append("encap")  # or iproute2 mangles the ports (encap_words)
    # A wanted MTU goes with every tunnel change, or the kernel recomputes it (a key adds 4 bytes
    # of header and takes them off the MTU; a new dev recomputes it). An MTU left to the kernel is
    # left to the kernel then too.
    mtu = f" mtu {wanted_mtu}" if wanted_mtu is not None and (type_fields or wanted_mtu != current.mtu) else ""
    if type_fields:
        result.updates.append(
            (name, f"link set dev {name}{mtu} type {wanted.mode} {' '.join(tunnel_words(wanted, type_fields))}")
        )
    elif mtu:
        result.updates.append((name, f"link set dev {name}{mtu}"))
    if not current.up:
        result.updates.append((name, f"link set dev {name} up"))
    removed, added = address_steps(iface, current.addresses, wanted.addresses)
    result.address_deletes += [(name, f"address del {a} dev {name}") for a in removed]
    result.address_adds += [(name, f"address add {a} dev {name}") for a in added]


def address_steps(iface: Interface, current: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Addresses to delete and to add.

    Deleting an IPv4 subnet's primary address takes its secondaries with it (unless the
    promote_secondaries sysctl is on), so when an address of a subnet goes, every address of that
    subnet goes, in reverse kernel order (secondaries first), and the wanted ones come back.
    """
    removed = [a for a in current if a not in wanted]
    touched = {ipv4_network(a) for a in removed} - {None}
    regrouped = [a for a in current if a in wanted and ipv4_network(a) in touched]
    deletions = [a for a in reversed(iface.address_order) if a in removed or a in regrouped]
    additions = [a for a in wanted if a not in current or a in regrouped]
    return deletions, additions


def ipv4_network(address: str) -> ipaddress.IPv4Network | None:
    parsed = ipaddress.ip_interface(address)
    return parsed.network if isinstance(parsed, ipaddress.IPv4Interface) else None


def plan_routes(result: Plan, wanted: dict[str, tuple[Route, ...]], found: list[Route]) -> None:
    """Add to ``result`` what makes each tunnel of ``wanted`` have exactly those routes.

    Only routes with this module's protocol (``Route.ours``) are changed or deleted. A route of the main
    table to a wanted prefix that is not ours is refused, before anything changes: ``ip route replace``
    would take it over; unless its device is one this plan deletes (a hand-made tunnel that adopt
    replaces, such as the seed's gre1 with its hand-made route), whose routes the kernel deletes with
    it. A tunnel created or recreated by this plan has no route yet (the kernel deletes a device's
    routes with it).
    """
    prefixes = {route.prefix: name for name, routes in wanted.items() for route in routes}
    # The batch deletes these devices first (adopt's hand-made tunnels, recreations): their routes go with them.
    gone = {name for name, _line in result.deletes}
    for route in found:
        if not route.ours and route.prefix in prefixes and route.dev not in gone:
            raise TunnelError(
                prefixes[route.prefix],
                "routes",
                f"the host has a route to {route.prefix} that linuxnet.gre did not make ({describe_route(route)}); "
                "it is never replaced or deleted: remove it, or leave this prefix out",
            )
    fresh = {c.name for c in result.changes if c.action in ("create", "recreate", "adopt")}
    ours = [route for route in found if route.ours and route.dev not in fresh]
    by_key = {route.key: route for route in ours}
    for name, routes in wanted.items():
        keys = {route.key for route in routes}
        current = [route for route in ours if route.dev == name]
        changed = False
        for route in current:
            if route.key not in keys:
                result.route_deletes.append((name, f"route del {route.prefix} dev {name} {route_marks(route)}"))
                changed = True
        for route in routes:
            existing = by_key.get(route.key)
            if existing is None:
                result.route_adds.append((name, f"route add {route_words(route)}"))
                changed = True
            elif (existing.dev, existing.via) != (route.dev, route.via):
                result.route_adds.append((name, f"route replace {route_words(route)}"))
                changed = True
        if result.before.get(name, {}).get("state") == "present":
            result.before[name]["routes"] = [r.as_dict() for r in current]
        result.after[name]["routes"] = [r.as_dict() for r in routes]
        for tunnel in result.tunnels:
            if tunnel["name"] == name:
                tunnel["routes"] = [r.as_dict() for r in routes]
        if changed and name not in fresh:
            note_route_change(result, name)


def note_route_change(result: Plan, name: str) -> None:
    """The tunnel's change gains the field ``routes`` (an unchanged tunnel gets an update of its routes only)."""
    for index, change in enumerate(result.changes):
        if change.name == name:
            result.changes[index] = dataclasses.replace(change, fields=(*change.fields, "routes"))
            return
    result.changes.append(Change(name, "update", ("routes",)))


def route_marks(route: Route) -> str:
    return f"proto {ROUTE_PROTOCOL} metric {route.metric}"


def route_words(route: Route) -> str:
    via = f" via {route.via}" if route.via is not None else ""
    return f"{route.prefix}{via} dev {route.dev} {route_marks(route)}"


def describe_route(route: Route) -> str:
    via = f" via {route.via}" if route.via is not None else ""
    return f"{route.prefix}{via} dev {route.dev} proto {route.protocol} metric {route.metric}"


def port_key(port: FouPort) -> str:
    """The name a FOU receive port has in the batch's error reports and in the diff (no interface has ':')."""
    return f"fou:{port.port}"


def fou_line(verb: str, port: FouPort) -> str:
    """``fou add port P ipproto 47`` (fou) or ``… gue``; ``fou del port P`` (the kernel deletes by number)."""
    if verb == "del":
        return f"fou del port {port.port}"
    return f"fou add port {port.port} " + ("gue" if port.type == "gue" else f"ipproto {GRE_PROTOCOL}")


def needed_ports(result: Plan, interfaces: dict[str, Interface]) -> tuple[dict[int, tuple[FouPort, str]], set[int]]:
    """The FOU receive ports the listed tunnels need after the run (a tunnel's dport, of its type), by number, each
    with a tunnel that needs it; and the numbers the tunnels this run leaves alone use (not created by this module,
    or not listed): those are never deleted, and never added either (their owner keeps them)."""
    needed: dict[int, tuple[FouPort, str]] = {}
    for tunnel in result.settled:
        if tunnel.encap is not None:
            needed.setdefault(tunnel.encap.dport, (FouPort(tunnel.encap.dport, tunnel.encap.type), tunnel.name))
    used = {
        iface.tunnel.encap.dport
        for name, iface in interfaces.items()
        if iface.tunnel is not None and iface.tunnel.encap is not None and name not in result.after
    }
    return needed, used


def plan_ports(
    result: Plan,
    interfaces: dict[str, Interface],
    found: list[FouPort] | None,
    owned: t.AbstractSet[FouPort],
) -> None:
    """Add to ``result`` the FOU receive ports the tunnels need, and delete those of this module none needs.

    ``found``: the kernel's IPv4 ports (None: the fou module is not loaded, so there are none). ``owned()``:
    the ports this module created. A port of
    another kind or configuration on a number a tunnel needs is refused, before anything changes, unless
    this module made it and no tunnel needs it as it is: then it is replaced.
    """
    needed, used = needed_ports(result, interfaces)
    kernel = {port.port: port for port in found or []}
    for port in sorted(kernel.values()):
        want = needed.get(port.port)
        if want is not None and want[0] == port:
            continue
        if port not in owned or (want is None and port.port in used):
            if want is not None:
                raise TunnelError(
                    want[1],
                    "encap",
                    f"the host has a FOU receive port {port.port} of another kind ({describe_port(port)}) that "
                    f"linuxnet.gre did not create; it is never changed or deleted: delete it "
                    f"('ip fou del port {port.port}') or choose another dport",
                )
            continue
        result.fou_deletes.append((port_key(port), fou_line("del", port)))
        result.ports_removed.append(port)
        result.before[port_key(port)] = dict(port.as_dict(), state="present")
        result.after[port_key(port)] = dict(port.as_dict(), state="absent")
    for number, (port, _tunnel) in sorted(needed.items()):
        if kernel.get(number) == port:
            continue
        result.fou_adds.append((port_key(port), fou_line("add", port)))
        result.ports_added.append(port)
        result.before.setdefault(port_key(port), dict(port.as_dict(), state="absent"))
        result.after[port_key(port)] = dict(port.as_dict(), state="present")
    if result.fou_adds or any(encapsulates(result, tunnel) for tunnel in result.settled):
        result.modules = sorted({*result.modules, FOU_MODULE})


def encapsulates(result: Plan, tunnel: Tunnel) -> bool:
    """Whether this run creates ``tunnel`` with an encap, or sets one on it (the kernel needs the fou module)."""
    if tunnel.encap is None:
        return False
    return any(
        change.name == tunnel.name and (change.action in ("create", "recreate", "adopt") or "encap" in change.fields)
        for change in result.changes
    )


def describe_port(port: FouPort) -> str:
    return {"fou": f"ipproto {GRE_PROTOCOL}", "gue": "gue"}.get(port.type, "bound to addresses or another protocol")
