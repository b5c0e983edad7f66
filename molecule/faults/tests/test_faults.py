"""playbooks/verify.yml names the cause of each broken link (issue 6).

On the working full mesh node1..node4 (tests/lab/topologies/faults.yml), each fault is injected in
turn on the lab's real kernels, verify.yml runs (ansible-playbook, as users run it), and its
report must show exactly that link down with the matching cause, and every other link up. The
fault is removed before the next. Then, with no fault left, verify.yml is all green and exits 0.
With fewer forks than hosts, the hosts still probe together. The tests run in file order: first
a green baseline, then the faults, the count, the run with 2 forks, and the final green run.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import playbook, recap

MESH = ["node1", "node2", "node3", "node4"]
LINKS = [[a, b] for i, a in enumerate(MESH) for b in MESH[i + 1 :]]
RESULTS: dict[str, bool] = {}


class Fault(NamedTuple):
    name: str
    link: list[str]
    cause: str
    inject: list[tuple[str, str]]  # (lab host, shell command)
    remove: list[tuple[str, str]]


FAULTS = [
    Fault(
        "protocol 47 dropped on the router between node2 and node4",
        ["node2", "node4"],
        "path_drops_gre",
        [
            ("router", "iptables-legacy -I FORWARD -s 203.0.113.2 -d 198.51.100.4 -p 47 -j DROP"),
            ("router", "iptables-legacy -I FORWARD -s 198.51.100.4 -d 203.0.113.2 -p 47 -j DROP"),
        ],
        [
            ("router", "iptables-legacy -D FORWARD -s 203.0.113.2 -d 198.51.100.4 -p 47 -j DROP"),
            ("router", "iptables-legacy -D FORWARD -s 198.51.100.4 -d 203.0.113.2 -p 47 -j DROP"),
        ],
    ),
    Fault(
        "protocol 47 from node3 dropped by node4's host firewall",
        ["node3", "node4"],
        "host_firewall",
        [("node4", "iptables-legacy -I INPUT -s 203.0.113.3 -p 47 -j DROP")],
        [("node4", "iptables-legacy -D INPUT -s 203.0.113.3 -p 47 -j DROP")],
    ),
    Fault(
        "wrong remote on node2's end of node2-node3",
        ["node2", "node3"],
        "endpoint_mismatch",
        [("node2", "ip link set gre-node3 type gre remote 203.0.113.99")],
        [("node2", "ip link set gre-node3 type gre remote 203.0.113.3")],
    ),
    Fault(
        "node3's interface to node1 down",
        ["node1", "node3"],
        "interface_down",
        [("node3", "ip link set gre-node1 down")],
        [("node3", "ip link set gre-node1 up")],
    ),
    Fault(
        # node4 routes node1 back through its second NIC (eth2, mesh-c), while node1's GRE arrives on eth1.
        "strict rp_filter on node4 with an asymmetric route back to node1",
        ["node1", "node4"],
        "rp_filter",
        [
            ("node4", "ip route add 203.0.113.1/32 via 198.51.100.254 dev eth2"),
            ("node4", "sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.eth1.rp_filter=1"),
        ],
        [
            ("node4", "sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth1.rp_filter=0"),
            ("node4", "ip route del 203.0.113.1/32 via 198.51.100.254 dev eth2"),
        ],
    ),
    Fault(
        # The router forwards node1's packets to node4 over a route of MTU 1400 (its other traffic to
        # node4 keeps 1500) and drops the ICMP 'fragmentation needed' it sends back: PMTU discovery
        # cannot help, and full-size packets with DF vanish.
        "MTU black hole between node1 and node4",
        ["node1", "node4"],
        "mtu_black_hole",
        [
            ("router", "ip route add 198.51.100.4/32 dev eth2 mtu 1400 table 100"),
            ("router", "ip rule add from 203.0.113.1 to 198.51.100.4 table 100 priority 100"),
            ("router", "iptables-legacy -I OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP"),
        ],
        # The narrow route goes before the ICMP it makes may pass again, and node1 forgets any path
        # MTU it learned all the same (it would refuse full-size pings to node4 for 10 minutes).
        [
            ("router", "ip rule del from 203.0.113.1 to 198.51.100.4 table 100 priority 100"),
            ("router", "ip route flush table 100"),
            ("router", "iptables-legacy -D OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP"),
            ("node1", "ip route flush cache"),
        ],
    ),
]


def verify(report: Path, forks: int | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run playbooks/verify.yml as a user would; its exit status, output, and links.json.

    Whatever it finds, verify.yml changes nothing: every host's recap says changed=0 (sync and async probes).
    It also returns links.json's content as the run's stats (gre_mesh_verify), for AWX and Ansible Automation
    Platform, where the files go with the execution environment's container.
    """
    extra: list[str] = ["-e", f"gre_mesh_verify_dir={report}"]
    if forks is not None:
        extra += ["-f", str(forks)]
    started = time.monotonic()
    run = playbook("verify", *extra, env={"ANSIBLE_SHOW_CUSTOM_STATS": "1"})
    print(f"verify.yml: exit status {run.returncode} in {time.monotonic() - started:.1f} s")
    counts = recap(run)
    assert counts and all(row["changed"] == 0 for row in counts.values()), run.stdout[-3000:]
    links = json.loads((report / "links.json").read_text()) if (report / "links.json").exists() else {}
    if links:
        assert run_stats(run) == {"gre_mesh_verify": links}, run.stdout[-3000:]
    return run, links


def run_stats(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The run's custom stats (set_stats, per_host false), as the default callback prints them: one line, JSON."""
    stats = re.search(r"^CUSTOM STATS:.*?^\s*RUN: (.*?)$", run.stdout, re.MULTILINE | re.DOTALL)
    return json.loads(stats.group(1)) if stats else {}


def by_link(links: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {tuple(link["hosts"]): link for link in links.get("links", [])}


def sh(lab_host: Any, host: str, command: str) -> None:
    result = lab_host(host).run(command)
    assert result.rc == 0, f"{host}: {command}: {result.stderr}"


def test_the_mesh_is_green_before_any_fault(tmp_path):
    run, links = verify(tmp_path / "baseline")
    assert run.returncode == 0, run.stdout[-4000:]
    assert [link["status"] for link in links["links"]] == ["up"] * len(LINKS), links["summary"]


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.cause for fault in FAULTS])
def test_verify_names_the_fault(fault, lab_host, tmp_path):
    RESULTS[fault.name] = False
    try:
        for host, command in fault.inject:
            sh(lab_host, host, command)
        run, links = verify(tmp_path / fault.cause)
    finally:
        for host, command in fault.remove:
            lab_host(host).run(command)
    links_by_pair = by_link(links)
    broken = links_by_pair[tuple(fault.link)]
    print(
        f"{fault.name}: {broken['hosts'][0]} - {broken['hosts'][1]}: {broken['cause']}: {broken['text']}. Fix: {broken['fix']}"
    )
    assert run.returncode != 0, "verify.yml must fail when a link is down"
    assert broken["status"] == "down" and broken["cause"] == fault.cause, links["summary"]
    others = {pair: link["status"] for pair, link in links_by_pair.items() if list(pair) != fault.link}
    assert set(others.values()) == {"up"}, links["summary"]
    assert len(links_by_pair) == len(LINKS)
    # The report also names the down link and its cause on the play's output, and draws it.
    assert f"{fault.link[0]} - {fault.link[1]}: DOWN [{fault.cause}]" in run.stdout
    assert (tmp_path / fault.cause / "links.dot").read_text().count("style=dashed") == 1
    RESULTS[fault.name] = True


def test_six_of_six_faults_are_named():
    correct = sum(RESULTS.values())
    print(f"{correct} of {len(FAULTS)} correct")
    for name, ok in RESULTS.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    assert correct == len(FAULTS)


def test_fewer_forks_than_hosts_still_name_the_cause(lab_host, tmp_path):
    """With 2 forks the four hosts probe in two batches: node2 and node4 in different ones. The
    probes then run as async jobs that start together, so node4's capture overlaps node2's pings
    and the cause is named (probing batch by batch, it was `inconclusive`)."""
    fault = FAULTS[0]  # protocol 47 dropped on the router between node2 and node4
    try:
        for host, command in fault.inject:
            sh(lab_host, host, command)
        run, links = verify(tmp_path / "forks", forks=2)
    finally:
        for host, command in fault.remove:
            lab_host(host).run(command)
    waited = run.stdout.split("Wait for every host's async probe]", 1)[-1].split("TASK [", 1)[0]
    assert "ok: [node4]" in waited, "the probes must have run as async jobs"
    for host in MESH:  # and left no job file behind
        assert lab_host(host).run("ls -A /root/.ansible_async 2>/dev/null").stdout.strip() == "", host
    links_by_pair = by_link(links)
    broken = links_by_pair[tuple(fault.link)]
    print(f"forks 2: {broken['hosts'][0]} - {broken['hosts'][1]}: {broken['cause']}")
    assert broken["status"] == "down" and broken["cause"] == fault.cause, links["summary"]
    others = {pair: link["status"] for pair, link in links_by_pair.items() if list(pair) != fault.link}
    assert set(others.values()) == {"up"}, links["summary"]


def test_without_faults_verify_is_all_green_and_exits_0(tmp_path):
    run, links = verify(tmp_path / "final")
    assert run.returncode == 0, run.stdout[-4000:]
    assert links["down"] == 0 and links["up"] == len(LINKS)
    assert "all 6 links up" in run.stdout
    report = tmp_path / "final"
    assert {path.name for path in report.iterdir()} >= {"links.json", "links.dot", "evidence.json", "links.svg"}
    assert "<svg" in (report / "links.svg").read_text()
