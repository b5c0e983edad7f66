# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_diagnose's routed paths (issue 16) on evidence captured on the lab's real kernels, one test per cause.

The five routed faults of molecule/faults come straight from
tests/unit/plugins/modules/fixtures/probe/routed-*.json (capture_routed.py, on molecule/faults' lab:
four hosts, every link but node1 - node2, a network behind each, all four probed at once with the
fault injected). The other causes start from the captured healthy routed mesh, with the one piece of
evidence that cause rests on changed, as the named kernel state would show it.
"""

from __future__ import annotations

import copy
import pathlib
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.filter.gre_diagnose import gre_diagnose
from ansible_collections.linuxnet.gre.plugins.plugin_utils._diagnose import PATH_CAUSES

from ..modules.replay import load

N1, N2, N3, N4, LAN = (
    "198.51.100.201/32",
    "198.51.100.202/32",
    "198.51.100.203/32",
    "198.51.100.204/32",
    "198.51.100.208/29",
)
NETWORKS = {"node1": [N1], "node2": [N2], "node3": [N3], "node4": [N4, LAN]}
PATHS = sorted((h, n) for h in NETWORKS for o in NETWORKS if o != h for n in NETWORKS[o])
FAULTS = ["forwarding_off", "route_missing", "rp_filter", "forward_firewall", "lan_no_route_back"]


def captured(name: str) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any] | None]:
    """(probes by host, plan, the fault) of a captured routed run."""
    record = load(f"probe/routed-{name}")
    probes = {run["description"]: run["result"] for run in record["runs"]}
    return copy.deepcopy(probes), record["plan"], record["fault"]


def paths_of(result: dict[str, t.Any]) -> dict[tuple[str, str], dict[str, t.Any]]:
    return {(p["from"], p["network"]): p for p in result["paths"]}


def down_of(result: dict[str, t.Any]) -> dict[tuple[str, str], str]:
    return {key: p["cause"] for key, p in paths_of(result).items() if p["status"] != "up"}


def routed(probes: dict[str, t.Any], host: str) -> dict[str, t.Any]:
    return t.cast("dict[str, t.Any]", probes[host]["routed"])


def path(probes: dict[str, t.Any], host: str, network: str) -> dict[str, t.Any]:
    return next(p for p in routed(probes, host)["paths"] if p["network"] == network)


def route(probes: dict[str, t.Any], host: str, prefix: str) -> dict[str, t.Any]:
    return next(r for r in routed(probes, host)["routes"] if r["prefix"] == prefix)


def fail(entry: dict[str, t.Any]) -> None:
    entry["ping"].update(received=0, up=False, rtt_ms=None)


def test_the_healthy_routed_mesh_is_all_up():
    probes, plan, _fault = captured("healthy")
    result = gre_diagnose(probes, plan)
    assert (result["up"], result["down"]) == (5, 0)
    assert sorted(paths_of(result)) == PATHS
    assert (result["paths_up"], result["paths_down"]) == (15, 0)
    assert all(p["rtt_ms"] is not None and p["cause"] is None for p in result["paths"])
    # node1 and node2 have no link: their networks go through node3.
    assert paths_of(result)[("node1", N2)]["via"] == ["node3"]
    assert paths_of(result)[("node1", N3)]["via"] == []
    assert paths_of(result)[("node1", LAN)]["address"] == "198.51.100.210"
    assert paths_of(result)[("node4", N1)]["source"] == "198.51.100.204"
    # The matrix gets a block of routed paths: rows the sources, columns the networks with their owners.
    block = result["table"][result["table"].index("") + 1 :]
    assert block[0].split() == [
        "routed",
        "paths",
        f"node1:{N1}",
        f"node2:{N2}",
        f"node3:{N3}",
        f"node4:{N4}",
        f"node4:{LAN}",
    ]
    assert block[1].split()[:2] == ["node1", "\\"] and block[1].split()[2] == "up"
    assert result["path_matrix"]["node1"][N2]["status"] == "up"
    line = next(s for s in result["summary"] if s.startswith("node1 (198.51.100.201) to node2's"))
    assert line.startswith(f"node1 (198.51.100.201) to node2's {N2} (198.51.100.202) via node3: up, ")
    # The networks are drawn behind their owners, green.
    assert result["dot"].count('"net ') == 2 * 5
    assert f'"node4" -- "net {LAN}" [color="#2e8b57"' in result["dot"]
    assert "style=dotted" not in result["dot"] and "style=dashed" not in result["dot"]


@pytest.mark.parametrize("name", FAULTS)
def test_each_captured_routed_fault_is_named_on_exactly_its_paths(name):
    probes, plan, fault = captured(name)
    result = gre_diagnose(probes, plan)
    assert fault is not None
    assert down_of(result) == {(host, network): cause for host, network, cause in fault["down"]}
    assert result["down"] == 0, result["summary"]
    assert result["paths_down"] == len(fault["down"])
    assert result["dot"].count("style=dotted") >= 1 and "style=dashed" not in result["dot"]


def only(result: dict[str, t.Any], key: tuple[str, str], cause: str) -> dict[str, t.Any]:
    """The one path down is ``key``, with ``cause``; every other path is up."""
    assert down_of(result) == {key: cause}, result["summary"]
    return paths_of(result)[key]


# --- the captured faults' lines ---------------------------------------------------------------------


def test_forwarding_off_names_the_transit_and_the_sysctl():
    probes, plan, _fault = captured("forwarding_off")
    found = paths_of(gre_diagnose(probes, plan))[("node1", N2)]
    assert found["text"] == "node3 forwards nothing: net.ipv4.ip_forward=0, and the path goes through it"
    assert found["fix"] == (
        "on node3: sysctl -w net.ipv4.ip_forward=1, and run playbooks/site.yml, which switches it on where the plan "
        "forwards"
    )
    assert routed(probes, "node3")["forwarding"] == {"ipv4": 0, "ipv6": 0}


def test_route_missing_names_where_the_packets_go_and_the_planned_route():
    probes, plan, _fault = captured("route_missing")
    result = gre_diagnose(probes, plan)
    via = route(probes, "node1", N4)["via"]
    for key in (("node1", N4), ("node4", N1)):  # there, and node4's replies' way back
        assert paths_of(result)[key]["text"] == (
            "node1 has no route to 198.51.100.204/32 through gre-node4: its packets to 198.51.100.204 leave via eth1 "
            f"(gateway 203.0.113.254); planned: 198.51.100.204/32 via {via} dev gre-node4"
        )
        assert paths_of(result)[key]["fix"] == (
            "run playbooks/site.yml to restore it, or on node1: ip route replace 198.51.100.204/32 "
            f"via {via} dev gre-node4 proto 250"
        )


def test_rp_filter_names_the_tunnel_its_sysctl_and_the_route_back():
    probes, plan, _fault = captured("rp_filter")
    found = paths_of(gre_diagnose(probes, plan))[("node1", N2)]
    drops = probes["node2"]["host"]["rp_filter_drops"]
    assert drops > 0
    assert found["text"] == (
        "reverse-path filtering on node2 drops what comes from 198.51.100.201 through gre-node3: "
        "net.ipv4.conf.gre-node3.rp_filter=1 (all=0) and node2's route back to 198.51.100.201/32 leaves via "
        f"gre-node4, not gre-node3 (IPReversePathFilter +{drops})"
    )
    assert found["fix"] == (
        "on node2: sysctl -w net.ipv4.conf.gre-node3.rp_filter=2 (loose, for this tunnel only), or route "
        "198.51.100.201/32 back via gre-node3 as planned (run playbooks/site.yml)"
    )


def test_forward_firewall_names_the_rule_and_its_counter():
    probes, plan, _fault = captured("forward_firewall")
    found = paths_of(gre_diagnose(probes, plan))[("node2", N1)]
    (rule,) = [r for r in routed(probes, "node3")["forward_firewall"] if r["delta"]]
    assert found["text"] == (
        "node3's firewall drops forwarded packets of the path: iptables-legacy filter FORWARD "
        f"'-A FORWARD -s 198.51.100.201/32 -j DROP' counted {rule['delta']} packets during the probe"
    )
    assert found["fix"] == (
        "allow forwarding between the tunnels and 198.51.100.201/32 in node3's firewall before that rule "
        "(gre_mesh_firewall opens it where the role manages the firewall)"
    )


def test_lan_no_route_back_says_what_to_add_on_the_lans_devices():
    probes, plan, _fault = captured("lan_no_route_back")
    found = paths_of(gre_diagnose(probes, plan))[("node1", LAN)]
    assert path(probes, "node1", LAN)["gateway_ping"]["received"] > 0
    assert found["text"] == (
        "node4's own address 198.51.100.209 in 198.51.100.208/29 answers node1's pings from 198.51.100.201, but "
        "198.51.100.210 behind it does not: the devices of 198.51.100.208/29 do not route 198.51.100.201/32 back "
        "to node4"
    )
    assert found["fix"] == (
        "on the devices of 198.51.100.208/29 (or their default gateway): add a route to 198.51.100.201/32 via "
        "198.51.100.209 (ip route add 198.51.100.201/32 via 198.51.100.209), or make 198.51.100.209 their default "
        "gateway"
    )


# --- the other causes, from the captured healthy mesh with one piece changed ------------------------------


def test_no_source_address():
    probes, plan, _fault = captured("healthy")
    entry = path(probes, "node3", N1)
    entry.update(source=None, route=None, ping=None)
    found = only(gre_diagnose(probes, plan), ("node3", N1), "no_source_address")
    assert found["text"] == (
        "node3 has no address in its networks (198.51.100.203/32) of the family of 198.51.100.201, so nothing is "
        "sent from them"
    )
    assert "ip address add ADDRESS/32 dev lo" in found["fix"]


def test_path_not_checked_when_a_host_on_the_way_was_not_probed():
    probes, plan, _fault = captured("healthy")
    fail(path(probes, "node1", N2))
    del probes["node3"]
    found = paths_of(gre_diagnose(probes, plan))[("node1", N2)]
    assert found["cause"] == "path_not_checked"
    assert (
        found["text"]
        == "pings from 198.51.100.201 to 198.51.100.202 are not answered, and node3 on the way was not probed"
    )


def test_recursive_routing_when_a_tunnels_remote_is_routed_into_a_tunnel():
    probes, plan, _fault = captured("healthy")
    fail(path(probes, "node1", N4))
    tunnel = next(e for e in probes["node1"]["tunnels"] if e["interface"] == "gre-node4")
    tunnel["rp_filter"]["route_back"] = "gre-node3"  # ip route get 198.51.100.4 from 203.0.113.1: dev gre-node3
    found = only(gre_diagnose(probes, plan), ("node1", N4), "recursive_routing")
    assert found["text"] == (
        "recursive routing on node1: its route to 198.51.100.4, the underlay address of gre-node4's far end, goes "
        "through the tunnel gre-node3, so the tunnel's own GRE packets are sent into a tunnel"
    )


def test_link_down_names_the_link_on_the_way_and_its_cause():
    probes, plan, _fault = captured("healthy")
    fail(path(probes, "node1", N2))
    tunnel = next(e for e in probes["node3"]["tunnels"] if e["interface"] == "gre-node2")
    tunnel["actual"]["up"] = False  # node3's gre-node2 is down, and with it the link node2 - node3
    for host, interface in (("node3", "gre-node2"), ("node2", "gre-node3")):
        evidence = next(e for e in probes[host]["tunnels"] if e["interface"] == interface)
        for result in evidence["pings"]["small"] + evidence["pings"]["full"]:
            result.update(received=0, up=False, rtt_ms=None)
    result = gre_diagnose(probes, plan)
    assert [link["cause"] for link in result["links"] if link["status"] != "up"] == ["interface_down"]
    found = only(result, ("node1", N2), "link_down")
    assert found["text"] == "the link node2 - node3 on the path is down [interface_down]"
    assert found["fix"] == "fix that link first: ip link set gre-node2 up on node3, or run playbooks/site.yml"


def test_route_elsewhere_when_a_hop_routes_the_network_through_another_tunnel():
    probes, plan, _fault = captured("healthy")
    fail(path(probes, "node3", N4))
    route(probes, "node3", N4)["actual"].update(dev="gre-node1", gateway=None)
    found = only(gre_diagnose(probes, plan), ("node3", N4), "route_elsewhere")
    assert found["text"] == (
        f"node3's route to {N4} leaves via gre-node1, not gre-node4 to node4; planned: {N4} via "
        f"{route(probes, 'node3', N4)['via']} dev gre-node4"
    )


def test_path_no_reply_when_no_host_on_the_way_shows_why():
    probes, plan, _fault = captured("healthy")
    fail(path(probes, "node1", N2))
    found = only(gre_diagnose(probes, plan), ("node1", N2), "path_no_reply")
    assert found["text"] == (
        "pings from 198.51.100.201 to 198.51.100.202 (node1 -> node3 -> node2) are not answered, and no host on the "
        "way shows why"
    )


def test_an_inventory_without_networks_gets_the_link_report_only():
    record = load("probe/healthy")
    probes = {run["description"]: run["result"] for run in record["runs"]}
    result = gre_diagnose(probes, record["plan"])
    assert "paths" not in result and "paths_down" not in result and "" not in result["table"]
    assert '"net ' not in result["dot"]


def test_every_path_cause_is_tested_here():
    source = pathlib.Path(__file__).read_text()
    for cause in PATH_CAUSES:
        assert f'"{cause}"' in source or f"test_{cause}" in source, cause
