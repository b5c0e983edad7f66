# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-host cost of playbooks/site.yml on a growing hub and spoke of lab guests.

On the lab of tests/lab/topologies/fleet.yml (a hub and spoke01..spoke12, 176 MiB each, the hub and
the spokes on two segments joined by a router), for each N of --sizes (3, 6, 9, 12): a hub and
spoke of the hub and the first N spokes (gre_mesh_hub_spoke: [{hubs: hubs, spokes: spokesN}], the
groups of the topology; every run is limited to those N + 1 hosts), built by
ansible-playbook playbooks/site.yml as it comes:

  first      just before, every GRE interface of the lab's guests is deleted, and what gre_mesh
             persists or adds to a firewall removed (mesh_bench.py's CLEAN): the run builds it all;
  unchanged  the same playbook again at once: nothing to change (a changed task fails the benchmark);

each at Ansible's default forks (5) and at forks = N + 1 (every host of the run at once). The
variants are interleaved: each round (--repeat) visits every N and both forks settings, in
alternating order, and the table gives medians over the rounds. A run fails the benchmark unless
gre_ping reports the hub's N links and each spoke's one link up.

Printed: per N and forks, the median wall time of the first and the unchanged run, their ratio, the
median 1-minute load average at the start of those runs, and the collection's tasks per host
(executed, as PLAY RECAP counts them: ok + changed, a loop counting once; for the hub and for the
spokes apart) and module runs per host (a loop counting each item; controller-only actions left
out); then, for each series (forks, run), the seconds per added host: the slope of a least squares
line through the medians over N. --profile adds each task's time (from its start to the next
task's) in the median run of each variant at the largest N, and the tasks that dominate the
unchanged run. Counts and timings come from tests/benchmarks/baseline/callback_plugins/bench_tally.py.

The floor: right after site.yml, in the same ansible-playbook run, three ansible.builtin.ping tasks
on every host, each host's median counting: the least any module task costs there (the connection,
the payload, the remote Python and ansible.module_utils.basic). Wall times on the lab's guests are
mostly that floor: every module run of either run pays it, and an unchanged run makes as many module
runs as the first (it reads each host, which the checks before any change need, and pings every
link). So the table "beyond the floor" gives, per variant, the host-seconds the collection's module
runs took beyond it: for each host, each module run's time there (from the runner's start on the host
to its result, as the callback records them) minus the host's floor, summed over the hosts; and the
same ratio, unchanged over first. With --profile, the same per task.

--baseline also builds, in each round and right after site.yml's runs of each variant (before them in
every other round), the same hub and spoke with the hand-written role of mesh_bench.py
(tests/benchmarks/baseline: gathered network facts, one `ip` command per tunnel and step, one ping per
peer), first and unchanged, from the same clean guests; and prints site.yml's runs over its.

Targets (issue 19, "Fleet scale"): the collection's tasks per host the same at every N; the unchanged
run costs at most half the first (ratio <= 0.5) at every N and forks; and beyond the floor, the same.
With --baseline: site.yml's unchanged run costs at most what the hand-written role's does (<= 1.0x),
at every N and forks: the measure that the per-task floor, which both pay, does not decide.

  python tests/benchmarks/fleet_bench.py [--lab-dir DIR] [--sizes 3,6,9,12] [--repeat 3] [--profile]
                                         [--baseline]

Without --lab-dir it boots its own lab and stops it at the end; with --lab-dir it uses the lab
running there (booting fleet.yml there if none is, and leaving it up). The lab's guests are sensitive
to a busy CPU: each figure is given with the load average, and --max-load/--load-wait make each
first run wait for a quieter machine (by default they do not wait).
Interrupted (Ctrl-C, SIGINT or SIGTERM), it reports what it measured so far, each variant with its count of rounds.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import yaml
from mesh_bench import (
    CLEAN,
    CONTROLLER_ACTIONS,
    REPO,
    Lab,
    counts,
    load,
    module_runs,
    spans,
    spread,
    wait_for_load,
)

TOPOLOGY = REPO / "tests" / "lab" / "topologies" / "fleet.yml"
PLAYBOOK = REPO / "playbooks" / "site.yml"
BASELINE = REPO / "tests" / "benchmarks" / "baseline" / "playbook.yml"
BASELINE_PING = "Ping each peer through its tunnel"
BASELINE_TARGET = 1.0
SPOKES = 12
SIZES = (3, 6, 9, 12)
DEFAULT_FORKS = 5
RUNS = ("first", "unchanged")
RATIO_TARGET = 0.5
# The floor of a task on a host: Ansible's own cost of one module run there (connection, transfer, the remote
# Python, ansible.module_utils.basic), measured on every host of the run right after site.yml, as ping.
# Three times: a host's time for one run varies by a second on the busy lab; each host's median counts.
FLOOR_TASK = "The floor: one module run on this host, Ansible's own cost (ansible.builtin.ping)"
FLOOR_RUNS = 3
FLOOR_PLAY = {
    "name": "The floor of every module task",
    "hosts": "all",
    "gather_facts": False,
    "become": True,
    "tasks": [{"name": FLOOR_TASK, "ansible.builtin.ping": None}] * FLOOR_RUNS,
}


class Fleet(Lab):
    """The fleet lab: mesh_bench's Lab (its Ansible environment and tally), with fleet runs."""

    def clean_all(self) -> None:
        """Delete every GRE interface and what gre_mesh made, on every guest at once (not timed)."""
        command = ["ansible", "-i", str(self.inventory), "lab_guests", "-f", str(SPOKES + 1)]
        command += ["-m", "ansible.builtin.shell", "-a", CLEAN]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"fleet_bench: cleaning the guests failed:\n{done.stdout}\n{done.stderr}")

    def site(self, inventory: Path, size: int, forks: int) -> tuple[float, dict]:
        """site.yml, then the floor's play; the wall time and tally of site.yml alone, the floor's tasks in the
        tally's "floor"."""
        playbook = self.work / "site-and-floor.yml"
        if not playbook.exists():
            playbook.write_text(yaml.safe_dump([{"ansible.builtin.import_playbook": str(PLAYBOOK)}, FLOOR_PLAY]))
        command = ["ansible-playbook", str(playbook), "-i", str(inventory), "-i", str(self.inventory)]
        command += ["--limit", f"hubs:spokes{size}", "--forks", str(forks)]
        wall, tally = self.timed(command, f"fleet_bench: site.yml, N={size}, forks={forks}")
        # The tally of site.yml alone, with the floor's tasks beside it.
        tally["floor"] = tally["tasks"][-FLOOR_RUNS:]
        del tally["tasks"][-FLOOR_RUNS:]
        if any(task["name"] != FLOOR_TASK for task in tally["floor"]):
            sys.exit(f"fleet_bench: the run did not end with the floor's {FLOOR_RUNS} tasks")
        wall -= tally["end"] - tally["floor"][0]["start"]
        tally["end"] = tally["floor"][0]["start"]
        return wall, tally

    def baseline(self, inventory: Path, size: int, forks: int) -> tuple[float, dict]:
        """The hand-written role's run over the same hosts: its wall time and tally."""
        command = ["ansible-playbook", str(BASELINE), "-i", str(inventory), "-i", str(self.inventory)]
        command += ["-e", f"gre_baseline_group=baseline{size}", "--forks", str(forks)]
        return self.timed(command, f"fleet_bench: the hand-written role, N={size}, forks={forks}")


def spokes(size: int) -> list[str]:
    return [f"spoke{number:02d}" for number in range(1, size + 1)]


def fleet_inventory(work: Path, size: int) -> Path:
    """An inventory beside the lab's: the hub and spoke of the hub and the group spokesN."""
    inventory = work / f"fleet{size}.yml"
    variables = {
        "gre_mesh_hub_spoke": [{"hubs": "hubs", "spokes": f"spokes{size}"}],
        # Ansible reaches lab guests over a management link; GRE goes over the underlay.
        "gre_mesh_public": "{{ lab_public_address }}",
    }
    inventory.write_text(yaml.safe_dump({"all": {"vars": variables}}))
    return inventory


def baseline_inventory(work: Path, size: int) -> Path:
    """The same hub and spoke for the hand-written role: the group baselineN of the hub and the first N spokes,
    each host naming its peers."""
    inventory = work / f"baseline{size}.yml"
    hosts = {"hub": {"gre_baseline_peers": spokes(size)}} | {
        spoke: {"gre_baseline_peers": ["hub"]} for spoke in spokes(size)
    }
    variables = {"gre_baseline_public": "{{ lab_public_address }}"}
    inventory.write_text(
        yaml.safe_dump({"all": {"vars": variables, "children": {f"baseline{size}": {"hosts": hosts}}}})
    )
    return inventory


def peers_of(size: int) -> dict[str, int]:
    """The links each host of the hub and spoke of N spokes has: the hub N, each spoke 1."""
    return {"hub": size} | dict.fromkeys(spokes(size), 1)


def changes(tally: dict) -> list[str]:
    """Each changed task of a run, with the host it changed."""
    return [
        f"{task['name']} on {host}"
        for task in tally["tasks"]
        for host, record in task["hosts"].items()
        if record["status"] == "changed"
    ]


def check_baseline(tally: dict, size: int, run: str) -> None:
    """Fail unless the hand-written role's hub pinged its N spokes and each spoke its hub, and an unchanged run
    changed nothing."""
    pinged = [task for task in tally["tasks"] if task["name"].endswith(BASELINE_PING)]
    for host, links in peers_of(size).items():
        items = pinged[0]["hosts"].get(host, {}).get("items", []) if len(pinged) == 1 else []
        if items != ["ok"] * links:
            sys.exit(f"fleet_bench: N={size} {run}: the hand-written role's {host} did not ping its {links} peers")
    if run == "unchanged" and changes(tally):
        sys.exit(f"fleet_bench: N={size}: the hand-written role's unchanged run changed: {'; '.join(changes(tally))}")


def check_run(tally: dict, size: int, run: str) -> None:
    """Fail unless the hub pinged its N spokes and each spoke its hub, and an unchanged run changed nothing."""
    pinged = [task for task in tally["tasks"] if task["action"].endswith("gre_ping")]
    for host, links in peers_of(size).items():
        record = pinged[0]["hosts"].get(host, {}) if len(pinged) == 1 else {}
        if record.get("status") != "ok" or record.get("up") != links or record.get("down") != 0:
            sys.exit(f"fleet_bench: N={size} {run}: {host} did not ping its {links} peers: {record}")
    if run == "unchanged" and changes(tally):
        sys.exit(f"fleet_bench: N={size}: the unchanged run changed: {'; '.join(changes(tally))}")


def floors(tally: dict) -> dict[str, float]:
    """Each host's time for one ping module run: the median of the floor's tasks."""
    return {
        host: statistics.median(task["hosts"][host]["ended"] - task["hosts"][host]["began"] for task in tally["floor"])
        for host in tally["floor"][0]["hosts"]
    }


def beyond_floor(tally: dict) -> dict[str, float]:
    """Per task of site.yml that ran a module on the hosts, the host-seconds its module runs took beyond the floor:
    for each host, the task's time there minus its module runs (a loop's items each) times the host's floor in the
    same run, summed over the hosts."""
    floor = floors(tally)
    beyond = {}
    for task in tally["tasks"]:
        if task["action"].rsplit(".", 1)[-1] in CONTROLLER_ACTIONS:
            continue
        total = 0.0
        for host, record in task["hosts"].items():
            if record["status"] != "skipped":
                total += record["ended"] - record["began"] - module_runs(record) * floor[host]
        beyond[task["name"]] = beyond.get(task["name"], 0.0) + total
    return beyond


def slope(points: list[tuple[int, float]]) -> float:
    """Least squares slope of seconds over hosts."""
    mean_x = statistics.fmean(x for x, _y in points)
    mean_y = statistics.fmean(y for _x, y in points)
    denominator = sum((x - mean_x) ** 2 for x, _y in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / denominator


def forks_of(size: int) -> list[int]:
    return sorted({DEFAULT_FORKS, size + 1})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-dir", type=Path, help="use (or boot and keep) the fleet lab in this directory")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help=f"spokes per run, of {SIZES}")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over every variant; medians are shown")
    parser.add_argument("--max-load", type=float, default=100.0, help="wait for this 1-minute load before a first run")
    parser.add_argument("--load-wait", type=float, default=0, help="seconds to wait for it at most, each time")
    parser.add_argument("--profile", action="store_true", help="print each task's time at the largest N")
    parser.add_argument("--baseline", action="store_true", help="also run the hand-written role, and compare")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if not set(sizes) <= set(SIZES):
        parser.error(f"--sizes: each of {', '.join(map(str, SIZES))} (the lab's groups spokes3, spokes6, ...)")

    with Fleet.running(args.lab_dir, TOPOLOGY, "fleet-bench") as lab:
        results = measure(lab, lab.work, sizes, args)
    report(results, sizes, args.profile)
    if args.baseline:
        report_baseline(results, sizes)
    return 0


def measure(lab: Fleet, work: Path, sizes: list[int], args: argparse.Namespace) -> dict:
    """Every round visits each N and forks, the order reversed every other round; results by (N, forks, run).

    Interrupted (Ctrl-C, SIGINT or SIGTERM), it stops there and returns what it has: the report shows the variants
    measured at least once, each with its count of rounds.
    """
    results: dict[tuple[int, int, str], list[dict]] = {}
    # Also when started in the background (where a shell ignores SIGINT), and on SIGTERM.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    variants = [(size, forks) for size in sizes for forks in forks_of(size)]
    inventories = {size: fleet_inventory(work, size) for size in sizes}
    baselines = {size: baseline_inventory(work, size) for size in sizes} if args.baseline else {}
    try:
        for repeat in range(args.repeat):
            for size, forks in variants if repeat % 2 == 0 else variants[::-1]:
                builders = ["site", "baseline"] if args.baseline else ["site"]
                for builder in builders if repeat % 2 == 0 else builders[::-1]:
                    wait_for_load(args.max_load, args.load_wait)
                    lab.clean_all()
                    entries = [measure_run(lab, builder, inventories, baselines, size, forks, run) for run in RUNS]
                    for run, entry in zip(RUNS, entries, strict=True):
                        print(
                            f"  round {repeat + 1} N={size:<2} forks={forks:<2} {builder:<8} {run:<9} "
                            f"{entry['wall']:6.2f} s  load {entry['load']:.2f}",
                            flush=True,
                        )
                    for run, entry in zip(RUNS, entries, strict=True):
                        key = (size, forks, run) if builder == "site" else (size, forks, f"baseline {run}")
                        results.setdefault(key, []).append(entry)
    except KeyboardInterrupt:
        print("  interrupted: the report shows what was measured", flush=True)
    return results


def measure_run(lab: Fleet, builder: str, inventories: dict, baselines: dict, size: int, forks: int, run: str) -> dict:
    """One run of site.yml (with the floor's play after it) or of the hand-written role, checked; its figures."""
    started_load = load()
    if builder == "baseline":
        wall, tally = lab.baseline(baselines[size], size, forks)
        check_baseline(tally, size, run)
        return {"wall": wall, "load": started_load[0], "tally": tally}
    wall, tally = lab.site(inventories[size], size, forks)
    check_run(tally, size, run)
    return {
        "wall": wall,
        "load": started_load[0],
        "per_host": counts(tally, ["hub", *spokes(size)]),
        "beyond": sum(beyond_floor(tally).values()),
        "floor": statistics.median(floors(tally).values()),
        "tally": tally,
    }


def median_entry(entries: list[dict]) -> dict:
    """The run of median wall time (the lower middle one of an even count), for its tally."""
    return sorted(entries, key=lambda entry: entry["wall"])[(len(entries) - 1) // 2]


def per_role(entries: list[dict], field: str) -> tuple[str, str]:
    """The field's values over the runs: the hub's, and the spokes' (each a value or a range)."""
    hub = [entry["per_host"]["hub"][field] for entry in entries]
    spoke = [value[field] for entry in entries for host, value in entry["per_host"].items() if host != "hub"]
    return spread(hub), spread(spoke)


def report(results: dict, sizes: list[int], profile: bool) -> None:
    measured = [(size, forks) for size in sizes for forks in forks_of(size) if (size, forks, "first") in results]
    if not measured:
        sys.exit("fleet_bench: nothing was measured")
    print("\nmedians over the rounds (n); tasks and runs per host: hub/spokes")
    print(
        f"{'N':>2} {'forks':>5} {'n':>2} {'first':>8} {'unchanged':>9} {'ratio':>5} {'load1':>9} "
        f"{'tasks/host 1st':>14} {'unch.':>7} {'runs/host 1st':>13} {'unch.':>7}"
    )
    medians: dict[tuple[int, int, str], float] = {}
    for size, forks in measured:
        cells = []
        for run in RUNS:
            medians[(size, forks, run)] = statistics.median(e["wall"] for e in results[(size, forks, run)])
        loads = [e["load"] for run in RUNS for e in results[(size, forks, run)]]
        for field in ("tasks", "runs"):
            for run in RUNS:
                cells.append("/".join(per_role(results[(size, forks, run)], field)))
        first, unchanged = medians[(size, forks, "first")], medians[(size, forks, "unchanged")]
        print(
            f"{size:>2} {forks:>5} {len(results[(size, forks, 'first')]):>2} {first:>6.2f} s {unchanged:>7.2f} s "
            f"{unchanged / first:>5.2f} {min(loads):>4.1f}-{max(loads):<4.1f} "
            f"{cells[0]:>14} {cells[1]:>7} {cells[2]:>13} {cells[3]:>7}"
        )
    print("(tasks/host: executed, a loop counting once; runs/host: module runs on the host, a loop counting each item)")

    print("\nthe collection's module runs beyond the floor (each minus a ping module run on the same host in the same")
    print("run: floor/run, the median), host-seconds summed over the hosts; medians over the rounds")
    print(f"{'N':>2} {'forks':>5} {'floor/run':>9} {'first':>9} {'unchanged':>9} {'ratio':>5}")
    beyond_ratios: dict[tuple[int, int], float] = {}
    for size, forks in measured:
        first, unchanged = (statistics.median(e["beyond"] for e in results[(size, forks, run)]) for run in RUNS)
        floor = statistics.median(e["floor"] for run in RUNS for e in results[(size, forks, run)])
        beyond_ratios[(size, forks)] = unchanged / first
        print(f"{size:>2} {forks:>5} {floor:>7.2f} s {first:>7.2f} s {unchanged:>7.2f} s {unchanged / first:>5.2f}")

    print()
    for label, forks_at in (("forks=5", lambda _size: DEFAULT_FORKS), ("forks=N+1", lambda size: size + 1)):
        for run in RUNS:
            points = [
                (size, medians[(size, forks_at(size), run)]) for size in sizes if (size, forks_at(size), run) in medians
            ]
            shown = f"{slope(points):.2f} s per added host" if len(points) > 1 else "fewer than two N measured"
            print(f"slope, {label:<9} {run:<9}: {shown}")

    if profile:
        size = max(size for size, _forks in measured)
        for forks in (forks for measured_size, forks in measured if measured_size == size):
            print(f"\ntask times, N={size}, forks={forks}, median runs (first / unchanged):")
            first, unchanged = (spans(median_entry(results[(size, forks, run)])["tally"]) for run in RUNS)
            again = dict(unchanged)
            for task, seconds in first:
                print(f"  {seconds:6.2f} s / {again.get(task, 0.0):6.2f} s  {task}")
            first_beyond, unchanged_beyond = (
                beyond_floor(median_entry(results[(size, forks, run)])["tally"]) for run in RUNS
            )
            print("  beyond the floor, host-seconds (first / unchanged):")
            for task, seconds in first_beyond.items():
                print(f"  {seconds:6.2f} s / {unchanged_beyond.get(task, 0.0):6.2f} s  {task}")
            top = sorted(unchanged, key=lambda span: span[1], reverse=True)[:5]
            total = sum(seconds for _task, seconds in unchanged)
            print(f"  unchanged run, the largest tasks of {total:.2f} s in tasks:")
            for task, seconds in top:
                print(f"    {seconds:6.2f} s ({seconds / total:4.0%})  {task}")

    print()
    for run in RUNS:
        shown = {}
        for size in sorted({size for size, _forks in measured}):
            entries = [entry for forks in forks_of(size) for entry in results.get((size, forks, run), [])]
            shown[size] = (per_role(entries, "tasks"), per_role(entries, "runs"))
        constant = len(set(shown.values())) == 1
        listed = ", ".join(
            f"N={size}: tasks {'/'.join(tasks)}, runs {'/'.join(runs)}" for size, (tasks, runs) in shown.items()
        )
        print(f"target: {run} run, tasks per host the same at every N: {'met' if constant else 'MISSED'} ({listed})")
    ratios = {variant: medians[(*variant, "unchanged")] / medians[(*variant, "first")] for variant in measured}
    verdict = "met" if all(ratio <= RATIO_TARGET for ratio in ratios.values()) else "MISSED"
    listed = ", ".join(f"N={size} forks={forks}: {ratio:.2f}" for (size, forks), ratio in ratios.items())
    print(f"target: unchanged run <= {RATIO_TARGET} x the first at every N and forks: {verdict} ({listed})")
    verdict = "met" if all(ratio <= RATIO_TARGET for ratio in beyond_ratios.values()) else "MISSED"
    listed = ", ".join(f"N={size} forks={forks}: {ratio:.2f}" for (size, forks), ratio in beyond_ratios.items())
    print(
        f"target: beyond the floor, unchanged <= {RATIO_TARGET} x the first at every N and forks: {verdict} ({listed})"
    )
    print(f"load average at the end: {' '.join(f'{value:.2f}' for value in load())}")


def report_baseline(results: dict, sizes: list[int]) -> None:
    """site.yml's runs over the hand-written role's, per N and forks (medians of wall time over the rounds)."""
    measured = [
        (size, forks)
        for size in sizes
        for forks in forks_of(size)
        if all((size, forks, key) in results for key in (*RUNS, *(f"baseline {run}" for run in RUNS)))
    ]
    if not measured:
        print("\nthe hand-written role: no variant measured with both")
        return
    print("\nsite.yml against the hand-written role (the same hub and spoke from the same clean guests), medians")
    print(
        f"{'N':>2} {'forks':>5} {'n':>2} {'site 1st':>9} {'hand 1st':>9} {'ratio':>5} "
        f"{'site unch.':>10} {'hand unch.':>10} {'ratio':>5} {'hand unch./1st':>14}"
    )
    ratios = {}
    for size, forks in measured:
        site_first, site_unchanged, hand_first, hand_unchanged = (
            statistics.median(entry["wall"] for entry in results[(size, forks, key)])
            for key in ("first", "unchanged", "baseline first", "baseline unchanged")
        )
        ratios[(size, forks)] = site_unchanged / hand_unchanged
        print(
            f"{size:>2} {forks:>5} {len(results[(size, forks, 'baseline first')]):>2} {site_first:>7.2f} s "
            f"{hand_first:>7.2f} s {site_first / hand_first:>5.2f} {site_unchanged:>8.2f} s {hand_unchanged:>8.2f} s "
            f"{ratios[(size, forks)]:>5.2f} {hand_unchanged / hand_first:>14.2f}"
        )
    verdict = "met" if all(ratio <= BASELINE_TARGET for ratio in ratios.values()) else "MISSED"
    listed = ", ".join(f"N={size} forks={forks}: {ratio:.2f}" for (size, forks), ratio in ratios.items())
    print(
        f"target: unchanged run <= {BASELINE_TARGET} x the hand-written role's at every N and forks: {verdict} ({listed})"
    )


if __name__ == "__main__":
    sys.exit(main())
