#!/usr/bin/python
# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gre_forward
short_description: Forwarding and loose reverse-path filtering for the networks routed through GRE tunnels
version_added: 0.1.0
description:
  - Switches on forwarding for the IP versions in O(forward) (C(net.ipv4.ip_forward),
    C(net.ipv6.conf.all.forwarding)) at once and for boot, in a sysctl.d file of its own,
    C(/etc/sysctl.d/60-linuxnet-gre.conf), whose first lines say who writes it.
  - "It never switches forwarding off behind the user's back: the file records, as C(# was KEY = VALUE) comments,
    the value each key had before this module switched it. When a key is no longer planned (O(forward) without its
    IP version, an interface no longer listed), its line goes and its previous value is put back only if this module
    switched it and it still holds this module's value. A forwarding that was on before is left on, always. Nothing
    planned: the file is removed."
  - "IPv6: switching C(net.ipv6.conf.all.forwarding) on makes the kernel delete at once the default routes learned
    from router advertisements on interfaces with C(accept_ra=1), and ignore further advertisements there (measured
    on kernel 6.1), so a host that takes its IPv6 default route from SLAAC would lose it.
    When this module switches IPv6 forwarding on, every interface with C(accept_ra=1) through which the kernel holds
    a route learned from a router advertisement (C(proto ra)) gets C(accept_ra=2) (accept them even when
    forwarding), kept in the same file. Other interfaces are left alone."
  - "Reverse-path filtering: the kernel checks a packet arriving on an interface against
    max(C(net.ipv4.conf.all.rp_filter), C(net.ipv4.conf.IFACE.rp_filter)). Where that is 1 (strict) for an
    interface in O(interfaces), that interface alone gets C(rp_filter=2) (loose: the source must be routable through
    some interface). Strict would drop forwarded traffic whose reply takes another tunnel, as it does over a mesh
    where two paths are equally short; loose still drops sources the host cannot route at all. C(conf.all) and
    C(conf.default) are never changed. The file's line for the interface is applied again by systemd's udev rule
    (C(systemd-sysctl --prefix=/net/ipv4/conf/IFACE)) whenever the interface appears, at boot included."
  - Reads the kernel's values in C(/proc/sys) and changes them with one C(sysctl -w) for all keys.
  - "Needs root privileges (C(become: true))."
requirements:
  - Python on the target, a version the ansible-core in use supports there (3.7 or newer with ansible-core 2.17,
    3.8 or newer from 2.18 on)
  - C(sysctl) (procps), and C(ip) (iproute2) when IPv6 forwarding is switched on
  - sysctl.d read at boot (systemd-sysctl, or procps' C(sysctl --system)) for the settings to survive a reboot
author:
  - linuxnet.gre maintainers (@linuxnet)
attributes:
  check_mode:
    support: full
    description: Reads the kernel and the file and predicts every change; changes nothing.
  diff_mode:
    support: full
    description: Shows the keys involved before and after (C(sysctl)) and the file before and after.
  idempotent:
    support: full
    description: A second run with the same options changes nothing.
  platform:
    support: full
    platforms: posix
    description: Linux.
options:
  forward:
    description:
      - The IP versions this host forwards for the routed networks (4, 6). Empty means it forwards nothing for
        linuxnet.gre; what this module switched on before is then put back.
    type: list
    elements: int
    choices: [4, 6]
    default: []
  interfaces:
    description:
      - The interfaces (tunnels) that carry routed traffic. Each gets C(rp_filter=2) where reverse-path filtering is
        strict on it (see above). A name that does not exist yet is kept in the file and applied when the
        interface appears.
    type: list
    elements: str
    default: []
notes:
  - "The file sorts before C(/etc/sysctl.d/99-sysctl.conf) (C(/etc/sysctl.conf)): a C(net.ipv4.ip_forward=0) there
    wins at boot."
  - The role C(linuxnet.gre.gre_mesh) calls this module on every host with the planned C(forward) and the tunnels
    that carry routes, unless C(gre_mesh_forward=false).
seealso:
  - module: linuxnet.gre.gre_tunnel
"""

EXAMPLES = r"""
- name: Forward IPv4 between this host's LAN and its tunnels, loose rp_filter on them where strict
  linuxnet.gre.gre_forward:
    forward: [4]
    interfaces: [gre-hostb, gre-hostc]
  become: true

- name: This host forwards nothing for linuxnet.gre any more (puts back what the module switched)
  linuxnet.gre.gre_forward:
    forward: []
  become: true
"""

RETURN = r"""
forwarding:
  description: Whether forwarding is on after the run (predicted in check mode), per IP version.
  returned: success
  type: dict
  sample: {ipv4: true, ipv6: false}
sysctls:
  description: The keys in the file after the run and their values in the kernel (sysctl's names).
  returned: success
  type: dict
  sample: {net.ipv4.ip_forward: "1", net.ipv4.conf.gre-hostb.rp_filter: "2"}
switched:
  description: The keys this module switched (now or in an earlier run) with the value each had before.
  returned: success
  type: dict
  sample: {net.ipv4.ip_forward: "0"}
restored:
  description: The keys no longer planned that this run put back, with the value put back.
  returned: success
  type: dict
  sample: {net.ipv4.ip_forward: "0"}
commands:
  description: The C(sysctl -w) run (or that would run, in check mode); empty when the kernel needed no change.
  returned: success
  type: list
  elements: str
  sample: ["sysctl -w net.ipv4.ip_forward=1 net.ipv4.conf.gre-hostb.rp_filter=2"]
file:
  description: The sysctl.d file of this module and whether it is there after the run.
  returned: success
  type: dict
  sample: {path: /etc/sysctl.d/60-linuxnet-gre.conf, state: present}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.linuxnet.gre.plugins.module_utils._forward import converge
from ansible_collections.linuxnet.gre.plugins.module_utils._host import Host, run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "forward": {"type": "list", "elements": "int", "choices": [4, 6], "default": []},
            "interfaces": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    run_module(module, lambda: converge(Host(module), module.params, check_mode=module.check_mode, diff=module._diff))


if __name__ == "__main__":
    main()
