"""What user-mode-linux guests need: the kernel, its modules, and the environment of their processes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
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
