# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_tunnel's ip and modprobe, and the kernel's state.

Nothing else in gre_tunnel runs ip or modprobe (the files of its persist option, and their systemctl,
go through persist.Files). Both reach the host through the one seam, _host.Host; tests replace
Kernel.run with answers captured from a real kernel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    DEFAULT_METRIC,
    IPV6_MODES,
    MANAGED_ALIAS,
    MODES,
    ROUTE_PROTOCOL,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host, busybox_problem, read_json
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import is_link_local_ipv6, sort_addresses
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import TOS_INHERIT, Interface, Route, Tunnel

READ_COMMAND = ["ip", "-details", "-json", "address", "show"]
BATCH_COMMAND = ["ip", "-batch", "-"]
# With routes to manage, the same read and every route of both families, in one process (measured on
# iproute2 6.1: `route show table main` shows IPv4 only, `-6` applies to a whole batch; `table all`
# shows both families, and -details names every route's table, type and protocol). Then the routes
# with this module's protocol again, filtered by number: ip prints a protocol by the name a host's
# /etc/iproute2/rt_protos(.d) may give 250 (measured), so the number is not in the full list.
ROUTED_READ_COMMAND = ["ip", "-details", "-json", "-batch", "-"]
ROUTED_READ_STDIN = f"address show\nroute show table all\nroute show table all proto {ROUTE_PROTOCOL}\n"


class Kernel:
    """The host's kernel, reached through ip and modprobe."""

    sys_module_dir = "/sys/module"
    # The interfaces an ip -batch is about to create, written before it runs and removed after it
    # succeeds. Left behind, it names what a killed or failed batch created but may not have marked
    # yet (the alias is a line of its own: Linux ignores it in `link add`). On tmpfs: a reboot
    # removes those interfaces and the file together.
    pending_file = "/run/linuxnet-gre/creating.json"

    def __init__(self, host: Host) -> None:
        self._host = host

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
        """Run one command (argv[0] is ip or modprobe) through the host seam."""
        return self._host.run(argv, stdin)

    def module_loaded(self, name: str) -> bool:
        """True when the kernel module is loaded or built in (both show up under /sys/module)."""
        return self._host.exists(os.path.join(self.sys_module_dir, name))

    def read(self) -> dict[str, Interface]:
        (links,) = read_json(self, READ_COMMAND)
        return parse_interfaces(links)

    def read_with_routes(self) -> tuple[dict[str, Interface], list[Route]]:
        """The interfaces and the routes of the main table, read by one process."""
        links, routes, ours = read_json(self, ROUTED_READ_COMMAND, ROUTED_READ_STDIN)
        return parse_interfaces(links), parse_routes(routes, ours)

    def pending_creations(self) -> list[str]:
        """The interfaces an earlier batch was creating when it was cut short (none if it completed)."""
        try:
            with open(self.pending_file, encoding="utf-8") as handle:
                names = json.load(handle)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise GreError(f"cannot read {self.pending_file}: {exc}; delete it if no batch is running") from exc
        return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []

    def record_creations(self, names: list[str]) -> None:
        """Write down, before the batch runs, the interfaces it will create."""
        directory = os.path.dirname(self.pending_file)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        temporary = f"{self.pending_file}.{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(sorted(names), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.pending_file)

    def clear_creations(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.pending_file)

    def load_module(self, name: str, check_mode: bool) -> None:
        """Load a GRE kernel module (or, in check mode, only ask modprobe whether it could)."""
        argv = ["modprobe", "--dry-run", name] if check_mode else ["modprobe", name]
        try:
            rc, _out, err = self.run(argv)
        except GreError as exc:  # modprobe is not installed: the error names its package
            raise GreError(not_loaded(name, exc.msg), **exc.details) from None
        busybox = busybox_problem(argv, err) if rc != 0 else None
        if busybox is not None:
            raise GreError(not_loaded(name, busybox), command=argv, stderr=err)
        if rc != 0:
            raise GreError(
                f"this kernel has no GRE support: modprobe {name} failed: {err.strip() or f'exit code {rc}'}",
                command=argv,
                stderr=err,
            )

    def apply(self, lines: list[str], names: list[str]) -> None:
        """Run all changes in one ip -batch; ``names[i]`` is the interface that ``lines[i]`` changes."""
        rc, out, err = self.run(BATCH_COMMAND, stdin="".join(f"{line}\n" for line in lines))
        if rc == 0:
            return
        match = re.search(r"Command failed -:(\d+)", err)
        if match and 0 < int(match.group(1)) <= len(lines):
            index = int(match.group(1)) - 1
            raise GreError(
                f"{names[index]}: ip {lines[index]} failed: {failure_text(err)}",
                command=BATCH_COMMAND,
                stdin=lines,
                stderr=err,
                failed_line=lines[index],
                interface=names[index],
            )
        raise GreError(
            f"ip -batch - failed: {err.strip() or out.strip()}", command=BATCH_COMMAND, stdin=lines, stderr=err
        )


def not_loaded(name: str, problem: str) -> str:
    """The error for a kernel module that modprobe cannot load (gre_tunnel's, and gre_host_facts's report of it)."""
    return f"the kernel module {name} is not loaded, and {problem}"


def failure_text(stderr: str) -> str:
    return " ".join(
        line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("Command failed")
    )


def parse_interfaces(links: list[dict[str, t.Any]]) -> dict[str, Interface]:
    """Interfaces by name, from ``ip -details -json address show``."""
    return {link["ifname"]: parse_interface(link) for link in links}


def parse_interface(link: dict[str, t.Any]) -> Interface:
    name = link["ifname"]
    kind = link.get("linkinfo", {}).get("info_kind")
    managed = link.get("ifalias") == MANAGED_ALIAS
    addresses = [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if "local" in a]
    addresses = [str(ipaddress.ip_interface(a)) for a in addresses]
    link_local = tuple(sorted(a for a in addresses if is_link_local_ipv6(a)))
    order = tuple(addresses)
    if kind not in MODES:
        return Interface(name=name, kind=kind, managed=managed, link_local=link_local, address_order=order)
    data = link["linkinfo"].get("info_data", {})
    tunnel = Tunnel(
        name=name,
        mode=kind,
        remote=endpoint(data.get("remote")) or "any",
        local=endpoint(data.get("local")),
        ttl=int(data.get("ttl", 0)),
        tos=tunnel_tos(kind, data),
        ikey=dotted_key(data.get("ikey")),
        okey=dotted_key(data.get("okey")),
        pmtudisc=None if kind in IPV6_MODES else bool(data.get("pmtudisc", False)),
        mtu=link.get("mtu"),
        dev=data.get("link"),
        addresses=sort_addresses(a for a in addresses if a not in link_local),
        up="UP" in link.get("flags", []),
    )
    return Interface(name=name, kind=kind, managed=managed, tunnel=tunnel, link_local=link_local, address_order=order)


def endpoint(value: str | None) -> str | None:
    return None if value in (None, "any") else str(ipaddress.ip_address(value))


def tunnel_tos(kind: str, data: dict[str, t.Any]) -> str:
    """gre prints ``tos`` only when set (1 means inherit); ip6gre prints ``tclass`` or an inherit flag."""
    if kind in IPV6_MODES:
        if data.get("ip6_tnl_f_use_orig_tclass"):
            return TOS_INHERIT
        value = int(data.get("tclass", "0x00"), 16)
    else:
        value = int(data.get("tos", "0x0"), 16)
        if value == 1:
            return TOS_INHERIT
    return f"0x{value:02x}"


def dotted_key(value: str | None) -> int | None:
    return None if value is None else int(ipaddress.IPv4Address(value))


def parse_routes(routes: list[dict[str, t.Any]], ours: list[dict[str, t.Any]]) -> list[Route]:
    """The unicast routes of the main table, from ``ip -details -json route show table all``; ``ours``: the same
    filtered by this module's protocol number (a prefix and a metric name one route of a table)."""
    marked = {parse_route(route).key for route in main_routes(ours)}
    return [dataclasses.replace(route, ours=route.key in marked) for route in map(parse_route, main_routes(routes))]


def main_routes(routes: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    return [
        route
        for route in routes
        if route.get("table", "main") == "main" and route.get("type", "unicast") == "unicast" and "dev" in route
    ]


def parse_route(route: dict[str, t.Any]) -> Route:
    """ip prints a host route as a bare address and the default route as ``default``; only IPv6 routes have ``pref``.

    ``ours`` is settled by parse_routes; ip omits the protocol boot without -details, and a filtered one.
    """
    version = 6 if "pref" in route or ":" in route.get("gateway", "") else 4
    dst = route["dst"]
    if dst == "default":
        dst = "::/0" if version == 6 else "0.0.0.0/0"
    protocol = str(route.get("protocol", "boot"))
    gateway = route.get("gateway")
    return Route(
        prefix=str(ipaddress.ip_network(dst)),
        dev=route["dev"],
        via=str(ipaddress.ip_address(gateway)) if gateway is not None else None,
        metric=int(route.get("metric", DEFAULT_METRIC[version])),
        ours=False,
        protocol=protocol,
    )
