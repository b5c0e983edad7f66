# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_tunnel through main(): a switch away from networkd persistence, with a tunnel that stays.

networkd, told to reload once the tunnel's .network file is gone, lets go of the tunnel and (with
``networkctl reload``) deletes the address it configured there; gre_tunnel waits until networkd's
state says so, reads the kernel again and puts the address back, in the same run. The answers are
conversations captured from gre_tunnel's own logic run against a lab guest's systemd-networkd
(fixtures/networkd/: capture.py, README.md), replayed in order; the boot files are real files under a
temporary root, as the guest had them. fixtures/networkd/release-timing.txt holds the timings that
set the wait.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _systemd
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import ROUTED_READ_COMMAND, Kernel
from ansible_collections.linuxnet.gre.plugins.modules import gre_tunnel

from .conftest import BATCH, READ, Replay, Seam, answer, load

FIXTURES = ["switch-reload", "switch-restart", "switch-reload-other-network", "switch-reload-routes"]
CHECK, SWITCH, AGAIN = 1, 2, 3  # the runs of switch-reload and switch-restart (0: persisted with networkd)
NETWORK = "/etc/systemd/network/60-linuxnet-gre-gre1.network"
SYSTEMCTL_SHOW = list(_systemd.SYSTEMCTL)
VERSION = list(_systemd.VERSION)
GUEST_VERSION = next(call for call in load("host/networkd")["calls"] if call["argv"] == VERSION)


def fixture(name: str) -> dict[str, t.Any]:
    return load(f"networkd/{name}")


def state_before_the_switch(name: str) -> dict[str, t.Any]:
    """networkd's state file for gre1 once it configured it (run 0's evidence), as a read: configured, our file."""
    (evidence,) = [e for e in fixture(name)["runs"][0]["evidence"] if "/run/systemd/netif/links/" in e["sh"]]
    (path,) = [
        c["path"] for c in fixture(name)["runs"][SWITCH]["calls"] if "/run/systemd/netif/links/" in c.get("path", "")
    ]
    return {"path": path, "text": evidence["stdout"]}


class Switch:
    """gre_tunnel's main() against one fixture's conversations, with its boot files under a temporary root."""

    def __init__(self, seam: Seam, monkeypatch: pytest.MonkeyPatch, root: pathlib.Path, name: str) -> None:
        self.seam = seam
        self.root = root
        self.fixture = fixture(name)
        self.sleeps: list[float] = []
        self.ticks = 0
        monkeypatch.setattr(persist.Files, "root", str(root))
        monkeypatch.setattr(persist.Files, "sleep", lambda _files, seconds: self.sleep(seconds))
        # A clock of tenths, so that a hundred polls are ten seconds exactly.
        monkeypatch.setattr(persist.Files, "clock", lambda _files: self.ticks / 10)
        monkeypatch.setattr(Kernel, "pending_file", str(root.parent / "pending" / "creating.json"))
        monkeypatch.setattr(Kernel, "fou_file", str(root.parent / "pending" / "fou-ports.json"))
        exists = self.fixture["exists"]
        for path in ("/run/systemd/system", "/run/dbus/system_bus_socket"):
            if exists[path]:
                self.path(path).parent.mkdir(parents=True, exist_ok=True)
                self.path(path).mkdir() if path.endswith("system") else self.path(path).touch()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.ticks += round(seconds * 10)

    def path(self, path: str) -> pathlib.Path:
        return self.root / path.lstrip("/")

    def files(self) -> list[str]:
        return sorted(
            "/" + str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file() and "run" not in p.parts
        )

    def conversation(self, index: int) -> Replay:
        replay = Replay.of(self.fixture, run=index)
        # Captured before gre_tunnel read systemd's version (issue 17), which it does only where it persists with
        # networkd (run 0): the answer of a lab guest of the same image (fixtures/host/networkd.json, systemd 252).
        replay.respond(lambda argv, _stdin: argv == VERSION, lambda _argv, _stdin: answer(GUEST_VERSION))
        return replay

    def run(self, index: int, replay: Replay | None = None) -> dict[str, t.Any]:
        """Run ``runs[index]`` of the fixture (its params and mode) against ``replay`` (default: its conversation)."""
        record = self.fixture["runs"][index]
        replay = replay or self.conversation(index)
        self.seam.use(replay)
        result = self.seam.main(gre_tunnel.main, record["params"], check_mode=record["check_mode"], diff=True)
        if not result.get("failed"):
            replay.assert_done()
        if ["systemctl", "enable", "--no-reload", "linuxnet-gre.service"] in replay.calls:
            # What `systemctl enable` made on the guest (its evidence says "enabled").
            self.path(persist.WANTS_LINK).parent.mkdir(parents=True, exist_ok=True)
            self.path(persist.WANTS_LINK).symlink_to(persist.UNIT_FILE)
        # The captured results hold no invocation (the module returns its own since issue 19, test_gre_tunnel.py).
        result.pop("invocation", None)
        return without_encap(t.cast(t.Dict[str, t.Any], json.loads(json.dumps(result))))

    def up_to(self, index: int) -> None:
        """The runs before ``index``, as captured."""
        for earlier in range(index):
            assert self.run(earlier) == self.fixture["runs"][earlier]["result"]


def without_encap(result: dict[str, t.Any]) -> dict[str, t.Any]:
    """The result as the module returned it before GRE in UDP (issue 18), when these runs were captured: without the
    ``fou_ports`` and the tunnels' ``encap`` it returns since, which must say that nothing is encapsulated."""
    if "fou_ports" in result:
        assert result.pop("fou_ports") == {"added": [], "removed": []}
    for part in [*result.get("tunnels", []), *diff_tunnels(result)]:
        if "encap" in part:
            assert part.pop("encap") is None
    return result


def diff_tunnels(result: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The tunnels of the diff (the first of the list that persist makes of it)."""
    diff = result.get("diff")
    first = diff[0] if isinstance(diff, list) else diff or {}
    return [tunnel for side in ("before", "after") for tunnel in first.get(side, {}).values()]


@pytest.fixture
def switch(seam: Seam, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> t.Callable[[str], Switch]:
    return lambda name: Switch(seam, monkeypatch, tmp_path / "root", name)


def batches(replay: Replay) -> list[str | None]:
    return [call["stdin"] for call in replay.log if call.get("argv") == BATCH]


@pytest.mark.parametrize("name", FIXTURES)
def test_every_run_answers_as_it_did_on_the_guest(switch, name):
    host = switch(name)
    for index, record in enumerate(host.fixture["runs"]):
        assert host.run(index) == record["result"], record["description"]


def test_networkctl_reload_drops_the_address_and_the_run_puts_it_back(switch):
    host = switch("switch-reload")
    host.up_to(SWITCH)
    replay = host.conversation(SWITCH)
    result = host.run(SWITCH, replay)
    assert result["changed"] is True
    assert result["changes"] == [{"name": "gre1", "action": "restore", "fields": ["addresses"]}]
    assert result["commands"] == ["ip address add 10.0.0.1/30 dev gre1"]
    assert result["persisted"]["commands"] == ["systemctl enable --no-reload linuxnet-gre.service", "networkctl reload"]
    assert result["persisted"]["released"] == ["gre1"]
    assert NETWORK in result["persisted"]["removed"]
    # After the reload: networkd's state (let go at the first look), the kernel read again, one batch.
    asked = [call.get("argv", call.get("path")) for call in replay.log if "exists" not in call]
    reload = asked.index(["networkctl", "reload"])
    assert asked[reload:] == [
        ["networkctl", "reload"],
        "/sys/class/net/gre1/ifindex",
        "/run/systemd/netif/links/10",
        READ,
        BATCH,
    ]
    assert batches(replay) == ["address add 10.0.0.1/30 dev gre1\n"]
    assert host.sleeps == []
    assert host.files() == [persist.BATCH, persist.UNIT_FILE]


def test_networkctl_reload_drops_the_route_with_the_address_and_the_run_puts_both_back(switch):
    """A tunnel with a route of ours (issue 16): networkd wrote it from a [Route] section and deletes it on letting go."""
    host = switch("switch-reload-routes")
    host.up_to(1)
    replay = host.conversation(1)
    result = host.run(1, replay)
    assert result["changes"] == [{"name": "gre1", "action": "restore", "fields": ["addresses", "routes"]}]
    assert result["commands"] == [
        "ip address add 10.0.0.1/30 dev gre1",
        "ip route add 198.51.100.64/27 via 10.0.0.2 dev gre1 proto 250 metric 0",
    ]
    # Both read again with the routes in one process, and put back in one batch.
    asked = [call.get("argv", call.get("path")) for call in replay.log if "exists" not in call]
    assert asked[asked.index(["networkctl", "reload"]) :][-2:] == [list(ROUTED_READ_COMMAND), BATCH]
    assert batches(replay) == [
        "address add 10.0.0.1/30 dev gre1\nroute add 198.51.100.64/27 via 10.0.0.2 dev gre1 proto 250 metric 0\n"
    ]
    # What the unit brings back at boot holds the route too.
    assert "route add 198.51.100.64/27 via 10.0.0.2 dev gre1 proto 250 metric 0" in host.path(persist.BATCH).read_text()
    assert host.run(2)["changed"] is False


def test_a_restart_of_networkd_keeps_the_address_and_needs_no_second_batch(switch):
    """Without D-Bus gre_tunnel restarts networkd, which leaves the links as they are: the re-read finds nothing missing."""
    host = switch("switch-restart")
    host.up_to(SWITCH)
    replay = host.conversation(SWITCH)
    result = host.run(SWITCH, replay)
    assert result["persisted"]["commands"][-1] == "systemctl restart systemd-networkd.service"
    assert result["persisted"]["released"] == ["gre1"]
    assert (result["changes"], result["commands"]) == ([], [])
    assert batches(replay) == []
    assert replay.calls.count(READ) == 2


@pytest.mark.parametrize("name", ["switch-reload", "switch-restart"])
def test_check_mode_names_the_released_tunnel_and_predicts_no_restore(switch, name):
    """Check mode cannot know what networkd will drop (a reload drops the address, a restart keeps it)."""
    host = switch(name)
    host.up_to(CHECK)
    before = host.files()
    replay = host.conversation(CHECK)
    result = host.run(CHECK, replay)
    assert result["changed"] is True
    assert result["persisted"]["released"] == ["gre1"]
    assert (result["changes"], result["commands"]) == ([], [])
    assert replay.calls == [READ, SYSTEMCTL_SHOW]
    assert host.files() == before


@pytest.mark.parametrize("name", ["switch-reload", "switch-restart"])
def test_the_run_after_the_switch_changes_nothing_and_waits_for_nothing(switch, name):
    host = switch(name)
    host.up_to(AGAIN)
    replay = host.conversation(AGAIN)
    result = host.run(AGAIN, replay)
    assert result["changed"] is False
    assert result["persisted"]["released"] == []
    assert replay.calls == [READ]


def test_it_waits_while_networkd_still_holds_the_tunnel(switch):
    """The state file still names our .network file at the first look (networkd has not handled the reload yet)."""
    host = switch("switch-reload")
    host.up_to(SWITCH)
    calls = host.fixture["runs"][SWITCH]["calls"]
    at = next(i for i, call in enumerate(calls) if "/run/systemd/netif/links/" in call.get("path", ""))
    replay = Replay(
        [*calls[:at], state_before_the_switch("switch-reload"), *calls[at:]],
        ordered=True,
        exists=host.fixture["exists"],
    )
    result = host.run(SWITCH, replay)
    assert host.sleeps == [persist.RELEASE_POLL]
    assert result == host.fixture["runs"][SWITCH]["result"]


def test_it_fails_naming_the_tunnel_when_networkd_holds_it_for_ten_seconds(switch):
    """networkd may still drop the address after the run: the run must not report the tunnel as settled."""
    host = switch("switch-reload")
    host.up_to(SWITCH)
    calls = host.fixture["runs"][SWITCH]["calls"]
    at = next(i for i, call in enumerate(calls) if "/run/systemd/netif/links/" in call.get("path", ""))
    # The conversation up to networkd's state; that state then says the same whenever it is read.
    host.seam.use(Replay([state_before_the_switch("switch-reload")]), role="networkd")
    replay = Replay(calls[:at], ordered=True, exists=host.fixture["exists"])
    result = host.run(SWITCH, replay)
    assert result["failed"] is True
    assert result["msg"] == (
        "persist: systemd-networkd still holds gre1 10 s after `networkctl reload` (gre1: /run/systemd/netif/links/10 "
        "says ADMIN_STATE=configured NETWORK_FILE=/etc/systemd/network/60-linuxnet-gre-gre1.network). The tunnels and "
        "the boot files are as asked, but networkd may yet drop the addresses it configured on them; run this again "
        "once it has settled: the run puts back what is missing"
    )
    assert result["interface"] == ["gre1"]
    replay.assert_done()
    assert len(host.sleeps) == 100
    assert replay.calls.count(READ) == 1


def test_a_tunnel_that_another_network_file_configures_is_put_back_with_a_warning(switch):
    """Once our file is gone, networkd configures gre1 from a .network file of someone else's (Name=gre*)."""
    host = switch("switch-reload-other-network")
    host.up_to(1)
    replay = host.conversation(1)
    result = host.run(1, replay)
    assert result["warnings"] == [
        "gre1: systemd-networkd now configures it from /etc/systemd/network/70-lab-gre.network, which may change its "
        "addresses"
    ]
    assert result["changes"] == [{"name": "gre1", "action": "restore", "fields": ["addresses"]}]
    assert batches(replay) == ["address del 10.9.9.1/24 dev gre1\naddress add 10.0.0.1/30 dev gre1\n"]
