#!/usr/bin/python
# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gre_firewall
short_description: Let GRE in from exactly a host's tunnel peers, clamp TCP MSS and open forwarding for routed sites
version_added: 0.1.0
description:
  - Lets IP protocol 47 (GRE) in from exactly the addresses in O(peers) and drops, counted, the GRE of every other
    source, in the packet filter that filters the host's input. It adds objects of its own and never changes or
    deletes a rule it did not add.
  - "B(nftables): the table C(inet linuxnet_gre) with sets of the peers' addresses (C(peers4), C(peers6)) and a
    base chain C(input) at priority C(filter - 10) (policy accept) that accepts the peers' GRE and drops, counted,
    all other GRE. An accept in one base chain does not stop a drop in another, so every other base chain on the
    input hook (families C(ip), C(ip6), C(inet), type filter) that filters also gets one rule at its top,
    C(ip protocol gre counter accept comment \"managed-by: linuxnet.gre ipv4\") (C(meta l4proto gre) for IPv6).
    That rule accepts any source: the drop in C(linuxnet_gre) is final, whatever the order of the chains. All
    changes go in one transaction (C(nft -j -f -))."
  - "B(GRE in UDP) (O(encap_peers), for the tunnels of M(linuxnet.gre.gre_tunnel) with its C(encap) option,
    the kernel's FOU or GUE): UDP to each receive port is let in from exactly that port's peers, and all other UDP to
    the port is dropped, counted, in the same objects. nftables: a set C(udp4_PORT) (C(udp6_PORT)) of the peers per
    port and IP version, and in the chain C(input) of C(linuxnet_gre) C(ip saddr @udp4_PORT udp dport PORT counter
    accept) and C(meta nfproto ipv4 udp dport PORT counter drop); every other filtering input base chain gets
    C(meta nfproto ipv4 udp dport { PORTS } counter accept) at its top (commented C(managed-by: linuxnet.gre ipv4
    udp PORTS)). iptables: the chain C(LINUXNET-GRE-UDP) with C(-s PEER -p udp -m udp --dport PORT -j ACCEPT) per
    peer and port and a final C(-j DROP), and per port one rule C(-p udp -m udp --dport PORT -j LINUXNET-GRE-UDP)
    at the top of C(INPUT). firewalld: the rich rule C(rule family=\"ipv4\" source address=\"PEER\" port
    port=\"PORT\" protocol=\"udp\" accept) per peer and port in its policy."
  - "B(iptables) (C(iptables-legacy), or C(iptables-nft) where C(nft) itself is not installed), and C(ip6tables)
    for IPv6 peers: the chain C(LINUXNET-GRE) with C(-s PEER -j ACCEPT) per peer and a final C(-j DROP), and one
    rule C(-p 47 -j LINUXNET-GRE) inserted at the top of C(INPUT). One C(iptables-restore --noflush) per IP
    version, one commit each. Only the IP versions of the peers are managed: a list of IPv4 peers leaves ip6tables
    alone."
  - "A framework I(filters) the host's input when its input hook drops by default (nftables chain policy drop,
    iptables C(INPUT) policy C(DROP)) or holds a rule this module did not add. O(backend=auto) manages every
    framework that filters; where none does, nftables when it works on the kernel (a dry run, C(nft --check add
    table inet linuxnet_gre)), else iptables. Frameworks not chosen lose whatever this module added there."
  - "For routed sites (networks behind the tunnels), two more things, in the same objects and the same single write
    per framework. B(TCP MSS clamp) (O(mss_clamp)): TCP SYNs (and SYN-ACKs) forwarded out to a listed tunnel get
    their MSS option lowered to what the route's MTU allows (MTU - 40 for IPv4, - 60 for IPv6), so that LAN
    devices, which offer 1460 for their 1500-byte Ethernet, never send segments larger than the tunnel carries
    (path MTU discovery needs ICMP, which firewalls on the way often drop). Each side clamps what it sends into
    the tunnel, so one connection is clamped both ways once both gateways run this. nftables: a chain C(mss) of
    C(inet linuxnet_gre) on the forward hook at priority C(mangle), one rule per tunnel,
    C(oifname \"TUNNEL\" tcp flags syn / syn,rst counter tcp option maxseg size set rt mtu). iptables: the chain
    C(LINUXNET-GRE-MSS) of the C(mangle) table, C(-o TUNNEL -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS
    --clamp-mss-to-pmtu) per tunnel, jumped to from the top of mangle C(FORWARD), for both IP versions whose tools
    are installed. The clamp goes where the GRE opening goes, else where the forwarding openings go, else in the
    framework O(backend=auto) would choose; O(only_if_filtered) does not apply to it."
  - "B(Forwarding openings) (O(forward)): where a framework filters forwarded traffic (a forward hook chain with
    policy drop or a rule this module did not add; iptables C(FORWARD) with policy C(DROP) or a rule), it accepts
    exactly the traffic between each tunnel and the planned networks: in from a tunnel, a source in that tunnel's
    O(forward[].networks) and a destination in any planned network; out to a tunnel, a destination in its
    networks and a source in any planned network. The planned networks are every O(forward[].networks) and
    O(local_networks) (the host's own). So a hub forwards between its spokes' networks, and nothing else crosses:
    not the tunnel addresses, not the Internet behind the gateway, not a spoofed source from the wrong tunnel.
    nftables: two rules per tunnel and IP version at the top of every filtering forward base chain (an accept in
    a table of its own would not stop their drop), C(iifname \"T\" ip saddr { ... } ip daddr { ... } counter
    accept) and the C(oifname) one, each commented C(managed-by: linuxnet.gre forward ipv4 in T DIGEST), the
    digest naming the networks. iptables: the chain C(LINUXNET-GRE-FWD) (per tunnel network, C(-s NET -i T -g
    LINUXNET-GRE-TO) and C(-d NET -o T -g LINUXNET-GRE-FROM)), C(LINUXNET-GRE-TO) (C(-d PLANNED -j ACCEPT)),
    C(LINUXNET-GRE-FROM) (C(-s PLANNED -j ACCEPT)), jumped to from the top of C(FORWARD); what they do not
    accept goes back to C(FORWARD) and the user's rules. The rule count grows with the networks, not with their
    product. With O(only_if_filtered), only where forwarded traffic is filtered, for the IP versions of the
    networks."
  - "B(firewalld): where C(firewall-cmd) is installed and firewalld runs, its own rules decide what comes in and
    its start and C(firewall-cmd --reload) rebuild them (firewalld 2 with nftables lets no other tool change its
    table). So the peers' GRE is also accepted by a policy of this module's own in firewalld's permanent
    configuration and its runtime, C(linuxnet-gre) (ingress zone C(ANY), egress zone C(HOST), priority -1, target
    C(CONTINUE), one rich rule C(rule family=\"ipv4\" source address=\"PEER\" protocol value=\"gre\" accept)
    per peer), which its reloads and reboots keep; firewalld's own nftables table gets no rule of this module.
    Creating the policy (or making again one whose settings were changed) takes one C(firewall-cmd --reload),
    which, as any, drops firewalld's runtime-only changes; peers are then added and removed without one. The
    policy goes with the last peer. A stopped firewalld is left alone."
  - O(state=absent), or empty O(peers) and O(encap_peers), removes everything this module added, in every framework. An empty
    O(mss_clamp) or O(forward) removes the clamp or the openings.
  - "Needs root privileges (C(become: true))."
requirements:
  - Python on the target, a version the ansible-core in use supports there (3.7 or newer with ansible-core 2.17,
    3.8 or newer from 2.18 on)
  - nftables 0.9 or newer built with JSON, as distributions build it (C(nft --json); tested with 1.0.6)
  - or iptables 1.8 or newer (tested with 1.8.9), C(iptables-save) and C(iptables-restore) in their C(-legacy) or
    C(-nft) variants, and C(ip6tables-save) and C(ip6tables-restore) for IPv6 peers
  - where firewalld runs, firewalld 0.9 or newer (policies; tested with 1.3.3 and 2.3.1)
author:
  - linuxnet.gre maintainers (@linuxnet)
attributes:
  check_mode:
    support: full
    description:
      - Reads the rules and predicts the commands; the batch is only validated, never committed (C(nft --check),
        C(iptables-restore --test)). Validation may load netfilter kernel modules, which changes no rule.
  diff_mode:
    support: full
    description: Shows, per framework, the peers, the clamped tunnels and the openings of this module before and after.
  idempotent:
    support: full
    description: Reads the current rules first and changes only what differs; a second run changes nothing.
  platform:
    support: full
    platforms: posix
    description: Linux with nftables or iptables.
options:
  peers:
    description:
      - The underlay addresses (IPv4 or IPv6) whose GRE is let in, normally the C(remote) addresses of the host's
        tunnels. Duplicates are ignored. Empty removes everything this module added.
    type: list
    elements: str
    default: []
  encap_peers:
    description:
      - GRE in UDP (FOU or GUE), per UDP port the host receives it on, the underlay addresses (IPv4 or IPv6) whose
        UDP to that port is let in, normally the C(remote) addresses of the host's tunnels with that
        C(encap.dport); all other UDP to the port is dropped. The role
        C(linuxnet.gre.gre_mesh) gives the plan's C(encap_peers). Such peers need not be in O(peers) (plain GRE).
    type: list
    elements: dict
    default: []
    suboptions:
      port:
        description: The UDP port (1 to 65535).
        type: int
        required: true
      peers:
        description: The addresses let in to it.
        type: list
        elements: str
        required: true
  state:
    description: V(absent) removes everything this module added, whatever O(peers) says.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description:
      - Where to manage the rules. V(auto) as described above; V(nftables) and V(iptables) force one (with
        V(iptables), the variant whose C(INPUT) filters, else C(iptables-legacy)).
    type: str
    choices: [auto, nftables, iptables]
    default: auto
  only_if_filtered:
    description:
      - Manage the rules only on a host whose input some framework filters (see above) for the IP versions of the
        peers; on any other host, remove what this module added. The role C(linuxnet.gre.gre_mesh) sets it with
        C(gre_mesh_firewall=auto).
    type: bool
    default: false
  mss_clamp:
    description:
      - The tunnels (interface names) out to which forwarded TCP SYNs get their MSS clamped to the route's MTU (see
        above). Empty removes the clamp. The role C(linuxnet.gre.gre_mesh) gives every tunnel of a host that
        forwards (C(gre_mesh_mss_clamp)).
    type: list
    elements: str
    default: []
  forward:
    description:
      - Per tunnel, the networks routed over it (the far side's), between which and the planned networks forwarded
        traffic is accepted where it is filtered (see above). Empty removes the openings.
    type: list
    elements: dict
    default: []
    suboptions:
      interface:
        description: The tunnel's interface name.
        type: str
        required: true
      networks:
        description: The networks (IPv4 or IPv6, without host bits) routed over it.
        type: list
        elements: str
        required: true
  local_networks:
    description:
      - The host's own networks (the role's C(gre_mesh_networks)), planned networks too for O(forward).
    type: list
    elements: str
    default: []
  persist:
    description:
      - "Make the rules as durable as the tunnels of M(linuxnet.gre.gre_tunnel): the host's firewall service loads its
        own rules at boot and on a reload, which removes this module's (C(flush ruleset) in C(nftables.conf),
        C(iptables-restore) without C(--noflush))."
      - "V(true): where the host runs systemd and this run leaves rules of the module's, it writes
        C(/etc/linuxnet-gre/firewall.json) (these parameters), a copy of its own code under
        C(/usr/local/lib/linuxnet-gre) (standard library only, run with C(python3 -I -S)) and
        C(linuxnet-gre-firewall.service), enabled and started: a oneshot ordered after the distributions' firewall
        services (C(nftables), C(netfilter-persistent), C(iptables), C(ip6tables), C(firewalld), C(ufw)) that runs
        this module's converge with those parameters, so the rules come back before C(network.target) at boot, and
        again whenever C(nftables), C(netfilter-persistent), C(iptables) or C(ip6tables) is restarted, stopped and
        started, or reloaded through systemd (C(PartOf=), C(ReloadPropagatedFrom=), C(WantedBy=)). Where the
        rules are in place, it changes nothing."
      - "A reload that does not go through systemd is not seen: C(nft -f /etc/nftables.conf),
        C(netfilter-persistent reload) or C(iptables-restore) by hand, C(ufw reload), C(firewall-cmd --reload) under
        firewalld's iptables backend (its policy keeps the peers' GRE accepted; the counted drop goes). After one,
        C(systemctl reload linuxnet-gre-firewall) puts the rules back (or use C(systemctl reload nftables) /
        C(systemctl restart netfilter-persistent) in the first place)."
      - "On a host without systemd, a warning says that nothing is put back. V(false), O(state=absent), or no rule
        left: what it wrote before is removed (the unit stopped and disabled first); the rules in the kernel are
        this module's other options' business."
    type: bool
    default: true
notes:
  - The rules themselves live in the kernel; O(persist) puts them back after a reboot or a reload of the host's
    firewall.
  - Filtering by source address cannot stop a sender that forges a peer's address (C(rp_filter) helps).
  - Traffic inside the tunnels reaches the input hook again, from the tunnel interface; this module lets in GRE
    only, the host's own rules decide about what the tunnels carry.
  - Table and chain names of nftables are written through nft's JSON input, so any name works.
seealso:
  - module: linuxnet.gre.gre_tunnel
"""

EXAMPLES = r"""
- name: Let GRE in from the two peers of this host's tunnels only
  linuxnet.gre.gre_firewall:
    peers: [198.51.100.1, 203.0.113.7]
  become: true

- name: GRE in UDP (FOU) from one peer to port 5555, plain GRE from another
  linuxnet.gre.gre_firewall:
    peers: [203.0.113.7]
    encap_peers:
      - port: 5555
        peers: [198.51.100.1]
  become: true

- name: The same, but only where a firewall is active (what gre_mesh_firewall=auto does)
  linuxnet.gre.gre_firewall:
    peers: "{{ my_tunnels | map(attribute='remote') | list }}"
    only_if_filtered: true
  become: true

- name: A routed site's gateway, its LAN 198.51.100.0/27 behind it, the far LAN behind gre-siteb
  linuxnet.gre.gre_firewall:
    peers: [203.0.113.2]
    only_if_filtered: true
    mss_clamp: [gre-siteb]
    forward:
      - interface: gre-siteb
        networks: [198.51.100.32/27]
    local_networks: [198.51.100.0/27]
  become: true

- name: Remove the GRE rules of linuxnet.gre from every framework
  linuxnet.gre.gre_firewall:
    state: absent
  become: true
"""

RETURN = r"""
persisted:
  description: What O(persist) left on the host for the boot and the reloads of its firewall.
  returned: success
  type: dict
  contains:
    mechanism:
      description:
        - V(unit) when C(linuxnet-gre-firewall.service) is in place after the run, else V(none) (nothing to put
          back, O(persist=false), or a host without systemd).
      type: str
      sample: unit
    written:
      description: The files written (or that would be, in check mode).
      type: list
      elements: str
      sample: [/etc/linuxnet-gre/firewall.json]
    removed:
      description: The files and directories removed.
      type: list
      elements: str
      sample: []
    commands:
      description: The C(systemctl) commands run.
      type: list
      elements: str
      sample: [systemctl enable linuxnet-gre-firewall.service, systemctl start linuxnet-gre-firewall.service]
backends:
  description:
    - The frameworks that hold this module's rules after the run, C(firewalld) for its policy; empty when it
      removed them or did nothing.
  returned: success
  type: list
  elements: str
  sample: [iptables-legacy, firewalld]
filtered_by:
  description: What filters the host's input besides this module (any IP version), one entry per chain.
  returned: success
  type: list
  elements: str
  sample: ["iptables-legacy: iptables-legacy INPUT", "nftables: inet filter input"]
commands:
  description:
    - What changed (or would change, in check mode), as the equivalent C(nft) and C(iptables) command lines. The
      nftables ones are sent as one JSON batch, the iptables ones as one C(iptables-restore --noflush) per IP
      version.
  returned: success
  type: list
  elements: str
  sample:
    - iptables-legacy -N LINUXNET-GRE
    - iptables-legacy -A LINUXNET-GRE -s 203.0.113.1/32 -j ACCEPT
    - iptables-legacy -A LINUXNET-GRE -j DROP
    - iptables-legacy -I INPUT 1 -p 47 -j LINUXNET-GRE
counters:
  description:
    - Per framework and IP version, the packets this module's rules had accepted from the peers and dropped from
      others, read before any change (rewriting a chain or table resets its counters).
  returned: success
  type: dict
  sample: {iptables-legacy: {ipv4: {accepted: 12, dropped: 5, forwarded: 3120}, mss_clamp: {clamped: 4}}}
  contains:
    mss_clamp:
      description: The TCP SYNs whose MSS the clamp rules saw (clamped or already small enough), both IP versions.
      type: dict
      returned: when the clamp was in place
    ipv4:
      description:
        - C(accepted) and C(dropped) by the GRE opening; C(forwarded), the packets the forwarding openings accepted.
        - The same for C(ipv6).
      type: dict
      returned: when rules of this module were in place for IPv4
mss_clamp_backends:
  description: The framework that holds the MSS clamp after the run (empty when there is none).
  returned: when O(mss_clamp) or O(forward) is given
  type: list
  elements: str
  sample: [nftables]
forward_backends:
  description: The frameworks that hold the forwarding openings after the run.
  returned: when O(mss_clamp) or O(forward) is given
  type: list
  elements: str
  sample: [iptables-legacy]
forward_filtered_by:
  description: What filters forwarded traffic besides this module, one entry per chain.
  returned: when O(mss_clamp) or O(forward) is given
  type: list
  elements: str
  sample: ["nftables: inet filter forward"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.gre.plugins.module_utils._firewall import converge
from ansible_collections.linuxnet.gre.plugins.module_utils._host import Host, run_module
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import Files


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "peers": {"type": "list", "elements": "str", "default": []},
            "encap_peers": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "port": {"type": "int", "required": True},
                    "peers": {"type": "list", "elements": "str", "required": True},
                },
            },
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "backend": {"type": "str", "choices": ["auto", "nftables", "iptables"], "default": "auto"},
            "only_if_filtered": {"type": "bool", "default": False},
            "mss_clamp": {"type": "list", "elements": "str", "default": []},
            "forward": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "interface": {"type": "str", "required": True},
                    "networks": {"type": "list", "elements": "str", "required": True},
                },
            },
            "local_networks": {"type": "list", "elements": "str", "default": []},
            "persist": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    host = Host(module)
    run_module(
        module,
        lambda: converge(host, module.params, check_mode=module.check_mode, diff=module._diff, files=Files(host)),
    )


if __name__ == "__main__":
    main()
