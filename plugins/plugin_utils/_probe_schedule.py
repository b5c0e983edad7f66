# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: when the gre_mesh role's probes start, and whether they run as async jobs.

verify_links.yml runs gre_probe on every host with tunnels, and every host starts its pings and
capture at one common moment, ``start_at``, whatever the delay of its connection, so that each
host's capture sees its peers' GRE arrive. Ansible starts the task on ``forks`` hosts at a time:
when every probing host fits in one batch of forks, ``start_at`` is 8 seconds from now (time enough
to connect and read the counters). With more probing hosts than forks, the probes run as async
jobs: each batch of forks only starts its jobs, which then wait for the common moment, set 10
seconds later per extra batch, and at most ``LEAD_MAX`` seconds ahead. Check mode cannot run async
jobs: there every host probes in its batch of forks, at the same ``start_at``.

Pure functions of numbers, no clock of their own: the caller gives the time ``now``.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import math

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import PROBE_MAX_WAIT

# Seconds from now to the common start when every probing host fits in one batch of forks.
FIRST_LEAD = 8
# Seconds more for each further batch of forks. Starting a batch's async jobs took 3.5-4.7 s on the
# lab's guests (seven runs of molecule/faults' verify with 2 forks for 4 hosts, quiet machine) and
# 6.7-8 s with both CPUs busy, where 5 seconds let the second batch start after the common moment:
# its capture then missed the first batch's pings (the link's cause "inconclusive").
BATCH_LEAD = 10
# The lead at most: gre_probe starts at once when its start_at is more than PROBE_MAX_WAIT (60)
# seconds ahead by the host's clock; 5 seconds less leaves room for clocks that differ.
LEAD_MAX = PROBE_MAX_WAIT - 5
# Seconds an async job may run beyond the longest lead and its probes (window, then timeout)
# before Ansible ends it.
ASYNC_SLACK = 60


@dataclasses.dataclass(frozen=True)
class ProbeSchedule:
    """When the probes of one run start and end, and how Ansible runs them."""

    probing: int  # hosts of the play that probe (those with tunnels)
    batches: int  # batches of forks that start them
    lead: int  # seconds from the time of planning to start_at
    start_at: float  # the common start, in seconds since the epoch (UTC)
    end_at: float  # when the last capture ends: start_at + window + timeout
    async_jobs: bool  # the probes run as async jobs
    async_limit: int  # the async keyword's value: seconds a job may run, 0 when not async


def probing_hosts(plan_hosts: c.Mapping[str, c.Mapping[str, object]], play_hosts: c.Iterable[str]) -> list[str]:
    """The hosts of the play that have tunnels in the plan, in the play's order: the hosts that probe."""
    return [host for host in play_hosts if host in plan_hosts and plan_hosts[host].get("tunnels")]


def batch_count(probing: int, forks: int) -> int:
    """How many batches of ``forks`` hosts Ansible needs to start ``probing`` hosts."""
    if forks < 1:
        raise ValueError(f"forks must be 1 or more, not {forks}")
    if probing < 0:
        raise ValueError(f"the number of probing hosts must be 0 or more, not {probing}")
    return (probing + forks - 1) // forks


def lead_seconds(batches: int) -> int:
    """Seconds from now to the common start: FIRST_LEAD, BATCH_LEAD more per further batch, LEAD_MAX at most.

    No batch at all (no host probes, so the start is never used) gives FIRST_LEAD.
    """
    return min(FIRST_LEAD + BATCH_LEAD * max(batches - 1, 0), LEAD_MAX)


def async_limit(window: float, timeout: float) -> int:
    """The async keyword's value: the longest lead, the probes' window and timeout, and ASYNC_SLACK, in whole seconds.

    Rounded up: ansible-core refuses an ``async`` value with a fraction.
    """
    return math.ceil(LEAD_MAX + window + timeout + ASYNC_SLACK)


def probe_schedule(
    now: float, probing: int, forks: int, window: float, timeout: float, check_mode: bool = False
) -> ProbeSchedule:
    """The schedule of ``probing`` hosts' probes planned at ``now`` (seconds since the epoch) with ``forks`` forks.

    The probes send for ``window`` seconds and capture ``timeout`` seconds longer (gre_probe's options).
    """
    if window < 0 or timeout < 0:
        raise ValueError(f"window and timeout must be 0 or more seconds, not {window} and {timeout}")
    batches = batch_count(probing, forks)
    lead = lead_seconds(batches)
    start_at = now + lead
    run_async = batches > 1 and not check_mode
    return ProbeSchedule(
        probing=probing,
        batches=batches,
        lead=lead,
        start_at=start_at,
        end_at=start_at + window + timeout,
        async_jobs=run_async,
        async_limit=async_limit(window, timeout) if run_async else 0,
    )


def seconds_until(moment: float, now: float) -> int:
    """Whole seconds from ``now`` until ``moment``, rounded up, and at least 1 (a pause of Ansible's)."""
    return max(math.ceil(moment - now), 1)
