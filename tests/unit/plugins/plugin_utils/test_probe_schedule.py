# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The probe schedule (plugin_utils/_probe_schedule): when verify_links.yml's probes start, and whether they run async.

A lead of 8 seconds for one batch of forks, 10 more per further batch (5 until the second batch of
molecule/faults' run with 2 forks started too late on a busy machine), 55 at most; async jobs from the second
batch on, never in check mode, allowed 55 + window + timeout + 60 seconds; a pause until the
probes end, rounded up, of at least 1 second.
"""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.gre.plugins.plugin_utils._probe_schedule import (
    LEAD_MAX,
    ProbeSchedule,
    async_limit,
    batch_count,
    lead_seconds,
    probe_schedule,
    probing_hosts,
    seconds_until,
)

NOW = 1764900000.25


@pytest.mark.parametrize(
    ("probing", "forks", "batches"),
    [
        (0, 5, 0),
        (1, 5, 1),
        (5, 5, 1),
        (6, 5, 2),
        (10, 5, 2),
        (11, 5, 3),
        (3, 50, 1),
        (1, 1, 1),
        (7, 1, 7),
        (101, 50, 3),
    ],
)
def test_batches_are_the_probing_hosts_over_the_forks_rounded_up(probing, forks, batches):
    assert batch_count(probing, forks) == batches


@pytest.mark.parametrize(
    ("batches", "lead"),
    [
        # No host probes: the start is never used.
        (0, 8),
        (1, 8),
        (2, 18),
        (3, 28),
        (5, 48),
        # 8 + 10 * 5 = 58: capped.
        (6, 55),
        (12, 55),
        (1000, 55),
    ],
)
def test_the_lead_is_8_seconds_and_10_more_per_further_batch_at_most_55(batches, lead):
    assert lead_seconds(batches) == lead


def test_the_cap_leaves_5_seconds_under_gre_probes_60():
    assert LEAD_MAX == 55


def test_one_batch_probes_in_place_8_seconds_from_now():
    assert probe_schedule(NOW, probing=4, forks=5, window=3, timeout=2) == ProbeSchedule(
        probing=4,
        batches=1,
        lead=8,
        start_at=NOW + 8,
        end_at=NOW + 8 + 3 + 2,
        async_jobs=False,
        async_limit=0,
    )


def test_a_single_host_probes_in_place():
    schedule = probe_schedule(NOW, probing=1, forks=1, window=3, timeout=2)
    assert (schedule.batches, schedule.lead, schedule.async_jobs, schedule.async_limit) == (1, 8, False, 0)


def test_forks_more_than_the_hosts_are_one_batch():
    schedule = probe_schedule(NOW, probing=3, forks=50, window=3, timeout=2)
    assert (schedule.batches, schedule.lead, schedule.start_at, schedule.async_jobs) == (1, 8, NOW + 8, False)


def test_more_hosts_than_forks_probe_as_async_jobs_10_seconds_later_per_batch():
    assert probe_schedule(NOW, probing=12, forks=5, window=3, timeout=2) == ProbeSchedule(
        probing=12,
        batches=3,
        lead=28,
        start_at=NOW + 28,
        end_at=NOW + 28 + 3 + 2,
        async_jobs=True,
        # 55 + 3 + 2 + 60: the longest lead, not this one.
        async_limit=120,
    )


def test_many_batches_start_55_seconds_ahead():
    schedule = probe_schedule(NOW, probing=60, forks=5, window=60, timeout=60)
    assert (schedule.batches, schedule.lead, schedule.start_at, schedule.end_at) == (12, 55, NOW + 55, NOW + 175)
    assert (schedule.async_jobs, schedule.async_limit) == (True, 55 + 60 + 60 + 60)


def test_check_mode_never_runs_async_jobs_but_keeps_the_start():
    schedule = probe_schedule(NOW, probing=12, forks=5, window=3, timeout=2, check_mode=True)
    assert (schedule.batches, schedule.lead, schedule.start_at) == (3, 28, NOW + 28)
    assert (schedule.async_jobs, schedule.async_limit) == (False, 0)


def test_no_probing_host_is_no_batch_and_no_async():
    schedule = probe_schedule(NOW, probing=0, forks=5, window=3, timeout=2)
    assert (schedule.batches, schedule.lead, schedule.async_jobs, schedule.async_limit) == (0, 8, False, 0)


@pytest.mark.parametrize(
    ("window", "timeout", "limit"),
    [
        (3, 2, 120),
        (0.1, 0.1, 116),  # 115.2, rounded up: ansible-core refuses an async value with a fraction
        (2.5, 2, 120),  # 119.5
        (60, 60, 235),
    ],
)
def test_the_async_limit_is_whole_seconds_rounded_up(window, timeout, limit):
    assert async_limit(window, timeout) == limit


@pytest.mark.parametrize(
    ("moment", "now", "seconds"),
    [
        (NOW + 5, NOW, 5),
        (NOW + 4.2, NOW, 5),
        (NOW + 0.5, NOW, 1),
        # The probes are over already: a pause of 1 second, Ansible's least.
        (NOW, NOW, 1),
        (NOW - 30, NOW, 1),
    ],
)
def test_seconds_until_are_rounded_up_and_at_least_1(moment, now, seconds):
    assert seconds_until(moment, now) == seconds


def test_the_hosts_that_probe_are_the_play_hosts_with_tunnels_in_the_plan():
    plan_hosts: dict[str, dict[str, list[dict[str, str]]]] = {
        "hosta": {"tunnels": [{"name": "gre-hostb"}]},
        "hostb": {"tunnels": [{"name": "gre-hosta"}]},
        "router": {"tunnels": []},
        "hostc": {"tunnels": [{"name": "gre-hosta"}]},
    }
    # hostc is not in the play (--limit); gone is not in the plan.
    assert probing_hosts(plan_hosts, ["hostb", "router", "gone", "hosta"]) == ["hostb", "hosta"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: batch_count(3, 0), "forks must be 1 or more, not 0"),
        (lambda: batch_count(-1, 5), "the number of probing hosts must be 0 or more, not -1"),
        (
            lambda: probe_schedule(NOW, probing=1, forks=5, window=-1, timeout=2),
            "window and timeout must be 0 or more seconds, not -1 and 2",
        ),
    ],
)
def test_impossible_numbers_are_refused(call, message):
    with pytest.raises(ValueError) as excinfo:
        call()
    assert str(excinfo.value) == message
