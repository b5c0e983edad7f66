# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module tests' fixtures: ``seam`` (the one replay harness, replay.py) and ``run``, gre_tunnel on top of it.

``run.host(NAME)`` puts the captured host state fixtures/NAME.json in place of the host; ``run(ARGS)``
runs gre_tunnel's main() against it. Its kernel answers the read with the capture, and modprobe
and ``ip -batch`` with what they answered while other captures were made (a setup step of those,
or no-gre-kernel's calls); see fixtures/README.md.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import (
    BATCH_COMMAND,
    READ_COMMAND,
    ROUTED_READ_COMMAND,
    Kernel,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import Files
from ansible_collections.linuxnet.gre.plugins.modules import gre_tunnel

from .replay import (
    FIXTURES,
    AnsibleExitJson,
    AnsibleFailJson,
    Replay,
    Seam,
    _exit_json,
    _fail_json,
    answer,
    load,
    patch_module_args,
)

# What the test files import from here (some of it replay.py's, for the files written against this module).
__all__ = [
    "BATCH",
    "FIXTURES",
    "MODPROBE",
    "NO_GRE_MODPROBE",
    "READ",
    "AnsibleExitJson",
    "AnsibleFailJson",
    "FakeKernel",
    "Replay",
    "Runner",
    "Seam",
    "_exit_json",
    "_fail_json",
    "answer",
    "captured_call",
    "load",
    "patch_module_args",
    "setup_step",
]

READ = list(READ_COMMAND)
BATCH = list(BATCH_COMMAND)


def setup_step(fixture: str, command: str | list[str]) -> dict[str, t.Any]:
    """A captured setup step: a shell command, or the lines of an ip -batch."""
    if isinstance(command, list):
        stdin = "".join(f"{line}\n" for line in command)
        steps = [s for s in load(fixture)["setup"] if s.get("argv") == BATCH and s["stdin"] == stdin]
    else:
        steps = [s for s in load(fixture)["setup"] if s.get("sh") == command]
    assert steps, f"{fixture}.json has no setup step {command!r}"
    return steps[0]


def captured_call(fixture: str, argv: list[str]) -> dict[str, t.Any]:
    """What a command the module runs answered in a capture."""
    (call,) = [c for c in load(fixture)["calls"] if c.get("argv") == argv]
    return call


def captured_links(fixture: str) -> list[dict[str, t.Any]]:
    """The interfaces of a capture: its plain read, or the first document of its batch read (``fou show`` beside)."""
    reads = [c for c in load(fixture)["calls"] if c.get("argv") == READ]
    if reads:
        return t.cast(t.List[t.Dict[str, t.Any]], json.loads(reads[0]["stdout"]))
    (batch,) = [c for c in load(fixture)["calls"] if c.get("argv") == list(ROUTED_READ_COMMAND)]
    links, _end = json.JSONDecoder().raw_decode(batch["stdout"])
    return t.cast(t.List[t.Dict[str, t.Any]], links)


# Captured answers of the commands the module runs besides the read.
MODPROBE = {
    ("modprobe", "ip_gre"): lambda: answer(setup_step("modprobe-dry-run", "modprobe ip_gre")),
    ("modprobe", "--dry-run", "ip_gre"): lambda: answer(setup_step("modprobe-dry-run", "modprobe --dry-run ip_gre")),
    ("modprobe", "ip6_gre"): lambda: answer(setup_step("managed-ip6gre", "modprobe ip6_gre")),
    ("modprobe", "--dry-run", "ip6_gre"): lambda: answer(setup_step("modprobe-dry-run", "modprobe --dry-run ip6_gre")),
    # The cloud kernel's (fou-fresh.json): the UML kernel of the other captures has no FOU tunnels.
    ("modprobe", "fou"): lambda: answer(captured_call("fou-fresh", ["modprobe", "fou"])),
    ("modprobe", "--dry-run", "fou"): lambda: answer(captured_call("fou-fresh", ["modprobe", "--dry-run", "fou"])),
}
NO_GRE_MODPROBE = {
    ("modprobe", "ip_gre"): lambda: answer(captured_call("no-gre-kernel", ["modprobe", "ip_gre"])),
    ("modprobe", "--dry-run", "ip_gre"): lambda: answer(
        captured_call("no-gre-kernel", ["modprobe", "--dry-run", "ip_gre"])
    ),
}


class FakeKernel(Replay):
    """A captured host state as gre_tunnel's kernel sees it: the read from the capture, modprobe and ip -batch too.

    ``modprobe`` (argv -> answer) and ``batch_answer`` may be changed by a test; ``batch_lines`` are
    the lines of the last ip -batch.
    """

    def __init__(self, state: str) -> None:
        self.fixture = load(state)
        super().__init__(self.fixture["calls"])
        names = {link["ifname"] for link in captured_links(state)}
        # The modules create their fallback devices when they load: the capture shows which are loaded.
        # The fou module has no device to show it: the captures of issue 18 (fou-*.json) say in their `exists`;
        # nothing loaded it on the guests of the earlier ones.
        self.present = {
            f"{Kernel.sys_module_dir}/ip_gre": "gre0" in names,
            f"{Kernel.sys_module_dir}/ip6_gre": "ip6gre0" in names,
            f"{Kernel.sys_module_dir}/fou": False,
            **self.fixture.get("exists", {}),
        }
        self.modprobe = dict(MODPROBE)
        # A batch that ran fine on the guest (the one that created managed-gre1).
        self.batch_answer = answer(next(step for step in load("managed-gre1")["setup"] if step.get("argv") == BATCH))
        self.batch_lines: list[str] | None = None
        self.respond(lambda argv, stdin: argv == BATCH, self._batch)
        self.respond(lambda argv, stdin: stdin is None and tuple(argv) in self.modprobe, self._modprobe)

    def _batch(self, argv: list[str], stdin: str | None) -> tuple[int, str, str]:
        assert stdin is not None and stdin.endswith("\n")
        self.batch_lines = stdin.splitlines()
        return self.batch_answer

    def _modprobe(self, argv: list[str], stdin: str | None) -> tuple[int, str, str]:
        return self.modprobe[tuple(argv)]()


class Runner:
    """gre_tunnel's main() on a captured host state (``host``)."""

    def __init__(self, seam: Seam, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
        self.seam = seam
        self.monkeypatch = monkeypatch
        self.kernel: FakeKernel | None = None
        # What the module passed to module.warn() in the current run; the result gets them as `warnings`.
        self.warnings = seam.warnings
        # Where the module notes the interfaces a batch is creating (never the host's /run).
        self.pending_file = tmp_path / "linuxnet-gre" / "creating.json"
        monkeypatch.setattr(Kernel, "pending_file", str(self.pending_file))
        # Where it notes the FOU receive ports it created, and where the boot files are (never the host's).
        self.fou_file = tmp_path / "linuxnet-gre" / "fou-ports.json"
        monkeypatch.setattr(Kernel, "fou_file", str(self.fou_file))
        self.root = tmp_path / "root"
        self.root.mkdir()
        monkeypatch.setattr(Files, "root", str(self.root))

    def host(self, state: str) -> FakeKernel:
        """Use the captured host state ``state`` (a fixture name)."""
        self.kernel = FakeKernel(state)
        self.seam.use(self.kernel, role="kernel")
        return self.kernel

    def __call__(self, args: dict[str, t.Any], check_mode: bool = False, diff: bool = False) -> dict[str, t.Any]:
        """Run the whole module; its result (exit_json) or raise AnsibleFailJson with fail_json's."""
        result = self.seam.main(gre_tunnel.main, args, check_mode=check_mode, diff=diff)
        if result.get("failed"):
            raise AnsibleFailJson(result)
        return result

    def fails(self, args: dict[str, t.Any], check_mode: bool = False) -> dict[str, t.Any]:
        with pytest.raises(AnsibleFailJson) as caught:
            self(args, check_mode=check_mode)
        result = caught.value.args[0]
        assert result["failed"] is True
        return result


@pytest.fixture
def seam(monkeypatch: pytest.MonkeyPatch) -> Seam:
    """_host.Host answering from the replays a test puts in place (``seam.use``); ``seam.main`` runs a module."""
    return Seam().install(monkeypatch)


@pytest.fixture
def run(seam: Seam, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Runner:
    return Runner(seam, monkeypatch, tmp_path)
