# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gre_verify_paths
short_description: Which routed paths each host probes, and the address to ping in each peer network
version_added: 0.1.0
author:
  - linuxnet.gre maintainers (@linuxnet)
description:
  - For each planned host with networks behind it (C(gre_mesh_networks)), one routed path per network of another
    node that the plan routes through its tunnels (C(tunnels[].routes) of P(linuxnet.gre.gre_plan_check#filter)),
    with the address to ping in it; M(linuxnet.gre.gre_probe) pings it (O(linuxnet.gre.gre_probe#module:paths))
    from the host's own address in its networks.
  - "The address to ping in a network: the one named for it in C(gre_mesh_verify_targets) (a device behind its
    owner; the owner's own address in the network is then pinged too, as its C(gateway)); else the network itself
    where it is one address (a /32 or /128); else the owner's own address in it, as C(ip -json address show) read
    it (the role's C(__gre_mesh_verify_addresses)). A network with none of these is not probed, and C(skipped)
    says which variable would make it probed."
positional: plan
options:
  _input:
    description: Ansible's C(hostvars).
    type: dict
    required: true
  plan:
    description: The plan of P(linuxnet.gre.gre_plan_check#filter) (packed or not).
    type: dict
    required: true
seealso:
  - module: linuxnet.gre.gre_probe
  - plugin: linuxnet.gre.gre_diagnose
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Choose the routed paths of every host
  ansible.builtin.set_fact:
    paths: "{{ hostvars | linuxnet.gre.gre_verify_paths(plan) }}"
  run_once: true

- name: Probe them with the tunnels
  linuxnet.gre.gre_probe:
    tunnels: "{{ plan.hosts[inventory_hostname].tunnels }}"
    peers: "{{ plan.hosts[inventory_hostname].peers }}"
    networks: "{{ gre_mesh_networks | default([]) }}"
    paths: "{{ paths.paths[inventory_hostname] | default([]) }}"
  become: true
"""

RETURN = r"""
_value:
  description: The paths by host, and the ones that cannot be probed.
  type: dict
  contains:
    paths:
      description:
        - Host -> its paths, each with C(network), C(peer) (the network's owner), C(address) (to ping) and
          C(gateway) (the owner's own address in the network, when C(address) is a device behind it; else null).
      type: dict
      sample: {node1: [{network: 198.51.100.202/32, peer: node2, address: 198.51.100.202, gateway: null}]}
    skipped:
      description: One line per (host, network) that is not probed, saying why and what to set.
      type: list
      elements: str
"""

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import HostVarsView, checked_plan
from ansible_collections.linuxnet.gre.plugins.plugin_utils._paths import PathError, VariableError, verify_paths


def gre_verify_paths(hostvars: t.Any, plan: t.Any) -> dict[str, t.Any]:
    if not isinstance(hostvars, t.Mapping):
        raise AnsibleFilterError(f"gre_verify_paths: the input must be hostvars, not {type(hostvars).__name__}")
    plan = checked_plan("gre_verify_paths", plan)
    try:
        return verify_paths(HostVarsView(hostvars), plan)
    except (PathError, VariableError) as exc:
        raise AnsibleFilterError(f"gre_verify_paths: {exc}") from None


class FilterModule:
    """Which routed paths each host probes."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"gre_verify_paths": gre_verify_paths}
