"""The lab's command line: build, up, down, status, ssh, inventory."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from . import image, topology
from .lab import Lab, LabError

REPO = Path(__file__).resolve().parents[3]


def _print_timings(timings: dict[str, float]) -> None:
    for step, seconds in timings.items():
        print(f"lab: {step:<20} {seconds:6.1f} s", flush=True)


def build_topologies(topologies: list[topology.Topology], force: bool = False) -> None:
    """Build every image the TOPOLOGIES boot, each once, in the order they first appear: tests/run builds the
    molecule scenarios' images this way while its lint and matrix steps run, so that the labs find them cached."""
    done: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()
    for each in topologies:
        for release, packages in each.images:
            recipe = (release, packages, each.container_rootfs)
            if recipe not in done:
                done.add(recipe)
                image.build(force=force, release=release, packages=packages, container_rootfs=each.container_rootfs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab", description=__doc__)
    parser.add_argument(
        "--lab-dir",
        type=Path,
        default=Path(os.environ.get("LAB_DIR") or REPO / ".lab"),
        help="where this lab keeps its state, disks, key and inventory (default: $LAB_DIR or .lab)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="build the base image of a Debian release, or every image of topology files (cached by recipe)"
    )
    build.add_argument(
        "topologies",
        type=Path,
        nargs="*",
        metavar="TOPOLOGY",
        help="build the images these topologies' hosts boot, in their order, instead of the base image",
    )
    build.add_argument("--force", action="store_true", help="rebuild even when cached")
    build.add_argument(
        "--release",
        choices=topology.RELEASES,
        default=topology.DEFAULT_RELEASE,
        help=f"the Debian release (default: {topology.DEFAULT_RELEASE})",
    )
    up = commands.add_parser("up", help="boot the hosts of a topology file")
    up.add_argument("topology", type=Path)
    up.add_argument(
        "--timeout",
        type=float,
        help="seconds to wait for every host's ssh (default: 240 for a UML host, 480 for a QEMU host)",
    )
    up.add_argument("--inventory", type=Path, help="also copy the inventory here")
    commands.add_parser("down", help="stop the lab's processes and remove its disks")
    commands.add_parser("status", help="hosts, PIDs, memory")
    commands.add_parser("inventory", help="print the inventory's path")
    ssh = commands.add_parser("ssh", help="run a command on a host (or log in)")
    ssh.add_argument("host")
    ssh.add_argument("remote", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    lab = Lab(args.lab_dir.resolve())
    try:
        if args.command == "build" and args.topologies:
            build_topologies([topology.load(path) for path in args.topologies], force=args.force)
        elif args.command == "build":
            image.build(force=args.force, release=args.release)
        elif args.command == "up":
            timings = lab.up(topology.load(args.topology), timeout=args.timeout)
            if args.inventory:
                shutil.copyfile(lab.inventory, args.inventory)
            _print_timings(timings)
            print(f"lab: inventory {lab.inventory}")
        elif args.command == "down":
            if lab.down():
                print(f"lab: down ({lab.directory})")
        elif args.command == "status":
            rows = lab.status()
            if not rows:
                print(f"lab: nothing is up in {lab.directory}")
                return 1
            for row in rows:
                print("{host:<12} {kind:<5} {state:<8} pid {pid:<8} {address:<14} {memory_mib} MiB".format(**row))
            return 0 if all(row["state"] == "running" for row in rows) else 1
        elif args.command == "inventory":
            print(lab.inventory)
        elif args.command == "ssh":
            remote = args.remote[1:] if args.remote[:1] == ["--"] else args.remote
            command = lab.ssh_command(args.host, remote)
            os.execvp(command[0], command)
    except (LabError, topology.TopologyError, RuntimeError) as error:
        print(f"lab: error: {error}", file=sys.stderr)
        return 2
    return 0
