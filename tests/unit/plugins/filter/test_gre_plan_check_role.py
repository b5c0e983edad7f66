# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_plan_check's role_settings: one host's bad role setting fails the whole play, before any host changes.

Ansible checks a role's arguments host by host, so a bad value in one host's inventory failed that
host alone while the others changed; the planner's check runs once for the play.
"""

from __future__ import annotations

import re
import typing as t

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.filter.gre_plan_check import gre_plan_check

HOSTVARS = {
    "hosta": {"ansible_host": "203.0.113.1", "gre_mesh_local": "203.0.113.1"},
    "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1"},
}
ROLE_DEFAULTS = {"gre_mesh_verify_count": 3, "gre_mesh_verify_timeout": 2, "gre_mesh_persist": "auto"}


def check_role(hostvars: t.Mapping[str, t.Any], **play: t.Any) -> dict[str, t.Any]:
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
    hostvars = {**HOSTVARS, "hostb": {**HOSTVARS["hostb"], **hostb}}
    with pytest.raises(AnsibleFilterError) as caught:
        check_role(hostvars, **play)
    # ansible-core before 2.19 names a type as <class 'str'> in its argument spec messages.
    assert re.sub(r"<class '(\w+)'>", r"\1", str(caught.value)).startswith(message)


def test_good_role_settings_pass() -> None:
    hostvars = {**HOSTVARS, "hostb": {**HOSTVARS["hostb"], "gre_mesh_verify_count": 5, "gre_mesh_persist": "unit"}}
    assert check_role(hostvars)["summary"]["links"] == 1


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        (
            "gre_mesh_network",
            "host hostb: gre_mesh_network is no variable of the gre_mesh role, which would ignore it; did you mean "
            "gre_mesh_networks? its variables are in roles/gre_mesh/defaults/main.yml",
        ),
        (
            "gre_mesh_mss_clmap",
            "host hostb: gre_mesh_mss_clmap is no variable of the gre_mesh role, which would ignore it; did you mean "
            "gre_mesh_mss_clamp? its variables are in roles/gre_mesh/defaults/main.yml",
        ),
        (
            "gre_mesh_zzz",
            "host hostb: gre_mesh_zzz is no variable of the gre_mesh role, which would ignore it; its variables are in "
            "roles/gre_mesh/defaults/main.yml",
        ),
    ],
)
def test_a_misspelt_variable_of_the_role_fails_the_play_naming_the_closest(variable, message) -> None:
    """A typo such as gre_mesh_network (for gre_mesh_networks) would leave the LAN unrouted without a word."""
    hostvars = {**HOSTVARS, "hostb": {**HOSTVARS["hostb"], variable: ["192.168.20.0/24"]}}
    with pytest.raises(AnsibleFilterError) as caught:
        check_role(hostvars)
    assert str(caught.value) == message


def test_variables_of_other_roles_and_the_roles_own_internal_ones_are_not_checked() -> None:
    hostvars = {**HOSTVARS, "hostb": {**HOSTVARS["hostb"], "__gre_mesh_plan": {}, "mesh_thing": 1, "gre_mesh_id": 3}}
    assert check_role(hostvars)["summary"]["links"] == 1
