# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inputs that would build tunnels that can never work: refused by the planner before any host changes.

A tunnel sent to its own host: two hosts with one public address, a peer's public address that is
the host's own local one. (Role settings out of range: tests/unit/plugins/filter/test_gre_plan_check_role.py.)
"""

from __future__ import annotations

import typing as t

from .inventories import plan, problem

GROUPS = {"all": ["hosta", "hostb", "hub"], "spokes": ["hosta", "hostb"], "hubs": ["hub"]}


def test_two_linked_hosts_with_one_public_address_are_refused() -> None:
    # hosta's gre_mesh_public copied from hostb's: hostb would get local 198.51.100.1 remote 198.51.100.1.
    hostvars = {
        "hosta": {"gre_mesh_public": "198.51.100.1", "gre_mesh_local": "203.0.113.1"},
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1"},
    }
    assert problem(hostvars, GROUPS, links=[["hosta", "hostb"]]) == (
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
    assert problem(hostvars, GROUPS, links=[["hosta", "hostb"]]) == (
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
    assert problem(hostvars, GROUPS, hub_spoke=[{"hubs": "hubs", "spokes": "spokes"}]) == (
        "host hosta: its public address 198.51.100.1 (gre_mesh_public) is the address host hostb sends from "
        "(gre_mesh_local); give hosta its own gre_mesh_public. Hosts share a public address only behind one NAT "
        "address, which none of them sends from"
    )


def test_two_spokes_behind_one_nat_address_still_work_with_keys() -> None:
    hostvars: dict[str, t.Any] = {
        "hub": {"ansible_host": "203.0.113.254", "gre_mesh_local": "203.0.113.254", "gre_mesh_id": 9},
        "hosta": {"ansible_host": "198.51.100.1", "gre_mesh_local": "10.1.0.1"},
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "10.1.0.2"},
    }
    result = plan(hostvars, GROUPS, hub_spoke=[{"hubs": "hubs", "spokes": "spokes"}])
    # Ids 0, 1 and 9: link numbers 36 and 37, keys 37 and 38.
    assert sorted(tunnel.get("key") for tunnel in result["hosts"]["hub"]["tunnels"]) == ["37", "38"]
