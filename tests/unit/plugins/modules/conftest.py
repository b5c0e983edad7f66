# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs gre_tunnel's main() against a kernel that answers with output captured from a real one.

The fixtures under fixtures/ come from fixtures/capture.py (a lab guest running Linux 6.1, and
this machine for a kernel without GRE). A test names the captured host state; the fake kernel
answers the read command with that capture, modprobe and ip -batch with captured answers, and
records every command.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest
from ansible.module_utils import basic

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import Kernel
from ansible_collections.linuxnet.gre.plugins.modules import gre_tunnel

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
READ = ["ip", "-details", "-json", "address", "show"]
BATCH = ["ip", "-batch", "-"]

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
    return json.loads((FIXTURES / f"{name}.json").read_text())


def setup_step(fixture: str, command: str | list[str]) -> dict[str, t.Any]:
    """A captured setup step: a shell command, or the lines of an ip -batch."""
    key = "batch" if isinstance(command, list) else "sh"
    steps = [s for s in load(fixture)["setup"] if s.get(key) == command]
    assert steps, f"{fixture}.json has no setup step {command!r}"
    return steps[0]


def answer(step: dict[str, t.Any]) -> tuple[int, str, str]:
    return step["rc"], step["stdout"], step["stderr"]


# Captured answers of the commands the module runs besides the read.
MODPROBE = {
    ("modprobe", "ip_gre"): lambda: answer(setup_step("modprobe-dry-run", "modprobe ip_gre")),
    ("modprobe", "--dry-run", "ip_gre"): lambda: answer(setup_step("modprobe-dry-run", "modprobe --dry-run ip_gre")),
    ("modprobe", "ip6_gre"): lambda: answer(setup_step("managed-ip6gre", "modprobe ip6_gre")),
    ("modprobe", "--dry-run", "ip6_gre"): lambda: answer(setup_step("modprobe-dry-run", "modprobe --dry-run ip6_gre")),
}
NO_GRE_MODPROBE = {
    ("modprobe", "ip_gre"): lambda: answer(setup_step("no-gre-kernel", "modprobe ip_gre")),
    ("modprobe", "--dry-run", "ip_gre"): lambda: answer(setup_step("no-gre-kernel", "modprobe --dry-run ip_gre")),
}


class AnsibleExitJson(Exception):
    pass


class AnsibleFailJson(Exception):
    pass


class FakeKernel:
    """The host as captured: the read answers from a fixture; modprobe and ip -batch from captured runs."""

    def __init__(self, state: str) -> None:
        self.state = load(state)
        links = json.loads(self.state["stdout"])
        names = {link["ifname"] for link in links}
        # The modules create their fallback devices when they load: the capture shows which are loaded.
        self.loaded = {"ip_gre": "gre0" in names, "ip6_gre": "ip6gre0" in names}
        self.modprobe = dict(MODPROBE)
        # A batch that ran fine on the guest (the one that created managed-gre1).
        self.batch_answer = answer(next(s for s in load("managed-gre1")["setup"] if "batch" in s))
        self.calls: list[list[str]] = []
        self.batch_lines: list[str] | None = None

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if argv == READ:
            return self.state["rc"], self.state["stdout"], self.state["stderr"]
        if argv == BATCH:
            assert stdin is not None and stdin.endswith("\n")
            self.batch_lines = stdin.splitlines()
            return self.batch_answer
        if tuple(argv) in self.modprobe:
            return self.modprobe[tuple(argv)]()
        raise AssertionError(f"unexpected command {argv}")

    def module_loaded(self, name: str) -> bool:
        return self.loaded[name]


class Runner:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
        self.monkeypatch = monkeypatch
        self.kernel: FakeKernel | None = None
        # What the module passed to module.warn() in the current run; the result gets them as `warnings`,
        # as AnsibleModule's exit_json and fail_json put them there.
        self.warnings: list[str] = []
        monkeypatch.setattr(
            basic.AnsibleModule, "warn", lambda _self, warning, **_kwargs: self.warnings.append(warning)
        )
        # Where the module notes the interfaces a batch is creating (never the host's /run).
        self.pending_file = tmp_path / "linuxnet-gre" / "creating.json"
        monkeypatch.setattr(Kernel, "pending_file", str(self.pending_file))

    def host(self, state: str) -> FakeKernel:
        """Use the captured host state ``state`` (a fixture name)."""
        self.kernel = FakeKernel(state)
        kernel = self.kernel
        self.monkeypatch.setattr(Kernel, "run", lambda _self, argv, stdin=None: kernel.run(argv, stdin))
        self.monkeypatch.setattr(Kernel, "module_loaded", lambda _self, name: kernel.module_loaded(name))
        return kernel

    def __call__(self, args: dict[str, t.Any], check_mode: bool = False, diff: bool = False) -> dict[str, t.Any]:
        """Run the whole module; its result (exit_json) or raise AnsibleFailJson with fail_json's."""
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        self.warnings.clear()
        with patch_module_args(args), pytest.raises((AnsibleExitJson, AnsibleFailJson)) as caught:
            gre_tunnel.main()
        if self.warnings:
            caught.value.args[0]["warnings"] = list(self.warnings)
        if caught.type is AnsibleFailJson:
            raise caught.value
        return caught.value.args[0]

    def fails(self, args: dict[str, t.Any], check_mode: bool = False) -> dict[str, t.Any]:
        with pytest.raises(AnsibleFailJson) as caught:
            self(args, check_mode=check_mode)
        result = caught.value.args[0]
        assert result["failed"] is True
        return result


def _exit_json(_self: t.Any, **kwargs: t.Any) -> t.NoReturn:
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(_self: t.Any, msg: str, **kwargs: t.Any) -> t.NoReturn:
    raise AnsibleFailJson(dict(kwargs, msg=msg, failed=True))


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Runner:
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    return Runner(monkeypatch, tmp_path)
