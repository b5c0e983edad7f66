# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_probe's routed paths (issue 16) through main(), replaying conversations recorded on the lab.

fixtures/probe/routed-*.json come from fixtures/probe/capture_routed.py on molecule/faults' lab (a
network behind each node, every link but node1 - node2, the routes the role applied): node1's run
of the healthy mesh (a host that sends routed pings) and node3's with a FORWARD drop rule (the
transit between node1 and node2) keep their conversations. The module must issue exactly those
commands and reads, in that order, and return exactly the evidence it returned there.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._probe import probe

from .replay import Replay, Seam
from .test_gre_probe import probe_runner, recorded, without_timing


@pytest.fixture
def run(seam: Seam, monkeypatch: pytest.MonkeyPatch) -> t.Callable[..., dict[str, t.Any]]:
    return probe_runner(seam, monkeypatch)


@pytest.mark.parametrize(("fixture", "host"), [("routed-healthy", "node1"), ("routed-forward_firewall", "node3")])
@pytest.mark.parametrize("check_mode", [False, True])
def test_main_returns_the_routed_evidence_it_returned_on_the_lab(run, fixture, host, check_mode):
    params, replay, expected = recorded(fixture, host)
    result = run(params, replay, check_mode=check_mode)
    assert result.pop("changed") is False
    assert without_timing(result) == without_timing(expected)
    replay.assert_done()


def test_a_routed_host_pings_from_its_own_network_and_reads_forwarding_and_routes(run):
    params, replay, _expected = recorded("routed-healthy", "node1")
    result = run(params, replay)
    routed = result["routed"]
    assert routed["networks"] == ["198.51.100.201/32"]
    assert routed["forwarding"] == {"ipv4": 1, "ipv6": 0}
    assert {p["source"] for p in routed["paths"]} == {"198.51.100.201"}
    assert all(p["ping"]["received"] > 0 for p in routed["paths"])
    lan = next(p for p in routed["paths"] if p["network"] == "198.51.100.208/29")
    assert (lan["address"], lan["gateway"]) == ("198.51.100.210", "198.51.100.209")
    assert lan["gateway_ping"]["received"] > 0
    # node1 has no link to node2: node2's network goes to node3, as planned.
    to_node2 = next(r for r in routed["routes"] if r["prefix"] == "198.51.100.202/32")
    assert to_node2["interface"] == "gre-node3" and to_node2["actual"]["dev"] == "gre-node3"
    assert to_node2["actual"]["gateway"] == to_node2["via"]
    # One ip process reads every route, the links' and the routed ones.
    batches = [call for call in replay.log if call.get("argv") == probe.ROUTE_BATCH]
    assert len(batches) == 1 and "route get 198.51.100.202 from 198.51.100.201\n" in batches[0]["stdin"]


def test_the_forward_drop_rule_shows_with_its_counter(run):
    params, replay, _expected = recorded("routed-forward_firewall", "node3")
    result = run(params, replay)
    (rule,) = [r for r in result["routed"]["forward_firewall"] if r["delta"]]
    assert rule["tool"] == "iptables-legacy" and rule["chain"] == "FORWARD"
    assert rule["rule"] == "-A FORWARD -s 198.51.100.201/32 -j DROP"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"networks": ["lan"]},
            "networks: 'lan' is not a network (address/length without host bits): "
            "'lan' does not appear to be an IPv4 or IPv6 network",
        ),
        (
            {"networks": ["198.51.100.201/24"]},
            "networks: '198.51.100.201/24' is not a network (address/length without host bits): "
            "198.51.100.201/24 has host bits set",
        ),
        (
            {"paths": [{"network": "198.51.100.208/29", "address": "198.51.100.220"}]},
            "paths[0] (198.51.100.208/29): address: 198.51.100.220 is not in 198.51.100.208/29",
        ),
        (
            {"paths": [{"network": "198.51.100.208/29", "address": "198.51.100.210", "gateway": "node4"}]},
            "paths[0] (198.51.100.208/29): addresses: 'node4' is not an IP address (without prefix)",
        ),
    ],
)
def test_bad_routed_options_fail_before_anything_runs(run, args, message):
    replay = Replay()
    result = run(dict({"tunnels": [{"name": "gre-b", "remote": "198.51.100.1"}]}, **args), replay)
    assert result["failed"] and result["msg"].startswith(message)
    assert replay.log == []


def test_the_source_is_the_lowest_address_in_the_own_networks_of_the_targets_family():
    addresses = {"198.51.100.209": "lan-gw", "198.51.100.204": "lan0", "203.0.113.4": "eth1", "2001:db8::1": "lan0"}
    networks = ["198.51.100.204/32", "198.51.100.208/29"]
    assert probe.source_of(networks, addresses, "198.51.100.201") == "198.51.100.204"
    assert probe.source_of(networks, addresses, "2001:db8:1::1") is None
    assert probe.source_of([], addresses, "198.51.100.201") is None


@pytest.mark.parametrize(
    ("prefix", "address"),
    [("198.51.100.201/32", "198.51.100.201"), ("198.51.100.208/29", "198.51.100.209"), ("10.0.0.0/31", "10.0.0.0")],
)
def test_a_network_is_looked_up_at_its_first_host(prefix, address):
    assert probe.lookup_address(prefix) == address


def test_without_paths_networks_or_routes_nothing_routed_is_read():
    assert not probe.is_routed({"paths": [], "networks": []}, [{"name": "gre-b", "routes": []}])
    assert probe.is_routed({"paths": [], "networks": []}, [{"name": "gre-b", "routes": [{"prefix": "10.1.0.0/24"}]}])
