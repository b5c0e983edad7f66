"""A lab of user-mode-linux guests: network namespace, guests, inventory, and teardown."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import image, uml
from .topology import Host, Topology

RELAY = Path(__file__).resolve().parent / "relay.py"


class LabError(RuntimeError):
    """The lab could not do what it was asked; the message says what and where."""


MGMT_SLOTS = range(1, 200)


def mgmt_link(slot: int, index: int) -> tuple[str, str]:
    """Host INDEX's management link, as (namespace end, guest end) with their /30 prefix.

    Each guest has a /30 of its own, so guests never reach each other over management, only over
    the underlay segments. Each lab draws its own SLOT of 169.254.0.0/16, so two labs (or an ssh
    master left over from an earlier lab) never share a management address.
    """
    network = ipaddress.ip_network(f"169.254.{slot}.0/30")
    base = int(network.network_address) + 4 * index
    return f"{ipaddress.ip_address(base + 1)}/30", f"{ipaddress.ip_address(base + 2)}/30"


def veth(end: str, *configure: str) -> list[str]:
    """`ip -batch` lines of a veth pair: END stays in the namespace, set up by the lines CONFIGURE; ENDg, up, goes
    to a guest."""
    return [f"link add {end} type veth peer name {end}g", *configure, f"link set {end}g up"]


@dataclass
class Lab:
    directory: Path

    def __post_init__(self) -> None:
        # The lab's files in its directory, besides the guests' disks and logs.
        self.state_file = self.directory / "state.json"
        self.inventory = self.directory / "inventory.yml"
        self.ssh_config = self.directory / "ssh_config"
        self.key = self.directory / "id_ed25519"

    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None

    def running(self) -> bool:
        state = self.state()
        return bool(state) and uml.alive(state["holder"]["pid"], state["holder"]["started"])

    # -- the network namespace ------------------------------------------------------------

    def _nsenter(self, holder: int) -> list[str]:
        return ["nsenter", "-t", str(holder), "-U", "-n", "--preserve-credentials", "--"]

    def _start_holder(self) -> dict[str, int]:
        """A process whose only job is to hold the lab's user and network namespaces."""
        process = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--net", "--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # it outlives this command: it must not hold our output open
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.readlink(f"/proc/{process.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                return {"pid": process.pid, "started": uml.start_time(process.pid) or 0}
            if process.poll() is not None:
                break
            time.sleep(0.02)
        raise LabError("could not create a user and network namespace (unshare --user --net failed)")

    def _wire(self, holder: int, topology: Topology, slot: int) -> dict[str, list[str]]:
        """Create every bridge and veth in one `ip -batch`; return each host's guest-side NICs."""
        segments = {name: f"s{i}" for i, name in enumerate(topology.segments, 1)}
        batch = [f"link add {bridge} type bridge" for bridge in segments.values()]
        batch += [f"link set {bridge} up" for bridge in segments.values()]
        nics: dict[str, list[str]] = {}
        for index, host in enumerate(topology.hosts, 1):
            mgmt = f"m{index}"
            batch += veth(mgmt, f"address add {mgmt_link(slot, index)[0]} dev {mgmt}", f"link set {mgmt} up")
            nics[host.name] = [f"{mgmt}g"]
            for number, nic in enumerate(host.nics, 1):
                port = f"u{index}n{number}"
                batch += veth(port, f"link set {port} master {segments[nic.segment]} up")
                nics[host.name].append(f"{port}g")
        script = (
            "set -e; ip link set lo up; "
            # The namespace itself stays silent: no IPv6 chatter on the lab's wires, no forwarding.
            "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; "
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
            "ip -batch -"
        )
        result = subprocess.run(
            [*self._nsenter(holder), "sh", "-c", script],
            input="\n".join(batch) + "\n",
            text=True,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"could not wire the lab's network: {result.stderr.strip()}")
        return nics

    # -- guests ---------------------------------------------------------------------------

    def _kernel_command(self, lab_id: str, host: Host, mgmt: str, nics: list[str], base: Path, tmp: Path) -> list[str]:
        key = base64.b64encode(Path(f"{self.key}.pub").read_bytes()).decode()
        command = [
            uml.UML_BINARY,
            f"mem={host.memory}M",
            f"umid={lab_id}-{host.name}",
            f"uml_dir={tmp}",
            f"ubd0={self.directory / (host.name + '.cow')},{base}",
            "root=/dev/ubda",
            "rw",
            "con=null",
            "con0=null,fd:1",
            "ssl=null",
            f"lab.host={host.name}",
            f"lab.key={key}",
            f"lab.addr=eth0,{mgmt}",
        ]
        for number, device in enumerate(nics):
            command += [f"vec{number}:transport=raw,ifname={device},gro=1", f"lab.nic={number},eth{number}"]
        command += [f"lab.addr=eth{n},{nic.address}" for n, nic in enumerate(host.nics, 1)]
        command += [f"lab.mtu=eth{n},{nic.mtu}" for n, nic in enumerate(host.nics, 1) if nic.mtu is not None]
        for nat in host.nat:
            # The router answers for the public address on the segment that holds it (a /32, so
            # its own address stays the primary one), and maps it 1:1 to the private address.
            outer = next(n for n, nic in enumerate(host.nics, 1) if nat.public in nic.address.network)
            command += [f"lab.addr=eth{outer},{nat.public}/32", f"lab.nat={nat.public},{nat.private}"]
        if host.gateway:
            command.append(f"lab.gw={host.gateway}")
        command += [f"lab.route={to},{via}" for to, via in host.routes]
        if host.router:
            command.append("lab.forward=1")
        return command

    def _wait_for_ssh(self, holder: int, hosts: dict[str, str], timeout: float) -> dict[str, float]:
        by_address = {address: name for name, address in hosts.items()}
        result = subprocess.run(
            [*self._nsenter(holder), sys.executable, str(RELAY), "--wait", str(timeout), *hosts.values()],
            capture_output=True,
            text=True,
            check=False,
        )
        ready = {by_address[line.split()[0]]: float(line.split()[1]) for line in result.stdout.splitlines()}
        missing = sorted(set(hosts) - set(ready))
        if missing:
            logs = ", ".join(str(self.directory / "logs" / f"{name}.log") for name in missing)
            raise LabError(f"no ssh from {', '.join(missing)} within {timeout:.0f} s; console logs: {logs}")
        return ready

    def _write_access(self, holder: int, topology: Topology, addresses: dict[str, str], tmp: Path) -> None:
        proxy = " ".join([*self._nsenter(holder), sys.executable, str(RELAY), "%h", "%p"])
        self.ssh_config.write_text(
            "# Written by tests/lab: reaches the lab's guests inside its network namespace.\n"
            "Host *\n"
            "  User root\n"
            f"  IdentityFile {self.key}\n"
            "  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n"
            # A guest that goes away must not leave a connection (or a shared master) hanging.
            "  ServerAliveInterval 5\n"
            "  ServerAliveCountMax 3\n"
            f"  ProxyCommand {proxy}\n"
        )
        hosts: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        for host in topology.hosts:
            underlay = [
                {"device": f"eth{n}", "segment": nic.segment, "address": str(nic.address), "mtu": nic.mtu or 1500}
                for n, nic in enumerate(host.nics, 1)
            ]
            hosts[host.name] = {
                "ansible_host": addresses[host.name],
                "lab_underlay": underlay,
                "lab_address": str(host.nics[0].address.ip),
                "lab_public_address": topology.public_address(host),
                "lab_release": host.release,
                **host.vars,
            }
            for group in (*host.groups, "lab_routers" if host.router else "lab_guests"):
                groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = None
        inventory = {
            "all": {
                "vars": {
                    "ansible_user": "root",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "ansible_ssh_private_key_file": str(self.key),
                    "ansible_ssh_common_args": f"-F {self.ssh_config}",
                    "ansible_pipelining": True,
                    # Each lab's ssh masters apart from any other's, on a path short enough
                    # for a unix socket.
                    "ansible_control_path_dir": str(Path(tmp) / "cp"),
                },
                "hosts": hosts,
                "children": groups,
            }
        }
        self.inventory.write_text(
            f"# Written by tests/lab for topology {topology.name}; rewritten at every 'up'.\n"
            + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False)
        )

    def up(self, topology: Topology, timeout: float = 240.0) -> dict[str, float]:
        """Boot every host of the topology; return the time each step took."""
        if self.running():
            raise LabError(f"a lab is already up in {self.directory}; run 'down' first")
        self.down(quiet=True)
        timings: dict[str, float] = {}
        started = time.monotonic()
        # One image per release and package set the hosts ask for (each cached by its recipe).
        images = {
            (release, packages): image.build(
                release=release, packages=packages, container_rootfs=topology.container_rootfs
            )
            for release, packages in topology.images
        }
        timings["image"] = time.monotonic() - started

        step = time.monotonic()
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "linuxnet-gre-lab", "-f", str(self.key)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        tmp = Path(tempfile.mkdtemp(prefix="gre-lab-", dir="/tmp"))  # short paths: unix sockets live here
        holder = self._start_holder()
        lab_id = os.urandom(3).hex()
        slot = random.choice(MGMT_SLOTS)
        state: dict[str, Any] = {"topology": topology.name, "holder": holder, "tmp": str(tmp), "hosts": {}}
        self.state_file.write_text(json.dumps(state, indent=2))
        nics = self._wire(holder["pid"], topology, slot)
        timings["network"] = time.monotonic() - step

        step = time.monotonic()
        addresses = {}
        environment = uml.guest_environment(image.cache_dir())
        for index, host in enumerate(topology.hosts, 1):
            mgmt = mgmt_link(slot, index)[1]
            base = images[(host.release, host.packages)]
            command = self._kernel_command(lab_id, host, mgmt, nics[host.name], base, tmp)
            process = uml.boot(
                [*self._nsenter(holder["pid"]), *command],
                self.directory / "logs" / f"{host.name}.log",
                tmp,
                environment,
            )
            addresses[host.name] = str(ipaddress.ip_interface(mgmt).ip)
            state["hosts"][host.name] = {
                "pid": process.pid,
                "started": uml.start_time(process.pid) or 0,
                "address": addresses[host.name],
            }
        self.state_file.write_text(json.dumps(state, indent=2))
        self._write_access(holder["pid"], topology, addresses, tmp)
        ready = self._wait_for_ssh(holder["pid"], addresses, timeout)
        for name, seconds in ready.items():
            timings[f"ssh {name}"] = seconds
        timings["boot"] = time.monotonic() - step
        timings["total"] = time.monotonic() - started
        return timings

    def down(self, quiet: bool = False) -> bool:
        """Stop what this lab started (by PID and start time) and remove its disks; keep logs."""
        state = self.state()
        if state is None:
            if not quiet:
                print(f"lab: nothing is up in {self.directory}")
            return False
        uml.stop([(host["pid"], host["started"]) for host in state["hosts"].values()])
        uml.stop([(state["holder"]["pid"], state["holder"]["started"])])
        for name in state["hosts"]:
            (self.directory / f"{name}.cow").unlink(missing_ok=True)
        shutil.rmtree(state["tmp"], ignore_errors=True)
        for path in (self.state_file, self.inventory, self.ssh_config, self.key, Path(f"{self.key}.pub")):
            path.unlink(missing_ok=True)
        return True

    def status(self) -> list[dict[str, Any]]:
        state = self.state()
        if state is None:
            return []
        rows = []
        for name, host in state["hosts"].items():
            up = uml.alive(host["pid"], host["started"])
            rows.append(
                {
                    "host": name,
                    "state": "running" if up else "stopped",
                    "pid": host["pid"],
                    "address": host["address"],
                    "memory_mib": round(uml.memory_kib(host["pid"]) / 1024) if up else 0,
                }
            )
        return rows

    def ssh_command(self, host: str, command: list[str]) -> list[str]:
        state = self.state()
        if state is None or host not in state["hosts"]:
            known = ", ".join(state["hosts"]) if state else "none: the lab is down"
            raise LabError(f"no host {host!r} in the lab at {self.directory} (hosts: {known})")
        return ["ssh", "-F", str(self.ssh_config), state["hosts"][host]["address"], *command]
