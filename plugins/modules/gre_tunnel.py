#!/usr/bin/python
# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gre_tunnel
short_description: Make a Linux host's GRE tunnels exactly what they should be
version_added: 0.1.0
description:
  - Creates, changes and deletes GRE tunnel interfaces (C(gre), C(gretap), C(ip6gre), C(ip6gretap))
    in the kernel of the target host with iproute2, together with their inner addresses, and brings them up.
  - Configures one tunnel (O(name) and the other top-level options) or the complete set of tunnels of a
    host (O(tunnels), with O(purge) to delete the tunnels it created earlier and that are no longer listed).
  - "Marks every interface it creates with the interface alias C(managed-by: linuxnet.gre). It never
    changes or deletes an interface without that mark (unless O(adopt) replaces it), and never converts
    an interface that is not a GRE tunnel; it fails instead, before it changes anything."
  - Converges every setting. A changed O(local), O(remote), O(ttl), O(tos), key, O(pmtudisc), O(dev), O(encap)
    (also its removal) or O(mtu) is changed in place; a changed O(mode), or dropping a key or the O(dev) binding, deletes and recreates the
    interface, because iproute2 cannot undo those in place. Addresses not listed are removed; the IPv6
    link-local addresses the kernel adds itself are left alone.
  - Reads the host's state with one C(ip -details -json address show) and applies all changes with one
    C(ip -batch -), whatever the number of tunnels. Loads the C(ip_gre) or C(ip6_gre) kernel module when a
    tunnel of that family must be created and the module is not loaded yet, and the C(fou) module for O(encap). The one exception is a switch away
    from O(persist=networkd) (see there), which may need a second read and a second batch.
  - With O(persist), also writes what brings the listed tunnels back at boot, in the same run.
  - "Needs root privileges (C(become: true))."
requirements:
  - Python on the target, a version the ansible-core in use supports there (3.7 or newer with ansible-core 2.17,
    3.8 or newer from 2.18 on)
  - iproute2 4.14 or newer (C(ip)), the first whose C(ip -details -json) prints the settings of GRE tunnels (package
    C(iproute2) on Debian, Ubuntu and Alpine, C(iproute) on the RHEL family); BusyBox's C(ip) has no C(-json)
  - C(modprobe) (kmod) where a tunnel's kernel module (C(ip_gre), C(ip6_gre), C(fou) for O(encap)) is neither loaded
    nor built in;
    BusyBox's C(modprobe) loads it, but has no C(--dry-run) for check mode
  - with O(persist=unit), systemd (C(systemctl))
  - with O(persist=networkd), systemd 252 or newer (C(Independent=)) with systemd-networkd active and enabled and
    systemd-udevd running, and C(networkctl) where D-Bus runs (O(persist=auto) takes what the host has)
author:
  - linuxnet.gre maintainers (@linuxnet)
attributes:
  check_mode:
    support: full
    description:
      - Predicts exactly whether the host would change and which C(ip) commands would run; runs none that changes the host.
      - One thing it cannot predict - what systemd-networkd drops from the tunnels it lets go of when O(persist) switches
        away from networkd, which the real run puts back (RV(changes[].action=restore)). Check mode names those tunnels
        (RV(persisted.released)) and lists no restore; its C(changed) is exact all the same, since such a switch
        changes the boot files.
  diff_mode:
    support: full
    description:
      - Shows each tunnel before and after; with O(persist), each file written or removed too (the diff is then a list).
  idempotent:
    support: full
    description:
      - A second run with the same options reports no change and runs only the read command (with
        O(persist=networkd), or O(persist=auto) on a host that runs systemd, also the C(systemctl show) that checks
        networkd, and C(systemctl --version) where networkd runs).
      - One exception, with O(persist) - a tunnel created without O(tunnels[].mtu) is persisted without an MTU;
        the next run writes the MTU the kernel gave it into the boot files (once).
  platform:
    support: full
    platforms: posix
    description: Linux hosts with a kernel that has GRE support and iproute2.
notes:
  - All input is checked before any command that changes the host runs. Errors name the tunnel and the option.
  - A host without a tool the module needs fails at its first use, before any change, with a message naming the
    package to install - no C(ip), or BusyBox's only, at the first read (C(iproute2) on Debian, Ubuntu and Alpine,
    C(iproute) on the RHEL family); no C(modprobe) for a kernel module not loaded yet (C(kmod)), before the
    C(ip -batch). M(linuxnet.gre.gre_host_facts) reports the same, so that the role C(linuxnet.gre.gre_mesh) stops
    before any host changes.
  - The C(invocation) of its result (shown with C(-vvv)) lists the options as given and their defaults, without
    those left null, in each entry of O(tunnels) too.
  - The MTU is converged when O(mtu) is given. Without it, a tunnel that exists keeps its MTU, in the kernel and
    in the boot files of O(persist); a tunnel created (or recreated) gets the kernel's choice.
  - "A batch cut short (the module killed, or a command of it failing) can leave a tunnel created but not yet
    marked, since the alias is set by a line of its own. The module notes the interfaces a batch creates in
    C(/run/linuxnet-gre/creating.json) before running it and removes the note when it succeeds; the next run deletes
    such a tunnel and creates it whole (RV(changes[].fields) V(interrupted))."
  - "GRE in UDP (O(encap)) was tested on Debian 12's cloud kernel (6.1, C(CONFIG_NET_FOU_IP_TUNNELS=y)) with
    iproute2 6.1. A kernel without C(CONFIG_NET_FOU_IP_TUNNELS) (Debian's user-mode-linux kernel, for one)
    refuses the tunnel with C(Invalid argument) in the batch, before which nothing of the batch is undone."
options:
  name:
    description:
      - Name of the tunnel interface, at most 15 bytes in UTF-8 (C(gre-münchen-dc1) is 16), without C(/), C(:),
        C(%) or whitespace.
      - Required unless O(tunnels) is given; mutually exclusive with O(tunnels).
    type: str
  mode:
    description:
      - The kind of tunnel. V(gre) and V(gretap) run over IPv4, V(ip6gre) and V(ip6gretap) over IPv6;
        the C(tap) kinds carry Ethernet frames instead of IP packets.
    type: str
    choices: [gre, gretap, ip6gre, ip6gretap]
    default: gre
  local:
    description:
      - Underlay address of this host, of the family of O(mode). Left to the kernel when not given.
    type: str
  remote:
    description:
      - Underlay address of the other end of the tunnel, of the family of O(mode).
      - Required when O(state=present) in the single form.
    type: str
  ttl:
    description:
      - TTL (hop limit for the IPv6 modes) of the outer packets, C(0) to inherit it from the inner packet.
      - A value other than C(0) needs O(pmtudisc).
    type: int
    default: 255
  tos:
    description:
      - TOS (traffic class for the IPv6 modes) of the outer packets, a number from C(0) to C(255)
        (decimal, or hexadecimal with C(0x)), or V(inherit).
    type: str
    default: '0'
  key:
    description:
      - GRE key for both directions, a number from C(0) to C(4294967295) or a dotted quad such as C(0.0.0.42).
      - Mutually exclusive with O(ikey) and O(okey).
    type: str
  ikey:
    description:
      - GRE key expected on incoming packets; see O(key) for the format.
    type: str
  okey:
    description:
      - GRE key put on outgoing packets; see O(key) for the format.
    type: str
  pmtudisc:
    description:
      - Path MTU discovery (the DF bit on outer packets). Only for V(gre) and V(gretap), where it
        defaults to V(true); not allowed for the IPv6 modes.
    type: bool
  mtu:
    description:
      - MTU of the tunnel interface, from C(68) to C(65535), at least C(1280) when O(addresses) has an IPv6 address.
      - Not given, a tunnel that exists keeps its current MTU, in the kernel and in the boot files of O(persist)
        (so a run that does not know the MTU never drops it from them); a tunnel created or recreated in this run
        gets the kernel's choice.
    type: int
  dev:
    description:
      - Underlay interface to bind the tunnel to. It must exist.
    type: str
  addresses:
    description:
      - Inner addresses of the tunnel with their prefix length, IPv4 and IPv6, such as C(10.0.0.1/30).
      - An address that is the network address of its prefix (or the broadcast address of an IPv4 prefix)
        is refused; C(/31), C(/32), C(/127) and C(/128) are fine.
      - Exactly these addresses are kept; others are removed, except the IPv6 link-local addresses the kernel adds itself.
    type: list
    elements: str
    default: []
  routes:
    description:
      - Routes of the main table through this tunnel (the networks behind its other end). Not given, the
        tunnel's routes are left alone; given (even empty), the tunnel gets exactly these, in the same
        C(ip -batch) as the tunnel, after its addresses.
      - "Each route is marked with the route protocol number C(250) (C(ip route ... proto 250)), as tunnels are
        with their alias; only routes with that mark are changed or deleted. A route of the main table to a listed
        prefix without the mark (made by hand, by DHCP, by another tool) is never replaced: the run fails naming
        it, before it changes anything."
      - Reading the routes joins the read of the interfaces, still one process
        (C(ip -details -json -batch -) with C(address show), C(route show table all) and
        C(route show table all proto 250), the last finding the mark by number even where
        C(/etc/iproute2/rt_protos) gives 250 a name).
      - With O(persist), the boot files hold the routes too (the unit's batch file its C(route add) lines,
        systemd-networkd's C(.network) file C([Route]) sections with C(Protocol=250)); a tunnel without this
        option is persisted without routes.
      - Only with O(state=present). Deleting a tunnel deletes its routes with it (the kernel does).
    type: list
    elements: dict
    suboptions:
      prefix:
        description:
          - The network, IPv4 or IPv6 whatever the tunnel's underlay, such as C(192.168.20.0/24); C(/32) or
            C(/128) for one host. It must not hold the tunnel's O(local) or O(remote) (recursive routing).
        type: str
        required: true
      via:
        description:
          - The inner next hop, another address of a subnet of O(addresses); without it, the route points at the
            tunnel itself. Required over V(gretap) and V(ip6gretap), which carry Ethernet frames.
        type: str
      metric:
        description:
          - The route's metric; the kernel's default when not given (C(0) for IPv4, C(1024) for IPv6). A prefix
            and a metric name one route; both may not be listed twice, in one tunnel or in two.
        type: int
  encap:
    description:
      - GRE in UDP - the kernel's FOU or GUE encapsulation, for paths that drop IP protocol 47. Not given, the
        tunnel has no encapsulation (one it has in the kernel is removed, in place).
      - Only for V(gre) and V(gretap); refused for the IPv6 modes (the kernel needs IPv6 FOU receive ports there,
        which this module does not manage).
      - "The receiving side too: for each present tunnel with O(encap), the host keeps a FOU receive port
        O(encap.dport) of O(encap.type) (C(ip fou add port DPORT ipproto 47) for V(fou), C(… gue) for V(gue)),
        added in the same C(ip -batch) before the tunnels; both ends of a link use the same port. Such a port
        that this module added and that no tunnel of the host needs any more is deleted. The kernel has no mark on
        FOU ports: the module notes those it adds in C(/run/linuxnet-gre/fou-ports.json) (and counts those the
        batch file of O(persist=unit) adds at boot as its own). A port of the same number and type made by
        someone else is used and never deleted; one of the same number and another type or configuration fails
        the run before any change, naming it."
      - Changed in place. The kernel keeps the MTU of a tunnel whose encapsulation changes in place (it computes
        one only when it creates a tunnel), so give O(mtu), which the encapsulation makes 8 (fou) or 12 (gue)
        bytes smaller than without.
      - With O(persist=unit), the batch file adds the receive ports before the tunnels, and
        C(/etc/modules-load.d/linuxnet-gre.conf) loads the C(fou) module at boot. O(persist=networkd) refuses a
        tunnel with O(encap) (not tested with systemd-networkd's C(FooOverUDP=)).
    type: dict
    suboptions:
      type:
        description:
          - V(fou) carries the GRE packet in UDP as it is; V(gue) adds the 4-byte header of Generic UDP
            Encapsulation.
        type: str
        choices: [fou, gue]
        required: true
      dport:
        description:
          - The UDP port the other end receives on, from C(1) to C(65535); this host receives on the same port.
        type: int
        required: true
      sport:
        description:
          - The UDP source port, C(0) to let the kernel pick one per flow (C(encap-sport auto)), which spreads
            the flows of a link over the paths of ECMP routers.
        type: int
        default: 0
      csum:
        description:
          - Whether the outer UDP header has a checksum (C(encap-csum)).
        type: bool
        default: false
      remcsum:
        description:
          - Remote checksum offload (C(encap-remcsum)), an option of the GUE header; only with O(encap.type=gue).
        type: bool
        default: false
  state:
    description:
      - V(present) to create or converge the tunnel, V(absent) to delete it.
    type: str
    choices: [present, absent]
    default: present
  tunnels:
    description:
      - The tunnels of this host, each with the options of the single form. Mutually exclusive with O(name)
        and the other single-form options.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the tunnel interface; see O(name).
        type: str
        required: true
      mode:
        description: The kind of tunnel; see O(mode).
        type: str
        choices: [gre, gretap, ip6gre, ip6gretap]
        default: gre
      local:
        description: Underlay address of this host; see O(local).
        type: str
      remote:
        description: Underlay address of the other end; required when O(tunnels[].state=present).
        type: str
      ttl:
        description: TTL or hop limit of the outer packets; see O(ttl).
        type: int
        default: 255
      tos:
        description: TOS or traffic class of the outer packets; see O(tos).
        type: str
        default: '0'
      key:
        description: GRE key for both directions; see O(key).
        type: str
      ikey:
        description: GRE key of incoming packets; see O(ikey).
        type: str
      okey:
        description: GRE key of outgoing packets; see O(okey).
        type: str
      pmtudisc:
        description: Path MTU discovery; see O(pmtudisc).
        type: bool
      mtu:
        description: MTU of the tunnel interface; see O(mtu).
        type: int
      dev:
        description: Underlay interface to bind the tunnel to; see O(dev).
        type: str
      addresses:
        description: Inner addresses with prefix length; see O(addresses).
        type: list
        elements: str
        default: []
      routes:
        description: Routes through this tunnel, marked as this module's; see O(routes).
        type: list
        elements: dict
        suboptions:
          prefix:
            description: The network; see O(routes[].prefix).
            type: str
            required: true
          via:
            description: The inner next hop; see O(routes[].via).
            type: str
          metric:
            description: The metric; see O(routes[].metric).
            type: int
      encap:
        description: GRE in UDP; see O(encap).
        type: dict
        suboptions:
          type:
            description: V(fou) or V(gue); see O(encap.type).
            type: str
            choices: [fou, gue]
            required: true
          dport:
            description: The UDP port of both ends; see O(encap.dport).
            type: int
            required: true
          sport:
            description: The UDP source port, C(0) for one per flow; see O(encap.sport).
            type: int
            default: 0
          csum:
            description: A checksum in the outer UDP header; see O(encap.csum).
            type: bool
            default: false
          remcsum:
            description: Remote checksum offload, V(gue) only; see O(encap.remcsum).
            type: bool
            default: false
      state:
        description: V(present) or V(absent); see O(state).
        type: str
        choices: [present, absent]
        default: present
  purge:
    description:
      - "With O(tunnels), delete the tunnels that this module created earlier (marked with the alias
        C(managed-by: linuxnet.gre)) and that are not listed. Interfaces without the mark are never deleted."
      - Only with O(tunnels).
    type: bool
    default: false
  persist:
    description:
      - With O(tunnels), make the listed tunnels (those with O(tunnels[].state=present)), their addresses and their
        link state come back at boot. Not given, the boot configuration is left as it is.
      - "V(unit): C(/etc/linuxnet-gre/tunnels.batch), the C(ip -batch) lines this module runs to create the tunnels
        (the alias included), and C(/etc/systemd/system/linuxnet-gre.service), a oneshot that runs
        C(ip -force -batch) on that file at boot, enabled (C(systemctl enable --no-reload): the unit is for the
        next boot, and reloading systemd costs seconds on a small host). Needs systemd."
      - "V(networkd): per tunnel C(/etc/systemd/network/60-linuxnet-gre-NAME.netdev) and C(.network), and one
        C(60-linuxnet-gre.link) whose C(Alias=) marks the tunnels systemd-networkd creates as this module's.
        Needs systemd 252 or newer, whose networkd creates a tunnel bound to no underlay link (C(Independent=); an
        older one ignores the key and never creates the tunnel: Ubuntu 22.04 has 249), with systemd-networkd active
        and enabled and systemd-udevd running (it applies the C(.link) file); networkd is told to reload
        (C(networkctl reload), or a restart of C(systemd-networkd.service) without D-Bus) when its files change.
        Cannot express O(tunnels[].dev), O(tunnels[].encap), nor O(tunnels[].tos) for the IPv6 modes."
      - V(none) persists nothing.
      - "V(auto): V(networkd) where systemd-networkd is active and enabled and systemd-udevd runs on systemd 252 or
        newer (C(systemctl --version), read only there) and it can express every listed tunnel (see V(networkd)),
        else V(unit) where the host runs systemd, else V(none), with a warning that the tunnels will be gone after a reboot (no warning
        when O(tunnels) lists none to keep). RV(persisted.mechanism) says which it chose."
      - Whatever this option wrote before and is not wanted now is removed (the unit disabled first), so
        switching between the values, or listing no tunnels, leaves no stale file behind. A host where nothing
        changes costs a read of the files and runs no command.
      - "A switch away from V(networkd) (to V(unit) or V(none)) removes the C(.network) file of tunnels that stay;
        told to reload, systemd-networkd lets go of them (RV(persisted.released)), and with C(networkctl reload)
        it deletes the addresses it configured there (systemd 252; a restart of networkd, without D-Bus, keeps
        them). The module then waits, up to 10 seconds, until networkd's state of each such tunnel
        (C(/run/systemd/netif/links/INDEX)) no longer names that file, reads the kernel again, and puts back what
        is missing (addresses, link state, MTU) with one more C(ip -batch -), in the same run
        (RV(changes[].action=restore)). If networkd still holds a tunnel after 10 seconds the run fails, naming it:
        networkd could still drop its addresses after the run, and the next run puts back whatever it dropped.
        A tunnel that a C(.network) file of someone else's matches is configured by networkd from that file
        afterwards; the module puts its own addresses back and warns."
      - The files hold the tunnels as the run leaves them. A tunnel that exists and whose O(tunnels[].mtu) is not
        given is persisted with the MTU it has in the kernel, so it comes back with it; one created in this run
        without O(tunnels[].mtu), without an MTU (the kernel chooses again at boot) until the next run.
      - Checked after the read of the kernel and before anything changes; a value that cannot work on the host
        fails the run, naming it.
    type: str
    choices: [auto, unit, networkd, none]
  adopt:
    description:
      - "Take over GRE tunnels that this module did not create (without the alias C(managed-by: linuxnet.gre)),
        for migrating tunnels made by hand: an interface of one of the four GRE kinds that has the name of a
        listed tunnel with O(state=present), or that the kernel would refuse next to one (the same mode, local,
        remote, underlay device and input key), is deleted and the listed tunnel created, marked, in its place,
        in the same C(ip -batch) (deletions first)."
      - Any other interface without the mark is left alone, also with O(purge); an interface that is not a GRE
        tunnel is never deleted. A tunnel with O(state=absent) does not adopt.
      - Reported as RV(changes[].action=adopt), with the interfaces replaced in RV(changes[].adopted).
    type: bool
    default: false
seealso:
  - name: ip-link(8)
    description: The iproute2 manual page for GRE tunnel options.
    link: https://man7.org/linux/man-pages/man8/ip-link.8.html
"""

EXAMPLES = r"""
- name: Build the tunnel of the seed (ip tunnel add gre1 mode gre remote … local … ttl 255)
  linuxnet.gre.gre_tunnel:
    name: gre1
    local: 203.0.113.1
    remote: 198.51.100.1
    addresses:
      - 10.0.0.1/30
  become: true

- name: A keyed IPv6-underlay tunnel with dual-stack inner addresses and a fixed MTU
  linuxnet.gre.gre_tunnel:
    name: gre6a
    mode: ip6gre
    local: 2001:db8:1::1
    remote: 2001:db8:2::1
    key: 42
    mtu: 1400
    addresses:
      - 10.0.1.1/31
      - 2001:db8:ffff::1/127
  become: true

- name: All tunnels of this host; delete the ones this module made that are no longer listed
  linuxnet.gre.gre_tunnel:
    tunnels:
      - name: gre-b
        local: 203.0.113.1
        remote: 198.51.100.1
        addresses: [10.0.0.1/30]
      - name: gre-c
        local: 203.0.113.1
        remote: 198.51.100.7
        key: 7
        addresses: [10.0.0.5/30]
    purge: true
  become: true
  register: gre

- name: Keep only gre-b (purge deletes gre-c), and make it come back at boot with a oneshot unit
  linuxnet.gre.gre_tunnel:
    tunnels:
      - name: gre-b
        local: 203.0.113.1
        remote: 198.51.100.1
        addresses: [10.0.0.1/30]
    purge: true
    persist: unit
  become: true

- name: Persist with what the host has (systemd-networkd, else a unit), warning where it has neither
  linuxnet.gre.gre_tunnel:
    tunnels:
      - name: gre-b
        local: 203.0.113.1
        remote: 198.51.100.1
        addresses: [10.0.0.1/30]
    persist: auto
  become: true

- name: >-
    Migrate the seed's gre1, made by hand (ip tunnel add gre1 …): delete it and create it marked, in one batch;
    a listed tunnel of another name with the same mode, local, remote and key would replace it too
  linuxnet.gre.gre_tunnel:
    tunnels:
      - name: gre1
        local: 203.0.113.1
        remote: 198.51.100.1
        addresses: [10.0.0.1/30]
    adopt: true
    persist: unit
  become: true

- name: GRE in UDP (FOU) where the path drops protocol 47; the host receives on UDP 5555 too
  linuxnet.gre.gre_tunnel:
    tunnels:
      - name: gre-b
        local: 203.0.113.1
        remote: 198.51.100.1
        mtu: 1468
        encap:
          type: fou
          dport: 5555
        addresses: [10.0.0.1/30]
    persist: unit
  become: true

- name: Show the ip commands that ran
  ansible.builtin.debug:
    var: gre.commands

- name: Delete a tunnel this module created
  linuxnet.gre.gre_tunnel:
    name: gre1
    state: absent
  become: true
"""

RETURN = r"""
tunnels:
  description:
    - The listed tunnels as they are after the run (or would be, in check mode), in the order given.
    - A tunnel with O(state=absent) has only RV(tunnels[].name) and RV(tunnels[].state).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Interface name.
      type: str
      sample: gre1
    state:
      description: V(present) or V(absent).
      type: str
      sample: present
    mode:
      description: Kind of tunnel.
      type: str
      sample: gre
    local:
      description: Local underlay address, V(null) when left to the kernel.
      type: str
      sample: 203.0.113.1
    remote:
      description: Remote underlay address.
      type: str
      sample: 198.51.100.1
    ttl:
      description: TTL or hop limit, V(0) for inherit.
      type: int
      sample: 255
    tos:
      description: TOS or traffic class as two hex digits, or V(inherit).
      type: str
      sample: '0x00'
    ikey:
      description: Input key as a number, V(null) without key.
      type: int
      sample: 42
    okey:
      description: Output key as a number, V(null) without key.
      type: int
      sample: 42
    pmtudisc:
      description: Path MTU discovery, V(null) for the IPv6 modes.
      type: bool
      sample: true
    mtu:
      description: MTU; V(null) when left to the kernel for a tunnel that is created in this run.
      type: int
      sample: 1476
    dev:
      description: Underlay interface the tunnel is bound to, V(null) when not bound.
      type: str
      sample: eth1
    addresses:
      description: Inner addresses with prefix length, IPv4 first, without the kernel's IPv6 link-local ones.
      type: list
      elements: str
      sample: [10.0.0.1/30]
    up:
      description: Whether the interface is administratively up.
      type: bool
      sample: true
    encap:
      description: GRE in UDP as O(encap) gives it (every suboption), V(null) without encapsulation.
      type: dict
      sample: {type: fou, dport: 5555, sport: 0, csum: false, remcsum: false}
    routes:
      description: The tunnel's routes as the run leaves them, IPv4 first; the metric always set.
      returned: when O(routes) (or O(tunnels[].routes)) is given for the tunnel
      type: list
      elements: dict
      sample: [{prefix: 192.168.20.0/24, via: 10.0.0.2, metric: 0}]
changes:
  description: What changed (or would change), one entry per tunnel that changed (and one more per tunnel restored).
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Interface name.
      type: str
      sample: gre1
    action:
      description:
        - V(create), V(update) (in place), V(recreate) (deleted and created again, for a new mode or a dropped
          key or underlay device), V(delete), or V(adopt) (with O(adopt), the tunnels in RV(changes[].adopted),
          not created by this module, deleted and this one created in their place).
        - V(restore) - the settings in RV(changes[].fields) put back by a second C(ip -batch) after systemd-networkd
          let go of the tunnel and dropped them (see O(persist)); a second entry for a tunnel that has one already.
      type: str
      sample: update
    fields:
      description:
        - The settings that differed, for V(update) and V(recreate) (and V(adopt) of a tunnel of this module that
          exists and is changed); V(routes) when a route of O(routes) was added, changed or deleted;
          V(interrupted) for a tunnel that a batch cut short left unmarked, deleted (and
          created whole again when listed).
      type: list
      elements: str
      sample: [remote, addresses]
    adopted:
      description:
        - The interfaces not created by this module that this tunnel replaces; deleted in the same C(ip -batch)
          (the diff shows them before). Its own name when it replaces a tunnel of its name.
      returned: when RV(changes[].action) is V(adopt)
      type: list
      elements: str
      sample: [gre1]
  sample:
    - name: gre1
      action: update
      fields: [remote]
    - name: gre-b
      action: adopt
      fields: []
      adopted: [gre1]
commands:
  description:
    - The commands that ran (or would run, in check mode) to change the host, in order. The C(ip) ones ran
      as one C(ip -batch -), those of a restore (RV(changes[].action=restore)) as a second one; the read
      commands are not listed.
  returned: success
  type: list
  elements: str
  sample:
    - modprobe ip_gre
    - ip link add name gre1 type gre remote 198.51.100.1 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc
    - 'ip link set dev gre1 alias "managed-by: linuxnet.gre" up'
    - ip address add 10.0.0.1/30 dev gre1
fou_ports:
  description:
    - The FOU receive ports (IPv4) this run added and removed (or would, in check mode), each with its number and
      V(fou) or V(gue) (see O(encap)); the diff shows them as C(fou:PORT).
  returned: success
  type: dict
  contains:
    added:
      description: The ports added, by number.
      type: list
      elements: dict
      sample: [{port: 5555, type: fou}]
    removed:
      description: The ports of this module deleted, because no tunnel of the host needs them any more.
      type: list
      elements: dict
      sample: []
persisted:
  description: What O(persist) wrote, removed and ran (or would, in check mode).
  returned: when O(persist) is given
  type: dict
  contains:
    mechanism:
      description:
        - The mechanism used, V(unit), V(networkd) or V(none) - the value of O(persist), or the one O(persist=auto)
          chose on this host (V(none) also when no tunnel is listed to keep).
      type: str
      sample: unit
    written:
      description: The files written (created or changed), sorted.
      type: list
      elements: str
      sample: [/etc/linuxnet-gre/tunnels.batch, /etc/systemd/system/linuxnet-gre.service]
    removed:
      description: The files (and the directory C(/etc/linuxnet-gre)) removed.
      type: list
      elements: str
      sample: []
    commands:
      description: The C(systemctl) and C(networkctl) commands run, in order.
      type: list
      elements: str
      sample: [systemctl enable --no-reload linuxnet-gre.service]
    released:
      description:
        - The listed tunnels whose C(.network) file this run removes while they stay, with systemd-networkd running
          and told to reload - a switch away from O(persist=networkd). The module waits until networkd lets go of
          them and puts back what it dropped (RV(changes[].action=restore)); in check mode, the tunnels it would
          wait for.
      type: list
      elements: str
      sample: [gre-hostb]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.gre.plugins.module_utils._host import Host, run_module
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.converge import converge
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import Kernel
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import CHOICES, Files
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.spec import (
    KEY_EXCLUSIVE,
    OPTION_NAMES,
    invocation,
    tunnel_options,
    tunnels_option,
)


def argument_spec() -> dict:
    return dict(
        tunnel_options(),
        tunnels=tunnels_option(),
        purge=dict(type="bool", default=False),
        persist=dict(type="str", choices=list(CHOICES)),
        adopt=dict(type="bool", default=False),
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[*KEY_EXCLUSIVE, ["name", "purge"], *(["tunnels", option] for option in OPTION_NAMES)],
        required_one_of=[["name", "tunnels"]],
        required_if=[("state", "present", ("remote", "tunnels"), True)],
        required_by={"persist": "tunnels"},
        supports_check_mode=True,
    )
    host = Host(module)
    run_module(
        module,
        lambda: dict(
            converge(
                Kernel(host),
                Files(host),
                module.params,
                check_mode=module.check_mode,
                diff=module._diff,
                warn=module.warn,
            ),
            invocation=invocation(module.params),
        ),
    )


if __name__ == "__main__":
    main()
