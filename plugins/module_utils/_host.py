# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to the linuxnet.gre collection; runs on the managed hosts: the one seam to the host, and the one error.

Every module reaches its host through ``Host``: ``run`` is the only place in the collection that
starts a process, ``read_text`` and ``exists`` the only reads of the host's files outside the files
gre_tunnel's persistence owns. The unit tests replace these methods with answers captured on real
hosts. Every helper raises ``GreError``; ``run_module`` turns it into ``fail_json`` once, with the
details (command, stderr, interface) the helper attached.
"""

from __future__ import annotations

import os
import typing as t

# Where the tools live on hosts whose PATH (a non-login shell's, sudo's) leaves out the sbin directories.
SBIN = ["/sbin", "/usr/sbin"]


class GreError(Exception):
    """The one error the collection's host-side helpers raise; ``run_module`` turns it into fail_json."""

    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class Host:
    """The managed host: its commands (``which``, ``run``) and its files (``read_text``, ``exists``)."""

    def __init__(self, module: t.Any) -> None:
        self._module = module

    def which(self, program: str) -> str | None:
        return self._module.get_bin_path(program, opt_dirs=SBIN)

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
        """Run one command; GreError naming the tool when it is not installed."""
        program = self.which(argv[0])
        if program is None:
            raise GreError(f"{argv[0]} is not installed (looked in PATH, {', '.join(SBIN)})", command=argv)
        return self._module.run_command([program, *argv[1:]], data=stdin, binary_data=stdin is not None)

    def read_text(self, path: str) -> str | None:
        """A file's text (the kernel's /proc and /sys); None when it is not there."""
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)


def run_module(module: t.Any, work: t.Callable[[], dict[str, t.Any]]) -> None:
    """Exit with what ``work`` returns (not changed unless it says so), or fail with its GreError."""
    try:
        result = work()
    except GreError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**{"changed": False, **result})
