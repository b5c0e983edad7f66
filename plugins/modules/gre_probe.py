#!/usr/bin/python
# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gre_probe
short_description: Gather a host's evidence about each of its GRE tunnels, to tell why a link does not work
version_added: 0.1.0
description:
  - For each tunnel given, gathers what the host itself can tell about it, read-only, and returns it without
    judging it. The filter P(linuxnet.gre.gre_diagnose#filter) combines both ends' evidence into a status and a
    cause per link; C(playbooks/verify.yml) runs both.
  - "Per tunnel: the interface as the kernel has it (exists, up, kind, local, remote, keys, MTU, inner
    addresses) and its receive and transmit packet counters before and after the probe; whether its local
    address is an address of the host; pings through it to the peer's inner addresses, small and full-size
    (tunnel MTU minus 28 bytes, 48 over IPv6) with fragmentation forbidden; a ping to the remote underlay
    address outside the tunnel; how many GRE packets a capture on every interface saw going to and coming from
    the remote address; C(net.ipv4.conf.{all,IFACE}.rp_filter) of the interface that holds the local address
    and of the tunnel, with the interface of the route back; the rules and policies of the packet filters
    (C(iptables-legacy), C(iptables-nft), C(nft)) that can drop GRE from the remote address, with the packets
    they counted during the probe. For a tunnel whose GRE is carried in UDP (O(tunnels[].encap)), the capture
    counts UDP to its port instead of GRE, and the rules that can drop UDP from the remote address are read."
  - "With O(udp_port): per tunnel of plain GRE to a peer of the inventory, one UDP datagram a round from the
    tunnel's local address to the planned remote address (only there) at that port, what GRE in UDP would send;
    the capture counts UDP to that port too, so the peer's evidence says how many of this host's datagrams
    arrived. Without a listener the peer answers ICMP port unreachable, which no ping counts."
  - All pings and the capture run at once, in O(rounds) rounds spread over O(window) seconds, and the capture
    goes on O(timeout) seconds after the last round. Run it on every host of the links with the same O(start_at)
    (as async jobs when Ansible's C(forks) are fewer than the hosts), so that each host's capture sees its peers'
    packets arrive.
  - Reads C(ip -details -statistics -json address show) twice, the packet filters' rules twice (C(nft --json list
    ruleset), as M(linuxnet.gre.gre_firewall) reads it, and C(iptables-save -c)), and the routes back with one
    C(ip -json -batch). The pings are those of M(linuxnet.gre.gre_ping), sent in the same loop that reads the
    capture, a packet socket with a filter for IP protocol 47 (and UDP to the ports of O(udp_port) and
    O(tunnels[].encap)), so no C(tcpdump) is needed.
  - "Routed paths (O(paths)): from an address of the host's own O(networks) (read on the host: the first address
    of one of its interfaces inside one of them, of the path's family), a ping to an address in a peer's network,
    and one to that network's gateway (O(paths[].gateway)) where the address is a device behind it; the ping is
    not bound to a tunnel, so it takes the host's routes. Then, where paths, O(networks) or planned routes
    (O(tunnels[].routes)) are given, the routed evidence: C(net.ipv4.ip_forward) and
    C(net.ipv6.conf.all.forwarding), the route the kernel takes to each planned route's network and to each
    path's address from its source (in the same C(ip -json -batch)), and the rules and policies of the
    FORWARD chains that drop, with their counters."
  - "Needs root (C(become: true)) for the capture and the raw ICMP sockets; without the capture's privilege
    it reports the capture as not available and goes on."
requirements:
  - Python on the target, a version the ansible-core in use supports there (3.7 or newer with ansible-core 2.17,
    3.8 or newer from 2.18 on)
  - iproute2 4.14 or newer (C(ip -details -statistics -json)); 5.0 or newer for the interface of the route back,
    which older C(ip route get) does not print as JSON (it is then left out)
  - no C(tcpdump); the capture is a packet socket of Python's own
  - to read the packet filters, whichever is installed - C(nft), C(iptables-legacy-save) and C(iptables-nft-save),
    or else a plain C(iptables-save) (and the C(ip6tables) ones for IPv6 tunnels); a filter without its tools is
    not read
author:
  - linuxnet.gre maintainers (@linuxnet)
attributes:
  check_mode:
    support: full
    description: It only reads and sends pings, which change nothing on the host; it probes in check mode too.
extends_documentation_fragment:
  - linuxnet.gre.attributes.read_only
options:
  tunnels:
    description:
      - The host's planned tunnels, in the shape of the O(linuxnet.gre.gre_tunnel#module:tunnels) option
        (the C(tunnels) of the plan of P(linuxnet.gre.gre_plan_check#filter)). Tunnels with O(tunnels[].state=absent)
        are left out.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The tunnel interface.
        type: str
        required: true
      mode:
        description: The planned kind of tunnel.
        type: str
        choices: [gre, gretap, ip6gre, ip6gretap]
        default: gre
      local:
        description: The planned local underlay address.
        type: str
      remote:
        description: The planned remote underlay address.
        type: str
      ttl:
        description: The planned TTL (not probed).
        type: int
        default: 255
      tos:
        description: The planned TOS (not probed).
        type: str
        default: '0'
      key:
        description: The planned GRE key.
        type: str
      ikey:
        description: The planned input key.
        type: str
      okey:
        description: The planned output key.
        type: str
      pmtudisc:
        description: The planned path MTU discovery setting (not probed).
        type: bool
      mtu:
        description: The planned MTU; the interface's own MTU sizes the full-size pings when it exists.
        type: int
      dev:
        description: The planned underlay device (not probed).
        type: str
      encap:
        description:
          - The planned GRE in UDP, in the shape of M(linuxnet.gre.gre_tunnel)'s; of it O(tunnels[].encap.type)
            and O(tunnels[].encap.dport) are used, the port the capture counts as the tunnel's packets.
        type: dict
        suboptions:
          type:
            description: The kernel's encapsulation.
            type: str
            required: true
            choices: [fou, gue]
          dport:
            description: The UDP port both ends receive the tunnel's packets on.
            type: int
            required: true
          sport:
            description: The source port (not probed).
            type: int
            default: 0
          csum:
            description: UDP checksums (not probed).
            type: bool
            default: false
          remcsum:
            description: Remote checksum offload (not probed).
            type: bool
            default: false
      addresses:
        description: The planned inner addresses of this end, with prefix length.
        type: list
        elements: str
        default: []
      routes:
        description: The planned routes through this tunnel (taken, not probed).
        type: list
        elements: dict
        suboptions:
          prefix:
            description: The network.
            type: str
            required: true
          via:
            description: The inner next hop.
            type: str
          metric:
            description: The metric.
            type: int
      state:
        description: V(absent) leaves the tunnel out.
        type: str
        choices: [present, absent]
        default: present
  peers:
    description:
      - The far end of each tunnel (the C(peers) of the plan), matched to O(tunnels) by O(peers[].interface);
        the same shape as O(linuxnet.gre.gre_ping#module:targets).
    type: list
    elements: dict
    default: []
    suboptions:
      interface:
        description: The tunnel interface.
        type: str
        required: true
      peer:
        description: The name of the far end, copied into the result.
        type: str
      external:
        description: Whether the far end is outside the inventory, copied into the result.
        type: bool
        default: false
      addresses:
        description: The far end's inner addresses (without prefix), pinged through the tunnel.
        type: list
        elements: str
        default: []
  networks:
    description:
      - The networks behind this host (its C(gre_mesh_networks)); the routed pings of O(paths) are sent from
        the host's address inside one of them.
    type: list
    elements: str
    default: []
  paths:
    description:
      - The routed paths to probe from this host, one per peer network (what
        P(linuxnet.gre.gre_verify_paths#filter) gives each host).
    type: list
    elements: dict
    default: []
    suboptions:
      network:
        description: The peer's network.
        type: str
        required: true
      peer:
        description: The network's owner, copied into the result.
        type: str
      address:
        description: The address in O(paths[].network) to ping.
        type: str
        required: true
      gateway:
        description:
          - The owner's own address in O(paths[].network), pinged too where O(paths[].address) is a device behind
            it, so that a device without a route back is told from a path that does not work.
        type: str
  rounds:
    description: Echo requests per address and kind of ping.
    type: int
    default: 5
  window:
    description: Seconds over which the rounds are spread.
    type: float
    default: 3
  timeout:
    description: Seconds to wait for replies (and keep capturing) after the last round.
    type: float
    default: 2
  start_at:
    description:
      - When to start the pings and the capture, in seconds since the epoch (UTC). Give every host the same
        time, a few seconds ahead, so that all start together whatever their connection's delay; a time in the
        past, or more than 60 seconds ahead by the host's clock, starts at once.
    type: float
  full_size:
    description: Also ping through each tunnel with full-size packets and fragmentation forbidden.
    type: bool
    default: true
  capture:
    description: Capture GRE on every interface during the pings.
    type: bool
    default: true
  udp_port:
    description:
      - Also send a UDP datagram a round to each tunnel's planned remote address at this port, and count the UDP
        to it that arrives from each remote (issue 18, GRE in UDP; the role passes C(gre_mesh_encap_port)).
        Not given, no UDP is sent.
    type: int
notes:
  - Only IPv4 rules are judged by source address and protocol; any other match a rule has (an interface, a
    state, a named set) is not evaluated, so a rule is a candidate and its counter during the probe decides.
seealso:
  - module: linuxnet.gre.gre_ping
  - plugin: linuxnet.gre.gre_diagnose
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Gather every host's evidence at once (one task, so that the captures see the peers' packets)
  linuxnet.gre.gre_probe:
    tunnels: "{{ plan.hosts[inventory_hostname].tunnels }}"
    peers: "{{ plan.hosts[inventory_hostname].peers }}"
  become: true
  register: probe

- name: One tunnel, by hand
  linuxnet.gre.gre_probe:
    tunnels:
      - {name: gre1, local: 203.0.113.1, remote: 198.51.100.1, addresses: [10.0.0.1/30]}
    peers:
      - {interface: gre1, peer: hostb, addresses: [10.0.0.2]}
  become: true
"""

RETURN = r"""
tunnels:
  description: The evidence about each tunnel given, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    interface:
      description: The tunnel interface.
      type: str
      sample: gre-hostb
    peer:
      description: The far end's name, from O(peers).
      type: str
      sample: hostb
    external:
      description: Whether the far end is outside the inventory.
      type: bool
      sample: false
    planned:
      description:
        - The planned C(mode), C(local), C(remote), C(key), C(mtu) and C(addresses); and C(encap) (C(type),
          C(dport)) for a tunnel whose GRE is carried in UDP.
      type: dict
      sample: {mode: gre, local: 203.0.113.1, remote: 198.51.100.1, key: null, mtu: 1476, addresses: [10.0.0.1/30]}
    peer_addresses:
      description: The far end's inner addresses that were pinged.
      type: list
      elements: str
      sample: [10.0.0.2]
    exists:
      description: Whether the interface exists.
      type: bool
      sample: true
    actual:
      description:
        - The interface as the kernel has it (C(kind), C(up), C(operstate), C(local), C(remote), C(ikey),
          C(okey), C(mtu), C(addresses)); null when it does not exist.
      type: dict
      sample: {kind: gre, up: true, operstate: UNKNOWN, local: 203.0.113.1, remote: 198.51.100.1, ikey: null,
               okey: null, mtu: 1476, addresses: [10.0.0.1/30]}
    local_on_host:
      description: Whether the local address (actual, else planned) is an address of the host; null without one.
      type: bool
      sample: true
    counters:
      description: What the interface's C(rx_packets), C(tx_packets), C(rx_errors) and C(tx_errors) counted during the probe.
      type: dict
      sample: {rx_packets: 10, tx_packets: 10, rx_errors: 0, tx_errors: 0}
    pings:
      description:
        - C(small) and C(full) (one result per peer address, as P(linuxnet.gre.gre_ping#module) returns them, plus
          C(size) and C(dont_fragment)) through the tunnel, and C(underlay), the ping to the remote address.
      type: dict
    capture:
      description:
        - GRE packets seen C(sent) to the remote address and C(received) from it, and the interfaces they were seen
          on (C(sent_on), C(received_on)); for a tunnel with C(encap), UDP packets to its C(dport) instead.
      type: dict
      sample: {sent: 10, sent_on: [eth1], received: 10, received_on: [eth1]}
    udp:
      description:
        - The UDP probe (O(udp_port)), C(port) and the datagrams C(sent) to the planned remote address (with the
          C(error) that stopped them), and how many the capture saw arrive from the remote at that port
          (C(received)); null for a tunnel not probed so (with C(encap), to a peer outside the inventory, or
          without a planned remote).
      returned: when O(udp_port) is given
      type: dict
      sample: {port: 5555, sent: 3, error: null, received: 3}
    rp_filter:
      description:
        - C(net.ipv4.conf.all.rp_filter) (C(all)) and that of the C(interface) that holds the local address
          (C(value)), the C(effective) one (the larger), and the interface of the route back to the remote address
          (C(route_back)).
      type: dict
      sample: {interface: eth1, all: 0, value: 0, effective: 0, route_back: eth1}
    rp_filter_tunnel:
      description: The same for the tunnel interface itself and the route back to the peer's first inner address.
      type: dict
    firewall:
      description:
        - The rules and policies that can drop GRE from the remote address (C(tool), C(table), C(chain), C(rule)),
          with the packets they counted in all (C(packets)) and during the probe (C(delta)).
      type: list
      elements: dict
      sample:
        - {tool: iptables-legacy, table: filter, chain: INPUT, rule: "-A INPUT -s 203.0.113.3/32 -p gre -j DROP",
           packets: 12, delta: 5}
routed:
  description:
    - The routed evidence, returned where O(paths), O(networks) or planned routes are given.
    - "C(networks) (as given); C(forwarding) (C(ipv4), C(ipv6): the sysctl values, null when unreadable);
      C(routes), per planned route its C(prefix), planned C(interface) and C(via), the C(lookup) address and the
      C(actual) route the kernel takes to it (C(dev), C(gateway), C(type); all null when there is none);
      C(forward_firewall), the rules and policies of FORWARD chains that drop (as in C(tunnels[].firewall));
      C(paths), per path its C(network), C(peer), C(address), C(gateway), the C(source) address (null when the
      host has none in its networks), the C(route) from it, and the C(ping) and C(gateway_ping) results."
  returned: when routed
  type: dict
  sample:
    networks: [198.51.100.201/32]
    forwarding: {ipv4: 1, ipv6: 0}
    routes:
      - {prefix: 198.51.100.202/32, interface: gre-node3, via: 10.0.0.6, lookup: 198.51.100.202,
         actual: {dev: gre-node3, gateway: 10.0.0.6, type: unicast}}
    forward_firewall: []
    paths:
      - {network: 198.51.100.202/32, peer: node2, address: 198.51.100.202, gateway: null, source: 198.51.100.201,
         route: {dev: gre-node3, gateway: 10.0.0.6, type: unicast}, gateway_ping: null,
         ping: {interface: null, address: 198.51.100.202, sent: 5, received: 5, rtt_ms: {min: 0.4, avg: 0.5, max: 0.7},
                up: true, error: null, size: 56, dont_fragment: false}}
host:
  description:
    - The host's C(addresses); C(rp_filter_drops), what the kernel's C(IPReversePathFilter) counter counted during
      the probe; the C(capture)'s availability; C(firewall_errors); the seconds it C(waited) for O(start_at); and
      when the probe C(started), sent its last round (C(sent_until)) and C(ended), in seconds since the epoch.
  returned: success
  type: dict
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.gre.plugins.module_utils._host import run_module
from ansible_collections.linuxnet.gre.plugins.module_utils._probe.probe import Host, run
from ansible_collections.linuxnet.gre.plugins.module_utils._probe.spec import peers_option
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.spec import entry_options


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "tunnels": {
                "type": "list",
                "elements": "dict",
                "required": True,
                # gre_tunnel's tunnels, option for option.
                "options": entry_options(),
            },
            "peers": peers_option(default=[]),
            "networks": {"type": "list", "elements": "str", "default": []},
            "paths": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "network": {"type": "str", "required": True},
                    "peer": {"type": "str"},
                    "address": {"type": "str", "required": True},
                    "gateway": {"type": "str"},
                },
            },
            "rounds": {"type": "int", "default": 5},
            "window": {"type": "float", "default": 3},
            "timeout": {"type": "float", "default": 2},
            "start_at": {"type": "float"},
            "full_size": {"type": "bool", "default": True},
            "capture": {"type": "bool", "default": True},
            "udp_port": {"type": "int"},
        },
        supports_check_mode=True,
    )
    run_module(module, lambda: run(Host(module), module.params))


if __name__ == "__main__":
    main()
