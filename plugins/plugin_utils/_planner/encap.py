# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: the planner's part of GRE in UDP.

A link with ``encap`` (``gre_mesh_encap``, or ``encap`` on the link in ``gre_mesh_links``) carries
its GRE in UDP with the kernel's FOU (``fou``: a UDP header) or GUE (``gue``: a UDP header and a
4-byte GUE header), for paths that drop IP protocol 47. Each end sends to UDP port ``encap_port``
of the other (``gre_mesh_encap_port``, or ``encap_port`` on the link; the source port is chosen by
the kernel per flow) and receives on that same port: gre_tunnel keeps a FOU receive port of the
link's kind there (``ip fou add port P ipproto 47``, or ``gue``). One port of a host receives one
kind, so links of one host that share a port share its kind too (``check_ports``). The host's
firewall lets that UDP port in from exactly the link's peer, instead of IP protocol 47
(``encap_peers`` of the host's plan, for gre_firewall's ``encap_peers``).
"""

from __future__ import annotations

import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import ENCAP_MODES
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import Link, Node, Problems

# The ports of IKE (500) and of ESP in UDP (4500), which strongSwan holds on a host with IPsec links.
IKE_PORTS = (500, 4500)


def check_ipsec(links: list[Link], problems: Problems) -> None:
    """IPsec and GRE in UDP on one link: refused (for now).

    The role's IPsec protects GRE (its policies select IP protocol 47, strongSwan's ``dynamic[gre]``),
    which GRE in UDP no longer is on the wire: the packets would leave unprotected.
    """
    for link in links:
        if link.ipsec and link.encap is not None:
            problems.add(
                f"{link.label}: ipsec is on and so is encap {link.encap} ({encap_source(link)}), but the role's IPsec "
                "protects GRE (IP protocol 47), which GRE in UDP is not: its packets would leave unencrypted. Choose "
                "one for this link: ipsec, where ESP passes the path, or encap, where only UDP does (ipsec: false or "
                "encap: none on the link in gre_mesh_links)"
            )


def check_modes(links: list[Link], problems: Problems) -> None:
    """GRE in UDP over IPv4 only: gre_tunnel refuses encap for the IPv6 modes (their receive ports need fou6)."""
    for link in links:
        if link.encap is not None and link.mode not in ENCAP_MODES:
            problems.add(
                f"{link.label}: encap {link.encap} ({encap_source(link)}) carries GRE in UDP over IPv4 only (modes "
                f"{' and '.join(ENCAP_MODES)}), but the link's mode is {link.mode}: linuxnet.gre.gre_tunnel does not "
                "manage the IPv6 receive ports (fou6) it would need. Give the link IPv4 public addresses, or encap: none"
            )


def encap_source(link: Link) -> str:
    origin = link.spec.override_origin
    return f"{origin}.encap" if origin and "encap" in link.spec.overrides else "gre_mesh_encap"


def port_source(link: Link) -> str:
    origin = link.spec.override_origin
    return f"{origin}.encap_port" if origin and "encap_port" in link.spec.overrides else "gre_mesh_encap_port"


def check_ports(adjacency: t.Mapping[str, list[Link]], problems: Problems) -> None:
    """On each node, one kind per receive port, and no port of IKE where IPsec runs.

    A FOU receive port takes one kind (``ip fou add port P ipproto 47`` or ``gue``); the kernel
    refuses a second. strongSwan holds UDP 500 and 4500 on a host with IPsec links.
    """
    for name, links in sorted(adjacency.items()):
        node = links[0].low if links[0].low.name == name else links[0].high
        kinds: dict[int, Link] = {}
        ipsec = next((link for link in links if link.ipsec), None)
        for link in links:
            if link.encap is None or link.encap_port is None:
                continue
            other = kinds.setdefault(link.encap_port, link)
            if other.encap != link.encap:
                problems.add(
                    f"{node.label}: its links to {other.peer_of(node).name} (encap {other.encap}, {encap_source(other)}) "
                    f"and to {link.peer_of(node).name} (encap {link.encap}, {encap_source(link)}) both receive on UDP "
                    f"port {link.encap_port} ({port_source(other)}, {port_source(link)}), which takes one kind only; "
                    "give one of them another encap_port in gre_mesh_links, or the same encap"
                )
            if ipsec is not None and link.encap_port in IKE_PORTS:
                problems.add(
                    f"{node.label}: its link to {link.peer_of(node).name} receives GRE in UDP on port "
                    f"{link.encap_port} ({port_source(link)}), which strongSwan holds for IKE on this host (its "
                    f"{ipsec.label} has ipsec on); choose another encap_port"
                )


def encap_option(link: Link) -> dict[str, t.Any]:
    """gre_tunnel's ``encap`` option for both tunnels of the link: the kind and the peer's receive port."""
    return {"type": link.encap, "dport": link.encap_port}


def encap_peers(node: Node, links: list[Link]) -> list[dict[str, t.Any]]:
    """What the node's firewall lets in as GRE in UDP: per receive port, the public addresses of its peers there."""
    by_port: dict[int, set[str]] = {}
    for link in links:
        if link.encap is not None and link.encap_port is not None:
            by_port.setdefault(link.encap_port, set()).add(link.peer_of(node).public_text)
    return [{"port": port, "peers": sorted(peers)} for port, peers in sorted(by_port.items())]


def fou_commands(tunnels: list[dict[str, t.Any]]) -> list[str]:
    """The receive ports an external peer needs for its tunnels in UDP, each once (before its tunnels)."""
    ports: dict[tuple[int, str, int], str] = {}
    for tunnel in tunnels:
        encap = tunnel.get("encap")
        if not encap:
            continue
        version = 6 if ":" in str(tunnel["local"]) else 4
        kind = "ipproto 47" if encap["type"] == "fou" else "gue"
        family = " -6" if version == 6 else ""
        ports.setdefault((version, encap["type"], encap["dport"]), f"ip fou add port {encap['dport']} {kind}{family}")
    return [ports[key] for key in sorted(ports)]
