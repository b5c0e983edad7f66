# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Persistence on a systemd older than 252 (issue 17): networkd there cannot bring the tunnels back.

gre_tunnel's .netdev files need ``Independent=`` (systemd 252); an older networkd ignores the key
and never creates such a tunnel. ``auto`` takes the unit there, an explicit ``networkd`` fails before
anything changes, naming the version. The version is what ``systemctl --version`` prints first:
systemd 252 as captured on the lab guest (fixtures/host/networkd.json), systemd 249 as an Ubuntu
22.04 host printed it, quoted in fixtures/tools/systemd-249.json (no lab guest runs it; the file
names its source). The services' state is the lab guest's, networkd active and enabled.
"""

from __future__ import annotations

import pathlib
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _host_facts, _systemd
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist
from ansible_collections.linuxnet.gre.plugins.modules import gre_host_facts

from .conftest import BATCH, READ, Replay, Seam, load

SHOW = list(_systemd.SYSTEMCTL)
VERSION = list(_systemd.VERSION)
ENABLE = ["systemctl", "enable", "--no-reload", "linuxnet-gre.service"]
RESTART = ["systemctl", "restart", "systemd-networkd.service"]
SEED = {"name": "gre1", "local": "203.0.113.1", "remote": "198.51.100.1", "addresses": ["10.0.0.1/30"]}
OLD_NETWORKD = (
    "this host runs systemd 249, and systemd-networkd creates tunnels bound to no underlay link (Independent=, in "
    "the .netdev files it would get) only from systemd 252 on: the tunnels would not come back at boot; persist them "
    "with the unit (auto takes it here)"
)


def version_call(fixture: str) -> dict[str, t.Any]:
    return next(call for call in load(fixture)["calls"] if call["argv"] == VERSION)


class Services(Replay):
    """The lab guest with systemd-networkd running (host/networkd.json), its systemctl --version from ``version``;
    its boot files under a temporary root. The other systemctl and networkctl commands are recorded; those in
    ``allowed`` succeed (as in test_gre_tunnel_persist.py), any other fails the run."""

    def __init__(self, root: pathlib.Path, version: str) -> None:
        guest = load("host/networkd")
        calls = [call for call in guest["calls"] if call["argv"] in (SHOW, VERSION, _host_facts.IP_CHECK)]
        super().__init__([version_call(version), *calls], which=guest["which"], exists=guest["exists"])
        self.root = root
        (root / "run/systemd/system").mkdir(parents=True)
        self.allowed: list[list[str]] = []
        self.respond(self.changes, lambda argv, _stdin: (0, "", "") if argv in self.allowed else (1, "", "refused\n"))

    @staticmethod
    def changes(argv: list[str], stdin: str | None) -> bool:
        return argv[0] in ("systemctl", "networkctl") and argv not in (SHOW, VERSION)

    def files(self) -> list[str]:
        return sorted(
            "/" + str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file() or p.is_symlink()
        )


@pytest.fixture
def services(seam: Seam, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> t.Callable[[str], Services]:
    def make(version: str) -> Services:
        fake = Services(tmp_path / "root", version)
        monkeypatch.setattr(persist.Files, "root", str(fake.root))
        seam.use(fake, role="files")
        return fake

    return make


@pytest.mark.parametrize(("fixture", "version"), [("host/networkd", 252), ("tools/systemd-249", 249)])
def test_the_version_is_the_number_systemctl_prints_first(fixture, version):
    assert _systemd.systemd_version(Replay([version_call(fixture)])) == version


def test_a_first_line_without_a_version_number_is_no_version():
    """The parser's contract: the number after "systemd "; anything else is no version (and networkd is not trusted)."""
    call = version_call("host/networkd")
    renamed = dict(call, stdout=call["stdout"].replace("systemd 252 ", "systemd (252 ", 1))
    assert _systemd.systemd_version(Replay([renamed])) is None
    state = {"networkd_active": True, "networkd_enabled": True, "udevd_active": True, "systemd_version": None}
    problem = _systemd.networkd_problem(state)
    assert problem is not None
    assert problem.startswith(
        "this host runs a systemd whose systemctl --version names no version, and systemd-networkd creates"
    )


@pytest.mark.parametrize(
    ("version", "number", "auto", "problem"),
    [("host/networkd", 252, "networkd", None), ("tools/systemd-249", 249, "unit", OLD_NETWORKD)],
)
def test_gre_host_facts_reports_the_version_and_what_auto_takes(seam, services, version, number, auto, problem):
    fake = services(version)
    result = seam.main(gre_host_facts.main, {}, check_mode=True)
    own = result["ansible_facts"]["linuxnet_gre"]
    assert own["systemd_version"] == number
    assert own["persist"] == {"auto": auto, "problems": {"unit": None, "networkd": problem}}
    assert fake.calls == [_host_facts.IP_CHECK, SHOW, VERSION]


@pytest.mark.parametrize("check_mode", [False, True])
def test_explicit_networkd_on_systemd_249_fails_naming_the_version_before_anything_changes(run, services, check_mode):
    kernel = run.host("fresh")
    fake = services("tools/systemd-249")
    result = run.fails({"tunnels": [SEED], "purge": True, "persist": "networkd"}, check_mode=check_mode)
    assert result["msg"] == f"persist: networkd: {OLD_NETWORKD}"
    assert kernel.calls == [READ]  # no modprobe, no ip -batch
    assert kernel.batch_lines is None
    assert fake.calls == [SHOW, VERSION]
    assert fake.files() == []


def test_auto_on_systemd_249_takes_the_unit(run, services):
    kernel = run.host("fresh")
    fake = services("tools/systemd-249")
    fake.allowed.append(ENABLE)
    result = run({"tunnels": [SEED], "purge": True, "persist": "auto"})
    assert kernel.calls[-1] == BATCH
    assert result["persisted"] == {
        "mechanism": "unit",
        "written": [persist.BATCH, persist.UNIT_FILE],
        "removed": [],
        "commands": ["systemctl enable --no-reload linuxnet-gre.service"],
        "released": [],
    }
    assert fake.files() == [persist.BATCH, persist.UNIT_FILE]
    assert fake.calls == [SHOW, VERSION, ENABLE]
    assert "warnings" not in result


def test_auto_on_systemd_252_still_takes_networkd(run, services):
    run.host("fresh")
    fake = services("host/networkd")
    fake.allowed.append(RESTART)
    result = run({"tunnels": [SEED], "purge": True, "persist": "auto"})
    assert result["persisted"]["mechanism"] == "networkd"
    assert fake.files() == [
        f"{persist.NETWORKD_DIR}/60-linuxnet-gre{end}" for end in ("-gre1.netdev", "-gre1.network", ".link")
    ]
    assert fake.calls == [SHOW, VERSION, RESTART]
