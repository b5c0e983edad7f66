# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_verify_paths: which routed paths each host probes, on what molecule/faults' lab hosts answered.

fixtures/probe/routed-healthy.json (capture_routed.py) holds what the filter was given there (each
host's gre_mesh_networks, gre_mesh_verify_targets and its ``ip -json address show``, read on the lab
guest) and what it chose; the plan is the one the role applied (routes read from the kernel).
"""

from __future__ import annotations

import copy
import typing as t

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.filter.gre_verify_paths import FilterModule, gre_verify_paths
from ansible_collections.linuxnet.gre.plugins.plugin_utils._diagnose import chain
from ansible_collections.linuxnet.gre.plugins.plugin_utils._paths import covering, verify_paths
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import plan_mesh

from ..modules.replay import load
from ..plugin_utils.planner.inventories import plain

HUB = {"hubs": "hubs", "spokes": "spokes"}


def captured() -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any]]:
    """(hostvars, plan, what was chosen) of the healthy routed mesh."""
    record = load("probe/routed-healthy")
    return copy.deepcopy(record["paths"]["hostvars"]), record["plan"], record["paths"]["chosen"]


def test_each_host_probes_each_peer_network_once():
    hostvars, plan, chosen = captured()
    result = gre_verify_paths(hostvars, plan)
    assert result == chosen
    assert result["skipped"] == []
    assert result["paths"]["node1"] == [
        {"network": "198.51.100.202/32", "peer": "node2", "address": "198.51.100.202", "gateway": None},
        {"network": "198.51.100.203/32", "peer": "node3", "address": "198.51.100.203", "gateway": None},
        {"network": "198.51.100.204/32", "peer": "node4", "address": "198.51.100.204", "gateway": None},
        # The device named in gre_mesh_verify_targets, and node4's own address in its LAN (read on node4).
        {"network": "198.51.100.208/29", "peer": "node4", "address": "198.51.100.210", "gateway": "198.51.100.209"},
    ]
    assert [p["network"] for p in result["paths"]["node4"]] == [
        "198.51.100.201/32",
        "198.51.100.202/32",
        "198.51.100.203/32",
    ]
    assert sum(len(paths) for paths in result["paths"].values()) == 15


def test_without_a_target_the_owners_own_address_in_its_network_is_pinged():
    hostvars, plan, _chosen = captured()
    for variables in hostvars.values():
        variables["gre_mesh_verify_targets"] = {}
    lan = next(p for p in verify_paths(hostvars, plan)["paths"]["node2"] if p["network"] == "198.51.100.208/29")
    assert lan == {"network": "198.51.100.208/29", "peer": "node4", "address": "198.51.100.209", "gateway": None}


def test_a_network_without_an_address_of_its_owner_is_skipped_naming_the_variable():
    hostvars, plan, _chosen = captured()
    for variables in hostvars.values():
        variables["gre_mesh_verify_targets"] = {}
    del hostvars["node4"]["__gre_mesh_verify_addresses"]  # not read: as if node4 had no address in its LAN
    result = verify_paths(hostvars, plan)
    assert "198.51.100.208/29" not in [p["network"] for p in result["paths"]["node1"]]
    assert result["skipped"][0] == (
        "node1 to 198.51.100.208/29: not probed, node4 has no address in it; name an address in it to ping in "
        "gre_mesh_verify_targets ({'198.51.100.208/29': ADDRESS})"
    )
    assert len(result["skipped"]) == 3


def test_a_host_without_networks_probes_no_path():
    hostvars, plan, _chosen = captured()
    del hostvars["node3"]["gre_mesh_networks"]
    result = verify_paths(hostvars, plan)
    assert "node3" not in result["paths"]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            ["198.51.100.210"],
            "gre_verify_paths: node1: gre_mesh_verify_targets must be a mapping of network to an address in it "
            "({'192.168.10.0/24': '192.168.10.20'}), not list",
        ),
        (
            {"198.51.100.208/29": "198.51.100.220"},
            "gre_verify_paths: node1: gre_mesh_verify_targets: 198.51.100.220 is not in 198.51.100.208/29; give an "
            "address of a device in that network",
        ),
        (
            {"198.51.100.209/29": "198.51.100.210"},
            "gre_verify_paths: node1: gre_mesh_verify_targets: '198.51.100.209/29': '198.51.100.210': "
            "198.51.100.209/29 has host bits set; give a network (address/length without host bits) and an address "
            "in it",
        ),
    ],
)
def test_bad_targets_are_refused_naming_host_and_variable(targets, message):
    hostvars, plan, _chosen = captured()
    hostvars["node1"]["gre_mesh_verify_targets"] = targets
    with pytest.raises(AnsibleFilterError) as error:
        gre_verify_paths(hostvars, plan)
    assert str(error.value) == message


def test_bad_input_is_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="the input must be hostvars, not list"):
        gre_verify_paths([], {"hosts": {}})
    with pytest.raises(AnsibleFilterError, match="plan must be the result of linuxnet.gre.gre_plan_check"):
        gre_verify_paths({}, {})


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"gre_verify_paths": gre_verify_paths}


def test_a_spoke_probes_the_networks_its_summary_holds():
    """With ``summary`` on the hub and spoke a spoke has one route for the other spokes' networks: each is a path."""
    hostvars = {
        "hub": plain("203.0.113.1") | {"gre_mesh_id": 0, "gre_mesh_networks": ["10.200.0.1/32"]},
        "site1": plain("198.51.100.1") | {"gre_mesh_networks": ["192.168.1.1/32"]},
        "site2": plain("198.51.100.2") | {"gre_mesh_networks": ["192.168.2.1/32", "10.200.0.2/32"]},
    }
    groups = {"hubs": ["hub"], "spokes": ["site1", "site2"]}
    plan = plan_mesh(hostvars, {"all": sorted(hostvars), **groups}, hub_spoke=[{**HUB, "summary": ["192.168.0.0/16"]}])
    assert [route["prefix"] for tunnel in plan["hosts"]["site1"]["tunnels"] for route in tunnel["routes"]] == [
        "10.200.0.1/32",
        "10.200.0.2/32",
        "192.168.0.0/16",
    ]
    paths = verify_paths(hostvars, plan)["paths"]
    assert [(p["network"], p["peer"]) for p in paths["site1"]] == [
        ("10.200.0.1/32", "hub"),
        ("10.200.0.2/32", "site2"),
        ("192.168.2.1/32", "site2"),
    ]
    # The diagnosis walks the same way: site1 -> hub (the summary's tunnel) -> site2.
    assert chain(plan, "site1", "192.168.2.1/32", "site2") == [
        ("site1", "gre-hub", "hub"),
        ("hub", "gre-site2", "site2"),
    ]


@pytest.mark.parametrize(
    ("prefixes", "network", "expected"),
    [
        (["192.168.0.0/16", "192.168.2.0/24"], "192.168.2.1/32", "192.168.2.0/24"),
        (["192.168.0.0/16", "192.168.2.0/24"], "192.168.3.0/24", "192.168.0.0/16"),
        (["192.168.0.0/16"], "10.0.0.0/8", None),
        (["192.168.0.0/16", "2001:db8::/32"], "2001:db8:1::/48", "2001:db8::/32"),
        (["2001:db8::/32"], "192.168.2.1/32", None),
    ],
)
def test_covering_takes_the_most_specific_route_of_the_networks_family(prefixes, network, expected):
    assert covering(prefixes, network) == expected
