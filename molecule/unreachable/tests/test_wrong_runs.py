"""Runs that must change nothing on any host (issue 13), on the complete mesh test_unreachable.py left.

Every host's state is read first: its GRE links (settings, MTU, addresses, state), the files that
bring them back at boot, and its packet filter rules. Then each run is made as a user would make it,
and the state is read again and compared:

- bad input (a topology variable that only some hosts see, two hosts with one public address, a
  setting out of range on one host, a host that cannot do the persistence or the firewall backend
  it is asked for): the run fails naming host and variable, and no host changed;
- a run with a peer unreachable, and one with --limit: the mesh has unequal underlay MTUs (node4
  behind the router at 1400), which only both ends' facts tell; without them the tunnels keep
  their planned MTU, in the kernel and in their boot files, and the runs report no change; after a
  real reboot of the limited host, its tunnels come back at the planned MTU.

The files run after test_unreachable.py (file order), which ends with the whole mesh built.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import EPHEMERAL, playbook, recap

MESH = ["node1", "node2", "node3", "node4"]
EVERY_HOST = [*MESH, "node5", "router"]  # the lab's inventory: site.yml runs on all of them
# The GRE module's own device, there once ip_gre is loaded.
FALLBACK_DEVICES = ("gre0",)
# What the planner gives a link across the router: node4's underlay (1400) less GRE's 24 bytes.
ACROSS = 1400 - 24

STATE = r"""
ip -details -json link show type gre
echo '#files'
for f in /etc/systemd/network/60-linuxnet-gre* /etc/linuxnet-gre/tunnels.batch /etc/systemd/system/linuxnet-gre.service; do
  [ -e "$f" ] && { echo "== $f"; cat "$f"; }
done
echo '#rules'
iptables-legacy-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
nft list ruleset 2>/dev/null
true
"""


def host_state(lab_host: Callable[[str], Any], name: str) -> dict[str, Any]:
    """What a run may change on a host: its GRE links, their boot files, its packet filter rules."""
    output = lab_host(name).check_output(STATE)
    links_text, rest = output.split("#files", 1)
    files, rules = rest.split("#rules", 1)
    links = {}
    for link in json.loads(links_text or "[]"):
        if link["ifname"] in FALLBACK_DEVICES:
            continue
        info = link.get("linkinfo", {}).get("info_data", {})
        links[link["ifname"]] = {
            "mtu": link["mtu"],
            "up": "UP" in link["flags"],
            "alias": link.get("ifalias"),
            **{key: info.get(key) for key in ("local", "remote", "ttl", "ikey", "okey")},
        }
    addresses = json.loads(lab_host(name).check_output("ip -json address show type gre") or "[]")
    for entry in addresses:
        if entry["ifname"] in links:
            links[entry["ifname"]]["addresses"] = sorted(
                f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"] if a.get("scope") == "global"
            )
    return {"links": links, "files": files.strip(), "rules": rules.strip()}


@pytest.fixture(scope="module")
def state(lab_host: Callable[[str], Any]) -> Callable[[], dict[str, dict[str, Any]]]:
    def read() -> dict[str, dict[str, Any]]:
        return {name: host_state(lab_host, name) for name in MESH}

    return read


@pytest.fixture(scope="module")
def before(state: Callable[[], dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    found = state()
    # The mesh as test_unreachable.py left it: every link, node4's at the MTU across the router.
    for name in MESH:
        assert sorted(found[name]["links"]) == sorted(f"gre-{peer}" for peer in MESH if peer != name)
    assert {found[name]["links"]["gre-node4"]["mtu"] for name in MESH[:3]} == {ACROSS}
    assert "mtu 1376" in found["node1"]["files"], found["node1"]["files"]
    return found


def inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overlay.yml"
    path.write_text(text)
    return path


# Each: the extra inventory a user might write, what the error must say, and the --limit it must fail with
# too (a topology is the whole inventory's; a host's own setting counts only where the host runs).
WRONG_INPUTS = [
    pytest.param(
        # The topology kept in host variables of some hosts only: without the check, node3 and node4 plan
        # nothing and purge every tunnel.
        "all:\n  hosts:\n    node3: {gre_mesh_full_mesh: []}\n    node4: {gre_mesh_full_mesh: []}\n",
        "gre_mesh_full_mesh: the hosts of this play and their peers see different values",
        "node4",
        id="topology-in-some-hosts-only",
    ),
    pytest.param(
        "all:\n  hosts:\n    node1: {gre_mesh_public: '203.0.113.2'}\n",
        "host node1 and host node2 have the same public address 203.0.113.2",
        "node4",
        id="same-public-address",
    ),
    pytest.param(
        "all:\n  hosts:\n    node3: {gre_mesh_verify_count: 0}\n",
        "host node3: gre_mesh_verify_count: 0 is not from 1 to 50",
        "node3",
        id="verify-count-out-of-range",
    ),
    pytest.param(
        "all:\n  hosts:\n    node2: {gre_mesh_persist: networkd}\n",
        "node2: gre_mesh_persist is networkd, but systemd-networkd is not active and enabled here",
        "node2",
        id="persistence-the-host-cannot-do",
    ),
    pytest.param(
        "all:\n  hosts:\n    node3: {gre_mesh_firewall: true, gre_mesh_firewall_backend: nftables}\n",
        "node3: gre_mesh_firewall_backend is nftables, but nft does not work here",
        "node3",
        id="firewall-backend-the-host-cannot-do",
    ),
]


@pytest.mark.parametrize(("overlay", "message", "limit"), WRONG_INPUTS)
@pytest.mark.parametrize("limited", [False, True], ids=["whole", "limited"])
def test_wrong_input_fails_naming_it_and_no_host_changes(before, state, tmp_path, overlay, message, limit, limited):
    # A new TTL for every tunnel too: a run that got past the checks would change every host it reached.
    args: list[str | Path] = ["-i", inventory(tmp_path, overlay), "-e", "gre_mesh_ttl=64"]
    if limited:
        args += ["--limit", limit]
    run = playbook("site", *args)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert message in output, output[-3000:]
    assert all(row["changed"] == 0 for row in recap(run).values()), output[-3000:]
    assert state() == before


def test_a_run_with_a_peer_unreachable_changes_nothing_on_the_others(before, state, tmp_path):
    # node4's facts are missing, so its underlay MTU is unknown: its links are planned without an MTU.
    run = playbook("site", "-i", inventory(tmp_path, "all:\n  hosts:\n    node4: {ansible_port: 9}\n"))
    assert run.returncode == 4, run.stdout[-3000:]
    counts = recap(run)
    assert all(counts[name]["changed"] == 0 and counts[name]["failed"] == 0 for name in MESH[:3]), run.stdout[-3000:]
    assert state() == before


def test_verify_says_not_checked_when_every_peer_of_a_host_failed(before, state, tmp_path):
    # node1's only link is to node4, which is unreachable; --tags gre_mesh_verify builds nothing. The
    # topology goes to every host's variables: the scenario's group_vars/all outranks an inventory's vars.
    topology = "{gre_mesh_full_mesh: [], gre_mesh_links: [[node1, node4]]"
    overlay = "all:\n  hosts:\n" + "".join(
        f"    {name}: {topology}{', ansible_port: 9' if name == 'node4' else ''}}}\n" for name in EVERY_HOST
    )
    run = playbook("site", "-i", inventory(tmp_path, overlay), "--tags", "gre_mesh_verify")
    output = run.stdout + run.stderr
    assert run.returncode == 4, output[-3000:]
    assert "has no attribute" not in output, output[-3000:]
    assert "gre-node4: not checked, the peer failed or was unreachable in this run" in output, output[-3000:]
    assert recap(run)["node1"]["failed"] == 0, output[-3000:]
    assert state() == before


def test_a_limited_run_changes_nothing_and_a_reboot_keeps_the_planned_mtu(before, state, lab_host, ping_through):
    run = playbook("site", "--limit", "node1")
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap(run)["node1"]["changed"] == 0, run.stdout[-3000:]
    assert state() == before
    boot_id = lab_host("node1").check_output("cat /proc/sys/kernel/random/boot_id")
    reboot = subprocess.run(
        [
            "ansible",
            "node1",
            "-i",
            str(EPHEMERAL / "inventory"),
            "--become",
            "-m",
            "ansible.builtin.reboot",
            "-a",
            "reboot_command='systemctl reboot' connect_timeout=5 reboot_timeout=300",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=400,
    )
    assert reboot.returncode == 0, reboot.stdout + reboot.stderr
    assert lab_host("node1").check_output("cat /proc/sys/kernel/random/boot_id") != boot_id
    after = host_state(lab_host, "node1")
    assert after["links"]["gre-node4"]["mtu"] == ACROSS
    assert after == before["node1"]
    (address,) = before["node4"]["links"]["gre-node1"]["addresses"]
    ping_through("node1", "gre-node4", address.split("/")[0])
