"""Starts user-mode-linux guests and tells whether the processes the lab started still run."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

UML_BINARY = "/usr/bin/linux.uml"
UML_MODULES = Path("/usr/lib/uml/modules")
XSTATE_SHIM = Path(__file__).resolve().with_name("xstate_shim.c")


def kernel_version() -> str:
    versions = sorted(p.name for p in UML_MODULES.iterdir()) if UML_MODULES.is_dir() else []
    if not versions or not os.access(UML_BINARY, os.X_OK):
        raise RuntimeError("user-mode-linux is not installed (Debian package user-mode-linux)")
    return versions[-1]


def guest_environment(cache: Path) -> dict[str, str]:
    """What a guest's UML process needs in its environment on this machine.

    On processors with AMX, Debian's UML kernel cannot restore its processes' FPU state and the
    guest dies at boot (errno 14, see xstate_shim.c): there it runs with the shim preloaded.
    """
    if not has_amx():
        return {}
    return {"LD_PRELOAD": str(xstate_shim(cache))}


def has_amx() -> bool:
    """Whether the processor has AMX tiles (Intel Sapphire Rapids and later), whose XSAVE area is ~11 KB."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return "amx_tile" in flags


def xstate_shim(cache: Path) -> Path:
    """xstate_shim.c compiled into the lab's cache, once per version of the source."""
    source = XSTATE_SHIM.read_bytes()
    target = cache / f"xstate-shim-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError(
            "this processor has AMX: the lab needs a C compiler (gcc) to build tests/lab/gre_lab/xstate_shim.c"
        )
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    result = subprocess.run(
        [compiler, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(partial), str(XSTATE_SHIM), "-ldl"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"could not build {XSTATE_SHIM}: {result.stderr.strip()}")
    partial.rename(target)
    return target


def start_time(pid: int) -> int | None:
    """The kernel's start time of a process (clock ticks since boot): a PID's identity, with the PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(pid: int, started: int) -> bool:
    return start_time(pid) == started


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


def boot(command: list[str], log: Path, tmpdir: Path, environment: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a guest in a session of its own, console to log; the caller records pid and start time.

    ENVIRONMENT is guest_environment()'s.
    """
    with open(log, "ab") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, TMPDIR=str(tmpdir), **environment),
        )
