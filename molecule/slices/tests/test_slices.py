"""site.yml as three disjoint --limit slices, in sequence and at once, ends as one whole run (issue 19).

Converge built the mesh with one whole run of site.yml. The tests read every host's state then, take
away what the collection made (site.yml with an empty topology), and build it again as AWX/AAP job
slicing would: the inventory dealt out into three slices, each run as its own ansible-playbook,
first one after another, then all three at once. Every slice must succeed although, when it pings
its peers, the ones in later (or concurrent) slices have not built their side yet, and every host
must end exactly as after the whole run. A second sliced pass changes nothing; verify.yml is green.
The tests run in file order and depend on each other.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import EPHEMERAL, MANAGED, playbook, recap

MESH = ["node1", "node2", "node3", "node4", "node5", "node6"]
SLICE_COUNT = 3
# What a link across the router gets from the planner: seg-b's 1400 less GRE's 24 bytes.
ACROSS = 1400 - 24
# Settings that take the collection's work away: no links, no networks. Purge deletes the tunnels and
# their routes, persistence its boot files, and the firewall and forwarding steps what they added.
NOTHING = json.dumps({"gre_mesh_full_mesh": [], "gre_mesh_networks": []})
WAITING = re.compile(r"gre-\S+: not failed, this run changed this side and the peer is not in it")

# One read per host of everything a run of the role may change there.
STATE = r"""
echo '#links'
ip -details -json address show
echo '#routes4'
ip -json -4 route show proto 250
echo '#routes6'
ip -json -6 route show proto 250
echo '#files'
find /etc \( -name '*linuxnet-gre*' -o -path '/etc/linuxnet-gre/*' \) ! -type d | sort | while read -r f; do
  if [ -L "$f" ]; then echo "== $f -> $(readlink "$f")"; else echo "== $f"; cat "$f"; fi
done
echo '#sysctl'
sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding
for d in /proc/sys/net/ipv4/conf/gre-*; do [ -e "$d" ] && echo "${d##*/} rp_filter $(cat "$d/rp_filter")"; done
echo '#units'
systemctl is-enabled linuxnet-gre.service linuxnet-gre-firewall.service 2>&1
systemctl is-active linuxnet-gre-firewall.service 2>&1
echo '#firewall'
iptables-legacy-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
ip6tables-legacy-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
true
"""
# What changes from one creation of the same interface to the next, or with traffic.
VOLATILE_LINK = ("ifindex", "stats", "stats64")
VOLATILE_ADDRESS = ("valid_life_time", "preferred_life_time")

WHOLE: dict[str, dict[str, Any]] = {}


def sections(output: str) -> dict[str, str]:
    parts = re.split(r"^#(\w+)$", output, flags=re.MULTILINE)
    return {name: text.strip() for name, text in zip(parts[1::2], parts[2::2], strict=True)}


def host_state(output: str) -> dict[str, Any]:
    """A host's interfaces made by the collection (ip -details, volatile fields removed), routes of
    proto 250, the collection's files under /etc, its sysctls and units, and the packet filter rules,
    from the output of STATE there."""
    found = sections(output)
    links = {}
    for link in json.loads(found["links"]):
        if link.get("ifalias") != MANAGED:
            continue
        for key in VOLATILE_LINK:
            link.pop(key, None)
        for address in link.get("addr_info", []):
            for key in VOLATILE_ADDRESS:
                address.pop(key, None)
        links[link["ifname"]] = link
    return {
        "links": links,
        "routes": json.loads(found["routes4"] or "[]") + json.loads(found["routes6"] or "[]"),
        **{key: found[key] for key in ("files", "sysctl", "units", "firewall")},
    }


def state() -> dict[str, dict[str, Any]]:
    """Every host's state, read on all of them at once: one ad-hoc ansible run, each host's result in a file."""
    with tempfile.TemporaryDirectory(prefix="slices-state-") as tree:
        run = subprocess.run(
            ["ansible", ",".join(MESH), "-i", str(EPHEMERAL / "inventory"), "-m", "ansible.builtin.shell"]
            + ["-a", STATE, "--tree", tree],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        return {name: host_state(json.loads((Path(tree) / name).read_text())["stdout"]) for name in MESH}


@pytest.fixture(scope="module")
def sliced(group: Callable[[str], list[str]]) -> list[list[str]]:
    """The inventory in SLICE_COUNT disjoint slices, host i in slice i mod SLICE_COUNT, as AWX deals them."""
    hosts = sorted(group("all"))
    return [hosts[number::SLICE_COUNT] for number in range(SLICE_COUNT)]


def differences(found: dict[str, dict[str, Any]]) -> str:
    """What differs from the whole run's state, host by host, as a unified diff ('' when equal)."""
    lines: list[str] = []
    for name in MESH:
        before = json.dumps(WHOLE[name], indent=1, sort_keys=True).splitlines()
        after = json.dumps(found[name], indent=1, sort_keys=True).splitlines()
        lines += difflib.unified_diff(before, after, f"{name} (whole run)", f"{name} (sliced)", lineterm="", n=2)
    return "\n".join(lines)


def run_slice(hosts: list[str]) -> subprocess.CompletedProcess[str]:
    return playbook("site", "--limit", ",".join(hosts))


def reset() -> None:
    run = playbook("site", "-e", NOTHING)
    assert run.returncode == 0, run.stdout[-3000:]
    for name, found in state().items():
        assert (found["links"], found["routes"], found["files"]) == ({}, [], ""), name
        assert "LINUXNET" not in found["firewall"] and "linuxnet_gre" not in found["firewall"], name


def test_the_whole_run_built_the_mesh(sliced):
    WHOLE.update(state())
    for name in MESH:
        found = WHOLE[name]
        assert sorted(found["links"]) == sorted(f"gre-{peer}" for peer in MESH if peer != name)
        assert all(link["addr_info"] for link in found["links"].values()), name
        assert "== /etc/" in found["files"], name
    # The planner's MTUs: across the router the smaller segment's, between node1 and node2 seg-a's.
    assert WHOLE["node1"]["links"]["gre-node5"]["mtu"] == ACROSS
    assert WHOLE["node1"]["links"]["gre-node2"]["mtu"] == 1500 - 24
    # Routes to the networks behind node1 and node5, on the other hosts.
    assert {route["dst"] for route in WHOLE["node3"]["routes"]} == {"198.51.100.201", "198.51.100.205"}
    # The role's openings in the firewalls that drop by default.
    assert "LINUXNET-GRE" in WHOLE["node2"]["firewall"] and "LINUXNET-GRE" in WHOLE["node6"]["firewall"]
    # Every slice holds hosts of both segments, so most links join two slices, some across the router.
    assert sliced == [["node1", "node4", "router"], ["node2", "node5"], ["node3", "node6"]]


def test_slices_one_after_another_end_as_the_whole_run(sliced):
    reset()
    runs = [run_slice(hosts) for hosts in sliced]
    for hosts, run in zip(sliced, runs, strict=True):
        assert run.returncode == 0, f"slice {hosts}:\n{run.stdout[-4000:]}"
        assert set(recap(run)) == set(hosts)
    # The first slice pinged peers of the later slices, not built yet: named, and no failure.
    assert WAITING.search(runs[0].stdout), runs[0].stdout[-4000:]
    assert not WAITING.search(runs[-1].stdout), runs[-1].stdout[-4000:]
    assert differences(state()) == ""


def test_slices_at_once_end_as_the_whole_run(sliced):
    reset()
    with ThreadPoolExecutor(SLICE_COUNT) as pool:
        runs = list(pool.map(run_slice, sliced))
    for hosts, run in zip(sliced, runs, strict=True):
        assert run.returncode == 0, f"slice {hosts}:\n{run.stdout[-4000:]}"
    assert differences(state()) == ""


def test_a_second_sliced_pass_changes_nothing(sliced):
    with ThreadPoolExecutor(SLICE_COUNT) as pool:
        runs = list(pool.map(run_slice, sliced))
    for hosts, run in zip(sliced, runs, strict=True):
        assert run.returncode == 0, f"slice {hosts}:\n{run.stdout[-4000:]}"
        counts = recap(run)
        assert all(counts[name]["changed"] == 0 for name in hosts), f"slice {hosts}:\n{run.stdout[-4000:]}"
        # Every peer built by now: every link answered.
        assert not WAITING.search(run.stdout), run.stdout[-4000:]
    assert differences(state()) == ""


def test_verify_playbook_is_green_after_the_slices(tmp_path):
    run = playbook("verify", "-e", f"gre_mesh_verify_dir={tmp_path}")
    assert run.returncode == 0, run.stdout[-4000:]
    assert all(row["failed"] == 0 for row in recap(run).values())
    report = json.loads((tmp_path / "links.json").read_text())
    assert report, run.stdout[-2000:]


def test_a_limited_run_still_fails_a_broken_link_it_left_as_it_was(lab_host):
    """The waiting is only for a side this run changed: with node5's end of node1 - node5 down (node5 outside the
    run), site.yml --limit node1 changes nothing on node1 and fails naming that link, with no waiting line."""
    node5 = lab_host("node5")
    node5.check_output("ip link set dev gre-node1 down")
    try:
        run = playbook("site", "--limit", "node1")
        output = run.stdout + run.stderr  # the failed task's message goes to standard error
        assert run.returncode == 2, output[-4000:]
        assert recap(run)["node1"]["changed"] == 0, output[-4000:]
        assert re.search(r"1 of 5\s+links down", output), output[-4000:]
        assert re.search(r"gre-node5 to node5 \S+: DOWN", output) and not WAITING.search(output), output[-4000:]
    finally:
        node5.check_output("ip link set dev gre-node1 up")
