# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_diagnose on links with IPsec, from evidence captured on the lab (tests/lab/topologies/ipsec.yml).

Each fixture is the evidence.json that playbooks/verify.yml wrote on the controller (gre_probe's
result and strongSwan's state and log, per host) with the router dropping GRE, as molecule/ipsec
runs it: ``healthy`` (every link up over ESP, hostc's in UDP through its NAT), ``wrong-key`` (hostb's
key for hosta edited by hand in its swanctl file and loaded), ``ike-dropped`` (the router also
dropping UDP 500 and 4500 and ESP between hosta and hostb), ``esp-dropped`` (site.yml first, then the router
dropping only ESP between hosta and hostb: IKE established, ESP lost). The plan is the planner's for the lab.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.filter.gre_diagnose import gre_diagnose
from ansible_collections.linuxnet.gre.plugins.plugin_utils._diagnose_ipsec import Side, ipsec_cause
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import plan_mesh

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "ipsec"
SECRET = "lab secret, not a real one: 0123456789"
HOSTVARS = {
    "hosta": {"ansible_host": "203.0.113.1", "gre_mesh_local": "203.0.113.1", "gre_mesh_ipsec_secret": SECRET},
    "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1", "gre_mesh_ipsec_secret": SECRET},
    "hostc": {"ansible_host": "198.51.100.20", "gre_mesh_local": "203.0.113.129", "gre_mesh_ipsec_secret": SECRET},
}
LINKS = [["hosta", "hostb"], ["hosta", "hostc"]]


def lab_plan(ipsec: bool = True) -> dict[str, t.Any]:
    return plan_mesh(HOSTVARS, {"all": sorted(HOSTVARS)}, links=LINKS, ipsec=ipsec)


def evidence(name: str) -> dict[str, t.Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def judged(name: str, ipsec: bool = True) -> dict[tuple[str, ...], dict[str, t.Any]]:
    result = gre_diagnose(evidence(name), lab_plan(ipsec))
    return {tuple(link["hosts"]): link for link in result["links"]}


def test_the_lab_plan_is_the_one_the_evidence_was_gathered_with() -> None:
    probes = evidence("healthy")
    for host, host_plan in lab_plan()["hosts"].items():
        connections = [entry["connection"] for entry in host_plan["ipsec"]]
        assert [line[3:] for line in probes[host]["ipsec"].splitlines() if line.startswith("== ")] == connections


def hosta_hostb_down(name: str, cause: str) -> dict[str, t.Any]:
    """The link hosta - hostb of a fixture, down with ``cause``, while hosta - hostc is up."""
    links = judged(name)
    assert links[("hosta", "hostc")]["status"] == "up"
    link = links[("hosta", "hostb")]
    assert link["status"] == "down"
    assert link["cause"] == cause
    return link


def test_every_link_with_ipsec_established_is_up() -> None:
    links = judged("healthy")
    assert {pair: link["status"] for pair, link in links.items()} == {
        ("hosta", "hostb"): "up",
        ("hosta", "hostc"): "up",
    }


def test_a_wrong_key_is_named_with_the_daemons_words_on_both_ends() -> None:
    """Both ends started IKE, so each end checked the other's key and also heard the other's
    AUTHENTICATION_FAILED (hosta last): each end quotes the check that failed there, not the notification."""
    link = hosta_hostb_down("wrong-key", "ipsec_not_established")
    assert link["text"] == (
        "IPsec between hosta and hostb is not established (hosta: no IKE SA; hostb: no IKE SA); strongSwan says "
        "hosta: 'tried 2 shared keys for 'hosta' - 'hostb', but MAC mismatched'; hostb: 'tried 1 shared key for "
        "'hostb' - 'hosta', but MAC mismatched'"
    )
    assert link["fix"].startswith("give both hosts the same gre_mesh_ipsec_secret")


def test_ike_that_gets_no_answer_asks_to_open_ike_and_esp_on_the_path() -> None:
    link = hosta_hostb_down("ike-dropped", "ipsec_not_established")
    assert link["text"] == (
        "IPsec between hosta and hostb is not established (hosta: IKE SA connecting, no ESP SA installed; hostb: no "
        "IKE SA); strongSwan says hosta: 'retransmit 4 of request with message ID 0'"
    )
    assert link["fix"] == (
        "let IKE (UDP 500 and 4500) and ESP (IP protocol 50) through between hosta (203.0.113.1) and hostb "
        "(198.51.100.1): on the path (cloud firewall, security group, router ACL) and in both hosts' firewalls"
    )


def test_esp_dropped_on_the_path_while_ike_passes_is_named_from_the_sas_counters() -> None:
    link = hosta_hostb_down("esp-dropped", "esp_dropped")
    assert link["text"] == (
        "IPsec between hosta and hostb is established, but of the 13 packets hosta sent in its ESP SA (SPI c0f5f33b), "
        "hostb received 7: something on the path drops ESP (IP protocol 50), while IKE passes"
    )
    assert link["fix"].startswith(
        "let ESP (IP protocol 50) through between hosta (203.0.113.1) and hostb (198.51.100.1)"
    )


def test_with_ipsec_up_and_esp_arriving_the_capture_is_not_read() -> None:
    """The healthy evidence with hostb's tunnel counting nothing received: not path_drops_gre (the capture of an
    IPsec link sees ESP, never GRE), but not_accepted, from the counters."""
    probes = evidence("healthy")
    for probe in probes["hostb"]["tunnels"]:
        if probe["interface"] == "gre-hosta":
            probe["counters"]["rx_packets"] = 0
            for ping in probe["pings"]["small"] + probe["pings"]["full"]:
                ping["received"] = 0
    for ping in next(p for p in probes["hosta"]["tunnels"] if p["interface"] == "gre-hostb")["pings"]["small"]:
        ping["received"] = 0
    result = gre_diagnose(probes, lab_plan())
    link = next(link for link in result["links"] if link["hosts"] == ["hosta", "hostb"])
    assert link["cause"] == "not_accepted", link
    assert link["text"].startswith("hosta's ESP reaches hostb and IPsec is established")


def test_without_ipsec_in_the_plan_strongswans_state_is_not_read() -> None:
    link = judged("wrong-key", ipsec=False)[("hosta", "hostb")]
    assert link["status"] == "down"
    assert link["cause"] != "ipsec_not_established"


@pytest.mark.parametrize("evidence_text", [None, ""])
def test_an_end_not_read_says_nothing(evidence_text: str | None) -> None:
    healthy = "== c\nsa {c {uniqueid=1 version=2 state=ESTABLISHED local-host=x child-sas {gre-1 {name=gre state=INSTALLED mode=TRANSPORT}}}}\n"
    sides = [Side("hosta", "c", healthy), Side("hostb", "c", evidence_text)]
    if evidence_text is None:
        assert ipsec_cause(sides, {}) is None
    else:
        found = ipsec_cause(sides, {"hosta": "203.0.113.1", "hostb": "198.51.100.1"})
        assert found is not None
        assert found[0] == "ipsec_not_established"
        assert found[1] == (
            "IPsec between hosta and hostb is not established (hosta: established; hostb: no IKE SA); strongSwan "
            "logged nothing of it"
        )


def test_an_ike_sa_without_its_esp_sa_is_not_established() -> None:
    text = "== c\nsa {c {uniqueid=1 version=2 state=ESTABLISHED local-host=x child-sas {}}}\nlog NO_PROPOSAL_CHOSEN\n"
    found = ipsec_cause([Side("hosta", "c", text), Side("hostb", "c", text)], {})
    assert found is not None
    assert found[0] == "ipsec_not_established"
    assert "hosta: IKE SA established, no ESP SA installed" in found[1]
    assert (
        found[2]
        == "run playbooks/site.yml on both hosta and hostb: their IKE connections for this link differ, or one has none"
    )


def test_an_end_that_only_heard_of_the_failure_quotes_the_notification() -> None:
    """hosta's captured log without its own checks: it only initiated, and hostb refused its key."""
    hosta = evidence("wrong-key")["hosta"]["ipsec"]
    heard = "\n".join(line for line in hosta.splitlines() if "MAC mismatched" not in line)
    found = ipsec_cause([Side("hosta", "linuxnet-gre-hostb", heard)], {"hosta": "203.0.113.1"})
    assert found is not None
    assert "strongSwan says hosta: 'received AUTHENTICATION_FAILED notify error'" in found[1]
    assert found[2].startswith("give both hosts the same gre_mesh_ipsec_secret")
