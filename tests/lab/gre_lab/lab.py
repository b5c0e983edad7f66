"""A lab of guests (user-mode-linux or QEMU): network namespace, guests, inventory, and teardown."""

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

from . import image, process, qemu, uml
from .topology import Host, Topology

RELAY = Path(__file__).resolve().parent / "relay.py"


class LabError(RuntimeError):
    """The lab could not do what it was asked; the message says what and where."""


MGMT_SLOTS = range(1, 200)
# How long `up` waits for a guest's sshd, by kind, unless told: a QEMU guest (TCG) boots two to three
# times slower than a UML one, the more so beside other guests (README.md, "QEMU hosts").
SSH_TIMEOUT = {"uml": 240.0, "qemu": 480.0}


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


def tap(name: str, *configure: str) -> list[str]:
    """`ip -batch` lines of a tap device NAME for a QEMU guest, set up by the lines CONFIGURE."""
    return [f"tuntap add {name} mode tap", *configure]


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
        return state is not None and process.alive(state["holder"]["pid"], state["holder"]["started"])

    # -- the network namespace ------------------------------------------------------------

    def _nsenter(self, holder: int) -> list[str]:
        return ["nsenter", "-t", str(holder), "-U", "-n", "--preserve-credentials", "--"]

    def _start_holder(self) -> dict[str, int]:
        """A process whose only job is to hold the lab's user and network namespaces."""
        holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--net", "--", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # it outlives this command: it must not hold our output open
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                return {"pid": holder.pid, "started": process.start_time(holder.pid) or 0}
            if holder.poll() is not None:
                break
            time.sleep(0.02)
        raise LabError("could not create a user and network namespace (unshare --user --net failed)")

    def _wire(self, holder: int, topology: Topology, slot: int) -> dict[str, list[str]]:
        """Create every bridge, veth (UML hosts) and tap (QEMU hosts) in one `ip -batch`; return the devices each
        host's guest attaches to, management first."""
        segments = {name: f"s{i}" for i, name in enumerate(topology.segments, 1)}
        batch = [f"link add {bridge} type bridge" for bridge in segments.values()]
        batch += [f"link set {bridge} up" for bridge in segments.values()]
        nics: dict[str, list[str]] = {}
        for index, host in enumerate(topology.hosts, 1):
            # A UML guest's NIC is the far end (NAMEg) of a veth whose NAME is in the namespace; a QEMU
            # guest's is a tap NAME, which is its namespace end as well.
            link, guest_end = (tap, "") if host.kind == "qemu" else (veth, "g")
            mgmt = f"m{index}"
            batch += link(mgmt, f"address add {mgmt_link(slot, index)[0]} dev {mgmt}", f"link set {mgmt} up")
            nics[host.name] = [f"{mgmt}{guest_end}"]
            for number, nic in enumerate(host.nics, 1):
                port = f"u{index}n{number}"
                batch += link(port, f"link set {port} master {segments[nic.segment]} up")
                nics[host.name].append(f"{port}{guest_end}")
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

    def _lab_parameters(self, host: Host, mgmt: str) -> list[str]:
        """The kernel parameters lab-setup configures HOST from at every boot (guest/lab-setup), whatever boots it:
        eth0 is management (address MGMT), eth1... the underlay NICs."""
        key = base64.b64encode(Path(f"{self.key}.pub").read_bytes()).decode()
        parameters = [f"lab.host={host.name}", f"lab.key={key}", f"lab.addr=eth0,{mgmt}"]
        parameters += [f"lab.addr=eth{n},{nic.address}" for n, nic in enumerate(host.nics, 1)]
        parameters += [f"lab.mtu=eth{n},{nic.mtu}" for n, nic in enumerate(host.nics, 1) if nic.mtu is not None]
        for nat in host.nat:
            # The router answers for the public address on the segment that holds it (a /32, so
            # its own address stays the primary one), and maps it 1:1 to the private address.
            outer = next(n for n, nic in enumerate(host.nics, 1) if nat.public in nic.address.network)
            parameters += [f"lab.addr=eth{outer},{nat.public}/32", f"lab.nat={nat.public},{nat.private}"]
        if host.gateway:
            parameters.append(f"lab.gw={host.gateway}")
        parameters += [f"lab.route={to},{via}" for to, via in host.routes]
        if host.router:
            parameters.append("lab.forward=1")
        return parameters

    def _uml_command(self, lab_id: str, host: Host, mgmt: str, nics: list[str], base: Path, tmp: Path) -> list[str]:
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
        ]
        for number, device in enumerate(nics):
            # UML names its NICs vec0, vec1...: lab-setup renames them eth0, eth1...
            command += [f"vec{number}:transport=raw,ifname={device},gro=1", f"lab.nic={number},eth{number}"]
        return command + self._lab_parameters(host, mgmt)

    def _qemu_command(self, index: int, host: Host, mgmt: str, nics: list[str], base: Path) -> list[str]:
        kernel, initrd = image.boot_files(base)
        overlay = self.directory / f"{host.name}.qcow2"
        qemu.create_overlay(base, overlay)
        return qemu.command(
            memory=host.memory,
            kernel=kernel,
            initrd=initrd,
            overlay=overlay,
            taps=nics,
            host_index=index,
            parameters=self._lab_parameters(host, mgmt),
        )

    def _wait_for_ssh(self, holder: int, hosts: dict[str, str], timeouts: dict[str, float]) -> dict[str, float]:
        """Wait for each of HOSTS (name: management address) to greet on ssh, each for at most its TIMEOUTS
        seconds; return how long each took."""
        by_address = {address: name for name, address in hosts.items()}
        waiting = subprocess.Popen(
            [
                *self._nsenter(holder),
                sys.executable,
                str(RELAY),
                "--wait",
                str(max(timeouts.values())),
                *(f"{address}={timeouts[name]}" for name, address in hosts.items()),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        while True:
            try:
                output = waiting.communicate(timeout=1)[0]
                break
            except subprocess.TimeoutExpired:
                pass
            # A guest whose process ended (QEMU refusing an option, a kernel panic) will never answer:
            # say so now rather than after the timeout.
            ended = sorted(name for name in hosts if not self._guest_alive(name))
            if ended:
                waiting.kill()
                waiting.communicate()
                logs = ", ".join(str(self.directory / "logs" / f"{name}.log") for name in ended)
                raise LabError(f"{', '.join(ended)} stopped while booting; console logs: {logs}")
        ready = {by_address[line.split()[0]]: float(line.split()[1]) for line in output.splitlines()}
        missing = sorted(set(hosts) - set(ready))
        if missing:
            waited = ", ".join(f"{name} within {timeouts[name]:.0f} s" for name in missing)
            logs = ", ".join(str(self.directory / "logs" / f"{name}.log") for name in missing)
            raise LabError(f"no ssh from {waited}; console logs: {logs}")
        return ready

    def _guest_alive(self, name: str) -> bool:
        state = self.state()
        return state is not None and process.alive(state["hosts"][name]["pid"], state["hosts"][name]["started"])

    def _write_access(self, holder: int, topology: Topology, addresses: dict[str, str], tmp: Path) -> None:
        proxy = " ".join([*self._nsenter(holder), sys.executable, str(RELAY), "%h", "%p"])
        masters = tmp / "cp"  # the ssh masters' sockets (ansible_ssh_common_args)
        masters.mkdir(exist_ok=True)
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
                "lab_kind": host.kind,
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
                    # Each lab's ssh masters apart from any other's, on a path short enough for a unix socket,
                    # for Ansible and for testinfra alike: testinfra ignores ansible_control_path_dir and shares
                    # ~/.ansible/cp/HOST-PORT-USER between labs, so that two labs that drew the same management
                    # slot ran each other's commands (CI: the reboot lab's hostb answered as the faults lab's
                    # node2). Given here, it is the path of both (neither adds its own).
                    "ansible_ssh_common_args": f"-F {self.ssh_config} -o ControlPath={masters}/%C",
                    "ansible_pipelining": True,
                    # A guest's sshd that misses a connection (exit 255: "Data could not be sent to remote
                    # host") while two labs share the machine's two cores gets asked again, up to 3 times,
                    # as Ansible's ssh plugin does (reconnection_retries); a host that is really down stays so.
                    "ansible_ssh_retries": 3,
                },
                "hosts": hosts,
                "children": groups,
            }
        }
        self.inventory.write_text(
            f"# Written by tests/lab for topology {topology.name}; rewritten at every 'up'.\n"
            + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False)
        )

    def up(self, topology: Topology, timeout: float | None = None) -> dict[str, float]:
        """Boot every host of the topology; return the time each step took. Each host has TIMEOUT seconds to
        answer on ssh, by default its kind's SSH_TIMEOUT."""
        if self.running():
            raise LabError(f"a lab is already up in {self.directory}; run 'down' first")
        if any(host.kind == "qemu" for host in topology.hosts):
            qemu.check()
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
        environment = {"TMPDIR": str(tmp)}
        # The AMX shim (uml.guest_environment) is built only when a UML host needs it.
        uml_environment = (
            {**environment, **uml.guest_environment(image.cache_dir())}
            if any(host.kind == "uml" for host in topology.hosts)
            else environment
        )
        for index, host in enumerate(topology.hosts, 1):
            mgmt = mgmt_link(slot, index)[1]
            base = images[(host.release, host.packages)]
            if host.kind == "qemu":
                command = self._qemu_command(index, host, mgmt, nics[host.name], base)
            else:
                command = self._uml_command(lab_id, host, mgmt, nics[host.name], base, tmp)
            guest = process.spawn(
                [*self._nsenter(holder["pid"]), *command],
                self.directory / "logs" / f"{host.name}.log",
                environment if host.kind == "qemu" else uml_environment,
            )
            addresses[host.name] = str(ipaddress.ip_interface(mgmt).ip)
            state["hosts"][host.name] = {
                "kind": host.kind,
                "pid": guest.pid,
                "started": process.start_time(guest.pid) or 0,
                "address": addresses[host.name],
            }
            # Written at once: a failure while booting the next host must leave this one to 'down'.
            self.state_file.write_text(json.dumps(state, indent=2))
        self._write_access(holder["pid"], topology, addresses, tmp)
        timeouts = {host.name: timeout or SSH_TIMEOUT[host.kind] for host in topology.hosts}
        ready = self._wait_for_ssh(holder["pid"], addresses, timeouts)
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
        process.stop([(host["pid"], host["started"]) for host in state["hosts"].values()])
        process.stop([(state["holder"]["pid"], state["holder"]["started"])])
        for name in state["hosts"]:
            # A UML guest's copy-on-write layer, or a QEMU guest's overlay.
            (self.directory / f"{name}.cow").unlink(missing_ok=True)
            (self.directory / f"{name}.qcow2").unlink(missing_ok=True)
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
            up = process.alive(host["pid"], host["started"])
            rows.append(
                {
                    "host": name,
                    "kind": host.get("kind", "uml"),
                    "state": "running" if up else "stopped",
                    "pid": host["pid"],
                    "address": host["address"],
                    "memory_mib": round(process.memory_kib(host["pid"]) / 1024) if up else 0,
                }
            )
        return rows

    def ssh_command(self, host: str, command: list[str]) -> list[str]:
        state = self.state()
        if state is None or host not in state["hosts"]:
            known = ", ".join(state["hosts"]) if state else "none: the lab is down"
            raise LabError(f"no host {host!r} in the lab at {self.directory} (hosts: {known})")
        return ["ssh", "-F", str(self.ssh_config), state["hosts"][host]["address"], *command]
