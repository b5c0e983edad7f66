# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to the linuxnet.gre collection; runs on the managed hosts: the far end of a tunnel, as gre_ping and gre_probe take it.

One option schema for gre_ping's ``targets`` and gre_probe's ``peers``: the shape of the ``peers``
entries of the plan (the gre_plan_check filter), so that a plan's peers can be given to either
module as they are. ``check_interface``, ``check_addresses`` and ``check_timeout``: the rules both apply.
"""

from __future__ import annotations

import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import interface_name_problem

PEER_OPTIONS: dict[str, dict[str, t.Any]] = {
    "interface": {"type": "str", "required": True},
    "peer": {"type": "str"},
    "external": {"type": "bool", "default": False},
    "addresses": {"type": "list", "elements": "str", "default": []},
}


def peers_option(**settings: t.Any) -> dict[str, t.Any]:
    """The argument spec of a list of peers (each as PEER_OPTIONS), with the option's own ``settings``."""
    return dict({"type": "list", "elements": "dict", "options": PEER_OPTIONS}, **settings)


def check_interface(label: str, interface: str) -> None:
    """The interface must be a name the kernel takes (the one rule, _tunnel.desired). Raises GreError naming ``label``."""
    problem = interface_name_problem(interface)
    if problem:
        raise GreError(f"{label}: interface: {interface!r} is not an interface name: {problem}")


def check_timeout(timeout: float) -> None:
    """How long both modules wait for the last replies."""
    if not 0 < timeout <= 60:
        raise GreError(f"timeout: {timeout} is not more than 0 and at most 60 seconds")


def check_addresses(label: str, addresses: list[str]) -> None:
    """Each address must be an IP address without prefix. Raises GreError naming ``label``."""
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise GreError(f"{label}: addresses: {address!r} is not an IP address (without prefix)") from None
