# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_firewall's logic, reading and changing a host's packet filter.

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

Every command goes through _host.Host.run; tests replace it with answers captured from real kernels.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils import _nft
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MANAGED_ALIAS
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host

TABLE = "linuxnet_gre"
CHAIN = "LINUXNET-GRE"
PRIORITY = -10  # before the usual filter chains (priority filter = 0)
VERSIONS = (4, 6)
FAMILY_NAME = {4: "ipv4", 6: "ipv6"}
SET_NAME = {4: "peers4", 6: "peers6"}
SET_TYPE = {4: "ipv4_addr", 6: "ipv6_addr"}
# The IP versions an input base chain of an nftables family sees.
NFT_FAMILY_VERSIONS = {"ip": (4,), "ip6": (6,), "inet": (4, 6)}
GRE_NAMES = ("gre", "47")

NFT_PROBE = ["nft", "--check", "add", "table", "inet", TABLE]
# The legacy tables the kernel has loaded: what iptables-legacy-save lists, and all it lists.
LEGACY_TABLES = {4: "/proc/net/ip_tables_names", 6: "/proc/net/ip6_tables_names"}


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


USER_COMMENTS = {f"{MANAGED_ALIAS} {FAMILY_NAME[v]}": v for v in VERSIONS}


def _name(text: str) -> str:
    """A table or chain name as nft prints it (quoted when it is not a plain identifier; for people only)."""
    return text if re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", text) else json.dumps(text)


class Nftables:
    """The nftables framework, read with one ``nft --json list ruleset`` (_nft.read)."""

    name = "nftables"

    def __init__(self, host: Host) -> None:
        self.host = host
        self.installed = host.which("nft") is not None
        self.works = False
        self.probe_error = ""
        self.table: dict[str, t.Any] | None = None  # linuxnet_gre: {"chains", "sets", "rules"}
        self.chains: list[dict[str, t.Any]] = []  # the other input base chains, with their rules

    def probe(self) -> bool:
        """Whether nft works on this kernel: a dry run (--check) of adding linuxnet_gre, never committed."""
        if not self.installed:
            self.probe_error = "nft is not installed"
            return False
        rc, out, err = self.host.run(NFT_PROBE)
        self.works = rc == 0
        self.probe_error = "" if self.works else (err.strip() or out.strip() or f"exit code {rc}")
        return self.works

    def read(self) -> None:
        tables = _nft.read(self.host)
        ours = tables.pop(("inet", TABLE), None)
        self.table = None
        if ours is not None:
            self.table = {
                "chains": ours["chains"],
                "sets": {name: {"type": s.get("type"), "elem": _nft.elements(s)} for name, s in ours["sets"].items()},
                "rules": [rule for chain in ours["chains"].values() for rule in chain["rules"]],
            }
        self.chains = [
            chain
            for (family, _name), table in tables.items()
            if family in NFT_FAMILY_VERSIONS
            for chain in table["chains"].values()
            if chain.get("hook") == "input" and chain.get("type") == "filter"
        ]

    @staticmethod
    def _label(chain: dict[str, t.Any]) -> str:
        return f"{chain['family']} {_name(chain['table'])} {_name(chain['name'])}"

    def filtering(self, versions: t.Iterable[int]) -> list[str]:
        """The input base chains (not this module's) with a drop policy or a rule of their own, seeing these versions."""
        return [
            f"{self.name}: {self._label(chain)}"
            for chain in self.chains
            if set(versions) & set(NFT_FAMILY_VERSIONS[chain["family"]]) and self.filtering_chain(chain)
        ]

    def state(self) -> dict[str, t.Any]:
        """What of this module is in nftables (for the diff and the result)."""
        result: dict[str, t.Any] = {}
        if self.table is not None:
            result["table"] = f"inet {TABLE}"
            result["peers"] = {
                FAMILY_NAME[v]: sorted(self.table["sets"][SET_NAME[v]]["elem"], key=ipaddress.ip_address)
                for v in VERSIONS
                if SET_NAME[v] in self.table["sets"]
            }
        accepts = [
            f"{self._label(chain)} ({FAMILY_NAME[USER_COMMENTS[rule['comment']]]})"
            for chain in self.chains
            for rule in chain["rules"]
            if rule.get("comment") in USER_COMMENTS
        ]
        if accepts:
            result["accept_in"] = accepts
        return result

    def counters(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for rule in (self.table or {}).get("rules", []):
            for version in VERSIONS:
                for what in ("peers", "others"):
                    if rule.get("comment") == f"{MANAGED_ALIAS} {FAMILY_NAME[version]} {what}":
                        key = "accepted" if what == "peers" else "dropped"
                        result.setdefault(FAMILY_NAME[version], {})[key] = _nft.counter(rule) or 0
        return result

    def _table_is(self, peers: dict[int, list[str]]) -> bool:
        """Whether linuxnet_gre is exactly what these peers need (chain settings, sets, rule comments)."""
        table = self.table
        if table is None:
            return False
        chain = table["chains"].get("input", {})
        wanted_chain = {"type": "filter", "hook": "input", "prio": PRIORITY, "policy": "accept"}
        if set(table["chains"]) != {"input"} or any(chain.get(k) != v for k, v in wanted_chain.items()):
            return False
        if set(table["sets"]) != {SET_NAME[v] for v in peers}:
            return False
        for version, addresses in peers.items():
            found = table["sets"][SET_NAME[version]]
            if found["type"] != SET_TYPE[version] or sorted(found["elem"]) != sorted(addresses):
                return False
        wanted_rules = [rule["comment"] for version in peers for rule in own_rules(version)]
        return [rule.get("comment") for rule in table["rules"]] == wanted_rules

    def plan(self, peers: dict[int, list[str]]) -> list[tuple[dict[str, t.Any], str]]:
        """The commands that make nftables right for these peers (none: remove everything of ours)."""
        commands: list[tuple[dict[str, t.Any], str]] = []
        table_ref = {"family": "inet", "name": TABLE}
        if peers and not self._table_is(peers):
            if self.table is not None:
                commands.append(({"delete": {"table": table_ref}}, f"nft delete table inet {TABLE}"))
            commands.append(({"add": {"table": table_ref}}, f"nft add table inet {TABLE}"))
            for version, addresses in peers.items():
                ref = {"family": "inet", "table": TABLE, "name": SET_NAME[version]}
                commands.append(
                    (
                        {"add": {"set": dict(ref, type=SET_TYPE[version])}},
                        f"nft add set inet {TABLE} {SET_NAME[version]} {{ type {SET_TYPE[version]}; }}",
                    )
                )
                commands.append(
                    (
                        {"add": {"element": dict(ref, elem=list(addresses))}},
                        f"nft add element inet {TABLE} {SET_NAME[version]} {{ {', '.join(addresses)} }}",
                    )
                )
            own_chain = {"family": "inet", "table": TABLE, "name": "input"}
            commands.append(
                (
                    {"add": {"chain": dict(own_chain, type="filter", hook="input", prio=PRIORITY, policy="accept")}},
                    f"nft add chain inet {TABLE} input {{ type filter hook input priority filter - 10; policy accept; }}",
                )
            )
            for version in peers:
                for rule in own_rules(version):
                    body = {"family": "inet", "table": TABLE, "chain": "input"}
                    commands.append(
                        (
                            {"add": {"rule": dict(body, expr=rule["expr"], comment=rule["comment"])}},
                            f"nft add rule inet {TABLE} input {rule['text']}",
                        )
                    )
        elif not peers and self.table is not None:
            commands.append(({"delete": {"table": table_ref}}, f"nft delete table inet {TABLE}"))
        # The other filtering input chains: one accept per IP version with peers, at the top.
        for chain in self.chains:
            wanted = set(peers) & set(NFT_FAMILY_VERSIONS[chain["family"]]) if self.filtering_chain(chain) else set()
            ref = {"family": chain["family"], "table": chain["table"], "chain": chain["name"]}
            seen: set[int] = set()
            for existing in chain["rules"]:
                marked = USER_COMMENTS.get(existing.get("comment", ""))
                if marked is None:
                    continue
                if marked in wanted and marked not in seen:
                    seen.add(marked)
                    continue
                commands.append(
                    (
                        {"delete": {"rule": dict(ref, handle=existing["handle"])}},
                        f"nft delete rule {self._label(chain)} handle {existing['handle']}",
                    )
                )
            for version in sorted(wanted - seen):
                rule = user_chain_rule(chain["family"], version)
                commands.append(
                    (
                        {"insert": {"rule": dict(ref, expr=rule["expr"], comment=rule["comment"])}},
                        f"nft insert rule {self._label(chain)} {rule['text']}",
                    )
                )
        return commands

    @staticmethod
    def filtering_chain(chain: dict[str, t.Any]) -> bool:
        """A drop policy, or a rule this module did not add."""
        return chain.get("policy") == "drop" or any(r.get("comment") not in USER_COMMENTS for r in chain["rules"])

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


class Iptables:
    """iptables-legacy or iptables-nft with their ip6tables, read with iptables-save, changed with iptables-restore."""

    def __init__(self, host: Host, variant: str) -> None:
        self.host = host
        self.variant = variant
        self.name = f"iptables-{variant}"
        self.tools = {
            4: (f"iptables-{variant}", f"iptables-{variant}-save", f"iptables-{variant}-restore"),
            6: (f"ip6tables-{variant}", f"ip6tables-{variant}-save", f"ip6tables-{variant}-restore"),
        }
        self.installed = {v: all(host.which(tool) for tool in self.tools[v][1:]) for v in VERSIONS}
        self.tables: dict[int, dict[str, t.Any]] = {}

    def read(self, loaded_only: bool = False) -> None:
        """The filter table of each IP version whose tools are installed (iptables-save loads no kernel module).

        ``loaded_only``, for iptables-legacy: a version whose kernel has no legacy filter table loaded
        reads as an empty table without running iptables-save, which would list no filter table.
        """
        for version in VERSIONS:
            if not self.installed[version]:
                continue
            if loaded_only and self.variant == "legacy" and not self.filter_loaded(version):
                self.tables[version] = parse_save("")
                continue
            argv = [self.tools[version][1], "--counters"]
            rc, out, err = self.host.run(argv)
            if rc != 0:
                raise GreError(f"{' '.join(argv)} failed: {err.strip()}", command=argv, stderr=err)
            self.tables[version] = parse_save(out)

    def filter_loaded(self, version: int) -> bool:
        """Whether the kernel has the legacy filter table of this version (iptables-legacy only)."""
        return "filter" in (self.host.read_text(LEGACY_TABLES[version]) or "").split()

    def filtering(self, versions: t.Iterable[int]) -> list[str]:
        found = []
        for version in versions:
            table = self.tables.get(version)
            if table and (table["policy"] == "DROP" or table["input"]):
                found.append(f"{self.name}: INPUT ({FAMILY_NAME[version]})")
        return found

    def state(self) -> dict[str, t.Any]:
        result = {}
        for version, table in self.tables.items():
            if table["chain"] is not None or table["jumps"]:
                peers = [rule[3].split("/")[0] for rule in table["chain"] or [] if rule[2:3] == ["-s"]]
                result[FAMILY_NAME[version]] = {
                    "chain": table["chain"] is not None,
                    "jumps": table["jumps"],
                    "peers": peers,
                }
        return result

    def counters(self) -> dict[str, dict[str, int]]:
        result = {}
        for version, table in self.tables.items():
            if table["chain"] is not None:
                packets = table["chain_packets"]
                dropped = sum(p for p, rule in zip(packets, table["chain"]) if rule == ["-A", CHAIN, "-j", "DROP"])
                accepted = sum(p for p, rule in zip(packets, table["chain"]) if rule[-1] == "ACCEPT")
                result[FAMILY_NAME[version]] = {"accepted": accepted, "dropped": dropped}
        return result

    def plan(self, peers: dict[int, list[str]]) -> dict[int, list[str]]:
        """Per IP version, the iptables-restore lines that make it right for these peers (none: remove ours)."""
        result = {}
        for version, table in self.tables.items():
            lines = []
            if version in peers:
                prefix = 32 if version == 4 else 128
                rules = [["-A", CHAIN, "-s", f"{p}/{prefix}", "-j", "ACCEPT"] for p in peers[version]]
                rules.append(["-A", CHAIN, "-j", "DROP"])
                if table["chain"] != rules:
                    lines.append(f"-N {CHAIN}" if table["chain"] is None else f"-F {CHAIN}")
                    lines.extend(" ".join(rule) for rule in rules)
                if table["jumps"] != 1:
                    # Duplicates: all deleted (-D deletes the first match, which may be the one on top),
                    # then one inserted on top, in the same commit.
                    lines.extend([f"-D INPUT {' '.join(JUMP)}"] * table["jumps"])
                    lines.append(f"-I INPUT 1 {' '.join(JUMP)}")
            else:
                lines.extend([f"-D INPUT {' '.join(JUMP)}"] * table["jumps"])
                if table["chain"] is not None:
                    lines.extend([f"-F {CHAIN}", f"-X {CHAIN}"])
            if lines:
                result[version] = lines
        return result

    def commands(self, lines: dict[int, list[str]]) -> list[str]:
        return [f"{self.tools[version][0]} {line}" for version in sorted(lines) for line in lines[version]]

    def apply(self, lines: dict[int, list[str]], check_mode: bool) -> None:
        """One iptables-restore --noflush per IP version, one commit each; in check mode with --test (never committed)."""
        for version in sorted(lines):
            argv = [self.tools[version][2], "--wait", "--noflush"] + (["--test"] if check_mode else [])
            stdin = "*filter\n" + "".join(f"{line}\n" for line in lines[version]) + "COMMIT\n"
            rc, out, err = self.host.run(argv, stdin=stdin)
            if rc == 0:
                continue
            # iptables-restore numbers the lines of its input: line 1 is "*filter".
            match = re.search(r"line (\d+) failed", err)
            index = int(match.group(1)) - 2 if match else -1
            failed = f": {self.tools[version][0]} {lines[version][index]}" if 0 <= index < len(lines[version]) else ""
            raise GreError(
                f"{' '.join(argv)} failed{failed}: {err.strip() or out.strip() or f'exit code {rc}'}",
                command=argv,
                stdin=lines[version],
                stderr=err,
            )


def parse_save(text: str) -> dict[str, t.Any]:
    """The parts of iptables-save --counters' filter table that matter here.

    ``policy`` of INPUT; ``input``: INPUT's rules other than this module's jump; ``jumps``: how many
    of those; ``chain``: LINUXNET-GRE's rules as word lists, or None without the chain.
    """
    result: dict[str, t.Any] = {"policy": "ACCEPT", "input": [], "jumps": 0, "chain": None, "chain_packets": []}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            section = line[1:]
            continue
        if section != "filter" or not line or line.startswith("#"):
            continue
        if line == "COMMIT":
            section = None
        elif line.startswith(":"):
            name, policy = line[1:].split()[:2]
            if name == "INPUT":
                result["policy"] = policy
            elif name == CHAIN and result["chain"] is None:
                result["chain"] = []
        else:
            packets = 0
            counted = re.match(r"^\[(\d+):(\d+)\]\s+(.*)$", line)
            if counted:
                packets, line = int(counted.group(1)), counted.group(3)
            words = shlex.split(line)
            if words[:2] == ["-A", "INPUT"]:
                if _is_jump(words[2:]):
                    result["jumps"] += 1
                else:
                    result["input"].append(words)
            elif words[:2] == ["-A", CHAIN]:
                if result["chain"] is None:
                    result["chain"] = []
                result["chain"].append(words)
                result["chain_packets"].append(packets)
    return result


def _is_jump(words: list[str]) -> bool:
    return len(words) == 4 and words[0] == "-p" and words[1] in GRE_NAMES and words[2:] == ["-j", CHAIN]


# --- the run ------------------------------------------------------------------------------------------------------


def read_frameworks(host: Host, look_only: bool = False) -> tuple[Nftables, list[t.Any]]:
    """nftables (probed) and the frameworks that work on the host, each read.

    ``look_only``, for a verdict that changes nothing: legacy iptables is read only where its filter
    table is loaded (the common case of a host filtering with nftables runs no iptables-legacy-save).
    """
    nft = Nftables(host)
    frameworks: list[t.Any] = []
    if nft.probe():
        nft.read()
        frameworks.append(nft)
    candidates = [Iptables(host, "legacy")]
    if not nft.installed:
        # With nft installed, iptables-nft's tables are nftables chains, handled as such.
        candidates.append(Iptables(host, "nft"))
    for framework in candidates:
        if any(framework.installed.values()):
            framework.read(loaded_only=look_only)
            frameworks.append(framework)
    return nft, frameworks


def summary(host: Host) -> dict[str, t.Any]:
    """What filters the host's input, and whether anything of this module is in place (read-only)."""
    nft, frameworks = read_frameworks(host, look_only=True)
    return {
        "filtered_by": [line for f in frameworks for line in f.filtering(VERSIONS)],
        "managed": any(f.state() for f in frameworks),
        "backends": usable_backends(nft, frameworks),
        "nftables": nft.probe_error or "works",
    }


def usable_backends(nft: Nftables, frameworks: list[t.Any]) -> list[str]:
    """The values of the backend option that converge can act on here (nftables where nft works, iptables where installed)."""
    return (["nftables"] if nft.works else []) + (
        ["iptables"] if any(isinstance(f, Iptables) for f in frameworks) else []
    )


def converge(host: Host, params: dict[str, t.Any], check_mode: bool, diff: bool) -> dict[str, t.Any]:
    """Make the host's GRE filtering what ``params`` say; the module's result. Raises GreError."""
    peers = split_peers(params["peers"] or []) if params["state"] == "present" else {}
    backend = params["backend"]

    nft, frameworks = read_frameworks(host)
    iptables = [f for f in frameworks if isinstance(f, Iptables)]

    filtered_by = [line for f in frameworks for line in f.filtering(VERSIONS)]
    filtering = [f for f in frameworks if f.filtering(peers)]
    selected: list[t.Any] = []
    if peers and not (params["only_if_filtered"] and not filtering):
        if backend == "nftables":
            if not nft.works:
                raise GreError(f"backend=nftables, but nftables does not work on this host: {nft.probe_error}")
            selected = [nft]
        elif backend == "iptables":
            selected = [f for f in filtering if f in iptables] or iptables[:1]
        else:
            selected = filtering or (frameworks[:1])
        if not selected:
            raise GreError(
                f"no packet filter tool for backend={backend} works on this host: nftables: "
                f"{nft.probe_error or 'works'}; iptables-legacy-save/-restore: not installed",
                nftables=nft.probe_error or "works",
            )
        for framework in selected:
            if isinstance(framework, Iptables):
                missing = [framework.tools[v][2] for v in peers if not framework.installed[v]]
                if missing:
                    raise GreError(f"{framework.name}: {', '.join(missing)} not installed, needed for the peers")

    before = {f.name: f.state() for f in frameworks if f.state()}
    counters = {f.name: f.counters() for f in frameworks if f.counters()}
    commands: list[str] = []
    work = []
    for framework in frameworks:
        wanted = peers if framework in selected else {}
        todo = framework.plan(wanted)
        if todo:
            work.append((framework, todo))
            if isinstance(framework, Nftables):
                commands.extend(text for _command, text in todo)
            else:
                commands.extend(framework.commands(todo))
    for framework, todo in work:
        framework.apply(todo, check_mode)

    result: dict[str, t.Any] = {
        "changed": bool(work),
        "backends": [f.name for f in selected],
        "filtered_by": filtered_by,
        "commands": commands,
        "counters": counters,
    }
    if diff:
        after = {}
        for framework in selected:
            after[framework.name] = expected_state(framework, peers)
        result["diff"] = {"before": before, "after": after}
    return result


def expected_state(framework: t.Any, peers: dict[int, list[str]]) -> dict[str, t.Any]:
    """What state() will say once the framework is right for these peers."""
    if isinstance(framework, Nftables):
        state: dict[str, t.Any] = {"table": f"inet {TABLE}", "peers": {FAMILY_NAME[v]: a for v, a in peers.items()}}
        accepts = [
            f"{framework._label(chain)} ({FAMILY_NAME[v]})"
            for chain in framework.chains
            if framework.filtering_chain(chain)
            for v in sorted(set(peers) & set(NFT_FAMILY_VERSIONS[chain["family"]]))
        ]
        if accepts:
            state["accept_in"] = accepts
        return state
    return {FAMILY_NAME[v]: {"chain": True, "jumps": 1, "peers": a} for v, a in peers.items()}
