# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_firewall's part in firewalld.

Where firewalld runs, its own chains (nftables ``inet firewalld``, or iptables' under its iptables
backend) decide what comes in, and it rebuilds them from its configuration at every start and
``firewall-cmd --reload``: a rule another tool put there is lost, and on firewalld 2 (nftables
table owner) it cannot be put there at all. So the peers' GRE is accepted by a policy of the
collection's own, ``linuxnet-gre``, in firewalld's permanent configuration and in its runtime:

- ingress zone ``ANY``, egress zone ``HOST`` (traffic to the host itself), priority -1 (before every
  zone), target ``CONTINUE`` (what it does not accept goes on to the zones, unchanged);
- one rich rule per peer, ``rule family="ipv4" source address="PEER" protocol value="gre" accept``,
  and per peer of GRE in UDP (``encap_peers``) and its port, ``rule family="ipv4" source address="PEER"
  port port="PORT" protocol="udp" accept``.

firewalld creates policies only in its permanent configuration: the policy's creation (four
commands: the policy, its two zones, its rules; again after deleting it if its settings were
changed by hand) takes one ``firewall-cmd --reload``; after that, peers are added
and removed in both configurations without one. With no peer left, the permanent policy is deleted
and the runtime one emptied of its rules (it goes at firewalld's next reload). Every command is
``firewall-cmd``, through _host.Host.run; tests replace it with answers captured from firewalld 1.3.3
(Debian 12) and 2.3.1 (Debian 13).
"""

from __future__ import annotations

import ipaddress
import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host, output

POLICY = "linuxnet-gre"
# Where firewalld keeps the permanent policy (read-only here: firewall-cmd writes it).
POLICY_FILE = f"/etc/firewalld/policies/{POLICY}.xml"
# The settings that make the policy the collection's, as firewall-cmd --info-policy prints them.
SETTINGS = {"priority": "-1", "target": "CONTINUE", "ingress-zones": "ANY", "egress-zones": "HOST"}
# firewall-cmd's exit codes (firewall/errors.py): no such policy; firewalld not running.
INVALID_POLICY = 140
NOT_RUNNING = 252
RICH_RULE = re.compile(r'^rule family="ipv[46]" source address="([^"]+)" protocol value="gre" accept$')
UDP_RICH_RULE = re.compile(r'^rule family="ipv[46]" source address="([^"]+)" port port="(\d+)" protocol="udp" accept$')


def rich_rule(address: str) -> str:
    """The rich rule that accepts one peer's GRE, as firewall-cmd prints it back."""
    return f'rule family="ipv{ipaddress.ip_address(address).version}" source address="{address}" protocol value="gre" accept'


def udp_rich_rule(address: str, port: int) -> str:
    """The rich rule that accepts one peer's GRE in UDP to its port, as firewall-cmd prints it back."""
    version = ipaddress.ip_address(address).version
    return f'rule family="ipv{version}" source address="{address}" port port="{port}" protocol="udp" accept'


def parse_info(text: str) -> dict[str, t.Any]:
    """``firewall-cmd [--permanent] --info-policy=NAME``: its settings (key: value) and its rich rules."""
    settings: dict[str, str] = {}
    rules: list[str] = []
    in_rules = False
    for line in text.splitlines()[1:]:  # the first line is the name, "(active)" after it when in use
        if in_rules and line.startswith("\t"):
            rules.append(line.strip())
            continue
        key, _colon, value = line.strip().partition(":")
        in_rules = key == "rich rules"
        if not in_rules and key:
            settings[key] = value.strip()
    return {"settings": settings, "rules": rules}


def expected_state(addresses: list[str], udp: list[tuple[str, int]] | None = None) -> dict[str, t.Any]:
    """What Firewalld.state() says once the policy accepts exactly these peers (and these of GRE in UDP)."""
    info = {"rules": [rich_rule(a) for a in addresses] + [udp_rich_rule(a, port) for a, port in udp or []]}
    result: dict[str, t.Any] = {"policy": POLICY, "peers": Firewalld.peers(info)}
    if udp:
        result["encap_peers"] = Firewalld.udp_peers(info)
    return result


class Firewalld:
    """firewalld, when it runs: the policy linuxnet-gre in its permanent configuration and in its runtime."""

    name = "firewalld"

    def __init__(self, host: Host) -> None:
        self.host = host
        self.installed = host.which("firewall-cmd") is not None
        self.running = False
        self.permanent: dict[str, t.Any] | None = None  # parse_info of the policy, None when there is none
        self.runtime: dict[str, t.Any] | None = None

    def _info(self, permanent: bool) -> dict[str, t.Any] | None:
        argv = ["firewall-cmd", *(["--permanent"] if permanent else []), f"--info-policy={POLICY}"]
        rc, out, err = self.host.run(argv)
        if rc == 0:
            return parse_info(out)
        if rc == INVALID_POLICY:
            return None
        if rc == NOT_RUNNING:
            self.running = False
            return None
        raise GreError(f"{' '.join(argv)} failed: {err.strip() or out.strip() or f'exit code {rc}'}", command=argv)

    def read(self) -> None:
        """The policy as firewalld has it, where firewall-cmd is installed and firewalld answers."""
        if not self.installed:
            return
        self.running = True
        self.permanent = self._info(permanent=True)
        if self.running:
            self.runtime = self._info(permanent=False)

    @staticmethod
    def ours(info: dict[str, t.Any] | None) -> bool:
        """Whether the policy's settings are the collection's (whatever its rules)."""
        return info is not None and all(info["settings"].get(k) == v for k, v in SETTINGS.items())

    @staticmethod
    def peers(info: dict[str, t.Any] | None) -> dict[str, list[str]]:
        """The peers a policy accepts GRE from, by IP version name."""
        found: dict[str, list[str]] = {}
        for rule in (info or {}).get("rules", []):
            match = RICH_RULE.match(rule)
            if match:
                address = match.group(1)
                found.setdefault(f"ipv{ipaddress.ip_address(address).version}", []).append(address)
        return {family: sorted(a, key=ipaddress.ip_address) for family, a in sorted(found.items())}

    @staticmethod
    def udp_peers(info: dict[str, t.Any] | None) -> dict[str, list[str]]:
        """The peers a policy accepts GRE in UDP from, by IP version name: ``ADDRESS udp/PORT``, by port and address."""
        found: dict[str, list[tuple[int, t.Any]]] = {}
        for rule in (info or {}).get("rules", []):
            match = UDP_RICH_RULE.match(rule)
            if match:
                address = ipaddress.ip_address(match.group(1))
                found.setdefault(f"ipv{address.version}", []).append((int(match.group(2)), address))
        return {family: [f"{a} udp/{port}" for port, a in sorted(pairs)] for family, pairs in sorted(found.items())}

    def state(self) -> dict[str, t.Any]:
        """What of this module is in firewalld (for the diff and the result)."""
        if self.permanent is None and not (self.runtime and self.runtime["rules"]):
            return {}
        result: dict[str, t.Any] = {"policy": POLICY, "peers": self.peers(self.permanent)}
        udp = self.udp_peers(self.permanent)
        if udp:
            result["encap_peers"] = udp
        if self.peers(self.runtime) != result["peers"]:
            result["runtime_peers"] = self.peers(self.runtime)
        if self.udp_peers(self.runtime) != udp:
            result["runtime_encap_peers"] = self.udp_peers(self.runtime)
        return result

    def plan(self, addresses: list[str], udp: list[tuple[str, int]] | None = None) -> list[list[str]]:
        """The firewall-cmd commands that make the policy accept exactly these peers, and these peers' GRE in UDP
        to their ports (none: no policy)."""
        cmd = ["firewall-cmd"]
        permanent = [*cmd, "--permanent"]
        if not addresses and not udp:
            commands = [[*permanent, f"--delete-policy={POLICY}"]] if self.permanent is not None else []
            stale = (self.runtime or {}).get("rules", [])
            if stale:
                commands.append([*cmd, f"--policy={POLICY}", *(f"--remove-rich-rule={r}" for r in stale)])
            return commands
        rules = [rich_rule(a) for a in addresses] + [udp_rich_rule(a, port) for a, port in udp or []]
        commands = []
        if not self.ours(self.permanent):
            # Created as firewalld creates one (priority -1, target CONTINUE), then its zones and rules.
            if self.permanent is not None:
                commands.append([*permanent, f"--delete-policy={POLICY}"])
            commands.append([*permanent, f"--new-policy={POLICY}"])
            commands.append([*permanent, f"--policy={POLICY}", f"--add-ingress-zone={SETTINGS['ingress-zones']}"])
            commands.append([*permanent, f"--policy={POLICY}", f"--add-egress-zone={SETTINGS['egress-zones']}"])
            commands.extend(self._rules(permanent, None, rules))
        else:
            commands.extend(self._rules(permanent, self.permanent, rules))
        if not (self.ours(self.permanent) and self.ours(self.runtime)):
            commands.append([*cmd, "--reload"])  # the runtime policy becomes what the permanent one is now
        else:
            commands.extend(self._rules(cmd, self.runtime, rules))
        return commands

    @staticmethod
    def _rules(prefix: list[str], info: dict[str, t.Any] | None, rules: list[str]) -> list[list[str]]:
        """Rich rules removed (those not wanted) and added (the missing), in one command each."""
        have = (info or {}).get("rules", [])
        commands = []
        stale = [r for r in have if r not in rules]
        if stale:
            commands.append([*prefix, f"--policy={POLICY}", *(f"--remove-rich-rule={r}" for r in stale)])
        missing = [r for r in rules if r not in have]
        if missing:
            commands.append([*prefix, f"--policy={POLICY}", *(f"--add-rich-rule={r}" for r in missing)])
        return commands

    def apply(self, commands: list[list[str]]) -> None:
        """Run the commands in order; GreError naming the first that fails."""
        for argv in commands:
            output(self.host, argv)
