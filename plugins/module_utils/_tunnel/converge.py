# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_tunnel's run — check input, read the kernel once, plan, apply once.

Everything that can fail is decided before the host changes: the input, what the kernel's interfaces
allow, and the persistence (prepared from the plan's settled tunnels, the ones the run leaves).

One exception to "once": a switch away from networkd persistence releases the tunnels that stay
(persist.wait_released), and networkd may drop what it configured on them when it reloads, after the
batch. The run then waits until networkd has let go of them, reads the kernel again and puts back
what is missing with one more batch (``restore`` in the changes). Check mode cannot know what
networkd will drop (``networkctl reload`` drops the addresses, a restart of networkd keeps them, and
other systemd versions may differ): it lists the released tunnels (``persisted.released``) and no
restore, and its ``changed`` is exact all the same, since a switch changes the boot files.
"""

from __future__ import annotations

import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.changes import (
    Change,
    Plan,
    plan,
    plan_ports,
    plan_routes,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import wanted_routes, wanted_tunnels
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import Kernel
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import (
    FouPort,
    Interface,
    Route,
    Tunnel,
    absent_dict,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.persist import (
    Files,
    Persistence,
    boot_fou_ports,
    prepare,
    wait_released,
)


def converge(
    kernel: Kernel,
    files: Files,
    params: dict[str, t.Any],
    check_mode: bool,
    diff: bool,
    warn: t.Callable[[str], None],
) -> dict[str, t.Any]:
    """Make the host's GRE tunnels (and with ``persist``, their boot files) what ``params`` say. Raises GreError.

    ``warn`` gets what the user should hear of although the run succeeds (``persist=auto`` on a host without systemd;
    a released tunnel that networkd configures from a ``.network`` file of someone else's).
    """
    wanted = wanted_tunnels(params)
    routes = wanted_routes(params, wanted)
    ownership = PortOwnership(kernel, files)
    # The FOU receive ports are read where this run may need or delete one: a host without GRE in UDP reads as before.
    encap = any(isinstance(w, Tunnel) and w.encap is not None for w in wanted) or bool(ownership.owned)
    interfaces, found, ports = kernel.read_all(routes is not None, fou=encap)
    ownership.found = set(ports or [])
    pending = kernel.pending_creations()
    leftovers = interrupted(interfaces, pending)
    todo = plan(
        wanted,
        {n: i for n, i in interfaces.items() if n not in leftovers},
        purge=params["purge"],
        adopt=params["adopt"],
    )
    redo_interrupted(todo, leftovers, interfaces)
    if routes is not None:
        plan_routes(todo, routes, found)
    plan_ports(todo, interfaces, ports, ownership.owned)
    persist = params.get("persist")
    persistence = None
    if persist is not None:
        # Decided before the kernel changes (a persistence that cannot work fails the run whole), from the
        # tunnels as the run leaves them: one whose MTU is not given keeps the MTU it has at boot.
        omitted = {w.name for w in wanted if isinstance(w, Tunnel) and w.mtu is None}
        # The routes of the tunnels that give them; a tunnel without the option is persisted without routes.
        persistence = prepare(files, persist, todo.settled, omitted, routes)
        for warning in persistence.warnings:
            warn(warning)
    commands = []
    for name in todo.modules:
        if not kernel.module_loaded(name):
            kernel.load_module(name, check_mode)
            commands.append(f"modprobe {name}")
    steps = todo.steps
    if steps and not check_mode:
        if todo.ports_added:  # noted first: a batch cut short leaves no port of this module's unaccounted for
            ownership.note(todo.ports_added, [])
        run_batch(kernel, steps)
    if (steps or pending) and not check_mode:
        kernel.clear_creations()
    if not check_mode:
        ownership.settle(todo.ports_added, todo.ports_removed)
    result: dict[str, t.Any] = {
        "changed": bool(steps),
        "tunnels": todo.tunnels,
        "changes": [change.as_dict() for change in todo.changes],
        "commands": commands + [f"ip {line}" for _name, line in steps],
        "fou_ports": {
            "added": [port.as_dict() for port in todo.ports_added],
            "removed": [port.as_dict() for port in todo.ports_removed],
        },
    }
    if diff:
        result["diff"] = {"before": todo.before, "after": todo.after}
    if persistence is not None:
        if persistence.changed and not check_mode:
            persistence.apply(files)
            if persistence.released:
                restored = restore_released(kernel, files, persistence, todo.settled, routes, warn)
                result["changes"] += [restore_change(change).as_dict() for change in restored.changes]
                result["commands"] += [f"ip {line}" for _name, line in restored.steps]
        result["changed"] = result["changed"] or persistence.changed
        result["persisted"] = persistence.as_dict()
        if diff and persistence.diff:
            result["diff"] = [result["diff"], *persistence.diff]
    return result


class PortOwnership:
    """Which FOU receive ports are this module's (the kernel has no mark on them): those it noted when it created
    them (Kernel.fou_file), and those its unit's batch file creates at boot (persist.boot_fou_ports), which the
    note, on tmpfs, no longer holds after a reboot. Two reads of files, no process."""

    def __init__(self, kernel: Kernel, files: Files) -> None:
        self._kernel = kernel
        self.noted = set(kernel.owned_ports())
        self.owned = self.noted | boot_fou_ports(files)
        self.found: set[FouPort] = set()  # the kernel's ports, once read

    def note(self, added: list[FouPort], removed: list[FouPort]) -> None:
        """Write down this module's ports as the kernel has them after adding and removing these."""
        after = (self.found - set(removed)) | set(added)
        wanted = (self.owned | set(added)) & after
        if wanted != self.noted:
            self._kernel.record_ports(wanted)
            self.noted = wanted

    def settle(self, added: list[FouPort], removed: list[FouPort]) -> None:
        """After the batch: the note as the kernel now is (also when nothing changed: the ports of the boot files)."""
        if self.found or added or self.noted:
            self.note(added, removed)


def interrupted(interfaces: dict[str, Interface], pending: list[str]) -> set[str]:
    """GRE interfaces that a cut-short batch of this module created and did not mark as managed yet."""
    return {name for name in pending if name in interfaces and interfaces[name].is_gre and not interfaces[name].managed}


def redo_interrupted(todo: Plan, leftovers: set[str], interfaces: dict[str, Interface]) -> None:
    """Delete what a cut-short batch left half-made, first: the plan then creates it (if still wanted) whole."""
    for name in sorted(leftovers, reverse=True):
        todo.deletes.insert(0, (name, f"link del dev {name}"))
        todo.before[name] = t.cast(Tunnel, interfaces[name].tunnel).as_dict()
        todo.after.setdefault(name, absent_dict(name))
        if not any(change.name == name for change in todo.changes):
            todo.changes.append(Change(name, "delete", ("interrupted",)))
        else:
            todo.changes[:] = [
                Change(c.name, "recreate", ("interrupted",)) if c.name == name else c for c in todo.changes
            ]


def run_batch(kernel: Kernel, steps: list[tuple[str, str]]) -> None:
    """One ip -batch of a plan's steps, the interfaces it creates noted first (Kernel.record_creations)."""
    creations = sorted({name for name, line in steps if line.startswith("link add ")})
    if creations:
        kernel.record_creations(creations)
    kernel.apply([line for _name, line in steps], [name for name, _line in steps])


def restore_released(
    kernel: Kernel,
    files: Files,
    persistence: Persistence,
    settled: list[Tunnel],
    routes: dict[str, tuple[Route, ...]] | None,
    warn: t.Callable[[str], None],
) -> Plan:
    """Put back what networkd dropped from the tunnels it let go of: wait for it, read again, one batch if needed.

    The released tunnels are planned again as the run left them (``settled``: their MTU too, where the
    user gave none), and their routes where the run gives them (networkd drops the routes of its
    ``[Route]`` sections with the addresses), against a fresh read; nothing else is looked at (no purge).
    """
    for warning in wait_released(files, persistence):
        warn(warning)
    released = set(persistence.released)
    kept = {name: wanted for name, wanted in (routes or {}).items() if name in released}
    if kept:
        interfaces, found = kernel.read_with_routes()
    else:
        interfaces, found = kernel.read(), []
    again = plan([tunnel for tunnel in settled if tunnel.name in released], interfaces, purge=False)
    if kept:
        plan_routes(again, kept, found)
    if again.steps:
        run_batch(kernel, again.steps)
        kernel.clear_creations()
    return again


def restore_change(change: Change) -> Change:
    """A change of the second batch: ``restore`` with the fields put back (another action, such as a tunnel
    deleted meanwhile and created again, is reported as it is)."""
    return Change(change.name, "restore", change.fields) if change.action == "update" else change
