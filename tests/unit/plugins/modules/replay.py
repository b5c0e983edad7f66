# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one replay harness: a module's main() against a host that answers with what real hosts answered.

Every module reaches its host through _host.Host (``which``, ``run``, ``read_text``, ``exists``).
``Seam`` replaces those four methods for a test and hands each call to a ``Replay``: the answers
of one fixture (fixtures/README.md has the format). A replay records every call made to it and
fails the test on one it has no answer for. It answers in either of two ways:

- a host state (a fixture's ``calls``): any recorded command or read, as often as asked, in any
  order; the command matched by argv and stdin, the read by path;
- a conversation (the ``calls`` of one of a fixture's ``runs``, ``ordered=True``): exactly the
  recorded commands and reads, in the recorded order, each once (``assert_done`` checks that
  none is left).

``which`` and ``exists`` answer from the fixture's ``which`` and ``exists`` maps. Module-specific
conveniences (gre_tunnel's kernel in conftest.py, the files of its persist option) add computed
answers with ``respond`` and stay thin.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest
from ansible.module_utils import basic

from ansible_collections.linuxnet.gre.plugins.module_utils import _host

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
Answer = t.Tuple[int, str, str]
Call = t.Dict[str, t.Any]

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    import contextlib
    from unittest import mock

    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args: dict[str, t.Any] | None = None) -> t.Iterator[None]:
        serialized = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}))
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield


def load(name: str) -> dict[str, t.Any]:
    """The fixture ``name``: its path under fixtures/ without ``.json`` (``managed-gre1``, ``host/default4``)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def answer(call: Call) -> Answer:
    """What a recorded command (a call, a setup step) answered: exit status, stdout, stderr."""
    return call["rc"], call["stdout"], call["stderr"]


class Replay:
    """One host as captured: answers from recorded calls (and ``respond``), records every call made to it."""

    def __init__(
        self,
        calls: t.Iterable[Call] = (),
        ordered: bool = False,
        which: dict[str, bool] | None = None,
        exists: dict[str, bool] | None = None,
    ) -> None:
        self.recorded = [dict(call) for call in calls]
        self.ordered = ordered
        self.installed = dict(which or {})
        self.present = dict(exists or {})
        self.responders: list[tuple[t.Callable[[list[str], str | None], bool], t.Callable[..., Answer]]] = []
        self.log: list[Call] = []  # every call made to this host, in the fixture's shape, without the answers
        self.calls: list[list[str]] = []  # the argv of every command run

    @classmethod
    def of(cls, fixture: dict[str, t.Any], run: int | None = None) -> Replay:
        """A fixture's host state, or with ``run`` the conversation of ``fixture["runs"][run]``."""
        calls = fixture["calls"] if run is None else fixture["runs"][run]["calls"]
        return cls(calls, ordered=run is not None, which=fixture.get("which"), exists=fixture.get("exists"))

    # --- adding answers -------------------------------------------------------------------------

    def add(self, *calls: Call, first: bool = False) -> None:
        """More recorded calls; ``first``: before those already there (a host state takes the first match)."""
        added = [dict(call) for call in calls]
        self.recorded = added + self.recorded if first else self.recorded + added

    def respond(self, matches: t.Callable[[list[str], str | None], bool], respond: t.Callable[..., Answer]) -> None:
        """Answer the commands ``matches(argv, stdin)`` accepts with ``respond(argv, stdin)``, before any recording."""
        self.responders.append((matches, respond))

    # --- what this host answers -------------------------------------------------------------------

    def _responder(self, argv: list[str], stdin: str | None) -> t.Callable[..., Answer] | None:
        return next((respond for matches, respond in self.responders if matches(argv, stdin)), None)

    def _find(self, kind: str, match: t.Callable[[Call], bool]) -> int | None:
        """The index of the recorded call of ``kind`` that answers (in a conversation only the next one), or None."""
        if self.ordered:
            return 0 if self.recorded and kind in self.recorded[0] and match(self.recorded[0]) else None
        return next((i for i, call in enumerate(self.recorded) if kind in call and match(call)), None)

    @staticmethod
    def _command(argv: list[str], stdin: str | None) -> t.Callable[[Call], bool]:
        return lambda call: (call["argv"], call["stdin"]) == (list(argv), stdin)

    @staticmethod
    def _read(path: str) -> t.Callable[[Call], bool]:
        return lambda call: call["path"] == path

    def handles(self, method: str, *args: t.Any) -> bool:
        """Whether this host has an answer for the seam call ``method(*args)`` (nothing is taken)."""
        if method == "run":
            argv, stdin = args
            return (
                self._responder(argv, stdin) is not None or self._find("argv", self._command(argv, stdin)) is not None
            )
        if method == "read_text":
            return self._find("path", self._read(args[0])) is not None
        return args[0] in (self.installed if method == "which" else self.present)

    def take(self, kind: str, match: t.Callable[[Call], bool], what: str) -> Call:
        """The recorded call of ``kind`` that ``match`` accepts (a conversation's next one, used up); else fail naming ``what``.

        For calls of a kind of their own, beside commands (``argv``) and reads (``path``).
        """
        index = self._find(kind, match)
        if index is None:
            raise self._unexpected(what)
        return self.recorded.pop(index) if self.ordered else self.recorded[index]

    def _unexpected(self, what: str) -> AssertionError:
        if self.ordered:
            expected = f"recorded next: {self.recorded[0]}" if self.recorded else "every recorded call was answered"
            return AssertionError(f"unexpected {what} ({expected})")
        return AssertionError(f"unexpected {what}")

    # --- the seam (_host.Host's methods) ----------------------------------------------------------

    def which(self, program: str) -> str | None:
        self.log.append({"which": program})
        if program not in self.installed:
            raise self._unexpected(f"which({program!r}): the capture does not say whether it is installed")
        return f"/usr/sbin/{program}" if self.installed[program] else None

    def run(self, argv: list[str], stdin: str | None = None) -> Answer:
        self.log.append({"argv": list(argv), "stdin": stdin})
        self.calls.append(list(argv))
        respond = self._responder(argv, stdin)
        if respond is not None:
            return respond(argv, stdin)
        return answer(self.take("argv", self._command(argv, stdin), f"command {argv} with input {stdin!r}"))

    def read_text(self, path: str) -> str | None:
        self.log.append({"path": path})
        return self.take("path", self._read(path), f"read of {path}")["text"]

    def exists(self, path: str) -> bool:
        self.log.append({"exists": path})
        if path not in self.present:
            raise self._unexpected(f"exists({path!r}): the capture does not say")
        return self.present[path]

    # --- what was asked ---------------------------------------------------------------------------

    def stdin(self, program: str) -> str:
        """The input of the one command of ``program`` that had one."""
        (text,) = [c["stdin"] for c in self.log if c.get("argv", [None])[0] == program and c["stdin"] is not None]
        return t.cast(str, text)

    def assert_done(self) -> None:
        """A conversation: every recorded call was made."""
        assert not self.recorded, f"recorded calls left unanswered: {self.recorded}"


class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


def _exit_json(_self: t.Any, **kwargs: t.Any) -> t.NoReturn:
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(_self: t.Any, msg: str, **kwargs: t.Any) -> t.NoReturn:
    raise AnsibleFailJson(dict(kwargs, msg=msg, failed=True))


class Seam:
    """_host.Host for one test: each call goes to the first replay in place that answers it.

    ``use`` puts a replay in place under a role (a second ``use`` of a role replaces it), so a
    test may have a host state for the kernel and another for systemctl, each with its own record.
    A call no replay answers goes to the first one, which fails saying what it holds.
    """

    def __init__(self) -> None:
        self.hosts: dict[str, Replay] = {}
        self.warnings: list[str] = []  # what the module passed to module.warn() in the current run

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Seam:
        monkeypatch.setattr(_host.Host, "which", lambda _h, program: self.host_for("which", program).which(program))
        monkeypatch.setattr(
            _host.Host, "run", lambda _h, argv, stdin=None: self.host_for("run", argv, stdin).run(argv, stdin)
        )
        monkeypatch.setattr(_host.Host, "read_text", lambda _h, path: self.host_for("read_text", path).read_text(path))
        monkeypatch.setattr(_host.Host, "exists", lambda _h, path: self.host_for("exists", path).exists(path))
        monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
        monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
        monkeypatch.setattr(
            basic.AnsibleModule, "warn", lambda _self, warning, **_kwargs: self.warnings.append(warning)
        )
        return self

    def use(self, replay: Replay, role: str = "host") -> Replay:
        self.hosts[role] = replay
        return replay

    def host_for(self, method: str, *args: t.Any) -> Replay:
        assert self.hosts, f"{method}{args}: no replay in place"
        return next((h for h in self.hosts.values() if h.handles(method, *args)), next(iter(self.hosts.values())))

    def main(
        self, module_main: t.Callable[[], None], args: dict[str, t.Any], check_mode: bool = False, diff: bool = False
    ) -> dict[str, t.Any]:
        """Run a module's main(): the result of its exit_json or fail_json (``failed``), with its warnings."""
        self.warnings.clear()
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args), pytest.raises((AnsibleExitJson, AnsibleFailJson)) as caught:
            module_main()
        result = caught.value.args[0]
        if self.warnings:
            result["warnings"] = list(self.warnings)
        return result
