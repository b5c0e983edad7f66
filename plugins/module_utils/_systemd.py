# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: what systemd runs, and which persistence works here.

One ``systemctl show`` of systemd-networkd and systemd-udevd (and ``systemctl --version`` only where both
run), and the rules that decide from it how gre_tunnel's ``persist`` brings tunnels back at boot. Both
gre_host_facts (the role's check before any host changes) and gre_tunnel's persistence read them here;
a file of its own so that gre_tunnel's payload does not carry gre_host_facts' firewall reader.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._host import key_values, output

if t.TYPE_CHECKING:  # gre_tunnel's persistence asks through its Files, which has the same run and exists
    from ansible_collections.linuxnet.gre.plugins.module_utils._host import Host, Runner
    from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import Files

UNITS = ("systemd-networkd.service", "systemd-udevd.service")
SYSTEMCTL = ["systemctl", "show", "--property=Id,ActiveState,UnitFileState", *UNITS]
VERSION = ["systemctl", "--version"]
# The systemd that gre_tunnel's networkd persistence needs: its .netdev files create each tunnel bound to no
# underlay link (Independent=), which the collection has required 252 for since it wrote them (the lab's
# systemd); an older networkd that does not know the key ignores it and never creates the tunnel.
NETWORKD_SYSTEMD = 252
# `systemctl --version` starts "systemd 252 (252.39-1~deb12u2)" (fixtures/host/*.json, fixtures/tools/).
VERSION_LINE = re.compile(r"systemd (\d+)\b")
ENABLED = ("enabled", "enabled-runtime")


def systemd_version(host: Runner) -> int | None:
    """The version ``systemctl --version`` names first (``systemd 252 (252.36-1~deb12u1)``: 252); None when none."""
    match = VERSION_LINE.match(output(host, VERSION).strip())
    return int(match.group(1)) if match else None


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
