# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role's check before any host changes (tasks/check_hosts.yml), on what gre_host_facts reports (issue 17).

gre_host_facts runs through main() against captured hosts (tests/unit/plugins/modules/fixtures: the
lab guest's host/*.json, BusyBox's answers in tools/busybox.json, Ubuntu 22.04's systemctl --version
in tools/systemd-249.json); its facts go to ansible-playbook, which runs check_hosts.yml on localhost
with the plan giving the host tunnels. The play fails with one message naming the host, what is
missing and the fix, or passes.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _host_facts, _systemd
from ansible_collections.linuxnet.gre.plugins.modules import gre_host_facts
from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import pack
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import tunnel_lists
from ansible_collections.linuxnet.gre.tests.unit.plugins.modules.replay import Replay, Seam, load

COLLECTIONS = pathlib.Path(gre_host_facts.__file__).parents[5]
PLAY = """\
- hosts: h1
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: linuxnet.gre.gre_mesh
        tasks_from: check_hosts.yml
"""
IPROUTE2 = "iproute2 (Debian, Ubuntu, Alpine; iproute on the RHEL family)"


def call(fixture: str, argv: list[str]) -> dict[str, t.Any]:
    return next(c for c in load(fixture)["calls"] if c["argv"] == argv)


def facts(monkeypatch: pytest.MonkeyPatch, host: Replay, kernel: str = "cloud") -> dict[str, t.Any]:
    """What gre_host_facts reports of ``host`` (as the role's plan step runs it: no default route asked, the kernel's
    GRE in UDP asked; ``kernel``: fixtures/tools/kernel-config.json's uml or cloud)."""
    seam = Seam().install(monkeypatch)
    host.add(*load("tools/kernel-config")["kernels"][kernel]["calls"])
    seam.use(host)
    return t.cast(
        dict[str, t.Any],
        seam.main(gre_host_facts.main, {"encap": True}, check_mode=True)["ansible_facts"]["linuxnet_gre"],
    )


def check(
    tmp_path: pathlib.Path,
    host: dict[str, t.Any],
    persist: str,
    modes: list[str],
    encap: dict[str, t.Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """check_hosts.yml for host h1 with these facts, gre_mesh_persist, and a planned tunnel of each mode (with
    ``encap``, each in UDP, as the planner gives it)."""
    tunnels: list[dict[str, t.Any]] = [
        {"name": f"gre-{number}", "mode": mode, "remote": "198.51.100.2"} for number, mode in enumerate(modes)
    ]
    for tunnel in tunnels if encap else []:
        tunnel["encap"] = encap
    # As plan.yml has it: packed, with the lists the planner makes of the tunnels.
    host_plan = {"tunnels": tunnels, "peers": [], "forward": [], **tunnel_lists(tunnels, [])}
    variables = {
        "__gre_mesh_host": host,
        "__gre_mesh_plan": {"hosts": {"h1": pack(host_plan)}},
        "gre_mesh_persist": persist,
        "gre_mesh_firewall": False,
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "inventory.yml").write_text(
        json.dumps(
            {"all": {"hosts": {"h1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}
        )
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    env.update(ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_HOME=str(tmp_path / "home"))
    command = ["ansible-playbook", "-i", "inventory.yml", "play.yml", "-e", "@vars.json"]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


def failure(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 2, run.stdout + run.stderr
    (line,) = [line for line in run.stdout.splitlines() if line.startswith("fatal: [h1]: FAILED! => ")]
    return t.cast(str, json.loads(line.split(" => ", 1)[1])["msg"])


def guest(name: str, version: str | None = None, **which: bool) -> Replay:
    """A lab guest's capture (host/NAME.json), its systemctl --version from another fixture, tools hidden (which)."""
    fixture = load(f"host/{name}")
    host = Replay(fixture["calls"], which={**fixture["which"], **which}, exists=fixture["exists"])
    if version is not None:
        host.add(call(version, list(_systemd.VERSION)), first=True)
    return host


needs_ansible = pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="needs ansible-playbook")


@needs_ansible
def test_busybox_ip_stops_the_play_naming_iproute2(monkeypatch, tmp_path):
    host = guest("default4")
    host.add(call("tools/busybox", list(_host_facts.IP_CHECK)), first=True)
    message = failure(check(tmp_path, facts(monkeypatch, host), "auto", ["gre"]))
    assert message == (
        "h1: ip is BusyBox's here (BusyBox v1.35.0), which lacks the options this module uses "
        f"(`ip -json link show dev lo` failed): install {IPROUTE2}. Nothing was changed on any host."
    )


@needs_ansible
def test_no_modprobe_stops_the_play_only_for_the_modes_planned(monkeypatch, tmp_path):
    """The guest has loaded no GRE module: without modprobe, an ip6gre tunnel cannot be made, and the message says so."""
    host = facts(monkeypatch, guest("default4", modprobe=False))
    message = failure(check(tmp_path, host, "auto", ["ip6gre", "ip6gretap"]))
    assert message == (
        "h1: the kernel module ip6_gre is not loaded, and modprobe is not installed (looked in PATH, /sbin, /usr/sbin): "
        "install kmod. Nothing was changed on any host."
    )


@needs_ansible
def test_no_ip_and_no_modprobe_are_one_message(monkeypatch, tmp_path):
    host = facts(monkeypatch, guest("default4", ip=False, modprobe=False))
    message = failure(check(tmp_path, host, "auto", ["gre"]))
    assert message == (
        f"h1: ip is not installed (looked in PATH, /sbin, /usr/sbin): install {IPROUTE2}; the kernel module ip_gre is "
        "not loaded, and modprobe is not installed (looked in PATH, /sbin, /usr/sbin): install kmod. Nothing was changed "
        "on any host."
    )


@needs_ansible
def test_networkd_on_systemd_249_stops_the_play_naming_the_version(monkeypatch, tmp_path):
    host = facts(monkeypatch, guest("networkd", version="tools/systemd-249"))
    message = failure(check(tmp_path, host, "networkd", ["gre"]))
    assert message == (
        "h1: gre_mesh_persist is networkd, but this host runs systemd 249, and systemd-networkd creates tunnels bound "
        "to no underlay link (Independent=, in the .netdev files it would get) only from systemd 252 on: the tunnels "
        "would not come back at boot; persist them with the unit (auto takes it here). Set gre_mesh_persist to auto "
        "(or none) for this host. Nothing was changed on any host."
    )


@needs_ansible
@pytest.mark.parametrize(
    ("name", "version", "persist"),
    [("networkd", "tools/systemd-249", "auto"), ("networkd", None, "networkd"), ("default4", None, "auto")],
)
def test_a_host_with_what_it_needs_passes(monkeypatch, tmp_path, name, version, persist):
    run = check(tmp_path, facts(monkeypatch, guest(name, version=version)), persist, ["gre", "ip6gre"])
    assert run.returncode == 0, run.stdout + run.stderr


FOU = {"type": "fou", "dport": 5555, "sport": 0, "csum": False}


@needs_ansible
def test_gre_in_udp_on_a_kernel_built_without_it_stops_the_play(monkeypatch, tmp_path):
    """The lab's UML kernel: the fou module loads, and the tunnel's creation would fail with Invalid argument."""
    host = facts(monkeypatch, guest("default4"), kernel="uml")
    message = failure(check(tmp_path, host, "auto", ["gre", "gretap"], encap=FOU))
    assert message == (
        "h1: GRE in UDP (gre_mesh_encap) is planned here for gre-0, gre-1, but this kernel (6.1.176) cannot carry GRE "
        "in UDP: it was built without CONFIG_NET_FOU_IP_TUNNELS (/boot/config-6.1.176), and refuses a tunnel's encap. "
        "Run a kernel built with it (Debian's own kernels are), or carry these links in plain GRE (gre_mesh_encap: "
        "none for this host or in its gre_mesh_links entries). Nothing was changed on any host."
    )


@needs_ansible
@pytest.mark.parametrize(("kernel", "encap"), [("cloud", FOU), ("uml", None)])
def test_gre_in_udp_where_the_kernel_has_it_and_plain_gre_where_not_pass(monkeypatch, tmp_path, kernel, encap):
    run = check(tmp_path, facts(monkeypatch, guest("default4"), kernel=kernel), "auto", ["gre"], encap=encap)
    assert run.returncode == 0, run.stdout + run.stderr
