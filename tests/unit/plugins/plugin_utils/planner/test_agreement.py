# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every host a run concerns sees the same topology (module_utils/_mesh_agreement), whichever host plans.

``hostvars`` here is what Ansible's is: inventory and extra variables only (never the play's vars
or the role's defaults); ``settings`` is what the planning host sees, as the role passes them.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import MeshError
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import DEFAULTS, check_mesh

HUB_SPOKE = [{"hubs": "hubs", "spokes": "spokes"}]
GROUPS = {"all": ["hub", "s1", "s2", "web"], "hubs": ["hub"], "spokes": ["s1", "s2"], "ungrouped": ["web"]}


def inventory(**extra: t.Any) -> dict[str, t.Any]:
    hosts: dict[str, t.Any] = {
        "hub": {"ansible_host": "203.0.113.1", "gre_mesh_id": 100},
        "s1": {"ansible_host": "198.51.100.1"},
    }
    hosts["s2"] = {"ansible_host": "198.51.100.2"}
    hosts["web"] = {"ansible_host": "198.51.100.80"}
    for name, variables in extra.items():
        hosts[name] = {**hosts[name], **variables}
    return hosts


def settings(**values: t.Any) -> dict[str, t.Any]:
    """What the role passes: every setting, the role's default where nothing sets it (lists are empty)."""
    result = {
        name: ([] if name in ("links", "full_mesh", "hub_spoke", "external_peers") else value)
        for name, value in DEFAULTS.items()
    }
    result.update(values)
    return result


def check(hostvars: t.Mapping[str, t.Any], play_hosts: list[str], **values: t.Any) -> dict[str, t.Any]:
    return check_mesh(hostvars, GROUPS, [], plans=False, play_hosts=play_hosts, **settings(**values))


def problem(hostvars: t.Mapping[str, t.Any], play_hosts: list[str], **values: t.Any) -> str:
    with pytest.raises(MeshError) as caught:
        check(hostvars, play_hosts, **values)
    return str(caught.value)


def spokes_only() -> dict[str, dict[str, t.Any]]:
    """gre_mesh_hub_spoke kept in the spokes group's variables: the hub does not see it."""
    return inventory(s1={"gre_mesh_hub_spoke": HUB_SPOKE}, s2={"gre_mesh_hub_spoke": HUB_SPOKE})


SPOKES_ONLY = (
    "gre_mesh_hub_spoke: the hosts of this play and their peers see different values, so the plan would depend on "
    'which host plans: [{"hubs": "hubs", "spokes": "spokes"}] for s1, s2 (set for every host of group spokes); '
    "[] for hub (not set for them: the role's default). Topology settings must be the same for every host: set them "
    "in group_vars/all, or in the play's vars"
)


def test_a_topology_in_one_groups_variables_fails_when_the_hub_plans() -> None:
    # The hub plans first and sees no topology: without the check, the plan is empty and purges every tunnel.
    assert problem(spokes_only(), ["hub", "s1", "s2"]) == SPOKES_ONLY


def test_a_topology_in_one_groups_variables_fails_when_a_spoke_plans() -> None:
    # The same inventory fails the same way whichever host plans (the spoke sees the hub_spoke).
    assert problem(spokes_only(), ["s1", "s2", "hub"], hub_spoke=HUB_SPOKE) == SPOKES_ONLY


def test_limit_to_the_hub_still_sees_the_spokes_topology() -> None:
    # --limit hub: the play is the hub alone, whose variables have no topology; the spokes' own reaches it.
    assert problem(spokes_only(), ["hub"]) == SPOKES_ONLY


def test_limit_to_a_host_no_topology_reaches_is_left_alone() -> None:
    # web is in no topology, its own or the spokes': the spokes' variables do not concern it.
    assert check(spokes_only(), ["web"])["summary"] == {"hosts": 0, "links": 0, "external_peers": 0}


def test_the_same_value_everywhere_passes() -> None:
    everywhere = {name: {"gre_mesh_hub_spoke": HUB_SPOKE} for name in GROUPS["all"]}
    result = check(inventory(**everywhere), ["hub"], hub_spoke=HUB_SPOKE)
    assert result["summary"] == {"hosts": 3, "links": 2, "external_peers": 0}


def test_a_value_in_a_group_holding_every_host_the_run_concerns_passes() -> None:
    # group_vars/gre (hub, s1, s2): web, outside the topology and the play, does not see it, and need not.
    gre = {name: {"gre_mesh_hub_spoke": HUB_SPOKE} for name in ("hub", "s1", "s2")}
    result = check(inventory(**gre), ["hub", "s1", "s2"], hub_spoke=HUB_SPOKE)
    assert result["summary"]["links"] == 2


def test_the_plays_own_value_is_the_same_for_every_host() -> None:
    # Play vars are not in hostvars: no inventory host has the value, and every host of the play sees it.
    assert check(inventory(), ["hub", "s1", "s2"], hub_spoke=HUB_SPOKE)["summary"]["links"] == 2


def test_a_play_value_over_an_inventory_value_is_the_same_for_every_host() -> None:
    # group_vars/all says one topology, the play's vars another: the play's wins on every host alike.
    everywhere = {name: {"gre_mesh_full_mesh": ["spokes"]} for name in GROUPS["all"]}
    assert check(inventory(**everywhere), ["hub", "s1", "s2"], hub_spoke=HUB_SPOKE)["summary"]["links"] == 2


def test_one_host_overriding_a_setting_is_named() -> None:
    everywhere: dict[str, dict[str, t.Any]] = {name: {"gre_mesh_hub_spoke": HUB_SPOKE} for name in GROUPS["all"]}
    everywhere["s2"] = {**everywhere["s2"], "gre_mesh_ttl": 64}
    assert problem(inventory(**everywhere), ["hub", "s1", "s2"], hub_spoke=HUB_SPOKE) == (
        "gre_mesh_ttl: the hosts of this play and their peers see different values, so the plan would depend on "
        "which host plans: 255 for hub, s1 (not set for them: the role's default); 64 for s2 (set in their inventory "
        "variables). Topology settings must be the same for every host: set them in group_vars/all, or in the play's "
        "vars; for some links only, set ttl on those links in gre_mesh_links"
    )


class Tagged(dict):
    """A host's variables that know where each came from, as the filter's view does on ansible-core 2.19+."""

    def origin(self, key: str) -> str | None:
        return "/inventory/group_vars/spokes.yml:1:21" if key == "gre_mesh_hub_spoke" else None


def test_the_file_and_line_are_named_when_ansible_knows_them() -> None:
    hostvars = {name: Tagged(variables) for name, variables in spokes_only().items()}
    assert "for s1, s2 (set in /inventory/group_vars/spokes.yml:1:21)" in problem(hostvars, ["hub"])


def test_ipsec_in_one_groups_variables_is_named() -> None:
    """gre_mesh_ipsec is a topology setting: kept for the spokes alone, the run fails before any change."""
    everywhere: dict[str, dict[str, t.Any]] = {name: {"gre_mesh_hub_spoke": HUB_SPOKE} for name in GROUPS["all"]}
    for spoke in GROUPS["spokes"]:
        everywhere[spoke] = {**everywhere[spoke], "gre_mesh_ipsec": True}
    assert problem(inventory(**everywhere), ["hub", "s1", "s2"], hub_spoke=HUB_SPOKE) == (
        "gre_mesh_ipsec: the hosts of this play and their peers see different values, so the plan would depend on "
        "which host plans: true for s1, s2 (set for every host of group spokes); false for hub (not set for them: the "
        "role's default). Topology settings must be the same for every host: set them in group_vars/all, or in the "
        "play's vars; for some links only, set ipsec on those links in gre_mesh_links"
    )
