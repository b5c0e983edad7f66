# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_ping through main(), with real packets on this machine's loopback interface (never further).

Loopback answers like a tunnel's far end would, so these tests run the module's real sockets:
ping sockets where net.ipv4.ping_group_range allows, raw sockets as root. gre_ping runs no command
and reads no file: the host seam (replay.py's ``Seam``) holds no replay, so any such call fails.
"""

from __future__ import annotations

import os
import socket
import struct
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._probe import icmp
from ansible_collections.linuxnet.gre.plugins.modules import gre_ping

from .replay import Seam


def can_ping() -> bool:
    if os.geteuid() == 0:
        return True
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()
    except PermissionError:
        return False
    return True


needs_icmp = pytest.mark.skipif(not can_ping(), reason="neither root nor allowed ping sockets")


@pytest.fixture
def run(seam: Seam) -> t.Callable[..., dict[str, t.Any]]:
    return lambda **args: seam.main(gre_ping.main, args)


@needs_icmp
def test_pings_ipv4_and_ipv6_through_the_interface(run):
    result = run(targets=[{"interface": "lo", "addresses": ["127.0.0.1", "::1"], "peer": "self"}], count=2)
    assert result["changed"] is False
    assert (result["up"], result["down"]) == (1, 0)
    for entry in result["results"]:
        assert (entry["sent"], entry["received"], entry["up"], entry["error"]) == (2, 2, True, None)
        assert 0 < entry["rtt_ms"]["min"] <= entry["rtt_ms"]["avg"] <= entry["rtt_ms"]["max"]
    assert [line.split(": up, ")[0] for line in result["summary"]] == ["lo to self 127.0.0.1", "lo to self ::1"]
    assert all(line.endswith(" ms") and "2/2 replies" in line for line in result["summary"])


@needs_icmp
def test_takes_the_plans_peers_as_they_are_as_gre_probe_does(run):
    # A peers entry of the plan (gre_plan_check), external key included: gre_probe's peers take the same.
    peer = {"interface": "lo", "peer": "self", "external": True, "addresses": ["127.0.0.1"]}
    result = run(targets=[peer], count=1)
    assert (result["up"], result["down"]) == (1, 0)
    (entry,) = result["results"]
    assert sorted(entry) == ["address", "error", "interface", "peer", "received", "rtt_ms", "sent", "up"]


@needs_icmp
def test_a_missing_interface_is_down_with_the_reason_and_does_not_fail(run):
    result = run(
        targets=[
            {"interface": "gre-nowhere", "addresses": ["127.0.0.1"], "peer": "gone"},
            {"interface": "lo", "addresses": ["127.0.0.1"]},
        ],
        count=1,
        timeout=1,
    )
    assert "failed" not in result
    assert (result["up"], result["down"]) == (1, 1)
    gone = result["results"][0]
    assert (gone["sent"], gone["received"], gone["up"]) == (0, 0, False)
    assert gone["error"] == "interface gre-nowhere does not exist"
    assert (
        result["summary"][0]
        == "gre-nowhere to gone 127.0.0.1: DOWN, 0/0 replies (interface gre-nowhere does not exist)"
    )


@needs_icmp
def test_a_target_is_down_when_one_of_its_addresses_does_not_answer(run):
    # ::2 is no address of this machine: bound to lo, the request never leaves it and nothing answers.
    result = run(targets=[{"interface": "lo", "addresses": ["127.0.0.1", "::2"], "peer": "half"}], count=1, timeout=0.5)
    assert (result["up"], result["down"]) == (0, 1)
    assert [entry["up"] for entry in result["results"]] == [True, False]


@needs_icmp
def test_stop_when_up_sends_no_more_to_an_address_that_answered(run):
    # A second round would leave 5 s after the first: the run returns at the first reply instead.
    result = run(
        targets=[{"interface": "lo", "addresses": ["127.0.0.1", "::1"], "peer": "self"}],
        count=3,
        interval=5,
        stop_when_up=True,
    )
    assert (result["up"], result["down"]) == (1, 0)
    assert [(entry["sent"], entry["received"]) for entry in result["results"]] == [(1, 1), (1, 1)]
    assert all("1/1 replies" in line for line in result["summary"])


@needs_icmp
def test_stop_when_up_still_sends_every_round_to_an_address_that_does_not_answer(run, monkeypatch):
    # ::1's replies come back, and are taken for someone else's: the requests are real, the answers lost.
    parse = icmp.parse_reply
    monkeypatch.setattr(icmp, "parse_reply", lambda version, *args: None if version == 6 else parse(version, *args))
    result = run(
        targets=[{"interface": "lo", "addresses": ["127.0.0.1", "::1"], "peer": "half"}],
        count=3,
        interval=0.05,
        timeout=0.3,
        stop_when_up=True,
    )
    assert (result["up"], result["down"]) == (0, 1)
    answered, silent = result["results"]
    assert (answered["sent"], answered["received"], answered["up"]) == (1, 1, True)
    assert (silent["sent"], silent["received"], silent["up"], silent["error"]) == (3, 0, False, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"count": 0}, "count: 0 is not from 1 to 100"),
        ({"interval": 0.001}, "interval: 0.001 is not from 0.01 to 10 seconds"),
        ({"timeout": 0}, "timeout: 0.0 is not more than 0 and at most 60 seconds"),
        ({"size": 70000}, "size: 70000 is not from 0 to 65507 bytes"),
        (
            {"targets": [{"interface": "gre-b", "addresses": ["10.0.0.2/30"], "peer": "hostb"}]},
            "targets[0] (hostb): addresses: '10.0.0.2/30' is not an IP address (without prefix)",
        ),
        (
            {"targets": [{"interface": "gre/b", "addresses": ["10.0.0.2"]}]},
            "targets[0]: interface: 'gre/b' is not an interface name",
        ),
        # The kernel counts bytes: 15 characters, 16 bytes in UTF-8 (the one rule of gre_tunnel and the planner).
        (
            {"targets": [{"interface": "gre-münchen-dc1", "addresses": ["10.0.0.2"]}]},
            "targets[0]: interface: 'gre-münchen-dc1' is not an interface name: is 16 bytes long",
        ),
        ({"targets": [{"interface": "gre-b", "addresses": []}]}, "targets[0]: addresses: give at least one address"),
    ],
)
def test_bad_input_fails_naming_the_option(run, args, message):
    result = run(**{"targets": [{"interface": "lo", "addresses": ["127.0.0.1"]}], **args})
    assert result["failed"] is True
    assert result["msg"].startswith(message)


def test_checksum_of_a_known_echo_request():
    # An echo request as ping(8) sends it: type 8, code 0, id 0x1234, seq 1, 4 bytes of payload.
    packet = icmp.echo_request(4, 0x1234, 1, 4)
    assert packet == bytes.fromhex("0800") + struct.pack("!H", 0xE3C6) + bytes.fromhex("1234 0001 00010203")
    assert icmp.checksum(packet) == 0


@pytest.mark.parametrize("raw", [True, False])
def test_a_reply_is_recognised_with_or_without_ip_header(raw):
    reply = bytes([0, 0, 0, 0]) + struct.pack("!HH", 0x1234, 7)
    header = bytes([0x45]) + bytes(19)
    data = header + reply if raw else reply
    assert icmp.parse_reply(4, data, raw, 0x1234) == 7
    assert icmp.parse_reply(4, data, raw, 0x9999) == (None if raw else 7)
    request = header + icmp.echo_request(4, 0x1234, 7, 0) if raw else icmp.echo_request(4, 0x1234, 7, 0)
    assert icmp.parse_reply(4, request, raw, 0x1234) is None
