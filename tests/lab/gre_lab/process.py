"""The processes a lab starts (namespace holder, guests of every kind): start, identify, measure, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def spawn(command: list[str], log: Path, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a guest in a session of its own, its console (stdout and stderr) appended to LOG, with ENVIRONMENT
    over ours; the caller records its pid and start time."""
    with open(log, "ab") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, **environment),
        )


def start_time(pid: int) -> int | None:
    """The kernel's start time of a process (clock ticks since boot): a PID's identity, with the PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(pid: int, started: int) -> bool:
    """Whether the process started as (PID, STARTED) still runs: not if it ended, even while its parent (`up`,
    for the guests it starts) has not reaped it yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and int(fields[19]) == started


def stop(processes: list[tuple[int, int]], grace: float = 3.0) -> None:
    """End processes this lab started, each with its process group, by (PID, start time): never a
    reused PID. All are asked at once; whatever still runs after GRACE seconds is killed."""
    running = [(pid, started) for pid, started in processes if alive(pid, started)]
    for pid, _started in running:
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(*process) for process in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, started in running:
        if alive(pid, started):
            os.killpg(pid, signal.SIGKILL)


def memory_kib(pid: int) -> int:
    """Proportional memory of a guest: the PSS of every process in its session (UML runs several)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getsid(int(proc.name)) != pid:
                continue
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total
