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

Routed paths (issue 16; only where the evidence has them, gre_probe's ``routed``): a path is up
when its ping from the host's own network address is answered; one that is down gets one cause
(``PATH_CAUSES``) from the evidence of every host on its planned way there and back, walked hop by
hop along the plan's ``tunnels[].routes``.
"""

from __future__ import annotations

import ipaddress
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import overhead
from ansible_collections.linuxnet.gre.plugins.plugin_utils._diagnose_ipsec import Side, ipsec_cause
from ansible_collections.linuxnet.gre.plugins.plugin_utils._paths import covering

NOT_A_LINK, SELF = "-", "\\"
# The causes, in the order they are checked. Docs (docs/docsite/rst/verify.rst) and tests name them.
CAUSES = (
    "not_checked",
    "interface_missing",
    "interface_wrong_kind",
    "interface_down",
    "local_not_on_host",
    "endpoint_mismatch",
    "ipsec_not_established",
    "esp_dropped",
    "key_mismatch",
    "inner_subnets",
    "mtu_black_hole",
    "host_firewall",
    "rp_filter",
    "not_accepted",
    "path_drops_gre",
    "path_drops_udp",
    "underlay_unreachable",
    "not_sent",
    "inconclusive",
    "no_reply",
)
# Where a direction's GRE is lost, most specific first.
DIRECTION_ORDER = (
    "host_firewall",
    "rp_filter",
    "not_accepted",
    "path_drops_gre",
    "path_drops_udp",
    "underlay_unreachable",
    "not_sent",
)
# How far (seconds) one end's sending and the other end's capture must overlap to tell anything.
MIN_OVERLAP = 0.5


class Cause(t.NamedTuple):
    code: str
    text: str
    fix: str


class Carriage(t.NamedTuple):
    """What carries a link's GRE over the underlay: IP protocol 47 itself, or UDP to ``port`` (GRE in UDP: the
    plan's ``encap``, of ``kind`` fou or gue), as the capture counted it."""

    kind: str | None = None
    port: int | None = None

    @property
    def packets(self) -> str:
        return "GRE" if self.port is None else f"GRE in UDP (udp/{self.port})"

    @property
    def protocol(self) -> str:
        return "IP protocol 47" if self.port is None else f"UDP to port {self.port}"


def carriage(evidence: dict[str, t.Any]) -> Carriage:
    """How the end's tunnel carries its GRE (evidence from before issue 18 has no ``encap``: GRE)."""
    encap = evidence["planned"].get("encap")
    return Carriage(encap["type"], encap["dport"]) if encap else Carriage()


class End(t.NamedTuple):
    """One end of a link: its host, the peer's name, its tunnel evidence (None: not probed), its host evidence,
    and the link's IKE connection there (None: the link has no IPsec)."""

    host: str
    peer: str
    interface: str
    evidence: dict[str, t.Any] | None
    probe: dict[str, t.Any] | None
    connection: str | None = None


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
        encap = planned.get("encap") if isinstance(planned.get("encap"), dict) else {}
        outer = mtu + overhead(planned.get("mode") or "gre", keyed, encap.get("type"))
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
    """Where the sender's GRE (or GRE in UDP) to the receiver is lost, or None when it arrives and is taken."""
    if sender.evidence is None or receiver.evidence is None:
        return None
    out, into = sender.evidence, receiver.evidence
    carried = carriage(out)
    what = carried.packets
    remote = into["actual"]["remote"] or into["planned"]["remote"]  # the sender as the receiver sees it
    address = out["actual"]["remote"] or out["planned"]["remote"]  # the receiver as the sender sees it
    s, r = sender.host, receiver.host
    taken = (into["counters"]["rx_packets"] or 0) > 0
    if taken:
        return None
    # GRE inside ESP (a link with IPsec): a capture on the NICs sees ESP, never the GRE; the counters tell.
    ipsec = sender.connection is not None and receiver.connection is not None
    capture_out = sender.probe["host"]["capture"]["available"] and not ipsec  # type: ignore[index]
    capture_in = receiver.probe["host"]["capture"]["available"] and not ipsec  # type: ignore[index]
    leaves = out["capture"]["sent"] > 0 if capture_out else (out["counters"]["tx_packets"] or 0) > 0
    if not leaves:
        errors = [p["error"] for p in out["pings"]["small"] if p.get("error")]
        return Cause(
            "not_sent",
            f"{s} sends no {what} to {address} through {sender.interface}"
            + (f": {errors[0]}" if errors else f" (tx errors +{out['counters']['tx_errors'] or 0})"),
            f"check {s}'s route to {address} (ip route get {address}) and the tunnel's settings",
        )
    if overlap(sender.probe, receiver.probe) < MIN_OVERLAP:  # type: ignore[arg-type]
        return Cause(
            "inconclusive",
            f"{s}'s pings and {r}'s capture did not run at the same time, so where {s}'s {what} is lost is not known",
            "run verify.yml again; check that the hosts' clocks agree (NTP), and give more forks (-f) if connections are slow",
        )
    arrived = into["capture"]["received"] > 0 if capture_in else None
    nics = ", ".join(into["capture"]["received_on"]) or into["rp_filter"]["interface"] or "its NICs"
    seen = f"{what} from {remote} arrives on {nics}" if arrived else "no capture was possible"
    if arrived is not False:
        rule = counting_rule(into["firewall"])
        if rule is not None:
            match = "-p 47" if carried.port is None else f"-p udp --dport {carried.port}"
            return Cause(
                "host_firewall",
                f"{r}'s firewall drops {s}'s {what}: {chain_of(rule)} rule '{rule['rule']}' "
                f"counted {rule['delta']} packets during the probe ({seen}, {receiver.interface} received +0)",
                f"allow {carried.protocol} from {remote} in {r}'s firewall before that rule "
                f"(iptables -I {rule['chain']} -s {remote} {match} -j ACCEPT)",
            )
        rp = into["rp_filter"]
        drops = receiver.probe["host"].get("rp_filter_drops")  # type: ignore[index]
        strict = rp["effective"] == 1 and (rp["route_back"] not in (None, rp["interface"]) or bool(drops))
        if strict and (arrived or drops):
            route = f"the route back to {remote} leaves via {rp['route_back']}, not {rp['interface']}"
            return Cause(
                "rp_filter",
                f"reverse-path filtering on {r} drops {s}'s {what}: net.ipv4.conf.{rp['interface']}.rp_filter="
                f"{rp['value']} (all={rp['all']}) and {route}" + (f" (IPReversePathFilter +{drops})" if drops else ""),
                f"on {r}: sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{rp['interface']}.rp_filter=2 (loose), "
                f"or route {remote} back via {rp['interface']}",
            )
    if arrived:
        nothing = "no tunnel of the host matches its addresses or key"
        if carried.port is not None:
            nothing = f"{r} has no {carried.kind} receive port {carried.port} (ip fou show), or {nothing}"
        return Cause(
            "not_accepted",
            f"{what} from {remote} arrives on {r}'s {nics}, but {r}'s {receiver.interface} takes none of it "
            f"(received +0): {nothing}",
            f"compare {r}'s {receiver.interface} with the plan (ip -details link show {receiver.interface}) "
            "and run playbooks/site.yml",
        )
    if ipsec:
        # ipsec_link_cause found the ESP SAs established and the sender's ESP counted in at the receiver.
        return Cause(
            "not_accepted",
            f"{s}'s ESP reaches {r} and IPsec is established, but {r}'s {receiver.interface} takes none of the GRE "
            "inside it (received +0): no tunnel of the host matches its addresses or key",
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
    return path_drops_cause(sender, receiver, arrived)


def path_drops_cause(sender: End, receiver: End, arrived: bool | None) -> Cause:
    """The sender's GRE (or GRE in UDP) leaves, none arrives, underlay pings pass: the path drops it. For plain GRE
    the UDP probe tells whether GRE in UDP would pass instead."""
    out, into = t.cast("dict[str, t.Any]", sender.evidence), t.cast("dict[str, t.Any]", receiver.evidence)
    remote = into["actual"]["remote"] or into["planned"]["remote"]
    address = out["actual"]["remote"] or out["planned"]["remote"]
    s, r = sender.host, receiver.host
    carried = carriage(out)
    seen = "a capture on its NICs saw none" if arrived is False else "no capture was possible"
    count = out["capture"]["sent"] or out["counters"]["tx_packets"]
    arrives = f"none arrives at {r} ({receiver.interface} received +0, {seen} from {remote}), while underlay pings pass"
    if carried.port is not None:
        return Cause(
            "path_drops_udp",
            f"GRE in UDP leaves {s} ({count} packets to {address} udp/{carried.port}) but {arrives}: "
            f"something on the path drops UDP to port {carried.port}",
            f"allow UDP to port {carried.port} between {address} and {remote} on the path (a router's forwarding "
            f'rules; on a cloud, a firewall rule allowing "udp" port {carried.port}), or carry the link on a port the '
            "path passes (encap_port on the link in gre_mesh_links, or gre_mesh_encap_port) and run playbooks/site.yml",
        )
    text = f"GRE leaves {s} ({count} packets to {address}) but {arrives}: something on the path drops IP protocol 47"
    fix = (
        f"allow IP protocol 47 between {address} and {remote} on the path (a router's forwarding rules; on a cloud, "
        'a firewall rule allowing protocol 47 / "gre")'
    )
    there = udp_arrival(sender, receiver)
    back = udp_arrival(sender=receiver, receiver=sender)
    lost = [(one, two, found) for one, two, found in ((s, r, there), (r, s, back)) if found and found[1] == 0]
    if lost:
        one, two, (sent, _arrived, port) = lost[0]
        text += f", and UDP to port {port} too (0 of {sent} datagrams from {one} arrived at {two})"
        fix += (
            f"; GRE in UDP (gre_mesh_encap: fou) would not pass this path either, unless UDP to port {port} is "
            "allowed too"
        )
    elif there:
        sent, got, port = there
        counts = f"{got} of {sent} datagrams to udp/{port} from {s} arrived at {r}"
        if back:
            counts = f"{got + back[1]} of {sent + back[0]} datagrams to udp/{port} arrived, both ways"
        hosts = ", ".join(sorted((s, r)))
        fix += (
            f", or carry this link's GRE in UDP, which this path passes ({counts}): gre_mesh_encap: fou for the "
            f"link (in gre_mesh_links: {{hosts: [{hosts}], encap: fou}}), and run playbooks/site.yml"
        )
    return Cause("path_drops_gre", text, fix)


def udp_arrival(sender: End, receiver: End) -> tuple[int, int, int] | None:
    """(datagrams sent, datagrams the receiver's capture saw arrive, port) of the UDP probe from sender to receiver;
    None where it tells nothing: evidence from before issue 18 (no ``udp``), a tunnel not probed so, nothing sent,
    no capture at the receiver, or the two ends probing different ports."""
    out = (sender.evidence or {}).get("udp")
    into = (receiver.evidence or {}).get("udp")
    if not out or not into or out["port"] != into["port"] or not out["sent"]:
        return None
    if not (receiver.probe or {}).get("host", {}).get("capture", {}).get("available"):
        return None
    return int(out["sent"]), int(into["received"]), int(out["port"])


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
    cause = ipsec_link_cause(a, b)
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


def ipsec_link_cause(a: End, b: End) -> Cause | None:
    """A link with IPsec whose IKE is not established at an end (from verify_links.yml's evidence of strongSwan)."""
    if a.connection is None or b.connection is None:
        return None
    sides = [Side(end.host, t.cast(str, end.connection), (end.probe or {}).get("ipsec")) for end in (a, b)]
    addresses = {end.host: str(((end.evidence or {}).get("planned") or {}).get("local") or "?") for end in (a, b)}
    found = ipsec_cause(sides, addresses)
    return Cause(*found) if found else None


# --- links, matrix, picture ---------------------------------------------------------------------


def ends_of(probes: dict[str, t.Any], plan: dict[str, t.Any]) -> dict[tuple[str, str], dict[str, End]]:
    """Every link of the plan, (low, high) -> {host: End}."""
    links: dict[tuple[str, str], dict[str, End]] = {}
    for host, host_plan in sorted(plan.get("hosts", {}).items()):
        probe = probes.get(host) or None
        tunnels = {e["interface"]: e for e in (probe or {}).get("tunnels", [])}
        connections = {entry["peer"]: entry["connection"] for entry in host_plan.get("ipsec", [])}
        for peer in host_plan.get("peers", []):
            key = tuple(sorted((host, peer["peer"])))
            end = End(
                host,
                peer["peer"],
                peer["interface"],
                tunnels.get(peer["interface"]),
                probe,
                connections.get(peer["peer"]),
            )
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
    result: dict[str, t.Any] = {
        "hosts": hosts,
        "links": links,
        "up": len(links) - len(down),
        "down": len(down),
        "matrix": matrix_cells(hosts, links),
        "table": matrix_lines(hosts, links),
        "summary": [summary_line(link) for link in links],
        "dot": dot(hosts, links),
    }
    paths = path_results(probes, plan, links)
    if paths:
        paths_down = [path for path in paths if path["status"] != "up"]
        result.update(
            paths=paths,
            paths_up=len(paths) - len(paths_down),
            paths_down=len(paths_down),
            path_matrix={
                row: {p["network"]: {"status": p["status"], "rtt_ms": p["rtt_ms"]} for p in paths if p["from"] == row}
                for row in sorted({p["from"] for p in paths})
            },
            table=result["table"] + [""] + path_matrix_lines(paths),
            summary=result["summary"] + [path_line(path) for path in paths],
            dot=result["dot"][: -len("}\n")].replace(
                'label="GRE links: green up, red down"', 'label="GRE links and routed networks: green up, red down"'
            )
            + "\n".join(dot_networks(paths))
            + "\n}\n",
        )
    return result


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


# --- routed paths -------------------------------------------------------------------------------

# The causes of a routed path that is down, in the order they are checked. Docs and tests name them.
PATH_CAUSES = (
    "no_source_address",
    "path_not_checked",
    "recursive_routing",
    "link_down",
    "rp_filter",
    "route_missing",
    "route_elsewhere",
    "forwarding_off",
    "forward_firewall",
    "lan_no_route_back",
    "path_no_reply",
)
Hop = tuple[str, str, str]  # (host, its planned interface for the network, the next host)


def counting_rule(rules: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    """The first of gre_probe's drop rules that counted packets during the probe, or None."""
    return next((rule for rule in rules if rule["delta"]), None)


def chain_of(rule: dict[str, t.Any]) -> str:
    """Where a drop rule is, as its tool names it: ``iptables-legacy filter INPUT``, ``nft inet fw input``."""
    table = f" {rule['table']}" if rule["table"] else ""
    return f"{rule['tool']}{table} {rule['chain']}"


def routed_of(probes: dict[str, t.Any], host: str) -> dict[str, t.Any] | None:
    return (probes.get(host) or {}).get("routed")


def next_hop(plan: dict[str, t.Any], host: str, prefix: str) -> tuple[str, str] | None:
    """(interface, peer) of the planned route to ``prefix`` on ``host``, or None."""
    host_plan = plan.get("hosts", {}).get(host) or {}
    peers = {peer["interface"]: peer["peer"] for peer in host_plan.get("peers", [])}
    by_prefix = {
        route["prefix"]: tunnel["name"]
        for tunnel in host_plan.get("tunnels", [])
        for route in tunnel.get("routes") or []
    }
    route = covering(by_prefix, prefix)
    if route is None:
        return None
    return by_prefix[route], peers.get(by_prefix[route], "?")


def chain(plan: dict[str, t.Any], start: str, prefix: str, owner: str) -> list[Hop] | None:
    """The planned hops from ``start`` to ``owner`` for ``prefix``; None where the plan has no route on the way."""
    hops: list[Hop] = []
    host = start
    while host != owner:
        hop = next_hop(plan, host, prefix)
        if hop is None or len(hops) > len(plan.get("hosts", {})):
            return None
        hops.append((host, hop[0], hop[1]))
        host = hop[1]
    return hops


def interface_to(plan: dict[str, t.Any], host: str, peer: str) -> str | None:
    for item in (plan.get("hosts", {}).get(host) or {}).get("peers", []):
        if item["peer"] == peer:
            return str(item["interface"])
    return None


def actual_route(routed: dict[str, t.Any] | None, prefix: str) -> dict[str, t.Any] | None:
    """What the host's kernel does with its planned route to ``prefix`` (or to a summary holding it)."""
    routes = {route["prefix"]: route for route in (routed or {}).get("routes", [])}
    chosen = covering(routes, prefix)
    return None if chosen is None else t.cast("dict[str, t.Any]", routes[chosen])


def tunnels_of(probes: dict[str, t.Any], host: str) -> dict[str, dict[str, t.Any]]:
    return {e["interface"]: e for e in (probes.get(host) or {}).get("tunnels", [])}


def network_of(address: str | None, networks: list[str]) -> str | None:
    if address is None:
        return None
    for network in networks:
        if ipaddress.ip_address(address) in ipaddress.ip_network(network):
            return network
    return None


def recursive_cause(probes: dict[str, t.Any], hops: list[Hop]) -> Cause | None:
    """A hop's tunnel whose own underlay packets are routed into a tunnel (a route of a network holding its remote)."""
    for host, interface, _next in hops:
        tunnels = tunnels_of(probes, host)
        evidence = tunnels.get(interface)
        if evidence is None:
            continue
        back = evidence["rp_filter"]["route_back"]
        remote = (evidence["actual"] or {}).get("remote") or evidence["planned"]["remote"]
        if back in tunnels:
            return Cause(
                "recursive_routing",
                f"recursive routing on {host}: its route to {remote}, the underlay address of {interface}'s far end, "
                f"goes through the tunnel {back}, so the tunnel's own GRE packets are sent into a tunnel",
                f"on {host}, remove the route that sends {remote} into {back} (ip route get {remote} names it): no "
                "network routed through a tunnel may contain a peer's underlay address",
            )
    return None


def link_down_cause(links: dict[tuple[str, str], dict[str, t.Any]], hops: list[Hop]) -> Cause | None:
    for host, _interface, following in hops:
        link = links.get((min(host, following), max(host, following)))
        if link is not None and link["status"] != "up":
            return Cause(
                "link_down",
                f"the link {link['hosts'][0]} - {link['hosts'][1]} on the path is down [{link['cause']}]",
                f"fix that link first: {link['fix']}",
            )
    return None


def rp_cause(
    plan: dict[str, t.Any], probes: dict[str, t.Any], hops: list[Hop], source: str, source_network: str
) -> Cause | None:
    """A host on the way that takes the packets from a tunnel with strict rp_filter while its route back leaves by another."""
    for host, _interface, receiver in hops:
        arrival = interface_to(plan, receiver, host)
        evidence = tunnels_of(probes, receiver).get(arrival or "")
        route = actual_route(routed_of(probes, receiver), source_network)
        if evidence is None or route is None:
            continue
        rp = evidence["rp_filter_tunnel"]
        back = route["actual"]["dev"]
        if rp["effective"] == 1 and back != arrival:
            drops = (probes[receiver].get("host") or {}).get("rp_filter_drops")
            return Cause(
                "rp_filter",
                f"reverse-path filtering on {receiver} drops what comes from {source} through {arrival}: "
                f"net.ipv4.conf.{arrival}.rp_filter={rp['value']} (all={rp['all']}) and {receiver}'s route back to "
                f"{source_network} leaves via {back or 'nothing (unreachable)'}, not {arrival}"
                + (f" (IPReversePathFilter +{drops})" if drops else ""),
                f"on {receiver}: sysctl -w net.ipv4.conf.{arrival}.rp_filter=2 (loose, for this tunnel only), or route "
                f"{source_network} back via {arrival} as planned (run playbooks/site.yml)",
            )
    return None


def hop_cause(
    probes: dict[str, t.Any], hop: Hop, prefix: str, transit: bool, version: int, owner_forwards: bool = False
) -> Cause | None:
    """What is wrong on one hop: its route to ``prefix``, and where it forwards, forwarding and the FORWARD chain."""
    host, interface, following = hop
    routed = routed_of(probes, host)
    route = actual_route(routed, prefix)
    if route is not None and route["actual"]["dev"] != interface:
        dev, gateway = route["actual"]["dev"], route["actual"].get("gateway")
        planned = f"planned: {prefix}" + (f" via {route['via']}" if route.get("via") else "") + f" dev {interface}"
        if dev in tunnels_of(probes, host):
            return Cause(
                "route_elsewhere",
                f"{host}'s route to {prefix} leaves via {dev}, not {interface} to {following}; {planned}",
                f"on {host}, remove the route of {prefix} through {dev} (ip route get {route['lookup']} shows it) and "
                "run playbooks/site.yml",
            )
        where = f"leave via {dev}" + (f" (gateway {gateway})" if gateway else "") if dev else "are unreachable"
        return Cause(
            "route_missing",
            f"{host} has no route to {prefix} through {interface}: its packets to {route['lookup']} {where}; {planned}",
            f"run playbooks/site.yml to restore it, or on {host}: ip route replace {prefix}"
            + (f" via {route['via']}" if route.get("via") else "")
            + f" dev {interface} proto 250",
        )
    if (transit or owner_forwards) and routed is not None:
        value = routed["forwarding"].get(f"ipv{version}")
        if value == 0:
            sysctl = "net.ipv4.ip_forward" if version == 4 else "net.ipv6.conf.all.forwarding"
            return Cause(
                "forwarding_off",
                f"{host} forwards nothing: {sysctl}=0, and the path goes through it",
                f"on {host}: sysctl -w {sysctl}=1, and run playbooks/site.yml, which switches it on where the plan "
                "forwards",
            )
        rule = counting_rule(routed["forward_firewall"])
        if rule is not None:
            return Cause(
                "forward_firewall",
                f"{host}'s firewall drops forwarded packets of the path: {chain_of(rule)} "
                f"'{rule['rule']}' counted {rule['delta']} packets during the probe",
                f"allow forwarding between the tunnels and {prefix} in {host}'s firewall before that rule "
                "(gre_mesh_firewall opens it where the role manages the firewall)",
            )
    return None


def path_cause(
    plan: dict[str, t.Any],
    probes: dict[str, t.Any],
    links: dict[tuple[str, str], dict[str, t.Any]],
    host: str,
    path: dict[str, t.Any],
) -> Cause:
    """The one cause of a routed path that is down, from the evidence of every host on its way there and back."""
    routed = routed_of(probes, host) or {}
    network, owner, address, source = path["network"], path["peer"], path["address"], path["source"]
    if source is None:
        networks = ", ".join(routed.get("networks", [])) or "none"
        return Cause(
            "no_source_address",
            f"{host} has no address in its networks ({networks}) of the family of {address}, so nothing is sent from them",
            f"give an interface of {host} an address in one of its networks (a loopback /32: ip address add ADDRESS/32 "
            "dev lo), or correct gre_mesh_networks",
        )
    source_network = network_of(source, routed.get("networks", [])) or f"{source}/32"
    there = chain(plan, host, network, owner)
    back = chain(plan, owner, source_network, host)
    every = (there or []) + (back or [])
    unprobed = sorted({h for hop in every for h in (hop[0], hop[2]) if routed_of(probes, h) is None} - {owner})
    if there is None or back is None or unprobed:
        return Cause(
            "path_not_checked",
            f"pings from {source} to {address} are not answered, and "
            + (f"{', '.join(unprobed)} on the way was not probed" if unprobed else "the plan has no route on the way"),
            "probe every host on the way (verify.yml without --limit)",
        )
    version = ipaddress.ip_address(address).version
    cause = recursive_cause(probes, every) or link_down_cause(links, every)
    if version == 4:  # IPv6 has no reverse-path filter sysctl
        cause = cause or rp_cause(plan, probes, there, source, source_network)
        cause = cause or rp_cause(plan, probes, back, address, network)
    for index, hop in enumerate(there):
        cause = cause or hop_cause(probes, hop, network, index > 0, version)
    for index, hop in enumerate(back):
        cause = cause or hop_cause(probes, hop, source_network, index > 0, version)
    if cause:
        return cause
    gateway, gateway_ping = path.get("gateway"), path.get("gateway_ping")
    if gateway:
        cause = hop_cause(probes, (owner, "", host), network, False, version, owner_forwards=True)
        if cause and cause.code != "route_missing":
            return cause
        if gateway_ping and gateway_ping["received"] > 0:
            return Cause(
                "lan_no_route_back",
                f"{owner}'s own address {gateway} in {network} answers {host}'s pings from {source}, but {address} "
                f"behind it does not: the devices of {network} do not route {source_network} back to {owner}",
                f"on the devices of {network} (or their default gateway): add a route to {source_network} via {gateway} "
                f"(ip route add {source_network} via {gateway}), or make {gateway} their default gateway",
            )
    hops = " -> ".join([hop[0] for hop in there] + [owner])
    return Cause(
        "path_no_reply",
        f"pings from {source} to {address} ({hops}) are not answered, and no host on the way shows why",
        f"check {address} itself (does it answer pings, does its firewall let {source_network} in)",
    )


def path_results(
    probes: dict[str, t.Any], plan: dict[str, t.Any], links: list[dict[str, t.Any]]
) -> list[dict[str, t.Any]]:
    """Every probed routed path: status, round-trip time, the planned way, and for one that is down its cause."""
    by_pair = {t.cast("tuple[str, str]", tuple(link["hosts"])): link for link in links}
    results = []
    for host in sorted(probes):
        routed = routed_of(probes, host)
        for path in (routed or {}).get("paths", []):
            ping = path.get("ping") or {}
            up = (ping.get("received") or 0) > 0
            cause = None if up else path_cause(plan, probes, by_pair, host, path)
            there = chain(plan, host, path["network"], path["peer"]) or []
            results.append(
                {
                    "from": host,
                    "network": path["network"],
                    "owner": path["peer"],
                    "address": path["address"],
                    "source": path["source"],
                    "via": [hop[2] for hop in there[:-1]],
                    "status": "up" if up else "down",
                    "rtt_ms": (ping.get("rtt_ms") or {}).get("avg"),
                    "cause": cause.code if cause else None,
                    "text": cause.text if cause else None,
                    "fix": cause.fix if cause else None,
                }
            )
    return results


def path_line(path: dict[str, t.Any]) -> str:
    where = (
        f"{path['from']} ({path['source'] or 'no source'}) to {path['owner']}'s {path['network']} ({path['address']})"
    )
    if path["via"]:
        where += f" via {', '.join(path['via'])}"
    if path["status"] == "up":
        return f"{where}: up" + (f", {path['rtt_ms']:.1f} ms" if path["rtt_ms"] is not None else "")
    return f"{where}: DOWN [{path['cause']}] {path['text']}. Fix: {path['fix']}"


def path_matrix_lines(paths: list[dict[str, t.Any]]) -> list[str]:
    """Routed paths as text: rows are the hosts the pings come from, columns the networks (with their owner)."""
    sources = sorted({p["from"] for p in paths})
    networks = sorted({(p["network"], p["owner"]) for p in paths}, key=lambda n: ipaddress.ip_network(n[0]))
    cells = {(p["from"], p["network"]): p for p in paths}
    heads = [f"{owner}:{network}" for network, owner in networks]
    texts = []
    for row in sources:
        line = []
        for network, owner in networks:
            path = cells.get((row, network))
            if owner == row:
                line.append(SELF)
            elif path is None:
                line.append(NOT_A_LINK)
            else:
                line.append(cell_text({"status": path["status"], "rtt_ms": path["rtt_ms"]}))
        texts.append(line)
    width = max([len(h) for h in heads + sources] + [len(x) for row in texts for x in row] + [1]) + 2
    lines = ["routed paths".ljust(width) + "".join(h.ljust(width) for h in heads)]
    lines += [row.ljust(width) + "".join(x.ljust(width) for x in texts[i]) for i, row in enumerate(sources)]
    return [line.rstrip() for line in lines]


def dot_networks(paths: list[dict[str, t.Any]]) -> list[str]:
    """The networks drawn behind their owners: green when every path to them is up, else red with the causes."""
    lines = []
    for network in sorted({p["network"] for p in paths}, key=ipaddress.ip_network):
        towards = [p for p in paths if p["network"] == network]
        owner = towards[0]["owner"]
        down = [p for p in towards if p["status"] != "up"]
        color = quote("#2e8b57" if not down else "#d62728")
        causes = sorted({str(p["cause"]) for p in down})
        label = network + (f"\n{len(down)} of {len(towards)} paths down: {', '.join(causes)}" if down else "")
        tooltip = "\n".join(path_line(p) for p in towards)
        node = quote(f"net {network}")
        lines.append(
            f'  {node} [shape=ellipse, style=filled, fillcolor="#ffffff", color={color}, fontcolor={color}, '
            f"label={quote(label)}, tooltip={quote(tooltip)}];"
        )
        style = "dotted" if down else "solid"  # dashed is a link's that is down
        lines.append(f"  {quote(owner)} -- {node} [color={color}, penwidth=1.5, style={style}, len=1];")
    return lines
