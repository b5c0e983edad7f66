# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: turns the planner's topology settings into a set of links.

Three topologies combine: explicit links (``gre_mesh_links``), the full mesh of groups
(``gre_mesh_full_mesh``) and hubs × spokes (``gre_mesh_hub_spoke``). Group members come from the
inventory's ``groups``, never from the hosts of the current play. A pair of nodes is linked at most
once: the same pair from two groups is one link, and an explicit link for a pair that a group also
links gives that link its per-link settings. Listing one pair twice in ``gre_mesh_links`` is an
error.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import difflib
import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import LOCALHOST_NAMES, LinkSpec, Problems
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.settings import OVERRIDES, parse_overrides

Pair = tuple[str, str]
HUB_SPOKE_KEYS = ("hubs", "spokes")
# The optional key of a gre_mesh_hub_spoke entry: the networks its spokes route through their hub
# instead of one route per network (routes.read_summaries).
SUMMARY_KEY = "summary"
# How many of the inventory's groups a message about a group that is not there lists.
LISTED_GROUPS = 10


@dataclasses.dataclass(frozen=True)
class Scope:
    """Expand only the links of ``node``, a member of ``groups`` (its ``group_names`` and ``all``).

    Group lists are then read only where they hold the node's peers: a spoke reads the hubs, never
    the other spokes.
    """

    node: str
    groups: frozenset[str]


def is_list(value: t.Any) -> bool:
    return isinstance(value, c.Sequence) and not isinstance(value, (str, bytes))


def items_of(variable: str, value: t.Any, shape: str, problems: Problems) -> list[tuple[str, t.Any]]:
    """The items of a list setting, each with its name (``gre_mesh_links[0]``): none when it is not set, and a
    problem when it is not a list (``shape`` says what it must be)."""
    if value is None:
        return []
    if not is_list(value):
        problems.add(f"{variable}: must be {shape}")
        return []
    return [(f"{variable}[{number}]", item) for number, item in enumerate(value)]


def expand_topology(
    groups: t.Mapping[str, t.Sequence[str]],
    is_host: t.Callable[[str], bool],
    external_names: t.Container[str],
    links: t.Any,
    full_mesh: t.Any,
    hub_spoke: t.Any,
    problems: Problems,
    scope: Scope | None = None,
) -> dict[Pair, LinkSpec]:
    """Every link of the topology, by its pair of node names (sorted); with ``scope``, the links of one node.

    With ``scope``, the work is in proportion to that node's links (and to the length of
    gre_mesh_links), not to the size of the topology.
    """
    result: dict[Pair, LinkSpec] = {}
    add_explicit_links(result, links, is_host, external_names, problems, scope)
    add_full_meshes(result, groups, full_mesh, problems, scope)
    add_hub_spokes(result, groups, hub_spoke, problems, scope)
    return result


def pair_of(a: str, b: str) -> Pair:
    return (a, b) if a < b else (b, a)


def add_explicit_links(
    result: dict[Pair, LinkSpec],
    links: t.Any,
    is_host: t.Callable[[str], bool],
    external_names: t.Container[str],
    problems: Problems,
    scope: Scope | None,
) -> None:
    shape = "a list of links, each two host names or a dict with `hosts` and per-link settings"
    for origin, item in items_of("gre_mesh_links", links, shape, problems):
        if scope is not None and not mentions(item, scope.node):
            continue
        ends, overrides = parse_link_item(origin, item, problems)
        if ends is None:
            continue
        unknown = [name for name in ends if not (name in external_names or is_host(name))]
        for name in unknown:
            problems.add(f"{origin}: {unknown_end(name)}")
        if unknown:
            continue
        if ends[0] == ends[1]:
            problems.add(f"{origin}: links {ends[0]} to itself")
            continue
        pair = pair_of(*ends)
        if pair in result:
            problems.add(f"{origin}: the link {pair[0]} <-> {pair[1]} is already {result[pair].origin}")
            continue
        result[pair] = LinkSpec(pair, origin, overrides, origin)


def unknown_end(name: str) -> str:
    if name in LOCALHOST_NAMES:
        return (
            f"{name!r} is Ansible's control node, not a host of the inventory, and a loopback address cannot be a GRE "
            "endpoint; link the managed host by its inventory name"
        )
    return f"{name!r} is neither a host of the inventory nor the name of one of gre_mesh_external_peers"


def mentions(item: t.Any, name: str) -> bool:
    """Whether an item of gre_mesh_links may be a link of this node (malformed items are left to the check)."""
    ends: t.Any = item.get("hosts") if isinstance(item, c.Mapping) else item
    return not is_list(ends) or name in ends


def parse_link_item(origin: str, item: t.Any, problems: Problems) -> tuple[list[str] | None, dict[str, t.Any]]:
    """The two ends and the per-link settings of one item of gre_mesh_links."""
    overrides: dict[str, t.Any] = {}
    if isinstance(item, c.Mapping):
        unknown = sorted(str(key) for key in item if key not in ("hosts", *OVERRIDES))
        if unknown:
            problems.add(f"{origin}: unknown key {unknown[0]!r}; a link has hosts, {', '.join(OVERRIDES)}")
            return None, overrides
        before = len(problems.items)
        overrides = parse_overrides(origin, item, problems)
        if len(problems.items) > before:
            return None, overrides
        ends: t.Any = item.get("hosts")
        where = f"{origin}.hosts"
    else:
        ends = item
        where = origin
    if not is_list(ends) or len(ends) != 2 or not all(isinstance(name, str) and name for name in ends):
        problems.add(f"{where}: must be a list of two host names, not {ends!r}")
        return None, overrides
    return [str(name) for name in ends], overrides


def group_members(
    groups: t.Mapping[str, t.Sequence[str]], variable: str, group: t.Any, problems: Problems
) -> list[str] | None:
    """The hosts of a group (members_of), or None, and a problem, when there is no such group."""
    if not group_exists(groups, variable, group, problems):
        return None
    return members_of(groups, group)


def members_of(groups: t.Mapping[str, t.Sequence[str]], group: str) -> list[str]:
    """The hosts of a group, sorted and without repeats (so that links do not depend on the inventory's order)."""
    return sorted(set(groups[group]))


def group_exists(groups: t.Mapping[str, t.Sequence[str]], variable: str, group: t.Any, problems: Problems) -> bool:
    if isinstance(group, str) and group in groups:
        return True
    problems.add(f"{variable}: group {group!r} is not in the inventory; {group_hint(groups, group)}")
    return False


def group_hint(groups: t.Mapping[str, t.Sequence[str]], group: t.Any) -> str:
    """The groups closest to a name that is not one (a typo), or else the first of the inventory's groups."""
    names = sorted(str(name) for name in groups)
    close = difflib.get_close_matches(group, names) if isinstance(group, str) else []
    if close:
        return f"did you mean {' or '.join(repr(name) for name in close)}?"
    if not names:
        return "the inventory has no groups"
    listed = ", ".join(names[:LISTED_GROUPS])
    more = f" and {len(names) - LISTED_GROUPS} more" if len(names) > LISTED_GROUPS else ""
    return f"its groups are {listed}{more}"


def add_full_meshes(
    result: dict[Pair, LinkSpec],
    groups: t.Mapping[str, t.Sequence[str]],
    full_mesh: t.Any,
    problems: Problems,
    scope: Scope | None,
) -> None:
    for variable, group in items_of("gre_mesh_full_mesh", full_mesh, "a list of group names", problems):
        origin = f"gre_mesh_full_mesh group {group!r}"
        if scope is not None:
            if group_exists(groups, variable, group, problems) and group in scope.groups:
                for member in members_of(groups, group):
                    add_generated(result, scope.node, member, origin)
            continue
        members = group_members(groups, variable, group, problems)
        for position, low in enumerate(members or []):
            for high in t.cast(list[str], members)[position + 1 :]:
                add_generated(result, low, high, origin)


def add_hub_spokes(
    result: dict[Pair, LinkSpec],
    groups: t.Mapping[str, t.Sequence[str]],
    hub_spoke: t.Any,
    problems: Problems,
    scope: Scope | None,
) -> None:
    shape = "a list of dicts, each with `hubs` and `spokes` (group names)"
    for variable, item in items_of("gre_mesh_hub_spoke", hub_spoke, shape, problems):
        if (
            not isinstance(item, c.Mapping)
            or not all(key in item for key in HUB_SPOKE_KEYS)
            or any(key not in (*HUB_SPOKE_KEYS, SUMMARY_KEY) for key in item)
        ):
            problems.add(
                f"{variable}: must be a dict with the keys hubs and spokes (group names), and optionally summary "
                f"(networks), not {item!r}"
            )
            continue
        sides = hub_spoke_sides(groups, variable, item, problems, scope)
        if sides is None:
            continue
        hubs, spokes = sides
        both = sorted(set(hubs) & set(spokes))
        for host in both:
            problems.add(
                f"{variable}: host {host} is in both the hubs group {item['hubs']!r} and the spokes group "
                f"{item['spokes']!r}, which would link it to itself"
            )
        if both:
            continue
        origin = f"{variable} ({item['hubs']} x {item['spokes']})"
        for hub in hubs:
            for spoke in spokes:
                add_generated(result, hub, spoke, origin)


def hub_spoke_sides(
    groups: t.Mapping[str, t.Sequence[str]],
    variable: str,
    item: t.Mapping[str, t.Any],
    problems: Problems,
    scope: Scope | None,
) -> tuple[list[str], list[str]] | None:
    """The hubs and the spokes to link; with ``scope``, the node on its side and the whole other side."""
    if scope is None:
        hubs = group_members(groups, f"{variable}.hubs", item["hubs"], problems)
        spokes = group_members(groups, f"{variable}.spokes", item["spokes"], problems)
        return None if hubs is None or spokes is None else (hubs, spokes)
    hubs_known = group_exists(groups, f"{variable}.hubs", item["hubs"], problems)
    spokes_known = group_exists(groups, f"{variable}.spokes", item["spokes"], problems)
    if not (hubs_known and spokes_known):
        return None
    hub, spoke = item["hubs"] in scope.groups, item["spokes"] in scope.groups
    if hub and spoke:
        return [scope.node], [scope.node]
    if hub:
        return [scope.node], members_of(groups, item["spokes"])
    if spoke:
        return members_of(groups, item["hubs"]), [scope.node]
    return None


def add_generated(result: dict[Pair, LinkSpec], a: str, b: str, origin: str) -> None:
    """A link of a group topology, unless the pair is linked already (or is a node with itself)."""
    if a != b:
        pair = pair_of(a, b)
        if pair not in result:
            result[pair] = LinkSpec(pair, origin)
