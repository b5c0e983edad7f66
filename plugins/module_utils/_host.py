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

import json
import os
import re
import subprocess
import typing as t

_WHITESPACE = re.compile(r"\s*")

# Where the tools live on hosts whose PATH (a non-login shell's, sudo's) leaves out the sbin directories.
SBIN = ["/sbin", "/usr/sbin"]
# The package that installs a tool, named when a host lacks it (or has BusyBox's instead of it).
PACKAGES = {
    "ip": "iproute2 (Debian, Ubuntu, Alpine; iproute on the RHEL family)",
    "modprobe": "kmod",
    "nft": "nftables",
    "iptables": "iptables (RHEL family: iptables-nft, or iptables-legacy from EPEL)",
}
# What BusyBox's applets print (on stderr, exit code 1) for an option they lack, such as ip's -json or
# modprobe's --dry-run (BusyBox 1.35.0, tests/unit/plugins/modules/fixtures/tools/): a line of their
# own (modprobe's first), then "BusyBox v1.35.0 (…) multi-call binary." and the usage.
BUSYBOX = re.compile(r"^(BusyBox v\S+)", re.MULTILINE)


class GreError(Exception):
    """The one error the collection's host-side helpers raise; ``run_module`` turns it into fail_json."""

    def __init__(self, msg: str, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


def not_installed(program: str) -> str:
    """The error for a host without ``program``, naming its package where known."""
    install = f": install {PACKAGES[program]}" if program in PACKAGES else ""
    return f"{program} is not installed (looked in PATH, {', '.join(SBIN)}){install}"


def busybox_problem(argv: list[str], stderr: str) -> str | None:
    """The error for a command that BusyBox's applet refused (None: it was not BusyBox's)."""
    match = BUSYBOX.search(stderr)
    if match is None:
        return None
    install = f": install {PACKAGES[argv[0]]}" if argv[0] in PACKAGES else ""
    return (
        f"{argv[0]} is BusyBox's here ({match.group(1)}), which lacks the options this module uses "
        f"(`{' '.join(argv)}` failed){install}"
    )


if t.TYPE_CHECKING:  # typing.Protocol needs Python 3.8; annotations alone name it on older hosts

    class Runner(t.Protocol):
        """Anything that runs commands as Host.run does (gre_tunnel's persistence Files too)."""

        def run(self, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
            """Run one command: its exit status, standard output and standard error."""


def run_process(argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """Start one program (``argv[0]`` a path), ``stdin`` its input as it is: exit status, output and error, as text.

    Not AnsibleModule.run_command: it always hands subprocess a ``preexec_fn`` (for a umask this collection
    never sets), and with one Python forks the module's whole process for every command, where without it
    Python uses vfork. Measured (medians of 7): one ``ip -json link show`` on the lab's user-mode-linux guests,
    165-195 ms through run_command against 69-78 ms; ``true`` on a KVM micro-VM, 3.3 ms against 0.7 ms.
    Otherwise as run_command: the module's environment without AnsiballZ's entries in PYTHONPATH, no shell,
    other descriptors closed; and no input at all without ``stdin``.
    """
    environment = dict(os.environ)
    if "PYTHONPATH" in environment:
        paths = [
            path
            for path in environment["PYTHONPATH"].split(":")
            if path and not path.endswith(("/ansible_modlib.zip", "/debug_dir"))
        ]
        if paths:
            environment["PYTHONPATH"] = ":".join(paths)
        else:
            del environment["PYTHONPATH"]
    try:
        process = subprocess.run(  # pylint: disable=ansible-bad-function
            argv,
            input=None if stdin is None else stdin.encode("utf-8", "surrogateescape"),
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            env=environment,
            check=False,
        )
    except OSError as exc:
        raise GreError(f"cannot run {argv[0]}: {exc.strerror or exc}", command=argv) from exc
    return (
        process.returncode,
        process.stdout.decode("utf-8", "surrogateescape"),
        process.stderr.decode("utf-8", "surrogateescape"),
    )


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
            raise GreError(not_installed(argv[0]), command=argv)
        return run_process([program, *argv[1:]], stdin)

    def read_text(self, path: str) -> str | None:
        """A file's text (the kernel's /proc and /sys); None when it is not there."""
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)


def output(host: Runner, argv: list[str], stdin: str | None = None) -> str:
    """What a command printed; GreError naming it when it fails."""
    rc, out, err = host.run(argv, stdin)
    if rc != 0:
        busybox = busybox_problem(argv, err)
        if busybox is not None:
            raise GreError(busybox, command=argv, stderr=err)
        raise GreError(f"{' '.join(argv)} failed: {err.strip() or f'exit code {rc}'}", command=argv, stderr=err)
    return out


def read_json(host: Runner, argv: list[str], stdin: str | None = None) -> list[t.Any]:
    """The JSON documents a command printed: one, or one per line of ``stdin`` for an ``ip -json -batch -``."""
    text = output(host, argv, stdin).strip()
    expected = len(stdin.splitlines()) if stdin is not None else 1
    documents, error = json_documents(text)
    if error is not None:
        raise GreError(f"{' '.join(argv)} printed no JSON: {error}", command=argv, stdout=text) from error
    if len(documents) != expected:
        raise GreError(
            f"{' '.join(argv)} printed {len(documents)} JSON documents, not {expected}", command=argv, stdout=text
        )
    return documents


def json_documents(text: str) -> tuple[list[t.Any], ValueError | None]:
    """The JSON documents one after another in ``text`` (``ip -json -batch`` prints one per command),
    and the error that ended the reading early, if any."""
    decoder = json.JSONDecoder()
    documents: list[t.Any] = []
    position = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]
    while position < len(text):
        try:
            document, end = decoder.raw_decode(text, position)
        except ValueError as exc:
            return documents, exc
        documents.append(document)
        position = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
    return documents, None


def key_values(text: str | None) -> dict[str, str]:
    """``KEY=value`` lines as systemd writes and prints them (unit and .netdev files, networkd's state
    files, ``systemctl show``): each line stripped; comments (``#``, ``;``) and lines without ``=`` skipped."""
    pairs = (line.strip() for line in (text or "").splitlines())
    return dict(line.split("=", 1) for line in pairs if "=" in line and not line.startswith(("#", ";")))


def run_module(module: t.Any, work: t.Callable[[], dict[str, t.Any]]) -> None:
    """Exit with what ``work`` returns (not changed unless it says so), or fail with its GreError."""
    try:
        result = work()
    except GreError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**{"changed": False, **result})
