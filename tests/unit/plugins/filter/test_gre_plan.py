# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gre_plan_check and gre_plan filters: Ansible's hostvars and groups in, plans or an AnsibleFilterError out.

Most tests build Ansible's own HostVars from an inventory file, as a play sees them; one runs
ansible-playbook on localhost to check run_once and --limit end to end.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pathlib
import shutil
import subprocess
import sys
import typing as t

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.utils.plugin_docs import add_fragments
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.linuxnet.gre.plugins.filter import gre_plan as plugin
from ansible_collections.linuxnet.gre.plugins.filter import gre_plan_check as check_plugin
from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import checked_plan
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import DEFAULTS

from ..plugin_utils.planner.inventories import SEED_TUNNELS

# hosta and hostb are the seed's (SEED there), their local addresses given, not from facts.
INVENTORY = {
    "all": {
        "children": {
            "gre_hosts": {
                "hosts": {
                    "hosta": {"ansible_host": "34.27.138.140", "gre_mesh_local": "10.128.0.11"},
                    "hostb": {"ansible_host": "34.44.203.186", "gre_mesh_local": "{{ '10.128.0.' ~ (6 * 2) }}"},
                    # Its local address comes from facts, which a play limited to hosta and hostb does not have.
                    "hostc": {"ansible_host": "198.51.100.3", "gre_mesh_local": "{{ ansible_default_ipv4.address }}"},
                }
            }
        }
    }
}


def ansible_variables(tmp_path: pathlib.Path, inventory: dict[str, t.Any]) -> tuple[HostVars, dict[str, list[str]]]:
    """hostvars and groups as a play sees them."""
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=manager)
    return HostVars(manager, variables, loader), manager.get_groups_dict()


LINKS = [["hosta", "hostb"], ["hosta", "hostc"]]


def test_plans_from_ansible_hostvars(tmp_path: pathlib.Path) -> None:
    hostvars, groups = ansible_variables(tmp_path, INVENTORY)
    check = check_plugin.gre_plan_check(hostvars, groups, hosts=["hosta", "hostb"], links=LINKS)
    assert (check["summary"], check["keys"], check["external_peers"]) == (
        {"hosts": 3, "links": 2, "external_peers": 0},
        [],
        {},
    )
    assert sorted(check["hosts"]) == ["hosta", "hostb"]
    hosta = plugin.gre_plan(hostvars, groups, "hosta", check=check, links=LINKS)
    assert hosta["tunnels"][0] == SEED_TUNNELS["hosta"]
    assert hosta["tunnels"][1]["remote"] == "198.51.100.3"
    assert plugin.gre_plan(hostvars, groups, "hostb", check=check, links=LINKS) == check["hosts"]["hostb"]
    assert check["hosts"]["hostb"]["tunnels"][0]["local"] == "10.128.0.12"


def test_packed_hosts_have_their_long_lists_as_json_which_the_plan_readers_take_as_lists(
    tmp_path: pathlib.Path,
) -> None:
    hostvars, groups = ansible_variables(tmp_path, INVENTORY)
    plain_check = check_plugin.gre_plan_check(hostvars, groups, hosts=["hosta", "hostb"], links=LINKS)
    packed = check_plugin.gre_plan_check(hostvars, groups, hosts=["hosta", "hostb"], links=LINKS, packed=True)
    for host, host_plan in packed["hosts"].items():
        assert sorted(key for key, value in host_plan.items() if isinstance(value, str)) == ["peers", "tunnels"]
        assert {key: json.loads(value) if isinstance(value, str) else value for key, value in host_plan.items()} == (
            plain_check["hosts"][host]
        )
    assert {key: value for key, value in packed.items() if key != "hosts"} == {
        key: value for key, value in plain_check.items() if key != "hosts"
    }
    assert checked_plan("f", packed) == checked_plan("f", plain_check) == plain_check
    with pytest.raises(AnsibleFilterError, match="f: plan's hosts hold text that is not a packed list"):
        checked_plan("f", {"hosts": {"hosta": {"tunnels": "gre-hostb"}}})


def test_a_variable_that_cannot_be_evaluated_is_named(tmp_path: pathlib.Path) -> None:
    hostvars, groups = ansible_variables(tmp_path, INVENTORY)
    with pytest.raises(AnsibleFilterError) as caught:
        check_plugin.gre_plan_check(hostvars, groups, full_mesh=["gre_hosts"])
    assert (
        caught.value.message == "host hostc: gre_mesh_local: cannot be evaluated: 'ansible_default_ipv4' is undefined"
    )


def test_underlay_mtus_from_hostvars_give_both_filters_the_same_tunnel_mtu(tmp_path: pathlib.Path) -> None:
    inventory = json.loads(json.dumps(INVENTORY))
    hosts = inventory["all"]["children"]["gre_hosts"]["hosts"]
    hosts["hosta"]["gre_mesh_underlay_mtu"] = "{{ 1000 + 400 }}"
    hosts["hostb"]["gre_mesh_underlay_mtu"] = 1500
    hostvars, groups = ansible_variables(tmp_path, inventory)
    check = check_plugin.gre_plan_check(hostvars, groups, hosts=["hosta", "hostb"], links=LINKS)
    assert [check["nodes"][name][4:] for name in ("hosta", "hostb", "hostc")] == [
        [1400, None],
        [1500, None],
        [None, None],
    ]
    tunnels = {tunnel["name"]: tunnel.get("mtu") for tunnel in check["hosts"]["hosta"]["tunnels"]}
    assert tunnels == {"gre-hostb": 1376, "gre-hostc": None}  # hostc's underlay MTU is unknown: the kernel's
    for name in ("hosta", "hostb"):
        assert plugin.gre_plan(hostvars, groups, name, check=check, links=LINKS) == check["hosts"][name]
    hosts["hostc"]["gre_mesh_underlay_mtu"] = "{{ no_such_variable }}"
    hostvars, groups = ansible_variables(tmp_path, inventory)
    with pytest.raises(AnsibleFilterError) as caught:
        check_plugin.gre_plan_check(hostvars, groups, hosts=["hosta", "hostb"], links=LINKS)
    assert caught.value.message == (
        "host hostc: gre_mesh_underlay_mtu: cannot be evaluated: 'no_such_variable' is undefined"
    )


def test_planner_errors_become_filter_errors(tmp_path: pathlib.Path) -> None:
    hostvars, groups = ansible_variables(tmp_path, INVENTORY)
    with pytest.raises(AnsibleFilterError) as caught:
        check_plugin.gre_plan_check(hostvars, groups, links=[["hosta", "hostz"]])
    assert caught.value.message == (
        "gre_mesh_links[0]: 'hostz' is neither a host of the inventory nor the name of one of gre_mesh_external_peers"
    )
    with pytest.raises(AnsibleFilterError) as caught:
        plugin.gre_plan(hostvars, groups, "hosta", links=LINKS)
    assert caught.value.message == (
        "gre_plan: check must be the result of linuxnet.gre.gre_plan_check over the whole inventory, run once "
        "before it with the same settings"
    )


@pytest.mark.parametrize(
    ("hostvars", "groups", "message"),
    [
        ([], {}, "linuxnet.gre.gre_plan: the input must be hostvars, not list"),
        ({}, "all", "linuxnet.gre.gre_plan: groups must be the inventory's groups, not str"),
    ],
)
def test_wrong_input(hostvars: t.Any, groups: t.Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as caught:
        plugin.gre_plan(hostvars, groups, "hosta")
    assert caught.value.message == message
    with pytest.raises(AnsibleFilterError) as caught:
        check_plugin.gre_plan_check(hostvars, groups)
    assert caught.value.message == message.replace("gre_plan:", "gre_plan_check:")


def test_filters_are_registered() -> None:
    assert plugin.FilterModule().filters() == {"gre_plan": plugin.gre_plan}
    assert check_plugin.FilterModule().filters() == {"gre_plan_check": check_plugin.gre_plan_check}


class CollectionFragments:
    """Ansible's doc fragment loader for this collection's fragments, imported as the filters are here."""

    def get(self, name: str) -> t.Any:
        collection, _dot, fragment = name.rpartition(".")
        if collection != "linuxnet.gre":
            return None
        try:
            module = importlib.import_module(f"ansible_collections.linuxnet.gre.plugins.doc_fragments.{fragment}")
        except ImportError:
            return None
        found = module.ModuleDocFragment()
        found.ansible_name = name
        return found


def merged_documentation(module: t.Any) -> dict[str, t.Any]:
    """A filter's DOCUMENTATION with its doc fragments merged, by ansible-doc's own code."""
    documentation = yaml.safe_load(module.DOCUMENTATION)
    add_fragments(documentation, module.__file__, fragment_loader=CollectionFragments())
    return documentation


@pytest.mark.parametrize(
    ("module", "function", "positional", "returned"),
    [
        (
            plugin,
            plugin.gre_plan,
            "_input, groups, host",
            {"tunnels", "peers", "forward", "encap_peers", "modes", "in_udp", "gre_peers", "routed", "routed_networks"},
        ),
        (
            check_plugin,
            check_plugin.gre_plan_check,
            "_input, groups",
            {"digest", "summary", "hosts", "external_peers", "nodes", "keys", "routing"},
        ),
    ],
)
def test_documentation_covers_every_option(
    module: t.Any, function: t.Callable[..., t.Any], positional: str, returned: set[str]
) -> None:
    documentation = merged_documentation(module)
    parameters = inspect.signature(function).parameters
    own = [name for name, parameter in parameters.items() if parameter.kind is not inspect.Parameter.VAR_KEYWORD]
    # The topology settings come as keywords, checked against the planner's one table of them.
    assert list(parameters.values())[-1].kind is inspect.Parameter.VAR_KEYWORD
    assert sorted(documentation["options"]) == sorted(["_input", *own[1:], *DEFAULTS])
    assert documentation["positional"] == positional
    defaults = {**DEFAULTS, **{name: parameter.default for name, parameter in parameters.items()}}
    for name, option in documentation["options"].items():
        default = defaults.get(name)
        if default not in (inspect.Parameter.empty, None):
            assert option.get("default") == default, name
    assert yaml.safe_load(module.EXAMPLES)
    assert yaml.safe_load(module.RETURN)["_value"]["contains"].keys() == returned


def test_both_filters_document_the_settings_alike() -> None:
    plan_options = merged_documentation(plugin)["options"]
    check_options = merged_documentation(check_plugin)["options"]
    for name in DEFAULTS:
        assert {**plan_options[name], "description": None} == {**check_options[name], "description": None}, name
    # They come from one doc fragment; neither filter documents a setting of its own.
    for module in (plugin, check_plugin):
        assert not set(DEFAULTS) & set(yaml.safe_load(module.DOCUMENTATION)["options"]), module.__name__


@pytest.mark.parametrize(("function", "args"), [(plugin.gre_plan, ("hosta",)), (check_plugin.gre_plan_check, ())])
def test_a_misspelt_setting_is_named(function: t.Callable[..., t.Any], args: tuple[t.Any, ...]) -> None:
    with pytest.raises(
        AnsibleFilterError, match=r"'ful_mesh' is no option of the filter \(did you mean 'full_mesh'\?\)"
    ):
        function({"hosta": {}}, {"all": ["hosta"]}, *args, ful_mesh=["all"])


PLAYBOOK = [
    {
        "hosts": "gre_hosts",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Check the whole inventory once",
                "ansible.builtin.set_fact": {
                    "check": "{{ hostvars | linuxnet.gre.gre_plan_check(groups, hosts=ansible_play_batch, "
                    "full_mesh=['gre_hosts']) }}"
                },
                "run_once": True,
            },
            {
                "name": "Plan each host",
                "ansible.builtin.set_fact": {
                    "plan": "{{ hostvars | linuxnet.gre.gre_plan(groups, inventory_hostname, check=check, "
                    "full_mesh=['gre_hosts']) }}"
                },
            },
            {
                "name": "Write down each host's tunnels, from both",
                "ansible.builtin.copy": {
                    "content": "{{ [check.hosts[inventory_hostname].tunnels, plan.tunnels] | to_json }}",
                    "dest": "{{ playbook_dir }}/{{ inventory_hostname }}.json",
                    "mode": "0644",
                },
            },
        ],
    }
]


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="needs ansible-playbook")
def test_run_once_with_limit_gives_the_limited_hosts_every_tunnel(tmp_path: pathlib.Path) -> None:
    """With --limit hosta,hostb, both still get their tunnel to hostc, whose facts nobody gathered."""
    inventory = json.loads(json.dumps(INVENTORY))
    inventory["all"]["vars"] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))
    # The directory that holds ansible_collections/linuxnet/gre, as this test imported it.
    collections = pathlib.Path(plugin.__file__).parents[5]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")
    env.update(ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_HOME=str(tmp_path / "home"))
    command = ["ansible-playbook", "-i", "inventory.yml", "play.yml", "--limit", "hosta,hostb"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    both = {path.stem: json.loads(path.read_text()) for path in tmp_path.glob("host*.json")}
    assert all(from_check == from_plan for from_check, from_plan in both.values())
    shown = {name: from_check for name, (from_check, _from_plan) in both.items()}
    assert {name: [tunnel["name"] for tunnel in tunnels] for name, tunnels in shown.items()} == {
        "hosta": ["gre-hostb", "gre-hostc"],
        "hostb": ["gre-hosta", "gre-hostc"],
    }
    assert shown["hostb"][1]["addresses"] == ["10.0.0.9/30"]  # link number 2, hostb has the lower id
