# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: why a link with IPsec is down, from strongSwan's own words.

verify_links.yml reads, on each host with links that have IPsec, per IKE connection (the plan's
``ipsec[].connection``): ``== NAME``, then swanctl's raw IKE state (``sa {NAME {... state=...
child-sas {...}}}``, nothing when there is no IKE SA) and the daemon's journal lines of that
connection in this run (``log ...``, strongSwan's ``IKE_SA_NAME`` field). A link is established
when every end read has an ESTABLISHED IKE SA with an INSTALLED child (ESP) SA. Otherwise the cause
is ``ipsec_not_established``, with each end's state and the log line that says why, and a fix
chosen by what that line says (``REASONS``). Established at both ends, the ESP SAs' packet counters
tell whether one end's ESP reaches the other (``esp_dropped`` when none does).
"""

from __future__ import annotations

import re
import typing as t

STATE = re.compile(r"^sa \{\S+ \{.*? state=(?P<state>[A-Z_]+) ")
CHILD_INSTALLED = re.compile(r"child-sas \{.* state=INSTALLED ")
# The ESP SA's SPIs and packet counters (since it was installed), and whether it is carried in UDP.
PACKETS = re.compile(
    r"child-sas \{.* spi-in=(?P<spi_in>[0-9a-f]+) spi-out=(?P<spi_out>[0-9a-f]+) "
    r".* packets-in=(?P<into>\d+) .* packets-out=(?P<out>\d+) "
)
ENCAPSULATED = re.compile(r"child-sas \{.* encap=yes ")
# Packets one end sent in an ESP SA and the other did not receive, above which ESP is lost on the
# path (one may be on its way when the counters are read).
LOST = 2
# What a log line says, most telling first: (name, pattern). The name chooses the fix. An end that
# checked its peer's key says why it failed; the peer only hears AUTHENTICATION_FAILED. When both
# ends started IKE at once, each logs both: the cause is quoted.
REASONS = (
    ("key", re.compile(r"MAC mismatched|no shared key found|authentication of .* failed")),
    ("key", re.compile(r"AUTHENTICATION_FAILED")),
    (
        "config",
        re.compile(
            r"NO_PROPOSAL_CHOSEN|no acceptable proposal|no IKE config found|no matching peer config|"
            r"TS_UNACCEPTABLE|not supported"
        ),
    ),
    ("silence", re.compile(r"retransmit \d+ of request|giving up after \d+ retransmits|peer not responding")),
)


class State(t.NamedTuple):
    """What one end's evidence says of its connection."""

    ike: str | None  # the IKE SA's state; None: no IKE SA
    installed: bool  # its ESP SA is installed
    packets: tuple[str, str, int, int] | None  # the ESP SA's SPIs in and out, its packets in and out
    encapsulated: bool  # ESP in UDP
    log: list[str]

    @property
    def established(self) -> bool:
        """An ESTABLISHED IKE SA with its ESP SA installed: the link's GRE is carried."""
        return self.ike == "ESTABLISHED" and self.installed


class Side(t.NamedTuple):
    """One end of a link with IPsec: its host, its IKE connection, and what was read there (None: not read)."""

    host: str
    connection: str
    evidence: str | None


def sections(text: str) -> dict[str, list[str]]:
    """The evidence's lines by connection."""
    result: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("== "):
            current = result.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
    return result


def state_of(lines: list[str]) -> State:
    state, installed, packets, encapsulated, log = None, False, None, False, []
    for line in lines:
        match = STATE.match(line)
        if match:
            state = match.group("state")
            installed = bool(CHILD_INSTALLED.search(line))
            counted = PACKETS.search(line)
            packets = (
                (counted["spi_in"], counted["spi_out"], int(counted["into"]), int(counted["out"])) if counted else None
            )
            encapsulated = bool(ENCAPSULATED.search(line))
        elif line.startswith("log "):
            log.append(line[4:])
    return State(state, installed, packets, encapsulated, log)


def reason(log: list[str]) -> tuple[str | None, str | None]:
    """(the kind of reason, the last log line that says it); (None, the last line) when none does."""
    for kind, pattern in REASONS:
        for line in reversed(log):
            if pattern.search(line):
                return kind, line
    return None, log[-1] if log else None


def ipsec_cause(sides: list[Side], addresses: dict[str, str]) -> tuple[str, str, str] | None:
    """(code, text, fix) when the link's IPsec does not carry its GRE; None when it does, or nothing was read.

    Not established at an end read: ``ipsec_not_established``. Established at both ends, but one
    end's ESP SA sent packets of which the other's received none: ``esp_dropped``. ``addresses``
    maps each host to its underlay address, for the fixes that open the path.
    """
    read = [
        (side, state_of(sections(side.evidence).get(side.connection, [])))
        for side in sides
        if side.evidence is not None
    ]
    if not read:
        return None
    between = " and ".join(f"{side.host} ({addresses.get(side.host, '?')})" for side in sides)
    hosts = " and ".join(side.host for side in sides)
    if all(state.established for _side, state in read):
        return esp_cause(read, between)
    states, kinds, said = [], [], []
    for side, state in read:
        if state.established:
            states.append(f"{side.host}: established")
            continue
        ike = state.ike
        states.append(f"{side.host}: " + (f"IKE SA {ike.lower()}, no ESP SA installed" if ike else "no IKE SA"))
        kind, line = reason(state.log)
        if kind:
            kinds.append(kind)
        if line:
            said.append(f"{side.host}: '{line}'")
    text = f"IPsec between {hosts} is not established ({'; '.join(states)})"
    text += f"; strongSwan says {'; '.join(said)}" if said else "; strongSwan logged nothing of it"
    if "key" in kinds:
        fix = (
            "give both hosts the same gre_mesh_ipsec_secret and run playbooks/site.yml on both together (a secret "
            "changed under --limit leaves the two ends with different keys)"
        )
    elif "config" in kinds:
        fix = f"run playbooks/site.yml on both {hosts}: their IKE connections for this link differ, or one has none"
    else:
        fix = (
            f"let IKE (UDP 500 and 4500) and ESP (IP protocol 50) through between {between}: on the path (cloud "
            "firewall, security group, router ACL) and in both hosts' firewalls"
        )
    return "ipsec_not_established", text, fix


def esp_cause(read: list[tuple[Side, State]], between: str) -> tuple[str, str, str] | None:
    """Both ends established: does what one end sends in its ESP SA arrive in the other end's (the same SPI)?

    The counters run since the SA was installed, so the probe's packets lost on the path show as
    the sender's count above the receiver's.
    """
    if len(read) != 2 or any(state.packets is None for _side, state in read):
        return None
    for (sender, sent), (receiver, got) in (read, read[::-1]):
        _spi_in, spi_out, _in, out = t.cast("tuple[str, str, int, int]", sent.packets)
        spi_in, _spi_out, into, _out = t.cast("tuple[str, str, int, int]", got.packets)
        if spi_out == spi_in and out - into >= LOST:
            carried = "ESP in UDP 4500" if sent.encapsulated else "ESP (IP protocol 50)"
            return (
                "esp_dropped",
                f"IPsec between {sender.host} and {receiver.host} is established, but of the {out} packets {sender.host} "
                f"sent in its ESP SA (SPI {spi_out}), {receiver.host} received {into}: something on the path drops "
                f"{carried}, while IKE passes",
                f"let {carried} through between {between}: on the path (cloud firewall, security group, router ACL) "
                "and in both hosts' firewalls",
            )
    return None
