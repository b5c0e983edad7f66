# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gre_mesh role's defaults, argument specs and settings agree with each other and with the planner."""

from __future__ import annotations

import pathlib
import re

import jinja2
import pytest
import yaml

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import CHOICES as PERSIST_CHOICES
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import DEFAULTS as PLANNER_DEFAULTS
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.role_settings import RANGES

ROLE = pathlib.Path(__file__).resolve().parents[3] / "roles" / "gre_mesh"
DEFAULTS_TEXT = (ROLE / "defaults" / "main.yml").read_text()
DEFAULTS = yaml.safe_load(DEFAULTS_TEXT)
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
SETTINGS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__gre_mesh_settings"]
PER_HOST = {name for name, spec in SPECS.items() if spec["description"][0].startswith("Per host.")}


def test_every_default_has_a_spec_with_the_same_default():
    for name, value in DEFAULTS.items():
        assert name in SPECS, f"{name} is in defaults/main.yml but not in meta/argument_specs.yml"
        assert SPECS[name].get("default") == value, (
            f"{name}: default {value!r} in defaults, {SPECS[name].get('default')!r} in specs"
        )


def test_every_spec_is_a_default_or_a_documented_per_host_variable():
    for name, spec in SPECS.items():
        if name in PER_HOST:
            assert "default" not in spec, (
                f"{name} is per host: a role default would hide it from the planner's hostvars"
            )
            assert re.search(rf"^#   {name} ", DEFAULTS_TEXT, re.MULTILINE), (
                f"{name} is not described in defaults/main.yml"
            )
        else:
            assert name in DEFAULTS, f"{name} is in meta/argument_specs.yml but not in defaults/main.yml"


def test_every_variable_is_prefixed_and_documented():
    for name in SPECS:
        assert name.startswith("gre_mesh_")
    for name in DEFAULTS:
        assert re.search(rf"#[^\n]*\n(#[^\n]*\n)*{name}:", DEFAULTS_TEXT), f"{name} has no comment above it"


def test_the_role_passes_every_planner_setting_under_its_own_variable():
    assert set(SETTINGS) == set(PLANNER_DEFAULTS)
    for keyword, expression in SETTINGS.items():
        assert expression == f"{{{{ gre_mesh_{keyword} }}}}"
        assert f"gre_mesh_{keyword}" in DEFAULTS


def test_choices_match_the_planners():
    assert SPECS["gre_mesh_mode"]["choices"] == ["gre", "gretap", "ip6gre", "ip6gretap"]
    assert SPECS["gre_mesh_prefix"]["choices"] == [30, 31]
    assert SPECS["gre_mesh_prefix6"]["choices"] == [126, 127]


def test_gre_mesh_persist_takes_what_gre_tunnel_persist_takes():
    assert sorted(SPECS["gre_mesh_persist"]["choices"]) == sorted(PERSIST_CHOICES)


@pytest.mark.parametrize(
    ("persist", "auto", "tunnels", "passed"),
    [
        # auto is decided by the module, except where gre_host_facts already found the unit: told, it reads less.
        ("auto", "unit", 1, "unit"),
        ("auto", "networkd", 1, "auto"),
        ("auto", "none", 1, "auto"),
        # Without tunnels, auto means none (what was persisted goes): the module's to decide.
        ("auto", "unit", 0, "auto"),
        # An explicit choice is passed as it is.
        ("networkd", "unit", 1, "networkd"),
        ("none", "unit", 1, "none"),
        ("unit", "networkd", 1, "unit"),
    ],
)
def test_the_persist_option_the_role_gives_gre_tunnel(persist, auto, tunnels, passed):
    (task,) = yaml.safe_load((ROLE / "tasks" / "apply.yml").read_text())
    assert task["linuxnet.gre.gre_tunnel"]["persist"] == "{{ __gre_mesh_persist_here }}"
    rendered = (
        jinja2.Environment()
        .from_string(task["vars"]["__gre_mesh_persist_here"])
        .render(
            gre_mesh_persist=persist,
            __gre_mesh_host={"persist": {"auto": auto}},
            __gre_mesh_persist_tunnels=[{"name": f"gre-{index}"} for index in range(tunnels)],
        )
    )
    assert rendered.strip() == passed


def test_the_ranges_the_play_checks_are_the_ones_the_specs_and_defaults_document():

    for name, (low, high, _unit) in RANGES.items():
        words = f"from {low:g} to {high:g}"
        description = SPECS[name]["description"]
        assert words in " ".join(description if isinstance(description, list) else [description]).lower(), name
        comment = re.search(rf"((?:#[^\n]*\n)+){name}:", DEFAULTS_TEXT)
        assert comment and words.lower() in comment.group(1).replace("\n# ", " ").lower(), name
        assert low <= DEFAULTS[name] <= high, name
