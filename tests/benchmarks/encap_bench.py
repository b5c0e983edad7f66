"""Throughput, CPU and MTU through one tunnel on the lab: plain GRE against GRE over IPsec, side by side.

Boots tests/lab/topologies/ipsec.yml (or uses --lab-dir), and builds with playbooks/site.yml the
link hosta - hostb with IPsec (gre_mesh_ipsec, a random secret): tunnel gre-hostb, ESP in transport
mode with AES-GCM-256 between 203.0.113.1 and 198.51.100.1, across the router. Beside it, by hand,
a plain GRE tunnel between a second address on each host's same NIC (203.0.113.2, 198.51.100.4), over
the same router: what the IPsec policies (for the first addresses only) do not touch. Then, for
--rounds rounds, interleaved, one iperf3 TCP run of --seconds through each tunnel (hosta sends, hostb
receives), and prints the medians: received throughput, iperf3's CPU figures for the sender and the
receiver (its process's user and system time over the run: the kernel's work in its context, which
ESP's encryption on the sender may leave to other contexts), and each tunnel's MTU.

GRE in UDP (FOU) is not measured: the lab's UML kernel has no FOU tunnels (CONFIG_NET_FOU_IP_TUNNELS
unset; `ip link add ... encap fou` answers "Invalid argument").

The figures are the lab's: each UML guest is one process on a shared host CPU, so absolute numbers
are far below real hardware; the ratio between the two tunnels, measured in the same run, is the
figure to read.

  tests/benchmarks/encap_bench.py [--rounds 5] [--seconds 5] [--lab-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "lab" / "lab"
TOPOLOGY = REPO / "tests" / "lab" / "topologies" / "ipsec.yml"
# The plain tunnel, by hand, beside the role's: second underlay addresses, inner 10.99.0.0/30.
PLAIN = {
    "hosta": ("203.0.113.2/25", "ip link add bench-plain type gre local 203.0.113.2 remote 198.51.100.4 ttl 255"),
    "hostb": ("198.51.100.4/25", "ip link add bench-plain type gre local 198.51.100.4 remote 203.0.113.2 ttl 255"),
}
INNER = {"plain": ("bench-plain", "10.99.0.2"), "ipsec": ("gre-hostb", "10.0.0.2")}


def ssh(lab_dir: Path, host: str, command: str) -> str:
    result = subprocess.run(
        [str(LAB), "--lab-dir", str(lab_dir), "ssh", host, "--", command], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"bench: on {host}: {command}: {result.stderr or result.stdout}")
    return result.stdout


def converge(lab_dir: Path) -> None:
    """site.yml with the one IPsec link, as a user runs it."""
    work = Path(tempfile.mkdtemp(prefix="encap-bench-"))
    (work / "ansible_collections" / "linuxnet").mkdir(parents=True)
    (work / "ansible_collections" / "linuxnet" / "gre").symlink_to(REPO)
    variables = {
        "gre_mesh_links": [["hosta", "hostb"]],
        "gre_mesh_public": "{{ lab_public_address }}",
        "gre_mesh_ipsec": True,
        "gre_mesh_ipsec_secret": secrets.token_urlsafe(32),
    }
    (work / "vars.yml").write_text(yaml.safe_dump(variables))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(work), ANSIBLE_NOCOLOR="1")
    command = [
        "ansible-playbook",
        str(REPO / "playbooks" / "site.yml"),
        "-i",
        str(lab_dir / "inventory.yml"),
        "-e",
        f"@{work / 'vars.yml'}",
        "--limit",
        "hosta,hostb",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench: site.yml failed:\n{result.stdout[-4000:]}")


def plain_tunnel(lab_dir: Path) -> None:
    inner = {"hosta": "10.99.0.1/30", "hostb": "10.99.0.2/30"}
    for host, (underlay, create) in PLAIN.items():
        ssh(
            lab_dir,
            host,
            f"ip link del bench-plain 2>/dev/null; ip address replace {underlay} dev eth1; {create}; "
            f"ip address add {inner[host]} dev bench-plain; ip link set bench-plain up",
        )


def run_iperf(lab_dir: Path, kind: str, seconds: int) -> dict[str, float]:
    interface, address = INNER[kind]
    out = ssh(lab_dir, "hosta", f"iperf3 --json --time {seconds} --client {address} --bind-dev {interface} || true")
    result = json.loads(out)
    if "error" in result:
        sys.exit(f"bench: iperf3 through {interface}: {result['error']}")
    received = result["end"]["sum_received"]["bits_per_second"]
    cpu = result["end"]["cpu_utilization_percent"]
    return {"mbit_s": received / 1e6, "sender_cpu": cpu["host_total"], "receiver_cpu": cpu["remote_total"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--lab-dir", type=Path)
    options = parser.parse_args()
    own = options.lab_dir is None
    lab_dir = options.lab_dir or Path(tempfile.mkdtemp(prefix="encap-lab-"))
    if own:
        subprocess.run([str(LAB), "--lab-dir", str(lab_dir), "up", str(TOPOLOGY)], check=True, capture_output=True)
    try:
        converge(lab_dir)
        plain_tunnel(lab_dir)
        ssh(
            lab_dir,
            "hostb",
            "pkill -x iperf3; iperf3 --server --daemon; "
            "for i in $(seq 50); do ss -Hltn 'sport = 5201' | grep -q . && break; sleep 0.1; done",
        )
        mtus = {
            kind: int(ssh(lab_dir, "hosta", f"cat /sys/class/net/{name}/mtu")) for kind, (name, _a) in INNER.items()
        }
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "ipsec": []}
        for _round in range(options.rounds):
            for kind in runs:
                runs[kind].append(run_iperf(lab_dir, kind, options.seconds))
        esp = ssh(
            lab_dir,
            "hosta",
            "swanctl --list-sas --ike linuxnet-gre-hostb 2>/dev/null | grep -o 'ESP:[A-Z0-9_/-]*' | head -1",
        )
    finally:
        if own:
            subprocess.run([str(LAB), "--lab-dir", str(lab_dir), "down"], check=False, capture_output=True)
    print(f"{options.rounds} interleaved rounds of {options.seconds} s of iperf3 TCP, hosta -> hostb across the router")
    print(f"{'tunnel':<34}{'MTU':>6}{'Mbit/s':>10}{'iperf3 CPU % sender':>21}{'receiver':>10}")
    labels = {"plain": "plain GRE", "ipsec": f"GRE over IPsec ({esp.strip() or 'ESP'})"}
    for kind, results in runs.items():
        median = {key: statistics.median(r[key] for r in results) for key in results[0]}
        print(
            f"{labels[kind]:<34}{mtus[kind]:>6}{median['mbit_s']:>10.1f}{median['sender_cpu']:>21.1f}"
            f"{median['receiver_cpu']:>10.1f}"
        )
    print(f"{'GRE in UDP (FOU)':<34}{'-':>6}  not measured: the lab's UML kernel has no FOU tunnels")
    ratio = statistics.median(r["mbit_s"] for r in runs["ipsec"]) / statistics.median(
        r["mbit_s"] for r in runs["plain"]
    )
    print(f"GRE over IPsec carries {ratio:.2f} of plain GRE's throughput on this lab")


if __name__ == "__main__":
    main()
