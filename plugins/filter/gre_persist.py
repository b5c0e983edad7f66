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
    M(linuxnet.gre.gre_tunnel) takes, into what makes them come back at boot. The module
    M(linuxnet.gre.gre_tunnel) writes the same, with its O(linuxnet.gre.gre_tunnel#module:persist) option,
    from the same code; this filter is for writing them in a form of your own.
  - "V(batch) gives C(ip -batch) lines, exactly the commands M(linuxnet.gre.gre_tunnel) runs to create the
    tunnels (including the alias C(managed-by: linuxnet.gre) that marks them as its own, so that the module
    still manages them after a reboot)."
  - V(networkd) gives, per tunnel, the settings of a systemd-networkd C(.netdev) file (C(netdev) and
    C(tunnel), C([key, value]) pairs of its C([NetDev]) and C([Tunnel]) sections) and the addresses of its
    C(.network) file, and its C([Route]) sections when the tunnel gives routes.
  - V(batch) ends with the C(route add) lines of the tunnels that give routes, as the module runs them.
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
    routes:
      description:
        - (V(networkd)) One C([Route]) section of the C(.network) file per route, C([key, value]) pairs, with
          C(Protocol=250), the mark of M(linuxnet.gre.gre_tunnel)'s routes.
      returned: when the tunnel gives O(linuxnet.gre.gre_tunnel#module:tunnels[].routes)
      type: list
      elements: list
      sample: [[[Destination, 192.168.20.0/24], [Gateway, 10.0.0.2], [Metric, "0"], [Protocol, "250"]]]
"""

import typing as t

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import wanted_routes, wanted_tunnels
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import Route, Tunnel
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import (
    batch_lines,
    networkd_settings,
    route_settings,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.spec import (
    KEY_EXCLUSIVE,
    OPTION_NAMES,
    REQUIRED_IF,
    entry_options,
)

FORMATS = ("batch", "networkd")


def gre_persist(tunnels: t.Any, format: t.Any) -> list[t.Any]:
    if format not in FORMATS:
        raise AnsibleFilterError(f"gre_persist: format must be one of {', '.join(FORMATS)}, not {format!r}")
    present, routes = checked_tunnels(tunnels)
    try:
        if format == "batch":
            return batch_lines(present, routes)
        return [with_routes(networkd_settings(tunnel), routes) for tunnel in present]
    except GreError as exc:
        raise AnsibleFilterError(f"gre_persist: {exc.msg}") from None


def with_routes(settings: dict[str, t.Any], routes: dict[str, tuple[Route, ...]]) -> dict[str, t.Any]:
    """A tunnel's networkd settings, with its [Route] sections when it gives routes."""
    if settings["name"] in routes:
        settings["routes"] = [route_settings(route) for route in routes[settings["name"]]]
    return settings


def checked_tunnels(tunnels: t.Any) -> tuple[list[Tunnel], dict[str, tuple[Route, ...]]]:
    """The present tunnels, checked as gre_tunnel checks its tunnels option (its argument spec, then its own code)."""
    if not isinstance(tunnels, list) or not all(isinstance(entry, dict) for entry in tunnels):
        raise AnsibleFilterError("gre_persist: the input must be a list of tunnels (dicts), as gre_tunnel's tunnels")
    validator = ArgumentSpecValidator(entry_options(), mutually_exclusive=KEY_EXCLUSIVE, required_if=REQUIRED_IF)
    entries = []
    for entry in tunnels:
        unknown = sorted(set(entry) - set(OPTION_NAMES))
        if unknown or "name" not in entry:
            problem = f"unknown option {', '.join(unknown)}" if unknown else "no name"
            raise AnsibleFilterError(f"gre_persist: tunnel {entry.get('name', '?')}: {problem}")
        # As for the module, an option set to None is an option not given.
        validated = validator.validate({k: v for k, v in entry.items() if v is not None})
        if validated.error_messages:
            raise AnsibleFilterError(f"gre_persist: tunnel {entry['name']}: {validated.error_messages[0]}")
        entries.append(validated.validated_parameters)
    try:
        wanted = wanted_tunnels({"tunnels": entries})
        routes = wanted_routes({"tunnels": entries}, wanted) or {}
    except GreError as exc:
        raise AnsibleFilterError(f"gre_persist: {exc.msg}") from None
    return [tunnel for tunnel in wanted if isinstance(tunnel, Tunnel)], routes


class FilterModule:
    """linuxnet.gre's tunnels as boot-time configuration."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"gre_persist": gre_persist}
