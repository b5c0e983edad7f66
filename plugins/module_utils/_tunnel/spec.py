# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts and the controller: the options of one GRE tunnel.

The argument spec of a tunnel as gre_tunnel takes it (its single form, and each entry of its
``tunnels``): types, choices, defaults and the constraints between the options. gre_probe's
``tunnels``, the gre_persist filter and the planner's commands for external peers take the same,
from here. Each call returns a fresh copy, so no caller can change another's defaults.
"""

from __future__ import annotations

import copy
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import ENCAP_TYPES, MODES

STATES = ("present", "absent")

_OPTIONS: dict[str, dict[str, t.Any]] = {
    "name": {"type": "str"},
    "mode": {"type": "str", "choices": list(MODES), "default": "gre"},
    "local": {"type": "str"},
    "remote": {"type": "str"},
    "ttl": {"type": "int", "default": 255},
    "tos": {"type": "str", "default": "0"},
    # Keys identify tunnels; they are no secret.
    "key": {"type": "str", "no_log": False},
    "ikey": {"type": "str", "no_log": False},
    "okey": {"type": "str", "no_log": False},
    "pmtudisc": {"type": "bool"},
    "mtu": {"type": "int"},
    "dev": {"type": "str"},
    "addresses": {"type": "list", "elements": "str", "default": []},
    "state": {"type": "str", "choices": list(STATES), "default": "present"},
    # None (not given): no encapsulation (one the kernel has is removed).
    "encap": {
        "type": "dict",
        "options": {
            "type": {"type": "str", "choices": list(ENCAP_TYPES), "required": True},
            "dport": {"type": "int", "required": True},
            "sport": {"type": "int", "default": 0},
            "csum": {"type": "bool", "default": False},
            "remcsum": {"type": "bool", "default": False},
        },
    },
    # None (not given): the tunnel's routes are left alone; a list, even empty: exactly those.
    "routes": {
        "type": "list",
        "elements": "dict",
        "options": {
            "prefix": {"type": "str", "required": True},
            "via": {"type": "str"},
            "metric": {"type": "int"},
        },
    },
}
OPTION_NAMES = tuple(_OPTIONS)
# key is both directions' key: not together with either.
KEY_EXCLUSIVE = [["key", "ikey"], ["key", "okey"]]
# A tunnel that should exist needs the address of its other end.
REQUIRED_IF = [("state", "present", ("remote",))]


def tunnel_options() -> dict[str, dict[str, t.Any]]:
    """The options of one tunnel, as gre_tunnel's single form takes them (the name not required there)."""
    return copy.deepcopy(_OPTIONS)


def entry_options() -> dict[str, dict[str, t.Any]]:
    """The options of one entry of a ``tunnels`` list: those of a tunnel, with the name required."""
    options = tunnel_options()
    options["name"]["required"] = True
    return options


def tunnels_option() -> dict[str, t.Any]:
    """gre_tunnel's ``tunnels`` option: a list of tunnels, each checked with the constraints between its options."""
    return {
        "type": "list",
        "elements": "dict",
        "options": entry_options(),
        "mutually_exclusive": copy.deepcopy(KEY_EXCLUSIVE),
        "required_if": copy.deepcopy(REQUIRED_IF),
    }


def defaults() -> dict[str, t.Any]:
    """Every option but the name, with the value it takes when not given (None for no default)."""
    return {name: option.get("default") for name, option in tunnel_options().items() if name != "name"}


def with_defaults(tunnel: dict[str, t.Any]) -> dict[str, t.Any]:
    """A tunnel as the argument spec leaves it: every option not given at its default, ``encap``'s too."""
    options = tunnel_options()
    result = {**defaults(), **tunnel}
    if result.get("encap"):
        encap = options["encap"]["options"]
        result["encap"] = {**{name: option.get("default") for name, option in encap.items()}, **result["encap"]}
    return result


def invocation(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The ``invocation`` gre_tunnel returns: its ``module_args`` without the options left null (those not given that
    have no default), at the top and in each ``tunnels`` entry.

    AnsibleModule would echo every option of every entry, most of them null: for 200 tunnels 57 KB of the result's
    164 KB, which the module serialises and the controller reads at each run.
    """
    args = {name: value for name, value in params.items() if value is not None}
    if params.get("tunnels") is not None:
        args["tunnels"] = [
            {name: value for name, value in entry.items() if value is not None} for entry in params["tunnels"]
        ]
    return {"module_args": args}
