"""site.yml with node4 unreachable, then again with node4 back.

node4 is made unreachable for Ansible only (its ssh port is overridden to a closed one by an
extra inventory), as when a host's ssh is down or firewalled: the host itself keeps running.
The tests run in file order and depend on each other: first run, then the re-run.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest
from conftest import playbook, recap

MESH = ["node1", "node2", "node3", "node4"]
DOWN = "node4"
RUNS: dict[str, subprocess.CompletedProcess[str]] = {}


def site(*extra_inventories: Path) -> subprocess.CompletedProcess[str]:
    return playbook("site", *(arg for inventory in extra_inventories for arg in ("-i", inventory)))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    if "first" not in RUNS:
        closed = tmp_path_factory.mktemp("unreachable") / "node4-unreachable.yml"
        closed.write_text(f"all:\n  hosts:\n    {DOWN}:\n      ansible_port: 9\n")
        RUNS["first"] = site(closed)
    return RUNS["first"]


def test_the_run_fails_naming_the_unreachable_host_only(first_run):
    assert first_run.returncode == 4, first_run.stdout[-3000:]  # 4: some hosts were unreachable
    counts = recap(first_run)
    assert counts[DOWN]["unreachable"] == 1
    for name in MESH[:3]:
        assert counts[name]["unreachable"] == 0 and counts[name]["failed"] == 0, first_run.stdout[-3000:]
    output = first_run.stdout + first_run.stderr
    assert re.search(rf"^fatal: \[{DOWN}\]: UNREACHABLE!", output, re.MULTILINE), output[-3000:]


def test_the_others_report_the_link_to_it_as_not_checked(first_run):
    lines = re.findall(r'"(gre-node4: not checked[^"]*)"', first_run.stdout)
    assert len(lines) == 3, first_run.stdout[-3000:]


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(MESH[:3], 2)))
def test_the_others_tunnels_to_each_other_work(first_run, gre_links, ping_through, a, b):
    assert first_run.returncode == 4
    (address,) = gre_links(b)[f"gre-{a}"]["addresses"]
    ping_through(a, f"gre-{b}", address.split("/")[0])


def test_the_unreachable_host_was_not_touched(first_run, gre_links):
    assert first_run.returncode == 4
    assert gre_links(DOWN) == {}


def test_a_rerun_once_it_is_back_completes_the_mesh(first_run, gre_links, ping_through):
    RUNS["second"] = second = site()
    assert second.returncode == 0, second.stdout[-3000:]
    assert all(row["failed"] == 0 and row["unreachable"] == 0 for row in recap(second).values())
    assert sorted(gre_links(DOWN)) == [f"gre-{peer}" for peer in MESH[:3]]
    for peer in MESH[:3]:
        (address,) = gre_links(peer)[f"gre-{DOWN}"]["addresses"]
        ping_through(DOWN, f"gre-{peer}", address.split("/")[0])
