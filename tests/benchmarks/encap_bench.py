"""Throughput, CPU and MTU through one tunnel on the lab: plain GRE, GRE in UDP and GRE over IPsec, side by side.

Boots tests/lab/topologies/fou.yml (or uses --lab-dir), whose tunnel hosts are QEMU guests running
the image's own Debian cloud kernel: the only kernel of the lab with all three encapsulations, so
that the three are compared on one kernel. Between hosta and hostb, across the same router:

- GRE over IPsec: the link hosta - hostb built by playbooks/site.yml with gre_mesh_ipsec (a random
  secret), as a user runs it: tunnel gre-hostb, ESP in transport mode with AES-GCM-256 between the
  first addresses, 203.0.113.1 and 198.51.100.1.
- plain GRE: a tunnel made by hand between second addresses on the same NICs (203.0.113.2,
  198.51.100.4), which the IPsec policies (for the first addresses only) do not touch.
- GRE in UDP (FOU): a tunnel made by hand between third addresses (203.0.113.3, 198.51.100.5),
  `encap fou encap-sport auto encap-dport 5555`, with `ip fou add port 5555 ipproto 47` on both
  hosts: what the role's plan has gre_tunnel make for `gre_mesh_encap: fou`. Not built by the role:
  the role links a pair of hosts once, from one public address each, so a second link hosta - hostb
  beside the IPsec one would need a second inventory name per host; by hand, the plain and the FOU
  tunnels differ in their encapsulation only.

Then, for --rounds rounds, interleaved (each round starting with another tunnel), one iperf3 TCP
run of --seconds through each tunnel (hosta sends, hostb receives), twice per round: with hostb's
NIC as the kernel sets it up, and with its GRO merging nothing (`ip link set dev eth1 gro_max_size
1500`). It prints the medians (received throughput; iperf3's CPU figures for the sender and the
receiver: its process's user and system time over the run, the kernel's work in its context, which
ESP's encryption on the sender may leave to other contexts), each tunnel's MTU as the kernel set it
over the 1500-byte underlay, the median of each round's ratio to plain GRE, each round's
throughput, and this machine's load average before and after.

Why GRO twice: on this kernel (Debian 12's 6.1.0-50-cloud-amd64), when the receiver's NIC merges
the packets of a FOU or GUE tunnel (GRO), the kernel drops each merged packet at UDP (UdpInErrors in
`nstat`, as many as the sender's TCP retransmissions; with or without encap-csum), and TCP through
the tunnel falls to a few Mbit/s; when GRO merges nothing, nothing is dropped. Plain GRE and IPsec
are measured both ways too, so that each condition compares the three alike.

One run on 2026-12-05 (7 rounds of 5 s; this machine's load average 2.9 before, 3.3 after, ~4 during,
most of it the lab itself), throughput with hostb's GRO as set up / off: plain GRE (MTU 1476) 183 /
165 Mbit/s; GRE in UDP (1468) 3.1 / 161, 0.02 / 0.98 of plain; GRE over IPsec (1434) 44 / 42, 0.24 /
0.26 of plain. The figures are the lab's: QEMU guests in software emulation (TCG, no KVM), one
virtual CPU each, on a machine's two shared cores, so the absolute numbers are far below real
hardware; the ratios between the tunnels, measured in the same run, are the figures to read.

--uml runs the earlier comparison on tests/lab/topologies/ipsec.yml instead: user-mode Linux guests,
faster here, whose kernel has no FOU tunnels (CONFIG_NET_FOU_IP_TUNNELS unset; `ip link add ...
encap fou` answers "Invalid argument"), so plain GRE and GRE over IPsec only (5 rounds there
on 2026-12-05, hostb's GRO as set up: IPsec 0.30 of plain GRE's 660 Mbit/s).

  tests/benchmarks/encap_bench.py [--rounds 5] [--seconds 5] [--lab-dir DIR] [--uml]
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
TOPOLOGIES = REPO / "tests" / "lab" / "topologies"
FOU_PORT = 5555
# The tunnels made by hand beside the role's, each between its own pair of extra underlay addresses
# on eth1 (outside the IPsec policies), with an inner /30 of its own: kind -> interface, the ip link
# words after its addresses, each host's underlay address and inner address.
BY_HAND = {
    "plain": {
        "interface": "bench-plain",
        "encap": "",
        "hosta": ("203.0.113.2/25", "10.99.0.1/30"),
        "hostb": ("198.51.100.4/25", "10.99.0.2/30"),
    },
    "fou": {
        "interface": "bench-fou",
        "encap": f" encap fou encap-sport auto encap-dport {FOU_PORT}",
        "hosta": ("203.0.113.3/25", "10.98.0.1/30"),
        "hostb": ("198.51.100.5/25", "10.98.0.2/30"),
    },
}
ROLE_INTERFACE, ROLE_PEER = "gre-hostb", "10.0.0.2"
LABELS = {"plain": "plain GRE", "fou": "GRE in UDP (FOU)", "ipsec": "GRE over IPsec"}
FIGURES = ("mbit_s", "sender_cpu", "receiver_cpu")
# hostb's NIC as the kernel sets it up, and with GRO merging nothing (gro_max_size at the underlay's MTU).
GRO_CONDITIONS = {"gro": "hostb GRO on", "no_gro": "hostb GRO off"}
UNDERLAY_MTU = 1500


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


def peer_of(kind: str) -> tuple[str, str]:
    """The interface on hosta through which KIND's tunnel runs, and hostb's inner address behind it."""
    if kind == "ipsec":
        return ROLE_INTERFACE, ROLE_PEER
    return BY_HAND[kind]["interface"], BY_HAND[kind]["hostb"][1].split("/")[0]


def remove_by_hand(lab_dir: Path) -> None:
    """The tunnels and the FOU port of an earlier run on the same lab (--lab-dir) go before site.yml runs: they are
    not the role's."""
    names = " ".join(spec["interface"] for spec in BY_HAND.values())
    for host in ("hosta", "hostb"):
        ssh(
            lab_dir,
            host,
            f"for name in {names}; do ip link del $name 2>/dev/null; done; "
            f"! lsmod | grep -q '^fou ' || ip fou del port {FOU_PORT} 2>/dev/null; true",
        )


def tunnel_by_hand(lab_dir: Path, kind: str) -> None:
    spec = BY_HAND[kind]
    name = spec["interface"]
    for host, peer in (("hosta", "hostb"), ("hostb", "hosta")):
        underlay, inner = spec[host]
        local, remote = underlay.split("/")[0], spec[peer][0].split("/")[0]
        receive = (
            f"modprobe fou && {{ ip fou show | grep -q 'port {FOU_PORT} ' || ip fou add port {FOU_PORT} ipproto 47; }} && "
            if kind == "fou"
            else ""
        )
        ssh(
            lab_dir,
            host,
            f"set -e; ip link del {name} 2>/dev/null || true; ip address replace {underlay} dev eth1; {receive}"
            f"ip link add {name} type gre local {local} remote {remote} ttl 255{spec['encap']}; "
            f"ip address add {inner} dev {name}; ip link set {name} up",
        )


def run_iperf(lab_dir: Path, kind: str, seconds: int) -> dict[str, float]:
    interface, address = peer_of(kind)
    out = ssh(lab_dir, "hosta", f"iperf3 --json --time {seconds} --client {address} --bind-dev {interface} || true")
    result = json.loads(out)
    if "error" in result:
        sys.exit(f"bench: iperf3 through {interface}: {result['error']}")
    received = result["end"]["sum_received"]["bits_per_second"]
    cpu = result["end"]["cpu_utilization_percent"]
    return {"mbit_s": received / 1e6, "sender_cpu": cpu["host_total"], "receiver_cpu": cpu["remote_total"]}


def receiver_gro(lab_dir: Path, size: int) -> None:
    """Let hostb's NIC merge received packets up to SIZE bytes (GRO); its MTU, 1500, merges none."""
    ssh(lab_dir, "hostb", f"ip link set dev eth1 gro_max_size {size}")


def load() -> str:
    return " ".join(f"{figure:.1f}" for figure in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--lab-dir", type=Path)
    parser.add_argument("--uml", action="store_true", help="ipsec.yml's UML guests: plain GRE and IPsec only")
    options = parser.parse_args()
    kinds = ["plain", "ipsec"] if options.uml else ["plain", "fou", "ipsec"]
    topology = TOPOLOGIES / ("ipsec.yml" if options.uml else "fou.yml")
    own = options.lab_dir is None
    lab_dir = options.lab_dir or Path(tempfile.mkdtemp(prefix="encap-lab-"))
    if own:
        subprocess.run([str(LAB), "--lab-dir", str(lab_dir), "up", str(topology)], check=True, capture_output=True)
    gro_default = 0
    try:
        remove_by_hand(lab_dir)
        converge(lab_dir)
        for kind in kinds:
            if kind in BY_HAND:
                tunnel_by_hand(lab_dir, kind)
        ssh(
            lab_dir,
            "hostb",
            "pkill -x iperf3; iperf3 --server --daemon; "
            "for i in $(seq 50); do ss -Hltn 'sport = 5201' | grep -q . && break; sleep 0.1; done",
        )
        mtus = {kind: int(ssh(lab_dir, "hosta", f"cat /sys/class/net/{peer_of(kind)[0]}/mtu")) for kind in kinds}
        kernel = ssh(lab_dir, "hosta", "uname -r").strip()
        gro_default = json.loads(ssh(lab_dir, "hostb", "ip -json -details link show eth1"))[0]["gro_max_size"]
        gro_sizes = {"gro": gro_default, "no_gro": UNDERLAY_MTU}
        load_before = load()
        runs: dict[tuple[str, str], list[dict[str, float]]] = {(gro, kind): [] for gro in gro_sizes for kind in kinds}
        for number in range(options.rounds):
            for gro, size in gro_sizes.items():
                receiver_gro(lab_dir, size)
                # Each round starts with another tunnel, so that none always runs first after the switch.
                for kind in kinds[number % len(kinds) :] + kinds[: number % len(kinds)]:
                    runs[gro, kind].append(run_iperf(lab_dir, kind, options.seconds))
        load_after = load()
        esp = ssh(
            lab_dir,
            "hosta",
            "swanctl --list-sas --ike linuxnet-gre-hostb 2>/dev/null | grep -o 'ESP:[A-Z0-9_/-]*' | head -1",
        )
    finally:
        if own:
            subprocess.run([str(LAB), "--lab-dir", str(lab_dir), "down"], check=False, capture_output=True)
        elif gro_default:
            receiver_gro(lab_dir, gro_default)
    report(options, topology, kernel, (load_before, load_after), mtus, esp.strip() or "ESP", runs)


def report(
    options: argparse.Namespace,
    topology: Path,
    kernel: str,
    loads: tuple[str, str],
    mtus: dict[str, int],
    esp: str,
    runs: dict[tuple[str, str], list[dict[str, float]]],
) -> None:
    print(
        f"{options.rounds} interleaved rounds of {options.seconds} s of iperf3 TCP, hosta -> hostb across the router, "
        f"{topology.name} (kernel {kernel}); this machine's load average {loads[0]} before, {loads[1]} after"
    )
    labels = dict(LABELS, ipsec=f"{LABELS['ipsec']} ({esp})")
    medians = {
        key: {figure: statistics.median(r[figure] for r in results) for figure in FIGURES}
        for key, results in runs.items()
    }
    print(f"{'':<40}{'':>6}{'hostb GRO on (default)':>30}{'hostb GRO off':>30}")
    print(f"{'tunnel':<40}{'MTU':>6}" + f"{'Mbit/s':>10}{'CPU % sender':>13}{'receiver':>9}" * 2)
    for kind in mtus:
        line = f"{labels[kind]:<40}{mtus[kind]:>6}"
        for gro in GRO_CONDITIONS:
            median = medians[gro, kind]
            line += f"{median['mbit_s']:>10.1f}{median['sender_cpu']:>13.1f}{median['receiver_cpu']:>9.1f}"
        print(line)
    # Each round's ratio to plain GRE of the same round and condition: a machine whose load changes between rounds
    # moves a round's three runs together, so the median of these ratios is the steadier figure.
    for gro in GRO_CONDITIONS:
        plain = [r["mbit_s"] for r in runs[gro, "plain"]]
        ratios = ", ".join(
            f"{LABELS[kind]} {statistics.median(r['mbit_s'] / p for r, p in zip(runs[gro, kind], plain, strict=True)):.2f}"
            for kind in mtus
            if kind != "plain"
        )
        print(f"{GRO_CONDITIONS[gro]}, median of each round's ratio to plain GRE's throughput: {ratios}")
    print("Mbit/s of each round:")
    for (gro, kind), results in runs.items():
        print(f"  {GRO_CONDITIONS[gro]:<24}{LABELS[kind]:<20}" + " ".join(f"{r['mbit_s']:.0f}" for r in results))


if __name__ == "__main__":
    main()
