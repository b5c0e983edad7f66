# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_firewall's ``persist``, openings as durable as the tunnels.

The rules live in the kernel; the host's own firewall service loads its rules at boot and on a
reload (``flush ruleset`` in nftables.conf, ``iptables-restore`` without ``--noflush``), which
removes the collection's. So gre_firewall leaves on the host what converges them again without
Ansible:

- ``/etc/linuxnet-gre/firewall.json``: the module's parameters in its last run;
- a copy of its own code (``_firewall_boot`` and the module_utils it imports) under
  ``/usr/local/lib/linuxnet-gre``: standard library only, run with ``python3 -I -S``;
- ``linuxnet-gre-firewall.service``: a oneshot ordered after the distributions' firewall services
  (nftables, netfilter-persistent, iptables/ip6tables, firewalld, ufw), wanted by multi-user.target
  and by those it can follow (``WantedBy=``), ``PartOf=`` them (a restart or stop of theirs
  restarts or stops it) and ``ReloadPropagatedFrom=`` them (their ``systemctl reload`` reloads it,
  which converges again). It is started once written, so that it is active and follows them.

Firewall reloads that do not go through systemd (``nft -f /etc/nftables.conf``,
``netfilter-persistent reload``, ``iptables-restore`` by hand, ``firewall-cmd --reload``,
``ufw reload``) are not seen: ``systemctl reload linuxnet-gre-firewall`` after them puts the rules
back (docs/docsite/rst/firewall.rst). Nothing planned, ``persist=false`` or a host without
systemd: what was written before is removed (the unit disabled first).
"""

from __future__ import annotations

import json
import os
import sys
import types
import typing as t

# Imported by name, so that Ansible ships them with the module (AnsiballZ follows imports): the copy's code.
from ansible_collections.linuxnet.gre.plugins.module_utils import (
    _constants,
    _firewall,
    _firewall_boot,
    _firewall_state,
    _firewalld,
    _host,
    _nft,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import Files, Persistence, emptied

SETTINGS = _firewall_state.SETTINGS
SETTINGS_DIR = os.path.dirname(SETTINGS)
LIB_DIR = "/usr/local/lib/linuxnet-gre"
PACKAGE = "ansible_collections.linuxnet.gre.plugins.module_utils"
CODE_DIR = f"{LIB_DIR}/{PACKAGE.replace('.', '/')}"
# What _firewall_boot imports, itself included: the standard library does the rest.
CODE_MODULES = (_constants, _host, _nft, _firewalld, _firewall_state, _firewall, _firewall_boot)
CODE = tuple(module.__name__.rsplit(".", 1)[1] for module in CODE_MODULES)
RUNNER = f"{CODE_DIR}/_firewall_boot.py"
UNIT = "linuxnet-gre-firewall.service"
UNIT_FILE = f"/etc/systemd/system/{UNIT}"
WANTS_LINK = f"/etc/systemd/system/multi-user.target.wants/{UNIT}"
# The distributions' firewall services: loaded before the unit at boot. Those whose restart and
# `systemctl reload` replace the rules are followed; firewalld and ufw reload with their own
# commands, which systemd does not see.
FIREWALLS = (
    "nftables.service",
    "netfilter-persistent.service",
    "iptables.service",
    "ip6tables.service",
    "firewalld.service",
    "ufw.service",
)
FOLLOWED = FIREWALLS[:4]
# The parameters converge reads, as the module passes them.
PARAMETERS = ("peers", "state", "backend", "only_if_filtered", "mss_clamp", "forward", "local_networks")
NOT_PERSISTED = (
    "persist: this host does not run systemd, so the firewall openings of linuxnet.gre are not put back after a "
    "reboot or a reload of the host's firewall. Run this again after each, or set persist to false for this host "
    "(gre_mesh_persist: none with the role linuxnet.gre.gre_mesh) to silence this warning."
)


def unit_text(python: str) -> str:
    followed = " ".join(FOLLOWED)
    return f"""\
# linuxnet.gre: puts its firewall openings back after the host's own firewall has loaded its rules,
# at boot and whenever that firewall is restarted, stopped and started, or reloaded through systemd:
# gre_firewall's converge, from a copy of its code ({CODE_DIR}), with the
# settings of its last run ({SETTINGS}). Rules already in place are left alone.
[Unit]
Description=Firewall openings of linuxnet.gre (GRE from the planned peers, MSS clamp, forwarding)
Documentation=https://github.com/linuxnet/gre/blob/main/docs/docsite/rst/firewall.rst
DefaultDependencies=no
After=local-fs.target {" ".join(FIREWALLS)}
Before=network.target shutdown.target
Conflicts=shutdown.target
PartOf={followed}
ReloadPropagatedFrom={followed}
ConditionPathExists={SETTINGS}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={python} -I -S {RUNNER} {SETTINGS}
ExecReload={python} -I -S {RUNNER} {SETTINGS}

[Install]
WantedBy=multi-user.target {followed}
"""


# Written only when given, so that the settings of a host without GRE in UDP stay as they were before it.
OPTIONAL_PARAMETERS = ("encap_peers",)


def settings_text(params: dict[str, t.Any]) -> str:
    settings = {name: params.get(name) for name in PARAMETERS}
    settings.update({name: params[name] for name in OPTIONAL_PARAMETERS if params.get(name)})
    return json.dumps(settings, indent=2, sort_keys=True) + "\n"


def source(module: types.ModuleType) -> str:
    """The text of one of the collection's module_utils, as this run imported it (from AnsiballZ's zip, or a file).

    Loaders differ: a file's gives text, ansible-core's collection loader (ansible-test units) bytes.
    """
    text = module.__loader__.get_source(module.__name__)  # type: ignore[union-attr]
    if text is None:
        raise GreError(f"persist: the source of {module.__name__} is not available to copy")
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)


def interpreter(files: Files) -> str:
    """The distribution's python3 (a stable name across its upgrades), else the one running this."""
    return "/usr/bin/python3" if files.exists("/usr/bin/python3") else sys.executable


class FirewallPersistence(Persistence):
    """What ``persist`` changes on the host: mechanism ``unit`` (the unit stays or comes) or ``none``."""

    def as_dict(self) -> dict[str, t.Any]:
        result = super().as_dict()
        del result["released"]  # networkd's business, never the firewall's
        return result


def prepare(files: Files, persist: bool, params: dict[str, t.Any], planned: bool) -> FirewallPersistence:
    """What to write and remove so that the host converges again with ``params`` at boot; nothing touched yet.

    ``planned``: whether the run leaves any rule of the module's (else there is nothing to put back).
    """
    systemd = files.exists("/run/systemd/system")
    warnings = [NOT_PERSISTED] if persist and planned and not systemd else []
    wanted: dict[str, str] = {}
    if persist and planned and systemd:
        wanted = {f"{CODE_DIR}/{name}.py": source(module) for name, module in zip(CODE, CODE_MODULES)}
        wanted[SETTINGS] = settings_text(params)
        wanted[UNIT_FILE] = unit_text(interpreter(files))
    found = [path for path in [SETTINGS, UNIT_FILE, *(f"{CODE_DIR}/{name}.py" for name in CODE)] if files.exists(path)]
    current = {path: files.read(path) for path in found}
    write = {path: text for path, text in wanted.items() if current.get(path) != text}
    for path in write:
        blocked = files.blocking_file(path)
        if blocked:
            raise GreError(f"persist: cannot write {path}: {blocked} is not a directory", path=path)
    remove = [path for path in found if path not in wanted]
    if remove and not wanted:
        # The directories of the copy, deepest first, while nothing else is in them; /etc/linuxnet-gre too
        # (gre_tunnel's tunnels.batch may be there).
        directory = CODE_DIR
        while directory.startswith(LIB_DIR):
            if files.exists(directory) and emptied(files, directory, remove):
                remove.append(directory)
            directory = os.path.dirname(directory)
        if files.exists(SETTINGS_DIR) and emptied(files, SETTINGS_DIR, remove):
            remove.append(SETTINGS_DIR)
    commands: list[list[str]] = []
    if systemd:
        enabled = files.exists(WANTS_LINK)
        if wanted and not enabled:
            # With the reload: systemd must know that the firewall services want it (WantedBy=), so
            # that their stop and start brings it back before the next boot.
            commands.append(["systemctl", "enable", UNIT])
        if not wanted and enabled:
            commands.append(["systemctl", "disable", "--no-reload", UNIT])
        if (UNIT_FILE in write and UNIT_FILE in current and enabled) or UNIT_FILE in remove:
            commands.append(["systemctl", "daemon-reload"])
        if wanted and (UNIT_FILE in write or not enabled):
            # Active, so that the firewall services' restarts and reloads reach it; its converge finds all in place.
            commands.append(["systemctl", "start", UNIT])
        if UNIT_FILE in remove:
            commands.append(["systemctl", "stop", UNIT])
    diff = [
        {"before_header": path, "after_header": path, "before": current.get(path) or "", "after": text}
        for path, text in write.items()
        if path in (SETTINGS, UNIT_FILE)
    ] + [
        {"before_header": path, "after_header": f"{path} (removed)", "before": current[path] or "", "after": ""}
        for path in remove
        if path in (SETTINGS, UNIT_FILE)
    ]
    return FirewallPersistence("unit" if wanted else "none", write, remove, commands, diff, warnings)
