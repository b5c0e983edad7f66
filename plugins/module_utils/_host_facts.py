# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_host_facts's logic, a cheap read of what the role needs of a host.

- ``default_ipv4`` / ``default_ipv6``: the interface of the default route, its MTU and the address
  the kernel sends from, in the shape (a subset of the keys) of the facts ``ansible.builtin.setup``
  gathers under these names, from ``route show default`` and ``address show``, both in one
  ``ip -json [-6] -batch -`` per IP version. Unlike the setup module's network subset, the cost
  does not grow with the host's interfaces.
- ``systemd``, ``networkd_active``, ``networkd_enabled``, ``udevd_active``, ``dbus``, ``systemd_version``: what
  decides how the role persists tunnels, from one ``systemctl show``, and ``systemctl --version`` only where
  systemd-networkd and systemd-udevd run (the version decides nothing elsewhere).
- ``firewall``: what filters input, and whether gre_firewall's objects are in place (_firewall).
- ``tools``: what gre_tunnel would fail with for a tool it needs (iproute2's ``ip``; ``modprobe`` for a GRE
  kernel module not loaded yet), so that the role stops before any host changes.

The host is reached through _host.Host alone; tests replace it with answers captured from real kernels.
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewall
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import FORWARD_CONF, IPSEC_CONF, KERNEL_MODULE
from ansible_collections.linuxnet.gre.plugins.module_utils._host import (
    GreError,
    Host,
    key_values,
    not_installed,
    output,
    read_json,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import Kernel, not_loaded

if t.TYPE_CHECKING:  # gre_tunnel's persistence asks through its Files, which has the same run and exists
    from ansible_collections.linuxnet.gre.plugins.module_utils._host import Runner
    from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import Files

# IPv4's default routes and the addresses (with their links' MTU and MAC) in one process. IPv6's
# default routes need -6, which applies to a whole batch and leaves the link-layer details out of
# `address show`: a process of their own.
BATCH = ["ip", "-json", "-batch", "-"]
BATCH_LINES = "route show default\naddress show\n"
ROUTES6 = ["ip", "-json", "-6", "route", "show", "default"]
ADDRESSES = ["ip", "-json", "address", "show"]
UNITS = ("systemd-networkd.service", "systemd-udevd.service")
SYSTEMCTL = ["systemctl", "show", "--property=Id,ActiveState,UnitFileState", *UNITS]
# Whether ip is iproute2's, which prints JSON: BusyBox's refuses -json (fixtures/tools/busybox.json).
IP_CHECK = ["ip", "-json", "link", "show", "dev", "lo"]
VERSION = ["systemctl", "--version"]
# The systemd that gre_tunnel's networkd persistence needs: its .netdev files create each tunnel bound to no
# underlay link (Independent=), which the collection has required 252 for since it wrote them (the lab's
# systemd); an older networkd that does not know the key ignores it and never creates the tunnel.
NETWORKD_SYSTEMD = 252
# `systemctl --version` starts "systemd 252 (252.39-1~deb12u2)" (fixtures/host/*.json, fixtures/tools/).
VERSION_LINE = re.compile(r"systemd (\d+)\b")
FAMILY = {4: "inet", 6: "inet6"}
ENABLED = ("enabled", "enabled-runtime")


def default_route(routes: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    """The default route the kernel uses: the lowest metric among those with a device."""
    usable = [r for r in routes if r.get("dst") == "default" and r.get("dev") and r.get("type", "unicast") == "unicast"]
    return min(usable, key=lambda r: r.get("metric", 0), default=None)


def usable_address(info: dict[str, t.Any], version: int) -> bool:
    """A global address of that version that the kernel may send from."""
    if info.get("family") != FAMILY[version] or info.get("scope") != "global":
        return False
    return not any(info.get(flag) for flag in ("secondary", "tentative", "deprecated", "dadfailed", "temporary"))


def default_interface(route: dict[str, t.Any], links: list[dict[str, t.Any]], version: int) -> dict[str, t.Any] | None:
    """The fact for one IP version, as setup names its keys; None when the route's device has no address to send from."""
    link = next((link for link in links if link.get("ifname") == route["dev"]), None)
    if link is None:
        return None
    addresses = [info for info in link.get("addr_info", []) if info.get("family") == FAMILY[version]]
    source = route.get("prefsrc")
    chosen = next((info for info in addresses if info.get("local") == source), None) if source else None
    if chosen is None:
        chosen = next((info for info in addresses if usable_address(info, version)), None)
    if chosen is None:
        return None
    fact: dict[str, t.Any] = {
        "address": chosen["local"],
        "prefix": str(chosen["prefixlen"]),
        "interface": route["dev"],
        "mtu": link.get("mtu"),
        "macaddress": link.get("address"),
        "type": link.get("link_type"),
    }
    if "gateway" in route:
        fact["gateway"] = route["gateway"]
    if version == 4:
        network = ipaddress.ip_interface(f"{chosen['local']}/{chosen['prefixlen']}").network
        fact["network"] = str(network.network_address)
        fact["netmask"] = str(network.netmask)
    else:
        fact["scope"] = chosen["scope"]
    return fact


def defaults(host: Host, versions: t.Iterable[int]) -> dict[str, t.Any]:
    """``default_ipv4`` / ``default_ipv6`` for the versions asked for and found."""
    versions = set(versions)
    routes: dict[int, dict[str, t.Any] | None] = {}
    links: list[dict[str, t.Any]] | None = None
    if 4 in versions:
        routes4, links = read_json(host, BATCH, BATCH_LINES)
        routes[4] = default_route(routes4)
    if 6 in versions:
        routes[6] = default_route(read_json(host, ROUTES6)[0])
    if links is None and any(routes.values()):
        (links,) = read_json(host, ADDRESSES)
    facts = {}
    for version, route in routes.items():
        fact = default_interface(route, links or [], version) if route else None
        if fact:
            facts[f"default_ipv{version}"] = fact
    return facts


def systemd_version(host: Runner) -> int | None:
    """The version ``systemctl --version`` names first (``systemd 252 (252.36-1~deb12u1)``: 252); None when none."""
    match = VERSION_LINE.match(output(host, VERSION).strip())
    return int(match.group(1)) if match else None


def tools(host: Host) -> dict[str, t.Any]:
    """What gre_tunnel would fail with for lack of a tool here (None: nothing lacks), before it changes anything.

    ``ip``: iproute2's, which every run of gre_tunnel reads the kernel with: found (``which``) and printing
    JSON (one ``ip -json link show dev lo``). ``modprobe``: per tunnel mode, its kernel module is loaded or built in
    (under /sys/module), or ``modprobe`` is found to load it; no process.
    """
    ip = None
    if host.which("ip") is None:
        ip = not_installed("ip")
    else:
        try:
            output(host, IP_CHECK)
        except GreError as exc:
            ip = exc.msg
    loader = host.which("modprobe") is not None
    loadable = {
        name: loader or host.exists(os.path.join(Kernel.sys_module_dir, name))
        for name in sorted(set(KERNEL_MODULE.values()))
    }
    return {
        "ip": ip,
        "modprobe": {
            mode: None if loadable[name] else not_loaded(name, not_installed("modprobe"))
            for mode, name in KERNEL_MODULE.items()
        },
    }


def services(host: Host | Files, version: bool = True) -> dict[str, t.Any]:
    """Whether systemd runs the host, the state of systemd-networkd, systemd-udevd and D-Bus, and the version of
    systemd (with ``version``, and only where networkd and udevd run: None elsewhere)."""
    found: dict[str, t.Any] = {
        "systemd": host.exists("/run/systemd/system"),
        "dbus": host.exists("/run/dbus/system_bus_socket"),
    }
    units: dict[str, dict[str, str]] = {}
    if found["systemd"]:
        for block in output(host, SYSTEMCTL).strip().split("\n\n"):
            properties = key_values(block)
            units[properties.get("Id", "")] = properties
    networkd, udevd = (units.get(unit, {}) for unit in UNITS)
    found["networkd_active"] = networkd.get("ActiveState") == "active"
    found["networkd_enabled"] = networkd.get("UnitFileState") in ENABLED
    found["udevd_active"] = udevd.get("ActiveState") == "active"
    found["systemd_version"] = systemd_version(host) if version and networkd_runs(found) else None
    return found


# Why a persistence mechanism cannot bring tunnels back on this host: gre_tunnel's error, and the
# role's check before any host changes, say the same.
PERSIST_PROBLEMS = {
    "unit": "this host does not run systemd, so the unit would never start",
    "networkd": (
        "systemd-networkd is not active and enabled here, or systemd-udevd (which sets the managed alias) is not "
        "running: the tunnels would not come back at boot; persist them with the unit"
    ),
}


def networkd_runs(state: t.Mapping[str, t.Any]) -> bool:
    """Whether systemd-networkd is active and enabled, with udevd running to apply the .link file."""
    return bool(state.get("networkd_active") and state.get("networkd_enabled") and state.get("udevd_active"))


def networkd_problem(state: t.Mapping[str, t.Any]) -> str | None:
    """Why systemd-networkd cannot bring the tunnels back at boot here (None: it can)."""
    if not networkd_runs(state):
        return PERSIST_PROBLEMS["networkd"]
    version = state.get("systemd_version")
    if version is not None and version >= NETWORKD_SYSTEMD:
        return None
    runs = (
        f"runs systemd {version}"
        if version is not None
        else "runs a systemd whose systemctl --version names no version"
    )
    return (
        f"this host {runs}, and systemd-networkd creates tunnels bound to no underlay link (Independent=, in the "
        f".netdev files it would get) only from systemd {NETWORKD_SYSTEMD} on: the tunnels would not come back at "
        "boot; persist them with the unit (auto takes it here)"
    )


def networkd_works(state: t.Mapping[str, t.Any]) -> bool:
    """Whether systemd-networkd brings the tunnels back at boot: it runs (networkd_runs), on systemd 252 or newer."""
    return networkd_problem(state) is None


def auto_mechanism(state: t.Mapping[str, t.Any], has_tunnels: bool = True) -> str:
    """``persist=auto``: networkd where it works, else the unit where systemd runs, else none (also for no tunnels)."""
    if not has_tunnels or not state.get("systemd"):
        return "none"
    return "networkd" if networkd_works(state) else "unit"


def persistence(state: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What gre_tunnel's persist option would do here: ``auto``'s choice, and each mechanism's problem (None: works)."""
    return {
        "auto": auto_mechanism(state),
        "problems": {
            "unit": None if state.get("systemd") else PERSIST_PROBLEMS["unit"],
            "networkd": networkd_problem(state),
        },
    }


def files(host: Host) -> dict[str, bool]:
    """Whether the collection's files that a step undoes where nothing is planned any more are here: gre_forward's
    sysctl.d file (the values to put back) and the role's swanctl file (the IKE connections to remove). Where neither
    is, the role skips those steps on a host with nothing planned for them: two module runs fewer per host."""
    return {"forward": host.exists(FORWARD_CONF), "ipsec": host.exists(IPSEC_CONF)}


def gather(host: Host, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The module's ansible_facts; GreError when the default routes are asked for and ip cannot read them."""
    found = tools(host)
    if params["default_routes"] and found["ip"] is not None:
        raise GreError(found["ip"])
    facts = defaults(host, params["default_routes"])
    own: dict[str, t.Any] = services(host)
    own["tools"] = found
    own["persist"] = persistence(own)
    own["files"] = files(host)
    if params["firewall"]:
        own["firewall"] = _firewall.summary(host)
    facts["linuxnet_gre"] = own
    return facts
