# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gre_plan_check
short_description: Check and plan the GRE topology of the whole inventory, once, before any host changes
version_added: 0.1.0
author:
  - linuxnet.gre maintainers (@linuxnet)
description:
  - Checks the whole topology and plans the tunnels of O(hosts), in the shape the
    O(linuxnet.gre.gre_tunnel#module:tunnels) option of M(linuxnet.gre.gre_tunnel) takes. Run it once per play
    (C(run_once)), or once per batch with C(serial); each host then takes its entry from RV(_value.hosts).
  - Also returns what to configure by hand on the external peers, and what P(linuxnet.gre.gre_plan#filter) needs
    to plan any host alone (O(linuxnet.gre.gre_plan#filter:check)).
  - Fails, naming the host (or the link) and the variable, on a link to an unknown host (or to C(localhost),
    the control node), a host linked to itself, a link listed twice, a group that is not in the inventory (with
    the closest names), mixed address families on a link, a missing underlay address, an underlay address that
    is a name, has a prefix length, or cannot be a tunnel's end (loopback, unspecified, multicast, broadcast,
    240.0.0.0/4, IPv4-mapped, IPv6 link-local; IPv4 link-local when taken from C(ansible_host)), two nodes with
    the same id, an interface name the kernel would refuse (15 bytes of UTF-8 at most), two tunnels of a host
    whose names are the same after being cut, a pool too small for the links, overlapping inner subnets, a pool or
    per-link subnet that contains an underlay address or overlaps loopback, link-local, multicast or reserved
    ranges, two tunnels of a host that the kernel could not tell apart, a malformed underlay MTU, an MTU (given,
    or computed from the underlay MTUs) the M(linuxnet.gre.gre_tunnel) module would refuse, a given MTU larger
    than the known underlay MTUs take, and an external peer's C(interfaces) that is not a dict, names a host the
    peer has no link with, or gives a name the kernel refuses or two of its tunnels one name. All problems of a
    kind are reported together.
  - Works from the inventory (O(_input) is C(hostvars), O(groups) is C(groups)), never from the hosts of the
    current play, so with C(--limit) the limited hosts still get their tunnels to peers outside the limit.
    Reads the variables of every host of the topology once, and does work in proportion to the number of links.
  - How ids, addresses, interface names, keys and MTUs are chosen is described in P(linuxnet.gre.gre_plan#filter).
positional: _input, groups
options:
  hosts:
    description:
      - The hosts to plan, normally C(ansible_play_batch). Each gets an entry in RV(_value.hosts), with no tunnels
        when it has no links. Their local addresses are needed, so they need facts or C(gre_mesh_local); the rest
        of the topology needs inventory variables only.
      - Default is every inventory host that has links.
    type: list
    elements: str
  plans:
    description:
      - Whether RV(_value.hosts) holds the tunnels of O(hosts). With V(false) it is empty, their local addresses
        are checked all the same, and each host plans its own with P(linuxnet.gre.gre_plan#filter).
    type: bool
    default: true
  packed:
    description:
      - Whether the long lists of each host's plan in RV(_value.hosts) (C(tunnels), C(peers), C(ipsec)) are each
        one JSON text (P(ansible.builtin.from_json#filter) gives it back) rather than a list.
      - For a play that keeps the plan as a fact, as the gre_mesh role does. Ansible (2.19 and later) handles each
        value of a task's result and of a variable it reads one by one, some 10 us each; the plan of a 150-host
        full mesh has 358 203 values, 5 s of a run, and some 50 000 when packed, most of them the short lists
        the role reads as they are. P(linuxnet.gre.gre_diagnose#filter),
        P(linuxnet.gre.gre_probe_schedule#filter) and P(linuxnet.gre.gre_verify_paths#filter) take either form.
    type: bool
    default: false
  play_hosts:
    description:
      - The hosts of the play, normally C(ansible_play_hosts_all). When given, the topology settings are first read
        from the variables of every host the run concerns (the play's hosts, the nodes of the topology, and the hosts
        whose own variables give a topology that reaches them), and the filter fails when they disagree, naming the
        variable, the hosts on each side and where each value was found. Without this check, a topology variable kept
        in one group's variables makes the plan depend on which host plans it.
      - A setting given by the play itself (play vars, role parameters) is the same for every host and is not
        compared.
    type: list
    elements: str
  role_settings:
    description:
      - The gre_mesh role's other settings as the planning host sees them (C(gre_mesh_verify_count) and the like).
        When given, they and every play host's own values of them (O(play_hosts)) are checked against the role's
        argument specs and the ranges the modules accept, so that one host's bad value fails the play before any
        host changes, not that host alone.
    type: dict
extends_documentation_fragment:
  - linuxnet.gre.topology
notes:
  - The result holds every planned host's tunnels, so its size grows with the number of links (a 150-host full
    mesh has 22350 tunnels), and Ansible handles a large result slowly, value by value; with O(packed=true) it
    handles one text per long list. With O(plans=false) it holds none, and each host plans its own with
    P(linuxnet.gre.gre_plan#filter), which reads only its own variables; but Ansible loads a collection's filter
    anew for every host, which costs more when hosts have few links.
seealso:
  - plugin: linuxnet.gre.gre_plan
    plugin_type: filter
  - module: linuxnet.gre.gre_tunnel
"""

EXAMPLES = r"""
- name: Check and plan the whole topology, once, before any host changes
  ansible.builtin.set_fact:
    gre_mesh: >-
      {{ hostvars | linuxnet.gre.gre_plan_check(groups, hosts=ansible_play_batch,
           hub_spoke=[{'hubs': 'hubs', 'spokes': 'branches'}],
           links=[['hub1', 'datacenter']],
           external_peers=[{'name': 'datacenter', 'address': '198.51.100.250', 'id': 900}],
           pool='10.32.0.0/11') }}
  run_once: true

- name: Build each host's tunnels
  linuxnet.gre.gre_tunnel:
    tunnels: "{{ gre_mesh.hosts[inventory_hostname].tunnels }}"
    purge: true
  become: true

- name: Show what to configure on each router outside the inventory, one block per peer
  ansible.builtin.debug:
    msg: "{{ item.value.commands }}"
  loop: "{{ gre_mesh.external_peers | dict2items }}"
  loop_control:
    label: "on external peer {{ item.key }} ({{ item.value.address }})"
  run_once: true
"""

RETURN = r"""
_value:
  description: The plan of O(hosts), the external peers' side, and what P(linuxnet.gre.gre_plan#filter) needs.
  type: dict
  contains:
    digest:
      description: A digest of the settings; P(linuxnet.gre.gre_plan#filter) refuses a check made with other ones.
      type: str
      sample: 3f2a9c0d1b7e4a55
    summary:
      description: The numbers of inventory hosts with links, of links and of external peers.
      type: dict
      sample: {hosts: 2, links: 1, external_peers: 0}
    hosts:
      description:
        - For each host of O(hosts) by name, its tunnels and its peers, as P(linuxnet.gre.gre_plan#filter) returns
          them (RV(linuxnet.gre.gre_plan#filter:_value), with a sample). Empty with O(plans=false). With
          O(packed=true), C(tunnels), C(peers) and C(ipsec) each as JSON text.
      type: dict
    external_peers:
      description: For each external peer with links, what to configure on it by hand.
      type: dict
      contains:
        address:
          description: Its public underlay address (its C(address)), to tell the peers apart.
          type: str
          sample: 198.51.100.250
        tunnels:
          description:
            - Its tunnels, in the shape of the O(linuxnet.gre.gre_tunnel#module:tunnels) option. Each is named
              C(gre-<host>) after the inventory host it leads to, or as the peer's C(interfaces) says; each with its
              C(routes) to the networks behind the hosts, as the hosts' tunnels.
          type: list
          elements: dict
        forward:
          description: The address families (4, 6) it forwards for others.
          type: list
          elements: int
        commands:
          description: The C(ip) commands that create them, then its routes and the C(sysctl) for its forwarding.
          type: list
          elements: str
          sample:
            - ip link add name gre-hosta mtu 1400 type gre remote 203.0.113.1 local 198.51.100.250 ttl 255 tos 0x00
              pmtudisc ikey 42 okey 42
            - ip link set dev gre-hosta up
            - ip address add 10.0.0.146/30 dev gre-hosta
    nodes:
      description:
        - Each node's id, public address, interface name (on its peers), whether it is an external peer, and its
          underlay MTU for IPv4 and for IPv6 (V(null) when unknown, or when none of its links needs that family).
        - P(linuxnet.gre.gre_plan#filter) takes the underlay MTUs of a host and of its peers from here, so both
          ends of a link get the same tunnel MTU.
      type: dict
      sample: {hosta: [0, 34.27.138.140, gre-hosta, false, 1460, null]}
    keys:
      description: The links that got a key automatically, as C([node, node, key]).
      type: list
      elements: list
      sample: [[hub, site2, 2], [hub, site3, 4]]
    routing:
      description:
        - For each inventory host with routes or forwarding, C([forward, [[peer, prefix, via, metric], ...]])
          (C(metric) V(null) when the link has none), planned over the whole topology;
          P(linuxnet.gre.gre_plan#filter) takes its host's from here.
      type: dict
      sample: {site1: [[4], [[hub, 192.168.2.0/24, 10.0.0.1, null]]]}
"""

import collections.abc as c
import difflib
import functools
import pathlib
import typing as t

import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import HostVarsView, call_planner, pack
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import Problems
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.role_settings import check_role_settings

# The role's variables (and only they) start with it; its internal ones with __gre_mesh_.
PREFIX = "gre_mesh_"


def gre_plan_check(
    hostvars: t.Any,
    groups: t.Any,
    hosts: t.Any = None,
    plans: t.Any = True,
    play_hosts: t.Any = None,
    role_settings: t.Any = None,
    packed: t.Any = False,
    **settings: t.Any,
) -> dict[str, t.Any]:
    def check(view: HostVarsView, groups: t.Any, **settings: t.Any) -> dict[str, t.Any]:
        if role_settings is not None:
            check_role(view, play_hosts or [], role_settings)
        result = check_mesh(view, groups, hosts, plans=bool(plans), play_hosts=play_hosts, **settings)
        if packed:
            result["hosts"] = {host: pack(plan) for host, plan in result["hosts"].items()}
        return result

    return call_planner("gre_plan_check", check, hostvars, groups, **settings)


def check_role(view: HostVarsView, play_hosts: t.Sequence[str], values: t.Any) -> None:
    """The role's other settings, for every host of the play at once (see plugin_utils/_planner/role_settings.py)."""
    if not isinstance(values, c.Mapping):
        raise AnsibleFilterError(f"linuxnet.gre.gre_plan_check: role_settings must be a dict, not {values!r}")
    specs = role_specs()
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise AnsibleFilterError(
            f"linuxnet.gre.gre_plan_check: role_settings: {unknown[0]!r} is no option of the gre_mesh role"
        )
    problems = Problems()
    check_role_settings(view, play_hosts, {name: specs[name] for name in values}, values, problems, validate)
    check_variable_names(view, play_hosts, specs, problems)
    problems.raise_any()


def check_variable_names(
    view: HostVarsView, play_hosts: t.Sequence[str], specs: t.Mapping[str, t.Any], problems: Problems
) -> None:
    """A gre_mesh_* variable the role does not have is a typo (gre_mesh_network): the role would ignore it."""
    for host in play_hosts:
        if host not in view:
            continue
        for name in sorted(key for key in view[host] if key.startswith(PREFIX) and key not in specs):
            # Compared without the prefix that they all share.
            close = difflib.get_close_matches(name[len(PREFIX) :], [known[len(PREFIX) :] for known in specs], n=1)
            hint = f"did you mean {PREFIX}{close[0]}? " if close else ""
            problems.add(
                f"host {host}: {name} is no variable of the gre_mesh role, which would ignore it; {hint}"
                "its variables are in roles/gre_mesh/defaults/main.yml"
            )


@functools.lru_cache(maxsize=1)
def role_specs() -> dict[str, dict[str, t.Any]]:
    """The gre_mesh role's argument specs, read from the role itself (one source of truth)."""
    path = pathlib.Path(__file__).resolve().parents[2] / "roles" / "gre_mesh" / "meta" / "argument_specs.yml"
    options = yaml.safe_load(path.read_text(encoding="utf-8"))["argument_specs"]["main"]["options"]
    keys = ("type", "elements", "choices")
    return {name: {key: spec[key] for key in keys if key in spec} for name, spec in options.items()}


def validate(spec: dict[str, t.Any], values: dict[str, t.Any]) -> list[str]:
    """Ansible's own check of role arguments: its error messages."""
    result = ArgumentSpecValidator(spec).validate(values)
    return [str(error) for error in result.error_messages]


class FilterModule:
    """linuxnet.gre's check of the whole inventory's GRE topology."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"gre_plan_check": gre_plan_check}
