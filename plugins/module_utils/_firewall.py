# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_firewall's logic, changing a host's packet filter.

What is there is read by _firewall_state (gre_host_facts imports that alone); the classes here add the planning
and the writing to its readers.

Lets IP protocol 47 (GRE) in from exactly a list of peers, in objects of its own, in the packet
filter frameworks that filter the host's input:

- ``nftables``: the table ``inet linuxnet_gre`` (sets of the peers' addresses, a base chain on the
  input hook at priority filter - 10 that accepts their GRE and drops, counted, all other GRE),
  plus one rule ``... gre counter accept`` at the top of every other filtering input base chain,
  since an accept in one base chain does not stop a drop in another. Written as one JSON batch
  (``nft -j -f -``), one transaction.
- ``iptables-legacy`` / ``iptables-nft`` (and their ip6tables): the chain ``LINUXNET-GRE`` (ACCEPT
  per peer, then a counted DROP) and one jump ``-p 47 -j LINUXNET-GRE`` inserted at the top of
  INPUT. Written with one ``iptables-restore --noflush`` per family, one commit.

GRE in UDP (issue 18, ``encap_peers``: the kernel's FOU or GUE, for the tunnels with ``encap``): UDP
to each receive port in from exactly the peers of that port, all other UDP to it dropped, counted;
in the same objects (nftables: a set ``udp4_PORT``/``udp6_PORT`` of the peers per port and version,
and two rules per port and version in the same input chain, at the top of other filtering input
chains one accept of the ports per version; iptables: the chain ``LINUXNET-GRE-UDP``, ACCEPT per
peer and port, then a counted DROP, jumped to from the top of INPUT once per port).

Two more things for routed sites (issue 16), in the same objects and the same single write:

- TCP MSS clamping (``mss_clamp``): SYNs forwarded out to a listed tunnel get their MSS lowered to
  the route's MTU (nftables: a chain ``mss`` of ``inet linuxnet_gre`` on the forward hook at
  priority mangle, ``tcp option maxseg size set rt mtu``; iptables: the chain ``LINUXNET-GRE-MSS`` of
  the mangle table, ``-j TCPMSS --clamp-mss-to-pmtu``, jumped to from the top of mangle FORWARD).
- Forwarding openings (``forward``): where forwarded traffic is filtered, packets in from a tunnel
  whose source is one of that tunnel's networks and whose destination is one of the planned
  networks, and packets out to a tunnel whose destination is one of its networks and whose source
  is one of the planned networks, are accepted (nftables: two rules per tunnel and IP version at the
  top of every filtering forward base chain, since an accept of our own table would not stop their
  drop; iptables: the chains ``LINUXNET-GRE-FWD`` (per tunnel network, a goto to), ``LINUXNET-GRE-TO``
  and ``LINUXNET-GRE-FROM`` (an ACCEPT per planned network), jumped to from the top of FORWARD).

Every command goes through _host.Host.run; tests replace it with answers captured from real kernels.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shlex
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewalld
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MANAGED_ALIAS
from ansible_collections.linuxnet.gre.plugins.module_utils._firewall_state import (
    CHAIN,
    FAMILY_NAME,
    FORWARD_COMMENT,
    FROM_CHAIN,
    FWD_CHAIN,
    GRE_NAMES,
    MSS_CHAIN,
    MSS_COMMENT,
    NFT_MSS_CHAIN,
    SET_NAME,
    TABLE,
    TO_CHAIN,
    UDP_CHAIN,
    UDP_NAMES,
    VERSIONS,
    IptablesState,
    NftablesState,
    family_versions,
    is_jump,
    ours,
    read_frameworks,
    rules,
    user_rule_label,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._host import PACKAGES, GreError, Host

NFT_MSS_PRIORITY = -150  # priority mangle: before any filter chain of the forward hook
# A Linux interface name as the kernel takes it (dev_valid_name), without what a rule's words could misread.
IFNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,14}$")
PRIORITY = -10  # before the usual filter chains (priority filter = 0)
SET_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
MAX_PORT = 65535

# What a host with no packet filter tool needs (_host.PACKAGES names the packages).
INSTALL_A_FILTER = f"install {PACKAGES['nft']} or {PACKAGES['iptables']}"


def split_peers(peers: list[str]) -> dict[int, list[str]]:
    """The peers' addresses by IP version, unique and in numeric order. Raises GreError."""
    found: dict[int, set[t.Any]] = {4: set(), 6: set()}
    bad = []
    for text in peers:
        try:
            address = ipaddress.ip_address(str(text).strip())
        except ValueError:
            bad.append(str(text))
            continue
        found[address.version].add(address)
    if bad:
        raise GreError(f"peers: not an IP address: {', '.join(bad)}", invalid=bad)
    return {version: [str(a) for a in sorted(found[version])] for version in VERSIONS if found[version]}


def split_udp(entries: list[dict[str, t.Any]]) -> dict[int, dict[int, list[str]]]:
    """``encap_peers`` by IP version and port: the peers' addresses, unique and in numeric order. Raises GreError."""
    found: dict[int, dict[int, list[str]]] = {}
    for entry in entries:
        port = entry.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= MAX_PORT:
            raise GreError(f"encap_peers: port {port!r} is not a UDP port number from 1 to {MAX_PORT}", invalid=[port])
        for version, addresses in split_peers(entry.get("peers") or []).items():
            merged = set(found.setdefault(version, {}).get(port, [])) | set(addresses)
            found[version][port] = sorted(merged, key=ipaddress.ip_address)
    return {version: dict(sorted(found[version].items())) for version in VERSIONS if found.get(version)}


def udp_set(version: int, port: int) -> str:
    """The nftables set of the peers whose GRE in UDP to ``port`` is let in."""
    return f"udp{version}_{port}"


def interface(text: t.Any, option: str) -> str:
    """A tunnel's name, checked: it goes into rules. Raises GreError."""
    name = str(text)
    if not IFNAME.match(name):
        raise GreError(
            f"{option}: {name!r} is not an interface name (1 to 15 letters, digits, '_', '.', '@', '+' or '-', "
            "not starting with one of the last four)",
            invalid=[name],
        )
    return name


def split_interfaces(names: list[str], option: str) -> list[str]:
    """The tunnels' names, unique and sorted. Raises GreError."""
    return sorted({interface(name, option) for name in names})


def network(text: t.Any, where: str) -> t.Any:
    """One network, as ipaddress takes it strictly: no host bits. Raises GreError naming ``where``."""
    try:
        return ipaddress.ip_network(str(text).strip())
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise GreError(f"{where}: {text!r} is not a network (address/prefix length)", invalid=[str(text)]) from None
    raise GreError(f"{where}: {text} has host bits set; the network is {loose}", invalid=[str(text)])


def split_forward(entries: list[dict[str, t.Any]], local: list[str]) -> dict[int, dict[str, t.Any]]:
    """Per IP version: ``tunnels`` [(name, [its networks])] and ``planned`` (every network, the host's own too).

    Networks are collapsed and sorted (ipaddress.collapse_addresses). Raises GreError.
    """
    tunnels: dict[int, dict[str, list[t.Any]]] = {4: {}, 6: {}}
    planned: dict[int, list[t.Any]] = {4: [], 6: []}
    for entry in entries:
        name = interface(entry.get("interface"), "forward")
        for text in entry.get("networks") or []:
            net = network(text, f"forward: interface {name}: networks")
            tunnels[net.version].setdefault(name, []).append(net)
            planned[net.version].append(net)
    for text in local:
        net = network(text, "local_networks")
        planned[net.version].append(net)
    return {
        version: {
            "tunnels": [
                (name, [str(n) for n in ipaddress.collapse_addresses(nets)])
                for name, nets in sorted(tunnels[version].items())
            ],
            "planned": [str(n) for n in ipaddress.collapse_addresses(planned[version])],
        }
        for version in VERSIONS
        if tunnels[version]
    }


def wanted(params: dict[str, t.Any]) -> dict[str, t.Any]:
    """What the parameters ask for: ``peers`` (split_peers), ``udp`` (split_udp), ``mss`` (tunnel names), ``forward`` (split_forward)."""
    if params["state"] != "present":
        return {"peers": {}, "udp": {}, "mss": [], "forward": {}}
    return {
        "peers": split_peers(params["peers"] or []),
        "udp": split_udp(params.get("encap_peers") or []),
        "mss": split_interfaces(params.get("mss_clamp") or [], "mss_clamp"),
        "forward": split_forward(params.get("forward") or [], params.get("local_networks") or []),
    }


# --- nftables -----------------------------------------------------------------------------------------------------


def _match(left: dict[str, t.Any], right: t.Any) -> dict[str, t.Any]:
    return {"match": {"op": "==", "left": left, "right": right}}


IP_GRE = _match({"payload": {"protocol": "ip", "field": "protocol"}}, "gre")
L4_GRE = _match({"meta": {"key": "l4proto"}}, "gre")
NFPROTO_IPV6 = _match({"meta": {"key": "nfproto"}}, "ipv6")
COUNTER = {"counter": None}


def nft_rule(text: str, expr: list[dict[str, t.Any]], comment: str) -> dict[str, t.Any]:
    """A rule both ways: as nft's language (for people) and as its JSON (what is sent)."""
    return {"text": f'{text} comment "{comment}"', "expr": expr, "comment": comment}


def own_rules(version: int) -> list[dict[str, t.Any]]:
    """The rules of linuxnet_gre's input chain for one IP version: the peers' GRE in, all other GRE out."""
    name = FAMILY_NAME[version]
    peers = "@" + SET_NAME[version]
    if version == 4:
        saddr = _match({"payload": {"protocol": "ip", "field": "saddr"}}, peers)
        return [
            nft_rule(
                f"ip protocol gre ip saddr {peers} counter accept",
                [IP_GRE, saddr, COUNTER, {"accept": None}],
                f"{MANAGED_ALIAS} {name} peers",
            ),
            nft_rule(
                "ip protocol gre counter drop", [IP_GRE, COUNTER, {"drop": None}], f"{MANAGED_ALIAS} {name} others"
            ),
        ]
    saddr = _match({"payload": {"protocol": "ip6", "field": "saddr"}}, peers)
    return [
        nft_rule(
            f"meta nfproto ipv6 meta l4proto gre ip6 saddr {peers} counter accept",
            [NFPROTO_IPV6, L4_GRE, saddr, COUNTER, {"accept": None}],
            f"{MANAGED_ALIAS} {name} peers",
        ),
        nft_rule(
            "meta nfproto ipv6 meta l4proto gre counter drop",
            [NFPROTO_IPV6, L4_GRE, COUNTER, {"drop": None}],
            f"{MANAGED_ALIAS} {name} others",
        ),
    ]


UDP_DPORT = {"payload": {"protocol": "udp", "field": "dport"}}
NFPROTO = {4: _match({"meta": {"key": "nfproto"}}, "ipv4"), 6: NFPROTO_IPV6}


def udp_comment(version: int, port: int, what: str) -> str:
    return f"{MANAGED_ALIAS} {FAMILY_NAME[version]} udp {port} {what}"


def udp_rules(version: int, port: int) -> list[dict[str, t.Any]]:
    """The rules of linuxnet_gre's input chain for one IP version and receive port of GRE in UDP: the port's
    peers in, all other UDP to the port out."""
    proto = "ip" if version == 4 else "ip6"
    peers = "@" + udp_set(version, port)
    saddr = _match({"payload": {"protocol": proto, "field": "saddr"}}, peers)
    dport = _match(UDP_DPORT, port)
    return [
        nft_rule(
            f"{proto} saddr {peers} udp dport {port} counter accept",
            [saddr, dport, COUNTER, {"accept": None}],
            udp_comment(version, port, "peers"),
        ),
        nft_rule(
            f"meta nfproto {FAMILY_NAME[version]} udp dport {port} counter drop",
            [NFPROTO[version], dport, COUNTER, {"drop": None}],
            udp_comment(version, port, "others"),
        ),
    ]


def input_rules(peers: t.Mapping[int, t.Any], udp: t.Mapping[int, t.Mapping[int, t.Any]]) -> list[dict[str, t.Any]]:
    """linuxnet_gre's input chain, in order: per IP version, its GRE rules, then those of each UDP port."""
    return [
        rule
        for version in VERSIONS
        for rule in (own_rules(version) if version in peers else [])
        + [rule for port in udp.get(version, {}) for rule in udp_rules(version, port)]
    ]


def user_udp_rule(version: int, ports: t.Iterable[int]) -> dict[str, t.Any]:
    """The rule put at the top of another filtering input chain: UDP of this IP version to the receive ports passes
    it (linuxnet_gre's own chain drops what does not come from the ports' peers). Its comment names the ports."""
    listed = sorted(ports)
    comment = f"{MANAGED_ALIAS} {FAMILY_NAME[version]} udp {','.join(str(p) for p in listed)}"
    return nft_rule(
        f"meta nfproto {FAMILY_NAME[version]} udp dport {{ {', '.join(str(p) for p in listed)} }} counter accept",
        [NFPROTO[version], _match(UDP_DPORT, {"set": listed}), COUNTER, {"accept": None}],
        comment,
    )


def user_chain_rule(family: str, version: int) -> dict[str, t.Any]:
    """The rule put at the top of another filtering input chain: GRE of this IP version passes it.

    It accepts any source: linuxnet_gre's own chain drops the GRE of everyone else, and a drop in
    any base chain is final, whatever the order of the chains.
    """
    comment = f"{MANAGED_ALIAS} {FAMILY_NAME[version]}"
    if version == 4:
        return nft_rule("ip protocol gre counter accept", [IP_GRE, COUNTER, {"accept": None}], comment)
    if family == "ip6":
        return nft_rule("meta l4proto gre counter accept", [L4_GRE, COUNTER, {"accept": None}], comment)
    return nft_rule(
        "meta nfproto ipv6 meta l4proto gre counter accept", [NFPROTO_IPV6, L4_GRE, COUNTER, {"accept": None}], comment
    )


SYN_ONLY = _match({"&": [{"payload": {"protocol": "tcp", "field": "flags"}}, ["syn", "rst"]]}, "syn")
SET_MSS = {"mangle": {"key": {"tcp option": {"name": "maxseg", "field": "size"}}, "value": {"rt": {"key": "mtu"}}}}


def mss_rule(name: str) -> dict[str, t.Any]:
    """The clamp of the SYNs (and SYN-ACKs) forwarded out to one tunnel: MSS = the route's MTU less the headers."""
    return nft_rule(
        f'oifname "{name}" tcp flags syn / syn,rst counter tcp option maxseg size set rt mtu',
        [_match({"meta": {"key": "oifname"}}, name), SYN_ONLY, COUNTER, SET_MSS],
        MSS_COMMENT + name,
    )


def _prefixes(networks: list[str]) -> dict[str, t.Any]:
    found = []
    for text in networks:
        net = ipaddress.ip_network(text)
        found.append({"prefix": {"addr": str(net.network_address), "len": net.prefixlen}})
    return {"set": found}


def forward_rules(version: int, forward: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The accepts of one IP version, two per tunnel: in from it (source: its networks, destination: a planned
    network), out to it (destination: its networks, source: a planned network).

    The comment ends with a digest of the rule's networks, so that a change of the plan is seen by comment.
    """
    proto = "ip" if version == 4 else "ip6"
    planned = forward["planned"]
    rules = []
    for name, networks in forward["tunnels"]:
        for way, dev, mine, theirs in (("in", "iifname", "saddr", "daddr"), ("out", "oifname", "daddr", "saddr")):
            digest = hashlib.sha256(json.dumps([networks, planned]).encode()).hexdigest()[:12]
            rules.append(
                nft_rule(
                    f'{dev} "{name}" {proto} {mine} {{ {", ".join(networks)} }} '
                    f"{proto} {theirs} {{ {', '.join(planned)} }} counter accept",
                    [
                        _match({"meta": {"key": dev}}, name),
                        _match({"payload": {"protocol": proto, "field": mine}}, _prefixes(networks)),
                        _match({"payload": {"protocol": proto, "field": theirs}}, _prefixes(planned)),
                        COUNTER,
                        {"accept": None},
                    ],
                    f"{FORWARD_COMMENT}{FAMILY_NAME[version]} {way} {name} {digest}",
                )
            )
    return rules


class Nftables(NftablesState):
    """The nftables framework, read as _firewall_state reads it, changed with one ``nft --json --file -``."""

    @staticmethod
    def _chain_is(chain: dict[str, t.Any] | None, settings: dict[str, t.Any], comments: list[str]) -> bool:
        return (
            chain is not None
            and all(chain.get(k) == v for k, v in settings.items())
            and [rule.get("comment") for rule in chain["rules"]] == comments
        )

    def _table_is(self, want: dict[str, t.Any]) -> bool:
        """Whether linuxnet_gre is exactly what is wanted (chain settings, sets, rule comments)."""
        table = self.table
        if table is None:
            return False
        peers, udp, mss = want["peers"], want["udp"], want["mss"]
        chains = table["chains"]
        if set(chains) != ({"input"} if peers or udp else set()) | ({NFT_MSS_CHAIN} if mss else set()):
            return False
        if (peers or udp) and not self._chain_is(
            chains.get("input"),
            {"type": "filter", "hook": "input", "prio": PRIORITY, "policy": "accept"},
            [rule["comment"] for rule in input_rules(peers, udp)],
        ):
            return False
        if mss and not self._chain_is(
            chains.get(NFT_MSS_CHAIN),
            {"type": "filter", "hook": "forward", "prio": NFT_MSS_PRIORITY, "policy": "accept"},
            [mss_rule(name)["comment"] for name in mss],
        ):
            return False
        sets = {SET_NAME[v]: (v, addresses) for v, addresses in peers.items()}
        sets.update({udp_set(v, port): (v, a) for v, ports in udp.items() for port, a in ports.items()})
        if set(table["sets"]) != set(sets):
            return False
        for name, (version, addresses) in sets.items():
            found = table["sets"][name]
            if found["type"] != SET_TYPE[version] or sorted(found["elem"]) != sorted(addresses):
                return False
        return True

    def plan(self, want: dict[str, t.Any]) -> list[tuple[dict[str, t.Any], str]]:
        """The commands that make nftables what is wanted (nothing wanted: remove everything of ours)."""
        commands: list[tuple[dict[str, t.Any], str]] = []
        table_ref = {"family": "inet", "name": TABLE}
        peers, udp, mss = want["peers"], want["udp"], want["mss"]
        if (peers or udp or mss) and not self._table_is(want):
            if self.table is not None:
                commands.append(({"delete": {"table": table_ref}}, f"nft delete table inet {TABLE}"))
            commands.append(({"add": {"table": table_ref}}, f"nft add table inet {TABLE}"))
            sets = [(version, SET_NAME[version], addresses) for version, addresses in peers.items()]
            sets += [
                (version, udp_set(version, port), addresses)
                for version, ports in udp.items()
                for port, addresses in ports.items()
            ]
            for version, name, addresses in sets:
                ref = {"family": "inet", "table": TABLE, "name": name}
                commands.append(
                    (
                        {"add": {"set": dict(ref, type=SET_TYPE[version])}},
                        f"nft add set inet {TABLE} {name} {{ type {SET_TYPE[version]}; }}",
                    )
                )
                commands.append(
                    (
                        {"add": {"element": dict(ref, elem=list(addresses))}},
                        f"nft add element inet {TABLE} {name} {{ {', '.join(addresses)} }}",
                    )
                )
            if peers or udp:
                own_chain = {"family": "inet", "table": TABLE, "name": "input"}
                commands.append(
                    (
                        {
                            "add": {
                                "chain": dict(own_chain, type="filter", hook="input", prio=PRIORITY, policy="accept")
                            }
                        },
                        f"nft add chain inet {TABLE} input {{ type filter hook input priority filter - 10; "
                        "policy accept; }",
                    )
                )
                for rule in input_rules(peers, udp):
                    commands.append(self._add_rule("input", rule))
            if mss:
                mss_chain = {"family": "inet", "table": TABLE, "name": NFT_MSS_CHAIN}
                commands.append(
                    (
                        {
                            "add": {
                                "chain": dict(
                                    mss_chain, type="filter", hook="forward", prio=NFT_MSS_PRIORITY, policy="accept"
                                )
                            }
                        },
                        f"nft add chain inet {TABLE} {NFT_MSS_CHAIN} {{ type filter hook forward priority mangle; "
                        "policy accept; }",
                    )
                )
                for name in mss:
                    commands.append(self._add_rule(NFT_MSS_CHAIN, mss_rule(name)))
        elif not (peers or udp or mss) and self.table is not None:
            commands.append(({"delete": {"table": table_ref}}, f"nft delete table inet {TABLE}"))
        # The other filtering input chains: one accept per IP version with peers, at the top.
        for chain in self.chains:
            if chain["closed"] == "owner":
                continue  # no other tool may change it (nor has)
            commands.extend(self._converge_chain(chain, self.user_rules(chain, peers, udp)))
        # The filtering forward chains: the accepts of every tunnel and IP version, at the top.
        for chain in self.forward_chains:
            if chain["closed"] == "owner":
                continue
            versions = family_versions(chain["family"], want["forward"]) if self.filtering_chain(chain) else []
            rules = [rule for v in versions for rule in forward_rules(v, want["forward"][v])]
            commands.extend(self._converge_chain(chain, rules))
        return commands

    @staticmethod
    def _add_rule(chain: str, rule: dict[str, t.Any]) -> tuple[dict[str, t.Any], str]:
        body = {"family": "inet", "table": TABLE, "chain": chain}
        return (
            {"add": {"rule": dict(body, expr=rule["expr"], comment=rule["comment"])}},
            f"nft add rule inet {TABLE} {chain} {rule['text']}",
        )

    def _converge_chain(
        self, chain: dict[str, t.Any], rules: list[dict[str, t.Any]]
    ) -> list[tuple[dict[str, t.Any], str]]:
        """Rules of ours in another table's chain: those not wanted (or twice) deleted, the missing inserted on top."""
        commands: list[tuple[dict[str, t.Any], str]] = []
        ref = {"family": chain["family"], "table": chain["table"], "chain": chain["name"]}
        wanted_comments = {rule["comment"] for rule in rules}
        seen: set[str] = set()
        for existing in chain["rules"]:
            comment = existing.get("comment", "")
            if not ours(comment):
                continue
            if comment in wanted_comments and comment not in seen:
                seen.add(comment)
                continue
            commands.append(
                (
                    {"delete": {"rule": dict(ref, handle=existing["handle"])}},
                    f"nft delete rule {self._label(chain)} handle {existing['handle']}",
                )
            )
        for rule in rules:
            if rule["comment"] not in seen:
                commands.append(
                    (
                        {"insert": {"rule": dict(ref, expr=rule["expr"], comment=rule["comment"])}},
                        f"nft insert rule {self._label(chain)} {rule['text']}",
                    )
                )
        return commands

    def user_rules(
        self, chain: dict[str, t.Any], peers: t.Iterable[int], udp: t.Mapping[int, t.Iterable[int]]
    ) -> list[dict[str, t.Any]]:
        """Our accepts at the top of another table's input chain: GRE, then UDP to the receive ports, per IP version."""
        rules = [user_chain_rule(chain["family"], v) for v in self.accept_versions(chain, peers)]
        return rules + [user_udp_rule(v, udp[v]) for v in self.accept_versions(chain, udp)]

    def accept_versions(self, chain: dict[str, t.Any], peers: t.Iterable[int]) -> list[int]:
        """The IP versions whose GRE accept goes at the top of another table's input chain."""
        return family_versions(chain["family"], peers) if self.filtering_chain(chain) and not chain["closed"] else []

    def apply(self, commands: list[tuple[dict[str, t.Any], str]], check_mode: bool) -> None:
        """All commands in one transaction (nft -j -f -); in check mode, only validated by the kernel (--check)."""
        argv = ["nft", "--check", "--json", "--file", "-"] if check_mode else ["nft", "--json", "--file", "-"]
        batch = json.dumps({"nftables": [command for command, _text in commands]})
        rc, out, err = self.host.run(argv, stdin=batch)
        if rc != 0:
            raise GreError(
                f"{' '.join(argv)} failed: {err.strip() or out.strip() or f'exit code {rc}'}",
                command=argv,
                stdin=[text for _command, text in commands],
                stderr=err,
            )


# --- iptables -----------------------------------------------------------------------------------------------------


JUMP = ["-p", "47", "-j", CHAIN]
FWD_JUMP = ["-j", FWD_CHAIN]
MSS_JUMP = ["-j", MSS_CHAIN]
# The restore's tables, in the order written; the filter table's lines carry no -t in the commands reported.
IPT_TABLES = ("filter", "mangle")


def mss_rules(names: list[str]) -> list[list[str]]:
    """LINUXNET-GRE-MSS's rules, as iptables-save prints them: SYNs out to each tunnel clamped to the route's MTU."""
    return [
        ["-A", MSS_CHAIN, "-o", name, "-p", "tcp", "-m", "tcp", "--tcp-flags", "SYN,RST", "SYN"]
        + ["-j", "TCPMSS", "--clamp-mss-to-pmtu"]
        for name in names
    ]


def fwd_rules(forward: dict[str, t.Any]) -> dict[str, list[list[str]]]:
    """The three forwarding chains of one IP version, as iptables-save prints them (TO and FROM first: FWD goes to them).

    FWD: per tunnel network, in from the tunnel with that source, or out to it with that destination, goes to TO
    (destination a planned network?) or FROM (source a planned network?), which ACCEPT or return to FORWARD.
    """
    fwd: list[list[str]] = []
    for name, networks in forward["tunnels"]:
        fwd.extend(["-A", FWD_CHAIN, "-s", net, "-i", name, "-g", TO_CHAIN] for net in networks)
        fwd.extend(["-A", FWD_CHAIN, "-d", net, "-o", name, "-g", FROM_CHAIN] for net in networks)
    return {
        TO_CHAIN: [["-A", TO_CHAIN, "-d", net, "-j", "ACCEPT"] for net in forward["planned"]],
        FROM_CHAIN: [["-A", FROM_CHAIN, "-s", net, "-j", "ACCEPT"] for net in forward["planned"]],
        FWD_CHAIN: fwd,
    }


class Iptables(IptablesState):
    """iptables-legacy or iptables-nft with their ip6tables, read with iptables-save, changed with iptables-restore."""

    def plan(self, want: dict[str, t.Any]) -> dict[int, dict[str, list[str]]]:
        """Per IP version and table, the iptables-restore lines that make it what is wanted (nothing wanted: remove ours)."""
        result: dict[int, dict[str, list[str]]] = {}
        for version, table in self.tables.items():
            peers = want["peers"].get(version)
            udp = want["udp"].get(version)
            forward = want["forward"].get(version)
            prefix = 32 if version == 4 else 128
            gre_rules = None
            if peers:
                gre_rules = [["-A", CHAIN, "-s", f"{p}/{prefix}", "-j", "ACCEPT"] for p in peers]
                gre_rules.append(["-A", CHAIN, "-j", "DROP"])
            udp_rules_ = None
            if udp:
                udp_rules_ = [
                    ["-A", UDP_CHAIN, "-s", f"{a}/{prefix}", *udp_match(port), "-j", "ACCEPT"]
                    for port, addresses in udp.items()
                    for a in addresses
                ]
                udp_rules_.append(["-A", UDP_CHAIN, "-j", "DROP"])
            fwd = fwd_rules(forward) if forward else {}
            lines = {
                "filter": plan_hook(table, "filter", "INPUT", [JUMP], {CHAIN: gre_rules})
                + plan_hook(
                    table,
                    "filter",
                    "INPUT",
                    [[*udp_match(port), "-j", UDP_CHAIN] for port in udp or {}] or [["-j", UDP_CHAIN]],
                    {UDP_CHAIN: udp_rules_},
                )
                + plan_hook(
                    table,
                    "filter",
                    "FORWARD",
                    [FWD_JUMP],
                    {name: fwd.get(name) for name in (TO_CHAIN, FROM_CHAIN, FWD_CHAIN)},
                ),
                "mangle": plan_hook(
                    table, "mangle", "FORWARD", [MSS_JUMP], {MSS_CHAIN: mss_rules(want["mss"]) if want["mss"] else None}
                ),
            }
            lines = {name: found for name, found in lines.items() if found}
            if lines:
                result[version] = lines
        return result

    def commands(self, lines: dict[int, dict[str, list[str]]]) -> list[str]:
        tool = self.tools
        return [
            f"{tool[version][0]} {'' if name == 'filter' else f'-t {name} '}{line}"
            for version in sorted(lines)
            for name in IPT_TABLES
            for line in lines[version].get(name, [])
        ]

    def apply(self, lines: dict[int, dict[str, list[str]]], check_mode: bool) -> None:
        """One iptables-restore --noflush per IP version, one commit per table; in check mode with --test."""
        for version in sorted(lines):
            argv = [self.tools[version][2], "--wait", "--noflush"] + (["--test"] if check_mode else [])
            stdin = ""
            numbered: dict[int, str] = {}  # iptables-restore numbers the lines of its input from 1
            sent: list[str] = []
            for name in IPT_TABLES:
                if name not in lines[version]:
                    continue
                stdin += f"*{name}\n"
                for line in lines[version][name]:
                    numbered[stdin.count("\n") + 1] = f"{'' if name == 'filter' else f'-t {name} '}{line}"
                    sent.append(line)
                    stdin += f"{line}\n"
                stdin += "COMMIT\n"
            rc, out, err = self.host.run(argv, stdin=stdin)
            if rc == 0:
                continue
            match = re.search(r"line (\d+) failed", err)
            line_number = int(match.group(1)) if match else 0
            failed = f": {self.tools[version][0]} {numbered[line_number]}" if line_number in numbered else ""
            raise GreError(
                f"{' '.join(argv)} failed{failed}: {err.strip() or out.strip() or f'exit code {rc}'}",
                command=argv,
                stdin=sent,
                stderr=err,
            )


def plan_hook(
    table: dict[str, t.Any],
    name: str,
    hook: str,
    jumps: list[list[str]],
    chains: dict[str, list[list[str]] | None],
) -> list[str]:
    """The lines for chains of ours reached by jumps from a built-in chain: all wanted (rules given) or none.

    ``jumps`` are the jumps' words after ``-A HOOK``: one, or one per UDP port (to the same chain).
    Wanted: each chain created (-N) or rewritten (-F) when its rules differ, then exactly the jumps on top of
    ``hook`` (when they are not exactly there once each, those there all deleted first, in the same commit: -D
    deletes the first match). Not wanted: the jumps deleted, then every chain of ours there flushed, then
    deleted (one may go to another).
    """
    wanted_jumps = list(jumps)
    target = wanted_jumps[0][-1]
    found_jumps = [rule[2:] for rule in rules(table, name, hook) or [] if is_jump(rule[2:], target)]
    deletes = [f"-D {hook} {' '.join(same_jump(words))}" for words in found_jumps]
    lines = []
    if any(found is not None for found in chains.values()):
        for chain, wanted_rules in chains.items():
            found = rules(table, name, chain)
            if found != wanted_rules:
                lines.append(f"-N {chain}" if found is None else f"-F {chain}")
                lines.extend(" ".join(rule) for rule in wanted_rules or [])
        if sorted(map(same_jump, found_jumps)) != sorted(map(same_jump, wanted_jumps)):
            lines.extend(deletes)
            # Each inserted at the top: the last first, so that they end up in their order.
            lines.extend(f"-I {hook} 1 {' '.join(words)}" for words in reversed(wanted_jumps))
    else:
        lines.extend(deletes)
        present = [chain for chain in chains if rules(table, name, chain) is not None]
        lines.extend(f"-F {chain}" for chain in present)
        lines.extend(f"-X {chain}" for chain in present)
    return lines


def same_jump(words: list[str]) -> list[str]:
    """A jump's words with its protocol as this module writes it (iptables-save prints ``-p 47`` as ``-p gre``)."""
    if words[:1] == ["-p"] and len(words) > 1:
        number = {**dict.fromkeys(GRE_NAMES, "47"), **dict.fromkeys(UDP_NAMES, "udp")}.get(words[1], words[1])
        return ["-p", number, *words[2:]]
    return list(words)


def udp_match(port: int) -> list[str]:
    """The match of UDP to one port, as iptables-save prints it."""
    return ["-p", "udp", "-m", "udp", "--dport", str(port)]


# --- the run ------------------------------------------------------------------------------------------------------


def choose(
    backend: str, nft: Nftables, frameworks: list[t.Any], filtering: list[t.Any], what: tuple[t.Any, ...]
) -> list[t.Any]:
    """The frameworks that get one kind of rules: forced by ``backend``, else those that filter, else the first.

    ``what``: what they are for (words for the error), then the IP versions whose restore tools they need.
    Raises GreError when none works.
    """
    iptables = [f for f in frameworks if isinstance(f, Iptables)]
    if backend == "nftables":
        if not nft.works:
            fix = f": install {PACKAGES['nft']}" if not nft.installed else ""
            raise GreError(f"backend=nftables, but nftables does not work on this host: {nft.probe_error}{fix}")
        return [nft]
    # iptables: the variant that filters, else iptables-legacy; auto: every framework that filters, else the first.
    forced = [f for f in filtering if f in iptables] or iptables[:1]
    selected = forced if backend == "iptables" else filtering or frameworks[:1]
    if not selected:
        clamp = what[0] == "mss_clamp"
        fix = INSTALL_A_FILTER + (", or turn the clamp off (the role's gre_mesh_mss_clamp: false)" if clamp else "")
        raise GreError(
            f"{'mss_clamp: ' if clamp else ''}no packet filter tool for backend={backend} works on this host: "
            f"nftables: {nft.probe_error or 'works'}; iptables-legacy-save/-restore: not installed: {fix}",
            nftables=nft.probe_error or "works",
        )
    for framework in selected:
        if isinstance(framework, Iptables):
            missing = [framework.tools[v][2] for v in VERSIONS if v in what and not framework.installed[v]]
            if missing:
                raise GreError(
                    f"{framework.name}: {', '.join(missing)} not installed, needed for the {what[0]}: "
                    f"install {PACKAGES['iptables']}"
                )
    return selected


def plan(host: Host, params: dict[str, t.Any], want: dict[str, t.Any]) -> dict[str, t.Any]:
    """Read the frameworks and plan what makes them what ``want`` says. Raises GreError (nothing changed yet)."""
    peers, udp, forward = want["peers"], want["udp"], want["forward"]
    backend = params["backend"]
    only_if_filtered = params["only_if_filtered"]
    nft, frameworks = read_frameworks(host, nftables=Nftables, iptables=Iptables)
    # The IP versions of the openings for the tunnels: GRE's and GRE in UDP's.
    versions = sorted(set(peers) | set(udp))
    filtering = [f for f in frameworks if f.filtering(versions)]
    filtering_forward = [f for f in frameworks if f.filtering_forward(forward)]
    selected: list[t.Any] = []
    if versions and not (only_if_filtered and not filtering):
        selected = choose(backend, nft, frameworks, filtering, ("peers", *versions))
    forwarding: list[t.Any] = []
    if forward and not (only_if_filtered and not filtering_forward):
        forwarding = choose(backend, nft, frameworks, filtering_forward, ("forwarded networks", *forward))
    clamping: list[t.Any] = []
    if want["mss"]:
        # One framework: the one of the GRE opening or of the forwarding openings, else as for them.
        clamping = (selected or forwarding or choose(backend, nft, frameworks, [], ("mss_clamp",)))[:1]
    work = []
    targets: dict[str, dict[str, t.Any]] = {}
    for framework in frameworks:
        target = {
            "peers": peers if framework in selected else {},
            "udp": udp if framework in selected else {},
            "mss": want["mss"] if framework in clamping else [],
            "forward": forward if framework in forwarding else {},
        }
        targets[framework.name] = target
        todo = framework.plan(target)
        if todo:
            work.append((framework, todo))
    return {
        "frameworks": frameworks,
        "selected": selected,
        "forwarding": forwarding,
        "clamping": clamping,
        "work": work,
        "targets": targets,
    }


def commands_of(work: list[tuple[t.Any, t.Any]]) -> list[str]:
    """The planned commands, for people."""
    commands: list[str] = []
    for framework, todo in work:
        if isinstance(framework, Nftables):
            commands.extend(text for _command, text in todo)
        else:
            commands.extend(framework.commands(todo))
    return commands


def converge(
    host: Host, params: dict[str, t.Any], check_mode: bool, diff: bool, files: t.Any = None
) -> dict[str, t.Any]:
    """Make the host's GRE filtering, MSS clamp and forwarding openings what ``params`` say; the module's result.

    ``files`` (a _tunnel.persist.Files): also make firewalld's policy (where firewalld runs, _firewalld)
    and what puts the rules back at boot and after a reload of the host's firewall what
    ``params["persist"]`` says (_firewall_persist); None: the rules only (the boot unit's own run,
    with firewalld loading its policy itself). Raises GreError, before any change.
    """
    want = wanted(params)
    planned = plan(host, params, want)
    frameworks, selected = planned["frameworks"], planned["selected"]
    before = {f.name: f.state() for f in frameworks if f.state()}
    counters = {f.name: f.counters() for f in frameworks if f.counters()}
    firewalld = None
    persistence = None
    firewalld_commands: list[list[str]] = []
    addresses: list[str] = []  # the peers of firewalld's policy
    udp_peers: list[tuple[str, int]] = []  # its peers of GRE in UDP, with their ports
    if files is not None:
        # Imported here: the boot unit's copy of this file runs without it (and without _tunnel).
        from ansible_collections.linuxnet.gre.plugins.module_utils import _firewall_persist

        firewalld = _firewalld.Firewalld(host)
        firewalld.read()
        policy = firewalld.state()
        if policy:
            before[firewalld.name] = policy
        # Where firewalld runs, the peers its policy accepts: those of the GRE opening, wherever that goes.
        if firewalld.running and selected:
            addresses = [a for v in VERSIONS for a in want["peers"].get(v, [])]
            udp_peers = [(a, port) for v in VERSIONS for port, found in want["udp"].get(v, {}).items() for a in found]
        firewalld_commands = firewalld.plan(addresses, udp_peers)
        in_use = bool(selected or planned["clamping"] or planned["forwarding"])
        persistence = _firewall_persist.prepare(files, bool(params.get("persist")), params, in_use)
    commands = [" ".join(shlex.quote(word) for word in argv) for argv in firewalld_commands]
    if firewalld is not None and firewalld_commands and not check_mode:
        firewalld.apply(firewalld_commands)
        if ["firewall-cmd", "--reload"] in firewalld_commands:
            # firewalld rebuilt its rules (under its iptables backend, it flushes every iptables table): again.
            planned = plan(host, params, want)
    for framework, todo in planned["work"]:
        framework.apply(todo, check_mode)
    commands.extend(commands_of(planned["work"]))
    if persistence is not None and not check_mode:
        persistence.apply(files)

    frameworks, selected = planned["frameworks"], planned["selected"]
    clamping, forwarding = planned["clamping"], planned["forwarding"]
    result: dict[str, t.Any] = {
        "changed": bool(planned["work"] or firewalld_commands) or bool(persistence and persistence.changed),
        "backends": [f.name for f in frameworks if f in selected] + (["firewalld"] if addresses or udp_peers else []),
        "filtered_by": [line for f in frameworks for line in f.filtering(VERSIONS)],
        "commands": commands,
        "counters": counters,
    }
    if want["mss"] or want["forward"]:
        result["mss_clamp_backends"] = [f.name for f in clamping]
        result["forward_backends"] = [f.name for f in forwarding]
        result["forward_filtered_by"] = [line for f in frameworks for line in f.filtering_forward(VERSIONS)]
    if persistence is not None:
        result["persisted"] = persistence.as_dict()
        if persistence.warnings:
            result["warnings"] = persistence.warnings
    if diff:
        after = {}
        for framework in frameworks:
            state = expected_state(framework, planned["targets"][framework.name])
            if state:
                after[framework.name] = state
        if addresses or udp_peers:
            after[_firewalld.Firewalld.name] = _firewalld.expected_state(addresses, udp_peers)
        rules_diff = {"before": before, "after": after}
        # A list (Ansible shows each entry) only when boot files change; the rules' diff alone otherwise.
        result["diff"] = [rules_diff, *persistence.diff] if persistence and persistence.diff else rules_diff
    return result


def udp_text(udp: t.Mapping[int, t.Mapping[int, list[str]]]) -> dict[str, list[str]]:
    """The peers of GRE in UDP as state() shows them: ``ADDRESS udp/PORT`` by IP version name, by port and address."""
    return {
        FAMILY_NAME[v]: [f"{a} udp/{port}" for port, addresses in sorted(udp[v].items()) for a in addresses]
        for v in VERSIONS
        if udp.get(v)
    }


def expected_state(framework: t.Any, target: dict[str, t.Any]) -> dict[str, t.Any]:
    """What state() will say once the framework is what ``target`` asks for."""
    peers, udp, mss, forward = target["peers"], target["udp"], target["mss"], target["forward"]
    if isinstance(framework, Nftables):
        state: dict[str, t.Any] = {}
        if peers or udp or mss:
            state["table"] = f"inet {TABLE}"
        if peers or udp:
            state["peers"] = {FAMILY_NAME[v]: a for v, a in peers.items()}
        if udp:
            state["encap_peers"] = udp_text(udp)
        if mss:
            state["mss_clamp"] = list(mss)
        accepts = [
            f"{framework._label(chain)} ({user_rule_label(rule['comment'])})"
            for chain in framework.chains
            if chain["closed"] != "owner"
            for rule in framework.user_rules(chain, peers, udp)
        ]
        if accepts:
            state["accept_in"] = accepts
        forwards: list[str] = []
        for chain in framework.forward_chains:
            if chain["closed"] == "owner" or not framework.filtering_chain(chain):
                continue
            rules_now = [
                rule["comment"]
                for v in family_versions(chain["family"], forward)
                for rule in forward_rules(v, forward[v])
            ]
            # Those already there keep their place; the others are inserted on top (in reverse order, one by one).
            kept = []
            for existing in chain["rules"]:
                comment = existing.get("comment", "")
                if comment in rules_now and comment not in kept:
                    kept.append(comment)
            order = [c for c in reversed(rules_now) if c not in kept] + kept
            forwards.extend(
                f"{framework._label(chain)} ({' '.join(c[len(FORWARD_COMMENT) :].split()[:3])})" for c in order
            )
        if forwards:
            state["accept_forward"] = forwards
        return state
    result: dict[str, t.Any] = {}
    for version in VERSIONS:
        entry: dict[str, t.Any] = {}
        if version in peers:
            entry.update({"chain": True, "jumps": 1, "peers": peers[version]})
        if version in udp:
            entry["encap_peers"] = {
                "chain": True,
                "jumps": len(udp[version]),
                "peers": udp_text({version: udp[version]})[FAMILY_NAME[version]],
            }
        if mss and version in framework.tables:
            entry["mss_clamp"] = {"jumps": 1, "interfaces": list(mss)}
        if version in forward:
            entry["forward"] = {
                "jumps": 1,
                "tunnels": {name: list(nets) for name, nets in forward[version]["tunnels"]},
                "networks": list(forward[version]["planned"]),
            }
        if entry:
            result[FAMILY_NAME[version]] = entry
    return result
