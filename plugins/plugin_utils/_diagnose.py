# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: from both ends' gre_probe evidence to each link's status and cause.

Pure Python on plain dicts, no I/O. ``diagnose(probes, plan)`` pairs the tunnels of the plan into
links, calls a link up when the small and the full-size pings of every probed end are answered,
and for a link that is down picks exactly one cause from an ordered list of checks, the most
specific evidence first: the interfaces' configuration, then (small pings answered) the MTU,
then where each direction's GRE is lost, from the capture, the counters, the firewall rules'
counters and the reverse-path filter. Each cause is one line that says what the evidence shows
and how to fix it.
"""

from __future__ import annotations

import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import overhead

NOT_A_LINK, SELF = "-", "\\"
# The causes, in the order they are checked. Docs (docs/docsite/rst/verify.rst) and tests name them.
CAUSES = (
    "not_checked",
    "interface_missing",
    "interface_wrong_kind",
    "interface_down",
    "local_not_on_host",
    "endpoint_mismatch",
    "key_mismatch",
    "inner_subnets",
    "mtu_black_hole",
    "host_firewall",
    "rp_filter",
    "not_accepted",
    "path_drops_gre",
    "underlay_unreachable",
    "not_sent",
    "inconclusive",
    "no_reply",
)
# Where a direction's GRE is lost, most specific first.
DIRECTION_ORDER = ("host_firewall", "rp_filter", "not_accepted", "path_drops_gre", "underlay_unreachable", "not_sent")
# How far (seconds) one end's sending and the other end's capture must overlap to tell anything.
MIN_OVERLAP = 0.5


class Cause(t.NamedTuple):
    code: str
    text: str
    fix: str


class End(t.NamedTuple):
    """One end of a link: its host, the peer's name, its tunnel evidence (None: not probed) and its host evidence."""

    host: str
    peer: str
    interface: str
    evidence: dict[str, t.Any] | None
    probe: dict[str, t.Any] | None


# --- the checks ---------------------------------------------------------------------------------


def pings_answered(evidence: dict[str, t.Any], kind: str) -> bool:
    results = evidence["pings"][kind]
    return all(result["received"] > 0 for result in results) and (bool(results) or kind == "full")


def average_rtt(evidence: dict[str, t.Any] | None) -> float | None:
    if not evidence:
        return None
    averages = [r["rtt_ms"]["avg"] for r in evidence["pings"]["small"] if r.get("rtt_ms")]
    return round(sum(averages) / len(averages), 3) if averages else None


def end_works(end: End) -> bool:
    return end.evidence is not None and pings_answered(end.evidence, "small") and pings_answered(end.evidence, "full")


def configuration_cause(end: End, other: End) -> Cause | None:
    """What is wrong with this end's interface, from its own evidence (and the plan)."""
    evidence, host, name = end.evidence, end.host, end.interface
    if evidence is None:
        return None
    planned = evidence["planned"]
    actual = evidence["actual"]
    if not evidence["exists"]:
        return Cause(
            "interface_missing", f"{host} has no interface {name}", f"run playbooks/site.yml to create {name} on {host}"
        )
    mode = planned.get("mode") or "gre"
    if actual["kind"] != mode:
        return Cause(
            "interface_wrong_kind",
            f"{host}'s {name} is a {actual['kind'] or 'non-tunnel'} interface, not a {mode} tunnel",
            f"delete {name} on {host} (ip link del {name}) and run playbooks/site.yml",
        )
    if not actual["up"]:
        return Cause(
            "interface_down",
            f"{host}'s {name} is down (ip link shows it without UP)",
            f"ip link set {name} up on {host}, or run playbooks/site.yml",
        )
    local = actual["local"] or planned.get("local")
    if local and evidence["local_on_host"] is False:
        addresses = [a for a in (end.probe or {}).get("host", {}).get("addresses", []) if is_global(a)]
        return Cause(
            "local_not_on_host",
            f"{host}'s {name} sends from local {local}, which is not an address of {host}"
            + (f" (it has {', '.join(addresses)})" if addresses else ""),
            f"set gre_mesh_local for {host} to its underlay address and run playbooks/site.yml",
        )
    mismatch = endpoint_mismatch(actual, planned)
    if mismatch:
        return Cause(
            "endpoint_mismatch",
            f"{host}'s {name} has {mismatch}",
            f"run playbooks/site.yml, or on {host}: ip link set {name} type {mode}"
            + (f" local {planned['local']}" if planned.get("local") else "")
            + f" remote {planned['remote']}",
        )
    return None


def endpoint_mismatch(actual: dict[str, t.Any], planned: dict[str, t.Any]) -> str | None:
    local, remote = planned.get("local"), planned.get("remote")
    if remote and actual["remote"] == local and actual["local"] == remote:
        return f"local and remote swapped: local {actual['local']} remote {actual['remote']} (planned local {local} remote {remote})"
    wrong = []
    if remote and actual["remote"] != remote:
        wrong.append(f"remote {actual['remote'] or 'any'} where its peer is at {remote}")
    if local and actual["local"] not in (None, local):
        wrong.append(f"local {actual['local']} where the plan has {local}")
    return ", and ".join(wrong) or None


def is_global(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    return not (parsed.is_loopback or parsed.is_link_local)


def pair_cause(a: End, b: End) -> Cause | None:
    """What is wrong between the two ends' settings: keys, inner addresses."""
    if a.evidence is None or b.evidence is None:
        return None
    actual_a, actual_b = a.evidence["actual"], b.evidence["actual"]
    for sender, receiver, out, into in ((a, b, actual_a, actual_b), (b, a, actual_b, actual_a)):
        if out["okey"] != into["ikey"]:
            return Cause(
                "key_mismatch",
                f"{sender.host}'s {sender.interface} sends key {out['okey'] or 'none'} but {receiver.host}'s "
                f"{receiver.interface} expects {into['ikey'] or 'none'}",
                "give both ends the same key (gre_mesh_key, or the link's key) and run playbooks/site.yml",
            )
    if not shares_subnet(actual_a["addresses"], actual_b["addresses"]) or not pings_own_addresses(a, b):
        planned = f"{', '.join(a.evidence['planned']['addresses'] or [])} and {', '.join(b.evidence['planned']['addresses'] or [])}"
        return Cause(
            "inner_subnets",
            f"inner addresses in different subnets: {a.host}'s {a.interface} has {', '.join(actual_a['addresses']) or 'none'}, "
            f"{b.host}'s {b.interface} has {', '.join(actual_b['addresses']) or 'none'}",
            f"run playbooks/site.yml so that both ends get their planned addresses ({planned})",
        )
    return None


def shares_subnet(mine: list[str], theirs: list[str]) -> bool:
    for text in mine:
        own = ipaddress.ip_interface(text)
        for other in theirs:
            peer = ipaddress.ip_interface(other)
            if own.version == peer.version and peer.ip in own.network and own.ip in peer.network and own.ip != peer.ip:
                return True
    return False


def pings_own_addresses(a: End, b: End) -> bool:
    """Each end pings addresses the other end's interface has."""
    for one, other in ((a, b), (b, a)):
        has = {text.split("/")[0] for text in other.evidence["actual"]["addresses"]}  # type: ignore[index]
        if not set(one.evidence["peer_addresses"]) <= has:  # type: ignore[index]
            return False
    return True


def mtu_cause(a: End, b: End) -> Cause | None:
    """Small pings answered: do full-size ones fail?"""
    for end in (a, b):
        if end.evidence is None or pings_answered(end.evidence, "full"):
            continue
        failed = next(r for r in end.evidence["pings"]["full"] if r["received"] == 0)
        headers = 28 if ipaddress.ip_address(failed["address"]).version == 4 else 48
        mtu = end.evidence["actual"]["mtu"]
        planned = end.evidence["planned"]
        keyed = any(planned.get(name) is not None for name in ("key", "ikey", "okey"))
        outer = mtu + overhead(planned.get("mode") or "gre", keyed)
        error = failed.get("error")
        seen = f"the kernel refuses them ({error})" if error else "no answer and no 'fragmentation needed' comes back"
        return Cause(
            "mtu_black_hole",
            f"MTU black hole: small pings pass, but full-size pings with DF from {end.host} through {end.interface} "
            f"({failed['size'] + headers} bytes, tunnel MTU {mtu}) do not: {seen}; the path between {a.host} and {b.host} "
            f"carries less than {outer} bytes",
            "lower the tunnel MTU below the path MTU (gre_mesh_mtu, or the link's mtu) and run playbooks/site.yml, "
            "or let ICMP 'fragmentation needed' (type 3 code 4) through on the path",
        )
    return None


def overlap(sender: dict[str, t.Any], receiver: dict[str, t.Any]) -> float:
    """Seconds during which the sender sent and the receiver captured."""
    send, capture = sender["host"], receiver["host"]
    return min(send["sent_until"], capture["ended"]) - max(send["started"], capture["started"])


def direction_cause(sender: End, receiver: End) -> Cause | None:
    """Where the sender's GRE to the receiver is lost, or None when it arrives and is taken."""
    if sender.evidence is None or receiver.evidence is None:
        return None
    out, into = sender.evidence, receiver.evidence
    remote = into["actual"]["remote"] or into["planned"]["remote"]  # the sender as the receiver sees it
    address = out["actual"]["remote"] or out["planned"]["remote"]  # the receiver as the sender sees it
    s, r = sender.host, receiver.host
    taken = (into["counters"]["rx_packets"] or 0) > 0
    if taken:
        return None
    capture_out = sender.probe["host"]["capture"]["available"]  # type: ignore[index]
    capture_in = receiver.probe["host"]["capture"]["available"]  # type: ignore[index]
    leaves = out["capture"]["sent"] > 0 if capture_out else (out["counters"]["tx_packets"] or 0) > 0
    if not leaves:
        errors = [p["error"] for p in out["pings"]["small"] if p.get("error")]
        return Cause(
            "not_sent",
            f"{s} sends no GRE to {address} through {sender.interface}"
            + (f": {errors[0]}" if errors else f" (tx errors +{out['counters']['tx_errors'] or 0})"),
            f"check {s}'s route to {address} (ip route get {address}) and the tunnel's settings",
        )
    if overlap(sender.probe, receiver.probe) < MIN_OVERLAP:  # type: ignore[arg-type]
        return Cause(
            "inconclusive",
            f"{s}'s pings and {r}'s capture did not run at the same time, so where {s}'s GRE is lost is not known",
            "run verify.yml again; check that the hosts' clocks agree (NTP), and give more forks (-f) if connections are slow",
        )
    arrived = into["capture"]["received"] > 0 if capture_in else None
    nics = ", ".join(into["capture"]["received_on"]) or into["rp_filter"]["interface"] or "its NICs"
    seen = f"GRE from {remote} arrives on {nics}" if arrived else "no capture was possible"
    if arrived is not False:
        for rule in into["firewall"]:
            if rule["delta"]:
                table = f" {rule['table']}" if rule["table"] else ""
                return Cause(
                    "host_firewall",
                    f"{r}'s firewall drops {s}'s GRE: {rule['tool']}{table} {rule['chain']} rule '{rule['rule']}' "
                    f"counted {rule['delta']} packets during the probe ({seen}, {receiver.interface} received +0)",
                    f"allow IP protocol 47 from {remote} in {r}'s firewall before that rule "
                    f"(iptables -I {rule['chain']} -s {remote} -p 47 -j ACCEPT)",
                )
        rp = into["rp_filter"]
        drops = receiver.probe["host"].get("rp_filter_drops")  # type: ignore[index]
        strict = rp["effective"] == 1 and (rp["route_back"] not in (None, rp["interface"]) or bool(drops))
        if strict and (arrived or drops):
            route = f"the route back to {remote} leaves via {rp['route_back']}, not {rp['interface']}"
            return Cause(
                "rp_filter",
                f"reverse-path filtering on {r} drops {s}'s GRE: net.ipv4.conf.{rp['interface']}.rp_filter="
                f"{rp['value']} (all={rp['all']}) and {route}" + (f" (IPReversePathFilter +{drops})" if drops else ""),
                f"on {r}: sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{rp['interface']}.rp_filter=2 (loose), "
                f"or route {remote} back via {rp['interface']}",
            )
    if arrived:
        return Cause(
            "not_accepted",
            f"GRE from {remote} arrives on {r}'s {nics}, but {r}'s {receiver.interface} takes none of it "
            "(received +0): no tunnel of the host matches its addresses or key",
            f"compare {r}'s {receiver.interface} with the plan (ip -details link show {receiver.interface}) "
            "and run playbooks/site.yml",
        )
    underlay = out["pings"]["underlay"]
    if underlay and underlay["received"] == 0:
        error = f", {underlay['error']}" if underlay.get("error") else ""
        return Cause(
            "underlay_unreachable",
            f"{r}'s underlay address {address} is unreachable from {s}: underlay ping {underlay['received']}/"
            f"{underlay['sent']}{error}",
            f"fix the underlay between {s} and {r} (routes, addresses: gre_mesh_public, gre_mesh_local)",
        )
    seen = "a capture on its NICs saw none" if arrived is False else "no capture was possible"
    return Cause(
        "path_drops_gre",
        f"GRE leaves {s} ({out['capture']['sent'] or out['counters']['tx_packets']} packets to {address}) but none "
        f"arrives at {r} ({receiver.interface} received +0, {seen} from {remote}), while underlay pings pass: "
        "something on the path drops IP protocol 47",
        f"allow IP protocol 47 between {address} and {remote} on the path (a router's forwarding rules; on a cloud, "
        'a firewall rule allowing protocol 47 / "gre")',
    )


def reply_cause(a: End, b: End) -> Cause | None:
    """GRE flows both ways, but pings are not answered."""
    for sender, receiver in ((a, b), (b, a)):
        if sender.evidence is None or receiver.evidence is None or pings_answered(sender.evidence, "small"):
            continue
        rp = receiver.evidence["rp_filter_tunnel"]
        if rp["effective"] == 1 and rp["route_back"] not in (None, receiver.interface):
            return Cause(
                "rp_filter",
                f"reverse-path filtering on {receiver.host} drops what comes through {receiver.interface}: "
                f"net.ipv4.conf.{receiver.interface}.rp_filter={rp['value']} (all={rp['all']}) and the route back "
                f"to {sender.host}'s inner address leaves via {rp['route_back']}",
                f"on {receiver.host}: sysctl -w net.ipv4.conf.{receiver.interface}.rp_filter=2, or fix the route",
            )
        address = sender.evidence["peer_addresses"][0] if sender.evidence["peer_addresses"] else "?"
        return Cause(
            "no_reply",
            f"GRE flows both ways, but {receiver.host} does not answer {sender.host}'s pings to {address} "
            f"through {receiver.interface}",
            f"check {receiver.host}'s firewall for ICMP on {receiver.interface}",
        )
    return None


def link_cause(a: End, b: End) -> Cause:
    """The one cause of a link that is down, most specific evidence first."""
    for end in (a, b):
        cause = configuration_cause(end, b if end is a else a)
        if cause:
            return cause
    cause = pair_cause(a, b)
    if cause:
        return cause
    if all(end.evidence is None or pings_answered(end.evidence, "small") for end in (a, b)):
        cause = mtu_cause(a, b)
        if cause:
            return cause
    found = [c for c in (direction_cause(a, b), direction_cause(b, a)) if c]
    for code in DIRECTION_ORDER:
        for cause in found:
            if cause.code == code:
                return cause
    if found:
        return found[0]
    missing = [end for end in (a, b) if end.evidence is None]
    if missing:
        end = missing[0]
        return Cause(
            "not_checked",
            f"{end.host} was not probed (it failed or was unreachable in this run, or is outside the inventory), "
            f"and {end.peer}'s pings through {(b if end is a else a).interface} are not answered",
            f"make {end.host} reachable for Ansible and run verify.yml again",
        )
    return reply_cause(a, b) or Cause(
        "no_reply", f"pings between {a.host} and {b.host} are not answered", "run verify.yml again"
    )


# --- links, matrix, picture ---------------------------------------------------------------------


def ends_of(probes: dict[str, t.Any], plan: dict[str, t.Any]) -> dict[tuple[str, str], dict[str, End]]:
    """Every link of the plan, (low, high) -> {host: End}."""
    links: dict[tuple[str, str], dict[str, End]] = {}
    for host, host_plan in sorted(plan.get("hosts", {}).items()):
        probe = probes.get(host) or None
        tunnels = {e["interface"]: e for e in (probe or {}).get("tunnels", [])}
        for peer in host_plan.get("peers", []):
            key = tuple(sorted((host, peer["peer"])))
            end = End(host, peer["peer"], peer["interface"], tunnels.get(peer["interface"]), probe)
            links.setdefault(key, {})[host] = end
    return links


def diagnose(probes: dict[str, t.Any], plan: dict[str, t.Any]) -> dict[str, t.Any]:
    """Every link's status, round-trip times and (when down) cause; the matrix, the summary and the DOT picture."""
    links = []
    for (low, high), ends in sorted(ends_of(probes, plan).items()):
        a = ends.get(low) or End(low, high, "", None, None)
        b = ends.get(high) or End(high, low, "", None, None)
        probed = [end for end in (a, b) if end.evidence is not None]
        works = bool(probed) and all(end_works(end) for end in probed)
        cause = None if works else link_cause(a, b)
        links.append(
            {
                "hosts": [low, high],
                "status": "up" if works else "down",
                "interfaces": {end.host: end.interface for end in (a, b) if end.interface},
                "addresses": {
                    end.host: (end.evidence["actual"] or {}).get("addresses") or end.evidence["planned"]["addresses"]
                    for end in probed
                    if end.evidence
                },
                "rtt_ms": {end.host: average_rtt(end.evidence) for end in (a, b)},
                "checked_from": [end.host for end in probed],
                "cause": cause.code if cause else None,
                "text": cause.text if cause else None,
                "fix": cause.fix if cause else None,
            }
        )
    hosts = sorted({host for link in links for host in t.cast("list[str]", link["hosts"])})
    down = [link for link in links if link["status"] != "up"]
    return {
        "hosts": hosts,
        "links": links,
        "up": len(links) - len(down),
        "down": len(down),
        "matrix": matrix_cells(hosts, links),
        "table": matrix_lines(hosts, links),
        "summary": [summary_line(link) for link in links],
        "dot": dot(hosts, links),
    }


def matrix_cells(hosts: list[str], links: list[dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    by_pair = {tuple(link["hosts"]): link for link in links}
    cells: dict[str, dict[str, t.Any]] = {}
    for row in hosts:
        cells[row] = {}
        for column in hosts:
            link = by_pair.get(tuple(sorted((row, column))))
            if row == column or link is None:
                cells[row][column] = {"status": "self" if row == column else "not a link", "rtt_ms": None}
            else:
                cells[row][column] = {"status": link["status"], "rtt_ms": link["rtt_ms"].get(row)}
    return cells


def cell_text(cell: dict[str, t.Any]) -> str:
    if cell["status"] == "self":
        return SELF
    if cell["status"] == "not a link":
        return NOT_A_LINK
    rtt = f" {cell['rtt_ms']:.1f}ms" if cell["rtt_ms"] is not None else ""
    return ("up" if cell["status"] == "up" else "DOWN") + rtt


def matrix_lines(hosts: list[str], links: list[dict[str, t.Any]]) -> list[str]:
    """The matrix as text: rows ping columns; a cell is up or DOWN with the row's round-trip time, or - (no link)."""
    cells = matrix_cells(hosts, links)
    texts = [[cell_text(cells[row][column]) for column in hosts] for row in hosts]
    width = max([len(h) for h in hosts] + [len(text) for row in texts for text in row] + [1]) + 2
    lines = ["".ljust(width) + "".join(h.ljust(width) for h in hosts)]
    lines += [row.ljust(width) + "".join(text.ljust(width) for text in texts[i]) for i, row in enumerate(hosts)]
    return [line.rstrip() for line in lines]


def summary_line(link: dict[str, t.Any]) -> str:
    a, b = link["hosts"]
    if link["status"] == "up":
        rtts = [f"{v:.1f}" for v in link["rtt_ms"].values() if v is not None]
        return f"{a} - {b}: up" + (f", {'/'.join(rtts)} ms" if rtts else "")
    return f"{a} - {b}: DOWN [{link['cause']}] {link['text']}. Fix: {link['fix']}"


def quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, newlines as DOT's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def dot(hosts: list[str], links: list[dict[str, t.Any]]) -> str:
    """The topology for Graphviz: each link green (up) or red and dashed (down, labelled with its cause).

    Each end of a link is labelled with that end's inner addresses, next to its node.
    """
    lines = [
        "graph gre_links {",
        '  graph [layout=circo, mindist=2.2, fontname="Helvetica", label="GRE links: green up, red down", labelloc=t];',
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10, labelfontname="Helvetica", labelfontsize=9, penwidth=2.5, '
        "labeldistance=4, labelangle=0];",
    ]
    lines += [f"  {quote(host)};" for host in hosts]
    for link in links:
        a, b = link["hosts"]
        up = link["status"] == "up"
        color = quote("#2e8b57" if up else "#d62728")
        ends = [", ".join(address.split("/")[0] for address in link["addresses"].get(host, [])) for host in (a, b)]
        attributes = [
            f"color={color}",
            f"labelfontcolor={color}",
            f"taillabel={quote(ends[0])}",
            f"headlabel={quote(ends[1])}",
            f"tooltip={quote(summary_line(link))}",
        ]
        if not up:
            attributes += ["style=dashed", f"fontcolor={color}", f"label={quote(str(link['cause']))}"]
        lines.append(f"  {quote(a)} -- {quote(b)} [{', '.join(attributes)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
