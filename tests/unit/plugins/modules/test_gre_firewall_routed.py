# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_firewall on routed sites (issue 16): the TCP MSS clamp and the forwarding openings, through main().

Replays fixtures/firewall/{nft,legacy}-routed*.json (fixtures/firewall/capture.py): ``nft-*`` from a
private network namespace with nftables' every family, ``legacy-*`` from the lab gateway gwa of
fixtures/firewall/routed.yml (iptables-legacy; the lab kernel's nf_tables has no ip/inet family).
Every captured run is also replayed whole by test_gre_firewall.py's test_every_captured_run_replays_exactly;
here, what the runs must show. That the clamp and the openings work on packets: fixtures/firewall/mss_lab.txt.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist
from ansible_collections.linuxnet.gre.plugins.modules import gre_firewall

from .conftest import Replay
from .test_gre_firewall import Runner, evidence, load

TUNNEL, TUNNEL2 = "gre-hosta", "gre-hostc"
FAR, FAR6, FAR2, OWN, OWN6 = (
    "198.51.100.64/26",
    "2001:db8:a::/64",
    "198.51.100.192/26",
    "203.0.113.64/26",
    "2001:db8:b::/64",
)
MSS_RULE = f'oifname "{TUNNEL}" tcp flags syn / syn,rst counter tcp option maxseg size set rt mtu'
IPT_MSS = f"-A LINUXNET-GRE-MSS -o {TUNNEL} -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"


@pytest.fixture(autouse=True)
def files_root(monkeypatch, tmp_path):
    """The files of persist=true under a directory of the test's (no systemd there: nothing is written)."""
    monkeypatch.setattr(persist.Files, "root", str(tmp_path))


@pytest.fixture
def firewall(seam) -> Runner:
    return Runner(seam)


def batch(firewall: Runner) -> list[dict[str, t.Any]]:
    return json.loads(firewall.host.stdin("nft"))["nftables"]


# --- nftables ------------------------------------------------------------------------------------------------------


def test_nft_a_routed_site_gets_the_clamp_chain_and_narrow_accepts_in_the_users_forward_chain(firewall):
    record, result = firewall.replay("nft-routed", 1)
    assert result["changed"] is True
    assert result["backends"] == ["nftables"]
    assert result["mss_clamp_backends"] == ["nftables"] and result["forward_backends"] == ["nftables"]
    assert result["forward_filtered_by"] == ["nftables: inet filter forward"]
    assert result["commands"][6:8] == [
        "nft add chain inet linuxnet_gre mss { type filter hook forward priority mangle; policy accept; }",
        f'nft add rule inet linuxnet_gre mss {MSS_RULE} comment "managed-by: linuxnet.gre mss {TUNNEL}"',
    ]
    forward = [c for c in result["commands"] if c.startswith("nft insert rule inet filter forward")]
    assert [c.split(" comment ")[0] for c in forward] == [
        f'nft insert rule inet filter forward iifname "{TUNNEL}" ip saddr {{ {FAR} }} '
        f"ip daddr {{ {FAR}, {OWN} }} counter accept",
        f'nft insert rule inet filter forward oifname "{TUNNEL}" ip daddr {{ {FAR} }} '
        f"ip saddr {{ {FAR}, {OWN} }} counter accept",
        f'nft insert rule inet filter forward iifname "{TUNNEL}" ip6 saddr {{ {FAR6} }} '
        f"ip6 daddr {{ {FAR6}, {OWN6} }} counter accept",
        f'nft insert rule inet filter forward oifname "{TUNNEL}" ip6 daddr {{ {FAR6} }} '
        f"ip6 saddr {{ {FAR6}, {OWN6} }} counter accept",
    ]
    # One transaction: the whole change is one nft --json batch.
    assert [argv for argv in firewall.host.calls if argv[:2] == ["nft", "--json"]][-1] == [
        "nft",
        "--json",
        "--file",
        "-",
    ]
    assert len(batch(firewall)) == len(result["commands"])
    # What the kernel then held: the mss chain; the user's forward chain with its own rule and policy intact.
    rules = "\n".join(evidence(record, "nft list ruleset"))
    assert "type filter hook forward priority mangle; policy accept;" in rules
    assert f"{MSS_RULE.replace('counter', 'counter packets 0 bytes 0')}" in rules
    assert "type filter hook forward priority filter; policy drop;" in rules
    assert "ct state established,related accept" in rules
    assert result["diff"]["after"]["nftables"]["mss_clamp"] == [TUNNEL]
    assert result["diff"]["after"]["nftables"]["accept_forward"] == [
        f"inet filter forward (ipv6 out {TUNNEL})",
        f"inet filter forward (ipv6 in {TUNNEL})",
        f"inet filter forward (ipv4 out {TUNNEL})",
        f"inet filter forward (ipv4 in {TUNNEL})",
    ]


def test_nft_check_mode_predicts_the_same_batch_and_diff_and_only_checks_it(firewall):
    _record, checked = firewall.replay("nft-routed", 0)
    assert firewall.host.calls[-1] == ["nft", "--check", "--json", "--file", "-"]
    checked_batch = batch(firewall)
    _record, applied = firewall.replay("nft-routed", 1)
    assert checked["changed"] is True and checked["commands"] == applied["commands"]
    assert checked["diff"] == applied["diff"] and checked_batch == batch(firewall)


def test_nft_a_second_run_changes_nothing_its_diff_is_the_first_runs_prediction_and_it_counts(firewall):
    _record, first = firewall.replay("nft-routed", 1)
    _record, again = firewall.replay("nft-routed", 2)
    assert again["changed"] is False and again["commands"] == []
    assert again["diff"]["before"] == first["diff"]["after"] == again["diff"]["after"]
    assert again["counters"] == {
        "nftables": {
            "ipv4": {"accepted": 0, "dropped": 0, "forwarded": 0},
            "ipv6": {"forwarded": 0},
            "mss_clamp": {"clamped": 0},
        }
    }
    assert ["nft", "--json", "--file", "-"] not in firewall.host.calls


def test_nft_a_hub_gets_both_tunnels_and_stale_accepts_are_replaced_in_the_same_batch(firewall):
    _record, result = firewall.replay("nft-routed", 3)
    deleted = [c for c in result["commands"] if c.startswith("nft delete rule inet filter forward")]
    inserted = [c for c in result["commands"] if c.startswith("nft insert rule inet filter forward")]
    assert len(deleted) == 4 and len(inserted) == 4
    assert f'iifname "{TUNNEL2}" ip saddr {{ {FAR2} }} ip daddr {{ {FAR}, {FAR2} }} counter accept' in inserted[2]
    assert f'oifname "{TUNNEL2}" ip daddr {{ {FAR2} }} ip saddr {{ {FAR}, {FAR2} }} counter accept' in inserted[3]
    assert result["diff"]["after"]["nftables"]["mss_clamp"] == [TUNNEL, TUNNEL2]
    assert firewall.host.calls.count(["nft", "--json", "--file", "-"]) == 1


def test_nft_routed_no_more_removes_clamp_and_accepts_and_keeps_the_gre_opening(firewall):
    record, result = firewall.replay("nft-routed", 4)
    assert (
        "nft add chain inet linuxnet_gre input { type filter hook input priority filter - 10; policy accept; }"
        in (result["commands"])
    )
    assert not any("mss" in c for c in result["commands"])
    assert sum(c.startswith("nft delete rule inet filter forward") for c in result["commands"]) == 4
    assert result["diff"]["after"] == {
        "nftables": {
            "table": "inet linuxnet_gre",
            "peers": {"ipv4": ["203.0.113.1"]},
            "accept_in": ["inet filter input (ipv4)"],
        }
    }
    rules = evidence(record, "nft list ruleset")
    assert not any("linuxnet.gre forward" in line or "maxseg" in line for line in rules)


def test_nft_nothing_filters_so_only_the_clamp_is_added_and_later_removed(firewall):
    record, result = firewall.replay("nft-routed-open", 0)
    assert result["commands"] == [
        "nft add table inet linuxnet_gre",
        "nft add chain inet linuxnet_gre mss { type filter hook forward priority mangle; policy accept; }",
        f'nft add rule inet linuxnet_gre mss {MSS_RULE} comment "managed-by: linuxnet.gre mss {TUNNEL}"',
    ]
    assert (
        result["backends"] == [] and result["forward_backends"] == [] and result["mss_clamp_backends"] == ["nftables"]
    )
    _record, again = firewall.replay("nft-routed-open", 1)
    assert again["changed"] is False
    _record, gone = firewall.replay("nft-routed-open", 2)
    assert gone["commands"] == ["nft delete table inet linuxnet_gre"] and gone["diff"]["after"] == {}


def test_the_clamp_rule_sent_is_the_one_nft_printed_back(firewall):
    """The JSON sent for the clamp is what nft --json lists afterwards (so the reader recognises its own rule)."""
    fixture = load("nft-routed-open")
    firewall.replay("nft-routed-open", 0)
    sent = [c["add"]["rule"] for c in batch(firewall) if "rule" in c.get("add", {})]
    listed = next(c for c in fixture["runs"][1]["calls"] if c["argv"] == ["nft", "--json", "list", "ruleset"])
    rules = [o["rule"] for o in json.loads(listed["stdout"])["nftables"] if "rule" in o]
    assert len(sent) == len(rules) == 1
    counter = {"counter": {"packets": 0, "bytes": 0}}
    assert [counter if e == {"counter": None} else e for e in sent[0]["expr"]][:1] == rules[0]["expr"][:1]
    assert (
        rules[0]["expr"][-1]
        == sent[0]["expr"][-1]
        == {"mangle": {"key": {"tcp option": {"name": "maxseg", "field": "size"}}, "value": {"rt": {"key": "mtu"}}}}
    )
    assert rules[0]["comment"] == f"managed-by: linuxnet.gre mss {TUNNEL}"


# --- iptables-legacy: the lab gateway ------------------------------------------------------------------------------


def test_legacy_one_restore_per_family_holds_filter_and_mangle_each_committed(firewall):
    record, result = firewall.replay("legacy-routed", 1)
    assert result["changed"] is True
    assert result["forward_filtered_by"] == ["iptables-legacy: FORWARD (ipv4)", "iptables-legacy: FORWARD (ipv6)"]
    restores = [argv for argv in firewall.host.calls if argv[0].endswith("-restore")]
    assert restores == [
        ["iptables-legacy-restore", "--wait", "--noflush"],
        ["ip6tables-legacy-restore", "--wait", "--noflush"],
    ]
    assert firewall.host.stdin("iptables-legacy-restore") == (
        "*filter\n-N LINUXNET-GRE\n-A LINUXNET-GRE -s 203.0.113.1/32 -j ACCEPT\n-A LINUXNET-GRE -j DROP\n"
        "-I INPUT 1 -p 47 -j LINUXNET-GRE\n"
        f"-N LINUXNET-GRE-TO\n-A LINUXNET-GRE-TO -d {FAR} -j ACCEPT\n-A LINUXNET-GRE-TO -d {OWN} -j ACCEPT\n"
        f"-N LINUXNET-GRE-FROM\n-A LINUXNET-GRE-FROM -s {FAR} -j ACCEPT\n-A LINUXNET-GRE-FROM -s {OWN} -j ACCEPT\n"
        f"-N LINUXNET-GRE-FWD\n-A LINUXNET-GRE-FWD -s {FAR} -i {TUNNEL} -g LINUXNET-GRE-TO\n"
        f"-A LINUXNET-GRE-FWD -d {FAR} -o {TUNNEL} -g LINUXNET-GRE-FROM\n-I FORWARD 1 -j LINUXNET-GRE-FWD\nCOMMIT\n"
        f"*mangle\n-N LINUXNET-GRE-MSS\n{IPT_MSS}\n-I FORWARD 1 -j LINUXNET-GRE-MSS\nCOMMIT\n"
    )
    # What the kernel then held, as iptables-save prints it: the user's rules and policies as they were.
    (saved4, _saved6) = [e["stdout"] for e in record["evidence"]]
    assert f"{IPT_MSS}\n" in saved4
    assert ":FORWARD DROP" in saved4
    lines = evidence(record, "iptables-legacy-save")
    assert [r for r in lines if r.startswith("-A FORWARD")] == [
        "-A FORWARD -j LINUXNET-GRE-MSS",  # mangle's FORWARD (the mangle table prints first)
        "-A FORWARD -j LINUXNET-GRE-FWD",
        "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]


def test_legacy_the_rules_are_written_as_iptables_save_prints_them_so_a_second_run_changes_nothing(firewall):
    _record, first = firewall.replay("legacy-routed", 1)
    _record, again = firewall.replay("legacy-routed", 2)
    assert again["changed"] is False and again["commands"] == []
    assert again["diff"]["before"] == first["diff"]["after"]
    assert again["counters"] == {
        "iptables-legacy": {
            "ipv4": {"accepted": 0, "dropped": 0, "forwarded": 0},
            "ipv6": {"forwarded": 0},
            "mss_clamp": {"clamped": 0},
        }
    }
    assert not any(argv[0].endswith("-restore") for argv in firewall.host.calls)


def test_legacy_check_mode_tests_the_same_restore_input(firewall):
    _record, checked = firewall.replay("legacy-routed", 0)
    tested = firewall.host.stdin("iptables-legacy-restore")
    assert ["iptables-legacy-restore", "--wait", "--noflush", "--test"] in firewall.host.calls
    _record, applied = firewall.replay("legacy-routed", 1)
    assert checked["commands"] == applied["commands"] and checked["diff"] == applied["diff"]
    assert tested == firewall.host.stdin("iptables-legacy-restore")


def test_legacy_a_hub_rewrites_the_chains_in_place_and_drops_the_unused_ipv6_openings(firewall):
    _record, result = firewall.replay("legacy-routed", 3)
    assert f"iptables-legacy -A LINUXNET-GRE-FWD -s {FAR2} -i {TUNNEL2} -g LINUXNET-GRE-TO" in result["commands"]
    assert f"iptables-legacy -A LINUXNET-GRE-TO -d {FAR2} -j ACCEPT" in result["commands"]
    assert [c for c in result["commands"] if c.startswith("ip6tables-legacy") and "mangle" not in c] == [
        "ip6tables-legacy -D FORWARD -j LINUXNET-GRE-FWD",
        "ip6tables-legacy -F LINUXNET-GRE-TO",
        "ip6tables-legacy -F LINUXNET-GRE-FROM",
        "ip6tables-legacy -F LINUXNET-GRE-FWD",
        "ip6tables-legacy -X LINUXNET-GRE-TO",
        "ip6tables-legacy -X LINUXNET-GRE-FROM",
        "ip6tables-legacy -X LINUXNET-GRE-FWD",
    ]


def test_legacy_routed_no_more_removes_everything_but_the_gre_opening_and_leaves_the_users_rules(firewall):
    record, result = firewall.replay("legacy-routed", 4)
    assert result["diff"]["after"] == {
        "iptables-legacy": {"ipv4": {"chain": True, "jumps": 1, "peers": ["203.0.113.1"]}}
    }
    lines = evidence(record, "iptables-legacy-save")
    assert not any("LINUXNET-GRE-" in line for line in lines)
    assert "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" in lines
    assert any(line.startswith(":FORWARD DROP") for line in lines)


def test_legacy_without_a_firewall_only_the_clamp_goes_in_the_mangle_table(firewall):
    _record, result = firewall.replay("legacy-routed-open", 0)
    assert result["commands"] == [
        "iptables-legacy -t mangle -N LINUXNET-GRE-MSS",
        f"iptables-legacy -t mangle {IPT_MSS}",
        "iptables-legacy -t mangle -I FORWARD 1 -j LINUXNET-GRE-MSS",
        "ip6tables-legacy -t mangle -N LINUXNET-GRE-MSS",
        f"ip6tables-legacy -t mangle {IPT_MSS}",
        "ip6tables-legacy -t mangle -I FORWARD 1 -j LINUXNET-GRE-MSS",
    ]
    assert firewall.host.stdin("iptables-legacy-restore") == (
        f"*mangle\n-N LINUXNET-GRE-MSS\n{IPT_MSS}\n-I FORWARD 1 -j LINUXNET-GRE-MSS\nCOMMIT\n"
    )
    assert result["backends"] == [] and result["forward_backends"] == []
    _record, gone = firewall.replay("legacy-routed-open", 2)
    assert gone["commands"][:3] == [
        "iptables-legacy -t mangle -D FORWARD -j LINUXNET-GRE-MSS",
        "iptables-legacy -t mangle -F LINUXNET-GRE-MSS",
        "iptables-legacy -t mangle -X LINUXNET-GRE-MSS",
    ]


# --- bad input: refused before any command ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (
            {"forward": [{"interface": TUNNEL, "networks": ["198.51.100.65/26"]}]},
            "forward: interface gre-hosta: networks: 198.51.100.65/26 has host bits set; the network is 198.51.100.64/26",
        ),
        (
            {"forward": [{"interface": TUNNEL, "networks": ["lan-b"]}]},
            "forward: interface gre-hosta: networks: 'lan-b' is not a network (address/prefix length)",
        ),
        (
            {"local_networks": ["203.0.113.65/26"]},
            "local_networks: 203.0.113.65/26 has host bits set; the network is 203.0.113.64/26",
        ),
        (
            {"mss_clamp": ["gre hosta"]},
            "mss_clamp: 'gre hosta' is not an interface name (1 to 15 letters, digits, '_', '.', '@', '+' or '-', "
            "not starting with one of the last four)",
        ),
        (
            {"forward": [{"interface": "a-name-of-16-chr", "networks": [FAR]}]},
            "forward: 'a-name-of-16-chr' is not an interface name (1 to 15 letters, digits, '_', '.', '@', '+' or '-', "
            "not starting with one of the last four)",
        ),
    ],
)
def test_bad_input_fails_naming_the_option_before_any_command(firewall, args, msg):
    firewall.host = firewall.seam.use(Replay())
    result = firewall.seam.main(gre_firewall.main, dict({"peers": ["203.0.113.1"]}, **args))
    assert result["failed"] is True
    assert result["msg"] == msg
    assert firewall.host.calls == []


def test_a_routed_host_without_any_packet_filter_tool_fails_saying_how_to_go_on(firewall):
    """No nft, no iptables (which finds neither): nothing runs, and the clamp cannot be silently skipped."""
    tools = load("nft-routed")["which"]  # what the namespace had: every tool; here none of them is found
    firewall.host = firewall.seam.use(Replay(which=dict.fromkeys(tools, False)))
    result = firewall.seam.main(gre_firewall.main, {"mss_clamp": [TUNNEL], "only_if_filtered": True})
    assert result["failed"] is True
    assert result["msg"] == (
        "mss_clamp: no packet filter tool for backend=auto works on this host: nftables: nft is not installed; "
        "iptables-legacy-save/-restore: not installed: install nftables or iptables (RHEL family: iptables-nft, "
        "or iptables-legacy from EPEL), or turn the clamp off (the role's gre_mesh_mss_clamp: false)"
    )
    assert firewall.host.calls == []


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (
            {},
            "no packet filter tool for backend=auto works on this host: nftables: nft is not installed; "
            "iptables-legacy-save/-restore: not installed: install nftables or iptables (RHEL family: "
            "iptables-nft, or iptables-legacy from EPEL)",
        ),
        (
            {"backend": "nftables"},
            "backend=nftables, but nftables does not work on this host: nft is not installed: install nftables",
        ),
    ],
)
def test_a_host_without_the_tool_its_filtering_needs_is_told_the_package_before_any_change(firewall, args, msg):
    """gre_mesh_firewall: true on a host with neither nft nor iptables: the package to install, no command run."""
    tools = load("nft-routed")["which"]
    firewall.host = firewall.seam.use(Replay(which=dict.fromkeys(tools, False)))
    result = firewall.seam.main(gre_firewall.main, {"peers": ["203.0.113.1"], **args})
    assert result["failed"] is True
    assert result["msg"] == msg
    assert firewall.host.calls == []


def test_ipv6_peers_without_ip6tables_are_told_the_package_before_any_change(firewall):
    """iptables-legacy for IPv4 only (ip6tables tools missing), an IPv6 peer: the reads, and no change."""
    fixture = load("legacy-default-drop")
    which = {tool: tool.startswith("iptables-legacy") for tool in fixture["which"]}
    firewall.host = firewall.seam.use(Replay(fixture["runs"][1]["calls"], which=which))
    result = firewall.seam.main(gre_firewall.main, {"peers": ["2001:db8:1::1"], "backend": "iptables"})
    assert result["failed"] is True
    assert result["msg"] == (
        "iptables-legacy: ip6tables-legacy-restore not installed, needed for the peers: install iptables (RHEL "
        "family: iptables-nft, or iptables-legacy from EPEL)"
    )
    assert firewall.host.calls == [["iptables-legacy-save", "--counters"]]
