# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_diagnose on evidence captured on the lab's real kernels, one test per cause.

The six faults of molecule/faults come straight from tests/unit/plugins/modules/fixtures/probe/
(captured with its capture.py on tests/lab/topologies/faults.yml: all four hosts probed at once
with the fault injected; each host's run's result is the evidence judged here). The other causes
start from the captured healthy mesh, or a captured fault, with the one piece of evidence that
cause rests on changed, as the named kernel state would show it.

Issue 18's UDP probe: path_drops_gre-udp_passes.json and path_drops_gre-udp_dropped.json (the same capture.py, the
router dropping node2 - node4's GRE, and UDP to port 5555 too); the fixtures captured before it have no ``udp`` and
must still be judged. Links with GRE in UDP (``encap``) cannot run on the lab's kernel (no FOU): their evidence is
these captures with the link's UDP probe taken as its tunnel's packets, which is what the probe counts for them.
"""

from __future__ import annotations

import copy
import pathlib
import typing as t

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.filter.gre_diagnose import FilterModule, gre_diagnose
from ansible_collections.linuxnet.gre.plugins.plugin_utils._diagnose import CAUSES

from ..modules.replay import load

LINKS = [
    ("node1", "node2"),
    ("node1", "node3"),
    ("node1", "node4"),
    ("node2", "node3"),
    ("node2", "node4"),
    ("node3", "node4"),
]
FAULTS = ["path_drops_gre", "host_firewall", "endpoint_mismatch", "interface_down", "rp_filter", "mtu_black_hole"]


def captured(name: str) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any]]:
    """(probes by host, plan, the fault's description) of a captured run."""
    record = load(f"probe/{name}")
    probes = {run["description"]: run["result"] for run in record["runs"]}
    return probes, record["plan"], record["fault"]


def tunnel(probes: dict[str, t.Any], host: str, interface: str) -> dict[str, t.Any]:
    return next(e for e in probes[host]["tunnels"] if e["interface"] == interface)


def judged(probes: dict[str, t.Any], plan: dict[str, t.Any]) -> dict[tuple[str, str], dict[str, t.Any]]:
    result = gre_diagnose(probes, plan)
    return {tuple(link["hosts"]): link for link in result["links"]}


def only_down(links: dict[tuple[str, str], dict[str, t.Any]], pair: tuple[str, str], cause: str) -> dict[str, t.Any]:
    """The one link down is ``pair``, with ``cause``; every other link is up."""
    assert sorted(links) == LINKS
    down = {key: link["cause"] for key, link in links.items() if link["status"] != "up"}
    assert down == {pair: cause}, [link["text"] for link in links.values() if link["text"]]
    return links[pair]


def test_the_healthy_mesh_is_all_up_with_round_trip_times():
    probes, plan, _fault = captured("healthy")
    result = gre_diagnose(probes, plan)
    assert (result["up"], result["down"]) == (6, 0)
    assert all(link["cause"] is None and None not in link["rtt_ms"].values() for link in result["links"])
    assert result["hosts"] == ["node1", "node2", "node3", "node4"]
    header, *rows = result["table"]
    assert header.split() == ["node1", "node2", "node3", "node4"]
    assert [row.split()[0] for row in rows] == ["node1", "node2", "node3", "node4"]
    assert rows[0].split()[1:3] == ["\\", "up"] and rows[0].endswith("ms")
    assert result["summary"][0].startswith("node1 - node2: up, ")
    assert result["dot"].count(" -- ") == 6 and "style=dashed" not in result["dot"]
    assert result["matrix"]["node1"]["node2"]["status"] == "up"
    assert result["matrix"]["node1"]["node1"]["status"] == "self"


@pytest.mark.parametrize("name", FAULTS + ["path_drops_gre-udp_passes", "path_drops_gre-udp_dropped"])
def test_each_captured_fault_is_named_on_its_link_only(name):
    probes, plan, fault = captured(name)
    link = only_down(judged(probes, plan), tuple(fault["link"]), fault["cause"])
    assert link["text"] and link["fix"]


def test_path_drops_gre_says_protocol_47_and_the_cloud_rule():
    probes, plan, _fault = captured("path_drops_gre")
    link = judged(probes, plan)[("node2", "node4")]
    assert "something on the path drops IP protocol 47" in link["text"]
    assert "while underlay pings pass" in link["text"]
    assert 'on a cloud, a firewall rule allowing protocol 47 / "gre"' in link["fix"]
    # Captured before the UDP probe: nothing said of UDP.
    assert "UDP" not in link["text"] + link["fix"]


def test_path_drops_gre_where_udp_passes_offers_gre_in_udp_for_the_link():
    probes, plan, _fault = captured("path_drops_gre-udp_passes")
    link = judged(probes, plan)[("node2", "node4")]
    assert link["text"].endswith("while underlay pings pass: something on the path drops IP protocol 47")
    assert link["fix"] == (
        "allow IP protocol 47 between 198.51.100.4 and 203.0.113.2 on the path (a router's forwarding rules; on a "
        'cloud, a firewall rule allowing protocol 47 / "gre"), or carry this link\'s GRE in UDP, which this path passes '
        "(6 of 6 datagrams to udp/5555 arrived, both ways): gre_mesh_encap: fou for the link (in gre_mesh_links: "
        "{hosts: [node2, node4], encap: fou}), and run playbooks/site.yml"
    )


def test_path_drops_gre_where_udp_is_dropped_too_says_gre_in_udp_would_not_pass():
    probes, plan, _fault = captured("path_drops_gre-udp_dropped")
    link = judged(probes, plan)[("node2", "node4")]
    assert link["text"].endswith(
        "something on the path drops IP protocol 47, and UDP to port 5555 too (0 of 3 datagrams from node2 arrived at "
        "node4)"
    )
    assert link["fix"].endswith(
        "; GRE in UDP (gre_mesh_encap: fou) would not pass this path either, unless UDP to port 5555 is allowed too"
    )
    assert "gre_mesh_links" not in link["fix"]


def test_udp_one_way_only_is_no_way_for_gre_in_udp():
    probes, plan, _fault = captured("path_drops_gre-udp_passes")
    probes = copy.deepcopy(probes)
    tunnel(probes, "node2", "gre-node4")["udp"]["received"] = 0  # node4's datagrams did not arrive at node2
    link = judged(probes, plan)[("node2", "node4")]
    assert link["text"].endswith("and UDP to port 5555 too (0 of 3 datagrams from node4 arrived at node2)")
    assert "would not pass this path either" in link["fix"]


def test_the_udp_probe_tells_nothing_where_the_ends_probed_different_ports_or_nothing_was_sent():
    for change, ends in (
        ({"port": 6000}, ["node2"]),
        ({"sent": 0, "error": "Operation not permitted"}, ["node2", "node4"]),
    ):
        probes, plan, _fault = captured("path_drops_gre-udp_passes")
        probes = copy.deepcopy(probes)
        for host in ends:
            tunnel(probes, host, "gre-node4" if host == "node2" else "gre-node2")["udp"].update(change)
        link = only_down(judged(probes, plan), ("node2", "node4"), "path_drops_gre")
        assert "UDP" not in link["text"] + link["fix"], change


# --- links with GRE in UDP (encap): the UDP probe's real packets as the tunnel's ---------------------


def as_encap(probes: dict[str, t.Any], pair: tuple[str, str], kind: str = "fou") -> None:
    """The link's two ends planned with GRE in UDP to the probe's port, their capture what the probe counted of UDP
    (what gre_probe counts for such a tunnel), and no UDP probe of their own."""
    for host, peer in (pair, pair[::-1]):
        end = tunnel(probes, host, f"gre-{peer}")
        udp = end.pop("udp")
        end["planned"]["encap"] = {"type": kind, "dport": udp["port"]}
        end["capture"].update(sent=udp["sent"], received=udp["received"])
        end["capture"]["received_on"] = end["capture"]["sent_on"] if udp["received"] else []


def test_path_drops_udp():
    probes, plan, _fault = captured("path_drops_gre-udp_dropped")
    probes = copy.deepcopy(probes)
    as_encap(probes, ("node2", "node4"))
    link = only_down(judged(probes, plan), ("node2", "node4"), "path_drops_udp")
    assert link["text"] == (
        "GRE in UDP leaves node2 (3 packets to 198.51.100.4 udp/5555) but none arrives at node4 (gre-node2 received "
        "+0, a capture on its NICs saw none from 203.0.113.2), while underlay pings pass: something on the path drops "
        "UDP to port 5555"
    )
    assert link["fix"].startswith("allow UDP to port 5555 between 198.51.100.4 and 203.0.113.2 on the path")
    assert "IP protocol 47" not in link["text"] + link["fix"]


def test_an_encap_link_whose_udp_arrives_and_is_not_taken_names_the_fou_port():
    probes, plan, _fault = captured("path_drops_gre-udp_passes")
    probes = copy.deepcopy(probes)
    as_encap(probes, ("node2", "node4"), "gue")
    link = only_down(judged(probes, plan), ("node2", "node4"), "not_accepted")
    assert link["text"] == (
        "GRE in UDP (udp/5555) from 203.0.113.2 arrives on node4's eth1, but node4's gre-node2 takes none of it "
        "(received +0): node4 has no gue receive port 5555 (ip fou show), or no tunnel of the host matches its "
        "addresses or key"
    )


def test_an_encap_links_host_firewall_fix_opens_the_udp_port():
    probes, plan, _fault = captured("path_drops_gre-udp_passes")
    probes = copy.deepcopy(probes)
    as_encap(probes, ("node2", "node4"))
    rule = "-A INPUT -s 203.0.113.2/32 -p udp -m udp --dport 5555 -j DROP"
    tunnel(probes, "node4", "gre-node2")["firewall"] = [
        {"tool": "iptables-legacy", "table": "filter", "chain": "INPUT", "rule": rule, "packets": 3, "delta": 3}
    ]
    link = only_down(judged(probes, plan), ("node2", "node4"), "host_firewall")
    assert link["text"].startswith("node4's firewall drops node2's GRE in UDP (udp/5555): iptables-legacy filter INPUT")
    assert link["fix"] == (
        "allow UDP to port 5555 from 203.0.113.2 in node4's firewall before that rule "
        "(iptables -I INPUT -s 203.0.113.2 -p udp --dport 5555 -j ACCEPT)"
    )


def test_host_firewall_names_the_rule_and_its_counter():
    probes, plan, _fault = captured("host_firewall")
    link = judged(probes, plan)[("node3", "node4")]
    counted = tunnel(probes, "node4", "gre-node3")["firewall"][0]["delta"]
    assert link["text"] == (
        "node4's firewall drops node3's GRE: iptables-legacy filter INPUT rule '-A INPUT -s 203.0.113.3/32 -p gre -j DROP' "
        f"counted {counted} packets during the probe (GRE from 203.0.113.3 arrives on eth1, gre-node3 received +0)"
    )
    assert link["fix"] == (
        "allow IP protocol 47 from 203.0.113.3 in node4's firewall before that rule "
        "(iptables -I INPUT -s 203.0.113.3 -p 47 -j ACCEPT)"
    )


def test_rp_filter_names_the_sysctl_and_the_route_back():
    probes, plan, _fault = captured("rp_filter")
    link = judged(probes, plan)[("node1", "node4")]
    assert link["text"].startswith(
        "reverse-path filtering on node4 drops node1's GRE: net.ipv4.conf.eth1.rp_filter=1 (all=1) and the route back "
        "to 203.0.113.1 leaves via eth2, not eth1 (IPReversePathFilter +"
    )
    assert "rp_filter=2 (loose)" in link["fix"]


def test_endpoint_mismatch_names_the_wrong_remote_and_the_planned_one():
    probes, plan, _fault = captured("endpoint_mismatch")
    link = judged(probes, plan)[("node2", "node3")]
    assert link["text"] == "node2's gre-node3 has remote 203.0.113.99 where its peer is at 203.0.113.3"
    assert link["fix"].endswith("ip link set gre-node3 type gre local 203.0.113.2 remote 203.0.113.3")


def test_interface_down_and_mtu_black_hole_lines():
    probes, plan, _fault = captured("interface_down")
    link = judged(probes, plan)[("node1", "node3")]
    assert link["text"] == "node3's gre-node1 is down (ip link shows it without UP)"
    probes, plan, _fault = captured("mtu_black_hole")
    link = judged(probes, plan)[("node1", "node4")]
    assert link["text"].startswith(
        "MTU black hole: small pings pass, but full-size pings with DF from node1 through gre-node4"
    )
    assert "(1476 bytes, tunnel MTU 1476)" in link["text"]
    assert "gre_mesh_mtu" in link["fix"]


# --- the other causes, from captured evidence with one piece changed ------------------------------


def healthy() -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    probes, plan, _fault = captured("healthy")
    return copy.deepcopy(probes), plan


def fail_pings(evidence: dict[str, t.Any]) -> None:
    for result in evidence["pings"]["small"] + evidence["pings"]["full"]:
        result.update(received=0, up=False, rtt_ms=None)


def test_interface_missing():
    probes, plan = healthy()
    end = tunnel(probes, "node2", "gre-node4")
    end.update(exists=False, actual=None)
    fail_pings(end)
    fail_pings(tunnel(probes, "node4", "gre-node2"))
    link = only_down(judged(probes, plan), ("node2", "node4"), "interface_missing")
    assert link["text"] == "node2 has no interface gre-node4"


def test_interface_wrong_kind():
    probes, plan = healthy()
    end = tunnel(probes, "node1", "gre-node2")
    end["actual"]["kind"] = "gretap"
    fail_pings(end)
    link = only_down(judged(probes, plan), ("node1", "node2"), "interface_wrong_kind")
    assert link["text"] == "node1's gre-node2 is a gretap interface, not a gre tunnel"


def test_local_not_on_host():
    probes, plan = healthy()
    end = tunnel(probes, "node3", "gre-node4")
    end["actual"]["local"] = "203.0.113.33"
    end["local_on_host"] = False
    fail_pings(end)
    link = only_down(judged(probes, plan), ("node3", "node4"), "local_not_on_host")
    assert link["text"].startswith(
        "node3's gre-node4 sends from local 203.0.113.33, which is not an address of node3 (it has "
    )
    assert "203.0.113.3" in link["text"] and "gre_mesh_local" in link["fix"]


def test_local_and_remote_swapped():
    probes, plan = healthy()
    end = tunnel(probes, "node1", "gre-node3")
    end["actual"].update(local="203.0.113.3", remote="203.0.113.1")
    fail_pings(end)
    link = only_down(judged(probes, plan), ("node1", "node3"), "endpoint_mismatch")
    assert link["text"].startswith("node1's gre-node3 has local and remote swapped")


def test_key_mismatch():
    probes, plan = healthy()
    tunnel(probes, "node2", "gre-node3")["actual"].update(ikey="0.0.0.7", okey="0.0.0.7")
    fail_pings(tunnel(probes, "node2", "gre-node3"))
    link = only_down(judged(probes, plan), ("node2", "node3"), "key_mismatch")
    assert link["text"] == "node2's gre-node3 sends key 0.0.0.7 but node3's gre-node2 expects none"


def test_inner_subnets():
    probes, plan = healthy()
    end = tunnel(probes, "node1", "gre-node4")
    end["actual"]["addresses"] = ["10.0.0.41/30"]
    fail_pings(end)
    fail_pings(tunnel(probes, "node4", "gre-node1"))
    link = only_down(judged(probes, plan), ("node1", "node4"), "inner_subnets")
    assert (
        link["text"]
        == "inner addresses in different subnets: node1's gre-node4 has 10.0.0.41/30, node4's gre-node1 has 10.0.0.30/30"
    )
    assert link["fix"].endswith("(10.0.0.29/30 and 10.0.0.30/30)")


def test_underlay_unreachable():
    probes, _plan, _fault = captured("path_drops_gre")
    probes = copy.deepcopy(probes)
    plan = captured("path_drops_gre")[1]
    for host, interface in (("node2", "gre-node4"), ("node4", "gre-node2")):
        underlay = tunnel(probes, host, interface)["pings"]["underlay"]
        underlay.update(received=0, up=False, rtt_ms=None)
    link = only_down(judged(probes, plan), ("node2", "node4"), "underlay_unreachable")
    assert link["text"] in (
        "node4's underlay address 198.51.100.4 is unreachable from node2: underlay ping 0/3",
        "node2's underlay address 203.0.113.2 is unreachable from node4: underlay ping 0/3",
    )


def test_not_accepted_when_no_rule_counted_the_drop():
    probes, plan, _fault = captured("host_firewall")
    probes = copy.deepcopy(probes)
    tunnel(probes, "node4", "gre-node3")["firewall"] = []
    link = only_down(judged(probes, plan), ("node3", "node4"), "not_accepted")
    assert link["text"].startswith(
        "GRE from 203.0.113.3 arrives on node4's eth1, but node4's gre-node3 takes none of it"
    )


def test_not_sent():
    probes, plan, _fault = captured("path_drops_gre")
    probes = copy.deepcopy(probes)
    for host, interface in (("node2", "gre-node4"), ("node4", "gre-node2")):
        end = tunnel(probes, host, interface)
        end["capture"].update(sent=0, sent_on=[])
        end["pings"]["small"][0]["error"] = "Network is unreachable"
    link = only_down(judged(probes, plan), ("node2", "node4"), "not_sent")
    assert link["text"] == "node2 sends no GRE to 198.51.100.4 through gre-node4: Network is unreachable"


def test_inconclusive_when_the_probes_did_not_overlap():
    probes, plan, _fault = captured("path_drops_gre")
    probes = copy.deepcopy(probes)
    for key in ("started", "sent_until", "ended"):
        probes["node4"]["host"][key] += 30
    link = judged(probes, plan)[("node2", "node4")]
    assert link["cause"] == "inconclusive"
    assert "clocks" in link["fix"] and "forks" in link["fix"]


def test_not_checked_when_an_end_was_not_probed():
    probes, plan = healthy()
    del probes["node3"]
    for host in ("node1", "node2", "node4"):
        fail_pings(tunnel(probes, host, "gre-node3"))
    links = judged(probes, plan)
    for pair in (("node1", "node3"), ("node2", "node3"), ("node3", "node4")):
        assert links[pair]["cause"] == "not_checked"
        assert links[pair]["text"].startswith("node3 was not probed")
    assert links[("node1", "node2")]["status"] == "up"


def test_a_link_is_up_from_one_probed_end_when_its_pings_pass():
    probes, plan = healthy()
    del probes["node3"]
    links = judged(probes, plan)
    assert links[("node1", "node3")]["status"] == "up" and links[("node1", "node3")]["checked_from"] == ["node1"]


def test_no_reply_when_gre_flows_both_ways():
    probes, plan = healthy()
    fail_pings(tunnel(probes, "node1", "gre-node2"))
    link = only_down(judged(probes, plan), ("node1", "node2"), "no_reply")
    assert link["text"] == "GRE flows both ways, but node2 does not answer node1's pings to 10.0.0.10 through gre-node1"


def test_rp_filter_on_the_tunnel_itself():
    probes, plan = healthy()
    fail_pings(tunnel(probes, "node1", "gre-node2"))
    tunnel(probes, "node2", "gre-node1")["rp_filter_tunnel"].update(all=1, value=1, effective=1, route_back="eth1")
    link = only_down(judged(probes, plan), ("node1", "node2"), "rp_filter")
    assert "drops what comes through gre-node1" in link["text"]


def test_every_cause_is_tested_here():
    # ipsec_not_established: on evidence of the IPsec lab, in test_gre_diagnose_ipsec.py.
    here = pathlib.Path(__file__)
    source = here.read_text() + here.with_name("test_gre_diagnose_ipsec.py").read_text()
    for cause in CAUSES:
        assert f'"{cause}"' in source or f"test_{cause}" in source, cause


def test_the_picture_marks_a_down_link_red_and_dashed_with_its_cause():
    probes, plan, _fault = captured("rp_filter")
    dot = gre_diagnose(probes, plan)["dot"]
    (line,) = [line for line in dot.splitlines() if "style=dashed" in line]
    assert line.startswith('  "node1" -- "node4" [color="#d62728"')
    assert 'label="rp_filter"' in line and 'taillabel="10.0.0.29"' in line and 'headlabel="10.0.0.30"' in line


@pytest.mark.parametrize(
    ("probes", "plan", "message"),
    [
        ([], {"hosts": {}}, "gre_diagnose: the input must be a dict of probe results by host, not list"),
        ({}, {}, "gre_diagnose: plan must be the result of linuxnet.gre.gre_plan_check (with hosts)"),
        (
            {"node1": {"tunnels": [{}]}},
            {"hosts": {"node1": {"peers": [{"interface": "x", "peer": "node2"}]}}},
            "gre_diagnose: the evidence is not what gre_probe returns: KeyError('interface')",
        ),
    ],
)
def test_bad_input_is_a_filter_error(probes, plan, message):
    with pytest.raises(AnsibleFilterError) as caught:
        gre_diagnose(probes, plan)
    assert str(caught.value).startswith(message)


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"gre_diagnose": gre_diagnose}


def test_host_firewall_without_a_capture_rests_on_the_rules_counter():
    probes, plan, _fault = captured("host_firewall")
    probes = copy.deepcopy(probes)
    probes["node4"]["host"]["capture"] = {"available": False, "error": "cannot capture: Operation not permitted"}
    link = only_down(judged(probes, plan), ("node3", "node4"), "host_firewall")
    assert "(no capture was possible, gre-node3 received +0)" in link["text"]
