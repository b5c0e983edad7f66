# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The boot unit's runner waits for firewalld to have built its rules before it converges (issue 17).

firewalld is a Type=dbus service: systemd starts the units ordered after it once it holds its D-Bus
name, which it takes before building its rules. molecule/firewall's hostc showed the unit finding an
input that nothing filtered yet, and so adding nothing. The answers are hostf's
(fixtures/firewall/boot/firewalld-states.json, firewalld running and stopped).
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewall_boot

from .conftest import load

STATES = {run["description"]: run["calls"] for run in load("firewall/boot/firewalld-states")["runs"]}
IS_ACTIVE = ["systemctl", "is-active", "firewalld.service"]
STATE = ["firewall-cmd", "--state"]


class Host:
    """systemd's answer from one captured state; firewall-cmd's from a list of them, one after the other."""

    def __init__(self, installed: bool, service: str, *answers: str) -> None:
        self.installed = installed
        self.service = service
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def which(self, program: str) -> str | None:
        assert program == "firewall-cmd"
        return "/usr/bin/firewall-cmd" if self.installed else None

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
        del stdin
        self.calls.append(argv)
        state = self.service if argv == IS_ACTIVE else self.answers.pop(0)
        (call,) = [c for c in STATES[state] if c["argv"] == argv]
        return call["rc"], call["stdout"], call["stderr"]


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(_firewall_boot.time, "sleep", slept.append)
    return slept


def wait(host: Host, **options: t.Any) -> str | None:
    return _firewall_boot.wait_for_firewalld(host, **options)  # type: ignore[arg-type]


def test_without_firewall_cmd_nothing_is_asked():
    host = Host(False, "running", "running")
    assert wait(host) is None and host.calls == []


def test_a_stopped_firewalld_is_not_waited_for():
    host = Host(True, "stopped", "stopped")
    assert wait(host) is None and host.calls == [IS_ACTIVE]


def test_a_running_firewalld_is_asked_once():
    host = Host(True, "running", "running")
    assert wait(host) is None and host.calls == [IS_ACTIVE, STATE]


def test_a_firewalld_still_building_its_rules_is_waited_for(no_sleep):
    # systemd says active (it holds its D-Bus name); firewall-cmd answers "not running" twice, then "running".
    host = Host(True, "running", "stopped", "stopped", "running")
    assert wait(host, pause=0.25) is None
    assert host.calls == [IS_ACTIVE, STATE, STATE, STATE]
    assert no_sleep == [0.25, 0.25]


def test_a_firewalld_that_never_answers_is_named_and_the_run_goes_on(monkeypatch):
    clock = iter(range(0, 1000, 30))
    monkeypatch.setattr(_firewall_boot.time, "monotonic", lambda: float(next(clock)))
    host = Host(True, "running", *["stopped"] * 10)
    assert wait(host, timeout=90) == "firewalld did not say running within 90 s: not running"
    assert host.calls.count(STATE) == 3  # the clock says 30, 60, then 90 s after each answer: the deadline
