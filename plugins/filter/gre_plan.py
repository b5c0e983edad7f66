# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gre_plan
short_description: Plan one host's GRE tunnels from the inventory
version_added: 0.1.0
author:
  - linuxnet.gre maintainers (@linuxnet)
description:
  - Turns the inventory into the tunnels of one host, in the shape the O(linuxnet.gre.gre_tunnel#module:tunnels)
    option of M(linuxnet.gre.gre_tunnel) takes, and the inner addresses of its peers to check the tunnels with.
  - Needs O(check), the result of P(linuxnet.gre.gre_plan_check#filter) run once (C(run_once)) over the whole
    inventory with the same settings. That filter checks the whole topology before any host changes, and
    knows each peer's id, public address, interface name and underlay MTUs, and the GRE keys that a link needs
    because of other links. This one then plans a single host, reading the variables of that host alone, with work in
    proportion to its links (and to the length of O(links)). It gives the same tunnels as
    RV(linuxnet.gre.gre_plan_check#filter:_value.hosts), without carrying every host's tunnels in one result.
  - Works from the inventory (O(_input) is C(hostvars), O(groups) is C(groups)), never from the hosts of
    the current play, so with C(--limit) the limited hosts still get their tunnels to peers outside the limit.
    Peers outside the play need only inventory variables, so C(gre_mesh_public) must not depend on facts.
  - "B(Nodes.) Every host that has links, and every external peer, is a node with: an B(id), C(gre_mesh_id)
    when pinned, otherwise derived from its name alone: the number the name ends with (C(node7) is 7,
    C(web-012) is 12), else the place in the alphabet, from 0, of the letter it ends with (C(hosta) is 0,
    C(hostb) is 1); only the first label of a DNS name counts. Two nodes with the same id are an error that
    names both; pin C(gre_mesh_id) on one of them. A B(public) address, the one peers send to:
    C(gre_mesh_public), else C(ansible_host) (or the inventory name) when that is an IP address. A B(local)
    address, the one the host sends from: C(gre_mesh_local), else the C(address) of the fact
    C(ansible_default_ipv4) (C(ansible_default_ipv6) for the IPv6 modes). On NAT clouds they differ: the local
    address is the private one, and peers send to the public one."
  - "B(Underlay addresses) (C(gre_mesh_public), C(gre_mesh_local), an external peer's C(address) and C(local))
    are IP addresses: names are not resolved, and an address with a prefix length is refused. Addresses that
    cannot be the end of a tunnel are refused: loopback (so a link to C(localhost), the control node, fails
    with a message saying so), unspecified, multicast, broadcast, 240.0.0.0/4, IPv4-mapped IPv6, and IPv6
    link-local (a tunnel's end cannot carry its zone). An IPv4 link-local address (169.254.0.0/16) is taken
    when set explicitly, since it works within one segment, but never from C(ansible_host), where it is a
    management address peers do not route to."
  - "B(Inner addresses.) The link between the nodes with ids i < j is link number j*(j-1)/2+i. Its subnet is
    that many O(prefix) blocks after the start of O(pool) (and of O(pool6) for IPv6, alongside). The end with the
    lower id takes the first address (.1 of a /30, .0 of a /31), the other end the next one. The two hosts of
    the seed, C(hosta) (id 0) and C(hostb) (id 1), get link number 0: 10.0.0.1/30 and 10.0.0.2/30.
    A link's addresses depend only on the ids of its two ends, and ids only on each node's own name or
    C(gre_mesh_id), so adding or removing hosts or links never renumbers the links that stay. The price is
    space: ids from 0 to N need N*(N+1)/2 subnets, so the default /16 pool holds ids up to 180 with /30 links
    (255 with /31); more hosts need a larger pool (ids up to 1000 fit a /11 with /30 links)."
  - "B(Interface names) are C(gre-<peer>) (C(gre_mesh_short_name) of the peer, default its name); a name that
    does not fit in the kernel's 15 bytes of UTF-8 is cut, never inside a character, and ends with the peer's id:
    C(gre-customer-17), C(gre-münchen-1). They depend on the peer alone, so they are stable too. An external
    peer's own interfaces are named C(gre-<host>) too, unless its C(interfaces) names them."
  - "B(Keys.) The kernel tells tunnels apart by mode, endpoints and key. When two tunnels of one node would
    share mode and remote address (two peers behind one NAT address, two external peers on one router), the
    links without a key get the key I(link number + 1), the same on both ends. Other links have no key,
    unless O(key) or a per-link key sets one. Adding such a peer can thus add a key to an existing link;
    its addresses stay."
  - "B(MTU.) A link without an MTU of its own (O(mtu), or C(mtu) on the link in O(links)) gets the smaller
    underlay MTU of its two ends less the GRE overhead: 24 bytes for V(gre), 38 for V(gretap), 52 for V(ip6gre)
    and 66 for V(ip6gretap) (the IPv6 modes include the 8 bytes of the encapsulation limit option), 4 more with a
    key. These are what Linux subtracts itself when the MTUs are equal, so a full-size packet with DF set passes
    even when one end's underlay is smaller (such as a cloud network of 1460 behind a router). A host's underlay
    MTU is C(gre_mesh_underlay_mtu), else the C(mtu) of the fact C(ansible_default_ipv4) (C(ansible_default_ipv6)
    for the IPv6 modes); an external peer's is its C(mtu). When either end's is unknown (no facts, as for a peer
    outside C(--limit)), the link gets no MTU: the kernel's choice for a new tunnel, and an existing tunnel keeps
    its own. GRE in UDP (O(encap)) costs 8 bytes more with V(fou) and 12 with V(gue) (the kernel's own figures:
    1468 for V(gre) with V(fou) and 1450 for V(gretap) with V(gue) over 1500). An MTU that is given (O(mtu), or a
    link's own) must fit the underlay MTUs that are known: at most
    the smaller of them less the overhead; a larger one is an error naming the link, the largest that fits
    and both ends' underlay MTUs."
positional: _input, groups, host
options:
  host:
    description: The host to plan, normally C(inventory_hostname). A host without links gets no tunnels.
    type: str
    required: true
  check:
    description:
      - The result of P(linuxnet.gre.gre_plan_check#filter) over the whole inventory, with the same settings
        (checked with a digest of them).
    type: dict
    required: true
extends_documentation_fragment:
  - linuxnet.gre.topology
notes:
  - The variables read from C(hostvars) are C(gre_mesh_id), C(gre_mesh_public), C(gre_mesh_local),
    C(gre_mesh_short_name), C(gre_mesh_underlay_mtu), C(ansible_host) and the facts C(ansible_default_ipv4) and
    C(ansible_default_ipv6).
seealso:
  - plugin: linuxnet.gre.gre_plan_check
    plugin_type: filter
  - module: linuxnet.gre.gre_tunnel
"""

EXAMPLES = r"""
- name: Check the whole topology, once, before any host changes (without every host's tunnels)
  ansible.builtin.set_fact:
    gre_check: >-
      {{ hostvars | linuxnet.gre.gre_plan_check(groups, hosts=ansible_play_batch, plans=false,
                                                full_mesh=['gre_hosts']) }}
  run_once: true

- name: Plan this host's tunnels
  ansible.builtin.set_fact:
    gre_plan: "{{ hostvars | linuxnet.gre.gre_plan(groups, inventory_hostname, check=gre_check, full_mesh=['gre_hosts']) }}"

- name: Build them
  linuxnet.gre.gre_tunnel:
    tunnels: "{{ gre_plan.tunnels }}"
    purge: true
  become: true

- name: Ping the other end of every tunnel
  ansible.builtin.command:
    cmd: ping -c 1 -W 2 {{ item.addresses[0] }}
  loop: "{{ gre_plan.peers }}"
  loop_control:
    label: "{{ item.interface }} to {{ item.peer }}"
  changed_when: false
"""

RETURN = r"""
_value:
  description: The host's tunnels and peers.
  type: dict
  sample:
    tunnels:
      - name: gre-hostb
        mode: gre
        local: 10.128.0.11
        remote: 34.44.203.186
        ttl: 255
        addresses: [10.0.0.1/30]
        state: present
        routes: [{prefix: 192.168.2.0/24, via: 10.0.0.2}]
    peers:
      - interface: gre-hostb
        peer: hostb
        external: false
        addresses: [10.0.0.2]
  contains:
    tunnels:
      description:
        - The host's tunnels, sorted by name, for the O(linuxnet.gre.gre_tunnel#module:tunnels) option of
          M(linuxnet.gre.gre_tunnel) as they are, with the keys C(name), C(mode), C(local), C(remote), C(ttl),
          C(addresses), C(state) and C(routes), and C(key) and C(mtu) when set (C(mtu) is set unless the MTU is
          left to the kernel), and C(encap) (C({type, dport})) on links with GRE in UDP (O(encap)).
        - "C(routes) (O(linuxnet.gre.gre_tunnel#module:tunnels[].routes), C({prefix, via}), and C(metric) when the
          link to the peer has one): the networks behind other nodes (C(gre_mesh_networks), an external peer's
          C(networks)) whose next hop is this tunnel's peer on the cheapest path (the sum of the links' C(metric),
          default 1 each; on a tie the path of fewer links, then the next hop with the lowest id), to the peer's
          inner address; on a spoke whose O(hub_spoke) entry has a C(summary), one route per summary to its hub
          instead of the routes through that hub to networks inside it. An empty list when none, so that gre_tunnel
          removes the routes it made for networks no longer planned."
      type: list
      elements: dict
    peers:
      description: One entry per tunnel, in the same order, to check the tunnels with.
      type: list
      elements: dict
      contains:
        interface:
          description: Name of the tunnel interface.
          type: str
        peer:
          description: Inventory name of the peer, or name of the external peer.
          type: str
        external:
          description: Whether the peer is an external peer.
          type: bool
        addresses:
          description: Inner addresses of the peer on this tunnel (without prefix length), to ping.
          type: list
          elements: str
    forward:
      description: The address families (4, 6) this host forwards for others (networks behind it, or a hub).
      type: list
      elements: int
      sample: [4]
    encap_peers:
      description:
        - Only where a link of the host carries GRE in UDP (O(encap)) - per UDP port it receives on, the public
          addresses of the peers whose GRE in UDP it takes there, for the O(linuxnet.gre.gre_firewall#module:encap_peers)
          option of M(linuxnet.gre.gre_firewall).
      type: list
      elements: dict
      returned: when a link of the host has O(encap)
      sample: [{port: 5555, peers: [198.51.100.2]}]
    modes:
      description: The modes of the host's tunnels, each once, sorted.
      type: list
      elements: str
      sample: [gre]
    in_udp:
      description: The names of the host's tunnels that carry GRE in UDP (with C(encap)).
      type: list
      elements: str
      sample: []
    gre_peers:
      description:
        - The remote addresses of the host's other tunnels (plain GRE), each once, in tunnel order, for the
          O(linuxnet.gre.gre_firewall#module:peers) option of M(linuxnet.gre.gre_firewall).
      type: list
      elements: str
      sample: [34.44.203.186]
    routed:
      description:
        - The names of the tunnels that carry routed traffic, for M(linuxnet.gre.gre_forward) and the MSS clamp of
          M(linuxnet.gre.gre_firewall) - every tunnel of a host that forwards (RV(_value.forward)), else the ones
          with routes.
      type: list
      elements: str
      sample: [gre-hostb]
    routed_networks:
      description:
        - For each tunnel with routes, C({interface, networks}) with the routes' prefixes, for the
          O(linuxnet.gre.gre_firewall#module:forward) option of M(linuxnet.gre.gre_firewall).
      type: list
      elements: dict
      sample: [{interface: gre-hostb, networks: [192.168.2.0/24]}]
"""

import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import call_planner
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import plan_host


def gre_plan(hostvars: t.Any, groups: t.Any, host: t.Any, check: t.Any = None, **settings: t.Any) -> dict[str, t.Any]:
    return call_planner("gre_plan", plan_host, hostvars, groups, host, check, **settings)


class FilterModule:
    """linuxnet.gre's inventory planner, one host at a time."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"gre_plan": gre_plan}
