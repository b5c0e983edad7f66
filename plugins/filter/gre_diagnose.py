# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gre_diagnose
short_description: Tell which GRE links work, and why the others do not, from both ends' evidence
version_added: 0.1.0
author:
  - linuxnet.gre maintainers (@linuxnet)
description:
  - Pairs the tunnels of a plan (P(linuxnet.gre.gre_plan_check#filter)) into links and combines the evidence
    that M(linuxnet.gre.gre_probe) gathered on both ends of each.
  - A link is up when every probed end's small pings and full-size pings (with DF) through the tunnel are
    answered. A link that is down gets exactly one cause, with a one-line fix, from an ordered list of checks,
    the most specific evidence first; the collection's guide C(docs/docsite/rst/verify.rst) lists them.
  - "Configuration first, per end: V(interface_missing), V(interface_wrong_kind), V(interface_down),
    V(local_not_on_host), V(endpoint_mismatch) (remote or local other than planned, or swapped); then between
    the ends: V(ipsec_not_established) (a link with IPsec whose IKE SA, with its ESP SA, is not up at an end, with
    strongSwan's log line of the run that says why, from the C(ipsec) text that verify_links.yml adds to an end's
    evidence), V(esp_dropped) (established at both ends, but one end's ESP SA received none of what the other's
    sent), V(key_mismatch), V(inner_subnets). When the small pings pass: V(mtu_black_hole). Otherwise where
    each direction's GRE is lost: V(host_firewall) (it arrives, is not taken, and a rule that drops GRE from the
    sender counted packets; for a link in UDP a rule that drops UDP), V(rp_filter) (it arrives, rp_filter is strict and the route back leaves by another
    interface), V(not_accepted) (it arrives and no tunnel takes it), V(path_drops_gre) (it leaves, nothing
    arrives, underlay pings pass; where the evidence has M(linuxnet.gre.gre_probe)'s UDP probe
    (O(linuxnet.gre.gre_probe#module:udp_port)), the fix says whether UDP to that port passes the path both ways,
    and then offers C(gre_mesh_encap: fou) for the link, or is dropped too), V(path_drops_udp) (the same for a link
    whose GRE is carried in UDP, C(encap): its UDP to the link's port is dropped), V(underlay_unreachable)
    (underlay pings fail too), V(not_sent); and
    V(inconclusive) (the two ends' probes did not overlap in time), V(no_reply), V(not_checked) (an end was not
    probed)."
  - "Routed paths (where the evidence has them: M(linuxnet.gre.gre_probe)'s O(linuxnet.gre.gre_probe#module:paths)):
    a path is up when its ping from the host's own network address is answered. One that is down gets one cause
    from the evidence of every host on its planned way there and back (the plan's C(tunnels[].routes)):
    V(no_source_address), V(path_not_checked), V(recursive_routing), V(link_down) (a link on the way is down),
    V(rp_filter) (a host takes the packets from a tunnel with strict rp_filter and routes the source back by
    another interface), V(route_missing), V(route_elsewhere), V(forwarding_off), V(forward_firewall) (a FORWARD drop
    counted packets), V(lan_no_route_back) (a device behind the owner does not answer, the owner's own address in
    the network does), V(path_no_reply)."
  - Pure Python, no I/O; the result holds the matrix as text, the summary lines and a Graphviz DOT picture.
positional: plan
options:
  _input:
    description:
      - The evidence by host, each the result of M(linuxnet.gre.gre_probe) on that host. A host without an entry
        (or with an empty one) was not probed.
    type: dict
    required: true
  plan:
    description: The plan of P(linuxnet.gre.gre_plan_check#filter) (packed or not), of which the C(hosts) are used.
    type: dict
    required: true
seealso:
  - module: linuxnet.gre.gre_probe
  - plugin: linuxnet.gre.gre_plan_check
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Probe every host at once
  linuxnet.gre.gre_probe:
    tunnels: "{{ plan.hosts[inventory_hostname].tunnels }}"
    peers: "{{ plan.hosts[inventory_hostname].peers }}"
  become: true
  register: probe

- name: Diagnose every link
  ansible.builtin.set_fact:
    diagnosis: >-
      {{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'probe')))
         | linuxnet.gre.gre_diagnose(plan) }}
  run_once: true

- name: Print the matrix and one line per link
  ansible.builtin.debug:
    msg: "{{ diagnosis.table + diagnosis.summary }}"
  run_once: true
"""

RETURN = r"""
_value:
  description: Every link's status and cause, and the views of them.
  type: dict
  contains:
    hosts:
      description: The nodes of the links, sorted.
      type: list
      elements: str
    links:
      description:
        - One entry per link, sorted by its two nodes (C(hosts)), with C(status) (V(up) or V(down)), C(interfaces)
          and inner C(addresses) per end, C(rtt_ms) per end (the average of its small pings, null without replies),
          C(checked_from) (the ends that were probed), and for a link that is down C(cause) (a code), C(text) and
          C(fix).
      type: list
      elements: dict
    up:
      description: The number of links up.
      type: int
    down:
      description: The number of links down.
      type: int
    matrix:
      description: Hosts by hosts; each cell has the link's C(status) (or V(not a link), V(self)) and the row's C(rtt_ms).
      type: dict
    table:
      description: The matrix as lines of text; a row pings the columns, C(-) is not a link.
      type: list
      elements: str
    summary:
      description: One line per link; for a link that is down, its cause and fix.
      type: list
      elements: str
    dot:
      description:
        - The topology in Graphviz DOT, each link green (up) or red (down) and labelled with its inner addresses; with
          routed paths, each network drawn behind its owner, green or red (with the causes of its paths that are down).
      type: str
    paths:
      description:
        - Only where the evidence has routed paths. One entry per path, sorted by the host it is probed from, with
          C(from), C(network), C(owner), C(address) (pinged), C(source) (the host's own address it is pinged from),
          C(via) (the transit hosts of the planned way), C(status) (V(up) or V(down)), C(rtt_ms), and for one that is
          down C(cause), C(text) and C(fix). C(table) then has a second block (rows the hosts, columns the networks)
          and C(summary) a line per path.
      type: list
      elements: dict
    paths_up:
      description: The number of routed paths up (only with routed paths).
      type: int
    paths_down:
      description: The number of routed paths down (only with routed paths).
      type: int
    path_matrix:
      description: Host -> network -> the path's C(status) and C(rtt_ms) (only with routed paths).
      type: dict
"""

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.plugin_utils._diagnose import diagnose
from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import checked_plan


def gre_diagnose(probes: t.Any, plan: t.Any) -> dict[str, t.Any]:
    if not isinstance(probes, t.Mapping):
        raise AnsibleFilterError(
            f"gre_diagnose: the input must be a dict of probe results by host, not {type(probes).__name__}"
        )
    plan = checked_plan("gre_diagnose", plan)
    usable = {host: probe for host, probe in probes.items() if isinstance(probe, t.Mapping) and "tunnels" in probe}
    try:
        return diagnose(usable, plan)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"gre_diagnose: the evidence is not what gre_probe returns: {exc!r}") from exc


class FilterModule:
    """Which GRE links work, and why the others do not."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"gre_diagnose": gre_diagnose}
