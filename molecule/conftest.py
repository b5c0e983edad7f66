"""Fixtures shared by every scenario's testinfra tests: any lab host, and any host's variables.

testinfra parametrizes `host` over testinfra_hosts; a test that needs two hosts at once (ping from
one, capture on the other) asks for them by name with `lab_host` instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> str:
    return request.config.option.ansible_inventory


@pytest.fixture(scope="session")
def lab_host(inventory: str) -> Callable[[str], Any]:
    hosts: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in hosts:
            hosts[name] = testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)
        return hosts[name]

    return get


@pytest.fixture(scope="session")
def hostvars(inventory: str) -> Callable[[str], dict[str, Any]]:
    runner = AnsibleRunner(inventory)
    return runner.get_variables


@pytest.fixture(scope="session")
def group(inventory: str) -> Callable[[str], list[str]]:
    runner = AnsibleRunner(inventory)
    return runner.get_hosts


MANAGED = "managed-by: linuxnet.gre"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[1]))


def playbook(name: str, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run playbooks/NAME.yml on the scenario's inventory as a user would; more -i, -e, --limit… in ``args``,
    more environment (Ansible settings) in ``env``."""
    command = [
        "ansible-playbook",
        str(PROJECT / "playbooks" / f"{name}.yml"),
        "-i",
        str(EPHEMERAL / "inventory"),
        *map(str, args),
    ]
    environment = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **(env or {}))
    return subprocess.run(command, capture_output=True, text=True, env=environment, check=False, timeout=600)


def recap(run: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of a run: each host's counts (ok, changed, unreachable, failed, …)."""
    rows = re.findall(r"^(\S+)\s+:\s+(.*)$", run.stdout.split("PLAY RECAP", 1)[-1], re.MULTILINE)
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)} for host, counts in rows}


@pytest.fixture(scope="session")
def gre_links(lab_host: Callable[[str], Any]) -> Callable[[str], dict[str, dict[str, Any]]]:
    """A host's GRE interfaces made by linuxnet.gre, read from its kernel: name -> settings.

    Each entry has local, remote, ttl, key (ikey, or None), up, and addresses (IPv4 and
    global IPv6, with prefix length).
    """

    def get(name: str) -> dict[str, dict[str, Any]]:
        links = json.loads(lab_host(name).check_output("ip -details -json address show"))
        result = {}
        for link in links:
            if link.get("ifalias") != MANAGED:
                continue
            info = link["linkinfo"]["info_data"]
            result[link["ifname"]] = {
                "local": info.get("local"),
                "remote": info.get("remote"),
                "ttl": info.get("ttl"),
                "key": info.get("ikey"),
                "up": "UP" in link["flags"],
                "addresses": [
                    f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a.get("scope") == "global"
                ],
            }
        return result

    return get


@pytest.fixture(scope="session")
def gre_capture(lab_host: Callable[[str], Any]) -> Callable[..., str]:
    """Capture GRE on a host's underlay NIC while an action runs: the seed's `tcpdump proto 47`.

    ``capture(receiver, nic, source, action)`` starts tcpdump for IP protocol 47 from ``source``
    on ``receiver``'s ``nic``, waits until it listens, calls ``action()``, and returns its output
    (with its closing counts: "N packets captured"). ``expression=`` captures that instead.
    """

    def capture(
        receiver: str, nic: str, source: str | None, action: Callable[[], None], expression: str | None = None
    ) -> str:
        host = lab_host(receiver)
        expression = expression or f"ip proto 47 and src host {source}"
        # Until the action is done, however long it takes to reach its host (a fixed 8 s once ended
        # before a slow first connection to a container sent anything); 60 s at most.
        host.run(
            f"rm -f /tmp/gre.cap; setsid timeout 60 tcpdump -l -n -i {nic} '{expression}' "
            "</dev/null >/tmp/gre.cap 2>&1 & echo $! >/tmp/gre.pid"
        )
        deadline = time.monotonic() + 5
        while "listening on" not in host.run("cat /tmp/gre.cap").stdout and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            action()
        finally:
            # SIGINT (timeout passes it on): tcpdump writes what it has and its closing counts.
            host.run("kill -INT $(cat /tmp/gre.pid)")
        deadline = time.monotonic() + 10
        while host.run("pgrep -x tcpdump").rc == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        return host.check_output("cat /tmp/gre.cap")

    return capture


def forget_neighbours(lab_host: Callable[[str], Any], hostvars: Callable[[str], dict[str, Any]], name: str) -> None:
    """Empty NAME's neighbour table on its underlay, before it sends to a host that may have rebooted since.

    A UML guest gets a new random MAC at each boot. A host not rebooted keeps its entry for the old one
    (STALE) and sends to it for some seconds: the target's NIC captures those frames (tcpdump is promiscuous)
    and its kernel drops them as for another host, before netfilter and IPsec see them (CI saw all of an
    intruder's packets go so, and neither the firewall's nor the kernel's drop counter move).
    """
    device = hostvars(name)["lab_underlay"][0]["device"]
    lab_host(name).check_output(f"ip neigh flush dev {device}")


def ping(host: Any, arguments: str) -> None:
    """``ping ARGUMENTS`` on a lab host: every echo must come back.

    A run that lost an echo runs once more and must lose none: on a loaded machine a guest now and then
    misses one (CI, two labs at once: 1 of 3 echoes through a QEMU guest's tunnel, 53 ms for the one before
    it); a path that is broken loses them in both runs.
    """
    result = host.run(f"ping {arguments}")
    if not (result.rc == 0 and " 0% packet loss" in result.stdout):
        result = host.run(f"ping {arguments}")
    assert result.rc == 0 and " 0% packet loss" in result.stdout, result.stdout + result.stderr


def inner(gre_links: Callable[[str], dict[str, dict[str, Any]]], owner: str, toward: str) -> str:
    """``owner``'s inner address on its tunnel ``gre-TOWARD``."""
    (address,) = gre_links(owner)[f"gre-{toward}"]["addresses"]
    return address.split("/")[0]


@pytest.fixture(scope="session")
def ping_through(lab_host: Callable[[str], Any]) -> Callable[[str, str, str], None]:
    """``ping_through(source, interface, address)``: three pings that must all come back."""

    def through(source: str, interface: str, address: str) -> None:
        ping(lab_host(source), f"-c 3 -i 0.2 -W 2 -I {interface} {address}")

    return through
