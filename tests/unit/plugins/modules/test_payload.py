# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What each module's AnsiballZ payload carries of the collection: every module_utils file it imports, at any depth.

Ansible's module finder follows every import of the module and of the module_utils it imports, those inside
functions too, and ships each file found; the host compiles them all at every run. Issue 19: gre_tunnel carried
gre_host_facts' firewall reader (_firewall and the four files it imports, 100 KB of source, 0.1 s of a lab
guest's start-up), through persist's need of the systemd rules, which now live in _systemd. gre_host_facts
carried gre_firewall's planner (_firewall, whose import took 0.22-0.27 s of each of its runs on a lab guest) for
the read-only summary, which now lives in _firewall_state. A file imported only for type checking
(``if t.TYPE_CHECKING:``) is shipped too, and never compiled: here, _systemd's of _tunnel.persist.
"""

from __future__ import annotations

import ast
import pathlib
import typing as t

import pytest

PLUGINS = pathlib.Path(__file__).resolve().parents[4] / "plugins"
PREFIX = "ansible_collections.linuxnet.gre.plugins."


def imported(path: pathlib.Path) -> set[str]:
    """The collection's modules that one file imports (``from X import Y`` may name a module Y of package X)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PREFIX):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith(PREFIX))
    return {name for name in found if source(name) is not None}


def source(name: str) -> pathlib.Path | None:
    relative = pathlib.Path(*name[len(PREFIX) :].split("."))
    for candidate in (PLUGINS / relative.with_suffix(".py"), PLUGINS / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def payload(module: str) -> set[str]:
    """The module_utils the module's payload carries, relative to module_utils/."""
    todo = [f"{PREFIX}modules.{module}"]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imported(t.cast(pathlib.Path, source(name))))
    utils = f"{PREFIX}module_utils."
    return {name[len(utils) :] for name in seen if name.startswith(utils)}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (
            "gre_tunnel",
            {
                "_constants",
                "_host",
                "_systemd",
                "_tunnel.changes",
                "_tunnel.converge",
                "_tunnel.desired",
                "_tunnel.kernel",
                "_tunnel.model",
                "_tunnel.persist",
                "_tunnel.spec",
            },
        ),
        (
            "gre_host_facts",
            {
                "_constants",
                "_firewall_state",
                "_firewalld",
                "_host",
                "_host_facts",
                "_nft",
                "_systemd",
                "_tunnel.kernel",
                "_tunnel.desired",
                "_tunnel.model",
                # Through _systemd's import for type checking alone: shipped, never compiled.
                "_tunnel.persist",
                "_tunnel.changes",
            },
        ),
    ],
)
def test_the_payload_carries_only_what_the_module_runs(module, expected):
    assert payload(module) == expected
