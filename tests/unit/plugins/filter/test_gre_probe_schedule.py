# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gre_probe_schedule filter: verify_links.yml's probe schedule from the plan and the play, and its pause."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.filter.gre_probe_schedule import FilterModule

NOW = 1764900000.25


def gre_probe_schedule(*args, **kwargs):
    return FilterModule().filters()["gre_probe_schedule"](*args, **kwargs)


def mesh_plan(with_tunnels: int, without_tunnels: int = 0) -> dict:
    """A plan's hosts: node0 … with a tunnel each, then spare0 … without tunnels."""
    hosts = {f"node{i}": {"tunnels": [{"name": "gre-peer"}], "peers": []} for i in range(with_tunnels)}
    hosts.update({f"spare{i}": {"tunnels": [], "peers": []} for i in range(without_tunnels)})
    return {"hosts": hosts, "links": []}


def test_a_mesh_within_the_forks_probes_in_place_8_seconds_from_now():
    plan = mesh_plan(4, 1)
    assert gre_probe_schedule(NOW, plan, list(plan["hosts"]), forks=5, window=3, timeout=2) == {
        "probing": 4,
        "batches": 1,
        "lead": 8,
        "start_at": NOW + 8,
        "end_at": NOW + 13,
        "async_jobs": False,
        "async_limit": 0,
        "wait": 13,
    }


def test_more_hosts_than_forks_probe_as_async_jobs():
    plan = mesh_plan(12)
    assert gre_probe_schedule(NOW, plan, list(plan["hosts"]), forks=5, window=3, timeout=2) == {
        "probing": 12,
        "batches": 3,
        "lead": 28,
        "start_at": NOW + 28,
        "end_at": NOW + 33,
        "async_jobs": True,
        "async_limit": 120,
        "wait": 33,
    }


def test_hosts_without_tunnels_or_outside_the_play_do_not_count():
    plan = mesh_plan(6, 4)
    # node5 is not in the play (--limit); the four spare hosts have no tunnels: 5 probe, one batch.
    play = [f"node{i}" for i in range(5)] + [f"spare{i}" for i in range(4)] + ["unplanned"]
    schedule = gre_probe_schedule(NOW, plan, play, forks=5, window=3, timeout=2)
    assert (schedule["probing"], schedule["batches"], schedule["async_jobs"]) == (5, 1, False)


def test_a_single_host_with_forks_to_spare():
    plan = mesh_plan(1)
    schedule = gre_probe_schedule(NOW, plan, ["node0"], forks=50, window=3, timeout=2)
    assert (schedule["batches"], schedule["lead"], schedule["start_at"], schedule["async_jobs"]) == (
        1,
        8,
        NOW + 8,
        False,
    )


def test_the_lead_stops_at_55_seconds():
    plan = mesh_plan(200)
    schedule = gre_probe_schedule(NOW, plan, list(plan["hosts"]), forks=10, window=60, timeout=60)
    assert (schedule["batches"], schedule["lead"], schedule["start_at"], schedule["end_at"]) == (
        20,
        55,
        NOW + 55,
        NOW + 175,
    )
    assert (schedule["async_jobs"], schedule["async_limit"], schedule["wait"]) == (True, 235, 175)


def test_check_mode_probes_in_batches_without_async_jobs():
    plan = mesh_plan(12)
    schedule = gre_probe_schedule(NOW, plan, list(plan["hosts"]), forks=5, window=3, timeout=2, check_mode=True)
    assert (schedule["batches"], schedule["start_at"], schedule["async_jobs"], schedule["async_limit"]) == (
        3,
        NOW + 28,
        False,
        0,
    )


def test_numbers_from_extra_vars_are_strings():
    plan = mesh_plan(12)
    schedule = gre_probe_schedule(str(NOW), plan, list(plan["hosts"]), forks="5", window="0.5", timeout="2")
    assert (schedule["start_at"], schedule["end_at"], schedule["async_limit"]) == (NOW + 28, NOW + 30.5, 118)


def test_the_schedule_seen_later_only_waits_less():
    plan = mesh_plan(12)
    schedule = gre_probe_schedule(NOW, plan, list(plan["hosts"]), forks=5, window=3, timeout=2)
    # 9.6 seconds later the probes end in 23.4 seconds: a pause of 24.
    later = gre_probe_schedule(NOW + 9.6, schedule=schedule)
    assert later == {**schedule, "wait": 24}
    assert gre_probe_schedule(NOW + 32.5, schedule=schedule)["wait"] == 1
    assert gre_probe_schedule(NOW + 60, schedule=schedule)["wait"] == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            (NOW,),
            {"forks": 5},
            "gre_probe_schedule: plan, hosts, window, timeout missing (or give schedule)",
        ),
        (
            (NOW, mesh_plan(1), ["node0"]),
            {"forks": 5, "window": 3, "timeout": 2, "schedule": {}},
            "gre_probe_schedule: give either schedule or plan, hosts, forks, window, timeout, not both",
        ),
        (
            (NOW,),
            {"schedule": {"start_at": NOW}},
            "gre_probe_schedule: schedule must be what gre_probe_schedule returned",
        ),
        (
            ("now", mesh_plan(1), ["node0"]),
            {"forks": 5, "window": 3, "timeout": 2},
            "gre_probe_schedule: the input (the time now) must be a number, not 'now'",
        ),
        (
            (NOW, {"links": []}, ["node0"]),
            {"forks": 5, "window": 3, "timeout": 2},
            "gre_probe_schedule: plan must be the result of linuxnet.gre.gre_plan_check (with hosts)",
        ),
        (
            (NOW, mesh_plan(1), "node0"),
            {"forks": 5, "window": 3, "timeout": 2},
            "gre_probe_schedule: hosts must be a list of host names (ansible_play_hosts)",
        ),
        (
            (NOW, mesh_plan(1), ["node0"]),
            {"forks": 0, "window": 3, "timeout": 2},
            "gre_probe_schedule: forks must be 1 or more, not 0",
        ),
        (
            (NOW, mesh_plan(1), ["node0"]),
            {"forks": 2.5, "window": 3, "timeout": 2},
            "gre_probe_schedule: forks must be a whole number, not 2.5",
        ),
        (
            (NOW, mesh_plan(1), ["node0"]),
            {"forks": 5, "window": True, "timeout": 2},
            "gre_probe_schedule: window must be a number, not True",
        ),
        (
            (NOW, mesh_plan(1), ["node0"]),
            {"forks": 5, "window": 3, "timeout": float("nan")},
            "gre_probe_schedule: timeout must be a number, not nan",
        ),
        (
            (NOW, mesh_plan(1), ["node0"]),
            {"forks": 5, "window": -3, "timeout": 2},
            "gre_probe_schedule: window and timeout must be 0 or more seconds, not -3.0 and 2.0",
        ),
        (
            (NOW, mesh_plan(1), ["node0"]),
            {"forks": 5, "window": 3, "timeout": 2, "check_mode": "no"},
            "gre_probe_schedule: check_mode must be true or false (ansible_check_mode), not 'no'",
        ),
    ],
)
def test_wrong_arguments_are_named(args, kwargs, message):
    with pytest.raises(AnsibleFilterError) as excinfo:
        gre_probe_schedule(*args, **kwargs)
    assert excinfo.value.message == message
