# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: why a link with IPsec is down, from strongSwan's own words.

verify_links.yml reads, on each host with links that have IPsec, per IKE connection (the plan's
``ipsec[].connection``): ``== NAME``, then swanctl's raw IKE state (``sa {NAME {... state=...
child-sas {...}}}``, nothing when there is no IKE SA) and the daemon's journal lines of that
connection (``log ...``, strongSwan's ``IKE_SA_NAME`` field). A link is established when every end
read has an ESTABLISHED IKE SA with an INSTALLED child SA. Otherwise the cause is
``ipsec_not_established``, with each end's state and the log line that says why, and a fix chosen
by what that line says (``REASONS``).
"""

from __future__ import annotations

import re
import typing as t

STATE = re.compile(r"^sa \{\S+ \{.*? state=(?P<state>[A-Z_]+) ")
CHILD_INSTALLED = re.compile(r"child-sas \{.* state=INSTALLED ")
# What a log line says, most telling first: (name, pattern). The name chooses the fix.
REASONS = (
    ("key", re.compile(r"MAC mismatched|AUTHENTICATION_FAILED|no shared key found|authentication of .* failed")),
    (
        "config",
        re.compile(
            r"NO_PROPOSAL_CHOSEN|no acceptable proposal|no IKE config found|no matching peer config|"
            r"TS_UNACCEPTABLE|not supported"
        ),
    ),
    ("silence", re.compile(r"retransmit \d+ of request|giving up after \d+ retransmits|peer not responding")),
)


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


def state_of(lines: list[str]) -> tuple[str | None, bool, list[str]]:
    """(the IKE SA's state or None, whether its child SA is installed, the log lines)."""
    state, installed, log = None, False, []
    for line in lines:
        match = STATE.match(line)
        if match:
            state = match.group("state")
            installed = bool(CHILD_INSTALLED.search(line))
        elif line.startswith("log "):
            log.append(line[4:])
    return state, installed, log


def reason(log: list[str]) -> tuple[str | None, str | None]:
    """(the kind of reason, the last log line that says it); (None, the last line) when none does."""
    for kind, pattern in REASONS:
        for line in reversed(log):
            if pattern.search(line):
                return kind, line
    return None, log[-1] if log else None


def ipsec_cause(sides: list[Side], addresses: dict[str, str]) -> tuple[str, str] | None:
    """(text, fix) when the link's IPsec is not established at an end read; None when it is (or nothing was read).

    ``addresses`` maps each host to its underlay address, for the fix that opens the path.
    """
    read = [side for side in sides if side.evidence is not None]
    states = []
    kinds = []
    said = []
    for side in read:
        state, installed, log = state_of(sections(t.cast(str, side.evidence)).get(side.connection, []))
        if state == "ESTABLISHED" and installed:
            states.append(f"{side.host}: established")
            continue
        states.append(f"{side.host}: " + (f"IKE SA {state.lower()}, no ESP SA installed" if state else "no IKE SA"))
        kind, line = reason(log)
        if kind:
            kinds.append(kind)
        if line:
            said.append(f"{side.host}: '{line}'")
    if not read or all(state.endswith(": established") for state in states):
        return None
    hosts = " and ".join(side.host for side in sides)
    text = f"IPsec between {hosts} is not established ({'; '.join(states)})"
    text += f"; strongSwan says {'; '.join(said)}" if said else "; strongSwan logged nothing of it"
    between = " and ".join(f"{side.host} ({addresses.get(side.host, '?')})" for side in sides)
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
    return text, fix
