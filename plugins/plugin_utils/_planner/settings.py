# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: checks the planner's settings and the per-link overrides.

Values are checked with the same rules as the gre_tunnel module's options (its key parser is
shared), so that what the planner accepts, the module accepts too.
"""

from __future__ import annotations

import collections.abc as c
import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    DEFAULT_ENCAP_PORT,
    ENCAP_TYPES,
    MAX_KEY,
    MAX_MTU,
    MIN_MTU,
    MODES,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import TunnelError, parse_key
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import IPNetwork, Problems, Settings

PREFIXES = (30, 31)
PREFIXES6 = (126, 127)
# The keys an explicit link (an item of gre_mesh_links) may have besides `hosts`.
OVERRIDES = (
    "mode",
    "key",
    "ttl",
    "mtu",
    "subnet",
    "subnet6",
    "metric",
    "networks",
    "ipsec",
    "encap",
    "encap_port",
)
# GRE in UDP: the values of gre_mesh_encap (and a link's encap); "none" is plain GRE, IP protocol 47.
NO_ENCAP = "none"
ENCAPS = (NO_ENCAP, *ENCAP_TYPES)
MAX_PORT = 65535
# A link's metric: its cost when routes choose a path, and the metric of the routes over it (a
# route's metric in the kernel is at most 2**32 - 1). At least 1, so that every hop of a path
# costs something and hop-by-hop routes cannot loop.
MAX_METRIC = 2**32 - 1
# Ranges no inner subnet (pool, pool6, a link's subnet or subnet6) may overlap: they are not the
# ordinary unicast addresses two ends of a link can route between. 169.254.0.0/16 is link-local,
# which would suit a point-to-point link, but clouds answer at 169.254.169.254 (their metadata
# service), which a tunnel's subnet would take over; so it is refused too.
UNUSABLE_INNER = tuple(
    (ipaddress.ip_network(network), what)
    for network, what in (
        ("127.0.0.0/8", "the loopback range"),
        ("169.254.0.0/16", "the link-local range, where clouds keep their metadata service (169.254.169.254)"),
        ("224.0.0.0/4", "the multicast range"),
        ("240.0.0.0/4", "the reserved range"),
        ("::1/128", "the loopback address"),
        ("fe80::/10", "the link-local range, from which the kernel addresses every interface itself"),
        ("ff00::/8", "the multicast range"),
    )
)


BOOLEANS = {
    **dict.fromkeys(("true", "yes", "on", "1"), True),
    **dict.fromkeys(("false", "no", "off", "0"), False),
}


def as_int(value: t.Any) -> int | None:
    """An integer given as a number or as a string of digits (INI inventories give strings); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def is_unset(value: t.Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class Checker:
    """Checks values; each problem is recorded with the variable it is about."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def fail(self, variable: str, problem: str) -> None:
        self.problems.add(f"{variable}: {problem}")

    def mode(self, variable: str, value: t.Any) -> str | None:
        if isinstance(value, str) and value in MODES:
            return value
        self.fail(variable, f"{value!r} is not one of {', '.join(MODES)}")
        return None

    def ttl(self, variable: str, value: t.Any) -> int | None:
        number = as_int(value)
        if number is None or not 0 <= number <= 255:
            self.fail(variable, f"{value!r} is not a number from 0 to 255 (0 means inherit)")
            return None
        return number

    def key(self, variable: str, value: t.Any) -> int | None:
        if is_unset(value):
            return None
        if not isinstance(value, bool) and isinstance(value, (int, str)):
            try:
                return parse_key("", variable, str(value).strip())
            except TunnelError:
                pass
        self.fail(variable, f"{value!r} is neither a number from 0 to {MAX_KEY} nor a dotted quad")
        return None

    def mtu(self, variable: str, value: t.Any) -> int | None:
        if is_unset(value):
            return None
        number = as_int(value)
        if number is None or not MIN_MTU <= number <= MAX_MTU:
            self.fail(variable, f"{value!r} is not a number from {MIN_MTU} to {MAX_MTU}")
            return None
        return number

    def network(self, variable: str, value: t.Any, version: int, longest: int) -> t.Any:
        """An IPv4 or IPv6 network (no host bits set) whose prefix is at most ``longest``."""
        family = f"IPv{version}"
        if not isinstance(value, str):
            self.fail(variable, f"{value!r} is not an {family} network such as {example_network(version)}")
            return None
        try:
            network = ipaddress.ip_network(value.strip())
        except ValueError as exc:
            self.fail(variable, f"{value!r} is not an {family} network ({exc})")
            return None
        if network.version != version:
            self.fail(variable, f"{value} is an IPv{network.version} network; an {family} one is needed here")
            return None
        if network.prefixlen > longest:
            self.fail(variable, f"{value} is too small for a link: the prefix must be /{longest} or shorter")
            return None
        for unusable, what in UNUSABLE_INNER:
            if unusable.version == version and network.overlaps(unusable):
                # Two CIDR blocks that overlap: the one with the longer prefix lies in the other.
                where = "is in" if network.prefixlen >= unusable.prefixlen else "overlaps"
                self.fail(
                    variable,
                    f"{network} {where} {unusable}, {what}; inner addresses must be ordinary unicast ones, choose "
                    "another range",
                )
                return None
        return network

    def metric(self, variable: str, value: t.Any) -> int | None:
        number = as_int(value)
        if number is None or not 1 <= number <= MAX_METRIC:
            self.fail(variable, f"{value!r} is not a number from 1 to {MAX_METRIC}")
            return None
        return number

    def boolean(self, variable: str, value: t.Any) -> bool | None:
        """A boolean as YAML or an INI inventory gives it (true/false, yes/no, on/off, 1/0, in any case)."""
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in BOOLEANS:
            return BOOLEANS[text]
        self.fail(variable, f"{value!r} is not a boolean (true or false)")
        return None

    def encap(self, variable: str, value: t.Any) -> str | None:
        """none, fou or gue, as the role's argument specs take them (choices: exactly); null is none."""
        if value is None:
            return NO_ENCAP
        if isinstance(value, str) and value in ENCAPS:
            return value
        self.fail(
            variable,
            f"{value!r} is not one of {', '.join(ENCAPS)} (none: plain GRE; fou and gue: GRE in UDP, the kernel's "
            "Foo-over-UDP and Generic UDP Encapsulation)",
        )
        return None

    def port(self, variable: str, value: t.Any) -> int | None:
        number = as_int(value)
        if number is None or not 1 <= number <= MAX_PORT:
            self.fail(variable, f"{value!r} is not a UDP port number from 1 to {MAX_PORT}")
            return None
        return number

    def choice(self, variable: str, value: t.Any, choices: tuple[int, ...]) -> int | None:
        number = as_int(value)
        if number not in choices:
            self.fail(variable, f"{value!r} is not one of {', '.join(str(c) for c in choices)}")
            return None
        return number


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


def example_network(version: int) -> str:
    return "10.0.0.0/16" if version == 4 else "fd00:6e65:7400::/64"


def parse_settings(
    pool: t.Any,
    prefix: t.Any,
    pool6: t.Any,
    prefix6: t.Any,
    mode: t.Any,
    ttl: t.Any,
    key: t.Any,
    mtu: t.Any,
    ipsec: t.Any,
    problems: Problems,
    encap: t.Any = NO_ENCAP,
    encap_port: t.Any = DEFAULT_ENCAP_PORT,
) -> Settings | None:
    """The topology-wide settings, or None when any is wrong (the problems say which)."""
    check = Checker(problems)
    before = len(problems.items)
    parsed_prefix = check.choice("gre_mesh_prefix", prefix, PREFIXES)
    parsed_prefix6 = check.choice("gre_mesh_prefix6", prefix6, PREFIXES6)
    parsed_pool = None if is_unset(pool) else check.network("gre_mesh_pool", pool, 4, parsed_prefix or 30)
    parsed_pool6 = None if is_unset(pool6) else check.network("gre_mesh_pool6", pool6, 6, parsed_prefix6 or 126)
    if is_unset(pool) and is_unset(pool6):
        check.fail(
            "gre_mesh_pool", "is empty, and so is gre_mesh_pool6; the tunnels need inner addresses from one of them"
        )
    parsed_mode = check.mode("gre_mesh_mode", mode)
    parsed_ttl = check.ttl("gre_mesh_ttl", ttl)
    parsed_key = check.key("gre_mesh_key", key)
    parsed_mtu = check.mtu("gre_mesh_mtu", mtu)
    parsed_ipsec = check.boolean("gre_mesh_ipsec", ipsec)
    parsed_encap = check.encap("gre_mesh_encap", encap)
    parsed_port = check.port("gre_mesh_encap_port", encap_port)
    if len(problems.items) > before:
        return None
    return Settings(
        pool=parsed_pool,
        prefix=t.cast(int, parsed_prefix),
        pool6=parsed_pool6,
        prefix6=t.cast(int, parsed_prefix6),
        mode=t.cast(str, parsed_mode),
        ttl=t.cast(int, parsed_ttl),
        key=parsed_key,
        mtu=parsed_mtu,
        ipsec=t.cast(bool, parsed_ipsec),
        encap=t.cast(str, parsed_encap),
        encap_port=t.cast(int, parsed_port),
    )


def parse_overrides(origin: str, item: t.Mapping[str, t.Any], problems: Problems) -> dict[str, t.Any]:
    """The per-link settings of an explicit link: only the keys it sets, checked."""
    check = Checker(problems)
    parsed: dict[str, t.Any] = {}
    for name in OVERRIDES:
        if is_unset(item.get(name)):
            continue
        variable = f"{origin}.{name}"
        value = item[name]
        if name == "mode":
            parsed[name] = check.mode(variable, value)
        elif name == "key":
            parsed[name] = check.key(variable, value)
        elif name == "ttl":
            parsed[name] = check.ttl(variable, value)
        elif name == "mtu":
            parsed[name] = check.mtu(variable, value)
        elif name == "metric":
            parsed[name] = check.metric(variable, value)
        elif name == "ipsec":
            parsed[name] = check.boolean(variable, value)
        elif name == "encap":
            parsed[name] = check.encap(variable, value)
        elif name == "encap_port":
            parsed[name] = check.port(variable, value)
        elif name == "subnet":
            parsed[name] = check.network(variable, value, 4, 31)
        elif name == "subnet6":
            parsed[name] = check.network(variable, value, 6, 127)
        else:
            parsed[name] = link_networks(variable, value, problems)
    return parsed


def link_networks(variable: str, value: t.Any, problems: Problems) -> tuple[IPNetwork, ...]:
    """The networks a link may carry (``networks`` of a gre_mesh_links entry): a route may use the link for a
    network inside one of them. Whether each holds a network behind a node is checked with the routes
    (routes.check_link_networks)."""
    if value == []:
        problems.add(f"{variable}: is empty, so the link would carry no network; remove the key to carry every network")
        return ()
    networks = parse_networks(variable, value, problems)
    for position, network in enumerate(networks):
        for other in networks[:position]:
            if other.version == network.version and other.overlaps(network):
                inner, outer = (network, other) if network.prefixlen >= other.prefixlen else (other, network)
                problems.add(f"{variable}: {inner} is inside {outer}, which it lists too; list only the larger one")
    return tuple(networks)
