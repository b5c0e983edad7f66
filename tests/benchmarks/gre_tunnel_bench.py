"""Benchmark of linuxnet.gre.gre_tunnel on a real lab kernel: time and `ip` processes per run.

On one lab guest, applies 1, 10, 50 and 200 tunnels in one module invocation, then the same set
again (unchanged), and prints for each: wall time of the Ansible task as seen from the controller,
the same minus an `ansible.builtin.ping` baseline (connection and Python start-up), and the number
of `ip` processes the module spawned. Targets (issue 3): 200 tunnels cost less than 3x one tunnel;
an unchanged run spawns at most 2 `ip` processes.

With --udev-stopped it also times each apply with the guest's systemd-udevd stopped (a
diagnostic, not the target): on a UML guest udev's handling of each new interface, which runs
systemd-sysctl for it, costs more CPU than the module's whole batch and shares the guest's one
vCPU with the module; the two tables side by side show how much of the apply time is that.

Before each timed run the guest settles (udev events and IPv6 duplicate address detection that
200 new interfaces set off take seconds of a UML guest's CPU). Times come from a pass without
instrumentation; process counts from a second pass in which an
`ip` shim in place of the guest's `ip` binary logs each call and runs the real one.

Routed (issue 16, --routed, or alone with --routed-only): 50 tunnels with 4 routes each (200
routes) in one invocation, applied and then run again unchanged: the `ip` processes (target: the
same 2 as without routes, 1 unchanged), and the time against the physical floor: the very `ip`
work of the module (its read, and its batch, captured by the shim as it ran) replayed by hand on
the same guest, timed on the guest, so no connection or Python start-up is in it.

Floor (issue 19, --floor): the module against what any Ansible tool pays for the same work. A hand-written
role reads the host (one `ansible.builtin.command: ip -details -json link show` task) and applies its lines
(one `ansible.builtin.command: ip -batch FILE` task); the module does both in one task. For 1 and 200
tunnels, with the guest's udev running and stopped, in interleaved rounds (one playbook per round and
case, the module's half and the floor's half in alternating order), medians of each task's wall time
as the controller sees it (task start to result, tests/benchmarks/baseline/callback_plugins/bench_tally.py),
so ansible-playbook's own start-up is in neither side: the module's apply against the two floor tasks
(target <= 1.0x), and its unchanged run against one `command: ip -json link show` task (target <= 1.2x).
FILE holds exactly the lines the module ran (captured by the `ip` shim). Also the AnsiballZ payload of
the module and of the command module, and the size of the module's result.

  tests/benchmarks/gre_tunnel_bench.py [--sizes 1,10,50,200] [--repeat 3] [--lab-dir DIR] [--udev-stopped]
                                       [--routed | --routed-only] [--floor | --floor-only [--base CHECKOUT]]

With --base, the floor rounds also time the modules of another checkout (as the collection
linuxnet_base.gre, its imports renamed), so that a change is measured before and after in the same
interleaved rounds.

In-guest phases of one run, without the controller: tests/benchmarks/gre_tunnel_phases.py (runs on the guest).

Without --lab-dir it boots its own one-host lab (tests/lab/topologies/solo.yml) and stops it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "lab" / "lab"
SHIM = '#!/bin/sh\necho "$*" >> /run/ip-calls\nexec /usr/bin/ip "$@"\n'
UDEV_UNITS = "systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket"


class Guest:
    def __init__(self, lab_dir: Path, host: str) -> None:
        self.lab_dir = lab_dir
        self.host = host
        self.inventory = lab_dir / "inventory.yml"
        collections = Path(tempfile.mkdtemp(prefix="gre-bench-"))
        self.collections = collections
        (collections / "ansible_collections" / "linuxnet").mkdir(parents=True)
        (collections / "ansible_collections" / "linuxnet" / "gre").symlink_to(REPO)
        self.env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=str(collections),
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",  # "HOST | STATUS => {json}"
            ANSIBLE_DEPRECATION_WARNINGS="0",
        )

    def module(self, name: str, args: dict | None = None) -> tuple[float, dict]:
        command = ["ansible", "-i", str(self.inventory), self.host, "-m", name]
        if args is not None:
            command += ["-a", json.dumps(args)]
        started = time.monotonic()
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
        try:
            task = json.loads(result.stdout.split(" => ", 1)[1])
        except (ValueError, IndexError):
            sys.exit(f"bench: {name} gave no result:\n{result.stdout}\n{result.stderr}")
        if task.get("failed") or task.get("unreachable"):
            sys.exit(f"bench: {name} failed: {task.get('msg')}")
        return elapsed, task

    def shell(self, command: str) -> str:
        ssh = subprocess.run(
            [str(LAB), "--lab-dir", str(self.lab_dir), "ssh", self.host, "--", command],
            capture_output=True,
            text=True,
            check=True,
        )
        return ssh.stdout


def settle(guest: Guest) -> None:
    """Let the guest finish what new interfaces set off (udev events, IPv6 duplicate address
    detection on each tunnel) so that a timed run measures the module, not that aftermath."""
    guest.shell("udevadm settle; while ip -6 addr show tentative | grep -q .; do sleep 0.2; done")


def tunnels(count: int, local: str) -> list[dict]:
    pool = ipaddress.ip_network("10.100.0.0/16")
    return [
        {
            "name": f"bench{i}",
            "local": local,
            "remote": str(ipaddress.ip_address("198.51.100.1") + i),
            "addresses": [f"{pool.network_address + 4 * i + 1}/30"],
        }
        for i in range(count)
    ]


# The shim of the routed case also keeps each call's standard input (/run/ip-stdin.N for call N),
# so that the floor replays the module's own batches.
CAPTURE_SHIM = (
    "#!/bin/sh\n"
    "n=$(cat /run/ip-calls 2>/dev/null | wc -l)\n"
    'echo "$*" >> /run/ip-calls\n'
    'case "$*" in *-batch*) cat > /run/ip-stdin.$n; exec REAL "$@" < /run/ip-stdin.$n;; esac\n'
    'exec REAL "$@"\n'
)
FLOOR_SIZES = (1, 200)
BENCH = REPO / "tests" / "benchmarks"
ROUTED_TUNNELS = 50
ROUTES_PER_TUNNEL = 4


def routed_tunnels(local: str) -> list[dict]:
    """50 tunnels, each with 4 routes (/26s of 10.101.i.0/24) via its peer's inner address."""
    result = tunnels(ROUTED_TUNNELS, local)
    for number, tunnel in enumerate(result):
        inner = ipaddress.ip_interface(tunnel["addresses"][0])
        tunnel["routes"] = [
            {"prefix": f"10.101.{number}.{64 * part}/26", "via": str(inner.ip + 1)} for part in range(ROUTES_PER_TUNNEL)
        ]
    return result


def on_guest_ns(guest: Guest, command: str) -> int:
    """Nanoseconds that ``command`` takes on the guest, timed there."""
    out = guest.shell(f"s=$(date +%s%N); {{ {command}; }} >/dev/null; e=$(date +%s%N); echo $((e - s))")
    return int(out.strip().splitlines()[-1])


def routed(guest: Guest, repeat: int, local: str) -> dict[str, float]:
    """The routed case: times (medians), ip processes, and the floor of the same ip work."""
    wanted = {"tunnels": routed_tunnels(local), "purge": True}
    purge = {"tunnels": [], "purge": True}
    applies, unchanged = [], []
    for _attempt in range(repeat):
        guest.module("linuxnet.gre.gre_tunnel", purge)
        settle(guest)
        seconds, task = guest.module("linuxnet.gre.gre_tunnel", wanted)
        assert task["changed"], "the first run must change the host"
        applies.append(seconds)
        settle(guest)
        seconds, task = guest.module("linuxnet.gre.gre_tunnel", wanted)
        assert not task["changed"], "the second run must not change the host"
        unchanged.append(seconds)
    found = guest.shell("ip route show proto 250 | wc -l").strip()
    assert int(found) == ROUTED_TUNNELS * ROUTES_PER_TUNNEL, f"{found} routes of proto 250"
    row: dict[str, float] = {"apply": statistics.median(applies), "unchanged": statistics.median(unchanged)}
    # The ip processes, and the module's own read and batch, captured.
    real = guest.shell("readlink -f /sbin/ip").strip()
    shim = CAPTURE_SHIM.replace("REAL", real + ".real")
    guest.module("linuxnet.gre.gre_tunnel", purge)
    settle(guest)
    guest.shell(f"mv {real} {real}.real && printf '%s' '{shim}' > {real} && chmod 755 {real}")
    try:
        for label in ("apply", "unchanged"):
            guest.shell(": > /run/ip-calls; rm -f /run/ip-stdin.*")
            guest.module("linuxnet.gre.gre_tunnel", wanted)
            calls = guest.shell("cat /run/ip-calls").splitlines()
            row[f"{label}_ip"] = len(calls)
            if label == "apply":
                # The read (-json) and the batch that changes the host (the last other -batch call).
                reads = [number for number, call in enumerate(calls) if "-batch" in call and "-json" in call]
                writes = [number for number, call in enumerate(calls) if "-batch" in call and "-json" not in call]
                guest.shell(
                    f"cp /run/ip-stdin.{reads[0]} /run/bench-read && cp /run/ip-stdin.{writes[-1]} /run/bench-batch"
                )
                row["batch_lines"] = int(guest.shell("wc -l < /run/bench-batch").strip())
    finally:
        guest.shell(f"mv {real}.real {real} && rm -f /run/ip-calls /run/ip-stdin.*")
    read = "ip -details -json -batch - < /run/bench-read"
    floor_apply, floor_unchanged = [], []
    for _attempt in range(repeat):
        guest.module("linuxnet.gre.gre_tunnel", purge)
        settle(guest)
        floor_apply.append(on_guest_ns(guest, f"{read}; ip -batch /run/bench-batch") / 1e9)
        settle(guest)
        floor_unchanged.append(on_guest_ns(guest, read) / 1e9)
    guest.module("linuxnet.gre.gre_tunnel", purge)
    guest.shell("rm -f /run/bench-read /run/bench-batch")
    row["floor_apply"] = statistics.median(floor_apply)
    row["floor_unchanged"] = statistics.median(floor_unchanged)
    return row


def capture_batch(guest: Guest, wanted: dict, path: str) -> int:
    """Apply ``wanted`` once through the capturing shim and keep the batch the module ran at ``path`` on the guest."""
    purge = {"tunnels": [], "purge": True}
    real = guest.shell("readlink -f /sbin/ip").strip()
    shim = CAPTURE_SHIM.replace("REAL", real + ".real")
    guest.module("linuxnet.gre.gre_tunnel", purge)
    guest.shell(f"mv {real} {real}.real && printf '%s' '{shim}' > {real} && chmod 755 {real}")
    try:
        guest.shell(": > /run/ip-calls; rm -f /run/ip-stdin.*")
        guest.module("linuxnet.gre.gre_tunnel", wanted)
        calls = guest.shell("cat /run/ip-calls").splitlines()
        writes = [number for number, call in enumerate(calls) if "-batch" in call and "-json" not in call]
        guest.shell(f"cp /run/ip-stdin.{writes[-1]} {path}")
    finally:
        guest.shell(f"mv {real}.real {real} && rm -f /run/ip-calls /run/ip-stdin.*")
    guest.module("linuxnet.gre.gre_tunnel", purge)
    return int(guest.shell(f"wc -l < {path}").strip())


def payload_sizes(guest: Guest, base: bool = False) -> dict[str, int]:
    """Bytes of the AnsiballZ file that the controller sends (its zip, base64 in a Python wrapper), per module:
    kept on the guest once without pipelining (ANSIBLE_KEEP_REMOTE_FILES)."""
    sizes = {}
    empty = {"tunnels": [], "purge": False}
    for label, name, args in (
        ("module", "linuxnet.gre.gre_tunnel", empty),
        *([("base", "linuxnet_base.gre.gre_tunnel", empty)] if base else []),
        ("command", "ansible.builtin.command", None),
    ):
        guest.shell("rm -rf /root/.ansible/tmp-bench")
        env = dict(
            guest.env,
            ANSIBLE_KEEP_REMOTE_FILES="1",
            ANSIBLE_PIPELINING="0",
            ANSIBLE_REMOTE_TMP="/root/.ansible/tmp-bench",
        )
        command = [
            "ansible",
            "-i",
            str(guest.inventory),
            guest.host,
            "-m",
            name,
            "-a",
            "true" if args is None else json.dumps(args),
        ]
        if args is not None:
            command.append("--check")
        subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        sizes[label] = int(guest.shell("cat /root/.ansible/tmp-bench/*/AnsiballZ_*.py | wc -c").strip())
        guest.shell("rm -rf /root/.ansible/tmp-bench")
    return sizes


def add_base(guest: Guest, checkout: Path) -> None:
    """Another checkout's modules as the collection linuxnet_base.gre (its imports renamed), to time beside ours."""
    root = guest.collections / "ansible_collections" / "linuxnet_base" / "gre"
    shutil.copytree(checkout / "plugins", root / "plugins")
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("ansible_collections.linuxnet.gre.", "ansible_collections.linuxnet_base.gre."))


def floor_playbook(
    host: str, wanted: dict, batch: str, udev_stopped: bool, first: int, base: bool = False
) -> list[dict]:
    """One round of one case: the module's apply and unchanged run, the floor's read, batch and unchanged read
    (and with ``base``, the base checkout's apply and unchanged run); the halves rotated by ``first``.

    Timed tasks are named ``time: ...``; the others prepare (purge, settle, udev) and are not timed.
    """
    purge = {"name": "purge", "linuxnet.gre.gre_tunnel": {"tunnels": [], "purge": True}}
    settle = {
        "name": "settle",
        "ansible.builtin.shell": "udevadm settle; while ip -6 addr show tentative | grep -q .; do sleep 0.2; done",
        "changed_when": False,
    }
    stop = {"name": "stop udev", "ansible.builtin.command": f"systemctl stop {UDEV_UNITS}", "changed_when": False}
    start = {
        "name": "start udev",
        "ansible.builtin.shell": f"systemctl start {UDEV_UNITS} && udevadm trigger --action=add --subsystem-match=net",
        "changed_when": False,
    }
    quiet = [stop] if udev_stopped else []
    again = [start] if udev_stopped else []
    module_halves = [
        [
            purge,
            settle,
            *quiet,
            {"name": f"time: {label} apply", f"{collection}.gre_tunnel": wanted},
            *again,
            settle,
            {"name": f"time: {label} unchanged", f"{collection}.gre_tunnel": wanted},
        ]
        for label, collection in [("module", "linuxnet.gre"), *([("base", "linuxnet_base.gre")] if base else [])]
    ]
    floor_half = [
        purge,
        settle,
        *quiet,
        {"name": "time: floor read", "ansible.builtin.command": "ip -details -json link show", "changed_when": False},
        {"name": "time: floor batch", "ansible.builtin.command": f"ip -batch {batch}"},
        *again,
        settle,
        {"name": "time: floor unchanged", "ansible.builtin.command": "ip -json link show", "changed_when": False},
    ]
    halves = [*module_halves, floor_half]
    first %= len(halves)
    tasks = [task for half in halves[first:] + halves[:first] for task in half]
    return [{"hosts": host, "gather_facts": False, "tasks": tasks}]


def floor(guest: Guest, repeat: int, local: str, base: Path | None = None) -> dict[str, t.Any]:
    """The floor case: per (tunnels, udev) the medians of the timed tasks, interleaved rounds."""
    work = Path(tempfile.mkdtemp(prefix="gre-bench-floor-"))
    cases = [(size, udev_stopped) for size in FLOOR_SIZES for udev_stopped in (False, True)]
    wanted = {size: {"tunnels": tunnels(size, local), "purge": True} for size in FLOOR_SIZES}
    if base is not None:
        add_base(guest, base)
    figures: dict[str, t.Any] = {"payload": payload_sizes(guest, base is not None), "cases": {}, "batch_lines": {}}
    for size in FLOOR_SIZES:
        figures["batch_lines"][size] = capture_batch(guest, wanted[size], f"/run/bench-floor-{size}.batch")
    times: dict[tuple[int, bool], dict[str, list[float]]] = {case: {} for case in cases}
    result_bytes: dict[int, dict[str, int]] = {}
    env = dict(
        guest.env,
        ANSIBLE_CALLBACK_PLUGINS=str(BENCH / "baseline" / "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="bench_tally",
    )
    try:
        for number in range(repeat):
            for index, (size, udev_stopped) in enumerate(cases):
                playbook = work / "round.yml"
                batch = f"/run/bench-floor-{size}.batch"
                playbook.write_text(
                    json.dumps(
                        floor_playbook(
                            guest.host, wanted[size], batch, udev_stopped, number + index, base=base is not None
                        )
                    )
                )
                tally = work / "tally.json"
                run = subprocess.run(
                    ["ansible-playbook", "-i", str(guest.inventory), str(playbook)],
                    env=dict(env, BENCH_TALLY=str(tally)),
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if run.returncode != 0:
                    sys.exit(f"bench: floor round failed:\n{run.stdout}\n{run.stderr}")
                for task in json.loads(tally.read_text())["tasks"]:
                    if not task["name"].startswith("time: "):
                        continue
                    label = task["name"][len("time: ") :]
                    record = task["hosts"][guest.host]
                    expected = "changed" if label in ("module apply", "base apply", "floor batch") else "ok"
                    assert record["status"] == expected, f"{label}: {record['status']}, not {expected}"
                    times[(size, udev_stopped)].setdefault(label, []).append(task["end"] - task["start"])
                    if not label.startswith("floor "):
                        result_bytes.setdefault(size, {})[label] = record["bytes"]
    finally:
        guest.module("linuxnet.gre.gre_tunnel", {"tunnels": [], "purge": True})
        guest.shell("rm -f /run/bench-floor-*.batch")
    for case, labels in times.items():
        figures["cases"][case] = {label: statistics.median(values) for label, values in labels.items()}
    figures["result_bytes"] = result_bytes
    return figures


def print_floor(figures: dict[str, t.Any], repeat: int) -> None:
    payload = figures["payload"]
    print(
        f"floor (issue 19): task wall times on the controller, median of {repeat} interleaved rounds; "
        "floor = command `ip -details -json link show` + command `ip -batch FILE` (the module's own lines)"
    )
    base = any("base apply" in row for row in figures["cases"].values())
    print(
        f"{'tunnels':>8} {'udev':>8} {'module s':>9} {'floor s':>8} {'ratio':>6} {'target':>6}"
        f" {'unchanged s':>12} {'ip link s':>10} {'ratio':>6} {'target':>6}"
        + (f" {'base s':>7} {'ratio':>6} {'base unch. s':>13} {'ratio':>6}" if base else "")
    )
    for (size, udev_stopped), row in figures["cases"].items():
        floor_apply = row["floor read"] + row["floor batch"]
        line = (
            f"{size:>8} {'stopped' if udev_stopped else 'running':>8} {row['module apply']:>9.2f} {floor_apply:>8.2f}"
            f" {row['module apply'] / floor_apply:>5.2f}x {'1.0x':>6} {row['module unchanged']:>12.2f}"
            f" {row['floor unchanged']:>10.2f} {row['module unchanged'] / row['floor unchanged']:>5.2f}x {'1.2x':>6}"
        )
        if base:
            line += (
                f" {row['base apply']:>7.2f} {row['base apply'] / floor_apply:>5.2f}x"
                f" {row['base unchanged']:>13.2f} {row['base unchanged'] / row['floor unchanged']:>5.2f}x"
            )
        print(line)
    print("AnsiballZ payload (bytes): " + ", ".join(f"{label} {size}" for label, size in payload.items()))
    print(f"batch lines (FILE): {', '.join(f'{n} for {size} tunnels' for size, n in figures['batch_lines'].items())}")
    for size, sizes in figures["result_bytes"].items():
        print(f"result JSON of {size} tunnels (bytes): " + ", ".join(f"{label} {n}" for label, n in sizes.items()))


def measure(
    guest: Guest, sizes: list[int], repeat: int, local: str, udev_stopped: bool = False
) -> dict[int, dict[str, float]]:
    rows: dict[int, dict[str, float]] = {}
    for size in sizes:
        wanted = {"tunnels": tunnels(size, local), "purge": True}
        applies, unchanged = [], []
        for _attempt in range(repeat):
            guest.module("linuxnet.gre.gre_tunnel", {"tunnels": [], "purge": True})
            settle(guest)
            if udev_stopped:
                guest.shell(f"systemctl stop {UDEV_UNITS}")
            try:
                seconds, task = guest.module("linuxnet.gre.gre_tunnel", wanted)
            finally:
                if udev_stopped:
                    # Started again, udev has missed the new interfaces' events: replay them.
                    guest.shell(f"systemctl start {UDEV_UNITS} && udevadm trigger --action=add --subsystem-match=net")
            assert task["changed"], "the first run must change the host"
            applies.append(seconds)
            settle(guest)
            seconds, task = guest.module("linuxnet.gre.gre_tunnel", wanted)
            assert not task["changed"], "the second run must not change the host"
            unchanged.append(seconds)
        present = json.loads(guest.shell("ip -json link show type gre"))
        assert len([link for link in present if link["ifname"].startswith("bench")]) == size
        rows[size] = {"apply": statistics.median(applies), "unchanged": statistics.median(unchanged)}
    return rows


def count_ip(guest: Guest, sizes: list[int], local: str, rows: dict[int, dict[str, float]]) -> None:
    # The module looks in /sbin first: put the shim where every path to `ip` leads.
    real = guest.shell("readlink -f /sbin/ip").strip()
    guest.shell(
        f"mv {real} {real}.real && printf '{SHIM.replace('/usr/bin/ip', real + '.real')}' > {real} && chmod 755 {real}"
    )
    try:
        for size in sizes:
            wanted = {"tunnels": tunnels(size, local), "purge": True}
            guest.module("linuxnet.gre.gre_tunnel", {"tunnels": [], "purge": True})
            for label in ("apply", "unchanged"):
                guest.shell(": > /run/ip-calls")
                guest.module("linuxnet.gre.gre_tunnel", wanted)
                rows[size][f"{label}_ip"] = len(guest.shell("cat /run/ip-calls").splitlines())
    finally:
        guest.shell(f"mv {real}.real {real} && rm -f /run/ip-calls")
        guest.module("linuxnet.gre.gre_tunnel", {"tunnels": [], "purge": True})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,50,200")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per size (median shown)")
    parser.add_argument("--lab-dir", type=Path, help="an existing lab; default: boot a one-host lab")
    parser.add_argument("--host", default=None, help="the lab host to use (default: the first)")
    parser.add_argument(
        "--udev-stopped", action="store_true", help="also time each apply with the guest's udev stopped (diagnostic)"
    )
    parser.add_argument("--routed", action="store_true", help="also the routed case: 50 tunnels with 200 routes")
    parser.add_argument("--routed-only", action="store_true", help="only the routed case")
    parser.add_argument("--floor", action="store_true", help="also the module against the floor (issue 19)")
    parser.add_argument("--floor-only", action="store_true", help="only the floor case")
    parser.add_argument(
        "--base", type=Path, help="with --floor: also time the modules of this checkout (e.g. main's), same rounds"
    )
    args = parser.parse_args()
    only = args.routed_only or args.floor_only
    sizes = [] if only else [int(size) for size in args.sizes.split(",")]

    own_lab = args.lab_dir is None
    lab_dir = args.lab_dir or Path(tempfile.mkdtemp(prefix="gre-bench-lab-"))
    if own_lab:
        subprocess.run(
            [str(LAB), "--lab-dir", str(lab_dir), "up", str(REPO / "tests/lab/topologies/solo.yml")], check=True
        )
    try:
        state = json.loads((lab_dir / "state.json").read_text())
        host = args.host or next(iter(state["hosts"]))
        guest = Guest(lab_dir, host)
        local = yaml.safe_load(guest.inventory.read_text())["all"]["hosts"][host]["lab_address"]
        guest.module("ansible.builtin.ping")  # warm up: ssh master, Python caches
        baseline = statistics.median(guest.module("ansible.builtin.ping")[0] for _attempt in range(args.repeat))
        rows = measure(guest, sizes, args.repeat, local)
        quiet = measure(guest, sizes, args.repeat, local, udev_stopped=True) if args.udev_stopped else None
        if sizes:
            count_ip(guest, sizes, local, rows)
        routed_row = routed(guest, args.repeat, local) if args.routed or args.routed_only else None
        floor_figures = floor(guest, args.repeat, local, args.base) if args.floor or args.floor_only else None
    finally:
        if own_lab:
            subprocess.run([str(LAB), "--lab-dir", str(lab_dir), "down"], check=False)

    print(f"\ngre_tunnel on a lab guest ({host}), median of {args.repeat}; ping baseline {baseline:.2f} s")
    if routed_row is not None:
        print_routed(routed_row, baseline)
    if floor_figures is not None:
        print_floor(floor_figures, args.repeat)
    if not sizes:
        return 0
    print(f"{'tunnels':>8} {'apply s':>8} {'net s':>7} {'ip':>4} {'unchanged s':>12} {'net s':>7} {'ip':>4}")
    for size, row in rows.items():
        print(
            f"{size:>8} {row['apply']:>8.2f} {row['apply'] - baseline:>7.2f} {row['apply_ip']:>4} "
            f"{row['unchanged']:>12.2f} {row['unchanged'] - baseline:>7.2f} {row['unchanged_ip']:>4}"
        )
    first, last = rows[sizes[0]], rows[sizes[-1]]
    ratio = last["apply"] / first["apply"]
    net = (last["apply"] - baseline) / max(first["apply"] - baseline, 0.01)
    print(f"apply {sizes[-1]} / apply {sizes[0]}: {ratio:.2f}x (target < 3x); net of baseline {net:.2f}x")
    print(f"ip processes in an unchanged run: at most {max(r['unchanged_ip'] for r in rows.values())} (target <= 2)")
    if quiet is not None:
        print("\ndiagnostic, not the target: the same applies with the guest's systemd-udevd stopped")
        print(f"{'tunnels':>8} {'apply s':>8} {'net s':>7}")
        for size, row in quiet.items():
            print(f"{size:>8} {row['apply']:>8.2f} {row['apply'] - baseline:>7.2f}")
        print(
            f"apply {sizes[-1]} / apply {sizes[0]} with udev stopped: {quiet[sizes[-1]]['apply'] / quiet[sizes[0]]['apply']:.2f}x"
        )
    return 0


def print_routed(row: dict[str, float], baseline: float) -> None:
    routes = ROUTED_TUNNELS * ROUTES_PER_TUNNEL
    print(
        f"routed: {ROUTED_TUNNELS} tunnels, {routes} routes in one invocation ({int(row['batch_lines'])} batch lines)"
    )
    print(f"{'run':>10} {'task s':>7} {'net s':>6} {'ip':>3} {'floor s':>8}")
    for label in ("apply", "unchanged"):
        print(
            f"{label:>10} {row[label]:>7.2f} {row[label] - baseline:>6.2f} {int(row[label + '_ip']):>3} "
            f"{row['floor_' + label]:>8.3f}"
        )
    print(
        f"ip processes: {int(row['apply_ip'])} applying, {int(row['unchanged_ip'])} unchanged (target: 2 and 1); "
        "floor: the module's own read and batch replayed by hand on the guest"
    )


if __name__ == "__main__":
    sys.exit(main())
