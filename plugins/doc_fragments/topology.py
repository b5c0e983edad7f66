# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """What the filters gre_plan_check and gre_plan both take: the inventory, and the topology settings.

    The settings are the planner's DEFAULTS (plugin_utils/_planner/plan.py); the gre_mesh role passes
    them its gre_mesh_* variables.
    """

    DOCUMENTATION = r"""
options:
  _input:
    description: The inventory's C(hostvars).
    type: dict
    required: true
  groups:
    description: The inventory's C(groups).
    type: dict
    required: true
  links:
    description:
      - Explicit links (the role's C(gre_mesh_links)). Each is a list of two names (inventory hosts or names of
        O(external_peers)), or a dict with C(hosts) (the two names) and any of the per-link settings C(mode),
        C(key), C(ttl), C(mtu), C(subnet) (an IPv4 network, /31 or shorter), C(subnet6) (an IPv6 network,
        /127 or shorter), C(metric), C(networks), C(ipsec) (a boolean, see O(ipsec)), C(encap) (V(none), V(fou) or
        V(gue), see O(encap)) and C(encap_port) (see O(encap_port)).
      - "C(metric) (1 to 4294967295, default 1) is the link's cost when routes to the networks behind the nodes
        choose a path: the path of the lowest total cost wins, then the one of fewer links, then the next hop with
        the lowest id. Routes over the link carry it as their metric. Set it on a link of O(full_mesh) or
        O(hub_spoke) by listing that pair here with it."
      - "C(networks) (a non-empty list of networks, such as C([192.168.1.0/24, 192.168.2.0/24])) lets the link
        carry only the networks behind the nodes that lie inside one of them: routes to any other network are
        planned without the link (around it, or none where no other path exists). A spoke's C(summary) takes the
        link only if one of them holds the whole summary. Each must hold at least one network behind a node,
        whole, of a family the link carries inside. Without C(networks) a link carries every network."
      - A link for a pair that O(full_mesh) or O(hub_spoke) also links gives that link its per-link settings;
        listing one pair twice here is an error.
    type: list
    elements: raw
  full_mesh:
    description: Groups whose hosts are all linked with each other (the role's C(gre_mesh_full_mesh)).
    type: list
    elements: str
  hub_spoke:
    description:
      - Hub-and-spoke topologies (the role's C(gre_mesh_hub_spoke)), each a dict with C(hubs) and C(spokes),
        two group names; every hub is linked with every spoke. A host in both groups is an error.
      - "Optionally C(summary), a list of networks (C([192.168.0.0/16])): each spoke then routes each summary
        through its hub (the one with the lowest id) instead of one route per network it reaches through that
        hub inside the summary; routes through other nodes (a direct link) stay, being more specific. A summary
        must contain at least one network behind a node and no network only in part, and no underlay address
        the planner knows: a default route (C(0.0.0.0/0), C(::/0)) is refused, as it would carry the tunnels' own
        packets (recursive routing)."
    type: list
    elements: dict
  external_peers:
    description:
      - Unmanaged peers outside the inventory (the role's C(gre_mesh_external_peers)), each a dict with C(name),
        C(address) (its public underlay address) and optionally C(local) (the address it sends from, default
        C(address)), C(id), C(short_name), C(mtu) (its underlay MTU, for the tunnel MTU of its links) and
        C(interfaces). Link them with O(links). Their side of each tunnel is in the C(external_peers) of the result
        of P(linuxnet.gre.gre_plan_check#filter).
      - "C(interfaces) names the peer's own interfaces, for a peer that already has its tunnels (made by hand,
        C({hosta: gre1})): a dict from an inventory host the peer links to, to the name of the peer's interface
        for it. Default C(gre-<host>) (as the hosts' names are made). It changes only the peer's side; the
        managed host still names its interface C(gre-<peer>). A host the peer has no link with, a name the
        kernel refuses, or two tunnels of the peer with one name are errors."
      - "C(networks) lists the networks behind the peer (as the hosts' C(gre_mesh_networks)): the hosts get
        routes to them, and the peer's C(commands) include its routes to the hosts' networks and the
        C(sysctl) that turns on its forwarding."
    type: list
    elements: dict
  pool:
    description:
      - IPv4 pool of the inner subnets (the role's C(gre_mesh_pool)). Empty for no IPv4 inner addresses; then
        O(pool6) must be set.
      - It must not contain any underlay address, nor overlap 127.0.0.0/8 (loopback), 169.254.0.0/16
        (link-local, where clouds answer metadata requests at 169.254.169.254), 224.0.0.0/4 (multicast) or
        240.0.0.0/4 (reserved); nor may a link's C(subnet).
    type: str
    default: 10.0.0.0/16
  prefix:
    description: Prefix length of each link's IPv4 subnet (the role's C(gre_mesh_prefix)).
    type: int
    choices: [30, 31]
    default: 30
  pool6:
    description:
      - IPv6 pool of the inner subnets (the role's C(gre_mesh_pool6)), for IPv6 addresses alongside IPv4 ones.
      - It must not overlap C(::1), C(fe80::/10) (link-local, which the kernel gives every interface itself) or
        C(ff00::/8) (multicast); nor may a link's C(subnet6).
    type: str
  prefix6:
    description: Prefix length of each link's IPv6 subnet (the role's C(gre_mesh_prefix6)).
    type: int
    choices: [126, 127]
    default: 127
  mode:
    description:
      - Tunnel mode of links without their own (the role's C(gre_mesh_mode)). V(gre) and V(gretap) need IPv4
        underlay addresses on both ends, V(ip6gre) and V(ip6gretap) IPv6 ones.
    type: str
    choices: [gre, gretap, ip6gre, ip6gretap]
    default: gre
  ttl:
    description: TTL of the outer packets of links without their own (the role's C(gre_mesh_ttl)).
    type: int
    default: 255
  key:
    description:
      - GRE key of links without their own (the role's C(gre_mesh_key)), a number or a dotted quad.
      - Default is no key, except where one is needed (B(Keys.) in the description of
        P(linuxnet.gre.gre_plan#filter)).
    type: str
  mtu:
    description:
      - MTU of the tunnels of links without their own (the role's C(gre_mesh_mtu)). It must fit the underlay MTUs
        that are known (B(MTU.) in the description of P(linuxnet.gre.gre_plan#filter)).
      - Default is the smaller underlay MTU of the link's two ends less the GRE overhead, or the kernel's choice
        when either is unknown.
    type: int
  ipsec:
    description:
      - GRE over IPsec on links without their own C(ipsec) (the role's C(gre_mesh_ipsec)). Such a link's tunnel MTU
        is 42 bytes smaller (ESP 34, NAT traversal 8) and rounded down to where ESP needs no padding, and each of
        its ends gets an entry in the C(ipsec) list of its plan (C(name), C(connection), C(peer), C(local), C(remote), C(ends), C(initiate)).
      - Both ends must be inventory hosts with the same C(gre_mesh_ipsec_secret), at least 16 characters; it is
        checked but never shown.
    type: bool
    default: false
  encap:
    description:
      - GRE in UDP on links without their own C(encap) (the role's C(gre_mesh_encap)), for paths that drop IP
        protocol 47. V(fou) wraps each GRE packet in UDP (8 bytes), V(gue) in UDP and a GUE header (12 bytes), the
        kernel's Foo-over-UDP and Generic UDP Encapsulation; V(none) is plain GRE.
      - Each tunnel of such a link gets C(encap) (C({type, dport}), the
        O(linuxnet.gre.gre_tunnel#module:encap) option of M(linuxnet.gre.gre_tunnel)), its MTU is 8 (or 12) bytes smaller, and each end's plan lists its
        peers in C(encap_peers) (C([{port, peers}])) for its firewall, which lets that UDP port in from them
        instead of GRE.
      - Not with O(ipsec) on the same link (refused). An external peer needs the receive port itself
        (C(ip fou add port PORT ipproto 47), or C(gue)); its printed commands include it.
    type: str
    choices: [none, fou, gue]
    default: none
  encap_port:
    description:
      - The UDP port both ends of a link with O(encap) receive its GRE in UDP on, and send it to, on links without
        their own C(encap_port) (the role's C(gre_mesh_encap_port)). The source port is chosen by the kernel per
        flow. Links of one host that share a port share its kind (V(fou) or V(gue)).
    type: int
    default: 5555
notes:
  - The topology settings (O(links), O(full_mesh), O(hub_spoke), O(external_peers), the pools and the defaults) are
    the same for every host; keep them in C(group_vars/all) or in the play.
"""
