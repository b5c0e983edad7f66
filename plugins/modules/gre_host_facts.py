#!/usr/bin/python
# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gre_host_facts
short_description: Read what GRE tunnels depend on, cheaply - the default underlay, systemd and the firewall
version_added: 0.1.0
description:
  - Reads, without changing anything, what the role C(linuxnet.gre.gre_mesh) needs to know of a host before it
    plans and builds its tunnels, in one module run.
  - With O(default_routes), the facts C(default_ipv4) and C(default_ipv6) - the interface of the default route,
    its MTU, the address the host sends from - under the names and with the keys (a subset) the setup module
    gathers them, from C(route show default) and C(address show) (one C(ip -json -batch -) for IPv4, and
    C(ip -json -6 route show default) for IPv6). Gathering the setup module's whole network subset for them
    costs more, and more with every interface the host has.
  - Whether systemd runs the host, the state of C(systemd-networkd) and C(systemd-udevd) (one C(systemctl
    show)), and whether D-Bus's system bus is there; where networkd and udevd run, the version of systemd (one
    C(systemctl --version)), since M(linuxnet.gre.gre_tunnel)'s O(linuxnet.gre.gre_tunnel#module:persist=networkd)
    needs systemd 252 or newer.
  - Whether the tools M(linuxnet.gre.gre_tunnel) runs are there - iproute2's C(ip) (found, and printing JSON for one
    C(ip -json link show dev lo), which BusyBox's C(ip) does not; with O(default_routes), their own read is that
    check) and, for a GRE kernel module not loaded yet, C(modprobe) - as the messages M(linuxnet.gre.gre_tunnel)
    would fail with, naming the package to install. With O(default_routes) and no usable C(ip), the module fails
    with that message.
  - With O(firewall), what filters the host's input and whether the objects of M(linuxnet.gre.gre_firewall)
    are in place, read as that module reads them.
requirements:
  - Python on the target, a version the ansible-core in use supports there (3.7 or newer with ansible-core 2.17,
    3.8 or newer from 2.18 on)
  - iproute2 (C(ip)); with O(default_routes), 4.17 or newer, the first whose C(ip -json route) prints JSON. Without
    it, or with BusyBox's C(ip) only, RV(ansible_facts.linuxnet_gre.tools.ip) says what to install (the module fails
    with O(default_routes))
  - where systemd runs the host, its C(systemctl)
  - with O(firewall), nothing more; each filter is read where installed - nftables 0.9 or newer built with JSON, as
    distributions build it (C(nft --json); tested with 1.0.6), and iptables 1.8 or newer (C(iptables-legacy-save),
    C(iptables-nft-save))
author:
  - linuxnet.gre maintainers (@linuxnet)
attributes:
  check_mode:
    support: full
    description: It only reads, in check mode too.
  facts:
    support: full
    description: Returns C(ansible_facts); the setup module's names for C(default_ipv4) and C(default_ipv6).
extends_documentation_fragment:
  - linuxnet.gre.attributes.read_only
options:
  default_routes:
    description:
      - The IP versions whose default route to report, as the facts C(default_ipv4) and C(default_ipv6). A version
        without a default route, or whose route's interface has no global address, gets no fact.
    type: list
    elements: int
    choices: [4, 6]
    default: []
  firewall:
    description: Also read the packet filters (nftables, iptables-legacy, iptables-nft), for C(linuxnet_gre.firewall).
    type: bool
    default: false
  encap:
    description:
      - Also say whether the kernel can carry GRE in UDP (O(linuxnet.gre.gre_tunnel#module:encap)), for
        C(linuxnet_gre.tools.encap), from the kernel's build configuration (C(/boot/config-RELEASE)).
    type: bool
    default: false
notes:
  - The role C(linuxnet.gre.gre_mesh) runs it first on every host, with O(default_routes) only on hosts whose
    underlay address it must discover.
seealso:
  - module: linuxnet.gre.gre_tunnel
  - module: linuxnet.gre.gre_firewall
  - module: ansible.builtin.setup
"""

EXAMPLES = r"""
- name: Read the default IPv4 underlay, as the setup module's network facts would give it
  linuxnet.gre.gre_host_facts:
    default_routes: [4]

- name: Show the address and MTU GRE would use
  ansible.builtin.debug:
    msg: "{{ ansible_facts.default_ipv4.address }}, MTU {{ ansible_facts.default_ipv4.mtu }}"

- name: Read how the host starts its network and what filters its input
  linuxnet.gre.gre_host_facts:
    firewall: true
"""

RETURN = r"""
ansible_facts:
  description: The facts read.
  returned: always
  type: dict
  contains:
    default_ipv4:
      description:
        - The IPv4 default route's interface and the address the host sends from (the route's C(src), else the
          interface's first primary global address). Only with 4 in O(default_routes), and when found.
      returned: when asked for and found
      type: dict
      sample:
        address: 203.0.113.1
        prefix: "24"
        netmask: 255.255.255.0
        network: 203.0.113.0
        gateway: 203.0.113.254
        interface: eth1
        mtu: 1500
        macaddress: "02:00:00:00:01:01"
        type: ether
    default_ipv6:
      description: The same for IPv6 (with C(scope) instead of C(netmask) and C(network)).
      returned: when asked for and found
      type: dict
      sample:
        address: "2001:db8:1::1"
        prefix: "64"
        scope: global
        gateway: "2001:db8:1::fe"
        interface: eth1
        mtu: 1500
        macaddress: "02:00:00:00:01:01"
        type: ether
    linuxnet_gre:
      description: What else the role needs of the host.
      returned: always
      type: dict
      contains:
        systemd:
          description: Whether systemd runs the host (C(/run/systemd/system) exists).
          type: bool
        networkd_active:
          description: Whether C(systemd-networkd.service) is active.
          type: bool
        networkd_enabled:
          description: Whether C(systemd-networkd.service) is enabled (C(enabled) or C(enabled-runtime)).
          type: bool
        udevd_active:
          description: Whether C(systemd-udevd.service) is active.
          type: bool
        dbus:
          description: Whether the system bus socket C(/run/dbus/system_bus_socket) exists.
          type: bool
        systemd_version:
          description:
            - The version of systemd, the number C(systemctl --version) prints first (V(252) where its first line is
              C(systemd 252) and the package's version). Read only where systemd-networkd is active and enabled and
              systemd-udevd runs, the one place it decides something (networkd persistence needs 252 or newer);
              C(null) elsewhere, and where C(systemctl --version) names no version.
          type: int
          sample: 252
        tools:
          description:
            - What M(linuxnet.gre.gre_tunnel) would fail with for lack of a tool here, before it changes anything;
              C(null) where nothing lacks. The role C(linuxnet.gre.gre_mesh) stops the play on it before any host
              changes.
          type: dict
          contains:
            ip:
              description:
                - C(null) where iproute2's C(ip) is installed; else why not, naming the package (C(iproute2) on
                  Debian, Ubuntu and Alpine, C(iproute) on the RHEL family), also where C(ip) is BusyBox's.
              type: str
              sample: "ip is BusyBox's here (BusyBox v1.35.0), which lacks the options this module uses (...): install iproute2 (...)"
            modprobe:
              description:
                - Per tunnel mode (V(gre), V(gretap), V(ip6gre), V(ip6gretap)), C(null) where its kernel module
                  (C(ip_gre), C(ip6_gre)) is loaded or built in, or C(modprobe) is installed to load it; else why
                  not, naming the package (C(kmod)).
              type: dict
              sample:
                gre: null
                gretap: null
                ip6gre: "the kernel module ip6_gre is not loaded, and modprobe is not installed (...): install kmod"
                ip6gretap: "the kernel module ip6_gre is not loaded, and modprobe is not installed (...): install kmod"
            encap:
              description:
                - With O(encap) only. C(null) where the kernel can carry GRE in UDP, and where its build
                  configuration is not in C(/boot/config-RELEASE) to say (then only creating a tunnel tells); else
                  why not. The fou module loads without it, and C(ip link add ... encap fou) fails with C(Invalid
                  argument).
              type: str
              sample: >-
                this kernel (6.1.176) cannot carry GRE in UDP: it was built without CONFIG_NET_FOU_IP_TUNNELS
                (/boot/config-6.1.176), and refuses a tunnel's encap
        persist:
          description:
            - What the O(linuxnet.gre.gre_tunnel#module:persist) option of M(linuxnet.gre.gre_tunnel) would do here,
              decided by the same code as the module's.
          type: dict
          contains:
            auto:
              description: The mechanism V(auto) takes for a host with tunnels.
              type: str
              choices: [networkd, unit, none]
            problems:
              description:
                - Per mechanism (V(unit), V(networkd)), why it cannot bring the tunnels back at boot here, as
                  M(linuxnet.gre.gre_tunnel) says it when it fails; C(null) where it works.
              type: dict
              sample: {unit: null, networkd: "systemd-networkd is not active and enabled here, ..."}
        files:
          description:
            - Whether the collection's files that a step of the role C(linuxnet.gre.gre_mesh) undoes where nothing is
              planned any more are on the host; where one is not, the role skips that step on a host with nothing
              planned for it.
          type: dict
          contains:
            forward:
              description:
                - Whether the sysctl.d file of M(linuxnet.gre.gre_forward) (C(/etc/sysctl.d/60-linuxnet-gre.conf)),
                  which remembers the values to put back, exists.
              type: bool
            ipsec:
              description: Whether the role's swanctl file of IKE connections (C(/etc/swanctl/conf.d/linuxnet-gre.conf)) exists.
              type: bool
        firewall:
          description: With O(firewall) only.
          type: dict
          contains:
            filtered_by:
              description: The chains that filter input (a drop policy or a rule of their own), as gre_firewall names them.
              type: list
              elements: str
              sample: ["iptables-legacy: INPUT (ipv4)"]
            managed:
              description: Whether objects of M(linuxnet.gre.gre_firewall) are in place.
              type: bool
            backends:
              description:
                - The values of the O(linuxnet.gre.gre_firewall#module:backend) option of M(linuxnet.gre.gre_firewall)
                  that work here, V(nftables) where C(nft) works on the kernel (a dry run) and V(iptables) where
                  C(iptables-legacy-save) and C(-restore) (or, without C(nft), the iptables-nft ones) are installed.
                  Empty where no packet filter tool works.
              type: list
              elements: str
              sample: [nftables]
            nftables:
              description: V(works), or why C(nft) does not work here (its error).
              type: str
              sample: works
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.gre.plugins.module_utils._host import Host, run_module
from ansible_collections.linuxnet.gre.plugins.module_utils._host_facts import gather


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "default_routes": {"type": "list", "elements": "int", "choices": [4, 6], "default": []},
            "firewall": {"type": "bool", "default": False},
            "encap": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run_module(module, lambda: {"ansible_facts": gather(Host(module), module.params)})


if __name__ == "__main__":
    main()
