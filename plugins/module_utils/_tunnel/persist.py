# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_tunnel's ``persist``, the files that bring the tunnels back at boot.

- ``unit``: ``/etc/linuxnet-gre/tunnels.batch``, the ``ip -batch`` lines gre_tunnel runs to create
  the tunnels (alias included), and ``linuxnet-gre.service``, a oneshot enabled for
  multi-user.target that runs them with ``ip -force -batch``.
- ``networkd``: per tunnel ``60-linuxnet-gre-NAME.netdev`` and ``.network`` in /etc/systemd/network,
  and one ``60-linuxnet-gre.link`` whose ``Alias=`` marks the tunnels networkd creates as managed.
- ``none``: neither.
- ``auto``: the host decides (``_systemd.auto_mechanism``): networkd where systemd-networkd can bring the
  tunnels back (active and enabled, udevd running, systemd 252 or newer for ``Independent=``), else the unit
  where systemd runs, else none, with a warning.

Whatever of these exists and is not wanted is removed. Everything is checked (``prepare``) before
gre_tunnel changes the kernel; the files are written after (``Persistence.apply``), then one
``systemctl`` or ``networkctl`` call per thing that changed. A host where nothing changed costs a
read of the files and no process. Files holds every path persistence touches (under ``root``, which tests
point elsewhere); its commands, and its reads of networkd's state, go through the host seam, _host.Host.

A tunnel that stays while its ``.network`` file goes (a switch away from networkd) is *released*:
told to reload, networkd stops managing it, and with ``networkctl reload`` it drops the addresses it
configured there (systemd 252, measured: tests/unit/plugins/modules/fixtures/networkd/).
``wait_released`` waits, bounded, until networkd's state for each such tunnel says it no longer
holds it; gre_tunnel then puts back what is missing.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os
import tempfile
import time
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    FOU_MODULE,
    IPV6_MODES,
    MANAGED_ALIAS,
    ROUTE_PROTOCOL,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host, key_values, output
from ansible_collections.linuxnet.gre.plugins.module_utils._systemd import (
    PERSIST_PROBLEMS,
    auto_mechanism,
    networkd_problem,
    services,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.changes import (
    Plan,
    add_create_steps,
    fou_line,
    route_words,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import TOS_INHERIT, FouPort, Route, Tunnel

# The routes of each tunnel that gives them (gre_tunnel's routes option), by tunnel name.
Routes = t.Mapping[str, t.Sequence[Route]]

MECHANISMS = ("unit", "networkd", "none")
# What gre_tunnel's persist option takes: a mechanism, or auto for the one the host supports.
AUTO = "auto"
CHOICES = (AUTO, *MECHANISMS)
NOT_PERSISTED = (
    "persist=auto: this host does not run systemd, so its GRE tunnels are not persisted and will be gone after a "
    "reboot. Run this again after each boot, or set persist to none for this host (gre_mesh_persist: none with "
    "the role linuxnet.gre.gre_mesh) to silence this warning."
)
NETWORKD_DIR = "/etc/systemd/network"
PREFIX = "60-linuxnet-gre"
NETWORKD_SUFFIXES = (".netdev", ".network", ".link")
NETDEV_PATTERN = f"{NETWORKD_DIR}/{PREFIX}-*.netdev"
BATCH_DIR = "/etc/linuxnet-gre"
BATCH = f"{BATCH_DIR}/tunnels.batch"
# With GRE in UDP: the fou module, loaded at boot by systemd-modules-load.service before the unit runs
# (neither `ip fou add` nor `ip link add … encap` loads it).
MODULES_FILE = "/etc/modules-load.d/linuxnet-gre.conf"
UNIT = "linuxnet-gre.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
# What `systemctl enable` makes of the unit's [Install] section; its presence is "enabled".
WANTS_LINK = f"/etc/systemd/system/multi-user.target.wants/{UNIT}"
# networkd's state of each link it knows (ADMIN_STATE=, NETWORK_FILE=), by interface index.
IFINDEX = "/sys/class/net/{name}/ifindex"
LINK_STATE = "/run/systemd/netif/links/{ifindex}"
# The states of a link networkd has not decided about yet (networkd-link.c's link_state_table).
UNDECIDED = ("pending", "initialized", "configuring")
# How long gre_tunnel waits for networkd to let go of released tunnels, and how often it looks.
# Measured on the lab (systemd 252, tests/unit/plugins/modules/fixtures/networkd/README.md): let go
# 0.15-0.31 s after `networkctl reload` started, 0.28-1.13 s after `systemctl restart` of networkd did.
RELEASE_TIMEOUT = 10.0
RELEASE_POLL = 0.1
HEADER = "# Written by linuxnet.gre.gre_tunnel (persist: {mechanism}); its next run overwrites any edit.\n"

UNIT_TEXT = f"""\
# Re-creates the GRE tunnels of linuxnet.gre at boot, from {BATCH}.
# Once per boot: while the host runs, linuxnet.gre.gre_tunnel changes the tunnels itself. Stopping
# this unit leaves the tunnels alone. The kernel takes a tunnel whose local address is not there
# yet, so this need not wait for the underlay; it runs before network.target, for services that
# bind the tunnels' addresses.
[Unit]
Description=GRE tunnels of linuxnet.gre
Documentation=man:ip-link(8)
DefaultDependencies=no
Wants=network.target
After=local-fs.target network-pre.target systemd-modules-load.service systemd-sysctl.service
Before=network.target shutdown.target
Conflicts=shutdown.target
ConditionPathExists={BATCH}

[Service]
Type=oneshot
RemainAfterExit=yes
# -force: a tunnel that fails does not keep the others down; the unit then shows failed.
ExecStart=ip -force -batch {BATCH}

[Install]
WantedBy=multi-user.target
"""


class Files:
    """The host's files and its systemctl/networkctl; the one place persistence touches the host.

    Paths are absolute and taken under ``root`` (tests point it at a directory of their own).
    """

    root = "/"

    def __init__(self, host: Host) -> None:
        self._host = host

    def _at(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def read(self, path: str) -> str | None:
        try:
            with open(self._at(path), encoding="utf-8") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise GreError(f"persist: cannot read {path}: {getattr(exc, 'strerror', None) or exc}", path=path) from None

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._at(path))

    def glob(self, pattern: str) -> list[str]:
        root = self._at("")
        return sorted("/" + os.path.relpath(path, root) for path in glob.glob(self._at(pattern)))

    def blocking_file(self, path: str) -> str | None:
        """The first existing ancestor of ``path`` when it is not a directory: nothing could be written there."""
        parent = os.path.dirname(path)
        while not self.exists(parent):
            parent = os.path.dirname(parent)
        return None if os.path.isdir(self._at(parent)) else parent

    def write(self, path: str, content: str) -> None:
        """Atomically, mode 0644; the directory is made (0755) when missing."""
        directory = os.path.dirname(self._at(path))
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".linuxnet-gre-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
            os.chmod(temporary, 0o644)
            os.replace(temporary, self._at(path))
        except BaseException:
            os.unlink(temporary)
            raise

    def remove(self, path: str) -> None:
        target = self._at(path)
        if os.path.isdir(target) and not os.path.islink(target):
            os.rmdir(target)
        else:
            os.unlink(target)

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
        """systemctl or networkctl, through the host seam."""
        return self._host.run(argv, stdin)

    def state(self, path: str) -> str | None:
        """A file of the running system (/sys, networkd's /run/systemd/netif), through the host seam; not under root."""
        return self._host.read_text(path)

    @staticmethod
    def clock() -> float:
        return time.monotonic()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


def tunnel_ports(tunnels: list[Tunnel]) -> list[FouPort]:
    """The FOU receive ports these tunnels need (one per dport), sorted."""
    return sorted({FouPort(tunnel.encap.dport, tunnel.encap.type) for tunnel in tunnels if tunnel.encap is not None})


def batch_lines(tunnels: list[Tunnel], routes: Routes | None = None) -> list[str]:
    """What gre_tunnel runs to create these tunnels on a host that has none of them: their FOU receive ports,
    links, addresses, routes."""
    plan = Plan()
    for tunnel in tunnels:
        add_create_steps(plan, tunnel)
    added = [f"route add {route_words(route)}" for tunnel in tunnels for route in (routes or {}).get(tunnel.name, ())]
    ports = [fou_line("add", port) for port in tunnel_ports(tunnels)]
    return ports + [line for _name, line in plan.creates + plan.address_adds] + added


def boot_fou_ports(files: Files) -> set[FouPort]:
    """The FOU receive ports the unit's batch file creates at boot: this module's, like those it notes itself."""
    ports = set()
    for line in (files.read(BATCH) or "").splitlines():
        words = line.split()
        if words[:3] == ["fou", "add", "port"] and len(words) > 4 and words[3].isdigit():
            ports.add(FouPort(int(words[3]), "gue" if words[4] == "gue" else "fou"))
    return ports


def route_settings(route: Route) -> list[list[str]]:
    """The [Route] section of a .network file for a route: networkd adds it with gre_tunnel's protocol."""
    pairs = [["Destination", route.prefix]]
    if route.via is not None:
        pairs.append(["Gateway", route.via])
    return pairs + [["Metric", str(route.metric)], ["Protocol", str(ROUTE_PROTOCOL)]]


def route_sections(routes: t.Sequence[Route]) -> str:
    return "".join("\n" + section("Route", route_settings(route)) for route in routes)


def networkd_gap(tunnel: Tunnel) -> str | None:
    """What of TUNNEL this module's systemd-networkd files cannot express (None: nothing), in words naming the option.

    persist=auto takes the unit for a host with such a tunnel; persist=networkd fails naming it."""
    name = tunnel.name
    if tunnel.encap is not None:
        return (
            f"tunnel {name}: encap: this module does not persist GRE in UDP with systemd-networkd (not tested with "
            "systemd 252's FooOverUDP= settings); persist it with the unit"
        )
    if tunnel.dev is not None:
        return (
            f"tunnel {name}: dev: a tunnel bound to an underlay device cannot be persisted with systemd-networkd "
            "here; persist it with the unit"
        )
    if tunnel.tos != "0x00" and tunnel.mode in IPV6_MODES:
        return (
            f"tunnel {name}: tos: systemd-networkd has no traffic class setting for {tunnel.mode}; "
            "persist it with the unit"
        )
    return None


def networkd_settings(tunnel: Tunnel) -> dict[str, t.Any]:
    """The .netdev sections of a tunnel (systemd 252 and later, for Independent=: _systemd.NETWORKD_SYSTEMD) and its
    addresses."""
    name = tunnel.name
    gap = networkd_gap(tunnel)
    if gap is not None:
        raise GreError(gap, tunnel=name)
    netdev = [["Name", name], ["Kind", tunnel.mode]]
    if tunnel.mtu is not None:
        netdev.append(["MTUBytes", str(tunnel.mtu)])
    settings = []
    if tunnel.local is not None:
        settings.append(["Local", tunnel.local])
    settings += [["Remote", tunnel.remote], ["TTL", str(tunnel.ttl)]]
    if tunnel.tos != "0x00":
        # The kernel's TOS 1 means inherit, as `ip … tos inherit` sets it.
        settings.append(["TOS", "1" if tunnel.tos == TOS_INHERIT else str(int(tunnel.tos, 16))])
    if tunnel.ikey is not None and tunnel.ikey == tunnel.okey:
        settings.append(["Key", str(tunnel.ikey)])
    else:
        if tunnel.ikey is not None:
            settings.append(["InputKey", str(tunnel.ikey)])
        if tunnel.okey is not None:
            settings.append(["OutputKey", str(tunnel.okey)])
    if tunnel.pmtudisc is not None:
        settings.append(["DiscoverPathMTU", "yes" if tunnel.pmtudisc else "no"])
    # Created when networkd starts, bound to no underlay link: the local address may come later.
    settings.append(["Independent", "yes"])
    return {"name": name, "netdev": netdev, "tunnel": settings, "addresses": list(tunnel.addresses)}


def section(title: str, pairs: list[list[str]]) -> str:
    return f"[{title}]\n" + "".join(f"{key}={value}\n" for key, value in pairs)


def networkd_files(tunnels: list[Tunnel], routes: Routes | None = None) -> dict[str, str]:
    header = HEADER.format(mechanism="networkd")
    files = {}
    for tunnel in tunnels:
        settings = networkd_settings(tunnel)
        base = f"{NETWORKD_DIR}/{PREFIX}-{tunnel.name}"
        files[f"{base}.netdev"] = (
            f"{header}# GRE tunnel {tunnel.name}: systemd-networkd creates it at boot. While the host runs,\n"
            "# linuxnet.gre.gre_tunnel changes it; this file follows it for the next boot.\n"
            f"{section('NetDev', settings['netdev'])}\n{section('Tunnel', settings['tunnel'])}"
        )
        files[f"{base}.network"] = (
            f"{header}# Addresses of GRE tunnel {tunnel.name} (see {PREFIX}-{tunnel.name}.netdev).\n"
            f"{section('Match', [['Name', tunnel.name]])}\n"
            "[Link]\n# A tunnel whose peer is away must not hold up network-online.target.\nRequiredForOnline=no\n\n"
            "[Network]\n# Router advertisements from the peer configure nothing here.\nIPv6AcceptRA=no\n"
            + "".join(f"Address={address}\n" for address in settings["addresses"])
            + route_sections((routes or {}).get(tunnel.name, ()))
        )
    files[f"{NETWORKD_DIR}/{PREFIX}.link"] = (
        f"{header}# udev gives the GRE tunnels that systemd-networkd creates at boot the alias that marks them as\n"
        "# linuxnet.gre's own, as linuxnet.gre.gre_tunnel does when it creates them: without it, the module\n"
        "# would refuse to change or delete them.\n"
        f"{section('Match', [['OriginalName', ' '.join(tunnel.name for tunnel in tunnels)]])}\n"
        f"{section('Link', [['Alias', MANAGED_ALIAS]])}"
    )
    return files


def unit_files(tunnels: list[Tunnel], routes: Routes | None = None) -> dict[str, str]:
    header = HEADER.format(mechanism="unit")
    batch = (
        f"{header}# The GRE tunnels of this host: {UNIT} creates them at boot with `ip -force -batch` (the\n"
        "# commands linuxnet.gre.gre_tunnel runs to create them, alias included).\n"
        + "".join(f"{line}\n" for line in batch_lines(tunnels, routes))
    )
    files = {BATCH: batch, UNIT_FILE: header + UNIT_TEXT}
    if tunnel_ports(tunnels):
        files[MODULES_FILE] = (
            f"{header}# The kernel module of GRE in UDP, for the FOU receive ports and tunnels of {BATCH}.\n{FOU_MODULE}\n"
        )
    return files


def network_file(name: str) -> str:
    return f"{NETWORKD_DIR}/{PREFIX}-{name}.network"


def wanted_files(mechanism: str, tunnels: list[Tunnel], routes: Routes | None = None) -> dict[str, str]:
    """Path -> content of what ``mechanism`` persists for these tunnels and their routes (none for no tunnels)."""
    if mechanism == "none" or not tunnels:
        return {}
    return networkd_files(tunnels, routes) if mechanism == "networkd" else unit_files(tunnels, routes)


def keep_boot_mtus(booted: dict[str, int | None], tunnels: list[Tunnel], omitted: t.AbstractSet[str]) -> list[Tunnel]:
    """The tunnels to persist: one whose MTU the user left out keeps the MTU its boot files give it.

    An omitted MTU means "leave it alone" (the role omits it when a peer's underlay MTU is unknown,
    as with --limit), in the kernel and at boot alike: a tunnel the boot files already hold keeps
    their MTU (or their lack of one, ``booted``); one they do not hold yet is persisted as the run
    leaves it (``tunnels`` are the plan's settled ones: an existing tunnel at its current MTU).
    """
    return [
        dataclasses.replace(tunnel, mtu=booted[tunnel.name])
        if tunnel.name in omitted and tunnel.name in booted
        else tunnel
        for tunnel in tunnels
    ]


def boot_mtus(persisted: dict[str, str | None]) -> dict[str, int | None]:
    """The MTU of each tunnel in the files persisted before (None where they leave it to the kernel).

    ``persisted``: the files found, with their content (``read_persisted``).
    """
    result: dict[str, int | None] = {}
    for line in (persisted.get(BATCH) or "").splitlines():
        words = line.split()
        if words[:3] == ["link", "add", "name"] and len(words) > 3:  # link add name NAME [mtu N] type …
            mtu = words[5] if words[4:5] == ["mtu"] and len(words) > 5 else ""
            result[words[3]] = int(mtu) if mtu.isdigit() else None
    for path, content in persisted.items():
        if fnmatch.fnmatchcase(path, NETDEV_PATTERN):
            settings = key_values(content)
            if "Name" in settings:
                mtu = settings.get("MTUBytes", "")
                result[settings["Name"]] = int(mtu) if mtu.isdigit() else None
    return result


def found_files(files: Files) -> list[str]:
    """What gre_tunnel may have persisted before, found on the host."""
    networkd = [p for p in files.glob(f"{NETWORKD_DIR}/{PREFIX}*") if p.endswith(NETWORKD_SUFFIXES)]
    return networkd + [path for path in (BATCH, BATCH_DIR, UNIT_FILE, MODULES_FILE) if files.exists(path)]


def read_persisted(files: Files, found: list[str]) -> dict[str, str | None]:
    """The content of each file found (the one read of them in a run); None for one that went away meanwhile."""
    return {path: files.read(path) for path in found if path != BATCH_DIR}


@dataclasses.dataclass
class Persistence:
    """What ``persist`` changes on the host, decided before gre_tunnel touches the kernel."""

    mechanism: str
    write: dict[str, str]
    remove: list[str]
    commands: list[list[str]]
    diff: list[dict[str, str]]
    warnings: list[str] = dataclasses.field(default_factory=list)
    # Tunnels that stay while their .network file goes, with networkd running and told to reload:
    # networkd lets go of them, and may drop what it configured there (wait_released).
    released: list[str] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.write or self.remove or self.commands)

    def apply(self, files: Files) -> None:
        apply_changes(files, self.write, self.remove, self.commands)

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "mechanism": self.mechanism,
            "written": sorted(self.write),
            "removed": self.remove,
            "commands": [" ".join(argv) for argv in self.commands],
            "released": self.released,
        }


def emptied(files: Files, directory: str, removed: t.Iterable[str]) -> bool:
    """Whether nothing but what is in ``removed`` is in ``directory`` (hidden files count)."""
    return set(files.glob(f"{directory}/*") + files.glob(f"{directory}/.*")) <= set(removed)


def apply_changes(files: Files, write: dict[str, str], remove: list[str], commands: list[list[str]]) -> None:
    """Disable first (the unit file must still be there), then the files, then the other systemctl commands."""
    for argv in commands:
        if argv[1] == "disable":
            output(files, argv)
    for path, content in write.items():
        _change(files.write, path, content)
    for path in remove:
        _change(files.remove, path)
    for argv in commands:
        if argv[1] != "disable":
            output(files, argv)


def _change(action: t.Callable[..., None], path: str, *content: str) -> None:
    try:
        action(path, *content)
    except OSError as exc:
        verb = "write" if content else "remove"
        raise GreError(f"persist: cannot {verb} {path}: {exc.strerror or exc}", path=path) from None


def prepare(
    files: Files,
    mechanism: str,
    tunnels: list[Tunnel],
    omitted: t.AbstractSet[str] = frozenset(),
    routes: Routes | None = None,
) -> Persistence:
    """Check that ``mechanism`` works here and decide what it changes; GreError otherwise, nothing touched yet.

    ``tunnels``: those to persist, as the run leaves them; the ones named in ``omitted`` (no MTU given)
    keep the MTU the boot files give them (``keep_boot_mtus``). The files found are read once.
    ``auto`` is decided first, from the same reads (one ``systemctl show`` where systemd runs and tunnels are
    listed); when it has to choose none for listed tunnels, the result carries a warning saying so.
    """
    found = found_files(files)
    persisted = read_persisted(files, found)
    if omitted:
        tunnels = keep_boot_mtus(boot_mtus(persisted), tunnels, omitted)
    systemd = files.exists("/run/systemd/system")
    state: dict[str, t.Any] = {}
    warnings: list[str] = []
    if mechanism == AUTO:
        if systemd and tunnels:
            state = services(files)
        mechanism = auto_mechanism({**state, "systemd": systemd}, bool(tunnels))
        if mechanism == "networkd" and any(networkd_gap(tunnel) is not None for tunnel in tunnels):
            # A tunnel networkd's files cannot express (GRE in UDP, a bound device): the unit, which can.
            mechanism = "unit"
        if mechanism == "none" and tunnels:
            warnings.append(NOT_PERSISTED)
    if mechanism == "unit" and tunnels and not systemd:
        raise GreError(f"persist: unit: {PERSIST_PROBLEMS['unit']}")
    wanted = wanted_files(mechanism, tunnels, routes)
    # Every file gre_tunnel writes is one found_files looks for: what is not found is not there.
    current = {path: persisted.get(path) for path in wanted}
    write = {path: content for path, content in wanted.items() if current[path] != content}
    for path in write:
        blocked = files.blocking_file(path)
        if blocked:
            raise GreError(f"persist: cannot write {path}: {blocked} is not a directory", path=path)
    # Deepest first; the directory of the batch file goes last, and only when nothing else is in it.
    remove = sorted((path for path in found if path not in wanted and path != BATCH_DIR), reverse=True)
    if BATCH_DIR in found and BATCH not in wanted and emptied(files, BATCH_DIR, remove):
        remove.append(BATCH_DIR)
    networkd_touched = any(path.startswith(f"{NETWORKD_DIR}/") for path in [*write, *remove])
    if not state and systemd and (mechanism == "networkd" or networkd_touched):
        # The version of systemd decides only whether networkd can persist: not read for a switch away from it.
        state = services(files, version=mechanism == "networkd")
    problem = networkd_problem(state) if mechanism == "networkd" and tunnels else None
    if problem is not None:
        raise GreError(f"persist: networkd: {problem}")
    commands = []
    released = []
    if systemd:
        # A unit file systemd may have loaded changed or went away: the running systemd must re-read it.
        reread = (UNIT_FILE in write and current[UNIT_FILE] is not None) or UNIT_FILE in remove
        commands += unit_commands(files, UNIT_FILE in wanted, reread)
    if networkd_touched and state.get("networkd_active"):
        # networkctl needs D-Bus; without it a restart, which leaves links and their configuration in place.
        reload = ["networkctl", "reload"] if state.get("dbus") else ["systemctl", "restart", "systemd-networkd.service"]
        commands.append(reload)
        released = [tunnel.name for tunnel in tunnels if network_file(tunnel.name) in remove]
    diff = [
        {"before_header": path, "after_header": path, "before": current[path] or "", "after": content}
        for path, content in write.items()
    ] + [
        {"before_header": path, "after_header": f"{path} (removed)", "before": persisted[path] or "", "after": ""}
        for path in remove
        if path != BATCH_DIR
    ]
    return Persistence(mechanism, write, remove, commands, diff, warnings, released)


def unit_commands(files: Files, wanted: bool, reread: bool) -> list[list[str]]:
    """Enable or disable the unit, and reload systemd when asked to.

    ``--no-reload``: a unit enabled for the next boot needs no reload of the running systemd (a
    reload takes seconds on a small VM), and systemd loads a unit it never saw from disk on demand.
    """
    enabled = files.exists(WANTS_LINK)
    commands = []
    if wanted and not enabled:
        commands.append(["systemctl", "enable", "--no-reload", UNIT])
    if not wanted and enabled:
        commands.append(["systemctl", "disable", "--no-reload", UNIT])
    if reread:
        commands.append(["systemctl", "daemon-reload"])
    return commands


def holds(state: dict[str, str], networks: t.AbstractSet[str]) -> bool:
    """Whether networkd still manages a link through one of ``networks``, or has not decided about it yet."""
    return not state or state.get("ADMIN_STATE") in UNDECIDED or state.get("NETWORK_FILE") in networks


def wait_released(files: Files, persistence: Persistence) -> list[str]:
    """Wait until networkd no longer manages the released tunnels; the warnings for those it manages otherwise.

    After the reload (``Persistence.apply``): networkd reports each link in LINK_STATE, by interface
    index; a released tunnel is let go once its ADMIN_STATE is decided and its NETWORK_FILE is none of
    the removed files (``unmanaged``, or ``configured`` by a ``.network`` file of someone else's, which
    gets a warning). By then networkd has sent the kernel whatever removal of addresses it does on
    letting go. GreError after RELEASE_TIMEOUT seconds: networkd may still drop them later, so no run
    may report the tunnels as settled.
    """
    networks = {network_file(name) for name in persistence.released}
    indexes = {name: files.state(IFINDEX.format(name=name)) for name in persistence.released}
    # A tunnel that is gone has nothing left for networkd to drop; gre_tunnel's read then sees it gone.
    waiting = {name: index.strip() for name, index in indexes.items() if index is not None}
    states: dict[str, dict[str, str]] = {}
    deadline = files.clock() + RELEASE_TIMEOUT
    while True:
        for name, index in list(waiting.items()):
            states[name] = key_values(files.state(LINK_STATE.format(ifindex=index)))
            if not holds(states[name], networks):
                del waiting[name]
        if not waiting:
            break
        if files.clock() >= deadline:
            raise GreError(released_timeout(persistence, waiting, states), interface=sorted(waiting))
        files.sleep(RELEASE_POLL)
    return [
        f"{name}: systemd-networkd now configures it from {state['NETWORK_FILE']}, which may change its addresses"
        for name, state in sorted(states.items())
        if state.get("NETWORK_FILE")
    ]


def released_timeout(persistence: Persistence, waiting: dict[str, str], states: dict[str, dict[str, str]]) -> str:
    command = " ".join(persistence.commands[-1])  # the reload: prepare adds it last, and releases only with it
    seen = "; ".join(
        f"{name}: {LINK_STATE.format(ifindex=index)} "
        + (
            f"says ADMIN_STATE={states[name].get('ADMIN_STATE', '')} NETWORK_FILE={states[name].get('NETWORK_FILE', '')}"
            if states[name]
            else "is not there"
        )
        for name, index in sorted(waiting.items())
    )
    return (
        f"persist: systemd-networkd still holds {', '.join(sorted(waiting))} {RELEASE_TIMEOUT:g} s after `{command}` "
        f"({seen}). The tunnels and the boot files are as asked, but networkd may yet drop the addresses it "
        "configured on them; run this again once it has settled: the run puts back what is missing"
    )
