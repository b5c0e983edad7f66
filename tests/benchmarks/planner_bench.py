# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of the inventory planner (the gre_plan_check and gre_plan filters) on the controller.

Plans a 1000-host hub-and-spoke (one hub, 999 spokes) and a 150-host full mesh, and prints, best
of --repeat runs:

  check      gre_plan_check on Ansible's own hostvars and groups of a generated inventory, as a
             play passes them (reading each host's variables included): checks the whole topology
             and plans every host;
  per host   gre_plan for every host, one after the other (each reads only its own variables),
             after a gre_plan_check with plans=false; and the slowest single host;
  pure       the planner alone (module_utils/_mesh_plan.py plan_mesh) on plain dicts;
  play       ansible-playbook runs (default forks) of the two ways a play can plan, each minus the
             same run with tasks that plan nothing (--no-playbook skips them): "whole"
             (gre_plan_check plans every host, run once; each host takes its entry with plain
             Jinja) and "host" (gre_plan_check checks once, gre_plan plans each host). Most of
             these seconds are Ansible's own: handling a large result, and loading a collection's
             filter anew in every per-host worker.

Target (issue 4): planner time under 1 s for each topology (check, and per host summed). No host
is contacted.

The role's play (issue 19): the role's own validate.yml, plan.yml, apply.yml and firewall.yml, run by
ansible-playbook on every host of each topology, once as they are, once with the plan replaced by one
giving every host no tunnels (the same play without planning: "none"), and once with each host's plan
written out in the inventory as a host variable and collected without planning (the hand-written
alternative: the same tunnels handed to the same tasks: "hand"), at --forks 5 and 50. Modules that would
contact a host are replaced by controller-side no-op actions that take the task's arguments, templated
as for the module; gre_host_facts's by one returning what it finds on a host whose firewall filters
input, so that the firewall task runs everywhere. Printed: medians of --repeat interleaved rounds of
wall and CPU time (ansible-playbook and its workers), and planning's cost (plan minus none, and plan
minus hand: what the planner itself costs beyond handing its tunnels over), next to its target: under 2
s for the 150-host full mesh and 1 s for the 1000-host hub-and-spoke (--topologies picks one; --variants
plan,none leaves out the hand-written plays). --by-task also times each task of the play (tests/benchmarks/
baseline's callback: from its start to the next task's) and prints per task plan minus none, the median over
the rounds of each round's pair, run one after the other: on the hub, a run of some 130 s varies by 5 %
from round to round on a shared machine, six times its 1 s target, while a pair's tasks see the same
machine; tasks that do not read the plan show the noise that is left. Where it
went (cProfile of the controller and the workers, ansible-core 2.19), before the plan was packed:
ansible-core handles every value of a task's result and of a variable a task reads one by one (a lazy
wrapper, a template() call and a finalising copy, some 10 us each). The run_once plan of the mesh has
358 203 values: 5.3 s for its task alone (the worker's finalising, then the controller's callbacks
copying the result), and each task that derived a list from a mesh node's 149 tunnels in Jinja paid 15
ms for that host. Now gre_plan_check packs each host's long lists (tunnels, peers, ipsec) as one JSON
text each (packed=true), and the planner makes the short lists the tasks derived itself (modes, in_udp,
gre_peers, routed, routed_networks): what remains is each task's own arguments, the 149 tunnels
gre_tunnel gets being the largest (about 9 us a value, as for any role handing them over).

Routed sites (issue 16): sites with 4 networks each (gre_mesh_networks), as full meshes of 10, 20
and 30 sites and hub-and-spokes of one hub and 50, 100 and 200 spokes (and 200 spokes with a
summary), planned by gre_plan_check on Ansible's hostvars (every host's tunnels and routes) and by
the planner alone. Every site reaches every other site's networks, so routes grow with the square
of the sites: the time per link or route (us/item) staying flat across sizes shows the planner
linear in links plus routes. Medians of --repeat interleaved runs (each round runs every case once).
Target: under 1 s for each.

  python tests/benchmarks/planner_bench.py [--repeat 3] [--no-playbook] [--routed-only] [--role-play-only]
                                          [--forks 5,50] [--topologies hub,mesh] [--variants plan,none,hand]
                                          [--by-task]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TARGET = 1.0


def collections_dir() -> Path:
    """A directory whose ansible_collections/linuxnet/gre is this checkout; put on sys.path."""
    directory = Path(tempfile.mkdtemp(prefix="gre-planner-bench-"))
    (directory / "ansible_collections" / "linuxnet").mkdir(parents=True)
    (directory / "ansible_collections" / "linuxnet" / "gre").symlink_to(REPO)
    sys.path.insert(0, str(directory))
    return directory


def underlay(number: int) -> str:
    return f"198.18.{number // 250}.{number % 250 + 1}"


def hub_and_spoke() -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """hub (id 0, pinned: `hub` would derive 1) and spoke001..spoke999 (ids 1..999)."""
    hosts: dict[str, dict[str, t.Any]] = {"hub": {"ansible_host": underlay(0), "gre_mesh_id": 0}}
    hosts["hub"]["gre_mesh_local"] = underlay(0)
    for number in range(1, 1000):
        hosts[f"spoke{number:03d}"] = {
            "ansible_host": underlay(number),
            "gre_mesh_local": f"172.16.{number // 250}.{number % 250 + 1}",
        }
    groups = {"hubs": ["hub"], "spokes": [name for name in hosts if name != "hub"]}
    # Ids up to 999 need 499500 /30 subnets: a /11 pool.
    settings = {"hub_spoke": [{"hubs": "hubs", "spokes": "spokes"}], "pool": "10.0.0.0/11"}
    return {"hosts": hosts, "groups": groups}, settings


def full_mesh() -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """node000..node149 (ids 0..149), default pool."""
    hosts = {
        f"node{number:03d}": {"ansible_host": underlay(number), "gre_mesh_local": underlay(number)}
        for number in range(150)
    }
    return {"hosts": hosts, "groups": {"mesh": sorted(hosts)}}, {"full_mesh": ["mesh"]}


def site_networks(number: int) -> list[str]:
    """Site ``number``'s 4 networks: /24s of 10.128.0.0/9, apart from the pool and the underlay."""
    return [f"10.{128 + number // 64}.{(number % 64) * 4 + part}.0/24" for part in range(4)]


def routed_full_mesh(sites: int) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """site000..: a full mesh of ``sites``, each with 4 networks."""
    hosts = {
        f"site{number:03d}": {
            "ansible_host": underlay(number),
            "gre_mesh_local": underlay(number),
            "gre_mesh_networks": site_networks(number),
        }
        for number in range(sites)
    }
    return {"hosts": hosts, "groups": {"mesh": sorted(hosts)}}, {"full_mesh": ["mesh"]}


def routed_hub_and_spoke(spokes: int, summary: bool = False) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """hub (id 0) and spoke001.. (ids 1..), each spoke with 4 networks; with ``summary``, 10.128.0.0/9 for them."""
    hosts: dict[str, dict[str, t.Any]] = {
        "hub": {"ansible_host": underlay(0), "gre_mesh_local": underlay(0), "gre_mesh_id": 0}
    }
    for number in range(1, spokes + 1):
        hosts[f"spoke{number:03d}"] = {
            "ansible_host": underlay(number),
            "gre_mesh_local": underlay(number),
            "gre_mesh_networks": site_networks(number),
        }
    entry: dict[str, t.Any] = {"hubs": "hubs", "spokes": "spokes"}
    if summary:
        entry["summary"] = ["10.128.0.0/9"]
    groups = {"hubs": ["hub"], "spokes": [name for name in hosts if name != "hub"]}
    # Link numbers up to (0, 200): 20100 /30 subnets, a /14 pool.
    return {"hosts": hosts, "groups": groups}, {"hub_spoke": [entry], "pool": "10.0.0.0/14"}


ROUTED = (
    ("full mesh 10", lambda: routed_full_mesh(10)),
    ("full mesh 20", lambda: routed_full_mesh(20)),
    ("full mesh 30", lambda: routed_full_mesh(30)),
    ("hub-and-spoke 1 x 50", lambda: routed_hub_and_spoke(50)),
    ("hub-and-spoke 1 x 100", lambda: routed_hub_and_spoke(100)),
    ("hub-and-spoke 1 x 200", lambda: routed_hub_and_spoke(200)),
    ("1 x 200, summary", lambda: routed_hub_and_spoke(200, summary=True)),
)


def routed(repeat: int) -> float:
    """Print the routed cases' figures (medians of interleaved runs); return the slowest check."""
    import statistics

    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    from ansible_collections.linuxnet.gre.plugins.filter.gre_plan_check import gre_plan_check
    from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import plan_mesh

    cases = []
    work = Path(tempfile.mkdtemp(prefix="gre-planner-bench-"))
    for number, (label, build) in enumerate(ROUTED):
        inventory, settings = build()
        path = work / f"inventory{number}.yml"
        path.write_text(yaml.safe_dump(inventory_yaml(inventory)))
        loader = DataLoader()
        manager = InventoryManager(loader=loader, sources=[str(path)])
        cases.append((label, inventory, settings, loader, manager))
    checks: dict[str, list[float]] = {label: [] for label, *_rest in cases}
    pures: dict[str, list[float]] = {label: [] for label, *_rest in cases}
    counts: dict[str, tuple[int, int, int]] = {}
    for _round in range(repeat):
        for label, inventory, settings, loader, manager in cases:
            groups = manager.get_groups_dict()
            names = list(inventory["hosts"])
            hostvars = HostVars(manager, VariableManager(loader=loader, inventory=manager), loader)
            gc.collect()
            started = time.perf_counter()
            result = gre_plan_check(hostvars, groups, hosts=names, **settings)
            checks[label].append(time.perf_counter() - started)
            plain_groups = {"all": names, **inventory["groups"]}
            gc.collect()
            started = time.perf_counter()
            plan_mesh(inventory["hosts"], plain_groups, **settings)
            pures[label].append(time.perf_counter() - started)
            tunnels = [tunnel for entry in result["hosts"].values() for tunnel in entry["tunnels"]]
            networks = sum(len(variables.get("gre_mesh_networks", [])) for variables in inventory["hosts"].values())
            counts[label] = (len(tunnels) // 2, networks, sum(len(tunnel["routes"]) for tunnel in tunnels))
    print(f"routed sites, 4 networks each: medians of {repeat} interleaved runs")
    print(
        f"{'topology':<22} {'hosts':>5} {'links':>6} {'networks':>8} {'routes':>7} {'check':>8} {'pure':>8} "
        f"{'us/item':>8}"
    )
    worst = 0.0
    for label, inventory, *_rest in cases:
        links, networks, routes = counts[label]
        check, pure = statistics.median(checks[label]), statistics.median(pures[label])
        worst = max(worst, check)
        per_item = check / (links + routes) * 1e6
        print(
            f"{label:<22} {len(inventory['hosts']):>5} {links:>6} {networks:>8} {routes:>7} {check:>6.3f} s "
            f"{pure:>6.3f} s {per_item:>8.1f}"
        )
    return worst


def best_of(repeat: int, run: t.Callable[[], t.Any]) -> float:
    times = []
    for _run in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def pure_planner(inventory: dict[str, t.Any], settings: dict[str, t.Any], repeat: int) -> float:
    from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import plan_mesh

    hostvars = inventory["hosts"]
    groups = {"all": list(hostvars), **inventory["groups"]}
    return best_of(repeat, lambda: plan_mesh(hostvars, groups, **settings))


def inventory_yaml(inventory: dict[str, t.Any]) -> dict[str, t.Any]:
    children = {group: {"hosts": {name: None for name in members}} for group, members in inventory["groups"].items()}
    return {"all": {"hosts": inventory["hosts"], "children": children}}


def ansible_inventory(inventory: dict[str, t.Any], path: Path) -> tuple[t.Callable[[], t.Any], dict[str, list[str]]]:
    """The inventory written to ``path`` and read by Ansible: a maker of fresh HostVars (a new variable manager
    each, so no host's variables are cached from a call before) and the groups."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    path.write_text(yaml.safe_dump(inventory_yaml(inventory)))
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    return lambda: HostVars(
        manager, VariableManager(loader=loader, inventory=manager), loader
    ), manager.get_groups_dict()


def ansible_filters(
    inventory: dict[str, t.Any], settings: dict[str, t.Any], repeat: int, work: Path
) -> tuple[float, float, float, int]:
    """(check, every host with gre_plan, slowest host, tunnels) on Ansible's HostVars, best of ``repeat``.

    Each run starts from a fresh variable manager, so no host's variables are cached from a run before.
    """
    from ansible_collections.linuxnet.gre.plugins.filter.gre_plan import gre_plan
    from ansible_collections.linuxnet.gre.plugins.filter.gre_plan_check import gre_plan_check

    fresh, groups = ansible_inventory(inventory, work / "inventory.yml")
    names = list(inventory["hosts"])

    checks, per_hosts, slowests = [], [], []
    tunnels = 0
    for _run in range(repeat):
        hostvars = fresh()
        gc.collect()
        started = time.perf_counter()
        whole = gre_plan_check(hostvars, groups, hosts=names, **settings)
        checks.append(time.perf_counter() - started)
        tunnels = sum(len(entry["tunnels"]) for entry in whole["hosts"].values())
        hostvars = fresh()
        check = gre_plan_check(hostvars, groups, hosts=names, plans=False, **settings)
        hostvars = fresh()
        gc.collect()
        slowest = 0.0
        started = time.perf_counter()
        for name in names:
            one = time.perf_counter()
            gre_plan(hostvars, groups, name, check=check, **settings)
            slowest = max(slowest, time.perf_counter() - one)
        per_hosts.append(time.perf_counter() - started)
        slowests.append(slowest)
    return min(checks), min(per_hosts), min(slowests), tunnels


def playbook(
    inventory: dict[str, t.Any], settings: dict[str, t.Any], repeat: int, work: Path, collections: Path
) -> tuple[float, float]:
    """Wall time of the two ways a play can plan, each minus the same play planning nothing.

    whole:    gre_plan_check (run_once) plans every host; each host takes its entry with plain Jinja.
    per host: gre_plan_check (run_once, plans=false) checks; each host runs gre_plan.
    """
    path = work / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory_yaml(inventory)))
    arguments = ", ".join(f"{name}={value!r}" for name, value in settings.items())
    check = f"{{{{ hostvars | linuxnet.gre.gre_plan_check(groups, hosts=ansible_play_batch, @PLANS@{arguments}) }}}}"
    plan = f"{{{{ hostvars | linuxnet.gre.gre_plan(groups, inventory_hostname, check=check, {arguments}) }}}}"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")
    env.update(ANSIBLE_HOME=str(work / "home"), ANSIBLE_LOCAL_TEMP=str(work / "tmp"))

    def run(check_value: str, plan_value: str) -> float:
        tasks = [
            {"name": "Check", "ansible.builtin.set_fact": {"check": check_value}, "run_once": True},
            {"name": "Plan", "ansible.builtin.set_fact": {"plan": plan_value}},
        ]
        (work / "play.yml").write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
        command = ["ansible-playbook", "-i", str(path), str(work / "play.yml")]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"ansible-playbook failed:\n{done.stdout}\n{done.stderr}")
        return elapsed

    # Interleaved, so that a machine busy with something else for a while skews all three alike.
    runs: dict[str, list[float]] = {"baseline": [], "whole": [], "per host": []}
    for _run in range(repeat):
        runs["baseline"].append(run("{{ groups | length }}", "{{ inventory_hostname }}"))
        runs["whole"].append(run(check.replace("@PLANS@", ""), "{{ check.hosts[inventory_hostname].tunnels }}"))
        runs["per host"].append(run(check.replace("@PLANS@", "plans=false, "), plan))
    baseline, whole, per_host = (min(runs[name]) for name in ("baseline", "whole", "per host"))
    return whole - baseline, per_host - baseline


# The role's tasks that read the plan, as a play runs them (issue 19): the role copied, its tasks/main.yml cut to
# these files, every module that would contact a host replaced by a controller-side no-op action that takes the
# task's arguments (templated exactly as for the module). validate.yml and plan.yml are the role's own.
ROLE_PLAY_FILES = ("validate.yml", "plan.yml", "apply.yml", "firewall.yml")
# Controller-side actions, kept as they are.
ROLE_PLAY_KEPT = {
    f"ansible.builtin.{name}"
    for name in ("set_fact", "assert", "debug", "import_tasks", "include_tasks", "fail", "meta")
}
TASK_KEYWORDS = {
    "name", "vars", "when", "register", "run_once", "any_errors_fatal", "loop", "loop_control", "tags", "no_log",
    "diff", "changed_when", "failed_when", "become", "check_mode", "delegate_to", "delegate_facts", "until",
    "retries", "delay", "async", "poll", "notify", "block", "rescue", "always", "ignore_errors", "throttle",
}  # fmt: skip
# What gre_host_facts would find on a host with systemd and an nftables firewall filtering input (so that the
# firewall task runs on every host).
HOST_FACTS = {
    "systemd": True, "networkd_active": False, "networkd_enabled": False, "udevd_active": True, "dbus": True,
    "systemd_version": 252, "tools": {"ip": None, "modprobe": {}},
    "persist": {"auto": "unit", "problems": {"unit": None, "networkd": "not active"}},
    "firewall": {"filtered_by": ["nftables: input"], "managed": True, "backends": ["nftables"], "nftables": "works"},
}  # fmt: skip
NO_OP_ACTION = """from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        return {"changed": False%s}
"""
# Each host of the play with no tunnels and no peers, packed as plan.yml has it: what a play that plans nothing
# gives the same tasks (%s: the planner's plan of a host without links, packed, as a Jinja dict).
NO_PLAN = "{{ {'external_peers': {}, 'hosts': dict(ansible_play_batch | product([%s]))} }}"
# The hand-written alternative: each host's plan written out in the inventory by hand (host variable
# __gre_bench_plan: the planner's packed entry for it), collected by the same run_once task without planning.
HAND_PLAN = (
    "{{ {'external_peers': {}, 'hosts': dict(ansible_play_batch"
    " | zip(ansible_play_batch | map('extract', hostvars, '__gre_bench_plan')))} }}"
)
ROLE_PLAY_TARGETS = {"hub-and-spoke 1 x 999": 1.0, "full mesh 150": 2.0}
# The plays of each round: the role as it is, without tunnels, and with the plans written by hand.
VARIANTS = ("plan", "none", "hand")
# --topologies: name -> (label, inventory builder).
ROLE_PLAY_TOPOLOGIES = {"hub": ("hub-and-spoke 1 x 999", hub_and_spoke), "mesh": ("full mesh 150", full_mesh)}


def no_op_tasks(tasks: list[dict[str, t.Any]], variant: str) -> None:
    """Replace, in place, each module that would contact a host by a no-op action; and the planning task, for the
    variant "none" by a plan without tunnels, for "hand" by the plans written in the inventory."""
    for task in tasks:
        for key in ("block", "rescue", "always"):
            no_op_tasks(task.get(key, []), variant)
        for key in [key for key in task if key not in TASK_KEYWORDS and key not in ROLE_PLAY_KEPT]:
            arguments = task.pop(key)
            task["gre_bench_host_facts" if key == "linuxnet.gre.gre_host_facts" else "gre_bench_no_op"] = arguments
        if variant != "plan" and "__gre_mesh_plan" in (task.get("ansible.builtin.set_fact") or {}):
            from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import pack
            from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import empty_plan

            replaced = NO_PLAN % json.dumps(pack(empty_plan())) if variant == "none" else HAND_PLAN
            task["ansible.builtin.set_fact"]["__gre_mesh_plan"] = replaced


def hand_plans(inventory: dict[str, t.Any], settings: dict[str, t.Any], work: Path) -> dict[str, t.Any]:
    """Each host's packed plan, as the role's planning task makes it: what a user would write out by hand."""
    from ansible_collections.linuxnet.gre.plugins.filter.gre_plan_check import gre_plan_check

    fresh, groups = ansible_inventory(inventory, work / "hand-source.yml")
    return gre_plan_check(fresh(), groups, hosts=list(inventory["hosts"]), packed=True, **settings)["hosts"]


def role_play(directory: Path, variant: str) -> Path:
    """A playbook running the role's tasks of ROLE_PLAY_FILES on every host, contacting none; return its path."""
    import shutil

    role = directory / "roles" / "gre_mesh"
    shutil.copytree(REPO / "roles" / "gre_mesh", role)
    # The argument check of the role's entry point runs alike with and without a plan: left out, to keep runs short.
    (role / "meta" / "argument_specs.yml").unlink()
    for path in (role / "tasks").glob("*.yml"):
        tasks = yaml.safe_load(path.read_text()) or []
        no_op_tasks(tasks, variant)
        path.write_text(yaml.safe_dump(tasks, sort_keys=False, width=1000))
    main = [{"name": name, "ansible.builtin.import_tasks": name} for name in ROLE_PLAY_FILES]
    (role / "tasks" / "main.yml").write_text(yaml.safe_dump(main, sort_keys=False))
    actions = directory / "action_plugins"
    actions.mkdir()
    (actions / "gre_bench_no_op.py").write_text(NO_OP_ACTION % "")
    facts = f', "ansible_facts": {{"linuxnet_gre": {HOST_FACTS!r}}}'
    (actions / "gre_bench_host_facts.py").write_text(NO_OP_ACTION % facts)
    play = [{"hosts": "all", "gather_facts": False, "connection": "local", "roles": ["gre_mesh"]}]
    (directory / "play.yml").write_text(yaml.safe_dump(play))
    return directory / "play.yml"


def role_plays(
    repeat: int,
    forks: list[int],
    collections: Path,
    topologies: str = "hub,mesh",
    variants: t.Sequence[str] = VARIANTS,
    by_task: bool = False,
) -> bool:
    """Print the role's play with and without planning for both topologies at each fork count; True if within targets.

    Rounds interleave every case (topology, forks, with and without a plan), so that a machine busy with something
    else for a while skews them alike; each figure is the median of ``repeat`` rounds, wall and CPU (ansible-playbook
    and its workers). ``variants``: of VARIANTS, "plan" and "none" always. ``by_task``: also each task's time (from
    its start to the next task's, by tests/benchmarks/baseline's callback), and per task the median over the rounds
    of plan minus none, each round's pair run one after the other.
    """
    import resource
    import statistics

    work = Path(tempfile.mkdtemp(prefix="gre-planner-bench-"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1")
    env.update(ANSIBLE_HOME=str(work / "home"), ANSIBLE_LOCAL_TEMP=str(work / "tmp"))
    tally = work / "tally.json"
    if by_task:
        env.update(ANSIBLE_CALLBACK_PLUGINS=str(REPO / "tests" / "benchmarks" / "baseline" / "callback_plugins"))
        env.update(ANSIBLE_CALLBACKS_ENABLED="bench_tally", BENCH_TALLY=str(tally))
    plays = {variant: role_play(work / variant, variant) for variant in VARIANTS if variant in variants}
    inventories: dict[str, dict[str, Path]] = {}
    for number, topology in enumerate(topologies.split(",")):
        label, build = ROLE_PLAY_TOPOLOGIES[topology]
        inventory, settings = build()
        document = inventory_yaml(inventory)
        document["all"]["vars"] = {f"gre_mesh_{name}": value for name, value in settings.items()}
        path = work / f"inventory{number}.yml"
        path.write_text(yaml.safe_dump(document))
        inventories[label] = {"plan": path, "none": path}
        if "hand" not in plays:
            continue
        for name, entry in hand_plans(inventory, settings, work).items():
            document["all"]["hosts"][name] = dict(document["all"]["hosts"][name] or {}, __gre_bench_plan=entry)
        inventories[label]["hand"] = work / f"inventory{number}-hand.yml"
        inventories[label]["hand"].write_text(yaml.safe_dump(document))

    def run(inventory: Path, play: Path, fork_count: int) -> tuple[float, float, dict[str, float]]:
        command = ["ansible-playbook", "-i", str(inventory), "-f", str(fork_count), str(play)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=play.parent)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"ansible-playbook failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        tasks: dict[str, float] = {}
        if by_task:
            from mesh_bench import spans  # noqa: PLC0415 (beside this file)

            for name, seconds in spans(json.loads(tally.read_text())):
                tasks[name] = tasks.get(name, 0.0) + seconds
        return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, tasks

    figures: dict[tuple[str, int, str], list[tuple[float, float, dict[str, float]]]] = {}
    for _round in range(repeat):
        for label, inventory in inventories.items():
            for fork_count in forks:
                for variant, play in plays.items():
                    figures.setdefault((label, fork_count, variant), []).append(
                        run(inventory[variant], play, fork_count)
                    )
    print(
        f"the role's play ({', '.join(ROLE_PLAY_FILES)}; modules replaced by no-ops): planning against no tunnels at "
        f"all (none){' and against the same plans written in the inventory by hand (hand)' * ('hand' in plays)}; "
        f"medians of {repeat} "
        f"interleaved rounds, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'topology':<22} {'forks':>5} {'none wall':>10} {'hand wall':>10} {'plan wall':>10} {'plan-none':>10} "
        f"{'target':>7} {'plan-hand':>10} {'none cpu':>9} {'hand cpu':>9} {'plan cpu':>9}"
    )
    within = True
    for label in inventories:
        for fork_count in forks:
            walls = {v: statistics.median(w for w, _c, _t in figures[(label, fork_count, v)]) for v in plays}
            cpus = {v: statistics.median(c for _w, c, _t in figures[(label, fork_count, v)]) for v in plays}
            cost, target = walls["plan"] - walls["none"], ROLE_PLAY_TARGETS[label]
            within = within and cost < target
            hand = (
                (f"{walls['hand']:>8.2f} s", f"{walls['plan'] - walls['hand']:>+8.2f} s", f"{cpus['hand']:>7.2f} s")
                if "hand" in plays
                else (f"{'-':>10}",) * 2 + (f"{'-':>9}",)
            )
            print(
                f"{label:<22} {fork_count:>5} {walls['none']:>8.2f} s {hand[0]} {walls['plan']:>8.2f} s "
                f"{cost:>+8.2f} s {'< ' if cost < target else 'OVER '}{target:.0f} s "
                f"{hand[1]} {cpus['none']:>7.2f} s {hand[2]} {cpus['plan']:>7.2f} s"
            )
    if by_task:
        by_task_report(figures, list(inventories), forks)
    return within


def by_task_report(
    figures: dict[tuple[str, int, str], list[tuple[float, float, dict[str, float]]]],
    labels: list[str],
    forks: list[int],
) -> None:
    """Per topology and forks, each task's median time without a plan and the median over the rounds of plan minus
    none (the two runs of a round one after the other); tasks under 0.05 s either way summed on one line."""
    import statistics

    for label in labels:
        for fork_count in forks:
            nones, plans = ([tasks for _w, _c, tasks in figures[(label, fork_count, v)]] for v in ("none", "plan"))
            print(
                f"\n{label}, forks {fork_count}: each task, none (median) and plan - none (median of the rounds' pairs)"
            )
            small = [0.0, 0.0, 0]
            total = 0.0
            for name in nones[0]:
                none = statistics.median(tasks.get(name, 0.0) for tasks in nones)
                cost = statistics.median(p.get(name, 0.0) - n.get(name, 0.0) for n, p in zip(nones, plans, strict=True))
                total += cost
                if abs(cost) < 0.05 and none < 0.05:
                    small = [small[0] + none, small[1] + cost, small[2] + 1]
                    continue
                print(f"  {none:8.2f} s {cost:+8.2f} s  {name}")
            print(f"  {small[0]:8.2f} s {small[1]:+8.2f} s  ({small[2]} tasks under 0.05 s)")
            print(f"  sum of the tasks' medians of plan - none: {total:+.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best one counts")
    parser.add_argument("--no-playbook", action="store_true", help="skip the ansible-playbook measurement")
    parser.add_argument("--routed-only", action="store_true", help="only the routed sites (issue 16)")
    parser.add_argument("--role-play-only", action="store_true", help="only the role's play with and without planning")
    parser.add_argument("--forks", default="5,50", help="fork counts of the role's play (default 5,50)")
    parser.add_argument(
        "--topologies", default="hub,mesh", help="the role's play on these, of hub and mesh (default hub,mesh)"
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"the role's play variants, plan and none always ({', '.join(VARIANTS)})",
    )
    parser.add_argument("--by-task", action="store_true", help="the role's play: also plan - none per task")
    args = parser.parse_args()
    collections = collections_dir()
    import ansible.release

    print(
        f"planner benchmark: Python {sys.version.split()[0]}, ansible-core {ansible.release.__version__}, "
        f"{args.repeat} runs"
    )
    if args.routed_only:
        worst = routed(args.repeat)
        verdict = "under" if worst < TARGET else "OVER"
        print(f"slowest routed check: {worst:.3f} s, {verdict} the {TARGET:.0f} s target")
        return 0 if worst < TARGET else 1
    forks = [int(number) for number in args.forks.split(",")]
    variants = sorted({"plan", "none", *args.variants.split(",")}, key=VARIANTS.index)
    if args.role_play_only:
        return 0 if role_plays(args.repeat, forks, collections, args.topologies, variants, args.by_task) else 1
    print(
        f"{'topology':<22} {'hosts':>5} {'links':>6} {'check':>8} {'per host':>9} {'slowest':>8} {'pure':>8} "
        f"{'play:whole':>10} {'play:host':>10}"
    )
    worst = 0.0
    for label, build in (("hub-and-spoke 1 x 999", hub_and_spoke), ("full mesh 150", full_mesh)):
        inventory, settings = build()
        pure = pure_planner(inventory, settings, args.repeat)
        with tempfile.TemporaryDirectory(prefix="gre-planner-bench-") as directory:
            work = Path(directory)
            check, per_host, slowest, tunnels = ansible_filters(inventory, settings, args.repeat, work)
            played = None if args.no_playbook else playbook(inventory, settings, args.repeat, work, collections)
        worst = max(worst, check, per_host)
        shown = ["-", "-"] if played is None else [f"{seconds:.2f} s" for seconds in played]
        print(
            f"{label:<22} {len(inventory['hosts']):>5} {tunnels // 2:>6} {check:>6.3f} s {per_host:>7.3f} s "
            f"{slowest:>6.3f} s {pure:>6.3f} s {shown[0]:>10} {shown[1]:>10}"
        )
    worst = max(worst, routed(args.repeat))
    verdict = "under" if worst < TARGET else "OVER"
    print(f"slowest planner time: {worst:.3f} s, {verdict} the {TARGET:.0f} s target")
    within = args.no_playbook or role_plays(args.repeat, forks, collections, args.topologies, variants, args.by_task)
    return 0 if worst < TARGET and within else 1


if __name__ == "__main__":
    sys.exit(main())
