# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_probe's work, the evidence of one host about each of its tunnels.

For each planned tunnel: the interface as the kernel has it (exists, up, kind, local, remote, keys,
MTU, inner addresses, packet counters before and after), whether its local address is on the host,
the inner pings (small, and full-size with DF), an underlay ping to the remote address, what a
capture of IP protocol 47 on every NIC saw going to and coming from the remote address (of UDP to
the tunnel's port for a tunnel whose GRE is carried in UDP, ``encap``), the rp_filter settings and
the route back, and the packet-filter rules that can drop the tunnel's packets from the remote
address, with their counters before and after. With ``udp_port``, a few UDP datagrams from the
tunnel's local address to the planned remote address at that port, and how many of the remote's
the capture saw arrive: whether GRE in UDP would pass a path that drops GRE.

All pings, datagrams and the capture run at once in the one loop of the ICMP engine (icmp.ping), for ``window``
seconds plus ``timeout``, so that probes started at the same time on every host (one Ansible task) see
each other's packets. nftables is read with _nft, as gre_firewall reads it; iptables with
``iptables-save -c``. Host (the seam of _host, with the clock and the sockets added) is all that
touches the host: run, read_file (/proc) and exchange. Tests replace them with answers captured from
real kernels.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import socket
import struct
import time
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils import _host, _nft
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import GRE_PROTOCOL, IPV6_MODES, PROBE_MAX_WAIT
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._probe import icmp
from ansible_collections.linuxnet.gre.plugins.module_utils._probe.spec import check_addresses, check_timeout

READ_LINKS = ["ip", "-details", "-statistics", "-json", "address", "show"]
ROUTE_BATCH = ["ip", "-force", "-json", "-batch", "-"]
NETSTAT = "/proc/net/netstat"
RP_FILTER = "/proc/sys/net/ipv4/conf/{}/rp_filter"
# Packet socket constants (linux/if_packet.h, linux/if_ether.h, linux/filter.h).
ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
PACKET_HOST, PACKET_OUTGOING = 0, 4
SO_ATTACH_FILTER = 26
# How many bytes of each captured packet to keep: outer IP header, GRE or UDP header, room for options.
SNAPLEN = 128
UDP_PROTOCOL = 17
# The UDP probe's payload. Where the receiver has a FOU or GUE receive port at the probed port (for
# links of its own), the kernel hands it to GRE (or GUE), which drops it: the first byte is no GUE
# version (0xff: version 3), the second no GRE version (7). Anywhere else it is answered with ICMP port unreachable,
# which no ping counts (icmp.parse_reply takes echo replies only) and an unconnected UDP socket ignores.
UDP_PAYLOAD = b"\xff\x07linuxnet.gre udp probe"


class Host(_host.Host):
    """The host (see _host.Host), its clock and its sockets."""

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def read_file(self, path: str) -> str | None:
        """A /proc file as evidence: None when it cannot be read, for whatever reason."""
        try:
            return self.read_text(path)
        except OSError:
            return None

    def exchange(
        self,
        pings: list[Ping],
        capture: bool,
        rounds: int,
        window: float,
        timeout: float,
        datagrams: list[Datagrams] | None = None,
        ports: list[int] | None = None,
    ) -> dict[str, t.Any]:
        """Send every ping and datagram and capture GRE (and UDP to ``ports``) at once; see ``exchange``."""
        return exchange(pings, capture, rounds, window, timeout, datagrams or [], ports or [])


# --- reading the interfaces -------------------------------------------------------------------


def read_links(host: Host) -> tuple[dict[str, dict[str, t.Any]], dict[str, str]]:
    """Interfaces by name (kind, state, tunnel settings, counters), and the host's addresses -> interface."""
    (links,) = _host.read_json(host, READ_LINKS)
    interfaces, addresses = {}, {}
    for link in links:
        name = link["ifname"]
        interfaces[name] = interface_state(link)
        for info in link.get("addr_info", []):
            if "local" in info:
                addresses[str(ipaddress.ip_address(info["local"]))] = name
    return interfaces, addresses


def interface_state(link: dict[str, t.Any]) -> dict[str, t.Any]:
    info = link.get("linkinfo", {})
    data = info.get("info_data", {})
    stats = link.get("stats64", link.get("stats", {}))
    flags = link.get("flags", [])
    return {
        "kind": info.get("info_kind"),
        "up": "UP" in flags,
        "lower_up": "LOWER_UP" in flags,
        "operstate": link.get("operstate"),
        "local": endpoint(data.get("local")),
        "remote": endpoint(data.get("remote")),
        "ikey": data.get("ikey"),
        "okey": data.get("okey"),
        "mtu": link.get("mtu"),
        "addresses": [
            f"{a['local']}/{a['prefixlen']}"
            for a in link.get("addr_info", [])
            if "local" in a and not ipaddress.ip_address(a["local"]).is_link_local
        ],
        "rx_packets": stats.get("rx", {}).get("packets", 0),
        "tx_packets": stats.get("tx", {}).get("packets", 0),
        "rx_errors": stats.get("rx", {}).get("errors", 0),
        "tx_errors": stats.get("tx", {}).get("errors", 0) + stats.get("tx", {}).get("carrier_errors", 0),
    }


def endpoint(value: str | None) -> str | None:
    if value in (None, "any", "::"):
        return None
    return str(ipaddress.ip_address(value))


# --- routes, rp_filter, counters ------------------------------------------------------------------


def read_routes(host: Host, lookups: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], str | None]:
    """The output interface of the route to each (destination, source) pair, None when there is none."""
    return {lookup: (entry or {}).get("dev") for lookup, entry in read_route_entries(host, lookups).items()}


def read_route_entries(
    host: Host, lookups: list[tuple[str, str | None]]
) -> dict[tuple[str, str | None], dict[str, t.Any] | None]:
    """The route the kernel takes to each (destination, source) pair (``ip route get``, one batch): its
    ``dev``, ``gateway`` and ``type``; None when there is none (unreachable)."""
    found: dict[tuple[str, str | None], dict[str, t.Any] | None] = {lookup: None for lookup in lookups}
    if not lookups:
        return found
    lines = "".join(f"route get {dst}" + (f" from {src}" if src else "") + "\n" for dst, src in lookups)
    _rc, out, _err = host.run(ROUTE_BATCH, stdin=lines)
    by_dst: dict[str, list[dict[str, t.Any]]] = {}
    for route in _host.json_documents(out)[0]:
        for entry in route if isinstance(route, list) else [route]:
            if isinstance(entry, dict) and "dst" in entry:
                by_dst.setdefault(str(entry["dst"]), []).append(entry)
    for dst, src in lookups:
        entries = by_dst.get(dst)
        if entries:
            entry = entries.pop(0)
            found[(dst, src)] = {"dev": entry.get("dev"), "gateway": entry.get("gateway"), "type": entry.get("type")}
    return found


def read_rp_filter(host: Host, interface: str | None) -> int | None:
    if interface is None:
        return None
    text = host.read_file(RP_FILTER.format(interface))
    return int(text.strip()) if text and text.strip().isdigit() else None


def read_netstat(host: Host) -> dict[str, int]:
    """The kernel's TcpExt/IpExt counters (/proc/net/netstat): name -> value."""
    text = host.read_file(NETSTAT) or ""
    counters, lines = {}, text.splitlines()
    for header, values in zip(lines[::2], lines[1::2]):
        names, numbers = header.split()[1:], values.split()[1:]
        counters.update({name: int(number) for name, number in zip(names, numbers) if number.lstrip("-").isdigit()})
    return counters


# --- packet filter rules ----------------------------------------------------------------------------

IPTABLES = {
    4: [("iptables-legacy-save", "iptables-legacy"), ("iptables-nft-save", "iptables-nft")],
    6: [("ip6tables-legacy-save", "ip6tables-legacy"), ("ip6tables-nft-save", "ip6tables-nft")],
}
PLAIN_IPTABLES = {4: ("iptables-save", "iptables"), 6: ("ip6tables-save", "ip6tables")}
RULE = re.compile(r"^\[(\d+):(\d+)\]\s+-A\s+(\S+)\s*(.*)$")
POLICY = re.compile(r"^:(\S+)\s+(ACCEPT|DROP)\s+\[(\d+):(\d+)\]")
DROPS = ("DROP", "REJECT")


def read_firewall(host: Host, versions: set[int]) -> dict[str, t.Any]:
    """Every rule and policy of the host's packet filters that drops (iptables and nft), with counters."""
    rules: list[dict[str, t.Any]] = []
    errors: list[str] = []
    for version in sorted(versions):
        tools = [pair for pair in IPTABLES[version] if host.which(pair[0])]
        if not tools and host.which(PLAIN_IPTABLES[version][0]):
            tools = [PLAIN_IPTABLES[version]]
        for save, name in tools:
            rc, out, err = host.run([save, "-c"])
            if rc != 0:
                errors.append(f"{save} -c: {err.strip() or f'exit code {rc}'}")
                continue
            rules += iptables_drops(out, name, version)
    if host.which("nft"):
        try:
            rules += nft_drops(_nft.read(host))
        except GreError as error:
            errors.append(error.msg)
    return {"rules": rules, "errors": errors}


def iptables_drops(text: str, tool: str, version: int) -> list[dict[str, t.Any]]:
    """The DROP/REJECT rules and DROP policies of an ``iptables-save -c`` output."""
    found, table = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        policy = POLICY.match(line)
        if policy and policy.group(2) == "DROP":
            found.append(
                {
                    "tool": tool,
                    "version": version,
                    "table": table,
                    "chain": policy.group(1),
                    "rule": f"policy {policy.group(1)} DROP",
                    "protocol": None,
                    "sources": None,
                    "negated_sources": False,
                    "packets": int(policy.group(3)),
                }
            )
            continue
        match = RULE.match(line)
        if not match:
            continue
        words = shlex.split(match.group(4))
        target = option(words, ("-j", "--jump"))
        if target is None or target[0] not in DROPS:
            continue
        protocol = option(words, ("-p", "--protocol"))
        source = option(words, ("-s", "--source"))
        found.append(
            {
                "tool": tool,
                "version": version,
                "table": table,
                "chain": match.group(3),
                "rule": f"-A {match.group(3)} {match.group(4)}",
                "protocol": None if protocol is None else ("!" if protocol[1] else "") + protocol[0],
                "sources": None if source is None else source[0].split(","),
                "negated_sources": bool(source and source[1]),
                "packets": int(match.group(1)),
            }
        )
    return found


def option(words: list[str], names: tuple[str, ...]) -> tuple[str, bool] | None:
    """The value of an iptables option and whether it is negated (``! -s X``), or None."""
    for index, word in enumerate(words[:-1]):
        if word in names:
            return words[index + 1], index > 0 and words[index - 1] == "!"
    return None


NFT_PROTOCOL = ("ip protocol", "meta l4proto", "ip6 nexthdr")
NFT_SADDR = ("ip saddr", "ip6 saddr")


def nft_drops(tables: _nft.Tables) -> list[dict[str, t.Any]]:
    """The drop/reject rules of the nftables ruleset (tables that iptables-nft manages with x_tables are left to it)."""
    found: list[dict[str, t.Any]] = []
    for (family, name), table in tables.items():
        chains = list(table["chains"].values())
        if any(_nft.uses_xt(rule) for chain in chains for rule in chain["rules"]):
            continue
        for chain in chains:
            for rule in chain["rules"]:
                if not any(key in ("drop", "reject") for key, _value in _nft.expressions(rule)):
                    continue
                protocol = next((m for m in _nft.matches(rule) if m[0] in NFT_PROTOCOL), None)
                source = next((m for m in _nft.matches(rule) if m[0] in NFT_SADDR), None)
                found.append(
                    {
                        "tool": "nft",
                        "version": {"ip": 4, "ip6": 6}.get(family),
                        "table": f"{family} {name}",
                        "chain": chain["name"],
                        "rule": _nft.text(rule),
                        "protocol": None if protocol is None else ("!" if protocol[1] else "") + ",".join(protocol[2]),
                        "sources": None if source is None else source[2],
                        "negated_sources": bool(source and source[1]),
                        "packets": _nft.counter(rule),
                    }
                )
    return found


# The names a packet filter gives each protocol of the tunnels' packets, "all" and 0 matching any.
GRE_NAMES = frozenset({"gre", str(GRE_PROTOCOL), "all", "0"})
UDP_NAMES = frozenset({"udp", str(UDP_PROTOCOL), "all", "0"})


def drops_gre_from(rule: dict[str, t.Any], remote: str) -> bool:
    """Whether the rule can drop GRE from ``remote`` (any other matches it has are not evaluated)."""
    return drops_from(rule, remote, GRE_NAMES)


def drops_from(rule: dict[str, t.Any], remote: str, protocols: frozenset[str]) -> bool:
    """Whether the rule can drop packets of ``protocols`` from ``remote`` (ports and any other matches are not evaluated)."""
    version = ipaddress.ip_address(remote).version
    if rule["version"] not in (None, version):
        return False
    protocol = rule["protocol"]
    if protocol is not None:
        negated = protocol.startswith("!")
        names = set(protocol.lstrip("!").strip("{} ").replace(" ", "").split(","))
        if bool(names & protocols) == negated:
            return False
    if rule["sources"] is None:
        return True
    inside = any(in_network(remote, source) for source in rule["sources"])
    return inside != rule["negated_sources"]


def in_network(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False  # a named set or anything else that is not an address: not evaluated


# --- pings and capture ----------------------------------------------------------------------------


class Ping:
    """One series of echo requests (an icmp.Target) to one address: through a tunnel (``interface``) or unbound."""

    def __init__(
        self, key: str, address: str, interface: str | None, size: int, dont_fragment: bool, source: str | None = None
    ) -> None:
        self.key = key
        self.target = icmp.Target(
            interface=interface, address=address, size=size, dont_fragment=dont_fragment, source=source
        )

    def result(self) -> dict[str, t.Any]:
        """The target's result as gre_ping gives it (without ``peer``), with ``size`` and ``dont_fragment``."""
        result = self.target.result()
        del result["peer"]
        result.update(size=self.target.size, dont_fragment=self.target.dont_fragment)
        return result


class Datagrams:
    """One series of UDP datagrams, one a round, from a tunnel's local underlay address (``source``; None: the
    route's) to the planned remote address at ``port``: what GRE in UDP (FOU, GUE) would send. Sent from an
    unconnected socket, which the ICMP port unreachable of a receiver without a listener does not disturb."""

    def __init__(self, key: str, address: str, port: int, source: str | None) -> None:
        self.key = key
        self.address = address
        self.port = port
        self.source = source
        self.sent = 0
        self.error: str | None = None
        self.sock: socket.socket | None = None

    def open(self) -> None:
        family = socket.AF_INET if version_of(self.address) == 4 else socket.AF_INET6
        try:
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            if self.source:
                self.sock.bind((self.source, 0))
            self.sock.setblocking(False)
        except OSError as error:
            self.error = error.strerror or str(error)
            self.close()

    def send(self) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(UDP_PAYLOAD, (self.address, self.port))
            self.sent += 1
        except OSError as error:
            self.error = error.strerror or str(error)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def result(self) -> dict[str, t.Any]:
        return {
            "address": self.address,
            "port": self.port,
            "source": self.source,
            "sent": self.sent,
            "error": self.error,
        }


def gre_filter(ports: list[int] | None = None) -> bytes:
    """A classic BPF program that keeps the first SNAPLEN bytes of IPv4 and IPv6 packets of protocol 47, and of
    UDP to any of ``ports`` (GRE in UDP, and the UDP probe).

    Outgoing packets reach only packet sockets of protocol ETH_P_ALL, so the program tests the
    packet's protocol first (the ancillary ``proto`` load). Packet sockets of type SOCK_DGRAM run
    their filter on the network header. For IPv6 the next header is byte 6; ip6gre's default
    encapsulation limit option puts a destination options header (60) first, which is kept too
    and parsed in Python. UDP's destination port is read after the IPv4 header's own length (only
    in a packet's first fragment), and right after IPv6's fixed header.
    """
    ld_h, ld_b, ld_h_x, ldx_len, jeq, jset, ret, proto = 0x28, 0x30, 0x48, 0xB1, 0x15, 0x45, 0x06, 0xFFFFF000
    keep, drop, udp4, ipv6, udp6 = "keep", "drop", "udp4", "ipv6", "udp6"
    ports = sorted(set(ports or []))
    # (code, where to jump when true, when false, k), or a label; None: the next instruction.
    program: list[tuple[int, str | None, str | None, int] | str] = [
        (ld_h, None, None, proto),
        (jeq, None, ipv6, ETH_P_IP),
        (ld_b, None, None, 9),
        (jeq, keep, udp4 if ports else drop, GRE_PROTOCOL),
    ]
    if ports:
        program += [
            udp4,
            (jeq, None, drop, UDP_PROTOCOL),
            (ld_h, None, None, 6),
            (jset, drop, None, 0x1FFF),
            (ldx_len, None, None, 0),
            (ld_h_x, None, None, 2),
        ]
        program += [(jeq, keep, None, port) for port in ports] + [(ret, None, None, 0)]
    program += [
        ipv6,
        (jeq, None, drop, ETH_P_IPV6),
        (ld_b, None, None, 6),
        (jeq, keep, None, GRE_PROTOCOL),
        (jeq, keep, udp6 if ports else drop, 60),
    ]
    if ports:
        program += [udp6, (jeq, None, drop, UDP_PROTOCOL), (ld_h, None, None, 42)]
        program += [(jeq, keep, None, port) for port in ports] + [(ret, None, None, 0)]
    program += [keep, (ret, None, None, SNAPLEN), drop, (ret, None, None, 0)]
    return assemble(program)


def assemble(program: list[tuple[int, str | None, str | None, int] | str]) -> bytes:
    """Classic BPF instructions, with each jump to a label turned into its offset."""
    labels, index = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = index
        else:
            index += 1
    code, index = b"", 0
    for item in program:
        if isinstance(item, str):
            continue
        op, true, false, k = item
        offsets = [0 if label is None else labels[label] - index - 1 for label in (true, false)]
        code += struct.pack("HBBI", op, offsets[0], offsets[1], k)
        index += 1
    return code


def open_capture(ports: list[int]) -> tuple[socket.socket, t.Any]:
    """A packet socket on every interface that sees GRE, and UDP to ``ports``, both ways. Raises OSError."""
    import ctypes  # only here: the capture is the one user of a pointer

    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
    try:
        program = gre_filter(ports)
        buffer = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buffer))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.setblocking(False)
        drain(sock)  # packets queued before the filter was attached
    except OSError:
        sock.close()
        raise
    return sock, buffer


def drain(sock: socket.socket) -> None:
    while True:
        try:
            sock.recv(SNAPLEN)
        except (BlockingIOError, InterruptedError):
            return


def gre_endpoints(data: bytes) -> tuple[str, str] | None:
    """(source, destination) of a GRE packet (IPv4, or IPv6 with at most a destination options header)."""
    found = packet_endpoints(data)
    return found[1:3] if found is not None and found[0] == "gre" else None


def packet_endpoints(data: bytes) -> tuple[str, str, str, int | None] | None:
    """(protocol, source, destination, UDP destination port) of a GRE or UDP packet, None for any other."""
    if len(data) >= 20 and data[0] >> 4 == 4:
        ends = socket.inet_ntop(socket.AF_INET, data[12:16]), socket.inet_ntop(socket.AF_INET, data[16:20])
        header = (data[0] & 0x0F) * 4
        return transport(data[9], data, header, *ends)
    if len(data) >= 40 and data[0] >> 4 == 6:
        next_header, offset = data[6], 40
        if next_header == 60 and len(data) >= offset + 2:
            next_header, offset = data[offset], offset + (data[offset + 1] + 1) * 8
        ends = socket.inet_ntop(socket.AF_INET6, data[8:24]), socket.inet_ntop(socket.AF_INET6, data[24:40])
        return transport(next_header, data, offset, *ends)
    return None


def transport(
    protocol: int, data: bytes, offset: int, source: str, destination: str
) -> tuple[str, str, str, int | None] | None:
    if protocol == GRE_PROTOCOL:
        return "gre", source, destination, None
    if protocol == UDP_PROTOCOL and len(data) >= offset + 4:
        return "udp", source, destination, struct.unpack_from("!H", data, offset + 2)[0]
    return None


def exchange(
    pings: list[Ping],
    capture: bool,
    rounds: int,
    window: float,
    timeout: float,
    datagrams: list[Datagrams] | None = None,
    ports: list[int] | None = None,
) -> dict[str, t.Any]:
    """Send every ping and datagram (``rounds`` rounds spread over ``window`` seconds) while capturing GRE, and UDP
    to ``ports``, on every NIC.

    Returns
    ``{"pings": {key: result}, "udp": {key: result}, "capture": {...}, "started": epoch, "sent_until": epoch,
    "ended": epoch}``. The capture counts packets per (direction, interface, source, destination, protocol, UDP
    port); it runs until ``timeout`` seconds after the last round, in icmp.ping's loop.
    """
    datagrams = datagrams or []
    packets: dict[tuple[str, str, str, str, str, int | None], int] = {}
    listeners: dict[socket.socket, icmp.Listener] = {}
    capture_error = None
    started = time.time()
    sock = None
    try:
        if capture:
            try:
                sock, _program = open_capture(list(ports or []))
                listeners[sock] = lambda ready: read_capture(ready, packets)
            except OSError as error:
                capture_error = f"cannot capture: {error.strerror or error}"
        for series in datagrams:
            series.open()
        targets = [ping.target for ping in pings]
        sent_until = icmp.ping(
            targets,
            rounds,
            window / rounds,
            timeout,
            listeners,
            until_answered=False,
            each_round=lambda _sequence: send_all(datagrams),
        )
        ended = time.time()
    finally:
        if sock is not None:
            sock.close()
        for series in datagrams:
            series.close()
    result: dict[str, t.Any] = {
        "pings": {ping.key: ping.result() for ping in pings},
        "capture": {
            "available": sock is not None and capture_error is None,
            "error": capture_error if capture else "not asked for",
            "packets": [
                packet_record(key, count) for key, count in sorted(packets.items(), key=lambda item: str(item[0]))
            ],
        },
        "started": round(started, 3),
        "sent_until": round(sent_until, 3),
        "ended": round(ended, 3),
    }
    if datagrams:
        result["udp"] = {series.key: series.result() for series in datagrams}
    return result


def send_all(datagrams: list[Datagrams]) -> None:
    for series in datagrams:
        series.send()


def packet_record(key: tuple[str, str, str, str, str, int | None], count: int) -> dict[str, t.Any]:
    direction, interface, source, destination, protocol, port = key
    record: dict[str, t.Any] = {"direction": direction, "interface": interface, "source": source}
    record["destination"] = destination
    record.update({"count": count, "protocol": protocol})
    if port is not None:
        record["port"] = port
    return record


def read_capture(sock: socket.socket, packets: dict[tuple[str, str, str, str, str, int | None], int]) -> None:
    while True:
        try:
            data, address = sock.recvfrom(SNAPLEN)
        except (BlockingIOError, InterruptedError):
            return
        interface, packet_type = address[0], address[2]
        if packet_type == PACKET_OUTGOING:
            direction = "out"
        elif packet_type == PACKET_HOST:
            direction = "in"
        else:
            continue  # other hosts' packets seen in promiscuous mode, broadcasts
        found = packet_endpoints(data)
        if found is not None:
            protocol, source, destination, port = found
            key = (direction, interface, source, destination, protocol, port)
            packets[key] = packets.get(key, 0) + 1


# --- routed paths -----------------------------------------------------------------------------------

FORWARDING = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}


def check_routed(params: dict[str, t.Any]) -> None:
    """``networks`` must be networks, each path's ``network`` a network and its addresses addresses. Raises GreError."""
    for network in params["networks"]:
        try:
            ipaddress.ip_network(network)
        except ValueError as error:
            raise GreError(
                f"networks: {network!r} is not a network (address/length without host bits): {error}"
            ) from None
    for index, path in enumerate(params["paths"]):
        label = f"paths[{index}] ({path['network']})"
        try:
            network = ipaddress.ip_network(path["network"])
        except ValueError as error:
            raise GreError(f"{label}: network: not a network (address/length without host bits): {error}") from None
        for field in ("address", "gateway"):
            if path.get(field) is None:
                continue
            check_addresses(label, [path[field]])
            if ipaddress.ip_address(path[field]) not in network:
                raise GreError(f"{label}: {field}: {path[field]} is not in {network}")


def is_routed(params: dict[str, t.Any], tunnels: list[dict[str, t.Any]]) -> bool:
    """Whether to gather the routed evidence: paths to probe, own networks, or planned routes through a tunnel."""
    return bool(params["paths"] or params["networks"] or any(tunnel.get("routes") for tunnel in tunnels))


def source_of(networks: list[str], addresses: dict[str, str], target: str) -> str | None:
    """The host's first address (sorted) inside one of its ``networks``, of the target's family; None without one."""
    version = version_of(target)
    inside = [
        address
        for address in addresses
        if version_of(address) == version
        and any(ipaddress.ip_address(address) in ipaddress.ip_network(network) for network in networks)
    ]
    return min(inside, key=ipaddress.ip_address) if inside else None


def lookup_address(prefix: str) -> str:
    """The address whose route stands for a network's: the network's own for a /32 (/128) or /31, else its first host."""
    network = ipaddress.ip_network(prefix)
    return str(network.network_address if network.num_addresses <= 2 else network.network_address + 1)


def path_pings(paths: list[dict[str, t.Any]], sources: list[str | None]) -> list[Ping]:
    """Per path with a source: a small ping from it to the path's address, and to its gateway when it has one."""
    pings = []
    for path, source in zip(paths, sources):
        if source is None:
            continue
        for address in [path["address"]] + ([path["gateway"]] if path.get("gateway") else []):
            pings.append(Ping(f"path {address} from {source}", address, None, 56, False, source=source))
    return pings


def route_entry(entry: dict[str, t.Any] | None) -> dict[str, t.Any]:
    return dict(entry or {"dev": None, "gateway": None, "type": None})


def forward_rules(before: list[dict[str, t.Any]], after: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The rules and policies that drop forwarded packets (chain FORWARD, or an nft chain named forward), with their counters."""
    return counted_rules(before, after, lambda rule: rule["chain"].lower() == "forward")


def routed_evidence(
    host: Host,
    params: dict[str, t.Any],
    tunnels: list[dict[str, t.Any]],
    sources: list[str | None],
    exchanged: dict[str, t.Any],
    firewall: tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]],
    routes: dict[tuple[str, str | None], dict[str, t.Any] | None],
) -> dict[str, t.Any]:
    """What the host tells about the routed paths: forwarding, the routes it takes, the FORWARD drops, the paths' pings."""
    forwarding = {}
    for version, path in FORWARDING.items():
        text = host.read_file(path)
        forwarding[f"ipv{version}"] = int(text.strip()) if text and text.strip().isdigit() else None
    planned = []
    for tunnel in tunnels:
        for route in tunnel.get("routes") or []:
            address = lookup_address(route["prefix"])
            planned.append(
                {
                    "prefix": route["prefix"],
                    "interface": tunnel["name"],
                    "via": route.get("via"),
                    "lookup": address,
                    "actual": route_entry(routes.get((address, None))),
                }
            )
    pings = exchanged["pings"]
    paths = []
    for path, source in zip(params["paths"], sources):
        gateway = path.get("gateway")
        paths.append(
            {
                "network": path["network"],
                "peer": path.get("peer"),
                "address": path["address"],
                "gateway": gateway,
                "source": source,
                "route": route_entry(routes.get((path["address"], source))) if source else None,
                "ping": pings.get(f"path {path['address']} from {source}") if source else None,
                "gateway_ping": pings.get(f"path {gateway} from {source}") if source and gateway else None,
            }
        )
    return {
        "networks": list(params["networks"]),
        "forwarding": forwarding,
        "routes": planned,
        "forward_firewall": forward_rules(firewall[0], firewall[1]),
        "paths": paths,
    }


def routed_lookups(
    tunnels: list[dict[str, t.Any]], paths: list[dict[str, t.Any]], sources: list[str | None]
) -> list[tuple[str, str | None]]:
    """The routes to read: each planned route's network, and each path's address from its source."""
    lookups: list[tuple[str, str | None]] = []
    for tunnel in tunnels:
        lookups += [(lookup_address(route["prefix"]), None) for route in tunnel.get("routes") or []]
    lookups += [(path["address"], source) for path, source in zip(paths, sources) if source]
    return lookups


# --- the probe --------------------------------------------------------------------------------------


def check_params(params: dict[str, t.Any]) -> None:
    if not 1 <= params["rounds"] <= 50:
        raise GreError(f"rounds: {params['rounds']} is not from 1 to 50")
    if not 0.1 <= params["window"] <= 60:
        raise GreError(f"window: {params['window']} is not from 0.1 to 60 seconds")
    check_timeout(params["timeout"])
    port = params.get("udp_port")
    if port is not None and not 1 <= port <= 65535:
        raise GreError(f"udp_port: {port} is not a UDP port (1 to 65535)")
    for index, tunnel in enumerate(params["tunnels"]):
        for field in ("local", "remote"):
            if tunnel.get(field):
                try:
                    ipaddress.ip_address(tunnel[field])
                except ValueError:
                    raise GreError(
                        f"tunnels[{index}] ({tunnel['name']}): {field}: {tunnel[field]!r} is not an IP address"
                    ) from None
    for index, peer in enumerate(params["peers"]):
        check_addresses(f"peers[{index}] ({peer['interface']})", peer["addresses"])


def version_of(address: str) -> int:
    return ipaddress.ip_address(address).version


def pings_of(
    tunnels: list[dict[str, t.Any]],
    peers: dict[str, dict[str, t.Any]],
    links: dict[str, dict[str, t.Any]],
    full_size: bool,
) -> list[Ping]:
    """Per tunnel: a small ping and a full-size ping with DF to each of the peer's inner addresses; per remote: an underlay ping."""
    pings, remotes = [], []
    for tunnel in tunnels:
        name = tunnel["name"]
        state = links.get(name) or {}
        mtu = state.get("mtu") or tunnel.get("mtu")
        for address in peers.get(name, {}).get("addresses", []):
            pings.append(Ping(f"{name} small {address}", address, name, 56, False))
            if full_size and mtu:
                size = mtu - (28 if version_of(address) == 4 else 48)
                pings.append(Ping(f"{name} full {address}", address, name, size, True))
        for remote in (state.get("remote"), tunnel.get("remote")):
            if remote and remote not in remotes:
                remotes.append(remote)
    pings += [Ping(f"underlay {remote}", remote, None, 56, False) for remote in remotes]
    return pings


def rule_key(rule: dict[str, t.Any]) -> tuple[str, str, str, str]:
    return rule["tool"], str(rule["table"]), rule["chain"], rule["rule"]


def firewall_evidence(
    before: list[dict[str, t.Any]], after: list[dict[str, t.Any]], remotes: list[str], protocols: frozenset[str]
) -> list[dict[str, t.Any]]:
    """The rules that can drop the tunnel's packets (``protocols``) from any of ``remotes``, with the packets they
    counted during the probe."""
    return counted_rules(before, after, lambda rule: any(drops_from(rule, remote, protocols) for remote in remotes))


def counted_rules(
    before: list[dict[str, t.Any]], after: list[dict[str, t.Any]], wanted: t.Callable[[dict[str, t.Any]], bool]
) -> list[dict[str, t.Any]]:
    """The ``wanted`` rules of ``after``, each with its packets and how many it counted since ``before``."""
    counted = {rule_key(rule): rule["packets"] for rule in before}
    found = []
    for rule in after:
        if not wanted(rule):
            continue
        start = counted.get(rule_key(rule))
        packets = rule["packets"]
        found.append(
            {
                "tool": rule["tool"],
                "table": rule["table"],
                "chain": rule["chain"],
                "rule": rule["rule"],
                "packets": packets,
                "delta": None if packets is None or start is None else packets - start,
            }
        )
    return found


def capture_evidence(packets: list[dict[str, t.Any]], remotes: list[str], port: int | None = None) -> dict[str, t.Any]:
    """What the capture saw go to and come from ``remotes``: GRE, or with ``port`` UDP to that port (GRE in UDP)."""
    carried = [p for p in packets if is_carried(p, port)]
    sent = [p for p in carried if p["direction"] == "out" and p["destination"] in remotes]
    received = [p for p in carried if p["direction"] == "in" and p["source"] in remotes]
    return {
        "sent": sum(p["count"] for p in sent),
        "sent_on": sorted({p["interface"] for p in sent}),
        "received": sum(p["count"] for p in received),
        "received_on": sorted({p["interface"] for p in received}),
    }


def is_carried(packet: dict[str, t.Any], port: int | None) -> bool:
    """Whether a captured packet is GRE (``port`` None; a capture recorded before UDP was captured has only GRE) or
    UDP to ``port``."""
    protocol = packet.get("protocol", "gre")
    return protocol == "gre" if port is None else protocol == "udp" and packet.get("port") == port


def encap_of(tunnel: dict[str, t.Any]) -> dict[str, t.Any] | None:
    """The planned GRE in UDP of a tunnel (``encap``: its ``type`` and ``dport``), None for plain GRE."""
    encap = tunnel.get("encap")
    return {"type": encap["type"], "dport": encap["dport"]} if encap else None


def udp_series(
    tunnels: list[dict[str, t.Any]],
    peers: dict[str, dict[str, t.Any]],
    links: dict[str, dict[str, t.Any]],
    addresses: dict[str, str],
    port: int | None,
) -> dict[str, Datagrams]:
    """The UDP probe, by tunnel: datagrams to ``port`` of the planned remote address, from the tunnel's local
    address (when it is the host's), for every tunnel of plain GRE to a peer of the inventory. Tunnels to the
    same remote from the same address share one series."""
    found: dict[str, Datagrams] = {}
    if port is None:
        return found
    series: dict[str, Datagrams] = {}
    for tunnel in tunnels:
        remote = tunnel.get("remote")
        if not remote or encap_of(tunnel) or peers.get(tunnel["name"], {}).get("external"):
            continue
        local = (links.get(tunnel["name"]) or {}).get("local") or tunnel.get("local")
        source = local if local in addresses else None
        key = f"udp {remote} port {port} from {source or 'the route'}"
        found[tunnel["name"]] = series.setdefault(key, Datagrams(key, str(ipaddress.ip_address(remote)), port, source))
    return found


def udp_evidence(
    datagrams: Datagrams | None, result: dict[str, t.Any] | None, packets: list[dict[str, t.Any]], remotes: list[str]
) -> dict[str, t.Any] | None:
    """The UDP probe of a tunnel: the ``port``, the datagrams ``sent`` to the remote (and the ``error`` that stopped
    them), and how many the capture saw arrive from the remote at that port (``received``)."""
    if datagrams is None:
        return None
    result = result or {"sent": 0, "error": "not sent"}
    received = [
        p for p in packets if is_carried(p, datagrams.port) and p["direction"] == "in" and p["source"] in remotes
    ]
    return {
        "port": datagrams.port,
        "sent": result["sent"],
        "error": result["error"],
        "received": sum(p["count"] for p in received),
    }


def rp_evidence(host: Host, interface: str | None, route_back: str | None) -> dict[str, t.Any]:
    every = read_rp_filter(host, "all")
    value = read_rp_filter(host, interface)
    known = [v for v in (every, value) if v is not None]
    return {
        "interface": interface,
        "all": every,
        "value": value,
        "effective": max(known) if known else None,
        "route_back": route_back,
    }


def delta(before: dict[str, t.Any] | None, after: dict[str, t.Any] | None, field: str) -> int | None:
    if not before or not after:
        return None
    return after[field] - before[field]


def tunnel_evidence(
    host: Host,
    tunnel: dict[str, t.Any],
    peer: dict[str, t.Any],
    states: tuple[dict[str, t.Any] | None, dict[str, t.Any] | None],
    addresses: dict[str, str],
    exchanged: dict[str, t.Any],
    firewall: tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]],
    routes: dict[tuple[str, str | None], str | None],
    datagrams: Datagrams | None = None,
    udp_port: int | None = None,
) -> dict[str, t.Any]:
    name = tunnel["name"]
    encap = encap_of(tunnel)
    before, after = states
    state = after or before
    actual = None
    if state is not None:
        actual = {
            key: state[key]
            for key in ("kind", "up", "operstate", "local", "remote", "ikey", "okey", "mtu", "addresses")
        }
    local = (state or {}).get("local") or tunnel.get("local")
    remotes = [r for r in dict.fromkeys([(state or {}).get("remote"), tunnel.get("remote")]) if r]
    remote = remotes[0] if remotes else None
    arrival = addresses.get(local) if local else None
    route_back = routes.get((remote, local if local in addresses else None)) if remote else None
    pings = exchanged["pings"]
    peer_addresses = peer.get("addresses", [])
    inner_back = routes.get((peer_addresses[0], None)) if peer_addresses else None
    planned = {key: tunnel.get(key) for key in ("mode", "local", "remote", "key", "mtu", "addresses")}
    if encap:
        planned["encap"] = encap
    packets = exchanged["capture"]["packets"]
    evidence = {
        "interface": name,
        "peer": peer.get("peer"),
        "external": bool(peer.get("external", False)),
        "planned": planned,
        "peer_addresses": peer_addresses,
        "exists": state is not None,
        "actual": actual,
        "local_on_host": None if local is None else local in addresses,
        "counters": {
            field: delta(before, after, field) for field in ("rx_packets", "tx_packets", "rx_errors", "tx_errors")
        },
        "pings": {
            "small": [pings[f"{name} small {a}"] for a in peer_addresses],
            "full": [pings[f"{name} full {a}"] for a in peer_addresses if f"{name} full {a}" in pings],
            "underlay": pings.get(f"underlay {remote}") if remote else None,
        },
        "capture": capture_evidence(packets, remotes, encap["dport"] if encap else None),
        "rp_filter": rp_evidence(host, arrival or route_back, route_back),
        "rp_filter_tunnel": rp_evidence(host, name if state else None, inner_back),
        "firewall": firewall_evidence(firewall[0], firewall[1], remotes, UDP_NAMES if encap else GRE_NAMES),
    }
    if udp_port is not None:
        sent = exchanged.get("udp", {}).get(datagrams.key) if datagrams else None
        evidence["udp"] = udp_evidence(datagrams, sent, packets, remotes)
    return evidence


def wait_until(start_at: float | None, host: Host) -> float:
    """Sleep until ``start_at`` (seconds since the epoch) when it is ahead, but never more than PROBE_MAX_WAIT."""
    if start_at is None:
        return 0.0
    wait = start_at - time.time()
    if wait <= 0 or wait > PROBE_MAX_WAIT:
        return 0.0
    host.sleep(wait)
    return round(wait, 3)


def run(host: Host, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """gre_probe's work: read, ping and capture, read again, and put the evidence together per tunnel (and per routed path)."""
    check_params(params)
    check_routed(params)
    called = time.time()
    tunnels = [tunnel for tunnel in params["tunnels"] if tunnel.get("state", "present") != "absent"]
    peers = {peer["interface"]: peer for peer in params["peers"]}
    routed = is_routed(params, tunnels)
    versions = {6 if tunnel.get("mode") in IPV6_MODES else 4 for tunnel in tunnels}
    if routed:
        versions |= {ipaddress.ip_network(network).version for network in params["networks"]}
        versions |= {version_of(path["address"]) for path in params["paths"]}
    before, _addresses = read_links(host)
    firewall_before = read_firewall(host, versions)
    netstat_before = read_netstat(host)
    pings = pings_of(tunnels, peers, before, params["full_size"])
    udp_port = params.get("udp_port")
    datagrams = udp_series(tunnels, peers, before, _addresses, udp_port)
    ports = sorted({series.port for series in datagrams.values()} | {e["dport"] for e in map(encap_of, tunnels) if e})
    sources: list[str | None] = []
    if routed:
        sources = [source_of(params["networks"], _addresses, path["address"]) for path in params["paths"]]
        pings += path_pings(params["paths"], sources)
    waited = wait_until(params.get("start_at"), host)
    exchanged = host.exchange(
        pings,
        params["capture"],
        params["rounds"],
        params["window"],
        params["timeout"],
        list({id(series): series for series in datagrams.values()}.values()),
        ports,
    )
    after, addresses = read_links(host)
    firewall_after = read_firewall(host, versions)
    netstat_after = read_netstat(host)
    lookups: list[tuple[str, str | None]] = []
    for tunnel in tunnels:
        state = after.get(tunnel["name"]) or before.get(tunnel["name"]) or {}
        remote = state.get("remote") or tunnel.get("remote")
        local = state.get("local") or tunnel.get("local")
        if remote:
            lookups.append((remote, local if local in addresses else None))
        lookups += [(address, None) for address in peers.get(tunnel["name"], {}).get("addresses", [])[:1]]
    if routed:
        lookups += routed_lookups(tunnels, params["paths"], sources)
    entries = read_route_entries(host, list(dict.fromkeys(lookups)))
    routes = {lookup: (entry or {}).get("dev") for lookup, entry in entries.items()}
    evidence = [
        tunnel_evidence(
            host,
            tunnel,
            peers.get(tunnel["name"], {}),
            (before.get(tunnel["name"]), after.get(tunnel["name"])),
            addresses,
            exchanged,
            (firewall_before["rules"], firewall_after["rules"]),
            routes,
            datagrams.get(tunnel["name"]),
            udp_port,
        )
        for tunnel in tunnels
    ]
    rp_drops = None
    if "IPReversePathFilter" in netstat_before and "IPReversePathFilter" in netstat_after:
        rp_drops = netstat_after["IPReversePathFilter"] - netstat_before["IPReversePathFilter"]
    result: dict[str, t.Any] = {
        "tunnels": evidence,
        "host": {
            "addresses": sorted(addresses, key=lambda a: (version_of(a), ipaddress.ip_address(a))),
            "rp_filter_drops": rp_drops,
            "capture": {key: exchanged["capture"][key] for key in ("available", "error")},
            "firewall_errors": firewall_after["errors"],
            "called": round(called, 3),
            "start_at": params.get("start_at"),
            "waited": waited,
            "started": exchanged["started"],
            "sent_until": exchanged["sent_until"],
            "ended": exchanged["ended"],
        },
    }
    if routed:
        result["routed"] = routed_evidence(
            host, params, tunnels, sources, exchanged, (firewall_before["rules"], firewall_after["rules"]), entries
        )
    return result
