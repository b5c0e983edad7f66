# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: gre_probe_schedule
short_description: When every host's gre_probe starts, and whether the probes run as async jobs
version_added: 0.1.0
author:
  - linuxnet.gre maintainers (@linuxnet)
description:
  - Plans, at the time given as input, one common start for the probes of M(linuxnet.gre.gre_probe) on every host
    of the play that has tunnels in the plan, so that each host's capture sees its peers' GRE arrive whatever the
    delay of its connection.
  - When every probing host fits in one batch of O(forks), the start is 8 seconds ahead (time enough to connect
    and read the counters). With more probing hosts than forks, the probes run as async jobs (each batch of forks
    only starts its jobs, which wait for the common start), and the start is 10 seconds later per further batch,
    at most 55 seconds ahead (M(linuxnet.gre.gre_probe) starts at once when O(linuxnet.gre.gre_probe#module:start_at)
    is more than 60 seconds away). In check mode (O(check_mode)) the probes never run as async jobs, which check
    mode cannot run.
  - Given O(schedule) instead, a schedule this filter returned earlier, it returns that schedule as seen at the time
    given, where only RV(_value.wait) differs, the seconds left until the probes end.
  - The C(gre_mesh) role's C(verify_links.yml) (and so C(playbooks/verify.yml)) plans its probes with it.
positional: plan, hosts
options:
  _input:
    description: The time now, in seconds since the epoch (UTC), the C(timestamp) of Ansible's C(now) function in UTC.
    type: float
    required: true
  plan:
    description:
      - The plan of P(linuxnet.gre.gre_plan_check#filter) (packed or not), of which the C(hosts) are used. A host
        probes when it has tunnels there.
      - Required unless O(schedule) is given.
    type: dict
  hosts:
    description: The hosts of the play, C(ansible_play_hosts). Required unless O(schedule) is given.
    type: list
    elements: str
  forks:
    description: How many hosts Ansible runs a task on at a time, C(ansible_forks). Required unless O(schedule) is given.
    type: int
  window:
    description:
      - Seconds over which M(linuxnet.gre.gre_probe) sends its pings (its O(linuxnet.gre.gre_probe#module:window)).
      - Required unless O(schedule) is given.
    type: float
  timeout:
    description:
      - Seconds M(linuxnet.gre.gre_probe) waits after its last round (its O(linuxnet.gre.gre_probe#module:timeout)).
      - Required unless O(schedule) is given.
    type: float
  check_mode:
    description: Whether the play runs in check mode, C(ansible_check_mode).
    type: bool
    default: false
  schedule:
    description:
      - A schedule this filter returned earlier, to see it at the time given (RV(_value.wait)). Not with the other
        options.
    type: dict
seealso:
  - module: linuxnet.gre.gre_probe
  - plugin: linuxnet.gre.gre_diagnose
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Plan when every host starts probing
  ansible.builtin.set_fact:
    schedule: >-
      {{ now(utc=true).timestamp() | linuxnet.gre.gre_probe_schedule(plan, ansible_play_hosts, forks=ansible_forks,
                                                                      window=3, timeout=2, check_mode=ansible_check_mode) }}
  run_once: true

- name: Probe every host at once, as async jobs when the hosts are more than the forks
  linuxnet.gre.gre_probe:
    tunnels: "{{ plan.hosts[inventory_hostname].tunnels }}"
    peers: "{{ plan.hosts[inventory_hostname].peers }}"
    window: 3
    timeout: 2
    start_at: "{{ schedule.start_at }}"
  async: "{{ schedule.async_limit }}"
  poll: 0
  become: true
  register: probe

- name: Wait until the async probes are due to end
  ansible.builtin.pause:
    seconds: "{{ (now(utc=true).timestamp() | linuxnet.gre.gre_probe_schedule(schedule=schedule)).wait }}"
  run_once: true
  when: schedule.async_jobs
"""

RETURN = r"""
_value:
  description: The schedule.
  type: dict
  contains:
    probing:
      description: How many hosts of the play probe (those with tunnels in the plan).
      type: int
      sample: 12
    batches:
      description: How many batches of forks start them.
      type: int
      sample: 3
    lead:
      description: Seconds from the time of planning to RV(_value.start_at).
      type: int
      sample: 28
    start_at:
      description: The common start, in seconds since the epoch (UTC), for M(linuxnet.gre.gre_probe)'s O(linuxnet.gre.gre_probe#module:start_at).
      type: float
      sample: 1764900028.25
    end_at:
      description: When the probes end (RV(_value.start_at) plus O(window) and O(timeout)), in seconds since the epoch.
      type: float
      sample: 1764900033.25
    async_jobs:
      description: Whether the probes run as async jobs (more than one batch of forks, not in check mode).
      type: bool
      sample: true
    async_limit:
      description: The task's C(async) value, the seconds an async job may run; V(0) when the probes do not run as async jobs.
      type: int
      sample: 120
    wait:
      description: Whole seconds from the input time until RV(_value.end_at), rounded up, at least V(1) (for C(ansible.builtin.pause)).
      type: int
      sample: 6
"""

import dataclasses
import math
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.plugin_utils._hostvars import checked_plan
from ansible_collections.linuxnet.gre.plugins.plugin_utils._probe_schedule import (
    ProbeSchedule,
    probe_schedule,
    probing_hosts,
    seconds_until,
)

NAME = "gre_probe_schedule"
SCHEDULE_KEYS = tuple(field.name for field in dataclasses.fields(ProbeSchedule))
Number = t.TypeVar("Number", int, float)


def gre_probe_schedule(
    now: t.Any,
    plan: t.Any = None,
    hosts: t.Any = None,
    forks: t.Any = None,
    window: t.Any = None,
    timeout: t.Any = None,
    check_mode: t.Any = False,
    schedule: t.Any = None,
) -> dict[str, t.Any]:
    moment = number("the input (the time now)", now)
    planning = {"plan": plan, "hosts": hosts, "forks": forks, "window": window, "timeout": timeout}
    if schedule is not None:
        if any(value is not None for value in planning.values()):
            raise AnsibleFilterError(f"{NAME}: give either schedule or {', '.join(planning)}, not both")
        earlier = earlier_schedule(schedule)
        return {**earlier, "wait": seconds_until(number("schedule's end_at", earlier["end_at"]), moment)}
    missing = [name for name, value in planning.items() if value is None]
    if missing:
        raise AnsibleFilterError(f"{NAME}: {', '.join(missing)} missing (or give schedule)")
    plan = checked_plan(NAME, plan)
    if isinstance(hosts, (str, t.Mapping)) or not isinstance(hosts, t.Iterable):
        raise AnsibleFilterError(f"{NAME}: hosts must be a list of host names (ansible_play_hosts)")
    if not isinstance(check_mode, bool):
        raise AnsibleFilterError(f"{NAME}: check_mode must be true or false (ansible_check_mode), not {check_mode!r}")
    try:
        planned = probe_schedule(
            moment,
            probing=len(probing_hosts(plan["hosts"], hosts)),
            forks=whole_number("forks", forks),
            window=number("window", window),
            timeout=number("timeout", timeout),
            check_mode=check_mode,
        )
    except ValueError as exc:
        raise AnsibleFilterError(f"{NAME}: {exc}") from None
    return {**dataclasses.asdict(planned), "wait": seconds_until(planned.end_at, moment)}


def earlier_schedule(schedule: t.Any) -> dict[str, t.Any]:
    if not isinstance(schedule, t.Mapping) or any(key not in schedule for key in SCHEDULE_KEYS):
        raise AnsibleFilterError(f"{NAME}: schedule must be what {NAME} returned")
    return {key: schedule[key] for key in SCHEDULE_KEYS}


def number(name: str, value: t.Any) -> float:
    """A number of seconds; also from a string, as extra vars (-e) give them."""
    seconds = converted(value, float)
    if seconds is None or not math.isfinite(seconds):
        raise AnsibleFilterError(f"{NAME}: {name} must be a number, not {value!r}")
    return seconds


def whole_number(name: str, value: t.Any) -> int:
    whole = converted(value, int)
    if whole is None or whole != converted(value, float):
        raise AnsibleFilterError(f"{NAME}: {name} must be a whole number, not {value!r}")
    return whole


def converted(value: t.Any, kind: t.Callable[[t.Any], Number]) -> Number | None:
    """``value`` as an int or a float (``kind``), also from a string; None when it is no such number (or a bool)."""
    if isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return None


class FilterModule:
    """When the probes of linuxnet.gre start, and how Ansible runs them."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {NAME: gre_probe_schedule}
