# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_firewall's persist: the boot unit that puts the rules back, its settings and the copy of the code it runs.

The packet filter answers as captured on the lab guest (fixtures/firewall/legacy-default-drop.json: a
default-drop iptables-legacy INPUT; run 1 adds the rules, run 2 finds them, run 4 removes them). The
host's files live under a temporary root; systemctl answers with its exit status only, which is all
the module reads (its real runs, through reboots and firewall restarts, are molecule/firewall's).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewall_persist as fp
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist
from ansible_collections.linuxnet.gre.plugins.modules import gre_firewall

from .conftest import Replay, Seam
from .test_gre_firewall import load

MODULE_UTILS = pathlib.Path(fp.__file__).parent
ENABLE = ["systemctl", "enable", fp.UNIT]
DISABLE = ["systemctl", "disable", "--no-reload", fp.UNIT]
START = ["systemctl", "start", fp.UNIT]
STOP = ["systemctl", "stop", fp.UNIT]
RELOAD = ["systemctl", "daemon-reload"]
COPIES = [f"{fp.CODE_DIR}/{name}.py" for name in fp.CODE]


class Files(Replay):
    """The host's files under a temporary root, its systemctl: enable and disable make and remove the link."""

    def __init__(self, root: pathlib.Path, systemd: bool = True) -> None:
        super().__init__()
        self.root = root
        self.respond(lambda argv, stdin: argv[0] == "systemctl", self.systemctl)
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/bin/python3").touch()
        if systemd:
            (root / "run/systemd/system").mkdir(parents=True)

    def systemctl(self, argv: list[str], _stdin: str | None) -> tuple[int, str, str]:
        link = self.path(fp.WANTS_LINK)
        if argv[:2] == ["systemctl", "enable"]:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(fp.UNIT_FILE)
        if argv[:2] == ["systemctl", "disable"]:
            assert self.path(fp.UNIT_FILE).exists(), "disabled after its file went"
            link.unlink()
        return 0, "", ""

    def path(self, path: str) -> pathlib.Path:
        return self.root / path.lstrip("/")

    def files(self) -> list[str]:
        return sorted("/" + str(p.relative_to(self.root)) for p in self.root.rglob("*") if not p.is_dir())


class Host:
    def __init__(self, seam: Seam, files: Files) -> None:
        self.seam = seam
        self.files = files
        self.fixture = load("legacy-default-drop")

    def run(self, index: int, check_mode: bool = False, **params: t.Any) -> dict[str, t.Any]:
        """Run ``index`` of the capture, with ``params`` over its parameters."""
        record = self.fixture["runs"][index]
        self.files.calls.clear()
        self.seam.use(Replay(record["calls"], ordered=True, which=self.fixture["which"]))
        return self.seam.main(gre_firewall.main, {**record["params"], **params}, check_mode=check_mode, diff=True)

    @property
    def systemctl(self) -> list[list[str]]:
        return self.files.calls


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, seam: Seam) -> t.Callable[..., Host]:
    def make(**options: t.Any) -> Host:
        files = Files(tmp_path / "root", **options)
        monkeypatch.setattr(persist.Files, "root", str(files.root))
        seam.use(files, role="files")
        return Host(seam, files)

    return make


def test_rules_added_get_their_boot_unit_its_settings_and_a_copy_of_the_code(host):
    fake = host()
    result = fake.run(1)
    assert result["changed"] is True and result["backends"] == ["iptables-legacy"]
    assert result["persisted"] == {
        "mechanism": "unit",
        "written": sorted([fp.SETTINGS, fp.UNIT_FILE, *COPIES]),
        "removed": [],
        "commands": [" ".join(ENABLE), " ".join(START)],
    }
    assert fake.systemctl == [ENABLE, START]
    assert fake.files.files() == sorted([fp.SETTINGS, fp.UNIT_FILE, fp.WANTS_LINK, "/usr/bin/python3", *COPIES])
    settings = json.loads(fake.files.path(fp.SETTINGS).read_text())
    assert settings == {
        "peers": ["203.0.113.1"],
        "state": "present",
        "backend": "auto",
        "only_if_filtered": True,
        "mss_clamp": [],
        "forward": [],
        "local_networks": [],
    }
    for name in fp.CODE:
        copy = fake.files.path(f"{fp.CODE_DIR}/{name}.py").read_text()
        assert copy == (MODULE_UTILS / f"{name}.py").read_text()
    unit = fake.files.path(fp.UNIT_FILE).read_text()
    assert f"ExecStart=/usr/bin/python3 -I -S {fp.RUNNER} {fp.SETTINGS}\n" in unit
    assert f"ExecReload=/usr/bin/python3 -I -S {fp.RUNNER} {fp.SETTINGS}\n" in unit
    assert "PartOf=nftables.service netfilter-persistent.service iptables.service ip6tables.service\n" in unit
    assert (
        "ReloadPropagatedFrom=nftables.service netfilter-persistent.service iptables.service ip6tables.service\n"
        in unit
    )
    # The diff shows the rules, then the settings and the unit (not the copied code).
    assert [d.get("after_header") for d in result["diff"]] == [None, fp.SETTINGS, fp.UNIT_FILE]


def test_the_copy_runs_alone_with_the_standard_library(host):
    """python3 -I -S on the copied runner: it imports from the copy and reports a missing settings file."""
    fake = host()
    fake.run(1)
    runner = fake.files.path(fp.RUNNER)
    missing = fake.files.root / "nothing.json"
    process = subprocess.run(
        [sys.executable, "-I", "-S", str(runner), str(missing)], capture_output=True, text=True, check=False
    )
    assert process.returncode == 1
    assert process.stderr.startswith(f"linuxnet-gre-firewall: cannot read {missing}: [Errno 2]")


def test_in_place_nothing_is_written_and_no_command_runs(host):
    fake = host()
    fake.run(1)
    result = fake.run(2)
    assert result["changed"] is False
    assert result["persisted"] == {"mechanism": "unit", "written": [], "removed": [], "commands": []}
    assert fake.systemctl == []
    assert isinstance(result["diff"], dict)


def test_new_settings_are_written_and_the_unit_left_running(host):
    fake = host()
    fake.run(1)
    result = fake.run(2, check_mode=True, backend="iptables")
    assert result["persisted"]["written"] == [fp.SETTINGS] and result["persisted"]["commands"] == []
    assert json.loads(fake.files.path(fp.SETTINGS).read_text())["backend"] == "auto", "check mode wrote"


def test_check_mode_predicts_and_writes_nothing(host):
    fake = host()
    result = fake.run(0, check_mode=True)
    assert result["persisted"]["written"] == sorted([fp.SETTINGS, fp.UNIT_FILE, *COPIES])
    assert result["persisted"]["commands"] == [" ".join(ENABLE), " ".join(START)]
    assert fake.files.files() == ["/usr/bin/python3"] and fake.systemctl == []


def test_no_rule_left_removes_all_of_it_disabling_first_and_keeps_the_tunnels_batch(host):
    fake = host()
    fake.run(1)
    batch = fake.files.path("/etc/linuxnet-gre/tunnels.batch")
    batch.write_text("link add gre1 type gre remote 203.0.113.1\n")
    result = fake.run(4)
    assert result["persisted"]["mechanism"] == "none"
    assert result["persisted"]["removed"][: len(COPIES) + 2] == [fp.SETTINGS, fp.UNIT_FILE, *COPIES]
    assert fake.systemctl == [DISABLE, RELOAD, STOP]
    assert fake.files.files() == ["/etc/linuxnet-gre/tunnels.batch", "/usr/bin/python3"]
    assert not fake.files.path(fp.LIB_DIR).exists()


def test_persist_false_removes_it_and_the_empty_directories(host):
    fake = host()
    fake.run(1)
    result = fake.run(2, persist=False)
    assert result["changed"] is True
    assert result["persisted"]["removed"] == [
        fp.SETTINGS,
        fp.UNIT_FILE,
        *COPIES,
        fp.CODE_DIR,
        *[str(pathlib.PurePosixPath(fp.CODE_DIR).parents[i]) for i in range(5)],
        fp.SETTINGS_DIR,
    ]
    assert fake.files.files() == ["/usr/bin/python3"]


def test_a_host_without_systemd_gets_a_warning_and_no_file(host):
    fake = host(systemd=False)
    result = fake.run(1)
    assert result["warnings"] == [fp.NOT_PERSISTED]
    assert result["persisted"] == {"mechanism": "none", "written": [], "removed": [], "commands": []}
    assert fake.files.files() == ["/usr/bin/python3"]
