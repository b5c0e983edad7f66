# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hosts without what the modules need (issue 17): BusyBox's ip or modprobe, no ip, no modprobe.

Each gets one message naming the package to install, from the first command that needs the tool,
before anything changes: no ``ip -batch``, no modprobe that loads, no file written. BusyBox's
answers are fixtures/tools/busybox.json (Debian 12's busybox 1.35.0, captured by tools/capture.py);
the kernel's are the lab guest's (fresh.json). A tool that is not installed is found missing by
_host.Host itself, through the module's get_bin_path: those tests run the real Host.run and
Host.which on a module whose PATH holds only the tools named, and hand every process it starts
to the replays.
"""

from __future__ import annotations

import os
import typing as t

import pytest
from ansible.module_utils import basic

from ansible_collections.linuxnet.gre.plugins.module_utils import _host, _host_facts, _systemd
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import ROUTED_READ_COMMAND, Kernel
from ansible_collections.linuxnet.gre.plugins.modules import gre_host_facts, gre_tunnel

from .conftest import BATCH, READ, Replay, Seam, load

# Host's own methods, as imported (the seam fixture replaces them for each test).
HOST_RUN = _host.Host.run
HOST_WHICH = _host.Host.which
SEED = {"name": "gre1", "local": "203.0.113.1", "remote": "198.51.100.1", "addresses": ["10.0.0.1/30"]}
ROUTED = dict(SEED, routes=[{"prefix": "198.51.100.64/27", "via": "10.0.0.2"}])
IPROUTE2 = "iproute2 (Debian, Ubuntu, Alpine; iproute on the RHEL family)"
BUSYBOX_IP = (
    "ip is BusyBox's here (BusyBox v1.35.0), which lacks the options this module uses (`{command}` failed): "
    f"install {IPROUTE2}"
)
NO_IP = f"ip is not installed (looked in PATH, /sbin, /usr/sbin): install {IPROUTE2}"
NO_MODPROBE = "the kernel module ip_gre is not loaded, and modprobe is not installed (looked in PATH, /sbin, /usr/sbin): install kmod"
BUSYBOX_MODPROBE = (
    "the kernel module ip_gre is not loaded, and modprobe is BusyBox's here (BusyBox v1.35.0), which lacks the "
    "options this module uses (`modprobe --dry-run ip_gre` failed): install kmod"
)


def busybox() -> Replay:
    return Replay.of(load("tools/busybox"))


class Bare:
    """_host.Host's own run and which, on a module whose PATH holds only ``installed``; what it starts, recorded."""

    def __init__(self, seam: Seam, monkeypatch: pytest.MonkeyPatch, installed: t.Iterable[str]) -> None:
        self.installed = set(installed)
        self.started: list[list[str]] = []
        monkeypatch.setattr(_host.Host, "run", HOST_RUN)
        monkeypatch.setattr(_host.Host, "which", HOST_WHICH)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", self.get_bin_path)
        monkeypatch.setattr(_host, "run_process", self.run_process)
        self.seam = seam

    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: t.Any = None) -> str | None:
        assert opt_dirs == ["/sbin", "/usr/sbin"] and not required
        return f"/usr/sbin/{arg}" if arg in self.installed else None

    def run_process(self, args: list[str], data: str | None = None) -> t.Any:
        argv = [os.path.basename(args[0]), *args[1:]]
        self.started.append(argv)
        return self.seam.host_for("run", argv, data).run(argv, data)


@pytest.fixture
def bare(seam: Seam, monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., Bare]:
    return lambda *installed: Bare(seam, monkeypatch, installed)


# --- BusyBox's ip: the first read fails -------------------------------------------------------------


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize(
    ("tunnel", "command"),
    [(SEED, READ), (ROUTED, list(ROUTED_READ_COMMAND))],
    ids=["tunnels", "with-routes"],
)
def test_gre_tunnel_with_busybox_ip_names_iproute2_and_changes_nothing(
    seam, tmp_path, monkeypatch, tunnel, command, check_mode
):
    monkeypatch.setattr(Kernel, "pending_file", str(tmp_path / "creating.json"))
    host = seam.use(busybox())
    result = seam.main(
        gre_tunnel.main,
        {"tunnels": [tunnel], "purge": True},
        check_mode=check_mode,
    )
    assert result["failed"] is True
    assert result["msg"] == BUSYBOX_IP.format(command=" ".join(command))
    assert host.calls == [command]  # the first command, a read; no modprobe, no ip -batch
    assert not (tmp_path / "creating.json").exists()


@pytest.mark.parametrize(
    ("versions", "command"), [([4], _host_facts.BATCH), ([6], _host_facts.ROUTES6)], ids=["ipv4", "ipv6"]
)
def test_gre_host_facts_with_busybox_ip_fails_where_it_must_read_routes(seam, versions, command):
    """The routes' own read is the check that ip is iproute2's: BusyBox's refusal of it is named, nothing else runs."""
    host = seam.use(busybox())
    result = seam.main(gre_host_facts.main, {"default_routes": versions}, check_mode=True)
    assert result["failed"] is True
    assert result["msg"] == BUSYBOX_IP.format(command=" ".join(command))
    assert host.calls == [command]


def test_gre_host_facts_with_busybox_ip_reports_it_for_the_roles_check(seam):
    """Without routes to read, the facts carry gre_tunnel's message: the role fails on it before any host changes.

    The lab guest (host/default4.json: systemd, modprobe, no GRE module loaded) with BusyBox's answer to the check.
    """
    host = Replay.of(load("host/default4"))
    host.add(next(c for c in load("tools/busybox")["calls"] if c["argv"] == _host_facts.IP_CHECK), first=True)
    seam.use(host)
    result = seam.main(gre_host_facts.main, {}, check_mode=True)
    tools = result["ansible_facts"]["linuxnet_gre"]["tools"]
    assert tools["ip"] == BUSYBOX_IP.format(command=" ".join(_host_facts.IP_CHECK))
    assert tools["modprobe"] == {"gre": None, "gretap": None, "ip6gre": None, "ip6gretap": None}
    assert host.calls == [_host_facts.IP_CHECK, _systemd.SYSTEMCTL]


def test_a_failure_that_is_not_busybox_s_is_not_called_busybox():
    assert _host.busybox_problem(_host_facts.ROUTES6, "Cannot open netlink socket: Permission denied\n") is None


# --- no ip at all -----------------------------------------------------------------------------------


@pytest.mark.parametrize("check_mode", [False, True])
def test_gre_tunnel_without_ip_names_iproute2_and_starts_nothing(seam, bare, tmp_path, monkeypatch, check_mode):
    monkeypatch.setattr(Kernel, "pending_file", str(tmp_path / "creating.json"))
    host = bare("modprobe", "systemctl")
    seam.use(Replay())
    result = seam.main(gre_tunnel.main, {"tunnels": [SEED], "purge": True}, check_mode=check_mode)
    assert result["msg"] == NO_IP
    assert result["command"] == READ
    assert host.started == []


def test_gre_host_facts_without_ip_names_iproute2_and_starts_nothing(seam, bare):
    host = bare("systemctl")
    seam.use(Replay(exists=load("host/default4")["exists"]))
    result = seam.main(gre_host_facts.main, {"default_routes": [4]}, check_mode=True)
    assert result["msg"] == NO_IP
    assert host.started == []


def test_gre_host_facts_without_ip_and_modprobe_reports_both_for_the_roles_check(seam, bare):
    """The lab guest (host/default4.json: no GRE module loaded yet) with neither ip nor modprobe in PATH."""
    host = bare("systemctl")
    seam.use(Replay.of(load("host/default4")))
    result = seam.main(gre_host_facts.main, {}, check_mode=True)
    tools = result["ansible_facts"]["linuxnet_gre"]["tools"]
    ip6_gre = NO_MODPROBE.replace("ip_gre", "ip6_gre")
    assert tools == {
        "ip": NO_IP,
        "modprobe": {"gre": NO_MODPROBE, "gretap": NO_MODPROBE, "ip6gre": ip6_gre, "ip6gretap": ip6_gre},
    }
    assert host.started == [_systemd.SYSTEMCTL]


# --- no modprobe, or BusyBox's ----------------------------------------------------------------------


@pytest.mark.parametrize("check_mode", [False, True])
def test_gre_tunnel_without_modprobe_names_kmod_before_the_batch(run, bare, check_mode):
    """The lab guest with ip_gre not loaded yet (fresh.json): the tunnel needs modprobe, which is not there."""
    kernel = run.host("fresh")
    assert kernel.present[f"{Kernel.sys_module_dir}/ip_gre"] is False
    host = bare("ip")
    result = run.fails({"tunnels": [SEED], "purge": True}, check_mode=check_mode)
    assert result["msg"] == NO_MODPROBE
    assert host.started == [READ]
    assert kernel.batch_lines is None


def test_gre_tunnel_with_busybox_modprobe_in_check_mode_names_kmod(run):
    """BusyBox's modprobe has no --dry-run, which check mode asks for (as on Alpine without kmod)."""
    kernel = run.host("fresh")
    kernel.modprobe[("modprobe", "--dry-run", "ip_gre")] = lambda: next(
        (c["rc"], c["stdout"], c["stderr"])
        for c in load("tools/busybox")["calls"]
        if c["argv"] == ["modprobe", "--dry-run", "ip_gre"]
    )
    result = run.fails({"tunnels": [SEED], "purge": True}, check_mode=True)
    assert result["msg"] == BUSYBOX_MODPROBE
    assert kernel.calls == [READ, ["modprobe", "--dry-run", "ip_gre"]]
    assert kernel.batch_lines is None


def test_a_loaded_module_needs_no_modprobe(run, bare):
    """Where ip_gre is loaded already (managed-gre1.json has gre0), a host without modprobe converges."""
    kernel = run.host("managed-gre1")
    host = bare("ip")
    result = run({"tunnels": [SEED], "purge": True})
    assert result["changed"] is False
    assert host.started == [READ]
    assert kernel.batch_lines is None
    assert BATCH not in host.started
