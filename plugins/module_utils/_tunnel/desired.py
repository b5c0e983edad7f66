# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: turns gre_tunnel's parameters into checked, normalized tunnels.

Everything here is pure: no command runs, so every bad input is rejected before the host changes.
The argument spec already enforced types, choices, mutually exclusive and required options.
"""

from __future__ import annotations

import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    DEFAULT_METRIC,
    ENCAP_MODES,
    ETHERNET_MODES,
    FALLBACK_DEVICES,
    IPV6_MODES,
    MAX_KEY,
    MAX_MTU,
    MAX_NAME_LENGTH,
    MAX_TUNNEL_MTU,
    MIN_MTU,
    MIN_MTU_IPV6,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import (
    TOS_INHERIT,
    Absent,
    Encap,
    Route,
    Tunnel,
    Wanted,
)

IPAddress = t.Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPInterface = t.Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]


def wanted_tunnels(params: dict[str, t.Any]) -> list[Wanted]:
    """The tunnels of this invocation: the O(tunnels) list, or the single tunnel of the top-level options."""
    entries = params["tunnels"] if params.get("tunnels") is not None else [params]
    wanted = [wanted_tunnel(entry) for entry in entries]
    check_unique_names(wanted)
    check_no_twins([w for w in wanted if isinstance(w, Tunnel)])
    check_one_type_per_port([w for w in wanted if isinstance(w, Tunnel)])
    return wanted


def wanted_tunnel(entry: dict[str, t.Any]) -> Wanted:
    name = entry["name"]
    check_name(name)
    if entry["state"] == "absent":
        return Absent(name)
    mode = entry["mode"]
    ikey = parse_key(name, "key", entry["key"]) if entry["key"] is not None else parse_key(name, "ikey", entry["ikey"])
    okey = parse_key(name, "key", entry["key"]) if entry["key"] is not None else parse_key(name, "okey", entry["okey"])
    addresses = parse_addresses(name, entry["addresses"])
    tunnel = Tunnel(
        name=name,
        mode=mode,
        remote=parse_endpoint(name, "remote", entry["remote"], mode),
        local=parse_endpoint(name, "local", entry["local"], mode) if entry["local"] is not None else None,
        ttl=parse_ttl(name, entry["ttl"]),
        tos=parse_tos(name, entry["tos"]),
        ikey=ikey,
        okey=okey,
        pmtudisc=parse_pmtudisc(name, mode, entry["pmtudisc"]),
        mtu=parse_mtu(name, entry["mtu"], addresses, mode, keyed=ikey is not None or okey is not None),
        dev=parse_dev(name, entry["dev"]),
        addresses=tuple(str(a) for a in sorted(addresses, key=address_sort_key)),
        encap=parse_encap(name, mode, entry.get("encap")),
    )
    check_ttl_needs_pmtudisc(tunnel)
    return tunnel


class TunnelError(GreError):
    """A wanted tunnel's option that cannot be: the tunnel, the option (``field``) and what is wrong with it.

    The message names all three; callers that report the problem in words of their own (the planner)
    take ``problem``.
    """

    def __init__(self, tunnel: str, field: str, problem: str) -> None:
        super().__init__(f"tunnel {tunnel!r}: {field}: {problem}", tunnel=tunnel, field=field)
        self.tunnel = tunnel
        self.field = field
        self.problem = problem


def fail(name: str, field: str, problem: str) -> t.NoReturn:
    raise TunnelError(name, field, problem)


# Characters no interface name may hold besides whitespace: '/' the kernel refuses, ':' iproute2
# reserves for labels, and '%' makes `ip link add` expand the name as a template.
NAME_FORBIDDEN = "/:%"


def forbidden_in_name(character: str) -> bool:
    """Whether an interface name must not hold this character (the kernel refuses whitespace too)."""
    return character in NAME_FORBIDDEN or character.isspace()


def name_bytes(name: str) -> int:
    """The length of an interface name as the kernel counts it: bytes of UTF-8, not characters."""
    return len(name.encode("utf-8", "surrogateescape"))


def interface_name_problem(name: str) -> str | None:
    """What the kernel (dev_valid_name) and iproute2 refuse in an interface name, or None.

    The kernel counts bytes (IFNAMSIZ - 1 of them), so ``gre-münchen-dc1`` (15 characters, 16
    bytes) is too long. The characters of ``forbidden_in_name`` are refused, and so is text that
    UTF-8 cannot encode (a lone surrogate).
    """
    if not name:
        return "must not be empty"
    try:
        length = name_bytes(name)
    except UnicodeError:
        return "is not text that UTF-8 can encode"
    if length > MAX_NAME_LENGTH:
        characters = "" if length == len(name) else f" in UTF-8 ({len(name)} characters)"
        return f"is {length} bytes long{characters}; the kernel allows at most {MAX_NAME_LENGTH} bytes"
    if name in (".", "..") or any(forbidden_in_name(c) for c in name):
        forbidden = ", ".join(f"'{c}'" for c in NAME_FORBIDDEN)
        return f"must not be '.' or '..' nor contain {forbidden} or whitespace"
    return None


def tunnel_name_problem(name: str) -> str | None:
    """What a tunnel cannot be named: what the kernel refuses (interface_name_problem), or a GRE fallback device."""
    problem = interface_name_problem(name)
    if problem is None and name in FALLBACK_DEVICES:
        problem = "is the fallback device the GRE kernel modules create for themselves; choose another name"
    return problem


def check_name(name: str) -> None:
    problem = tunnel_name_problem(name)
    if problem is not None:
        fail(name, "name", problem)


def check_unique_names(wanted: list[Wanted]) -> None:
    seen: set[str] = set()
    for item in wanted:
        if item.name in seen:
            fail(item.name, "name", "is listed more than once")
        seen.add(item.name)


def twin_key(tunnel: Tunnel) -> tuple[t.Any, ...]:
    """What the kernel uses to tell tunnels apart (ip_tunnel_find, ip6gre_tunnel_find); equal keys clash."""
    return (tunnel.mode, tunnel.local, tunnel.remote, tunnel.dev, tunnel.ikey)


def check_no_twins(tunnels: list[Tunnel]) -> None:
    seen: dict[tuple[t.Any, ...], str] = {}
    for tunnel in tunnels:
        other = seen.setdefault(twin_key(tunnel), tunnel.name)
        if other != tunnel.name:
            raise_twin(tunnel, f"tunnel {other!r}")


def raise_twin(tunnel: Tunnel, other: str, other_fixes: str = "") -> t.NoReturn:
    """``other_fixes``: what else would do, offered before different keys (ending in "; or ")."""
    fail(
        tunnel.name,
        "remote",
        f"{other} has the same mode, local, remote, dev and input key; "
        f"the kernel refuses two such tunnels ({other_fixes}give them different keys)",
    )


def parse_endpoint(name: str, field: str, value: str, mode: str) -> str:
    try:
        address: IPAddress = ipaddress.ip_address(value)
    except ValueError:
        fail(name, field, f"{value!r} is not an IP address")
    wanted_version = 6 if mode in IPV6_MODES else 4
    if address.version != wanted_version:
        fail(name, field, f"{value} is an IPv{address.version} address but mode {mode} needs IPv{wanted_version}")
    if address.is_unspecified or address.is_multicast:
        fail(name, field, f"{value} is not a unicast address")
    return str(address)


def parse_ttl(name: str, ttl: int) -> int:
    if not 0 <= ttl <= 255:
        fail(name, "ttl", f"{ttl} is outside 0..255 (0 means inherit)")
    return ttl


def parse_tos(name: str, value: str) -> str:
    if value == TOS_INHERIT:
        return TOS_INHERIT
    try:
        number = int(value, 0)
    except ValueError:
        number = -1
    if not 0 <= number <= 255:
        fail(name, "tos", f"{value!r} is neither 'inherit' nor a number from 0 to 255")
    return f"0x{number:02x}"


def parse_key(name: str, field: str, value: str | None) -> int | None:
    """A GRE key: a number 0..4294967295 or a dotted quad (1.2.3.4), as iproute2 accepts it."""
    if value is None:
        return None
    if "." in value:
        try:
            return int(ipaddress.IPv4Address(value))
        except ValueError:
            pass
    elif value.isdigit() and int(value) <= MAX_KEY:
        return int(value)
    fail(name, field, f"{value!r} is neither a number from 0 to {MAX_KEY} nor a dotted quad")


def parse_pmtudisc(name: str, mode: str, pmtudisc: bool | None) -> bool | None:
    if mode in IPV6_MODES:
        if pmtudisc is not None:
            fail(name, "pmtudisc", f"applies to modes gre and gretap only, not {mode}")
        return None
    return True if pmtudisc is None else pmtudisc


def check_ttl_needs_pmtudisc(tunnel: Tunnel) -> None:
    """iproute2: 'ttl != 0 and nopmtudisc are incompatible' (a fixed TTL needs the DF bit)."""
    if tunnel.pmtudisc is False and tunnel.ttl != 0:
        fail(
            tunnel.name, "ttl", f"a fixed ttl ({tunnel.ttl}) needs pmtudisc; set ttl to 0 (inherit) or pmtudisc to true"
        )


def parse_mtu(name: str, mtu: int | None, addresses: list[IPInterface], mode: str, keyed: bool) -> int | None:
    if mtu is None:
        return None
    if not MIN_MTU <= mtu <= MAX_MTU:
        fail(name, "mtu", f"{mtu} is outside {MIN_MTU}..{MAX_MTU}")
    largest = MAX_TUNNEL_MTU[mode][keyed]
    if mtu > largest:
        fail(
            name,
            "mtu",
            f"{mtu} is above {largest}, the largest the kernel allows for {mode} {'with' if keyed else 'without'} a key",
        )
    ipv6 = [a for a in addresses if a.version == 6]
    if ipv6 and mtu < MIN_MTU_IPV6:
        fail(name, "mtu", f"{mtu} is below {MIN_MTU_IPV6}, the minimum for IPv6 addresses such as {ipv6[0]}")
    return mtu


MAX_PORT = 65535


def parse_encap(name: str, mode: str, entry: dict[str, t.Any] | None) -> Encap | None:
    """GRE in UDP; the types and the required suboptions the argument spec has checked."""
    if entry is None:
        return None
    if mode not in ENCAP_MODES:
        fail(
            name,
            "encap",
            f"applies to modes {' and '.join(ENCAP_MODES)} only, not {mode}: over IPv6 the kernel needs IPv6 FOU "
            "receive ports (fou6), which this module does not manage",
        )
    if not 1 <= entry["dport"] <= MAX_PORT:
        fail(name, "encap", f"dport {entry['dport']} is outside 1..{MAX_PORT}")
    if not 0 <= entry["sport"] <= MAX_PORT:
        fail(name, "encap", f"sport {entry['sport']} is outside 0..{MAX_PORT} (0: the kernel picks one per flow)")
    if entry["remcsum"] and entry["type"] != "gue":
        fail(name, "encap", "remcsum (remote checksum offload) is an option of GUE's header: it needs type gue")
    return Encap(
        type=entry["type"], dport=entry["dport"], sport=entry["sport"], csum=entry["csum"], remcsum=entry["remcsum"]
    )


def check_one_type_per_port(tunnels: list[Tunnel]) -> None:
    """A FOU receive port takes one encapsulation: the tunnels that share a dport must share its type."""
    seen: dict[int, Tunnel] = {}
    for tunnel in tunnels:
        if tunnel.encap is None:
            continue
        other = seen.setdefault(tunnel.encap.dport, tunnel)
        if other.encap is not None and other.encap.type != tunnel.encap.type:
            fail(
                tunnel.name,
                "encap",
                f"dport {tunnel.encap.dport} is {tunnel.encap.type} here but {other.encap.type} for tunnel "
                f"{other.name!r}; the host receives on one FOU port of that number, of one type",
            )


def parse_dev(name: str, dev: str | None) -> str | None:
    if dev is None:
        return None
    problem = interface_name_problem(dev)
    if problem is not None:
        fail(name, "dev", f"{dev!r} is not an interface name: {problem}")
    return dev


def parse_addresses(name: str, values: list[str]) -> list[IPInterface]:
    parsed: dict[IPInterface, None] = {}
    for value in values:
        parsed[parse_address(name, value)] = None
    return list(parsed)


def parse_address(name: str, value: str) -> IPInterface:
    if "/" not in value:
        fail(name, "addresses", f"{value!r} has no prefix length (for example {value}/30)")
    try:
        address: IPInterface = ipaddress.ip_interface(value)
    except ValueError:
        fail(name, "addresses", f"{value!r} is not an IP address with a prefix length")
    network = address.network
    host_bits = network.max_prefixlen - network.prefixlen
    if host_bits >= 2 and address.ip == network.network_address:
        fail(name, "addresses", f"{value} is the network address of {network}; give an interface address")
    if host_bits >= 2 and address.version == 4 and address.ip == network.broadcast_address:
        fail(name, "addresses", f"{value} is the broadcast address of {network}; give an interface address")
    return address


def address_sort_key(address: IPInterface) -> tuple[int, int, int]:
    return (address.version, int(address.ip), address.network.prefixlen)


def sort_addresses(addresses: t.Iterable[str]) -> tuple[str, ...]:
    """Addresses in one canonical order (IPv4 first, then by address), so equal sets compare equal."""
    return tuple(str(a) for a in sorted((ipaddress.ip_interface(a) for a in addresses), key=address_sort_key))


def is_link_local_ipv6(address: str) -> bool:
    parsed = ipaddress.ip_interface(address)
    return parsed.version == 6 and parsed.ip.is_link_local


MAX_METRIC = 4294967295


def wanted_routes(params: dict[str, t.Any], wanted: list[Wanted]) -> dict[str, tuple[Route, ...]] | None:
    """The routes of each listed tunnel that gives O(tunnels[].routes), by tunnel name; None when none does.

    A tunnel without the option keeps whatever routes it has; one with it (even empty) gets exactly those.
    """
    entries = params["tunnels"] if params.get("tunnels") is not None else [params]
    tunnels = {w.name: w for w in wanted}
    result: dict[str, tuple[Route, ...]] = {}
    seen: dict[tuple[str, int], str] = {}
    for entry in entries:
        if entry.get("routes") is None:
            continue
        tunnel = tunnels[entry["name"]]
        if not isinstance(tunnel, Tunnel):
            fail(tunnel.name, "routes", "only a tunnel with state present has routes (its routes go with it)")
        routes = tuple(sorted((parse_route(tunnel, route) for route in entry["routes"]), key=route_sort_key))
        keys = [route.key for route in routes]
        for route in routes:
            other = seen.setdefault(route.key, tunnel.name)
            if keys.count(route.key) > 1 or other != tunnel.name:
                where = "twice" if other == tunnel.name else f"also by tunnel {other!r}"
                fail(tunnel.name, "routes", f"{route.prefix} with metric {route.metric} is listed {where}")
        result[tunnel.name] = routes
    return result if result else None


def parse_route(tunnel: Tunnel, entry: dict[str, t.Any]) -> Route:
    name, value = tunnel.name, entry["prefix"]
    try:
        if "/" not in value:  # as the planner: a bare address is more often a slip than one host
            raise ValueError(value)
        network = ipaddress.ip_network(value)
    except ValueError:
        hint = ""
        try:
            address = ipaddress.ip_interface(value)
            hint = (
                f" (host bits set: {address.network})"
                if "/" in value
                else f" (for one host: {value}/{address.max_prefixlen})"
            )
        except ValueError:
            pass
        fail(name, "routes", f"prefix {value!r} is not a network{hint}")
    for end in (tunnel.remote, tunnel.local):
        if end is not None and end != "any" and ipaddress.ip_address(end) in network:
            fail(
                name,
                "routes",
                f"prefix {network} holds the tunnel's underlay address {end}: "
                "its GRE packets would be routed into the tunnel itself",
            )
    via = entry.get("via")
    if via is None and tunnel.mode in ETHERNET_MODES:
        fail(
            name,
            "routes",
            f"the route to {network} needs via (the inner address of the next hop) over {tunnel.mode}: "
            "without it the kernel would look for every destination on the tunnel's Ethernet",
        )
    if via is not None:
        try:
            gateway = ipaddress.ip_address(via)
        except ValueError:
            fail(name, "routes", f"via {via!r} (route to {network}) is not an IP address")
        if gateway.version != network.version:
            fail(name, "routes", f"via {via} is IPv{gateway.version} but {network} is IPv{network.version}")
        subnets = [ipaddress.ip_interface(a) for a in tunnel.addresses]
        if not any(gateway in a.network and gateway != a.ip for a in subnets):
            fail(
                name,
                "routes",
                f"via {via} (route to {network}) is not another address of a subnet of the tunnel's addresses "
                f"({', '.join(tunnel.addresses) or 'none'})",
            )
        via = str(gateway)
    metric = entry.get("metric")
    if metric is None:
        metric = DEFAULT_METRIC[network.version]
    elif not 0 <= metric <= MAX_METRIC:
        fail(name, "routes", f"metric {metric} (route to {network}) is outside 0..{MAX_METRIC}")
    return Route(prefix=str(network), dev=name, via=via, metric=metric)


def route_sort_key(route: Route) -> tuple[int, int, int, int]:
    network = ipaddress.ip_network(route.prefix)
    return (network.version, int(network.network_address), network.prefixlen, route.metric)
