# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection: gre_tunnel's run — check input, read the kernel once, plan, apply once."""

from __future__ import annotations

import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._gre_desired import wanted_tunnels
from ansible_collections.linuxnet.gre.plugins.module_utils._gre_kernel import Kernel
from ansible_collections.linuxnet.gre.plugins.module_utils._gre_plan import plan


def converge(kernel: Kernel, params: dict[str, t.Any], check_mode: bool, diff: bool) -> dict[str, t.Any]:
    """Make the host's GRE tunnels what ``params`` say; the module's result. Raises GreError."""
    wanted = wanted_tunnels(params)
    interfaces = kernel.read()
    todo = plan(wanted, interfaces, purge=params["purge"])
    commands = []
    for name in todo.modules:
        if not kernel.module_loaded(name):
            kernel.load_module(name, check_mode)
            commands.append(f"modprobe {name}")
    steps = todo.steps
    if steps and not check_mode:
        kernel.apply([line for _name, line in steps], [name for name, _line in steps])
    result: dict[str, t.Any] = {
        "changed": bool(steps),
        "tunnels": todo.tunnels,
        "changes": [change.as_dict() for change in todo.changes],
        "commands": commands + [f"ip {line}" for _name, line in steps],
    }
    if diff:
        result["diff"] = {"before": todo.before, "after": todo.after}
    return result
