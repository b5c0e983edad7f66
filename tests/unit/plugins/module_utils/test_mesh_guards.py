# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inputs that would build tunnels that can never work: refused by the planner before any host changes.

A tunnel sent to its own host (two hosts with one public address, a peer's public address that is
the host's own local one), and role settings out of range on one host of the play.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.filter.gre_plan_check import gre_plan_check
from ansible_collections.linuxnet.gre.plugins.module_utils._mesh_model import MeshError
from ansible_collections.linuxnet.gre.plugins.module_utils._mesh_plan import plan_mesh

GROUPS = {"all": ["hosta", "hostb", "hub"], "spokes": ["hosta", "hostb"], "hubs": ["hub"]}


def problem(hostvars: dict[str, dict[str, t.Any]], **settings: t.Any) -> str:
    with pytest.raises(MeshError) as caught:
        plan_mesh(hostvars, GROUPS, **settings)
    return str(caught.value)


def test_two_linked_hosts_with_one_public_address_are_refused() -> None:
    # hosta's gre_mesh_public copied from hostb's: hostb would get local 198.51.100.1 remote 198.51.100.1.
    hostvars = {
        "hosta": {"gre_mesh_public": "198.51.100.1", "gre_mesh_local": "203.0.113.1"},
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1"},
    }
    assert problem(hostvars, links=[["hosta", "hostb"]]) == (
        "link hosta <-> hostb (gre_mesh_links[0]): host hosta and host hostb have the same public address "
        "198.51.100.1 (hosta: gre_mesh_public, hostb: ansible_host), so each end would send GRE to itself or its own "
        "NAT address; give each its own gre_mesh_public, the address its peers reach it at"
    )


def test_a_public_address_that_is_the_peers_own_local_address_is_refused() -> None:
    # hostb sends from 198.51.100.7 and is reached at 198.51.100.1; hosta claims 198.51.100.7 as its public.
    hostvars = {
        "hosta": {"gre_mesh_public": "198.51.100.7", "gre_mesh_local": "203.0.113.1"},
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.7"},
    }
    assert problem(hostvars, links=[["hosta", "hostb"]]) == (
        "link hosta <-> hostb (gre_mesh_links[0]): host hostb would send GRE to 198.51.100.7, the public address of "
        "host hosta (gre_mesh_public), which is hostb's own local address (gre_mesh_local); give hosta its own "
        "gre_mesh_public, the address its peers reach it at"
    )


def test_a_host_that_claims_another_hosts_own_address_is_refused_even_unlinked() -> None:
    # Two spokes of one hub: hostb owns 198.51.100.1 (it sends from it), hosta claims it too.
    hostvars = {
        "hub": {"ansible_host": "203.0.113.254", "gre_mesh_local": "203.0.113.254", "gre_mesh_id": 9},
        "hosta": {"gre_mesh_public": "198.51.100.1", "gre_mesh_local": "203.0.113.1"},
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1"},
    }
    assert problem(hostvars, hub_spoke=[{"hubs": "hubs", "spokes": "spokes"}]) == (
        "host hosta: its public address 198.51.100.1 (gre_mesh_public) is the address host hostb sends from "
        "(gre_mesh_local); give hosta its own gre_mesh_public. Hosts share a public address only behind one NAT "
        "address, which none of them sends from"
    )


def test_two_spokes_behind_one_nat_address_still_work_with_keys() -> None:
    hostvars = {
        "hub": {"ansible_host": "203.0.113.254", "gre_mesh_local": "203.0.113.254", "gre_mesh_id": 9},
        "hosta": {"ansible_host": "198.51.100.1", "gre_mesh_local": "10.1.0.1"},
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "10.1.0.2"},
    }
    result = plan_mesh(hostvars, GROUPS, hub_spoke=[{"hubs": "hubs", "spokes": "spokes"}])
    # Ids 0, 1 and 9: link numbers 36 and 37, keys 37 and 38.
    assert sorted(tunnel.get("key") for tunnel in result["hosts"]["hub"]["tunnels"]) == ["37", "38"]


HOSTVARS = {
    "hosta": {"ansible_host": "203.0.113.1", "gre_mesh_local": "203.0.113.1"},
    "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1"},
}
ROLE_DEFAULTS = {"gre_mesh_verify_count": 3, "gre_mesh_verify_timeout": 2, "gre_mesh_persist": "auto"}


def check_role(hostvars: dict[str, dict[str, t.Any]], **play: t.Any) -> dict[str, t.Any]:
    return gre_plan_check(
        hostvars,
        {"all": ["hosta", "hostb"]},
        hosts=[],
        plans=False,
        play_hosts=["hosta", "hostb"],
        role_settings={**ROLE_DEFAULTS, **play},
        links=[["hosta", "hostb"]],
    )


@pytest.mark.parametrize(
    ("play", "hostb", "message"),
    [
        (
            {"gre_mesh_verify_count": 0},
            {},
            "the play: gre_mesh_verify_count: 0 is not from 1 to 50 echo requests per link",
        ),
        (
            {},
            {"gre_mesh_verify_count": 0},
            "host hostb: gre_mesh_verify_count: 0 is not from 1 to 50 echo requests per link",
        ),
        ({}, {"gre_mesh_verify_timeout": 0}, "host hostb: gre_mesh_verify_timeout: 0 is not from 0.1 to 60 seconds"),
        ({}, {"gre_mesh_verify_count": "many"}, "host hostb: argument 'gre_mesh_verify_count' is of type str"),
        ({}, {"gre_mesh_persist": "netword"}, "host hostb: value of gre_mesh_persist must be one of: auto, networkd"),
    ],
)
def test_a_role_setting_out_of_range_on_one_host_fails_the_whole_play(play, hostb, message) -> None:
    from ansible.errors import AnsibleFilterError  # noqa: PLC0415

    hostvars = {**HOSTVARS, "hostb": {**HOSTVARS["hostb"], **hostb}}
    with pytest.raises(AnsibleFilterError) as caught:
        check_role(hostvars, **play)
    assert str(caught.value).startswith(message)


def test_good_role_settings_pass() -> None:
    hostvars = {**HOSTVARS, "hostb": {**HOSTVARS["hostb"], "gre_mesh_verify_count": 5, "gre_mesh_persist": "unit"}}
    assert check_role(hostvars)["summary"]["links"] == 1
