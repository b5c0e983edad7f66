# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_tunnel's encap (GRE in UDP, issue 18) through main(), on host states captured from Debian 12's cloud kernel.

fixtures/fou-*.json (fixtures/capture_fou.py): the lab's UML kernel has no FOU tunnels, the image's own kernel
under QEMU has. Their read is `ip -details -json -batch -` with `address show` and `fou show` where fou is loaded.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import Encap, FouPort, Tunnel

from .conftest import BATCH, READ, load

FOU_READ = ["ip", "-details", "-json", "-batch", "-"]
FOU = {"type": "fou", "dport": 5555}
GRE1 = {"name": "gre1", "local": "203.0.113.1", "remote": "198.51.100.1", "mtu": 1468, "addresses": ["10.0.0.1/30"]}
ENCAPSULATED = dict(GRE1, encap=FOU)
PLAIN = dict(GRE1, mtu=1476)
ENCAP_WORDS = "encap fou encap-sport auto encap-dport 5555 noencap-csum noencap-remcsum"
FOU_LINES = [
    "fou add port 5555 ipproto 47",
    "link add name gre1 mtu 1468 type gre remote 198.51.100.1 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc "
    + ENCAP_WORDS,
    'link set dev gre1 alias "managed-by: linuxnet.gre" up',
    "address add 10.0.0.1/30 dev gre1",
]
PORT = {"port": 5555, "type": "fou"}


def captured_batch(fixture: str) -> list[str]:
    return [s for s in load(fixture)["setup"] if s.get("argv") == BATCH][-1]["stdin"].splitlines()


def note(run, *ports):
    run.fou_file.parent.mkdir(parents=True, exist_ok=True)
    run.fou_file.write_text(json.dumps(list(ports)))


def noted(run):
    return json.loads(run.fou_file.read_text()) if run.fou_file.exists() else None


# --- creating ---------------------------------------------------------------------------------------


def test_creates_the_port_before_the_tunnel_loading_fou_first(run):
    kernel = run.host("fou-fresh")
    result = run({"tunnels": [ENCAPSULATED]})
    assert kernel.calls == [READ, ["modprobe", "fou"], BATCH]
    assert kernel.batch_lines == FOU_LINES == captured_batch("fou-managed")
    assert result["changed"] is True
    assert result["fou_ports"] == {"added": [PORT], "removed": []}
    assert result["tunnels"][0]["encap"] == {"type": "fou", "dport": 5555, "sport": 0, "csum": False, "remcsum": False}
    assert noted(run) == [PORT]


def test_check_mode_predicts_modprobe_and_the_port_and_writes_no_note(run):
    kernel = run.host("fou-fresh")
    result = run({"tunnels": [ENCAPSULATED]}, check_mode=True)
    assert kernel.calls == [READ, ["modprobe", "--dry-run", "fou"]]
    assert result["commands"] == ["modprobe fou"] + [f"ip {line}" for line in FOU_LINES]
    assert result["fou_ports"]["added"] == [PORT]
    assert noted(run) is None


def test_every_option_goes_to_the_kernel_as_captured(run):
    run.host("fou-fresh")
    tap = {
        "name": "tap1",
        "mode": "gretap",
        "local": "203.0.113.1",
        "remote": "198.51.100.1",
        "encap": {"type": "gue", "dport": 5556, "sport": 4000, "csum": True, "remcsum": True},
    }
    plain = {"name": "gre-b", "local": "203.0.113.1", "remote": "198.51.100.2"}
    run({"tunnels": [plain, tap]})
    lines = run.kernel.batch_lines
    assert lines == captured_batch("fou-gretap-gue")


# --- idempotence and drift --------------------------------------------------------------------------


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("noted_before", [True, False])
def test_second_run_only_reads_once(run, check_mode, noted_before):
    if noted_before:
        note(run, PORT)
    kernel = run.host("fou-managed")
    result = run({"tunnels": [ENCAPSULATED]}, check_mode=check_mode)
    assert kernel.calls == [FOU_READ]
    assert kernel.log[-1]["stdin"] == "address show\nfou show\n"
    assert (result["changed"], result["commands"], result["fou_ports"]) == (False, [], {"added": [], "removed": []})


def test_a_gretap_over_gue_with_every_option_is_stable(run):
    kernel = run.host("fou-gretap-gue")
    encap = {"type": "gue", "dport": 5556, "sport": 4000, "csum": True, "remcsum": True}
    tap = {"name": "tap1", "mode": "gretap", "local": "203.0.113.1", "remote": "198.51.100.1", "encap": encap}
    result = run({"tunnels": [tap], "purge": False})
    assert (result["changed"], kernel.calls) == (False, [FOU_READ])


@pytest.mark.parametrize("state", ["fou-drift-dport", "fou-drift-none"])
def test_drift_of_the_encap_is_repaired_in_place_with_every_encap_word(run, state):
    note(run, PORT)
    kernel = run.host(state)
    result = run({"tunnels": [ENCAPSULATED]}, diff=True)
    assert kernel.batch_lines == [f"link set dev gre1 mtu 1468 type gre {ENCAP_WORDS}"]
    assert result["changes"] == [{"name": "gre1", "action": "update", "fields": ["encap"]}]
    assert result["diff"]["after"]["gre1"]["encap"]["dport"] == 5555
    assert result["fou_ports"] == {"added": [], "removed": []}


def test_another_type_change_carries_the_encap_words_too(run):
    """iproute2 6.1 swaps the bytes of the ports it is not given (fixtures/fou-inplace.txt)."""
    kernel = run.host("fou-managed")
    run({"tunnels": [dict(ENCAPSULATED, ttl=64)]})
    assert kernel.batch_lines == [f"link set dev gre1 mtu 1468 type gre ttl 64 {ENCAP_WORDS}"]


def test_a_new_dport_moves_the_port_of_this_module(run):
    note(run, PORT)
    kernel = run.host("fou-managed")
    result = run({"tunnels": [dict(ENCAPSULATED, encap={"type": "fou", "dport": 5556})]}, diff=True)
    assert kernel.batch_lines == [
        "fou del port 5555",
        "fou add port 5556 ipproto 47",
        "link set dev gre1 mtu 1468 type gre encap fou encap-sport auto encap-dport 5556 noencap-csum noencap-remcsum",
    ]
    assert result["fou_ports"] == {"added": [{"port": 5556, "type": "fou"}], "removed": [PORT]}
    assert result["diff"]["before"]["fou:5555"] == dict(PORT, state="present")
    assert result["diff"]["after"]["fou:5555"] == dict(PORT, state="absent")
    assert noted(run) == [{"port": 5556, "type": "fou"}]


# --- removing ---------------------------------------------------------------------------------------


def test_dropping_the_encap_removes_it_in_place_and_the_port_of_this_module(run):
    note(run, PORT)
    kernel = run.host("fou-managed")
    result = run({"tunnels": [PLAIN]})
    assert kernel.batch_lines == ["fou del port 5555", "link set dev gre1 mtu 1476 type gre encap none"]
    assert result["changes"] == [{"name": "gre1", "action": "update", "fields": ["encap", "mtu"]}]
    assert result["fou_ports"]["removed"] == [PORT]
    assert noted(run) is None


def test_a_port_the_module_did_not_note_is_never_deleted(run):
    kernel = run.host("fou-managed")
    result = run({"tunnels": [PLAIN]})
    assert kernel.batch_lines == ["link set dev gre1 mtu 1476 type gre encap none"]
    assert result["fou_ports"]["removed"] == []


def test_the_port_the_unit_s_batch_file_adds_at_boot_is_the_module_s(run):
    """After a reboot the note (on tmpfs) is gone; the unit's batch file added the port."""
    batch = run.root / persist.BATCH.lstrip("/")
    batch.parent.mkdir(parents=True)
    batch.write_text("\n".join(FOU_LINES) + "\n")
    kernel = run.host("fou-managed")
    result = run({"tunnels": [], "purge": True})
    assert kernel.batch_lines == ["link del dev gre1", "fou del port 5555"]
    assert result["fou_ports"]["removed"] == [PORT]


def test_a_tunnel_in_udp_this_run_leaves_alone_gets_no_port_added(run):
    """A tunnel in UDP the run does not list (here gre1 without purge; the same for one made by hand) keeps its
    port, which the module neither reads nor adds: adding it failed the batch ("Address already in use")."""
    kernel = run.host("fou-managed")
    result = run({"tunnels": []})
    assert kernel.calls == [READ]
    assert result["changed"] is False
    assert result["fou_ports"] == {"added": [], "removed": []}


def test_a_port_of_this_module_that_a_tunnel_left_alone_uses_is_kept(run):
    note(run, PORT)
    kernel = run.host("fou-managed")
    result = run({"tunnels": []})
    assert kernel.calls == [FOU_READ]
    assert result["changed"] is False
    assert result["fou_ports"] == {"added": [], "removed": []}


def test_a_port_made_by_hand_is_used_and_kept(run):
    kernel = run.host("fou-port-by-hand")
    result = run({"tunnels": [ENCAPSULATED]})
    assert kernel.batch_lines == FOU_LINES[1:]
    assert result["fou_ports"] == {"added": [], "removed": []}
    assert noted(run) is None
    kernel = run.host("fou-port-by-hand")
    assert run({"tunnels": []})["changed"] is False


def test_a_port_of_another_kind_made_by_hand_fails_before_any_change(run):
    kernel = run.host("fou-gue-port-by-hand")
    result = run.fails({"tunnels": [ENCAPSULATED]})
    assert result["msg"] == (
        "tunnel 'gre1': encap: the host has a FOU receive port 5555 of another kind (gue) that linuxnet.gre did not "
        "create; it is never changed or deleted: delete it ('ip fou del port 5555') or choose another dport"
    )
    assert kernel.calls == [FOU_READ]


def test_a_port_of_this_module_of_another_kind_is_replaced(run):
    note(run, {"port": 5555, "type": "gue"})
    kernel = run.host("fou-gue-port-by-hand")
    run({"tunnels": [ENCAPSULATED]})
    assert kernel.batch_lines == ["fou del port 5555", *FOU_LINES]


# --- input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tunnels, msg",
    [
        (
            [dict(GRE1, mode="ip6gre", local="2001:db8:1::1", remote="2001:db8:2::1", encap=FOU)],
            "tunnel 'gre1': encap: applies to modes gre and gretap only, not ip6gre: over IPv6 the kernel needs IPv6 "
            "FOU receive ports (fou6), which this module does not manage",
        ),
        (
            [dict(GRE1, encap=dict(FOU, remcsum=True))],
            "tunnel 'gre1': encap: remcsum (remote checksum offload) is an option of GUE's header: it needs type gue",
        ),
        ([dict(GRE1, encap=dict(FOU, dport=0))], "tunnel 'gre1': encap: dport 0 is outside 1..65535"),
        (
            [dict(GRE1, encap=dict(FOU, sport=65536))],
            "tunnel 'gre1': encap: sport 65536 is outside 0..65535 (0: the kernel picks one per flow)",
        ),
        (
            [
                dict(GRE1, encap=FOU),
                dict(GRE1, name="gre2", remote="198.51.100.2", encap={"type": "gue", "dport": 5555}),
            ],
            "tunnel 'gre2': encap: dport 5555 is gue here but fou for tunnel 'gre1'; the host receives on one FOU port "
            "of that number, of one type",
        ),
    ],
)
def test_bad_encap_is_refused_before_any_command(run, tunnels, msg):
    kernel = run.host("fou-managed")
    assert run.fails({"tunnels": tunnels})["msg"] == msg
    assert kernel.calls == []


# --- persistence ------------------------------------------------------------------------------------


def test_the_unit_s_batch_adds_the_ports_first_and_fou_is_loaded_at_boot():
    tunnel = Tunnel(
        name="gre1",
        mode="gre",
        remote="198.51.100.1",
        local="203.0.113.1",
        mtu=1468,
        addresses=("10.0.0.1/30",),
        encap=Encap("fou", 5555),
    )
    files = persist.unit_files([tunnel])
    assert persist.batch_lines([tunnel]) == FOU_LINES
    assert files[persist.MODULES_FILE].splitlines()[-1] == "fou"
    plain = persist.unit_files([Tunnel(name="gre1", mode="gre", remote="198.51.100.1")])
    assert persist.MODULES_FILE not in plain


def test_networkd_refuses_a_tunnel_with_encap():
    with pytest.raises(
        GreError, match="^tunnel gre1: encap: this module does not persist GRE in UDP with systemd-netw"
    ):
        persist.networkd_files([Tunnel(name="gre1", mode="gre", remote="198.51.100.1", encap=Encap("gue", 5555))])


def test_networkd_s_gap_is_the_encap_so_auto_takes_the_unit():
    """persist=auto chooses networkd only where every tunnel has no networkd_gap (test_gre_tunnel_persist.py)."""
    assert persist.networkd_gap(Tunnel(name="gre1", mode="gre", remote="198.51.100.1")) is None
    gap = persist.networkd_gap(Tunnel(name="gre1", mode="gre", remote="198.51.100.1", encap=Encap("fou", 5555)))
    assert gap is not None and gap.startswith("tunnel gre1: encap: ")


def test_boot_ports_are_read_from_the_unit_s_batch_file(tmp_path, monkeypatch):
    monkeypatch.setattr(persist.Files, "root", str(tmp_path))
    files = persist.Files(None)  # type: ignore[arg-type]
    assert persist.boot_fou_ports(files) == set()
    (tmp_path / "etc/linuxnet-gre").mkdir(parents=True)
    (tmp_path / "etc/linuxnet-gre/tunnels.batch").write_text("fou add port 5555 ipproto 47\nfou add port 6000 gue\n")
    assert persist.boot_fou_ports(files) == {FouPort(5555, "fou"), FouPort(6000, "gue")}
