# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one tunnel option schema (_tunnel/spec.py): gre_tunnel and gre_probe take it, and their docs say it.

That the gre_persist filter checks with it: tests/unit/plugins/filter/test_gre_persist.py.
"""

from __future__ import annotations

import typing as t

import pytest
import yaml

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MODES
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import spec
from ansible_collections.linuxnet.gre.plugins.modules import gre_probe, gre_tunnel

# What an argument spec and a DOCUMENTATION block both say of an option.
COMPARED = ("type", "elements", "choices", "default", "required")


def compared(options: dict[str, dict[str, t.Any]], nested: str = "options") -> dict[str, dict[str, t.Any]]:
    """The compared fields of an argument spec, those at their default left out (no default, not required).

    ``nested="suboptions"`` reads a DOCUMENTATION ``options`` block the same way.
    """
    result = {}
    for name, option in options.items():
        fields = {key: option[key] for key in COMPARED if option.get(key) not in (None, False)}
        if nested in option:
            fields["options"] = compared(option[nested], nested)
        result[name] = fields
    return result


def from_doc(options: dict[str, dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    return compared(options, nested="suboptions")


def probe_spec(monkeypatch: pytest.MonkeyPatch) -> dict[str, t.Any]:
    """The argument spec gre_probe's main() gives AnsibleModule (its main stops there)."""
    given: dict[str, t.Any] = {}

    class Stop(Exception):
        pass

    def capture(**kwargs: t.Any) -> t.NoReturn:
        given.update(kwargs)
        raise Stop

    monkeypatch.setattr(gre_probe, "AnsibleModule", capture)
    with pytest.raises(Stop):
        gre_probe.main()
    return given["argument_spec"]


def test_gre_tunnel_documents_its_argument_spec_option_for_option():
    documented = from_doc(yaml.safe_load(gre_tunnel.DOCUMENTATION)["options"])
    assert documented == compared(gre_tunnel.argument_spec())


def test_gre_tunnel_takes_the_shared_schema_in_both_forms():
    argument_spec = gre_tunnel.argument_spec()
    assert {name: argument_spec[name] for name in spec.OPTION_NAMES} == spec.tunnel_options()
    assert argument_spec["tunnels"] == spec.tunnels_option()
    assert argument_spec["tunnels"]["options"]["name"]["required"] is True
    assert argument_spec["mode"]["choices"] == list(MODES)


def test_gre_probe_takes_gre_tunnel_s_tunnels_and_documents_them(monkeypatch):
    tunnels = probe_spec(monkeypatch)["tunnels"]
    assert tunnels["options"] == spec.entry_options()
    documented = from_doc(yaml.safe_load(gre_probe.DOCUMENTATION)["options"]["tunnels"]["suboptions"])
    assert documented == compared(tunnels["options"])


def test_defaults_are_what_a_tunnel_takes_when_an_option_is_not_given():
    """What the gre_persist filter and the planner's commands apply, as gre_tunnel's argument spec does."""
    assert spec.defaults() == {
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
        "encap": None,
        "routes": None,
    }


def test_every_caller_gets_a_copy_of_its_own():
    spec.tunnel_options()["mode"]["choices"].append("vxlan")
    spec.entry_options()["addresses"]["default"].append("10.0.0.1/30")
    spec.defaults()["addresses"].append("10.0.0.1/30")
    spec.tunnels_option()["mutually_exclusive"].clear()
    assert spec.tunnel_options()["mode"]["choices"] == list(MODES)
    assert spec.defaults()["addresses"] == []
    assert spec.tunnels_option()["mutually_exclusive"] == spec.KEY_EXCLUSIVE
