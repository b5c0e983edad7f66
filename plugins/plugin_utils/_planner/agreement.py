# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: every host that the topology concerns must see the same topology.

The planner runs once per play (``run_once``) with the topology settings as the planning host sees
them. A topology variable kept where only some hosts see it (``gre_mesh_hub_spoke`` in the
``spokes`` group's variables) would make the plan depend on which host plans: from the hub's
variables the topology is empty, and the run would delete every tunnel it made. So before anything
is planned, the settings are read from the inventory (``hostvars``, which holds inventory and
extra variables, not the play's) for every host the run concerns, and the run fails when they
disagree, naming the variable, the hosts on each side and where each value was found.

The hosts it concerns: the play's hosts, the nodes of the topology the play plans, and the hosts
that see another topology in their own variables in which one of those takes part (with
``--limit hub``, the spokes that list the hub in their ``gre_mesh_hub_spoke``).

A setting that the play itself gives (play vars, role parameters: a value no inventory host has,
other than the role's default) is the same for every host of the play, and is not compared.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import Problems, VariableError
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.settings import OVERRIDES
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.topology import expand_topology, is_list

TOPOLOGY = ("links", "full_mesh", "hub_spoke", "external_peers")
# A setting that a link of gre_mesh_links may also set (settings.OVERRIDES) can differ per link.
PER_LINK_HINT = "; for some links only, set {name} on those links in gre_mesh_links"
PREFIX = "gre_mesh_"
# Values written in a message are cut to this many characters.
SHOWN = 120
HostVars = t.Mapping[str, t.Mapping[str, t.Any]]


def canonical(value: t.Any) -> str:
    """A value as text that is equal for equal settings (None and an empty list are both 'nothing')."""
    if value is None or (is_list(value) and not value):
        value = []
    return json.dumps(value, sort_keys=True, default=str)


def check_agreement(
    hostvars: HostVars,
    groups: t.Mapping[str, t.Sequence[str]],
    play_hosts: t.Sequence[str],
    values: dict[str, t.Any],
    defaults: dict[str, t.Any],
    problems: Problems,
) -> None:
    """Record a problem for each topology setting that the hosts concerned see differently.

    ``values`` are the settings as the planning host sees them, ``defaults`` the role's defaults.
    """
    found = inventory_values(hostvars, values, problems)
    if problems.items:
        return
    played = {name for name, value in values.items() if set_by_play(value, defaults[name], found[name])}
    # What each host sees: the play's value where the play gives it, else its inventory's, else the role's default.
    seen = {name: values[name] if name in played else defaults[name] for name in values}
    for name in played:
        found[name] = {}
    concerned = concerned_hosts(hostvars, groups, play_hosts, values, found, seen)
    for name in values:
        sides: dict[str, list[str]] = {}
        for host in sorted(concerned):
            value = found[name].get(host, seen[name])
            sides.setdefault(canonical(value), []).append(host)
        if len(sides) > 1:
            problems.add(disagreement(name, sides, found[name], hostvars, groups))


def inventory_values(hostvars: HostVars, values: dict[str, t.Any], problems: Problems) -> dict[str, dict[str, t.Any]]:
    """For each setting, the hosts whose inventory (or extra vars) sets it, and the value each sees."""
    found: dict[str, dict[str, t.Any]] = {name: {} for name in values}
    for host in hostvars:
        host_vars = hostvars[host]
        for name in values:
            variable = PREFIX + name
            if variable not in host_vars:
                continue
            try:
                found[name][host] = host_vars[variable]
            except VariableError as exc:
                problems.add(str(exc))
    return found


def set_by_play(value: t.Any, default: t.Any, found: dict[str, t.Any]) -> bool:
    """Whether the play gives this setting: a value other than the default that no host's inventory has."""
    text = canonical(value)
    if text == canonical(default):
        return False
    return all(canonical(other) != text for other in found.values())


def concerned_hosts(
    hostvars: HostVars,
    groups: t.Mapping[str, t.Sequence[str]],
    play_hosts: t.Sequence[str],
    values: dict[str, t.Any],
    found: dict[str, dict[str, t.Any]],
    seen: dict[str, t.Any],
) -> set[str]:
    """The play's hosts, the nodes of its topology, and the hosts whose own topology reaches either."""
    concerned = {host for host in play_hosts if host in hostvars} | topology_hosts(hostvars, groups, values)
    # The other topologies that hosts see in their own variables, each once.
    views: dict[str, dict[str, t.Any]] = {}
    for host in {host for name in TOPOLOGY for host in found[name]}:
        view = {name: found[name].get(host, seen[name]) for name in TOPOLOGY}
        views.setdefault(canonical(view), view)
    reached = set(concerned)
    for view in views.values():
        nodes = topology_hosts(hostvars, groups, view)
        if nodes & concerned:
            reached |= nodes
    return reached


def topology_hosts(hostvars: HostVars, groups: t.Mapping[str, t.Sequence[str]], view: dict[str, t.Any]) -> set[str]:
    """The inventory hosts that a topology links (its problems are left to the planner's own check)."""
    externals: t.Any = view.get("external_peers")
    external_names = {
        str(entry.get("name")) for entry in (externals if is_list(externals) else []) if isinstance(entry, t.Mapping)
    }

    def is_host(name: str) -> bool:
        return name in hostvars

    specs = expand_topology(
        groups, is_host, external_names, view.get("links"), view.get("full_mesh"), view.get("hub_spoke"), Problems()
    )
    return {name for pair in specs for name in pair if is_host(name)}


def disagreement(
    name: str,
    sides: dict[str, list[str]],
    found: dict[str, t.Any],
    hostvars: HostVars,
    groups: t.Mapping[str, t.Sequence[str]],
) -> str:
    parts = [
        f"{shown(text)} for {', '.join(hosts)} ({where(name, hosts, found, hostvars, groups)})"
        for text, hosts in sorted(sides.items(), key=lambda item: (-len(item[1]), item[1]))
    ]
    return (
        f"{PREFIX}{name}: the hosts of this play and their peers see different values, so the plan would depend on "
        f"which host plans: {'; '.join(parts)}. Topology settings must be the same for every host: set them in "
        "group_vars/all, or in the play's vars" + (PER_LINK_HINT.format(name=name) if name in OVERRIDES else "")
    )


def shown(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def where(
    name: str, hosts: list[str], found: dict[str, t.Any], hostvars: HostVars, groups: t.Mapping[str, t.Sequence[str]]
) -> str:
    """Where these hosts' value of a setting comes from: its file and line when Ansible knows, else their group."""
    if not any(host in found for host in hosts):
        return "not set for them: the role's default"
    origins = sorted({origin for host in hosts for origin in [origin_of(hostvars[host], PREFIX + name)] if origin})
    if origins:
        return "set in " + ", ".join(origins[:2]) + (" and more" if len(origins) > 2 else "")
    members = set(hosts)
    for group in sorted(groups):
        if group not in ("all", "ungrouped") and set(groups[group]) == members:
            return f"set for every host of group {group}"
    return "set in their inventory variables"


def origin_of(host_vars: t.Mapping[str, t.Any], variable: str) -> str | None:
    """The file and line a host's variable was read from, when the host's variables can tell (ansible-core 2.19+)."""
    origin = getattr(host_vars, "origin", None)
    return origin(variable) if callable(origin) else None
