# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gre_persist
short_description: Render a host's GRE tunnels as boot-time configuration
version_added: 0.1.0
author:
  - linuxnet.gre maintainers (@linuxnet)
description:
  - Turns a host's tunnels, in the shape the O(linuxnet.gre.gre_tunnel#module:tunnels) option of
    M(linuxnet.gre.gre_tunnel) takes, into what makes them come back at boot. The role
    C(linuxnet.gre.gre_mesh) writes the result to files (its C(gre_mesh_persist) variable).
  - "V(batch) gives C(ip -batch) lines, exactly the commands M(linuxnet.gre.gre_tunnel) runs to create the
    tunnels (including the alias C(managed-by: linuxnet.gre) that marks them as its own, so that the module
    still manages them after a reboot)."
  - V(networkd) gives, per tunnel, the settings of a systemd-networkd C(.netdev) file (C(netdev) and
    C(tunnel), C([key, value]) pairs of its C([NetDev]) and C([Tunnel]) sections) and the addresses of its
    C(.network) file.
  - The tunnels are checked as the module checks them; a tunnel with C(state=absent) is left out.
positional: format
options:
  _input:
    description: The tunnels, as for O(linuxnet.gre.gre_tunnel#module:tunnels); the module's defaults apply.
    type: list
    elements: dict
    required: true
  format:
    description: What to render.
    type: str
    choices: [batch, networkd]
    required: true
notes:
  - "V(networkd) cannot express a tunnel bound to an underlay device (C(dev)), nor a C(tos) of V(inherit) on the
    IPv6 modes; such a tunnel is an error naming it. The planner of C(linuxnet.gre.gre_mesh) never plans those."
seealso:
  - module: linuxnet.gre.gre_tunnel
"""

EXAMPLES = r"""
- name: The ip -batch lines that recreate the tunnels at boot
  ansible.builtin.copy:
    dest: /etc/linuxnet-gre/tunnels.batch
    content: "{{ tunnels | linuxnet.gre.gre_persist('batch') | join('\n') }}\n"
    mode: "0644"
  vars:
    tunnels:
      - {name: gre-hostb, local: 203.0.113.1, remote: 198.51.100.1, addresses: [10.0.0.1/30]}
"""

RETURN = r"""
_value:
  description:
    - With V(batch), the C(ip -batch) lines, each without the leading C(ip).
    - With V(networkd), one entry per tunnel, in the order given.
  type: list
  elements: raw
  sample:
    - link add name gre-hostb type gre remote 198.51.100.1 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc
    - link set dev gre-hostb alias "managed-by: linuxnet.gre" up
    - address add 10.0.0.1/30 dev gre-hostb
  contains:
    name:
      description: (V(networkd)) The interface name.
      type: str
    netdev:
      description: (V(networkd)) The C([NetDev]) settings, C([key, value]) pairs.
      type: list
      elements: list
      sample: [[Name, gre-hostb], [Kind, gre]]
    tunnel:
      description: (V(networkd)) The C([Tunnel]) settings, C([key, value]) pairs.
      type: list
      elements: list
      sample: [[Local, 203.0.113.1], [Remote, 198.51.100.1], [TTL, "255"], [DiscoverPathMTU, "yes"]]
    addresses:
      description: (V(networkd)) The inner addresses, for C(Address=) in the C(.network) file.
      type: list
      elements: str
"""

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.module_utils._gre_desired import wanted_tunnels
from ansible_collections.linuxnet.gre.plugins.module_utils._gre_model import (
    IPV6_MODES,
    TOS_INHERIT,
    GreError,
    Tunnel,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._gre_plan import Plan, add_create_steps

# The defaults of the suboptions of gre_tunnel's `tunnels` option (plugins/modules/gre_tunnel.py).
MODULE_DEFAULTS: dict[str, t.Any] = {
    "mode": "gre",
    "local": None,
    "remote": None,
    "ttl": 255,
    "tos": "0",
    "key": None,
    "ikey": None,
    "okey": None,
    "pmtudisc": None,
    "mtu": None,
    "dev": None,
    "addresses": [],
    "state": "present",
}
FORMATS = ("batch", "networkd")


def gre_persist(tunnels: t.Any, format: t.Any) -> list[t.Any]:
    if format not in FORMATS:
        raise AnsibleFilterError(f"gre_persist: format must be one of {', '.join(FORMATS)}, not {format!r}")
    present = checked_tunnels(tunnels)
    if format == "batch":
        return batch_lines(present)
    return [networkd_settings(tunnel) for tunnel in present]


def checked_tunnels(tunnels: t.Any) -> list[Tunnel]:
    """The present tunnels, parsed and checked by the module's own code, in the order given."""
    if not isinstance(tunnels, list) or not all(isinstance(entry, dict) for entry in tunnels):
        raise AnsibleFilterError("gre_persist: the input must be a list of tunnels (dicts), as gre_tunnel's tunnels")
    entries = []
    for entry in tunnels:
        unknown = sorted(set(entry) - set(MODULE_DEFAULTS) - {"name"})
        if unknown or "name" not in entry:
            problem = f"unknown option {', '.join(unknown)}" if unknown else "no name"
            raise AnsibleFilterError(f"gre_persist: tunnel {entry.get('name', '?')}: {problem}")
        entries.append({**MODULE_DEFAULTS, **{k: v for k, v in entry.items() if v is not None}})
    try:
        wanted = wanted_tunnels({"tunnels": entries})
    except GreError as exc:
        raise AnsibleFilterError(f"gre_persist: {exc.msg}") from None
    return [tunnel for tunnel in wanted if isinstance(tunnel, Tunnel)]


def batch_lines(tunnels: list[Tunnel]) -> list[str]:
    """What gre_tunnel runs to create these tunnels on a host that has none of them: links, then addresses."""
    plan = Plan()
    for tunnel in tunnels:
        add_create_steps(plan, tunnel)
    return [line for _name, line in plan.creates + plan.address_adds]


def networkd_settings(tunnel: Tunnel) -> dict[str, t.Any]:
    """The .netdev sections of a tunnel (systemd 252 and later, for Independent=) and its addresses."""
    name = tunnel.name
    if tunnel.dev is not None:
        raise AnsibleFilterError(
            f"gre_persist: tunnel {name}: dev: a tunnel bound to an underlay device cannot be persisted with "
            "systemd-networkd here; use the unit (gre_mesh_persist: unit)"
        )
    netdev = [["Name", name], ["Kind", tunnel.mode]]
    if tunnel.mtu is not None:
        netdev.append(["MTUBytes", str(tunnel.mtu)])
    settings = []
    if tunnel.local is not None:
        settings.append(["Local", tunnel.local])
    settings += [["Remote", tunnel.remote], ["TTL", str(tunnel.ttl)]]
    if tunnel.tos != "0x00":
        if tunnel.mode in IPV6_MODES:
            raise AnsibleFilterError(
                f"gre_persist: tunnel {name}: tos: systemd-networkd has no traffic class setting for {tunnel.mode}; "
                "use the unit (gre_mesh_persist: unit)"
            )
        # The kernel's TOS 1 means inherit, as `ip … tos inherit` sets it.
        settings.append(["TOS", "1" if tunnel.tos == TOS_INHERIT else str(int(tunnel.tos, 16))])
    if tunnel.ikey is not None and tunnel.ikey == tunnel.okey:
        settings.append(["Key", str(tunnel.ikey)])
    else:
        if tunnel.ikey is not None:
            settings.append(["InputKey", str(tunnel.ikey)])
        if tunnel.okey is not None:
            settings.append(["OutputKey", str(tunnel.okey)])
    if tunnel.pmtudisc is not None:
        settings.append(["DiscoverPathMTU", "yes" if tunnel.pmtudisc else "no"])
    # Created when networkd starts, bound to no underlay link: the local address may come later.
    settings.append(["Independent", "yes"])
    return {"name": name, "netdev": netdev, "tunnel": settings, "addresses": list(tunnel.addresses)}


class FilterModule:
    """linuxnet.gre's tunnels as boot-time configuration."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"gre_persist": gre_persist}
