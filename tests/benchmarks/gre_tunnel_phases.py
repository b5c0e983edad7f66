# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs ON a lab guest: where one gre_tunnel run spends its time inside the guest (issue 19), no controller in it.

  python3 gre_tunnel_phases.py PAYLOAD.zip ARGS.json > result.json

PAYLOAD.zip: the zip of an AnsiballZ payload (run the module once with ANSIBLE_KEEP_REMOTE_FILES=1 and
without pipelining, then `python3 AnsiballZ_gre_tunnel.py explode` and zip its debug_dir); ARGS.json: its
args file ({"ANSIBLE_MODULE_ARGS": ...}). Prints on stderr the phases: import of
ansible.module_utils.basic (which ansible.builtin.command pays too), import of the module and its
module_utils, AnsibleModule's start (validation, logging), the read, the plan, the batch and the result
(remove_values and JSON). Timed the same way, the command module's run is the floor; task wall times
on the controller add ssh and the controller's own work, which a loaded machine makes noisy.
"""

from __future__ import annotations

import atexit
import importlib
import sys
import time

START = time.monotonic()
MODULE = "ansible_collections.linuxnet.gre.plugins.modules.gre_tunnel"


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    from ansible.module_utils import basic  # noqa: PLC0415 (from the payload, after sys.path)

    imported_basic = time.monotonic()
    module = importlib.import_module(MODULE)
    imported = time.monotonic()
    kernel = importlib.import_module("ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel")
    spent = dict.fromkeys(("read", "batch", "result", "init", "converge"), 0.0)

    def timed(owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            started = time.monotonic()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.monotonic() - started

        setattr(owner, name, wrapper)

    timed(kernel.Kernel, "read_all", "read")
    timed(kernel.Kernel, "apply", "batch")
    timed(basic.AnsibleModule, "__init__", "init")
    timed(basic.AnsibleModule, "_return_formatted", "result")
    timed(module, "converge", "converge")
    with open(sys.argv[2], "rb") as handle:
        basic._ANSIBLE_ARGS = handle.read()  # noqa: SLF001 (as AnsiballZ's loader sets it)
    basic._ANSIBLE_PROFILE = "legacy"  # noqa: SLF001

    def report() -> None:
        phases = {
            "import basic": imported_basic - START,
            "import module": imported - imported_basic,
            "init": spent["init"],
            "read": spent["read"],
            "plan": spent["converge"] - spent["read"] - spent["batch"],
            "batch": spent["batch"],
            "result": spent["result"],
            "total": time.monotonic() - START,
        }
        sys.stderr.write(" ".join(f"{name}={seconds * 1000:.0f}ms" for name, seconds in phases.items()) + "\n")

    atexit.register(report)
    module.main()


if __name__ == "__main__":
    main()
