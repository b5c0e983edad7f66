# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole gre_firewall module through main(), its commands answered from real-kernel captures.

fixtures/firewall/*.json were written by fixtures/firewall/capture.py, which ran the module's logic
on a lab guest (iptables-legacy; nft installed but without the ip/inet families, as in molecule)
and in a network namespace of the development machine (nftables with every family), recording
every command with its answer, then the rules as nft or iptables-save printed them. Here each run
is replayed: the module must send exactly the recorded commands, in order, and gets the recorded
answers.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist
from ansible_collections.linuxnet.gre.plugins.modules import gre_firewall

from .conftest import FIXTURES, Replay, Seam
from .conftest import load as load_fixture

NAMES = sorted(p.stem for p in (FIXTURES / "firewall").glob("*.json"))
PEER = "203.0.113.1"
JUMP = "-A INPUT -p gre -j LINUXNET-GRE"
# The rules molecule/firewall's prepare-like setup gave the guest, as iptables-save prints them.
USER_RULES = [
    "-A INPUT -i lo -j ACCEPT",
    "-A INPUT -i eth0 -j ACCEPT",
    "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT",
]


def load(name: str) -> dict[str, t.Any]:
    return load_fixture(f"firewall/{name}")


def evidence(run: dict[str, t.Any], command: str) -> list[str]:
    """What a command printed after a captured run (the rules, as the tools print them), without comments."""
    (step,) = [e for e in run["evidence"] if e["sh"] == command]
    return [line for line in step["stdout"].splitlines() if line and not line.startswith("#")]


class Runner:
    """gre_firewall's main() replaying a captured conversation: the recorded calls, in order, each once."""

    def __init__(self, seam: Seam) -> None:
        self.seam = seam
        self.host = Replay()

    def replay(self, name: str, index: int) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
        """Run main() as run ``index`` of fixture ``name`` was captured; (its record, main()'s result)."""
        fixture = load(name)
        record = fixture["runs"][index]
        result = self.main(fixture, record["calls"], record["params"], record["check_mode"])
        self.host.assert_done()
        return record, result

    def main(
        self, fixture: dict[str, t.Any], calls: list[dict[str, t.Any]], args: dict[str, t.Any], check_mode: bool
    ) -> dict[str, t.Any]:
        self.host = self.seam.use(Replay(calls, ordered=True, which=fixture["which"]))
        return self.seam.main(gre_firewall.main, args, check_mode=check_mode, diff=True)


@pytest.fixture(autouse=True)
def files_root(monkeypatch, tmp_path):
    """The files of persist=true under a directory of the test's (no systemd there: nothing is written)."""
    monkeypatch.setattr(persist.Files, "root", str(tmp_path))


@pytest.fixture
def firewall(seam: Seam) -> Runner:
    return Runner(seam)


RUNS = [(name, index) for name in NAMES for index in range(len(load(name)["runs"]))]


@pytest.mark.parametrize(("name", "index"), RUNS, ids=[f"{n}-{i}" for n, i in RUNS])
def test_every_captured_run_replays_exactly(firewall, name, index):
    """Same commands, same answers, same result as on the real kernel."""
    record, result = firewall.replay(name, index)
    if "error" in record:
        assert result["failed"] is True
        assert result["msg"] == record["error"]["msg"]
    else:
        for key in ("changed", "backends", "filtered_by", "commands", "counters", "diff"):
            assert result[key] == record["result"][key], key


# --- iptables-legacy: the lab kernel, as in molecule/firewall ---------------------------------------------------


def test_on_the_lab_kernel_nft_is_probed_without_a_change_and_found_unusable(firewall):
    record, _result = firewall.replay("legacy-open", 0)
    probe = record["calls"][0]
    assert probe["argv"] == ["nft", "--check", "add", "table", "inet", "linuxnet_gre"]
    assert probe["rc"] != 0 and "Operation not supported" in probe["stderr"]
    assert ["nft", "--json", "list", "ruleset"] not in firewall.host.calls


def test_nothing_filters_so_only_if_filtered_does_nothing(firewall):
    _record, result = firewall.replay("legacy-open", 0)
    assert result["changed"] is False
    assert result["backends"] == [] and result["filtered_by"] == [] and result["commands"] == []
    assert [argv[0] for argv in firewall.host.calls] == ["nft", "iptables-legacy-save", "ip6tables-legacy-save"]


def test_a_default_drop_input_gets_the_chain_and_one_jump_at_the_top(firewall):
    record, result = firewall.replay("legacy-default-drop", 1)
    assert result["changed"] is True
    assert result["backends"] == ["iptables-legacy"]
    assert result["filtered_by"] == ["iptables-legacy: INPUT (ipv4)"]
    assert result["commands"] == [
        "iptables-legacy -N LINUXNET-GRE",
        f"iptables-legacy -A LINUXNET-GRE -s {PEER}/32 -j ACCEPT",
        "iptables-legacy -A LINUXNET-GRE -j DROP",
        "iptables-legacy -I INPUT 1 -p 47 -j LINUXNET-GRE",
    ]
    assert firewall.host.calls[-1] == ["iptables-legacy-restore", "--wait", "--noflush"]
    assert firewall.host.stdin("iptables-legacy-restore") == (
        "*filter\n-N LINUXNET-GRE\n"
        f"-A LINUXNET-GRE -s {PEER}/32 -j ACCEPT\n-A LINUXNET-GRE -j DROP\n"
        "-I INPUT 1 -p 47 -j LINUXNET-GRE\nCOMMIT\n"
    )
    # What the kernel then held: the jump first, the user's rules untouched after it.
    rules = evidence(record, "iptables-legacy-save")
    assert any(r.startswith(":INPUT DROP ") for r in rules)
    assert [r for r in rules if r.startswith("-A INPUT")] == [JUMP, *USER_RULES]
    assert [r for r in rules if r.startswith("-A LINUXNET-GRE")] == [
        f"-A LINUXNET-GRE -s {PEER}/32 -j ACCEPT",
        "-A LINUXNET-GRE -j DROP",
    ]


def test_check_mode_predicts_the_same_commands_and_only_tests_them(firewall):
    _record, checked = firewall.replay("legacy-default-drop", 0)
    argv = firewall.host.calls
    _record, applied = firewall.replay("legacy-default-drop", 1)
    assert checked["changed"] is True and checked["commands"] == applied["commands"]
    assert checked["diff"] == applied["diff"]
    assert argv[-1] == ["iptables-legacy-restore", "--wait", "--noflush", "--test"]
    assert load("legacy-default-drop")["runs"][0]["evidence"][0]["stdout"].count("LINUXNET-GRE") == 0


def test_a_second_run_reads_and_changes_nothing_and_reports_the_counters(firewall):
    record, result = firewall.replay("legacy-default-drop", 2)
    assert "SOCK_RAW, 47" in record["before"]["sh"]  # three GRE packets from 127.0.0.1 came first
    assert result["changed"] is False and result["commands"] == []
    assert not any(argv[0].endswith("-restore") for argv in firewall.host.calls)
    assert result["counters"] == {"iptables-legacy": {"ipv4": {"accepted": 0, "dropped": 3}}}
    assert result["diff"]["before"] == result["diff"]["after"]


def test_new_peers_rewrite_the_chain_and_an_ipv6_peer_brings_ip6tables_in(firewall):
    record, result = firewall.replay("legacy-default-drop", 3)
    assert record["params"]["peers"] == [PEER, "203.0.113.9", "2001:db8:1::1", PEER]  # a duplicate, ignored
    assert result["commands"] == [
        "iptables-legacy -F LINUXNET-GRE",
        f"iptables-legacy -A LINUXNET-GRE -s {PEER}/32 -j ACCEPT",
        "iptables-legacy -A LINUXNET-GRE -s 203.0.113.9/32 -j ACCEPT",
        "iptables-legacy -A LINUXNET-GRE -j DROP",
        "ip6tables-legacy -N LINUXNET-GRE",
        "ip6tables-legacy -A LINUXNET-GRE -s 2001:db8:1::1/128 -j ACCEPT",
        "ip6tables-legacy -A LINUXNET-GRE -j DROP",
        "ip6tables-legacy -I INPUT 1 -p 47 -j LINUXNET-GRE",
    ]
    assert [argv[0] for argv in firewall.host.calls][-2:] == ["iptables-legacy-restore", "ip6tables-legacy-restore"]
    assert [r for r in evidence(record, "iptables-legacy-save") if r.startswith("-A INPUT")].count(JUMP) == 1


def test_no_peers_left_removes_the_jumps_and_chains_and_leaves_the_users_rules(firewall):
    record, result = firewall.replay("legacy-default-drop", 4)
    assert result["changed"] is True and result["backends"] == []
    assert result["commands"] == [
        "iptables-legacy -D INPUT -p 47 -j LINUXNET-GRE",
        "iptables-legacy -F LINUXNET-GRE",
        "iptables-legacy -X LINUXNET-GRE",
        "ip6tables-legacy -D INPUT -p 47 -j LINUXNET-GRE",
        "ip6tables-legacy -F LINUXNET-GRE",
        "ip6tables-legacy -X LINUXNET-GRE",
    ]
    rules = evidence(record, "iptables-legacy-save")
    assert [r for r in rules if r.startswith("-A ")] == USER_RULES
    assert not any("LINUXNET-GRE" in line for line in rules + evidence(record, "ip6tables-legacy-save"))


def test_drift_is_fixed_stale_peer_replaced_and_one_jump_left_on_top(firewall):
    record, result = firewall.replay("legacy-drift", 0)
    assert result["commands"] == [
        "iptables-legacy -F LINUXNET-GRE",
        f"iptables-legacy -A LINUXNET-GRE -s {PEER}/32 -j ACCEPT",
        "iptables-legacy -A LINUXNET-GRE -j DROP",
        "iptables-legacy -D INPUT -p 47 -j LINUXNET-GRE",
        "iptables-legacy -D INPUT -p 47 -j LINUXNET-GRE",
        "iptables-legacy -I INPUT 1 -p 47 -j LINUXNET-GRE",
    ]
    assert result["diff"]["before"] == {
        "iptables-legacy": {"ipv4": {"chain": True, "jumps": 2, "peers": ["198.51.100.99"]}}
    }
    inputs = [r for r in evidence(record, "iptables-legacy-save") if r.startswith("-A INPUT")]
    assert inputs == [JUMP, "-A INPUT -i eth0 -j ACCEPT"]


def test_a_refused_restore_fails_naming_the_line_and_changes_nothing(firewall):
    record, result = firewall.replay("legacy-restore-fails", 0)
    assert result["failed"] is True
    assert result["msg"] == (
        "iptables-legacy-restore --wait --noflush failed: iptables-legacy -X LINUXNET-GRE: iptables-restore: line 3 failed"
    )
    assert result["stdin"] == ["-F LINUXNET-GRE", "-X LINUXNET-GRE"]
    # One commit: the -F of line 2 did not happen either.
    assert "-A LINUXNET-GRE -j DROP" in evidence(record, "iptables-legacy-save")


def test_state_absent_removes_and_forced_works_without_a_firewall(firewall):
    _record, forced = firewall.replay("legacy-open", 2)
    assert forced["backends"] == ["iptables-legacy"] and forced["filtered_by"] == []
    record, removed = firewall.replay("legacy-open", 3)
    assert removed["changed"] is True and removed["backends"] == []
    assert not any("LINUXNET-GRE" in line for line in evidence(record, "iptables-legacy-save"))


def test_backend_nftables_fails_on_the_lab_kernel_with_nfts_own_words(firewall):
    fixture = load("legacy-open")
    probe = fixture["runs"][0]["calls"][:3]  # the probe and the two reads
    result = firewall.main(fixture, probe, {"peers": [PEER], "backend": "nftables"}, check_mode=False)
    assert result["failed"] is True
    assert result["msg"].startswith("backend=nftables, but nftables does not work on this host: Error: ")
    assert "Operation not supported" in result["msg"]


def test_bad_peers_fail_before_any_command(firewall):
    result = firewall.main(load("legacy-open"), [], {"peers": [PEER, "hostb", "10.0.0.0/30"]}, check_mode=False)
    assert result["failed"] is True
    assert result["msg"] == "peers: not an IP address: hostb, 10.0.0.0/30"
    assert firewall.host.calls == []


# --- nftables: a network namespace on the development machine --------------------------------------------------


def test_an_nft_firewall_gets_the_table_of_its_own_and_one_accept_in_its_chain(firewall):
    record, result = firewall.replay("nft-inet-drop", 1)
    assert result["backends"] == ["nftables"]
    assert result["filtered_by"] == ["nftables: inet filter input"]
    assert result["commands"][-1] == (
        'nft insert rule inet filter input ip protocol gre counter accept comment "managed-by: linuxnet.gre ipv4"'
    )
    batch = json.loads(firewall.host.stdin("nft"))["nftables"]
    assert firewall.host.calls[-1] == ["nft", "--json", "--file", "-"]
    assert batch[-1] == {
        "insert": {
            "rule": {
                "family": "inet",
                "table": "filter",
                "chain": "input",
                "expr": [
                    {
                        "match": {
                            "op": "==",
                            "left": {"payload": {"protocol": "ip", "field": "protocol"}},
                            "right": "gre",
                        }
                    },
                    {"counter": None},
                    {"accept": None},
                ],
                "comment": "managed-by: linuxnet.gre ipv4",
            }
        }
    }
    ruleset = "\n".join(evidence(record, "nft list ruleset"))
    assert "type filter hook input priority filter - 10; policy accept;" in ruleset
    assert "elements = { 203.0.113.1 }" in ruleset
    assert 'ip protocol gre counter packets 0 bytes 0 drop comment "managed-by: linuxnet.gre ipv4 others"' in ruleset
    # The user's chain: this module's accept on top, the user's two rules and policy as they were.
    user = evidence(record, "nft list ruleset")[1:6]
    assert [line.strip() for line in user] == [
        "chain input {",
        "type filter hook input priority filter; policy drop;",
        'ip protocol gre counter packets 0 bytes 0 accept comment "managed-by: linuxnet.gre ipv4"',
        "ct state established,related accept",
        'iifname "lo" accept',
    ]


def test_nft_check_mode_sends_the_batch_with_check_only(firewall):
    record, result = firewall.replay("nft-inet-drop", 0)
    assert result["changed"] is True
    assert firewall.host.calls[-1] == ["nft", "--check", "--json", "--file", "-"]
    assert "linuxnet_gre" not in "\n".join(evidence(record, "nft list ruleset"))


def test_nft_counts_and_stays_unchanged(firewall):
    _record, result = firewall.replay("nft-inet-drop", 2)
    assert result["changed"] is False and result["commands"] == []
    assert result["counters"] == {"nftables": {"ipv4": {"accepted": 0, "dropped": 3}}}


def test_nft_new_peers_rebuild_the_table_in_one_transaction_and_ipv6_gets_its_accept(firewall):
    record, result = firewall.replay("nft-inet-drop", 3)
    assert result["commands"][0] == "nft delete table inet linuxnet_gre"
    assert "nft add element inet linuxnet_gre peers4 { 203.0.113.1, 203.0.113.9 }" in result["commands"]
    assert "nft add element inet linuxnet_gre peers6 { 2001:db8:1::1 }" in result["commands"]
    assert result["commands"][-1] == (
        "nft insert rule inet filter input meta nfproto ipv6 meta l4proto gre counter accept "
        'comment "managed-by: linuxnet.gre ipv6"'
    )
    assert [argv for argv in firewall.host.calls if argv[0] == "nft"][-1] == ["nft", "--json", "--file", "-"]
    assert result["diff"]["after"]["nftables"]["accept_in"] == ["inet filter input (ipv4)", "inet filter input (ipv6)"]


def test_nft_no_peers_left_removes_the_table_and_the_accepts(firewall):
    record, result = firewall.replay("nft-inet-drop", 4)
    assert result["commands"][0] == "nft delete table inet linuxnet_gre"
    assert all(c.startswith("nft delete rule inet filter input handle ") for c in result["commands"][1:])
    assert len(result["commands"]) == 3
    assert [line.strip() for line in evidence(record, "nft list ruleset")] == [
        "table inet filter {",
        "chain input {",
        "type filter hook input priority filter; policy drop;",
        "ct state established,related accept",
        'iifname "lo" accept',
        "}",
        "}",
    ]


def test_without_a_firewall_nftables_is_the_forced_choice(firewall):
    _record, result = firewall.replay("nft-open", 1)
    assert result["backends"] == ["nftables"] and result["filtered_by"] == []
    assert not any(c.startswith("nft insert") for c in result["commands"])


def test_an_iptables_nft_firewall_sees_the_accept_as_its_own_rule_syntax(firewall):
    """The accepts are what iptables-nft itself writes for -p gre -m comment: its tools keep working."""
    record, result = firewall.replay("nft-iptables-nft", 0)
    assert result["filtered_by"] == ["nftables: ip filter INPUT", "nftables: ip6 filter INPUT"]
    assert '-A INPUT -p gre -m comment --comment "managed-by: linuxnet.gre ipv4" -j ACCEPT' in evidence(
        record, "iptables-nft-save"
    )
    assert '-A INPUT -p gre -m comment --comment "managed-by: linuxnet.gre ipv6" -j ACCEPT' in evidence(
        record, "ip6tables-nft-save"
    )


def test_nft_works_but_the_firewall_is_iptables_legacy_so_the_rules_go_there(firewall):
    record, result = firewall.replay("nft-with-legacy", 0)
    assert result["backends"] == ["iptables-legacy"]
    assert all(c.startswith("iptables-legacy ") for c in result["commands"])
    assert "linuxnet_gre" not in "\n".join(evidence(record, "nft list ruleset"))


def test_without_nft_installed_an_iptables_nft_firewall_is_handled_with_iptables_nft(firewall):
    record, result = firewall.replay("no-nft-iptables-nft", 0)
    assert result["backends"] == ["iptables-nft"]
    assert result["commands"][-1] == "iptables-nft -I INPUT 1 -p 47 -j LINUXNET-GRE"
    assert firewall.host.calls[-1] == ["iptables-nft-restore", "--wait", "--noflush"]
    assert JUMP in evidence(record, "iptables-nft-save")


def test_nft_drift_rebuilds_the_table_and_deletes_the_duplicate_accept(firewall):
    _record, result = firewall.replay("nft-drift", 0)
    assert result["diff"]["before"]["nftables"]["peers"] == {"ipv4": ["198.51.100.99"]}
    assert result["commands"][0] == "nft delete table inet linuxnet_gre"
    assert result["commands"][-1].startswith("nft delete rule inet filter input handle ")
    assert not any(c.startswith("nft insert") for c in result["commands"])


def test_any_table_and_chain_name_works_through_json(firewall):
    record, result = firewall.replay("nft-odd-names", 0)
    assert result["commands"][-1] == (
        'nft insert rule ip "my fw" counter ip protocol gre counter accept comment "managed-by: linuxnet.gre ipv4"'
    )
    batch = json.loads(firewall.host.stdin("nft"))["nftables"]
    assert batch[-1]["insert"]["rule"]["table"] == "my fw" and batch[-1]["insert"]["rule"]["chain"] == "counter"
    assert "table ip my fw {" in evidence(record, "nft list ruleset")


def test_the_documentation_lists_every_option_of_the_argument_spec():
    """And the boot unit's settings file keeps every one converge reads (all but persist itself)."""
    import yaml

    from ansible_collections.linuxnet.gre.plugins.module_utils._firewall_persist import (
        OPTIONAL_PARAMETERS,
        PARAMETERS,
    )

    documented = yaml.safe_load(gre_firewall.DOCUMENTATION)["options"]
    assert set(documented) == {*PARAMETERS, *OPTIONAL_PARAMETERS, "persist"}
    assert set(documented["encap_peers"]["suboptions"]) == {"port", "peers"}
    assert set(documented["forward"]["suboptions"]) == {"interface", "networks"}
