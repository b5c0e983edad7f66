# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_firewall where firewalld runs (issue 17): the policy linuxnet-gre, in its permanent configuration and its runtime.

fixtures/firewall/firewalld*.json were captured by fixtures/firewall/capture_firewalld.py on lab guests
running firewalld 1.3.3 (Debian 12) and 2.3.1 (Debian 13) on its iptables backend; every run is also
replayed exactly by test_gre_firewall.py. Here: what those runs show. molecule/firewall's hostc proves
the policy on packets, through `firewall-cmd --reload` and a reboot.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewall_state, _firewalld
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist

from .test_gre_firewall import Runner, load

RULE = 'rule family="ipv4" source address="203.0.113.1" protocol value="gre" accept'
PERMANENT = "firewall-cmd --permanent --info-policy=linuxnet-gre"
RUNTIME = "firewall-cmd --info-policy=linuxnet-gre"
CREATE = [
    "firewall-cmd --permanent --new-policy=linuxnet-gre",
    "firewall-cmd --permanent --policy=linuxnet-gre --add-ingress-zone=ANY",
    "firewall-cmd --permanent --policy=linuxnet-gre --add-egress-zone=HOST",
    f"firewall-cmd --permanent --policy=linuxnet-gre '--add-rich-rule={RULE}'",
    "firewall-cmd --reload",
]
CHAIN = [
    "iptables-legacy -N LINUXNET-GRE",
    "iptables-legacy -A LINUXNET-GRE -s 203.0.113.1/32 -j ACCEPT",
    "iptables-legacy -A LINUXNET-GRE -j DROP",
    "iptables-legacy -I INPUT 1 -p 47 -j LINUXNET-GRE",
]


@pytest.fixture(autouse=True)
def files_root(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    """The files of persist (off in these captures) under a directory of the test's."""
    monkeypatch.setattr(persist.Files, "root", str(tmp_path))


@pytest.fixture
def firewall(seam: t.Any) -> Runner:
    return Runner(seam)


def commands_run(firewall: Runner) -> list[str]:
    """The firewall-cmd commands main() ran, as words."""
    return [" ".join(argv) for argv in firewall.host.calls if argv[0] == "firewall-cmd"]


def evidence(record: dict[str, t.Any], command: str) -> str:
    (step,) = [e for e in record["evidence"] if e["sh"] == command]
    return step["stdout"] if step["rc"] == 0 else f"rc {step['rc']}: {step['stdout']}{step['stderr']}"


@pytest.mark.parametrize("name", ["firewalld", "firewalld-trixie"])
def test_the_policy_is_created_with_one_reload_before_the_chain_in_both_firewalld_versions(firewall, name):
    index = 1 if name == "firewalld" else 0
    record, result = firewall.replay(name, index)
    assert result["commands"] == CREATE + CHAIN
    assert result["backends"] == ["iptables-legacy", "firewalld"]
    assert result["diff"]["after"]["firewalld"] == {"policy": "linuxnet-gre", "peers": {"ipv4": ["203.0.113.1"]}}
    # firewalld's reload flushes iptables under its iptables backend: the chain is planned from a second read.
    argvs = [argv[:2] for argv in firewall.host.calls]
    reload_at = argvs.index(["firewall-cmd", "--reload"])
    assert ["iptables-legacy-save"] in [argv[:1] for argv in firewall.host.calls[reload_at:]]
    for where in (PERMANENT, RUNTIME):
        text = evidence(record, where)
        assert f"\t{RULE}\n" in text and "ingress-zones: ANY\n" in text and "egress-zones: HOST\n" in text, text
    # iptables prints protocol 47 by its name up to 1.8.9 (Debian 12), by its number from 1.8.11 (Debian 13).
    rules = evidence(record, "iptables-legacy -S INPUT; iptables-legacy -S LINUXNET-GRE").splitlines()
    assert rules[1] in ("-A INPUT -p gre -j LINUXNET-GRE", "-A INPUT -p 47 -j LINUXNET-GRE"), rules


def test_check_mode_predicts_the_policy_and_only_reads(firewall):
    record, result = firewall.replay("firewalld", 0)
    assert result["changed"] is True and result["commands"] == CREATE + CHAIN
    assert commands_run(firewall) == [PERMANENT, RUNTIME]
    assert evidence(record, PERMANENT).startswith("rc 140: ")  # INVALID_POLICY: nothing was made


def test_an_unchanged_run_reads_the_policy_twice_and_runs_nothing_else(firewall):
    _record, result = firewall.replay("firewalld", 2)
    assert result["changed"] is False and result["commands"] == []
    assert commands_run(firewall) == [PERMANENT, RUNTIME]


def test_peers_come_and_go_in_both_configurations_without_a_reload(firewall):
    _record, more = firewall.replay("firewalld", 3)
    added = [c for c in more["commands"] if c.startswith("firewall-cmd")]
    assert [c.split()[1] for c in added] == ["--permanent", "--policy=linuxnet-gre"]
    assert all(c.count("--add-rich-rule=") == 2 for c in added), added
    assert 'rule family="ipv6" source address="2001:db8::1" protocol value="gre" accept' in added[0]
    _record, fewer = firewall.replay("firewalld", 4)
    removed = [c for c in fewer["commands"] if c.startswith("firewall-cmd")]
    assert len(removed) == 2 and all("--remove-rich-rule=" in c and "198.51.100.99" in c for c in removed)
    assert not any("--reload" in c for c in added + removed)


def test_no_peers_left_deletes_the_permanent_policy_and_empties_the_runtime_one(firewall):
    record, result = firewall.replay("firewalld", 5)
    assert result["commands"][0] == "firewall-cmd --permanent --delete-policy=linuxnet-gre"
    assert result["commands"][1].startswith("firewall-cmd --policy=linuxnet-gre '--remove-rich-rule=")
    assert result["backends"] == [] and "firewalld" not in result["diff"]["after"]
    assert evidence(record, PERMANENT).startswith("rc 140: ")
    # firewalld keeps an empty runtime policy until its next reload: nothing of it accepts anything.
    assert evidence(record, RUNTIME).endswith("rich rules: \n")


def test_a_policy_edited_by_hand_is_made_again(firewall):
    record, result = firewall.replay("firewalld-edited", 0)
    (found,) = [c for c in record["calls"] if c.get("argv") == PERMANENT.split()]
    assert "priority: 5\n" in found["stdout"] and 'service name="ssh"' in found["stdout"]
    assert result["commands"][:1] == ["firewall-cmd --permanent --delete-policy=linuxnet-gre"]
    assert result["commands"][1:6] == CREATE
    text = evidence(record, PERMANENT)
    assert "priority: -1\n" in text and "ssh" not in text
    _record, again = firewall.replay("firewalld-edited", 1)
    assert again["changed"] is False


def test_a_policy_missing_from_the_runtime_takes_one_reload(firewall):
    _record, result = firewall.replay("firewalld-runtime-lost", 0)
    assert [c for c in result["commands"] if c.startswith("firewall-cmd")] == ["firewall-cmd --reload"]


def test_state_absent_removes_the_policy_on_firewalld_2(firewall):
    record, result = firewall.replay("firewalld-trixie", 2)
    assert result["commands"][0] == "firewall-cmd --permanent --delete-policy=linuxnet-gre"
    assert evidence(record, PERMANENT).startswith("rc 140: ")


def test_firewalld_stopped_gets_no_policy(firewall):
    record, result = firewall.replay("firewalld-stopped", 0)
    assert commands_run(firewall) == [PERMANENT]  # answered "FirewallD is not running" (252): no second read
    assert result["commands"] == CHAIN and result["backends"] == ["iptables-legacy"]
    assert "FirewallD is not running" in evidence(record, PERMANENT)


@pytest.mark.parametrize(
    ("table", "firewalld", "closed"),
    [
        ({"family": "inet", "name": "firewalld", "flags": "owner"}, True, "owner"),
        ({"family": "inet", "name": "firewalld", "flags": ["owner", "persist"]}, True, "owner"),
        ({"family": "inet", "name": "firewalld"}, True, "firewalld"),
        ({"family": "inet", "name": "firewalld"}, False, ""),
        ({"family": "inet", "name": "filter"}, True, ""),
    ],
)
def test_which_nftables_tables_get_no_accept_of_ours(table, firewalld, closed):
    """nft prints one flag as a string, several as a list (libnftables' table_flags_json)."""
    assert _firewall_state.closed(table, firewalld) == closed


def test_the_info_of_a_policy_is_read_as_firewalld_prints_it():
    record = load("firewalld")["runs"][3]
    (info,) = [c for c in record["calls"] if c.get("argv") == PERMANENT.split()]
    parsed = _firewalld.parse_info(info["stdout"])
    assert parsed["settings"]["ingress-zones"] == "ANY" and parsed["settings"]["priority"] == "-1"
    assert parsed["rules"] == [RULE]
    assert _firewalld.Firewalld.ours(parsed) is True
    assert _firewalld.Firewalld.ours(dict(parsed, settings=dict(parsed["settings"], priority="5"))) is False
