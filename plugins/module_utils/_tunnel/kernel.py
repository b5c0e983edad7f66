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
    FOU_MODULE,
    GRE_PROTOCOL,
    IPV6_MODES,
    MANAGED_ALIAS,
    MODES,
    ROUTE_PROTOCOL,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host, busybox_problem, read_json
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import address_sort_key
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import (
    TOS_INHERIT,
    Encap,
    FouPort,
    Interface,
    Route,
    Tunnel,
)

READ_COMMAND = ["ip", "-details", "-json", "address", "show"]
BATCH_COMMAND = ["ip", "-batch", "-"]
# With routes to manage, the same read and every route of both families, in one process (measured on
# iproute2 6.1: `route show table main` shows IPv4 only, `-6` applies to a whole batch; `table all`
# shows both families, and -details names every route's table, type and protocol). Then the routes
# with this module's protocol again, filtered by number: ip prints a protocol by the name a host's
# /etc/iproute2/rt_protos(.d) may give 250 (measured), so the number is not in the full list.
ROUTED_READ_COMMAND = ["ip", "-details", "-json", "-batch", "-"]
ROUTED_READ_STDIN = f"address show\nroute show table all\nroute show table all proto {ROUTE_PROTOCOL}\n"
# With the fou module loaded, the FOU receive ports too, in the same process (`fou show` fails without
# it, and a failed line ends the batch: the module is looked for first, under /sys/module).
FOU_READ_STDIN = "fou show\n"
# What a kernel module gives, named when modprobe cannot load it.
PROVIDES = {FOU_MODULE: "FOU support (GRE in UDP, encap)"}


class Kernel:
    """The host's kernel, reached through ip and modprobe."""

    sys_module_dir = "/sys/module"
    # The interfaces an ip -batch is about to create, written before it runs and removed after it
    # succeeds. Left behind, it names what a killed or failed batch created but may not have marked
    # yet (the alias is a line of its own: Linux ignores it in `link add`). On tmpfs: a reboot
    # removes those interfaces and the file together.
    pending_file = "/run/linuxnet-gre/creating.json"
    # The FOU receive ports this module created (the kernel has no mark on them): only these are ever
    # deleted. Written before a batch that adds one runs, so that a cut-short batch leaves none
    # unaccounted for. On tmpfs, as the ports: a reboot removes both (the ports that the boot files of
    # persist create again count as the module's too: persist.boot_fou_ports).
    fou_file = "/run/linuxnet-gre/fou-ports.json"

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

    def read_all(self, routes: bool, fou: bool) -> tuple[dict[str, Interface], list[Route], list[FouPort] | None]:
        """The interfaces, the routes of the main table (with ``routes``) and, with ``fou``, the FOU receive ports,
        by one process.

        The ports are None when not asked for, or when the fou module is not loaded: then there are none, and
        `fou show` would fail (and end the batch).
        """
        if not (fou and self.module_loaded(FOU_MODULE)):
            if routes:
                interfaces, found = self.read_with_routes()
                return interfaces, found, None
            return self.read(), [], None
        stdin = (ROUTED_READ_STDIN if routes else "address show\n") + FOU_READ_STDIN
        documents = read_json(self, ROUTED_READ_COMMAND, stdin)
        found = parse_routes(documents[1], documents[2]) if routes else []
        return parse_interfaces(documents[0]), found, parse_fou_ports(documents[-1])

    def owned_ports(self) -> list[FouPort]:
        """The FOU receive ports this module noted as created (fou_file), whether the kernel still has them or not."""
        try:
            with open(self.fou_file, encoding="utf-8") as handle:
                entries = json.load(handle)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise GreError(f"cannot read {self.fou_file}: {exc}; delete it if no batch is running") from exc
        if not isinstance(entries, list):
            return []
        return sorted(
            FouPort(entry["port"], entry["type"])
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("port"), int) and isinstance(entry.get("type"), str)
        )

    def record_ports(self, ports: t.Iterable[FouPort]) -> None:
        """Note the FOU receive ports this module created (the file goes when there are none)."""
        entries = [port.as_dict() for port in sorted(set(ports))]
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.fou_file)
            return
        write_atomically(self.fou_file, entries)

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
        write_atomically(self.pending_file, sorted(names))

    def clear_creations(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.pending_file)

    def load_module(self, name: str, check_mode: bool) -> None:
        """Load a GRE (or the fou) kernel module (or, in check mode, only ask modprobe whether it could)."""
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
                f"this kernel has no {PROVIDES.get(name, 'GRE support')}: modprobe {name} failed: "
                f"{err.strip() or f'exit code {rc}'}",
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


def write_atomically(path: str, document: t.Any) -> None:
    """A JSON file of this module's own under /run (its directory 0700), replaced whole."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = f"{path}.{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


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
    # Each address parsed once (ipaddress is most of the read's parsing time for 200 tunnels).
    parsed = [
        ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}") for a in link.get("addr_info", []) if "local" in a
    ]
    link_local = tuple(sorted(str(a) for a in parsed if a.version == 6 and a.ip.is_link_local))
    order = tuple(str(a) for a in parsed)
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
        addresses=tuple(str(a) for a in sorted((a for a in parsed if str(a) not in link_local), key=address_sort_key)),
        up="UP" in link.get("flags", []),
        encap=parse_encap(data),
    )
    return Interface(name=name, kind=kind, managed=managed, tunnel=tunnel, link_local=link_local, address_order=order)


def parse_encap(data: dict[str, t.Any]) -> Encap | None:
    """ip prints ``encap`` only for a tunnel that has one: ``{type, sport (0: auto), dport, csum, csum6, remcsum}``.

    csum6 is left out: gre and gretap (the modes that take encap here) have no use for it, and iproute2 refuses
    to set it on them.
    """
    encap = data.get("encap")
    if not isinstance(encap, dict) or encap.get("type") in (None, "none"):
        return None
    return Encap(
        type=str(encap["type"]),
        dport=int(encap.get("dport", 0)),
        sport=int(encap.get("sport", 0)),
        csum=bool(encap.get("csum", False)),
        remcsum=bool(encap.get("remcsum", False)),
    )


# What `ip -json fou show` prints of a port bound to addresses or a device: not a port of this module's kind.
FOU_BINDINGS = ("local", "peer", "peer_port", "dev")


def parse_fou_ports(ports: list[dict[str, t.Any]]) -> list[FouPort]:
    """The IPv4 FOU receive ports, from ``ip -json fou show`` (``{"port", "ipproto" | "gue", "family"}``)."""
    result = []
    for entry in ports:
        if entry.get("family", "inet") != "inet":
            continue
        if any(key in entry for key in FOU_BINDINGS):
            kind = "other"
        elif "gue" in entry:
            kind = "gue"
        elif entry.get("ipproto") == GRE_PROTOCOL:
            kind = "fou"
        else:
            kind = "other"
        result.append(FouPort(int(entry["port"]), kind))
    return sorted(result)


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
