# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: the ICMP engine, and gre_ping's work.

The one ICMP engine of the collection (``ping``), for gre_ping and gre_probe: one socket per target,
bound to its interface (SO_BINDTODEVICE) so that a reply proves the path through that tunnel and not
some other route, with fragmentation forbidden where the target asks. Echo requests go out to every
target in rounds, and replies are read as they come in one selector loop, so checking N links costs
about one link's time; other sockets (gre_probe's capture of GRE) can be read in the same loop.
Ping sockets (SOCK_DGRAM, no privilege needed where net.ipv4.ping_group_range allows) are used when
the kernel gives them, raw sockets (root) otherwise.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import selectors
import socket
import struct
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._probe.spec import (
    check_addresses,
    check_interface,
    check_timeout,
)

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO = 23, 2
ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence


@dataclass
class Target:
    """One series of echo requests to one address, through an interface (``None``: wherever the route goes), and what came back.

    ``source``: the address the requests are sent from (the socket is bound to it), as a routed path
    is probed: from an address of the host's own network, so that the route back is the network's.
    """

    interface: str | None
    address: str
    peer: str | None = None
    source: str | None = None
    size: int = 56
    dont_fragment: bool = False
    sent: int = 0
    received: int = 0
    rtts: list[float] = field(default_factory=list)
    error: str | None = None
    sent_at: dict[int, float] = field(default_factory=dict)
    identifier: int = 0
    raw: bool = False

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.address).version

    def result(self) -> dict[str, t.Any]:
        rtt = None
        if self.rtts:
            rtt = {
                "min": round(min(self.rtts), 3),
                "avg": round(sum(self.rtts) / len(self.rtts), 3),
                "max": round(max(self.rtts), 3),
            }
        return {
            "peer": self.peer,
            "interface": self.interface,
            "address": self.address,
            "sent": self.sent,
            "received": self.received,
            "rtt_ms": rtt,
            "up": self.received > 0,
            "error": self.error,
        }


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(version: int, identifier: int, sequence: int, size: int) -> bytes:
    """An ICMP (or ICMPv6) echo request with ``size`` bytes of payload.

    The checksum is filled in for ICMP over IPv4; the kernel computes ICMPv6 checksums, and those of
    ping sockets, itself.
    """
    payload = bytes(index & 0xFF for index in range(size))
    packet = HEADER.pack(ECHO_REQUEST[version], 0, 0, identifier, sequence) + payload
    if version == 4:
        packet = HEADER.pack(ECHO_REQUEST[version], 0, checksum(packet), identifier, sequence) + payload
    return packet


def parse_reply(version: int, data: bytes, raw: bool, identifier: int) -> int | None:
    """The sequence number of an echo reply meant for us, or None for any other packet.

    Raw IPv4 sockets deliver the IP header too; ping sockets deliver only replies to their own
    identifier (which the kernel chooses), raw sockets every ICMP packet of the interface.
    """
    if raw and version == 4:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < HEADER.size:
        return None
    kind, _code, _checksum, reply_id, sequence = HEADER.unpack_from(data)
    if kind != ECHO_REPLY[version] or (raw and reply_id != identifier):
        return None
    return sequence


def open_socket(target: Target) -> socket.socket:
    """A socket for the target, bound to its interface if it has one; sets ``target.raw``. Raises OSError."""
    family = socket.AF_INET if target.version == 4 else socket.AF_INET6
    protocol = socket.IPPROTO_ICMP if target.version == 4 else socket.IPPROTO_ICMPV6
    try:
        sock, target.raw = socket.socket(family, socket.SOCK_DGRAM, protocol), False
    except PermissionError:
        sock, target.raw = socket.socket(family, socket.SOCK_RAW, protocol), True
    try:
        if target.interface:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, target.interface.encode())
        if target.source:
            sock.bind((target.source, 0))
        if target.dont_fragment and target.version == 4:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        elif target.dont_fragment:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def describe(error: OSError, target: Target) -> str:
    if error.errno == errno.ENODEV:
        return f"interface {target.interface} does not exist"
    if error.errno == errno.EADDRNOTAVAIL and target.source:
        return f"{target.source} is not an address of this host ({error.strerror})"
    if error.errno == errno.EMSGSIZE:
        return f"packet larger than the path MTU and fragmenting forbidden ({error.strerror})"
    return error.strerror or str(error)


Listener = t.Callable[[socket.socket], None]


def ping(
    targets: list[Target],
    rounds: int,
    interval: float,
    timeout: float,
    listeners: dict[socket.socket, Listener] | None = None,
    until_answered: bool = True,
    each_round: t.Callable[[int], t.Any] | None = None,
    stop_when_up: bool = False,
) -> float:
    """Ping every target ``rounds`` times, all at once; fills in each target's counters.

    Requests go out in ``rounds`` rounds ``interval`` seconds apart, and replies are read until
    ``timeout`` seconds after the last round; with ``until_answered``, only until every request has
    had its reply. With ``stop_when_up``, a target that answered gets no more requests, and the
    pinging ends as soon as every target answered or failed (one reply makes a target up).
    ``listeners`` are other sockets read in the same loop (gre_probe's capture): each is given to its
    function whenever it has data. ``each_round`` is called with each round's number after its
    requests went out (gre_probe's UDP datagrams). Returns when the last round was sent (seconds
    since the epoch).
    """
    selector = selectors.DefaultSelector()
    opened: list[tuple[Target, socket.socket]] = []
    sent_until = time.time()
    try:
        for sock, listener in (listeners or {}).items():
            selector.register(sock, selectors.EVENT_READ, listener)
        base = random.randrange(0x10000)
        for index, target in enumerate(targets):
            try:
                sock = open_socket(target)
            except PermissionError:
                raise GreError(
                    "cannot open an ICMP socket: ping sockets are not allowed for this user "
                    "(net.ipv4.ping_group_range) and raw sockets need root; use become: true"
                ) from None
            except OSError as error:
                target.error = describe(error, target)
                continue
            target.identifier = (base + index) & 0xFFFF
            opened.append((target, sock))
            selector.register(sock, selectors.EVENT_READ, target)
        answers = 1 if stop_when_up else rounds
        for sequence in range(1, rounds + 1):
            if stop_when_up and all(target.received or target.error for target in targets):
                break
            for target, sock in opened:
                if not (stop_when_up and target.received):
                    send(target, sock, sequence)
            if each_round is not None:
                each_round(sequence)
            sent_until = time.time()
            wait = interval if sequence < rounds else timeout
            receive(selector, time.monotonic() + wait, targets if until_answered or stop_when_up else [], answers)
    finally:
        for _target, sock in opened:
            sock.close()
        selector.close()
    return sent_until


def send(target: Target, sock: socket.socket, sequence: int) -> None:
    if target.error:
        return
    try:
        sock.sendto(echo_request(target.version, target.identifier, sequence, target.size), (target.address, 0))
    except OSError as error:
        target.error = describe(error, target)
        return
    target.sent += 1
    target.sent_at[sequence] = time.monotonic()


def receive(selector: selectors.BaseSelector, until: float, awaited: list[Target], answers: int) -> None:
    """Read replies (and the listeners' sockets) until ``until``, or until each ``awaited`` target has ``answers`` replies."""
    while True:
        left = until - time.monotonic()
        if left <= 0 or (awaited and all(target.received >= answers or target.error for target in awaited)):
            return
        for key, _events in selector.select(left):
            sock = t.cast(socket.socket, key.fileobj)
            if not isinstance(key.data, Target):
                key.data(sock)
                continue
            target = key.data
            try:
                data = sock.recv(65535)
            except OSError as error:
                target.error = describe(error, target)
                continue
            sequence = parse_reply(target.version, data, target.raw, target.identifier)
            sent_at = target.sent_at.pop(sequence, None) if sequence is not None else None
            if sent_at is not None:
                target.received += 1
                target.rtts.append((time.monotonic() - sent_at) * 1000)


def targets_of(params: dict[str, t.Any]) -> list[Target]:
    """One Target per address of each of ``params["targets"]``, checked. Raises GreError."""
    targets = []
    for index, item in enumerate(params["targets"]):
        label = f"targets[{index}]" + (f" ({item['peer']})" if item.get("peer") else "")
        interface = item["interface"]
        check_interface(label, interface)
        if not item["addresses"]:
            raise GreError(f"{label}: addresses: give at least one address to ping")
        check_addresses(label, item["addresses"])
        for address in item["addresses"]:
            targets.append(
                Target(
                    interface=interface,
                    address=address,
                    peer=item.get("peer"),
                    size=params["size"],
                    dont_fragment=params["dont_fragment"],
                )
            )
    return targets


def run(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """gre_ping's work: check the options, ping, and summarize per target. Raises GreError."""
    if not 1 <= params["count"] <= 100:
        raise GreError(f"count: {params['count']} is not from 1 to 100")
    if not 0.01 <= params["interval"] <= 10:
        raise GreError(f"interval: {params['interval']} is not from 0.01 to 10 seconds")
    check_timeout(params["timeout"])
    if not 0 <= params["size"] <= 65507:
        raise GreError(f"size: {params['size']} is not from 0 to 65507 bytes")
    targets = targets_of(params)
    ping(targets, params["count"], params["interval"], params["timeout"], stop_when_up=params["stop_when_up"])
    results = [target.result() for target in targets]
    down = {(r["interface"], r["peer"]) for r in results if not r["up"]}
    every = {(r["interface"], r["peer"]) for r in results}
    return {"results": results, "up": len(every - down), "down": len(down), "summary": [line(r) for r in results]}


def line(result: dict[str, t.Any]) -> str:
    """One result in a line: ``gre-hostb to hostb 10.0.0.2: up, 3/3 replies, 0.52 ms``."""
    where = f"{result['interface']} to {result['peer'] + ' ' if result['peer'] else ''}{result['address']}"
    counts = f"{result['received']}/{result['sent']} replies"
    if result["up"]:
        return f"{where}: up, {counts}, {result['rtt_ms']['avg']} ms"
    return f"{where}: DOWN, {counts}" + (f" ({result['error']})" if result["error"] else "")
