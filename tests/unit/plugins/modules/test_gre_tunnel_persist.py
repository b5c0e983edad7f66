# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_tunnel's persist option through main(): the boot files, on a directory standing for the host's /.

The kernel answers from captures (conftest.py); systemctl show from the captures of
fixtures/host/ (lab guest solo, networkd running or not), and its systemctl --version (systemd 252); the files are real files under a
temporary root. Other systemctl and networkctl calls are recorded and answer success.
"""

from __future__ import annotations

import pathlib
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _systemd
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist

from .conftest import BATCH, READ, Replay, Seam, answer, load

SYSTEMCTL_SHOW = list(_systemd.SYSTEMCTL)
VERSION = list(_systemd.VERSION)
SEED = {"name": "gre1", "local": "203.0.113.1", "remote": "198.51.100.1", "addresses": ["10.0.0.1/30"]}
SEED_LINES = [
    "link add name gre1 type gre remote 198.51.100.1 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc",
    'link set dev gre1 alias "managed-by: linuxnet.gre" up',
    "address add 10.0.0.1/30 dev gre1",
]
BATCH_FILE = "/etc/linuxnet-gre/tunnels.batch"
UNIT_FILE = "/etc/systemd/system/linuxnet-gre.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/linuxnet-gre.service"
NETDEV = "/etc/systemd/network/60-linuxnet-gre-gre1.netdev"
NETWORK = "/etc/systemd/network/60-linuxnet-gre-gre1.network"
LINK = "/etc/systemd/network/60-linuxnet-gre.link"
ENABLE = ["systemctl", "enable", "--no-reload", "linuxnet-gre.service"]
DISABLE = ["systemctl", "disable", "--no-reload", "linuxnet-gre.service"]
RESTART_NETWORKD = ["systemctl", "restart", "systemd-networkd.service"]
NOT_PERSISTED = (
    "persist=auto: this host does not run systemd, so its GRE tunnels are not persisted and will be gone after a "
    "reboot. Run this again after each boot, or set persist to none for this host (gre_mesh_persist: none with "
    "the role linuxnet.gre.gre_mesh) to silence this warning."
)


class Host(Replay):
    """The host's files under a temporary root; its systemctl show as captured on the lab guest (a replay)."""

    def __init__(self, root: pathlib.Path, capture: str, systemd: bool = True, dbus: bool = False) -> None:
        super().__init__([c for c in load(f"host/{capture}")["calls"] if c["argv"] in (SYSTEMCTL_SHOW, VERSION)])
        self.respond(self.manages, self.systemctl)
        self.root = root
        if systemd:
            (root / "run/systemd/system").mkdir(parents=True)
        if dbus:
            (root / "run/dbus").mkdir(parents=True)
            (root / "run/dbus/system_bus_socket").touch()

    @staticmethod
    def manages(argv: list[str], stdin: str | None) -> bool:
        return argv[0] in ("systemctl", "networkctl") and argv not in (SYSTEMCTL_SHOW, VERSION) and stdin is None

    def systemctl(self, argv: list[str], _stdin: str | None) -> tuple[int, str, str]:
        if argv[:2] == ["systemctl", "enable"]:
            (self.root / WANTS.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (self.root / WANTS.lstrip("/")).symlink_to(UNIT_FILE)
        if argv[:2] == ["systemctl", "disable"]:
            assert self.has(UNIT_FILE), "disabled after its file went"
            (self.root / WANTS.lstrip("/")).unlink()
        return 0, "", ""

    def path(self, path: str) -> pathlib.Path:
        return self.root / path.lstrip("/")

    def has(self, path: str) -> bool:
        return self.path(path).exists() or self.path(path).is_symlink()

    def text(self, path: str) -> str:
        return self.path(path).read_text()

    def put(self, path: str, content: str) -> None:
        self.path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path(path).write_text(content)

    def files(self) -> list[str]:
        return sorted(
            "/" + str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file() or p.is_symlink()
        )


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, seam: Seam) -> t.Callable[..., Host]:
    def make(capture: str = "default4", **options: bool) -> Host:
        fake = Host(tmp_path / "root", capture, **options)
        monkeypatch.setattr(persist.Files, "root", str(fake.root))
        seam.use(fake, role="files")
        return fake

    return make


def persisted(tunnels: list[dict[str, t.Any]], mechanism: str, purge: bool = True) -> dict[str, t.Any]:
    return {"tunnels": tunnels, "purge": purge, "persist": mechanism}


def test_unit_writes_the_module_s_own_lines_and_enables_without_a_reload(run, host):
    kernel = run.host("fresh")
    fake = host()
    result = run(persisted([SEED], "unit"))
    assert kernel.batch_lines == SEED_LINES
    batch = fake.text(BATCH_FILE).splitlines()
    assert batch[0].startswith("# Written by linuxnet.gre.gre_tunnel (persist: unit)")
    assert [line for line in batch if not line.startswith("#")] == SEED_LINES
    unit = fake.text(UNIT_FILE)
    assert "ExecStart=ip -force -batch /etc/linuxnet-gre/tunnels.batch\n" in unit
    assert "WantedBy=multi-user.target\n" in unit
    assert oct(fake.path(BATCH_FILE).stat().st_mode & 0o777) == "0o644"
    assert fake.calls == [ENABLE]
    assert result["changed"] is True
    assert result["persisted"] == {
        "mechanism": "unit",
        "written": [BATCH_FILE, UNIT_FILE],
        "removed": [],
        "commands": ["systemctl enable --no-reload linuxnet-gre.service"],
        "released": [],
    }


def test_a_second_run_reads_the_files_and_runs_nothing(run, host):
    run.host("fresh")
    fake = host()
    run(persisted([SEED], "unit"))
    kernel = run.host("managed-gre1")
    fake.calls.clear()
    result = run(persisted([SEED], "unit"))
    assert kernel.calls == [READ]
    assert fake.calls == []
    assert result["changed"] is False
    assert result["persisted"]["written"] == result["persisted"]["commands"] == []


def test_check_mode_predicts_the_files_and_writes_nothing(run, host):
    kernel = run.host("managed-gre1")
    fake = host()
    result = run(persisted([SEED], "unit"), check_mode=True, diff=True)
    assert kernel.calls == [READ]
    assert fake.calls == []
    assert fake.files() == []
    assert result["changed"] is True
    assert result["persisted"]["written"] == [BATCH_FILE, UNIT_FILE]
    tunnels, *files = result["diff"]
    assert tunnels["before"] == tunnels["after"]
    assert [(d["before_header"], d["before"]) for d in files] == [(BATCH_FILE, ""), (UNIT_FILE, "")]
    # gre1 exists: without an mtu given, it keeps its MTU at boot too.
    assert SEED_LINES[0].replace(" type ", " mtu 1476 type ", 1) in files[0]["after"]


def test_only_a_changed_batch_is_rewritten_and_the_unit_needs_no_reload(run, host):
    run.host("managed-gre1")
    fake = host()
    run(persisted([SEED], "unit"))
    fake.calls.clear()
    moved = dict(SEED, remote="198.51.100.2")
    result = run(persisted([moved], "unit"))
    assert "remote 198.51.100.2" in fake.text(BATCH_FILE)
    assert result["persisted"]["written"] == [BATCH_FILE]
    assert fake.calls == []


def test_an_edited_unit_is_put_back_and_systemd_reloaded(run, host):
    run.host("managed-gre1")
    fake = host()
    run(persisted([SEED], "unit"))
    fake.put(UNIT_FILE, "[Service]\nExecStart=/bin/false\n")
    fake.calls.clear()
    result = run(persisted([SEED], "unit"))
    assert result["persisted"]["written"] == [UNIT_FILE]
    assert fake.calls == [["systemctl", "daemon-reload"]]
    assert "ExecStart=ip -force -batch" in fake.text(UNIT_FILE)


def test_networkd_files_and_a_restart_without_dbus(run, host):
    run.host("managed-gre1")
    fake = host("networkd")
    result = run(persisted([dict(SEED, mtu=1400)], "networkd"))
    assert fake.text(NETDEV).split("\n[NetDev]\n")[1] == (
        "Name=gre1\nKind=gre\nMTUBytes=1400\n\n[Tunnel]\nLocal=203.0.113.1\nRemote=198.51.100.1\nTTL=255\n"
        "DiscoverPathMTU=yes\nIndependent=yes\n"
    )
    assert fake.text(NETWORK).endswith(
        "[Network]\n# Router advertisements from the peer configure nothing here.\n"
        "IPv6AcceptRA=no\nAddress=10.0.0.1/30\n"
    )
    assert "[Match]\nOriginalName=gre1\n\n[Link]\nAlias=managed-by: linuxnet.gre\n" in fake.text(LINK)
    assert fake.calls == [SYSTEMCTL_SHOW, VERSION, ["systemctl", "restart", "systemd-networkd.service"]]
    assert result["persisted"]["written"] == [NETDEV, NETWORK, LINK]


def test_networkd_reloads_through_networkctl_with_dbus(run, host):
    run.host("managed-gre1")
    fake = host("networkd", dbus=True)
    run(persisted([SEED], "networkd"))
    assert fake.calls == [SYSTEMCTL_SHOW, VERSION, ["networkctl", "reload"]]


def test_a_switch_from_unit_to_networkd_leaves_nothing_of_the_unit(run, host):
    run.host("managed-gre1")
    fake = host("networkd")
    run(persisted([SEED], "unit"))
    fake.put("/etc/systemd/network/60-linuxnet-gre-gre-old.netdev", "[NetDev]\nName=gre-old\n")
    fake.calls.clear()
    result = run(persisted([SEED], "networkd"))
    assert fake.files() == [NETDEV, NETWORK, LINK]
    assert not fake.has("/etc/linuxnet-gre")
    assert fake.calls == [
        SYSTEMCTL_SHOW,
        VERSION,
        DISABLE,
        ["systemctl", "daemon-reload"],
        ["systemctl", "restart", "systemd-networkd.service"],
    ]
    assert result["persisted"]["removed"] == [
        UNIT_FILE,
        "/etc/systemd/network/60-linuxnet-gre-gre-old.netdev",
        BATCH_FILE,
        "/etc/linuxnet-gre",
    ]


def test_none_removes_everything_but_a_file_of_someone_else(run, host):
    kernel = run.host("managed-gre1")
    fake = host("networkd")
    run(persisted([SEED], "networkd"))
    fake.put("/etc/linuxnet-gre/.notes", "mine\n")
    fake.put("/etc/systemd/network/60-linuxnet-gre-notes.txt", "mine too\n")
    fake.calls.clear()
    kernel.calls.clear()
    # gre1 stays while its .network file goes: gre_tunnel waits for the restarted networkd to let go of it
    # (networkd's answers after such a restart: fixtures/networkd/switch-restart.json), then reads the kernel again.
    fake.add(*networkd_let_go_of_gre1())
    result = run(persisted([SEED], "none"))
    assert fake.files() == ["/etc/linuxnet-gre/.notes", "/etc/systemd/network/60-linuxnet-gre-notes.txt"]
    assert result["persisted"]["removed"] == [LINK, NETWORK, NETDEV]
    assert result["persisted"]["released"] == ["gre1"]
    assert fake.calls == [SYSTEMCTL_SHOW, ["systemctl", "restart", "systemd-networkd.service"]]
    assert kernel.calls == [READ, READ]
    assert result["changes"] == result["commands"] == []


def networkd_let_go_of_gre1() -> list[dict[str, t.Any]]:
    """What gre_tunnel read of networkd's state for gre1 after restarting it, once gre1's .network file was gone."""
    switch = load("networkd/switch-restart")["runs"][2]
    return [call for call in switch["calls"] if "path" in call]


def test_no_tunnels_listed_with_unit_removes_the_unit(run, host):
    run.host("managed-gre1")
    fake = host()
    run(persisted([SEED], "unit"))
    fake.calls.clear()
    result = run(persisted([], "unit"))
    assert fake.files() == []
    assert fake.calls == [DISABLE, ["systemctl", "daemon-reload"]]
    assert result["changed"] is True


@pytest.mark.parametrize(
    ("capture", "options", "mechanism", "message"),
    [
        ("default4", {}, "networkd", "persist: networkd: systemd-networkd is not active and enabled here"),
        ("default4", {"systemd": False}, "unit", "persist: unit: this host does not run systemd"),
    ],
)
def test_a_mechanism_the_host_cannot_run_fails_before_the_kernel_changes(
    run, host, capture, options, mechanism, message
):
    kernel = run.host("fresh")
    fake = host(capture, **options)
    result = run.fails(persisted([SEED], mechanism))
    assert result["msg"].startswith(message)
    assert kernel.calls == [READ]
    assert fake.files() == []


def test_what_networkd_cannot_express_fails_naming_the_tunnel_before_any_change(run, host):
    kernel = run.host("fresh")
    host("networkd")
    result = run.fails(persisted([dict(SEED, dev="eth1")], "networkd"))
    assert result["msg"].startswith("tunnel gre1: dev: a tunnel bound to an underlay device")
    assert kernel.calls == [READ]


def test_auto_takes_the_unit_where_networkd_runs_but_cannot_express_a_tunnel(run, host):
    """persist=auto on a host where networkd would be chosen, with a tunnel bound to a device (as one with encap, GRE
    in UDP): the unit, which expresses it, not a failure."""
    kernel = run.host("fresh")
    fake = host("networkd")
    result = run(persisted([dict(SEED, dev="eth1")], "auto"))
    assert kernel.batch_lines[0].startswith("link add name gre1 type gre ")
    assert result["persisted"]["mechanism"] == "unit"
    assert fake.files() == sorted([BATCH_FILE, UNIT_FILE, WANTS])
    assert "warnings" not in result


def test_persist_needs_the_set_form(run, host):
    run.host("fresh")
    host()
    result = run.fails(dict(SEED, persist="unit"))
    assert result["msg"] == "missing parameter(s) required by 'persist': tunnels"


def test_a_failed_batch_writes_no_file(run, host):
    kernel = run.host("fresh")
    fake = host()
    kernel.batch_answer = answer(
        [step for step in load("batch-ipv6-refused")["setup"] if step.get("argv") == BATCH][-1]
    )
    run.fails(persisted([SEED], "unit"))
    assert kernel.calls[-1] == BATCH
    assert fake.files() == []
    assert fake.calls == []


def test_a_file_that_cannot_be_written_is_named_before_the_kernel_changes(run, host):
    kernel = run.host("fresh")
    fake = host()
    fake.put("/etc/linuxnet-gre", "a file where the directory goes\n")
    result = run.fails(persisted([SEED], "unit"))
    assert result["msg"] == (
        "persist: cannot write /etc/linuxnet-gre/tunnels.batch: /etc/linuxnet-gre is not a directory"
    )
    assert result["path"] == BATCH_FILE
    assert kernel.calls == [READ]


# --- an omitted mtu (issue 13) ----------------------------------------------------------------------
# The role leaves mtu out when a peer's underlay MTU is unknown (--limit, a failed peer). The kernel
# then keeps the tunnel's MTU, and so must the boot files: rewritten without it, the tunnel came back
# at the kernel's 1476 after a reboot instead of the planned MTU (a black hole), and a host with
# nothing to change reported changed. drift-mtu.json: managed gre1 of SEED, at MTU 1400.

PERSISTED_MTU = {"unit": "link add name gre1 mtu 1400 type gre ", "networkd": "MTUBytes=1400\n"}


def stamps(fake: Host) -> dict[str, tuple[int, int, str]]:
    """Each file's inode, modification time and text: a rewrite (a new file put in place) changes them."""
    return {
        path: (fake.path(path).lstat().st_ino, fake.path(path).lstat().st_mtime_ns, fake.text(path))
        for path in fake.files()
        if not fake.path(path).is_symlink()
    }


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("mechanism", ["unit", "networkd"])
def test_a_run_without_mtu_keeps_the_persisted_mtu_and_changes_nothing(run, host, mechanism, check_mode):
    run.host("drift-mtu")
    fake = host("networkd")
    run(persisted([dict(SEED, mtu=1400)], mechanism))
    before = stamps(fake)
    assert PERSISTED_MTU[mechanism] in fake.text(BATCH_FILE if mechanism == "unit" else NETDEV)
    fake.calls.clear()
    kernel = run.host("drift-mtu")
    result = run(persisted([SEED], mechanism), check_mode=check_mode, diff=True)
    assert result["changed"] is False
    assert kernel.calls == [READ]
    assert fake.calls == ([SYSTEMCTL_SHOW, VERSION] if mechanism == "networkd" else [])
    assert stamps(fake) == before
    assert result["persisted"]["written"] == result["persisted"]["removed"] == result["persisted"]["commands"] == []
    assert result["tunnels"][0]["mtu"] == 1400
    assert result["diff"]["before"] == result["diff"]["after"]


@pytest.mark.parametrize("mechanism", ["unit", "networkd"])
def test_a_run_without_mtu_persists_the_mtu_the_tunnel_has(run, host, mechanism):
    """Persisting for the first time (or switching mechanisms) without mtu: the boot files get the kernel's."""
    kernel = run.host("drift-mtu")
    fake = host("networkd")
    result = run(persisted([SEED], mechanism))
    assert kernel.calls == [READ]
    assert PERSISTED_MTU[mechanism] in fake.text(BATCH_FILE if mechanism == "unit" else NETDEV)
    assert result["changed"] is True


@pytest.mark.parametrize(
    ("state", "change"),
    [
        ("fresh", {"name": "gre1", "action": "create", "fields": []}),
        ("drift-key", {"name": "gre1", "action": "recreate", "fields": ["ikey", "okey"]}),
    ],
)
def test_a_tunnel_created_without_mtu_is_persisted_as_wanted(run, host, state, change):
    """The kernel picks its MTU when it creates the tunnel; at boot it picks again."""
    kernel = run.host(state)
    fake = host()
    result = run(persisted([SEED], "unit"))
    assert result["changes"] == [change]
    assert kernel.batch_lines is not None and kernel.batch_lines[-3:] == SEED_LINES
    assert [line for line in fake.text(BATCH_FILE).splitlines() if not line.startswith("#")] == SEED_LINES


def test_the_run_after_a_creation_without_mtu_changes_nothing(run, host):
    """The boot files hold the tunnel without an MTU: left to the kernel at boot, as at its creation."""
    run.host("fresh")
    fake = host()
    run(persisted([SEED], "unit"))
    written = fake.text(BATCH_FILE)
    run.host("managed-gre1")
    result = run(persisted([SEED], "unit"))
    assert result["changed"] is False
    assert fake.text(BATCH_FILE) == written
    assert SEED_LINES[0] in written


def test_an_adopted_tunnel_is_persisted_as_created(run, host):
    kernel = run.host("seed-by-hand")
    fake = host()
    result = run(dict(persisted([SEED], "unit"), adopt=True))
    assert kernel.batch_lines == ["link del dev gre1", *SEED_LINES]
    assert [line for line in fake.text(BATCH_FILE).splitlines() if not line.startswith("#")] == SEED_LINES
    assert result["changes"] == [{"name": "gre1", "action": "adopt", "fields": [], "adopted": ["gre1"]}]


# --- persist=auto (issue 14) ------------------------------------------------------------------------
# What the role decided itself before: networkd where systemd-networkd is active and enabled and
# systemd-udevd runs (fixtures/host/networkd.json), else the unit where systemd runs (default4.json:
# networkd inactive), else none with a warning (no /run/systemd/system).

AUTO_CASES = [
    pytest.param(
        "networkd", {}, "networkd", [NETDEV, NETWORK, LINK], [SYSTEMCTL_SHOW, VERSION, RESTART_NETWORKD], id="networkd"
    ),
    pytest.param("default4", {}, "unit", [BATCH_FILE, UNIT_FILE], [SYSTEMCTL_SHOW, ENABLE], id="unit"),
    pytest.param("default4", {"systemd": False}, "none", [], [], id="none"),
]


@pytest.mark.parametrize(("capture", "options", "mechanism", "written", "calls"), AUTO_CASES)
def test_auto_persists_with_what_the_host_runs_and_warns_where_nothing_can(
    run, host, capture, options, mechanism, written, calls
):
    kernel = run.host("fresh")
    fake = host(capture, **options)
    result = run(persisted([SEED], "auto"))
    assert kernel.batch_lines == SEED_LINES
    assert result["changed"] is True
    assert result["persisted"] == {
        "mechanism": mechanism,
        "written": sorted(written),
        "removed": [],
        "commands": [" ".join(argv) for argv in calls if argv not in (SYSTEMCTL_SHOW, VERSION)],
        "released": [],
    }
    assert fake.files() == sorted(written + ([WANTS] if mechanism == "unit" else []))
    assert fake.calls == calls
    if mechanism == "none":
        assert result["warnings"] == [NOT_PERSISTED]
    else:
        assert "warnings" not in result


@pytest.mark.parametrize(("capture", "options", "mechanism", "written", "calls"), AUTO_CASES)
def test_auto_decides_the_same_in_check_mode_and_the_next_run_changes_nothing(
    run, host, capture, options, mechanism, written, calls
):
    run.host("managed-gre1")
    fake = host(capture, **options)
    checked = run(persisted([SEED], "auto"), check_mode=True)
    assert fake.files() == []
    assert (checked["persisted"]["mechanism"], checked["persisted"]["written"]) == (mechanism, sorted(written))
    assert checked.get("warnings") == ([NOT_PERSISTED] if mechanism == "none" else None)
    run(persisted([SEED], "auto"))
    fake.calls.clear()
    again = run(persisted([SEED], "auto"))
    assert again["changed"] is False
    assert again["persisted"]["mechanism"] == mechanism
    # Where systemd runs, auto reads the services again (one systemctl show, and systemctl --version where networkd
    # runs) and runs nothing else.
    assert fake.calls == [argv for argv in calls if argv in (SYSTEMCTL_SHOW, VERSION)]


def test_auto_without_tunnels_removes_what_was_persisted_reads_no_service_and_does_not_warn(run, host):
    run.host("managed-gre1")
    fake = host()
    run(persisted([SEED], "unit"))
    fake.calls.clear()
    result = run(persisted([], "auto"))
    assert result["persisted"]["mechanism"] == "none"
    assert fake.files() == []
    assert fake.calls == [DISABLE, ["systemctl", "daemon-reload"]]
    assert "warnings" not in result


def test_auto_without_systemd_warns_only_when_a_tunnel_is_kept(run, host):
    """Deleting the last tunnel leaves nothing to lose at boot; keeping one warns once, whatever else changes."""
    run.host("managed-gre1")
    host(systemd=False)
    assert "warnings" not in run(persisted([dict(SEED, state="absent")], "auto"))
    run.host("managed-gre1")
    result = run(persisted([dict(SEED, mtu=1400)], "auto"))
    assert result["changes"] == [{"name": "gre1", "action": "update", "fields": ["mtu"]}]
    assert result["warnings"] == [NOT_PERSISTED]


# --- routes (issue 16) ----------------------------------------------------------------------------

ROUTED = dict(
    SEED,
    addresses=["10.0.0.1/30", "2001:db8:ffff::1/64"],
    routes=[{"prefix": "192.168.20.0/24", "via": "10.0.0.2"}, {"prefix": "2001:db8:20::/48"}],
)
ROUTE_LINES = [
    "route add 192.168.20.0/24 via 10.0.0.2 dev gre1 proto 250 metric 0",
    "route add 2001:db8:20::/48 dev gre1 proto 250 metric 1024",
]


def test_unit_persists_the_routes_as_the_batch_adds_them(run, host):
    kernel = run.host("routes-fresh")
    fake = host()
    run(persisted([ROUTED], "unit"))
    assert kernel.batch_lines is not None and kernel.batch_lines[-2:] == ROUTE_LINES
    assert [line for line in fake.text(BATCH_FILE).splitlines() if not line.startswith("#")] == kernel.batch_lines


def test_networkd_persists_the_routes_as_route_sections_with_the_protocol(run, host):
    run.host("routes-managed")
    fake = host("networkd")
    result = run(persisted([ROUTED], "networkd"))
    assert result["changes"] == []
    assert fake.text(NETWORK).endswith(
        "Address=10.0.0.1/30\nAddress=2001:db8:ffff::1/64\n"
        "\n[Route]\nDestination=192.168.20.0/24\nGateway=10.0.0.2\nMetric=0\nProtocol=250\n"
        "\n[Route]\nDestination=2001:db8:20::/48\nMetric=1024\nProtocol=250\n"
    )


def test_a_tunnel_without_the_routes_option_is_persisted_without_routes(run, host):
    run.host("routes-managed")
    fake = host()
    run(persisted([{k: v for k, v in ROUTED.items() if k != "routes"}], "unit"))
    assert " proto 250 " not in fake.text(BATCH_FILE)
