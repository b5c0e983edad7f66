# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole gre_forward module through main(), its reads and commands answered from a real kernel.

fixtures/forward/*.json were written by fixtures/forward/capture.py, which ran the module's logic
on a lab guest several times in a row, recording every read of /proc/sys and every command with
the kernel's answer, the sysctl.d file after each run (written under a directory of its own, as
here) and the kernel's values afterwards (``evidence``). Each run is replayed in order: the module
must make exactly the recorded reads and commands, return the recorded result and leave the
recorded file; the evidence shows what the kernel really did with those commands.
"""

from __future__ import annotations

import pathlib
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _forward
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import Files
from ansible_collections.linuxnet.gre.plugins.modules import gre_forward

from .conftest import FIXTURES, Replay, Seam
from .conftest import load as load_fixture

NAMES = sorted(p.stem for p in (FIXTURES / "forward").glob("*.json"))
FILE = "/etc/sysctl.d/60-linuxnet-gre.conf"


def load(name: str) -> dict[str, t.Any]:
    return load_fixture(f"forward/{name}")


def sysctls(run: dict[str, t.Any]) -> dict[str, str]:
    """The kernel's values after a captured run, as ``sysctl KEY...`` printed them in its evidence."""
    values = {}
    for step in run["evidence"]:
        if step["sh"].startswith("sysctl "):
            for line in step["stdout"].splitlines():
                key, value = line.split(" = ")
                values[key] = value
    return values


def evidence(run: dict[str, t.Any], command: str) -> str:
    (step,) = [e for e in run["evidence"] if e["sh"] == command]
    return t.cast(str, step["stdout"])


class Runs:
    """gre_forward's main() replaying a fixture's runs in order, with the file under ``tmp_path``."""

    def __init__(self, seam: Seam, root: pathlib.Path) -> None:
        self.seam = seam
        self.root = root

    @property
    def file(self) -> pathlib.Path:
        return self.root / FILE.lstrip("/")

    def all(self, name: str) -> list[tuple[dict[str, t.Any], dict[str, t.Any]]]:
        """Every run of ``name``, in order: (the record, main()'s result); each checked against the capture."""
        fixture = load(name)
        done = []
        for index, record in enumerate(fixture["runs"]):
            host = self.seam.use(Replay.of(fixture, run=index))
            result = self.seam.main(gre_forward.main, record["params"], check_mode=record["check_mode"], diff=True)
            host.assert_done()
            assert result == record["result"], record["description"]
            assert (self.file.read_text() if self.file.exists() else None) == record["file"], record["description"]
            done.append((record, result))
        return done


@pytest.fixture
def runs(seam: Seam, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Runs:
    monkeypatch.setattr(Files, "root", str(tmp_path))
    return Runs(seam, tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_every_captured_run_replays_exactly(runs: Runs, name: str) -> None:
    """Same reads and commands in the same order, same result, same file, for every run of every capture."""
    assert runs.all(name)


def test_the_captures_are_there() -> None:
    assert NAMES == ["all-strict", "already-on", "ipv6-ra", "strict-tunnels"]


def test_strict_tunnels_get_loose_rp_filter_and_forwarding_with_one_sysctl(runs: Runs) -> None:
    strict = runs.all("strict-tunnels")
    (check, _check_result), (real, result), (check2, again_check), (_again_record, again) = strict[:4]
    (unplan_check, _unplan_check_result), (unplan, undone), (_last_record, last) = strict[4:]
    command = "sysctl -w net.ipv4.ip_forward=1 net.ipv4.conf.gre-x.rp_filter=2 net/ipv4/conf/gre.1/rp_filter=2"
    assert result["commands"] == [command]
    assert [c["argv"] for c in real["calls"] if "argv" in c] == [command.split()]
    assert check["result"]["commands"] == [command] and check["result"]["changed"] is True
    assert not any("argv" in c for c in check["calls"])  # check mode reads only
    # What the kernel holds afterwards: gre-y was not strict and the missing gre-later has nothing to apply.
    assert sysctls(real) == dict(
        sysctls(check),
        **{"net.ipv4.ip_forward": "1", "net.ipv4.conf.gre-x.rp_filter": "2", "net.ipv4.conf.gre/1.rp_filter": "2"},
    )
    assert sysctls(check)["net.ipv4.conf.gre-y.rp_filter"] == sysctls(real)["net.ipv4.conf.gre-y.rp_filter"] == "0"
    assert result["switched"] == {
        "net.ipv4.ip_forward": "0",
        "net.ipv4.conf.gre-x.rp_filter": "1",
        "net/ipv4/conf/gre.1/rp_filter": "1",
    }
    assert result["forwarding"] == {"ipv4": True, "ipv6": False}
    assert result["file"] == {"path": FILE, "state": "present"}
    assert real["file"] == (
        _forward.HEADER + "# was net.ipv4.ip_forward = 0\n"
        "net.ipv4.ip_forward = 1\n"
        "# was net.ipv4.conf.gre-x.rp_filter = 1\n"
        "net.ipv4.conf.gre-x.rp_filter = 2\n"
        "# was net/ipv4/conf/gre.1/rp_filter = 1\n"
        "net/ipv4/conf/gre.1/rp_filter = 2\n"
    )
    assert result["diff"][1] == {"before_header": FILE, "after_header": FILE, "before": "", "after": real["file"]}
    assert result["diff"][0]["before"].splitlines()[:1] == ["net.ipv4.ip_forward = 0"]
    assert result["diff"][0]["after"].splitlines()[:1] == ["net.ipv4.ip_forward = 1"]
    # Idempotent, check mode included.
    assert again_check["changed"] is False and again["changed"] is False and again["commands"] == []
    assert not any("argv" in c for c in check2["calls"])
    # No longer planned: each key put back, in one sysctl, and the file removed.
    assert unplan_check["result"]["changed"] is True and unplan_check["file"] == real["file"]
    assert undone["restored"] == result["switched"]
    assert undone["commands"] == [
        "sysctl -w net.ipv4.ip_forward=0 net.ipv4.conf.gre-x.rp_filter=1 net/ipv4/conf/gre.1/rp_filter=1"
    ]
    assert unplan["file"] is None and undone["file"]["state"] == "absent"
    assert sysctls(unplan) == sysctls(check)
    assert last["changed"] is False and last["commands"] == []


def test_conf_all_strict_loosens_only_the_listed_tunnels_and_puts_back_only_its_own_value(runs: Runs) -> None:
    (first, result), (_again_record, again), (unplan, undone) = runs.all("all-strict")
    assert result["commands"] == ["sysctl -w net.ipv4.conf.gre-x.rp_filter=2 net.ipv4.conf.gre-y.rp_filter=2"]
    assert sysctls(first)["net.ipv4.conf.all.rp_filter"] == "1"  # never touched
    assert result["forwarding"] == {"ipv4": False, "ipv6": False} and "net.ipv4.ip_forward" not in result["sysctls"]
    assert again["changed"] is False
    # gre-y was set to 0 by hand before the last run: not the module's value any more, left alone.
    assert unplan["before"]["sh"] == "sysctl -q -w net.ipv4.conf.gre-y.rp_filter=0"
    assert undone["restored"] == {"net.ipv4.conf.gre-x.rp_filter": "0"}
    assert sysctls(unplan)["net.ipv4.conf.gre-x.rp_filter"] == "0"
    assert sysctls(unplan)["net.ipv4.conf.gre-y.rp_filter"] == "0"
    assert unplan["file"] is None


def test_forwarding_on_before_stays_on_and_a_later_switch_is_recorded(runs: Runs) -> None:
    (first, result), (off, unplanned), (again, replanned) = runs.all("already-on")
    assert result["changed"] is True and result["commands"] == [] and result["switched"] == {}
    assert first["file"] == _forward.HEADER + "net.ipv4.ip_forward = 1\n"  # kept for boot, no 'was'
    assert unplanned["restored"] == {} and unplanned["commands"] == [] and off["file"] is None
    assert sysctls(off)["net.ipv4.ip_forward"] == "1"
    # Switched off by hand, then planned again: the module switched it this time, and says from what.
    assert replanned["commands"] == ["sysctl -w net.ipv4.ip_forward=1"]
    assert again["file"] == _forward.HEADER + "# was net.ipv4.ip_forward = 0\nnet.ipv4.ip_forward = 1\n"


def test_ipv6_forwarding_keeps_a_default_route_learned_from_router_advertisements(runs: Runs) -> None:
    (check, _check_result), (real, result), (_again_record, again), (ipv4_only, undone) = runs.all("ipv6-ra")
    routes = "ip -6 route show table all proto ra"
    assert evidence(check, routes).startswith("default via fe80::")
    # accept_ra=2 on v0 (its route came from an advertisement) before forwarding, in the same sysctl.
    assert result["commands"] == [
        "sysctl -w net.ipv6.conf.v0.accept_ra=2 net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"
    ]
    assert evidence(real, routes) != "" and evidence(real, routes).split()[:5] == evidence(check, routes).split()[:5]
    assert sysctls(real)["net.ipv6.conf.eth1.accept_ra"] == "1"  # no route from an advertisement there
    assert result["forwarding"] == {"ipv4": True, "ipv6": True}
    assert again["changed"] is False
    # IPv6 no longer planned: forwarding off first, then accept_ra back.
    assert undone["commands"] == ["sysctl -w net.ipv6.conf.all.forwarding=0 net.ipv6.conf.v0.accept_ra=1"]
    assert sysctls(ipv4_only)["net.ipv6.conf.v0.accept_ra"] == "1"
    assert ipv4_only["file"] == _forward.HEADER + "# was net.ipv4.ip_forward = 0\nnet.ipv4.ip_forward = 1\n"


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        (
            {"interfaces": ["gre/1"]},
            "interfaces: 'gre/1' is not an interface name: give 1 to 15 bytes without '/', ':', '=', '#' or white"
            " space (the names of the host's tunnels)",
        ),
        (
            {"interfaces": ["a-name-that-is-too-long"]},
            "interfaces: 'a-name-that-is-too-long' is not an interface name: give 1 to 15 bytes without '/', ':',"
            " '=', '#' or white space (the names of the host's tunnels)",
        ),
        (
            {"interfaces": ["all"]},
            "interfaces: 'all' names the kernel's settings for every interface, not an interface; give the names of"
            " the host's tunnels (gre_forward never changes conf.all or conf.default)",
        ),
        ({"forward": [5]}, "value of forward must be one or more of: 4, 6. Got no match for: 5"),
    ],
)
def test_bad_input_is_refused_before_anything_is_read(
    runs: Runs, seam: Seam, params: dict[str, t.Any], msg: str
) -> None:
    host = seam.use(Replay([]))
    result = seam.main(gre_forward.main, params)
    assert result["failed"] is True and result["msg"] == msg
    assert host.log == [] and not runs.file.exists()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
        ("net/ipv4/conf/gre-x/rp_filter", "net.ipv4.conf.gre-x.rp_filter"),
        ("net/ipv4/conf/gre.1/rp_filter", "net/ipv4/conf/gre.1/rp_filter"),
    ],
)
def test_keys_are_written_as_sysctl_reads_them(path: str, name: str) -> None:
    assert _forward.sysctl_name(path) == name
    assert _forward.key_path(name) == path


def test_the_file_reads_back_what_it_records() -> None:
    entries = {
        "net/ipv4/ip_forward": _forward.Entry("1", "0"),
        "net/ipv4/conf/gre.1/rp_filter": _forward.Entry("2", None),
    }
    assert _forward.parse_file(_forward.render_file(entries)) == entries
    assert _forward.render_file({}) is None
