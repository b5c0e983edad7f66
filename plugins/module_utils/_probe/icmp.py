# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: ping many addresses at once, each through a given interface.

One ICMP socket per (interface, address), bound to the interface (SO_BINDTODEVICE) so that a reply
proves the path through that tunnel and not some other route. Echo requests go out to every target
in rounds, and replies are read as they come, so checking N links costs about one link's time.
Ping sockets (SOCK_DGRAM, no privilege needed where net.ipv4.ping_group_range allows) are used when
the kernel gives them, raw sockets (root) otherwise.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import struct
import time
import typing as t
from dataclasses import dataclass, field

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO = 23, 2
ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence


@dataclass
class Target:
    """One address to ping through one interface, and what came back."""

    interface: str
    address: str
    peer: str | None = None
    sent: int = 0
    received: int = 0
    rtts: list[float] = field(default_factory=list)
    error: str | None = None
    sent_at: dict[int, float] = field(default_factory=dict)

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


def open_socket(target: Target, dont_fragment: bool) -> tuple[socket.socket, bool]:
    """A socket bound to the target's interface: (socket, whether it is raw). Raises OSError."""
    family = socket.AF_INET if target.version == 4 else socket.AF_INET6
    protocol = socket.IPPROTO_ICMP if target.version == 4 else socket.IPPROTO_ICMPV6
    try:
        sock, raw = socket.socket(family, socket.SOCK_DGRAM, protocol), False
    except PermissionError:
        sock, raw = socket.socket(family, socket.SOCK_RAW, protocol), True
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, target.interface.encode())
        if dont_fragment and target.version == 4:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        elif dont_fragment:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DO)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock, raw


def describe(error: OSError, target: Target) -> str:
    if error.errno == errno.ENODEV:
        return f"interface {target.interface} does not exist"
    if error.errno == errno.EMSGSIZE:
        return f"packet larger than the path MTU and fragmenting forbidden ({error.strerror})"
    return error.strerror or str(error)


def ping(
    targets: list[Target], count: int, interval: float, timeout: float, size: int, dont_fragment: bool
) -> list[Target]:
    """Ping every target ``count`` times, all at once; fills in each target's counters and returns them.

    Requests go out in ``count`` rounds ``interval`` seconds apart; the run ends ``timeout`` seconds
    after the last round, or as soon as every request has had its reply.
    """
    selector = selectors.DefaultSelector()
    sockets: list[tuple[Target, socket.socket, bool, int]] = []
    try:
        for index, target in enumerate(targets):
            try:
                sock, raw = open_socket(target, dont_fragment)
            except PermissionError:
                raise GreError(
                    "cannot open an ICMP socket: ping sockets are not allowed for this user "
                    "(net.ipv4.ping_group_range) and raw sockets need root; use become: true"
                ) from None
            except OSError as error:
                target.error = describe(error, target)
                continue
            identifier = (os.getpid() + index) & 0xFFFF
            sockets.append((target, sock, raw, identifier))
            selector.register(sock, selectors.EVENT_READ, (target, raw, identifier))
        deadline = time.monotonic() + (count - 1) * interval + timeout
        for sequence in range(1, count + 1):
            for target, sock, _raw, identifier in sockets:
                send(target, sock, identifier, sequence, size)
            round_end = time.monotonic() + interval if sequence < count else deadline
            receive(selector, round_end, targets, count)
    finally:
        for _target, sock, _raw, _identifier in sockets:
            sock.close()
        selector.close()
    return targets


def send(target: Target, sock: socket.socket, identifier: int, sequence: int, size: int) -> None:
    if target.error:
        return
    try:
        sock.sendto(echo_request(target.version, identifier, sequence, size), (target.address, 0))
    except OSError as error:
        target.error = describe(error, target)
        return
    target.sent += 1
    target.sent_at[sequence] = time.monotonic()


def receive(selector: selectors.BaseSelector, until: float, targets: list[Target], count: int) -> None:
    """Read replies until ``until``, or until every target has all its replies."""
    while True:
        left = until - time.monotonic()
        if left <= 0 or all(target.received >= count or target.error for target in targets):
            return
        for key, _events in selector.select(left):
            target, raw, identifier = key.data
            try:
                data = key.fileobj.recv(65535)  # type: ignore[union-attr]
            except OSError as error:
                target.error = describe(error, target)
                continue
            sequence = parse_reply(target.version, data, raw, identifier)
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
        if not interface or len(interface) > 15 or any(c in interface for c in "/: \t\n"):
            raise GreError(f"{label}: interface: {interface!r} is not an interface name")
        if not item["addresses"]:
            raise GreError(f"{label}: addresses: give at least one address to ping")
        for address in item["addresses"]:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise GreError(f"{label}: addresses: {address!r} is not an IP address (without prefix)") from None
            targets.append(Target(interface=interface, address=address, peer=item.get("peer")))
    return targets


def run(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """gre_ping's work: check the options, ping, and summarize per target. Raises GreError."""
    if not 1 <= params["count"] <= 100:
        raise GreError(f"count: {params['count']} is not from 1 to 100")
    if not 0.01 <= params["interval"] <= 10:
        raise GreError(f"interval: {params['interval']} is not from 0.01 to 10 seconds")
    if not 0 < params["timeout"] <= 60:
        raise GreError(f"timeout: {params['timeout']} is not more than 0 and at most 60 seconds")
    if not 0 <= params["size"] <= 65507:
        raise GreError(f"size: {params['size']} is not from 0 to 65507 bytes")
    targets = targets_of(params)
    ping(targets, params["count"], params["interval"], params["timeout"], params["size"], params["dont_fragment"])
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
