# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_firewall's openings for GRE in UDP (issue 18, encap_peers), through main().

Replays fixtures/firewall/{nft,legacy}-encap.json (fixtures/firewall/capture.py), both from a private network
namespace on the development machine (kernel 6.18) with Debian 12's nft 1.0.6 and iptables 1.8.9: ``nft-*``
against an nftables firewall, ``no-nft-*`` against an iptables-legacy one with nft hidden. Each run is also
replayed whole by test_gre_firewall.py's test_every_captured_run_replays_exactly; here, what the runs must show.
firewalld's part is checked on its captured policy (fixtures/firewall/firewalld.json): firewalld with UDP rich
rules was not run (its rule text is firewalld's own Rich_Port form, ``port port="P" protocol="udp"``).
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewalld
from ansible_collections.linuxnet.gre.plugins.module_utils._host import Host
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist

from .replay import Replay
from .test_gre_firewall import Runner, evidence, load

PEER, SECOND, PEER6 = "203.0.113.1", "203.0.113.9", "2001:db8:1::1"
RULE = f'rule family="ipv4" source address="{PEER}" protocol value="gre" accept'


@pytest.fixture(autouse=True)
def files_root(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    monkeypatch.setattr(persist.Files, "root", str(tmp_path))


@pytest.fixture
def firewall(seam: t.Any) -> Runner:
    return Runner(seam)


# --- nftables ------------------------------------------------------------------------------------------------------


def test_nft_the_port_is_let_in_from_its_peer_and_plain_gre_from_the_other(firewall: Runner) -> None:
    record, result = firewall.replay("nft-encap", 1)
    assert result["changed"] is True
    assert result["backends"] == ["nftables"]
    rules = evidence(record, "nft list ruleset")
    table = rules[rules.index("table inet linuxnet_gre {") :]
    assert "\t\tip saddr @udp4_5555 udp dport 5555 counter packets 0 bytes 0 accept comment " in "\n".join(table)
    assert [line.strip() for line in table if "elements" in line] == [
        f"elements = {{ {SECOND} }}",
        f"elements = {{ {PEER} }}",
    ]
    # The user's default-drop chain: GRE and the port pass it (linuxnet_gre drops what no peer sent).
    assert rules[3:5] == [
        '\t\tmeta nfproto ipv4 udp dport 5555 counter packets 0 bytes 0 accept comment "managed-by: linuxnet.gre '
        'ipv4 udp 5555"',
        '\t\tip protocol gre counter packets 0 bytes 0 accept comment "managed-by: linuxnet.gre ipv4"',
    ]
    assert result["diff"]["after"]["nftables"]["encap_peers"] == {"ipv4": [f"{PEER} udp/5555"]}


def test_nft_udp_from_no_peer_is_dropped_and_counted_and_a_second_run_changes_nothing(firewall: Runner) -> None:
    record, result = firewall.replay("nft-encap", 2)
    assert result["changed"] is False
    assert result["commands"] == []
    assert result["counters"] == {
        "nftables": {"ipv4": {"accepted": 0, "dropped": 0, "udp_accepted": 0, "udp_dropped": 3}}
    }
    assert any(
        "meta nfproto ipv4 udp dport 5555 counter packets 3 " in line for line in evidence(record, "nft list ruleset")
    )


def test_nft_a_second_port_and_an_ipv6_peer_get_sets_and_rules_of_their_own(firewall: Runner) -> None:
    record, result = firewall.replay("nft-encap", 3)
    assert result["diff"]["after"]["nftables"]["encap_peers"] == {
        "ipv4": [f"{PEER} udp/5555", f"{SECOND} udp/6000"],
        "ipv6": [f"{PEER6} udp/5555"],
    }
    assert result["diff"]["after"]["nftables"]["peers"] == {}
    rules = evidence(record, "nft list ruleset")
    assert "set peers4 {" not in "\n".join(rules)
    assert [line.strip().split(" counter")[0] for line in rules if "linuxnet.gre ipv" in line and "udp" in line][
        :2
    ] == [
        "meta nfproto ipv6 udp dport 5555",
        "meta nfproto ipv4 udp dport { 5555, 6000 }",
    ]


def test_nft_back_to_plain_gre_and_then_nothing(firewall: Runner) -> None:
    record, _result = firewall.replay("nft-encap", 4)
    text = "\n".join(evidence(record, "nft list ruleset"))
    assert "udp" not in text and "set peers4 {" in text
    record, _result = firewall.replay("nft-encap", 5)
    assert "linuxnet" not in "\n".join(evidence(record, "nft list ruleset"))


# --- iptables-legacy -----------------------------------------------------------------------------------------------


def test_legacy_a_chain_of_its_own_jumped_to_once_per_port(firewall: Runner) -> None:
    record, result = firewall.replay("no-nft-encap", 1)
    assert result["backends"] == ["iptables-legacy"]
    assert result["commands"] == [
        "iptables-legacy -N LINUXNET-GRE",
        f"iptables-legacy -A LINUXNET-GRE -s {SECOND}/32 -j ACCEPT",
        "iptables-legacy -A LINUXNET-GRE -j DROP",
        "iptables-legacy -I INPUT 1 -p 47 -j LINUXNET-GRE",
        "iptables-legacy -N LINUXNET-GRE-UDP",
        f"iptables-legacy -A LINUXNET-GRE-UDP -s {PEER}/32 -p udp -m udp --dport 5555 -j ACCEPT",
        "iptables-legacy -A LINUXNET-GRE-UDP -j DROP",
        "iptables-legacy -I INPUT 1 -p udp -m udp --dport 5555 -j LINUXNET-GRE-UDP",
    ]
    rules = [line for line in evidence(record, "iptables-legacy-save") if line.startswith("-A")]
    # As iptables-save prints them: what the module wrote, so that the next run finds them equal.
    assert rules == [
        "-A INPUT -p udp -m udp --dport 5555 -j LINUXNET-GRE-UDP",
        "-A INPUT -p gre -j LINUXNET-GRE",
        "-A INPUT -i lo -j ACCEPT",
        f"-A LINUXNET-GRE -s {SECOND}/32 -j ACCEPT",
        "-A LINUXNET-GRE -j DROP",
        f"-A LINUXNET-GRE-UDP -s {PEER}/32 -p udp -m udp --dport 5555 -j ACCEPT",
        "-A LINUXNET-GRE-UDP -j DROP",
    ]


def test_legacy_udp_from_no_peer_is_dropped_and_counted_and_a_second_run_changes_nothing(firewall: Runner) -> None:
    _record, result = firewall.replay("no-nft-encap", 2)
    assert result["changed"] is False
    assert result["counters"] == {
        "iptables-legacy": {"ipv4": {"accepted": 0, "dropped": 0, "udp_accepted": 0, "udp_dropped": 3}}
    }
    # Our own jumps do not make INPUT look filtered by someone else: only its policy and the user's lo rule do.
    assert result["filtered_by"] == ["iptables-legacy: INPUT (ipv4)", "iptables-legacy: INPUT (ipv6)"]


def test_legacy_a_second_port_and_an_ipv6_peer_then_back_to_plain_gre_then_nothing(firewall: Runner) -> None:
    record, result = firewall.replay("no-nft-encap", 3)
    assert result["diff"]["after"]["iptables-legacy"] == {
        "ipv4": {"encap_peers": {"chain": True, "jumps": 2, "peers": [f"{PEER} udp/5555", f"{SECOND} udp/6000"]}},
        "ipv6": {"encap_peers": {"chain": True, "jumps": 1, "peers": [f"{PEER6} udp/5555"]}},
    }
    assert [line for line in evidence(record, "ip6tables-legacy-save") if line.startswith("-A")] == [
        "-A INPUT -p udp -m udp --dport 5555 -j LINUXNET-GRE-UDP",
        f"-A LINUXNET-GRE-UDP -s {PEER6}/128 -p udp -m udp --dport 5555 -j ACCEPT",
        "-A LINUXNET-GRE-UDP -j DROP",
    ]
    record, _result = firewall.replay("no-nft-encap", 4)
    assert "LINUXNET-GRE-UDP" not in "\n".join(evidence(record, "iptables-legacy-save"))
    assert "LINUXNET-GRE-UDP" not in "\n".join(evidence(record, "ip6tables-legacy-save"))
    record, _result = firewall.replay("no-nft-encap", 5)
    assert "LINUXNET" not in "\n".join(evidence(record, "iptables-legacy-save"))


# --- firewalld -----------------------------------------------------------------------------------------------------


def test_firewalld_adds_one_rich_rule_per_peer_and_port_to_its_captured_policy(seam: t.Any) -> None:
    """The policy as firewalld 1.3.3 printed it with one GRE peer (firewalld.json, run 2): the port's rule is added
    in both configurations, without a reload; the GRE peer's rule stays."""
    fixture = load("firewalld")
    reads = [call for call in fixture["runs"][2]["calls"] if call.get("argv", [""])[0] == "firewall-cmd"]
    seam.use(Replay(reads, ordered=False, which=fixture["which"]))
    firewalld = _firewalld.Firewalld(Host.__new__(Host))  # its calls go to the replay (the seam)
    firewalld.read()
    rule = 'rule family="ipv4" source address="198.51.100.1" port port="5555" protocol="udp" accept'
    assert firewalld.plan([PEER], [("198.51.100.1", 5555)]) == [
        ["firewall-cmd", "--permanent", "--policy=linuxnet-gre", f"--add-rich-rule={rule}"],
        ["firewall-cmd", "--policy=linuxnet-gre", f"--add-rich-rule={rule}"],
    ]
    assert _firewalld.expected_state([PEER], [("198.51.100.1", 5555)]) == {
        "policy": "linuxnet-gre",
        "peers": {"ipv4": [PEER]},
        "encap_peers": {"ipv4": ["198.51.100.1 udp/5555"]},
    }
    # With no peer of either kind left, the policy goes.
    assert firewalld.plan([], []) == [
        ["firewall-cmd", "--permanent", "--delete-policy=linuxnet-gre"],
        ["firewall-cmd", "--policy=linuxnet-gre", f"--remove-rich-rule={RULE}"],
    ]
