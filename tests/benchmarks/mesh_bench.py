# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of playbooks/site.yml against a straightforward role, on a full mesh of lab guests.

Prints first the planner figures (tests/benchmarks/planner_bench.py: a 1000-host hub-and-spoke and
a 150-host full mesh on the controller, target under 1 s each), then, side by side on the same lab
(tests/lab/topologies/mesh.yml), for full meshes of node1..nodeN (N = 3 and 5):

  site       ansible-playbook playbooks/site.yml (the role linuxnet.gre.gre_mesh), as it comes;
  site-core  the same with gre_mesh_persist=none and gre_mesh_firewall=false: what the baseline does,
             no more (no boot persistence, firewall left alone);
  baseline   ansible-playbook tests/benchmarks/baseline/playbook.yml: peers and addresses with plain
             Jinja, one `ip` command per tunnel and step, one ping per peer (roles/gre_baseline).

each as a first run (just before, every GRE interface of the guests is deleted, and what gre_mesh
persists or adds to a firewall removed) and a re-run (nothing to change), with: wall time of
ansible-playbook, the 1-minute load average at its start, tasks executed per host (ok + changed +
failed, as PLAY RECAP counts them: a loop is one task) and skipped, module runs per host (a loop
counts each item it ran; controller-only actions such as set_fact and assert left out), changed
tasks per host, and the wall time over the baseline's. All plays have gather_facts: false and
become; all gather the network facts subset in a task, for the local underlay address (site.yml
only on hosts without gre_mesh_local, unset here). Every run is limited to the mesh's hosts
(--limit), so the lab's router and the hosts outside the mesh are not visited. A run fails the
benchmark unless all its pings answered (site: gre_ping reports every peer up on every host;
baseline: every ping item).

Then, per implementation, the time of each task (from its start to the next task's) at the largest
N (--profile: at every N).
Counts come from a callback of this benchmark (baseline/callback_plugins/bench_tally.py).

Targets (from the issue): site's tasks per host the same at every N; site's time at most 0.4x the
baseline's at 5 hosts, the ratio falling as the mesh grows.

  python tests/benchmarks/mesh_bench.py [--lab-dir DIR] [--sizes 3,5] [--repeat 1] [--skip-planner]
                                        [--implementations site,site-core] [--profile]

Without --lab-dir it boots its own lab and stops it at the end; with --lab-dir it uses the lab
running there (booting it there if none is, and leaving it up). Before each timed pair of runs it
waits (up to --load-wait seconds) for the 1-minute load average to fall to --max-load: the lab's
guests are sensitive to a busy CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "tests" / "benchmarks"
LAB = REPO / "tests" / "lab" / "lab"
TOPOLOGY = REPO / "tests" / "lab" / "topologies" / "mesh.yml"
GROUP = "gre_bench"
RUNS = ("first", "rerun")
RATIO_TARGET = 0.4
# Actions that run on the controller only: no module runs on the host.
CONTROLLER_ACTIONS = {
    "set_fact",
    "assert",
    "debug",
    "fail",
    "meta",
    "validate_argument_spec",
    "include_tasks",
    "include_role",
    "import_tasks",
    "import_role",
    "include_vars",
}
# On every lab guest: every GRE interface but the kernel's fallback gre0, and what gre_mesh persists
# (its boot unit and files, its networkd files) or adds to a firewall, so that a first run starts
# from a host that never saw either implementation.
CLEAN = """
for i in $(ip -o link show type gre | cut -d' ' -f2 | cut -d@ -f1); do [ "$i" = gre0 ] || ip link del "$i"; done
systemctl disable --quiet linuxnet-gre.service 2>/dev/null
rm -rf /etc/linuxnet-gre /etc/systemd/system/linuxnet-gre.service /etc/systemd/network/60-linuxnet-gre*
systemctl daemon-reload
nft delete table inet linuxnet_gre 2>/dev/null
while iptables -D INPUT -j LINUXNET-GRE 2>/dev/null; do :; done
iptables -F LINUXNET-GRE 2>/dev/null && iptables -X LINUXNET-GRE
udevadm settle
! ip -o link show type gre | grep -v ': gre0@'
"""
# name: (playbook, the variable of the underlay address peers send to, extra options)
IMPLEMENTATIONS = {
    "site": (REPO / "playbooks" / "site.yml", "gre_mesh_public", []),
    # What the baseline does too, no more: no boot persistence, firewall left alone.
    "site-core": (
        REPO / "playbooks" / "site.yml",
        "gre_mesh_public",
        ["-e", "gre_mesh_persist=none", "-e", "gre_mesh_firewall=false"],
    ),
    "baseline": (BENCH / "baseline" / "playbook.yml", "gre_baseline_public", []),
}


class Lab:
    def __init__(self, lab_dir: Path, work: Path) -> None:
        self.lab_dir = lab_dir
        self.work = work
        self.inventory = lab_dir / "inventory.yml"
        collections = work / "home" / "collections"
        (collections / "ansible_collections" / "linuxnet").mkdir(parents=True)
        (collections / "ansible_collections" / "linuxnet" / "gre").symlink_to(REPO)
        self.tally = work / "tally.json"
        self.env = dict(
            os.environ,
            ANSIBLE_HOME=str(work / "home"),
            ANSIBLE_COLLECTIONS_PATH=str(collections),
            ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
            ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "baseline" / "callback_plugins"),
            ANSIBLE_CALLBACKS_ENABLED="bench_tally",
            ANSIBLE_NOCOLOR="1",
            BENCH_TALLY=str(self.tally),
        )

    @classmethod
    @contextlib.contextmanager
    def running(cls, lab_dir: Path | None, topology: Path, name: str) -> Iterator[t.Self]:
        """This lab in ``lab_dir`` (booted there when it is down, and kept), or in a directory of its own, booted
        and stopped after; ``name`` (the benchmark's) names its temporary directories and its error."""
        work = Path(tempfile.mkdtemp(prefix=f"gre-{name}-"))
        own = lab_dir is None
        lab = cls(Path(tempfile.mkdtemp(prefix=f"gre-{name}-lab-")) if own else lab_dir.resolve(), work)
        booted = False
        if own or lab.lab("status").returncode != 0:
            if lab.lab("up", str(topology)).returncode != 0:
                sys.exit(f"{name}: the lab did not come up")
            booted = True
        try:
            yield lab
        finally:
            if own and booted:
                lab.lab("down")

    def lab(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LAB), "--lab-dir", str(self.lab_dir), *args], text=True, check=False)

    def clean(self) -> None:
        """Delete every GRE interface of the guests (also warms Ansible's ssh masters)."""
        command = ["ansible", "-i", str(self.inventory), "lab_guests", "-m", "ansible.builtin.shell", "-a", CLEAN]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"mesh_bench: cleaning the guests failed:\n{done.stdout}\n{done.stderr}")

    def play(self, implementation: str, inventory: Path) -> tuple[float, dict]:
        playbook, public, options = IMPLEMENTATIONS[implementation]
        command = ["ansible-playbook", str(playbook), "-i", str(inventory), "-i", str(self.inventory), *options]
        command += ["-e", f"{public}={{{{ lab_public_address | default(lab_address) }}}}"]
        command += ["-e", f"gre_baseline_group={GROUP}", "--limit", GROUP]
        return self.timed(command, f"mesh_bench: {implementation}")

    def timed(self, command: list[str], what: str) -> tuple[float, dict]:
        """One ansible-playbook run: its wall time and the tally its callback wrote; exit naming ``what`` if it
        failed."""
        self.tally.unlink(missing_ok=True)
        started = time.perf_counter()
        done = subprocess.run(command, env=self.env, cwd=REPO, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0 or not self.tally.exists():
            sys.exit(f"{what} failed (exit status {done.returncode}):\n{done.stdout}\n{done.stderr}")
        return elapsed, json.loads(self.tally.read_text())


def load() -> tuple[float, float, float]:
    one, five, fifteen = (float(field) for field in Path("/proc/loadavg").read_text().split()[:3])
    return one, five, fifteen


def wait_for_load(maximum: float, patience: float) -> tuple[float, float, float]:
    deadline = time.monotonic() + patience
    while load()[0] > maximum and time.monotonic() < deadline:
        time.sleep(5)
    return load()


def counts(tally: dict, hosts: list[str]) -> dict[str, dict[str, int]]:
    """Per host: tasks executed and skipped, module runs on the host, changed tasks; unreached hosts are an error."""
    per_host = {host: {"tasks": 0, "skipped": 0, "runs": 0, "changed": 0} for host in hosts}
    for task in tally["tasks"]:
        remote = task["action"].rsplit(".", 1)[-1] not in CONTROLLER_ACTIONS
        for host, record in task["hosts"].items():
            status = record["status"]
            if status in ("failed", "unreachable", None):
                sys.exit(f"mesh_bench: task {task['name']!r}: {host} {status}")
            if status == "skipped":
                per_host[host]["skipped"] += 1
                continue
            per_host[host]["tasks"] += 1
            per_host[host]["changed"] += status == "changed"
            if remote:
                per_host[host]["runs"] += module_runs(record)
    return per_host


def module_runs(record: dict) -> int:
    """The module runs of a task on a host, from its tally record: a loop's items not skipped, else one."""
    if record["items"]:
        return len([item for item in record["items"] if item != "skipped"])
    return 1


def check_pings(implementation: str, tally: dict, hosts: list[str]) -> None:
    """Fail unless every host pinged all its peers through their tunnels."""
    peers = len(hosts) - 1
    for host in hosts:
        if implementation.startswith("site"):
            pinged = [t["hosts"].get(host, {}) for t in tally["tasks"] if t["action"].endswith("gre_ping")]
            good = len(pinged) == 1 and pinged[0].get("status") == "ok"
            good = good and pinged[0].get("up") == peers and pinged[0].get("down") == 0
        else:
            pinged = [t for t in tally["tasks"] if t["name"].endswith("Ping each peer through its tunnel")]
            items = pinged[0]["hosts"].get(host, {}).get("items", []) if len(pinged) == 1 else []
            good = items == ["ok"] * peers
        if not good:
            sys.exit(f"mesh_bench: {implementation}: {host} did not ping all its {peers} peers")


def fact_tasks(tally: dict) -> list[str]:
    return [
        f"{task['name']} (gather_subset {task.get('gather_subset')}, "
        f"on {len([h for h, r in task['hosts'].items() if r['status'] != 'skipped'])} hosts)"
        for task in tally["tasks"]
        if task["action"].rsplit(".", 1)[-1] in ("setup", "gather_facts")
    ]


def spans(tally: dict) -> list[tuple[str, float]]:
    """Each task's time, from its start to the next task's (or the play's end): its results, and the overhead around them."""
    tasks = tally["tasks"]
    ends = [task["start"] for task in tasks[1:]] + [tally["end"]]
    return [(task["name"], end - task["start"]) for task, end in zip(tasks, ends, strict=True)]


def spread(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def planner(arguments: list[str]) -> int:
    command = [sys.executable, str(BENCH / "planner_bench.py"), *arguments]
    print(f"$ {' '.join(['python', 'tests/benchmarks/planner_bench.py', *arguments])}", flush=True)
    return subprocess.run(command, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-dir", type=Path, help="use (or boot and keep) the mesh lab in this directory")
    parser.add_argument("--sizes", default="3,5", help="mesh sizes, hosts node1..nodeN (at most 5)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest counts")
    parser.add_argument("--max-load", type=float, default=0.7, help="wait for this 1-minute load before timing")
    parser.add_argument("--load-wait", type=float, default=600, help="seconds to wait for it at most, each time")
    parser.add_argument("--skip-planner", action="store_true", help="skip the planner figures")
    parser.add_argument("--planner-args", default="--no-playbook", help="options for planner_bench.py")
    parser.add_argument("--profile", action="store_true", help="print each task's time at every N")
    parser.add_argument(
        "--implementations", default=",".join(IMPLEMENTATIONS), help="which to run (baseline always runs)"
    )
    args = parser.parse_args()
    names = [name for name in IMPLEMENTATIONS if name in args.implementations.split(",") or name == "baseline"]
    sizes = [int(size) for size in args.sizes.split(",")]
    if not all(2 <= size <= 5 for size in sizes):
        parser.error("--sizes: each from 2 to 5 (the lab has node1..node5)")

    planner_status = 0 if args.skip_planner else planner(args.planner_args.split())
    print(flush=True)

    with Lab.running(args.lab_dir, TOPOLOGY, "mesh-bench") as lab:
        best = measure(lab, lab.work, sizes, names, args)
    report(best, sizes, names, args.profile)
    return planner_status


def measure(lab: Lab, work: Path, sizes: list[int], names: list[str], args: argparse.Namespace) -> dict:
    best: dict[tuple[int, str, str], dict] = {}
    for size in sizes:
        hosts = [f"node{number}" for number in range(1, size + 1)]
        inventory = work / f"mesh{size}.yml"
        group = {"vars": {"gre_mesh_full_mesh": [GROUP]}, "children": {GROUP: {"hosts": dict.fromkeys(hosts)}}}
        inventory.write_text(yaml.safe_dump({"all": group}))
        for repeat in range(args.repeat):
            # Alternate the order, so that a drift of the machine's load skews all alike.
            for name in names if repeat % 2 == 0 else names[::-1]:
                loadavg = wait_for_load(args.max_load, args.load_wait)
                lab.clean()
                for run in RUNS:
                    started_load = load() if run == "rerun" else loadavg
                    wall, tally = lab.play(name, inventory)
                    check_pings(name, tally, hosts)
                    per_host = counts(tally, hosts)
                    print(f"  N={size} {name:<9} {run:<5} {wall:6.2f} s  load {started_load[0]:.2f}", flush=True)
                    key = (size, name, run)
                    if key not in best or wall < best[key]["wall"]:
                        best[key] = {"wall": wall, "load": started_load, "per_host": per_host, "tally": tally}
    return best


def column(best: dict, key: tuple[int, str, str], field: str) -> str:
    return spread([host[field] for host in best[key]["per_host"].values()])


def report(best: dict, sizes: list[int], names: list[str], profile: bool) -> None:
    print()
    print(
        f"{'N':>2} {'implementation':<14} {'run':<6} {'wall':>8} {'load1':>5} {'tasks/host':>10} {'skipped':>7} "
        f"{'runs/host':>9} {'changed':>7} {'/baseline':>9}"
    )
    for size in sizes:
        for name in names:
            for run in RUNS:
                key = (size, name, run)
                entry = best[key]
                ratio = "" if name == "baseline" else f"{entry['wall'] / best[(size, 'baseline', run)]['wall']:.2f}"
                counted = [column(best, key, field) for field in ("tasks", "skipped", "runs", "changed")]
                print(
                    f"{size:>2} {name:<14} {run:<6} {entry['wall']:>6.2f} s {entry['load'][0]:>5.2f} "
                    f"{counted[0]:>10} {counted[1]:>7} {counted[2]:>9} {counted[3]:>7} {ratio:>9}"
                )
    print("(tasks/host: executed, a loop counting once; runs/host: module runs on the host, a loop counting each item)")

    print()
    for name in names:
        facts = fact_tasks(best[(sizes[-1], name, "first")]["tally"])
        print(f"fact gathering, {name}: {'; '.join(facts) or 'none'}")
    for size in sizes if profile else sizes[-1:]:
        for name in names:
            print(f"\ntask times, {name}, N={size} (first run / re-run):")
            first, rerun = (spans(best[(size, name, run)]["tally"]) for run in RUNS)
            names_first = [task for task, _seconds in first]
            if names_first != [task for task, _seconds in rerun]:
                rerun = [(task, dict(rerun).get(task, 0.0)) for task in names_first]
            for (task, one), (_task, two) in zip(first, rerun, strict=True):
                print(f"  {one:5.2f} s / {two:5.2f} s  {task}")
            for run, tally in zip(RUNS, (first, rerun), strict=True):
                tasks = sum(seconds for _task, seconds in tally)
                wall = best[(size, name, run)]["wall"]
                print(f"  {run}: tasks {tasks:.2f} s of {wall:.2f} s wall (the rest: start-up, parsing, the recap)")

    print()
    for name in (name for name in names if name != "baseline"):
        for run in RUNS:
            per_size = {
                size: (column(best, (size, name, run), "tasks"), column(best, (size, name, run), "runs"))
                for size in sizes
            }
            constant = len(set(per_size.values())) == 1
            shown = ", ".join(f"N={size}: {tasks} tasks, {runs} runs" for size, (tasks, runs) in per_size.items())
            print(
                f"target: {name} {run} run, tasks per host the same at every N: {'met' if constant else 'MISSED'} ({shown})"
            )
        for run in RUNS:
            ratios = [best[(size, name, run)]["wall"] / best[(size, "baseline", run)]["wall"] for size in sizes]
            falling = all(later < earlier for earlier, later in zip(ratios, ratios[1:], strict=False))
            under = 5 in sizes and ratios[sizes.index(5)] <= RATIO_TARGET
            shown = ", ".join(f"N={size}: {ratio:.2f}" for size, ratio in zip(sizes, ratios, strict=True))
            verdict = "met" if under and falling else "MISSED"
            print(
                f"target: {name} {run} run, time <= {RATIO_TARGET}x baseline at N=5, falling with N: {verdict} ({shown})"
            )


if __name__ == "__main__":
    sys.exit(main())
