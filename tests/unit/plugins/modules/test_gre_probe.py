# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_probe through main(), replaying conversations recorded on the lab's real kernels.

fixtures/probe/*.json come from fixtures/probe/capture.py: gre_probe's logic ran on the four hosts
of tests/lab/topologies/faults.yml at once, with a host that recorded every command (argv, stdin,
exit status, output), every file read and the pings' and capture's result (an ``exchange``): one
run per host. Here the module must issue exactly those commands and reads, in that order, and
return exactly the evidence it returned there. The replay is replay.py's, through the host seam;
the exchange, the probe's own seam beside it, is answered from the same recording (``Replay.take``).
The sockets themselves (pings, the packet socket with its BPF filter) run for real on loopback.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _nft
from ansible_collections.linuxnet.gre.plugins.module_utils._probe import probe
from ansible_collections.linuxnet.gre.plugins.modules import gre_probe

from .replay import Replay, Seam, load

TIMING = ("called", "waited")


def exchange(
    replay: Replay,
    pings: list[probe.Ping],
    datagrams: list[probe.Datagrams] | None = None,
    ports: list[int] | None = None,
) -> dict[str, t.Any]:
    """The recorded result of the exchange of exactly these pings (and UDP datagrams and captured ports, where the
    recording has them: none before issue 18)."""
    keys = [ping.key for ping in pings]
    udp = [series.key for series in datagrams or []]

    def same(recorded: dict[str, t.Any]) -> bool:
        return recorded["exchange"] == keys and (recorded.get("udp", []), recorded.get("ports", [])) == (
            udp,
            list(ports or []),
        )

    call = replay.take("exchange", same, f"exchange of {keys}, {udp}, ports {ports}")
    result: dict[str, t.Any] = call["result"]
    return result


@pytest.fixture
def run(seam: Seam, monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., dict[str, t.Any]]:
    return probe_runner(seam, monkeypatch)


def probe_runner(seam: Seam, monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., dict[str, t.Any]]:
    """gre_probe's main() on a replayed conversation: ``call(args, replay, check_mode=False)``."""

    def call(args: dict[str, t.Any], replay: Replay, check_mode: bool = False) -> dict[str, t.Any]:
        seam.use(replay)
        monkeypatch.setattr(
            probe.Host,
            "exchange",
            lambda _self, pings, _capture, _rounds, _window, _timeout, datagrams=None, ports=None: exchange(
                replay, pings, datagrams, ports
            ),
        )
        monkeypatch.setattr(probe.Host, "sleep", lambda _self, _seconds: None)
        return seam.main(gre_probe.main, args, check_mode=check_mode)

    return call


def recorded(fixture: str, host: str) -> tuple[dict[str, t.Any], Replay, dict[str, t.Any]]:
    """The params, the conversation and the result of ``host``'s run in fixtures/probe/FIXTURE.json."""
    record = load(f"probe/{fixture}")
    (index,) = [i for i, run in enumerate(record["runs"]) if run["description"] == host]
    run = record["runs"][index]
    return run["params"], Replay.of(record, run=index), run["result"]


def without_timing(result: dict[str, t.Any]) -> dict[str, t.Any]:
    result = json.loads(json.dumps(result))
    for key in TIMING:
        result["host"].pop(key, None)
    return result


@pytest.mark.parametrize("fixture", ["healthy", "host_firewall", "rp_filter", "path_drops_gre-udp_passes"])
@pytest.mark.parametrize("check_mode", [False, True])
def test_main_returns_the_evidence_it_returned_on_the_lab(run, fixture, check_mode):
    params, replay, expected = recorded(fixture, "node4")
    result = run(params, replay, check_mode=check_mode)
    assert result.pop("changed") is False
    assert without_timing(result) == without_timing(expected)
    replay.assert_done()  # every recorded command and read was made


def test_the_host_firewall_fault_shows_the_rule_and_its_counter(run):
    params, replay, _expected = recorded("host_firewall", "node4")
    result = run(params, replay)
    tunnel = next(t for t in result["tunnels"] if t["interface"] == "gre-node3")
    assert tunnel["capture"]["received"] > 0 and tunnel["counters"]["rx_packets"] == 0
    (rule,) = tunnel["firewall"]
    assert rule["tool"] == "iptables-legacy" and rule["chain"] == "INPUT" and rule["delta"] > 0
    assert rule["rule"] == "-A INPUT -s 203.0.113.3/32 -p gre -j DROP"
    others = [t for t in result["tunnels"] if t["interface"] != "gre-node3"]
    assert all(t["firewall"] == [] and t["counters"]["rx_packets"] > 0 for t in others)


def test_the_rp_filter_fault_shows_the_sysctl_and_the_route_back(run):
    params, replay, _expected = recorded("rp_filter", "node4")
    result = run(params, replay)
    tunnel = next(t for t in result["tunnels"] if t["interface"] == "gre-node1")
    assert tunnel["rp_filter"] == {"interface": "eth1", "all": 1, "value": 1, "effective": 1, "route_back": "eth2"}
    assert result["host"]["rp_filter_drops"] > 0
    assert tunnel["capture"]["received_on"] == ["eth1"] and tunnel["counters"]["rx_packets"] == 0


def test_a_healthy_tunnel_has_every_ping_answered_and_gre_both_ways(run):
    params, replay, _expected = recorded("healthy", "node4")
    result = run(params, replay)
    for tunnel in result["tunnels"]:
        assert tunnel["exists"] and tunnel["actual"]["up"] and tunnel["local_on_host"]
        assert [p["received"] > 0 for p in tunnel["pings"]["small"] + tunnel["pings"]["full"]] == [True, True]
        assert tunnel["pings"]["full"][0]["size"] == 1448 and tunnel["pings"]["full"][0]["dont_fragment"]
        assert tunnel["capture"]["sent"] > 0 and tunnel["capture"]["received"] > 0


# --- the UDP probe (issue 18) ------------------------------------------------------------------------


def test_the_udp_probe_goes_to_each_planned_remote_from_the_local_address_and_counts_what_arrives(run):
    params, replay, _expected = recorded("path_drops_gre-udp_passes", "node4")
    (call,) = [call for call in replay.recorded if "exchange" in call]
    planned = sorted(tunnel["remote"] for tunnel in params["tunnels"])
    assert call["udp"] == [f"udp {remote} port 5555 from 198.51.100.4" for remote in planned]
    assert call["ports"] == [5555]
    result = run(params, replay)
    udp = {tunnel["interface"]: tunnel["udp"] for tunnel in result["tunnels"]}
    # The router drops node2's GRE, not its UDP: node4 saw node2's datagrams arrive (and GRE from no one else).
    assert udp["gre-node2"] == {"port": 5555, "sent": 3, "error": None, "received": 3}
    assert all(found["sent"] == 3 and found["received"] > 0 for found in udp.values())
    tunnel = next(t for t in result["tunnels"] if t["interface"] == "gre-node2")
    assert tunnel["capture"]["received"] == 0 and tunnel["capture"]["sent"] > 0  # GRE only: the UDP is not counted
    # The port unreachable every datagram earned (no listener) failed no ping.
    assert all(t["pings"]["underlay"]["received"] == t["pings"]["underlay"]["sent"] == 3 for t in result["tunnels"])


def test_the_udp_probe_never_goes_to_an_actual_remote_other_than_planned_nor_to_external_peers():
    links = {"gre-b": {"local": "203.0.113.1", "remote": "203.0.113.99"}}
    tunnels: list[dict[str, t.Any]] = [
        {"name": "gre-b", "remote": "203.0.113.2", "local": "203.0.113.1"},
        {"name": "gre-c", "remote": "203.0.113.3", "local": "203.0.113.7"},  # not an address of the host
        {"name": "gre-x", "remote": "198.51.100.9"},
        {"name": "gre-f", "remote": "203.0.113.6", "encap": {"type": "fou", "dport": 5555}},
        {"name": "gre-n"},
    ]
    peers = {"gre-x": {"interface": "gre-x", "external": True}}
    found = probe.udp_series(tunnels, peers, links, {"203.0.113.1": "eth1"}, 5555)
    assert {name: (d.address, d.port, d.source) for name, d in found.items()} == {
        "gre-b": ("203.0.113.2", 5555, "203.0.113.1"),
        "gre-c": ("203.0.113.3", 5555, None),
    }
    assert probe.udp_series(tunnels, peers, links, {}, None) == {}


def test_an_encap_tunnel_counts_udp_to_its_port_as_its_packets(seam, monkeypatch):
    """The lab's kernel has no FOU: a tunnel planned with encap is judged on the UDP the capture counted, here node4's
    real capture of the UDP probe, which is what such a tunnel would send (to the same port of the same remote)."""
    params, replay, _expected = recorded("path_drops_gre-udp_passes", "node4")
    (call,) = [call for call in replay.recorded if "exchange" in call]
    encap = {"type": "fou", "dport": 5555}
    params = json.loads(json.dumps(params))
    next(t for t in params["tunnels"] if t["name"] == "gre-node2")["encap"] = encap
    asked = []

    def answer(_self, pings, _capture, _rounds, _window, _timeout, datagrams=None, ports=None):
        asked.append(([d.key for d in datagrams or []], ports))
        return replay.take("exchange", lambda _call: True, "the exchange")["result"]

    seam.use(replay)
    monkeypatch.setattr(probe.Host, "exchange", answer)
    monkeypatch.setattr(probe.Host, "sleep", lambda _self, _seconds: None)
    result = seam.main(gre_probe.main, params)
    replay.assert_done()
    # No datagram to node2 (the tunnel is UDP already); the capture takes its port.
    assert asked == [([key for key in call["udp"] if " 203.0.113.2 " not in key], [5555])]
    tunnel = next(t for t in result["tunnels"] if t["interface"] == "gre-node2")
    packets = call["result"]["capture"]["packets"]
    udp_in = sum(p["count"] for p in packets if p.get("protocol") == "udp" and p["source"] == "203.0.113.2")
    udp_out = sum(p["count"] for p in packets if p.get("protocol") == "udp" and p["destination"] == "203.0.113.2")
    assert tunnel["planned"]["encap"] == encap and tunnel["udp"] is None
    assert (tunnel["capture"]["sent"], tunnel["capture"]["received"]) == (udp_out, udp_in) == (3, 3)
    others = [t for t in result["tunnels"] if t["interface"] != "gre-node2"]
    assert all("encap" not in t["planned"] and t["udp"]["port"] == 5555 for t in others)


def test_rules_that_drop_udp_are_the_candidates_of_an_encap_tunnel():
    text = (
        "*filter\n:INPUT ACCEPT [0:0]\n[4:160] -A INPUT -s 203.0.113.3/32 -p udp -m udp --dport 5555 -j DROP\nCOMMIT\n"
    )
    (rule,) = probe.iptables_drops(text, "iptables-legacy", 4)
    assert probe.drops_from(rule, "203.0.113.3", probe.UDP_NAMES)
    assert not probe.drops_gre_from(rule, "203.0.113.3")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"udp_port": 0}, "udp_port: 0 is not a UDP port (1 to 65535)"),
        ({"rounds": 0}, "rounds: 0 is not from 1 to 50"),
        ({"window": 0}, "window: 0.0 is not from 0.1 to 60 seconds"),
        ({"timeout": 0}, "timeout: 0.0 is not more than 0 and at most 60 seconds"),
        (
            {"tunnels": [{"name": "gre-b", "remote": "hostb"}]},
            "tunnels[0] (gre-b): remote: 'hostb' is not an IP address",
        ),
        (
            {"peers": [{"interface": "gre-b", "addresses": ["10.0.0.2/30"]}]},
            "peers[0] (gre-b): addresses: '10.0.0.2/30' is not an IP address (without prefix)",
        ),
    ],
)
def test_bad_options_fail_before_anything_runs(run, args, message):
    replay = Replay()
    result = run(dict({"tunnels": [{"name": "gre-b", "remote": "198.51.100.1"}]}, **args), replay)
    assert result["failed"] and result["msg"] == message


def test_a_failing_read_fails_naming_the_command(run):
    replay = Replay(
        [{"argv": probe.READ_LINKS, "stdin": None, "rc": 1, "stdout": "", "stderr": "Cannot open netlink socket"}],
        ordered=True,
    )
    result = run({"tunnels": []}, replay)
    assert result["failed"]
    assert result["msg"] == "ip -details -statistics -json address show failed: Cannot open netlink socket"


# --- the parsers, on captured output -----------------------------------------------------------


def recorded_output(fixture: str, argv: list[str]) -> str:
    (run,) = [run for run in load(f"probe/{fixture}")["runs"] if run["description"] == "node4"]
    return next(call["stdout"] for call in run["calls"] if call.get("argv") == argv)


def test_iptables_save_rules_that_drop():
    text = recorded_output("host_firewall", ["iptables-legacy-save", "-c"])
    (rule,) = probe.iptables_drops(text, "iptables-legacy", 4)
    assert rule["chain"] == "INPUT" and rule["protocol"] == "gre" and rule["sources"] == ["203.0.113.3/32"]
    assert probe.drops_gre_from(rule, "203.0.113.3")
    assert not probe.drops_gre_from(rule, "203.0.113.1")


def test_iptables_save_policies_and_negations():
    text = "*filter\n:INPUT DROP [7:420]\n[3:120] -A INPUT ! -s 203.0.113.0/24 -p tcp -j REJECT\n[2:80] -A INPUT -p 47 -j ACCEPT\nCOMMIT\n"
    policy, reject = probe.iptables_drops(text, "iptables-legacy", 4)
    assert policy["rule"] == "policy INPUT DROP" and policy["packets"] == 7
    assert probe.drops_gre_from(policy, "198.51.100.4")
    assert reject["negated_sources"] and not probe.drops_gre_from(reject, "198.51.100.4")  # tcp only


def nft_netns() -> Replay:
    """The host state of nft-netns.json (fixtures/probe/nft_netns.py: a network namespace of a newer kernel)."""
    return Replay.of(load("probe/nft-netns"))


def printed(host: Replay, argv: list[str]) -> str:
    """What ``argv`` printed on ``host``."""
    _rc, out, _err = host.run(argv)
    return out


def test_nft_rules_that_drop():
    replay = nft_netns()
    rules = probe.nft_drops(_nft.read(t.cast(probe.Host, replay)))
    assert [rule["rule"] for rule in rules] == [
        "ip saddr 203.0.113.3 ip protocol gre counter drop",
        "ip saddr { 198.51.100.4, 198.51.100.5 } meta l4proto gre counter reject with icmp port-unreachable",
        "ip protocol != gre counter drop",
        "ip saddr != 203.0.113.0/24 counter drop",
        "ip saddr @blocked counter drop",
        "ip6 saddr 2001:db8:3::/48 meta l4proto gre counter drop",
        "meta l4proto gre ip saddr 203.0.113.9 counter drop",
    ]
    # ip6 filter holds an x_tables match (ip6tables-nft's): nft cannot show it, ip6tables-nft-save reads it.
    assert [(rule["table"], rule["chain"]) for rule in rules] == [("inet filter", "input")] * 6 + [
        ("ip filter", "INPUT")
    ]
    assert [probe.drops_gre_from(rule, "203.0.113.3") for rule in rules] == [True] + [False] * 6
    assert [probe.drops_gre_from(rule, "198.51.100.5") for rule in rules] == [
        False,
        True,
        False,
        True,
        False,
        False,
        False,
    ]
    assert [probe.drops_gre_from(rule, "203.0.113.9") for rule in rules] == [False] * 6 + [True]
    # The three GRE packets from 127.0.0.1 that nft_netns.py sent over the namespace's lo.
    assert [rule["packets"] for rule in rules] == [0, 0, 0, 3, 0, 0, 0]


def test_nft_rules_are_put_in_nfts_own_words():
    replay = nft_netns()
    tables = _nft.read(t.cast(probe.Host, replay))
    ruleset = re.sub(r"counter packets \d+ bytes \d+", "counter", printed(replay, ["nft", "list", "ruleset"]))
    lines = [line.strip() for line in ruleset.splitlines()]
    rules = [rule for table in tables.values() for chain in table["chains"].values() for rule in chain["rules"]]
    readable = [rule for rule in rules if not _nft.uses_xt(rule)]
    assert len(rules) == 11 and len(readable) == 10
    assert [_nft.text(rule) in lines for rule in readable] == [True] * 10


def test_a_failing_nft_is_a_firewall_error_not_a_failure():
    replay = Replay(
        [{"argv": _nft.READ, "stdin": None, "rc": 1, "stdout": "", "stderr": "Error: cache initialization failed\n"}],
        which={"nft": True},
    )
    found = probe.read_firewall(t.cast(probe.Host, replay), set())
    assert found == {"rules": [], "errors": ["nft --json list ruleset failed: Error: cache initialization failed"]}


def test_iptables_nft_save_is_read_like_legacy():
    replay = nft_netns()
    (rule,) = probe.iptables_drops(printed(replay, ["iptables-nft-save", "-c"]), "iptables-nft", 4)
    assert probe.drops_gre_from(rule, "203.0.113.9") and not probe.drops_gre_from(rule, "203.0.113.3")
    conntrack, gre = probe.iptables_drops(printed(replay, ["ip6tables-nft-save", "-c"]), "ip6tables-nft", 6)
    assert probe.drops_gre_from(conntrack, "2001:db8:9::1")  # no protocol, no source: a candidate
    assert probe.drops_gre_from(gre, "2001:db8:9::1") and not probe.drops_gre_from(gre, "2001:db8:8::1")


def test_gre_endpoints_of_ipv4_and_ipv6_packets():
    ipv4 = bytes([0x45, 0, 0, 88, 0, 0, 0x40, 0, 255, 47, 0, 0]) + socket.inet_aton("203.0.113.1")
    ipv4 += socket.inet_aton("198.51.100.4") + b"\0\0\x08\0"
    assert probe.gre_endpoints(ipv4) == ("203.0.113.1", "198.51.100.4")
    assert probe.gre_endpoints(ipv4[:9] + b"\x01" + ipv4[10:]) is None  # ICMP
    src, dst = socket.inet_pton(socket.AF_INET6, "2001:db8::1"), socket.inet_pton(socket.AF_INET6, "2001:db8::2")
    ipv6 = struct.pack("!IHBB", 6 << 28, 12, 60, 64) + src + dst + bytes([47, 0, 4, 1, 4, 1, 1, 0]) + b"\0\0\x86\xdd"
    assert probe.gre_endpoints(ipv6) == ("2001:db8::1", "2001:db8::2")


@pytest.mark.parametrize("ports", [[], [5555], [5555, 5556, 4789]])
def test_the_bpf_program_is_well_formed(ports):
    program = probe.gre_filter(ports)
    size = len(program) // 8
    assert size == 10 + (9 + 2 * len(ports)) * bool(ports)
    for index in range(size):
        code, jt, jf, k = struct.unpack_from("HBBI", program, index * 8)
        if code in (0x15, 0x45):  # jeq, jset
            assert index + 1 + max(jt, jf) < size
        if code == 0x06:  # ret
            assert k in (0, probe.SNAPLEN)
    last, _jt, _jf, _k = struct.unpack_from("HBBI", program, (size - 1) * 8)
    assert last == 0x06


def test_udp_endpoints_and_port_of_ipv4_and_ipv6_packets():
    udp = struct.pack("!HHHH", 40000, 5555, 12, 0) + b"\xff\x07ab"
    ipv4 = bytes([0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 17, 0, 0]) + socket.inet_aton("203.0.113.2")
    ipv4 += socket.inet_aton("198.51.100.4") + udp
    assert probe.packet_endpoints(ipv4) == ("udp", "203.0.113.2", "198.51.100.4", 5555)
    assert probe.gre_endpoints(ipv4) is None
    src, dst = socket.inet_pton(socket.AF_INET6, "2001:db8::1"), socket.inet_pton(socket.AF_INET6, "2001:db8::2")
    ipv6 = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + src + dst + udp
    assert probe.packet_endpoints(ipv6) == ("udp", "2001:db8::1", "2001:db8::2", 5555)


@pytest.mark.skipif(os.geteuid() != 0, reason="the packet socket and raw ICMP need root")
def test_exchange_pings_and_captures_for_real_on_loopback():
    pings = [
        probe.Ping("underlay 127.0.0.1", "127.0.0.1", None, 56, False),
        probe.Ping("lo full 127.0.0.1", "127.0.0.1", "lo", 1400, True),
    ]
    result = probe.exchange(pings, True, 2, 0.2, 0.5)
    assert result["capture"] == {"available": True, "error": None, "packets": []}  # no GRE on loopback
    assert [result["pings"][key]["received"] for key in ("underlay 127.0.0.1", "lo full 127.0.0.1")] == [2, 2]
    assert result["started"] <= result["sent_until"] <= result["ended"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the packet socket and raw ICMP need root")
def test_the_udp_probe_is_captured_at_its_port_only_and_its_port_unreachable_fails_no_ping():
    """On loopback no one listens on the ports: each datagram earns an ICMP port unreachable."""
    free = [port for port in (5555, 5556) if not listening(port)]
    if len(free) < 2:
        pytest.skip("ports 5555 and 5556 of loopback must be free")
    pings = [probe.Ping("underlay 127.0.0.1", "127.0.0.1", None, 56, False)]
    datagrams = [
        probe.Datagrams("udp 127.0.0.1 port 5555", "127.0.0.1", 5555, "127.0.0.1"),
        probe.Datagrams("udp 127.0.0.1 port 5556", "127.0.0.1", 5556, None),
    ]
    result = probe.exchange(pings, True, 3, 0.3, 0.5, datagrams, [5555])
    assert result["pings"]["underlay 127.0.0.1"]["received"] == 3
    assert [found["sent"] for found in result["udp"].values()] == [3, 3]
    captured = {(p["direction"], p["protocol"], p.get("port")): p["count"] for p in result["capture"]["packets"]}
    assert captured == {("in", "udp", 5555): 3, ("out", "udp", 5555): 3}  # 5556 is not in the filter


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
