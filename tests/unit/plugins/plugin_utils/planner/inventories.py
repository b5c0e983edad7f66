# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hosts, inventories and helpers that the planner's tests (and the gre_plan filters' tests) share.

A host is its variables as Ansible's hostvars give them: ansible_host, gre_mesh_* variables, facts.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import MeshError
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import plan_mesh


def host(public: str | None = None, local: str | None = None, **extra: t.Any) -> dict[str, t.Any]:
    """A host's variables: ansible_host as the public address, gre_mesh_local as the local one."""
    result: dict[str, t.Any] = dict(extra)
    if public is not None:
        result["ansible_host"] = public
    if local is not None:
        result["gre_mesh_local"] = local
    return result


def plain(public: str, **extra: t.Any) -> dict[str, t.Any]:
    """A host without NAT: it sends from the address its peers send to."""
    return {"ansible_host": public, "gre_mesh_local": public, **extra}


def from_facts(public: str, mtu: t.Any = None, **extra: t.Any) -> dict[str, t.Any]:
    """A host without NAT whose local address and underlay MTU (when given) come from facts, as the role gathers
    them: ansible_default_ipv4, or ansible_default_ipv6 for an IPv6 address."""
    fact: dict[str, t.Any] = {"address": public}
    if mtu is not None:
        fact["mtu"] = mtu
    version = 6 if ":" in public else 4
    return {"ansible_host": public, "ansible_facts": {f"default_ipv{version}": fact}, **extra}


# Two hosts without NAT, and the link between them.
PAIR = {"hosta": plain("203.0.113.1"), "hostb": plain("198.51.100.1")}
LINKED: dict[str, t.Any] = {"links": [["hosta", "hostb"]]}


def pair_with_mtus(mtu_a: t.Any = 1500, mtu_b: t.Any = 1500, **extra_b: t.Any) -> dict[str, dict[str, t.Any]]:
    """PAIR's hosts with their local addresses and underlay MTUs (None: none) from facts."""
    return {"hosta": from_facts("203.0.113.1", mtu_a), "hostb": from_facts("198.51.100.1", mtu_b, **extra_b)}


# The seed: HostA and HostB on GCP, each sending from its private address to the other's public one.
SEED = {
    "hosta": {"ansible_host": "34.27.138.140", "ansible_facts": {"default_ipv4": {"address": "10.128.0.11"}}},
    "hostb": {"ansible_host": "34.44.203.186", "ansible_facts": {"default_ipv4": {"address": "10.128.0.12"}}},
}
# The seed's tunnels, one on each host: link number 0 (ids 0 and 1), the default pool, mode and TTL.
SEED_TUNNELS = {
    "hosta": {
        "name": "gre-hostb",
        "mode": "gre",
        "local": "10.128.0.11",
        "remote": "34.44.203.186",
        "ttl": 255,
        "addresses": ["10.0.0.1/30"],
        "state": "present",
        "routes": [],
    },
    "hostb": {
        "name": "gre-hosta",
        "mode": "gre",
        "local": "10.128.0.12",
        "remote": "34.27.138.140",
        "ttl": 255,
        "addresses": ["10.0.0.2/30"],
        "state": "present",
        "routes": [],
    },
}


def plan(hostvars: t.Mapping[str, t.Any], groups: dict[str, list[str]] | None = None, **settings: t.Any) -> dict:
    """The whole plan; ``groups`` gets an ``all`` of every host when it has none."""
    groups = dict(groups or {})
    groups.setdefault("all", sorted(hostvars))
    return plan_mesh(hostvars, groups, **settings)


def problem(hostvars: t.Mapping[str, t.Any], groups: dict[str, list[str]] | None = None, **settings: t.Any) -> str:
    """What the planner refuses the inventory with."""
    with pytest.raises(MeshError) as caught:
        plan(hostvars, groups, **settings)
    return str(caught.value)


def tunnels(result: dict, name: str) -> dict[str, dict[str, t.Any]]:
    """A host's tunnels in a plan, by name."""
    return {tunnel["name"]: tunnel for tunnel in result["hosts"][name]["tunnels"]}
