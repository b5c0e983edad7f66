# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the planner's inner addresses, a stable subnet per link.

The link between the nodes with ids i < j is link number ``j * (j - 1) / 2 + i`` (0 for ids 0 and 1,
then 1 and 2 for ids 0–2 and 1–2, 3, 4, 5 for ids 0–3, 1–3, 2–3…). Its IPv4 subnet is that number
of ``/prefix`` blocks after the start of the pool, and its IPv6 subnet likewise in the IPv6 pool.
The number depends on the two ids alone, so links never move when others come or go, and two
links get the same number only when their two ids are the same. The end with the lower id takes
the first address of the subnet (``.1`` of a /30 or /126, ``.0`` of a /31 or /127), the other end
the next one. A per-link ``subnet`` (``subnet6``) replaces the pool's.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import (
    Block,
    IPAddress,
    IPNetwork,
    Link,
    Node,
    Problems,
    Settings,
)


def pair_index(a: int, b: int) -> int:
    """The number of the link between the nodes with ids ``a`` and ``b`` (a != b)."""
    low, high = (a, b) if a < b else (b, a)
    return high * (high - 1) // 2 + low


def assign_addresses(links: list[Link], settings: Settings, problems: Problems) -> None:
    """Give every link its subnets and both ends their inner addresses."""
    pools = [
        (name, pool, prefix, pool.num_addresses)
        for name, pool, prefix in (
            ("subnet", settings.pool, settings.prefix),
            ("subnet6", settings.pool6, settings.prefix6),
        )
        if pool is not None
    ]
    too_far: set[int] = set()
    for link in links:
        link.blocks = []
        link.addresses = {"low": [], "high": []}
        for name in ("subnet", "subnet6"):
            override = link.spec.overrides.get(name)
            if override is not None:
                link.blocks.append(Block(override.version, int(override.network_address), override.prefixlen))
        for name, pool, prefix, size in pools:
            if name not in link.spec.overrides:
                block = pool_block(pool, prefix, link.index, size)
                if block is None:
                    too_far.add(pool.version)
                else:
                    link.blocks.append(block)
        link.blocks.sort()
        for block in link.blocks:
            low, high = (0, 1) if block.prefixlen in (31, 127) else (1, 2)
            link.addresses["low"].append(f"{address_text(block.version, block.start + low)}/{block.prefixlen}")
            link.addresses["high"].append(f"{address_text(block.version, block.start + high)}/{block.prefixlen}")
    for version in sorted(too_far):
        report_pool_too_small(links, settings, version, problems)


def address_text(version: int, number: int) -> str:
    """An address as text, as Python's ipaddress writes it (the IPv4 case, the common one, without it: faster)."""
    if version == 4:
        return socket.inet_ntoa(number.to_bytes(4, "big"))
    return str(ipaddress.IPv6Address(number))


def pool_block(pool: IPNetwork, prefix: int, index: int, pool_size: int) -> Block | None:
    """Block ``index`` of size ``/prefix`` in the pool (of ``pool_size`` addresses), or None when the pool ends first."""
    size = 1 << (pool.max_prefixlen - prefix)
    if (index + 1) * size > pool_size:
        return None
    return Block(pool.version, int(pool.network_address) + index * size, prefix)


def report_pool_too_small(links: list[Link], settings: Settings, version: int, problems: Problems) -> None:
    """One problem for the pool: the link with the highest number that does not fit, and the pool it would need."""
    pool = settings.pool if version == 4 else settings.pool6
    prefix = settings.prefix if version == 4 else settings.prefix6
    pool = t.cast(IPNetwork, pool)
    override = "subnet" if version == 4 else "subnet6"
    worst = max((link for link in links if override not in link.spec.overrides), key=lambda link: link.index)
    blocks = pool.num_addresses >> (pool.max_prefixlen - prefix)
    needed = (worst.index + 1) << (pool.max_prefixlen - prefix)
    needed_prefix = pool.max_prefixlen - (needed - 1).bit_length()
    variable = "gre_mesh_pool" if version == 4 else "gre_mesh_pool6"
    problems.add(
        f"{variable}: {pool} holds {blocks} /{prefix} subnets, too few for {worst.label}, link number {worst.index} "
        f"(ids {worst.low.node_id} and {worst.high.node_id}); use a /{needed_prefix} or larger pool, "
        "or smaller ids (gre_mesh_id)"
    )


def check_overlaps(links: list[Link], problems: Problems) -> None:
    """No two links may share inner addresses (pool subnets never do; per-link subnets may)."""
    spans = sorted(((block, link) for link in links for block in link.blocks), key=lambda span: span[0])
    for (previous, first), (current, second) in zip(spans, spans[1:], strict=False):
        if previous.version == current.version and current.start <= previous.end:
            problems.add(
                f"{first.label} and {second.label}: their inner subnets {previous} and {current} overlap; "
                "give one of them another subnet"
            )


def inner_networks(links: list[Link], settings: Settings) -> list[tuple[str, IPNetwork]]:
    """Where inner addresses come from, each with the variable that sets it: the pools, then per-link subnets."""
    networks: list[tuple[str, IPNetwork]] = []
    if settings.pool is not None:
        networks.append(("gre_mesh_pool", settings.pool))
    if settings.pool6 is not None:
        networks.append(("gre_mesh_pool6", settings.pool6))
    for link in links:
        for name in ("subnet", "subnet6"):
            if name in link.spec.overrides:
                networks.append((f"{link.spec.override_origin}.{name}", link.spec.overrides[name]))
    return networks


_T = t.TypeVar("_T")


def addresses_in(items: list[_T], keys: t.Sequence[tuple[int, int]], network: IPNetwork) -> list[_T]:
    """The ``items`` inside ``network``: ``keys`` are their addresses as sorted (version, number) pairs."""
    start = int(network.network_address)
    first = bisect.bisect_left(keys, (network.version, start))
    last = bisect.bisect_right(keys, (network.version, start + network.num_addresses - 1))
    return items[first:last]


def check_underlay(links: list[Link], nodes: t.Iterable[Node], settings: Settings, problems: Problems) -> None:
    """No underlay address may fall in a pool or a per-link subnet: the inner routes would take it over."""
    underlay = sorted(underlay_addresses(nodes), key=lambda item: (item[0].version, int(item[0])))
    keys = [(address.version, int(address)) for address, _owner in underlay]
    for variable, network in inner_networks(links, settings):
        for address, owner in addresses_in(underlay, keys, network):
            problems.add(
                f"{variable}: {network} contains {address}, {owner}; inner and underlay addresses must not overlap, "
                "choose another range"
            )


def underlay_addresses(nodes: t.Iterable[Node]) -> list[tuple[IPAddress, str]]:
    """Every known underlay address, with whose it is (``the public address of host a (ansible_host)``)."""
    result: dict[IPAddress, str] = {}
    for node in nodes:
        result.setdefault(node.public, f"the public address of {node.label} ({node.public_source})")
        for version, address in sorted(node.local.items()):
            result.setdefault(address, f"the local address of {node.label} ({node.local_source[version]})")
    return list(result.items())
