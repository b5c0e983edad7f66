# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_forward's work.

Forwarding (``net.ipv4.ip_forward``, ``net.ipv6.conf.all.forwarding``), ``accept_ra=2`` where IPv6
forwarding would cost a host its router advertisements, and loose reverse-path filtering on the
tunnels that carry routed traffic. The kernel is read in ``/proc/sys`` (through the host seam, no
process per key), changed with one ``sysctl -w`` for all keys, and the settings are kept for boot
in one sysctl.d file of the collection's own, which also remembers (comments) the value each key
had before the collection switched it: only such a key, still holding the collection's value, is
ever put back.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import FORWARD_CONF, MAX_NAME_LENGTH
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host, output, read_json
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import Files

FILE = FORWARD_CONF
HEADER = (
    "# Written by linuxnet.gre.gre_forward: forwarding and reverse-path filtering for the routed networks of\n"
    "# linuxnet.gre. Its next run rewrites or removes this file; an edit is lost. A 'was' line records the value\n"
    "# a key had before linuxnet.gre switched it; it is put back when no longer planned, if the key still holds\n"
    "# linuxnet.gre's value.\n"
)
WAS = "# was "
PROC = "/proc/sys/"
IPV4_FORWARD = "net/ipv4/ip_forward"
IPV6_FORWARD = "net/ipv6/conf/all/forwarding"
FORWARD_KEYS = {4: IPV4_FORWARD, 6: IPV6_FORWARD}
ALL_RP_FILTER = "net/ipv4/conf/all/rp_filter"
DEFAULT_RP_FILTER = "net/ipv4/conf/default/rp_filter"
RP_FILTER = "net/ipv4/conf/{name}/rp_filter"
ACCEPT_RA = "net/ipv6/conf/{name}/accept_ra"
STRICT, LOOSE = 1, 2
ACCEPT_RA_EVEN_FORWARDING = 2
# The routes the kernel learned from router advertisements (protocol "ra"), every table, one process.
RA_ROUTES = ["ip", "-6", "-json", "route", "show", "table", "all", "proto", "ra"]
# Words the kernel keeps for itself under net/ipv4/conf and net/ipv6/conf.
RESERVED_NAMES = ("all", "default")
_BAD_NAME_CHARACTER = re.compile(r"[/:=#\s]")


def sysctl_name(path: str) -> str:
    """A key as sysctl and sysctl.d write it: dots, or slashes when a part holds a dot (an interface like gre.1)."""
    return path.replace("/", ".") if "." not in path else path


def key_path(name: str) -> str:
    """A key written either way (sysctl.d: the first separator decides), as its path under /proc/sys."""
    name = name.strip().lstrip("/")
    slash, dot = name.find("/"), name.find(".")
    return name if slash != -1 and (dot == -1 or slash < dot) else name.replace(".", "/")


@dataclasses.dataclass
class Entry:
    """One line of the collection's sysctl.d file: a key's value, and the value it had before we switched it."""

    value: str
    was: str | None = None


def parse_file(text: str | None) -> dict[str, Entry]:
    """The entries of the file (by path), with their 'was' records."""
    entries: dict[str, Entry] = {}
    records: dict[str, str] = {}
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line.startswith(WAS) and "=" in line:
            key, value = line[len(WAS) :].split("=", 1)
            records[key_path(key)] = value.strip()
        elif line and not line.startswith(("#", ";")) and "=" in line:
            key, value = line.split("=", 1)
            entries[key_path(key.lstrip("-"))] = Entry(value.strip())
    for path, entry in entries.items():
        entry.was = records.get(path)
    return entries


def render_file(entries: dict[str, Entry]) -> str | None:
    """The file's text; None when there is nothing to keep (the file is removed)."""
    if not entries:
        return None
    lines = [HEADER]
    for path, entry in entries.items():
        if entry.was is not None:
            lines.append(f"{WAS}{sysctl_name(path)} = {entry.was}\n")
        lines.append(f"{sysctl_name(path)} = {entry.value}\n")
    return "".join(lines)


def check_params(params: dict[str, t.Any]) -> tuple[list[int], list[str]]:
    """The families and interfaces asked for; GreError naming the option and the fix for a bad one."""
    families = sorted(set(params["forward"]))
    interfaces: list[str] = []
    for name in params["interfaces"]:
        if not name or len(name.encode()) > MAX_NAME_LENGTH or name in (".", "..") or _BAD_NAME_CHARACTER.search(name):
            raise GreError(
                f"interfaces: {name!r} is not an interface name: give 1 to {MAX_NAME_LENGTH} bytes without '/', ':',"
                " '=', '#' or white space (the names of the host's tunnels)",
                interface=name,
            )
        if name in RESERVED_NAMES:
            raise GreError(
                f"interfaces: {name!r} names the kernel's settings for every interface, not an interface; give the"
                " names of the host's tunnels (gre_forward never changes conf.all or conf.default)",
                interface=name,
            )
        if name not in interfaces:
            interfaces.append(name)
    return families, interfaces


class Kernel:
    """What the kernel holds, read once per key through the host seam (cached)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.values: dict[str, str | None] = {}

    def get(self, path: str) -> str | None:
        if path not in self.values:
            text = self.host.read_text(PROC + path)
            self.values[path] = None if text is None else text.strip()
        return self.values[path]

    def ra_interfaces(self) -> list[str]:
        """The interfaces through which the kernel holds routes learned from router advertisements."""
        (routes,) = read_json(self.host, RA_ROUTES)
        return sorted({route["dev"] for route in routes if route.get("dev")})


def wanted_entries(
    kernel: Kernel, families: list[int], interfaces: list[str], old: dict[str, Entry]
) -> dict[str, Entry]:
    """The file's entries after this run: forwarding, accept_ra, rp_filter; each with its 'was' record."""
    wanted: dict[str, str] = {}
    for family in families:
        if kernel.get(FORWARD_KEYS[family]) is None:
            raise GreError(
                f"forward: this host's kernel has no IPv{family} ({PROC}{FORWARD_KEYS[family]} is missing); drop"
                f" {family} from forward, or enable IPv{family} on the host",
                key=sysctl_name(FORWARD_KEYS[family]),
            )
    if 6 in families and (kernel.get(IPV6_FORWARD) != "1" or (IPV6_FORWARD in old and old[IPV6_FORWARD].was)):
        # IPv6 forwarding on makes accept_ra=1 ignore router advertisements: keep the routes learned from them.
        kept = [path for path in old if path.startswith("net/ipv6/conf/") and path.endswith("/accept_ra")]
        learned = [ACCEPT_RA.format(name=name) for name in kernel.ra_interfaces()]
        for path in [*kept, *(p for p in learned if p not in kept and kernel.get(p) == "1")]:
            wanted[path] = str(ACCEPT_RA_EVEN_FORWARDING)
    for family in families:
        wanted[FORWARD_KEYS[family]] = "1"
    all_rp = int(kernel.get(ALL_RP_FILTER) or 0)
    default_rp = int(kernel.get(DEFAULT_RP_FILTER) or 0)
    for name in interfaces:
        path = RP_FILTER.format(name=name)
        own = kernel.get(path)
        # A tunnel not created yet gets conf.default's value when it is (check mode, before the apply step).
        if path in old or max(all_rp, int(own if own is not None else default_rp)) == STRICT:
            wanted[path] = str(LOOSE)
    entries: dict[str, Entry] = {}
    for path, value in wanted.items():
        current = kernel.get(path)
        was = old[path].was if path in old else None
        if was is None and current is not None and current != value:
            was = current
        entries[path] = Entry(value, was)
    return entries


def converge(host: Host, params: dict[str, t.Any], check_mode: bool, diff: bool) -> dict[str, t.Any]:
    families, interfaces = check_params(params)
    files = Files(host)
    before_text = files.read(FILE)
    old = parse_file(before_text)
    kernel = Kernel(host)
    entries = wanted_entries(kernel, families, interfaces, old)
    after_text = render_file(entries)

    sets: dict[str, str] = {}
    for path, entry in entries.items():
        if kernel.get(path) is not None and kernel.get(path) != entry.value:
            sets[path] = entry.value
    restores: dict[str, str] = {}
    for path, entry in old.items():
        if path not in entries and entry.was is not None and kernel.get(path) == entry.value:
            restores[path] = entry.was
    # Put back forwarding before accept_ra (the kernel then honours router advertisements again at once).
    changes = {**sets, **dict(sorted(restores.items(), key=lambda item: item[0].endswith("/accept_ra")))}
    command = ["sysctl", "-w", *(f"{sysctl_name(path)}={value}" for path, value in changes.items())]
    changed = bool(changes) or before_text != after_text

    paths = list(dict.fromkeys([*changes, *entries, *old, *(FORWARD_KEYS[f] for f in (4, 6))]))
    before = {sysctl_name(path): kernel.get(path) for path in paths if kernel.get(path) is not None}
    after = dict(before, **{sysctl_name(path): value for path, value in changes.items()})

    if not check_mode:
        if changes:
            output(host, command)
        if after_text is None:
            if before_text is not None:
                files.remove(FILE)
        elif after_text != before_text:
            files.write(FILE, after_text)

    result: dict[str, t.Any] = {
        "changed": changed,
        "forwarding": {f"ipv{f}": after.get(sysctl_name(FORWARD_KEYS[f])) == "1" for f in (4, 6)},
        "sysctls": {sysctl_name(path): after[sysctl_name(path)] for path in entries if sysctl_name(path) in after},
        "switched": {sysctl_name(path): entry.was for path, entry in entries.items() if entry.was is not None},
        "restored": {sysctl_name(path): value for path, value in restores.items()},
        "commands": [" ".join(command)] if changes else [],
        "file": {"path": FILE, "state": "absent" if after_text is None else "present"},
    }
    if diff:
        result["diff"] = [
            {
                "before_header": "sysctl",
                "after_header": "sysctl",
                "before": "".join(f"{key} = {value}\n" for key, value in before.items()),
                "after": "".join(f"{key} = {value}\n" for key, value in after.items()),
            },
            {
                "before_header": FILE,
                "after_header": FILE,
                "before": before_text or "",
                "after": after_text or "",
            },
        ]
    return result
