# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the planner's tunnel MTUs, from the underlay MTUs of both ends.

A link without an MTU of its own (``mtu`` in ``gre_mesh_links``, or ``gre_mesh_mtu``) gets the
smaller underlay MTU of its two ends less the GRE overhead of its mode (and key), so that a
full-size packet with DF set fits through the whole path. When either end's underlay MTU is
unknown, the link gets none: the kernel chooses when the tunnel is created, and the gre_tunnel
module leaves an existing tunnel's MTU alone, so runs with and without a peer's facts (``--limit``)
never undo each other.

GRE in UDP (``encap``) adds its UDP header (8 bytes; 12 with GUE's own header) to the overhead,
as the kernel counts it (module_utils/_constants.ENCAP_OVERHEAD).

A link's own MTU (or ``gre_mesh_mtu``) must fit the underlay MTUs that are known: a larger one
would be refused, or dropped, on the path (``underlay_fit_problem``). Where neither end's underlay
MTU is known, there is nothing to check it against.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    ENCAP_OVERHEAD,
    IPV6_MODES,
    max_tunnel_mtu,
    overhead,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import Link, Node, Problems
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.nodes import FACTS, FAILED, read_var
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.settings import Checker, is_unset

UNDERLAY_MTU = "gre_mesh_underlay_mtu"
# GRE over IPsec (``ipsec``): ESP in transport mode with AES-GCM, the only proposals the role
# configures, adds its header (SPI and sequence number: 8 bytes), the IV (8), the trailer (pad
# length and next header: 2) and the ICV (16), and pads what it carries to a multiple of 4 bytes;
# NAT traversal wraps it in UDP (8). IKE decides on NAT traversal at run time, where it finds a NAT
# on the path, so its 8 bytes are always reserved: the MTU holds either way.
ESP_OVERHEAD = 8 + 8 + 2 + 16
NAT_T_OVERHEAD = 8
# The start of the mtu_source of a computed MTU; check_mtus adds a hint to its problems.
COMPUTED = "the tunnel MTU from the underlay MTUs"


def host_underlay_mtu(node: Node, host_vars: t.Mapping[str, t.Any], version: int) -> tuple[int | None, str, str | None]:
    """The MTU of the host's underlay for one IP version: (MTU or None when unknown, source, problem).

    ``gre_mesh_underlay_mtu`` when set, else the ``mtu`` of the host's default interface of that
    version from facts (``ansible_default_ipv4``/``ansible_default_ipv6``), else unknown.
    """
    problems = Problems()
    value = read_var(host_vars, UNDERLAY_MTU, problems)
    if value is FAILED:
        return None, UNDERLAY_MTU, problems.items[0]
    if not is_unset(value):
        number = Checker(problems).mtu(f"host {node.name}: {UNDERLAY_MTU}", value)
        return number, UNDERLAY_MTU, problems.items[0] if problems.items else None
    fact = FACTS[version]
    return fact_mtu(host_vars, fact), f"ansible_{fact}.mtu", None


def fact_mtu(host_vars: t.Mapping[str, t.Any], fact: str) -> int | None:
    """``ansible_facts[fact].mtu``, or the injected ``ansible_<fact>.mtu``; None when missing or not a number."""
    ignored = Problems()  # facts that cannot be read are no facts: the MTU is unknown
    facts = read_var(host_vars, "ansible_facts", ignored)
    found = facts.get(fact) if isinstance(facts, c.Mapping) else None
    if not isinstance(found, c.Mapping):
        found = read_var(host_vars, f"ansible_{fact}", ignored)
    if isinstance(found, c.Mapping):
        return Checker(ignored).mtu("", found.get("mtu"))
    return None


def tunnel_mtu(underlay: int, mode: str, keyed: bool, ipsec: bool, encap: str | None = None) -> int:
    """The largest tunnel MTU whose full-size packets fit an underlay MTU (before the kernel's own limit).

    With IPsec, ESP pads the GRE packet (its header and the inner packet) and its 2-byte trailer to
    a multiple of 4; an outer IP header is a multiple of 4 bytes long, so the tunnel MTU is rounded
    down to where no padding is needed.
    """
    cost = overhead(mode, keyed, encap)
    if not ipsec:
        return underlay - cost
    largest = underlay - cost - ESP_OVERHEAD - NAT_T_OVERHEAD
    return largest - (largest + cost + 2) % 4


IPSEC_COST = f"{ESP_OVERHEAD + NAT_T_OVERHEAD} for IPsec (ESP {ESP_OVERHEAD}, NAT traversal {NAT_T_OVERHEAD})"


ENCAP_COST = {
    "fou": f"{ENCAP_OVERHEAD['fou']} for GRE in UDP with fou (its UDP header)",
    "gue": f"{ENCAP_OVERHEAD['gue']} for GRE in UDP with gue (its UDP header and GUE's 4-byte header)",
}


def cost_text(link: Link) -> str:
    """What the link's encapsulation costs, in words, for the source of a computed MTU."""
    keyed = link.key is not None
    text = f"{overhead(link.mode, keyed)} for {link.mode}{' with a key' if keyed else ''}"
    if link.encap is not None:
        text += f", {ENCAP_COST[link.encap]}"
    return text + (f", {IPSEC_COST} and ESP's padding" if link.ipsec else "")


def adds_text(link: Link) -> str:
    """What the link's encapsulation adds to each packet, in words, for the problems of a given MTU."""
    keyed = link.key is not None
    text = f"{link.mode}{' with a key' if keyed else ''} adds {overhead(link.mode, keyed)} bytes"
    if link.encap is not None:
        text += f", {ENCAP_COST[link.encap]}"
    return text + (f", {IPSEC_COST} and ESP's padding" if link.ipsec else "")


def family(mode: str) -> int:
    return 6 if mode in IPV6_MODES else 4


def add_underlay_mtus(links: list[Link], hostvars: t.Mapping[str, t.Mapping[str, t.Any]], problems: Problems) -> None:
    """Each host's underlay MTU for the family of each of its links, read once per host and family.

    External peers have theirs from their entry in ``gre_mesh_external_peers`` already.
    """
    done: set[tuple[str, int]] = set()
    for link in links:
        version = family(link.mode)
        for node in (link.low, link.high):
            if node.external or (node.name, version) in done:
                continue
            done.add((node.name, version))
            mtu, source, problem = host_underlay_mtu(node, hostvars[node.name], version)
            if problem is not None:
                problems.add(problem)
            elif mtu is not None:
                node.underlay_mtu[version] = mtu
                node.underlay_mtu_source[version] = source


def assign_mtus(links: list[Link]) -> None:
    """The MTU of each link without one of its own, from the underlay MTUs of both its ends (keys must be known)."""
    for link in links:
        if link.mtu is not None:
            continue
        version = family(link.mode)
        low, high = link.low.underlay_mtu.get(version), link.high.underlay_mtu.get(version)
        if low is None or high is None:
            continue
        keyed = link.key is not None
        # Above the largest MTU the kernel takes for the mode, the largest it takes (a 65535 underlay).
        link.mtu = min(
            tunnel_mtu(min(low, high), link.mode, keyed, link.ipsec, link.encap),
            max_tunnel_mtu(link.mode, keyed, link.encap),
        )
        link.mtu_source = (
            f"{COMPUTED} ({link.low.label}: {low}, {link.low.underlay_mtu_source[version]}; "
            f"{link.high.label}: {high}, {link.high.underlay_mtu_source[version]}) less {cost_text(link)}"
        )


def underlay_fit_problem(link: Link) -> str | None:
    """Why a given tunnel MTU is too large for the known underlay MTUs of the link's ends, or None.

    The largest MTU that fits is the smaller known underlay MTU less the overhead of the link's mode
    and key (an automatic key too: keys must be known). An end whose underlay MTU is unknown does
    not count; when neither is known, nothing is checked. An MTU above what the kernel takes for the
    mode at all is left to the module's own rule (check_mtus).
    """
    if link.mtu is None or link.mtu_source.startswith(COMPUTED):
        return None
    version = family(link.mode)
    ends = (link.low, link.high)
    known = [node.underlay_mtu[version] for node in ends if version in node.underlay_mtu]
    keyed = link.key is not None
    if not known or link.mtu > max_tunnel_mtu(link.mode, keyed, link.encap):
        return None
    largest = tunnel_mtu(min(known), link.mode, keyed, link.ipsec, link.encap)
    if link.mtu <= largest:
        return None
    underlays = "; ".join(
        f"{node.label}: {node.underlay_mtu[version]}, {node.underlay_mtu_source[version]}"
        if version in node.underlay_mtu
        else f"{node.label}: unknown"
        for node in ends
    )
    return (
        f"{link.label}: {link.mtu_source}: {link.mtu} does not fit the underlay MTUs ({underlays}): "
        f"{adds_text(link)}, so the largest tunnel MTU that fits is {largest}; lower "
        f"{link.mtu_source}, or unset it to have the MTU follow the underlay"
    )
