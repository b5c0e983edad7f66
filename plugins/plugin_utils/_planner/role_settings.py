# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the gre_mesh role's other settings, checked for every host at once.

Ansible checks a role's arguments (``meta/argument_specs.yml``) host by host: a host whose
inventory gives a setting of the wrong type fails alone, and the other hosts go on to change. So
the planner, which runs once for the play before any host changes, checks again, for every host
of the play, the settings its inventory (or the play) gives: against the role's own argument specs
(types and choices, read from the role, not copied), and against the ranges that the specs cannot
express (``RANGES``: what the modules that take the settings accept). One bad value fails the
whole play, naming host, variable and the allowed values.
"""

from __future__ import annotations

import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import Problems, VariableError

# Setting: (smallest, largest, what the limit comes from). gre_mesh_verify_count is both gre_ping's
# count (1 to 100) and verify.yml's gre_probe rounds (1 to 50).
RANGES: dict[str, tuple[float, float, str]] = {
    "gre_mesh_verify_count": (1, 50, "echo requests per link"),
    "gre_mesh_verify_timeout": (0.1, 60, "seconds"),
    "gre_mesh_verify_window": (0.1, 60, "seconds"),
}


def check_role_settings(
    hostvars: t.Mapping[str, t.Mapping[str, t.Any]],
    play_hosts: t.Sequence[str],
    specs: t.Mapping[str, t.Mapping[str, t.Any]],
    play_values: t.Mapping[str, t.Any],
    problems: Problems,
    validate: t.Callable[[dict[str, t.Any], dict[str, t.Any]], list[str]],
) -> None:
    """Record a problem for each setting a play host (or the play) gives that the role would refuse.

    ``specs`` are the role's argument specs of the settings to check, ``play_values`` what the
    planning host sees of them (the play's values, or the role's defaults), and ``validate(spec,
    values)`` Ansible's argument spec check: the errors, as its messages.
    """
    sources: list[tuple[str, dict[str, t.Any]]] = []
    for host in play_hosts:
        if host not in hostvars:
            continue
        host_vars = hostvars[host]
        given: dict[str, t.Any] = {}
        for name in specs:
            if name in host_vars:
                try:
                    given[name] = host_vars[name]
                except VariableError as exc:
                    problems.add(str(exc))
        if given:
            sources.append((f"host {host}", given))
    # The planning host's values that no host's inventory gives come from the play (or the role's defaults).
    from_inventory = [values for _where, values in sources]
    played = {
        name: value
        for name, value in play_values.items()
        if name in specs and not any(values.get(name, object()) == value for values in from_inventory)
    }
    sources.insert(0, ("the play", played))
    seen: set[str] = set()
    for where, values in sources:
        for problem in setting_problems(where, values, specs, validate):
            if problem not in seen:
                seen.add(problem)
                problems.add(problem)


def setting_problems(
    where: str,
    values: dict[str, t.Any],
    specs: t.Mapping[str, t.Mapping[str, t.Any]],
    validate: t.Callable[[dict[str, t.Any], dict[str, t.Any]], list[str]],
) -> list[str]:
    spec = {name: dict(specs[name]) for name in values}
    errors = validate(spec, values)
    if errors:
        return [f"{where}: {error}" for error in errors]
    result = []
    for name, (low, high, unit) in RANGES.items():
        value = values.get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not low <= number <= high:
            result.append(f"{where}: {name}: {value!r} is not from {low:g} to {high:g} {unit}")
    return result
