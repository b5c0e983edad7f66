"""Pass molecule's output through and end it with the wall time of each phase.

Usage: molecule test -s NAME 2>&1 | python tests/utils/molecule_phases.py
Molecule prints "SCENARIO ➜ ACTION: Executing" when a phase starts and "...: Executed: RESULT"
when it ends; this times the span between the two, as seen from here.
"""

from __future__ import annotations

import re
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "INFO     lab ➜ create: Executing" in colour, "INFO     [lab > create] Executing" without.
PHASE = re.compile(r"^INFO\s+(?:\[(\S+) > (\S+)\]|(\S+) ➜ (\S+):) (Executing$|Executed: (.*)$)")


def main() -> int:
    started: dict[str, float] = {}
    rows: list[tuple[str, float, str]] = []
    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()
        match = PHASE.match(ANSI.sub("", line).strip())
        if not match:
            continue
        plain_scenario, plain_action, scenario, action, what, result = match.groups()
        scenario, action = plain_scenario or scenario, plain_action or action
        key = f"{scenario} {action}"
        if what == "Executing":
            started[key] = time.monotonic()
        elif key in started:
            rows.append((key, time.monotonic() - started.pop(key), result))
    if rows:
        print("\nmolecule phases:")
        for key, seconds, result in rows:
            print(f"  {key:<28} {seconds:7.1f} s  {result}")
        print(f"  {'total':<28} {sum(r[1] for r in rows):7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
