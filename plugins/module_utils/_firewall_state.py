# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: what of a host's packet filter is there, read only.

Which frameworks work and filter the host's input (nftables, probed with ``nft --check``; iptables-legacy and
iptables-nft, read with their ``-save``), and what of gre_firewall's objects (_firewall's docstring names them)
they hold. gre_firewall plans and changes on top of these readers (_firewall.Nftables and _firewall.Iptables);
gre_host_facts needs only them (``summary``), so that its payload does not carry gre_firewall's planner: on the
lab's guests, importing _firewall whole took 0.22-0.27 s of each gre_host_facts run, most of it compiling it.

Every command goes through _host.Host.run; tests replace it with answers captured from real kernels.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewalld, _nft
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MANAGED_ALIAS
from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host

TABLE = "linuxnet_gre"
CHAIN = "LINUXNET-GRE"
UDP_CHAIN = "LINUXNET-GRE-UDP"  # filter table: GRE in UDP, ACCEPT per peer and port, then DROP
MSS_CHAIN = "LINUXNET-GRE-MSS"  # mangle table: the TCP MSS clamp
FWD_CHAIN = "LINUXNET-GRE-FWD"  # filter table: per tunnel network, a goto to one of the two below
TO_CHAIN = "LINUXNET-GRE-TO"  # ACCEPT when the destination is a planned network
FROM_CHAIN = "LINUXNET-GRE-FROM"  # ACCEPT when the source is a planned network
NFT_MSS_CHAIN = "mss"
VERSIONS = (4, 6)
FAMILY_NAME = {4: "ipv4", 6: "ipv6"}
SET_NAME = {4: "peers4", 6: "peers6"}
# The IP versions an input base chain of an nftables family sees.
NFT_FAMILY_VERSIONS = {"ip": (4,), "ip6": (6,), "inet": (4, 6)}
GRE_NAMES = ("gre", "47")
UDP_NAMES = ("udp", "17")
NFT_PROBE = ["nft", "--check", "add", "table", "inet", TABLE]
# The settings of the boot unit that puts the rules back (_firewall_persist): there, the rules are managed.
SETTINGS = "/etc/linuxnet-gre/firewall.json"
# The legacy tables the kernel has loaded: what iptables-legacy-save lists, and all it lists.
LEGACY_TABLES = {4: "/proc/net/ip_tables_names", 6: "/proc/net/ip6_tables_names"}
# The comments that mark the collection's rules in chains of other tables (nftables).
USER_COMMENTS = {f"{MANAGED_ALIAS} {FAMILY_NAME[v]}": v for v in VERSIONS}
MSS_COMMENT = f"{MANAGED_ALIAS} mss "  # + the tunnel's name
FORWARD_COMMENT = f"{MANAGED_ALIAS} forward "  # + ipv4|ipv6, in|out, the tunnel's name, a digest of the networks


def user_rule_label(comment: t.Any) -> str | None:
    """What a rule of ours in another table's input chain lets in: ``ipv4`` (GRE), ``ipv4 udp 5555`` (ports)."""
    if not isinstance(comment, str):
        return None
    if comment in USER_COMMENTS:
        return FAMILY_NAME[USER_COMMENTS[comment]]
    for version in VERSIONS:
        prefix = f"{MANAGED_ALIAS} {FAMILY_NAME[version]} udp "
        if comment.startswith(prefix):
            return comment[len(MANAGED_ALIAS) + 1 :]
    return None


def ours(comment: t.Any) -> bool:
    """Whether a rule in another table's chain is this module's (by its comment)."""
    return isinstance(comment, str) and (user_rule_label(comment) is not None or comment.startswith(FORWARD_COMMENT))


def closed(table: dict[str, t.Any], firewalld: bool) -> str:
    """Why a table's input chains get no GRE accept of ours: "owner" (nftables' owner flag: no other
    process may change it, firewalld 2 sets it), "firewalld" (its policy accepts the peers' GRE
    durably, _firewalld), else ""."""
    flags = table.get("flags", [])
    if "owner" in ([flags] if isinstance(flags, str) else flags):
        return "owner"
    return "firewalld" if firewalld and table.get("name") == "firewalld" else ""


def _name(text: str) -> str:
    """A table or chain name as nft prints it (quoted when it is not a plain identifier; for people only)."""
    return text if re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", text) else json.dumps(text)


def family_versions(family: str, versions: t.Iterable[int]) -> list[int]:
    """Those of ``versions`` that a base chain of the nftables ``family`` sees (ip: 4, ip6: 6, inet: both)."""
    return sorted(set(versions) & set(NFT_FAMILY_VERSIONS[family]))


class NftablesState:
    """The nftables framework, read with one ``nft --json list ruleset`` (_nft.read); _firewall.Nftables changes it."""

    name = "nftables"

    def __init__(self, host: Host) -> None:
        self.host = host
        self.installed = host.which("nft") is not None
        self.works = False
        self.probe_error = ""
        self.table: dict[str, t.Any] | None = None  # linuxnet_gre: {"chains", "sets", "rules"}
        self.chains: list[dict[str, t.Any]] = []  # the other input base chains, with their rules
        self.forward_chains: list[dict[str, t.Any]] = []  # the other forward base chains, with their rules
        # firewall-cmd installed: firewalld's own tables get no rule of ours (its policy accepts the peers' GRE).
        self.firewalld = host.which("firewall-cmd") is not None

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
        ours_table = tables.pop(("inet", TABLE), None)
        self.table = None
        if ours_table is not None:
            self.table = {
                "chains": ours_table["chains"],
                "sets": {
                    name: {"type": s.get("type"), "elem": _nft.elements(s)} for name, s in ours_table["sets"].items()
                },
                "rules": [rule for chain in ours_table["chains"].values() for rule in chain["rules"]],
            }
        base = [
            dict(chain, closed=closed(table, self.firewalld))
            for (family, _name), table in tables.items()
            if family in NFT_FAMILY_VERSIONS
            for chain in table["chains"].values()
            if chain.get("type") == "filter"
        ]
        self.chains = [chain for chain in base if chain.get("hook") == "input"]
        self.forward_chains = [chain for chain in base if chain.get("hook") == "forward"]

    @staticmethod
    def _label(chain: dict[str, t.Any]) -> str:
        return f"{chain['family']} {_name(chain['table'])} {_name(chain['name'])}"

    def filtering(self, versions: t.Iterable[int]) -> list[str]:
        """The input base chains (not this module's) with a drop policy or a rule of their own, seeing these versions."""
        return self._filtering(self.chains, versions)

    def filtering_forward(self, versions: t.Iterable[int]) -> list[str]:
        """The same for forwarded traffic: the forward base chains that filter."""
        return self._filtering(self.forward_chains, versions)

    def _filtering(self, chains: list[dict[str, t.Any]], versions: t.Iterable[int]) -> list[str]:
        return [
            f"{self.name}: {self._label(chain)}"
            for chain in chains
            if family_versions(chain["family"], versions) and self.filtering_chain(chain)
        ]

    def state(self) -> dict[str, t.Any]:
        """What of this module is in nftables (for the diff and the result)."""
        result: dict[str, t.Any] = {}
        if self.table is not None:
            result["table"] = f"inet {TABLE}"
            peers = {
                FAMILY_NAME[v]: sorted(self.table["sets"][SET_NAME[v]]["elem"], key=ipaddress.ip_address)
                for v in VERSIONS
                if SET_NAME[v] in self.table["sets"]
            }
            if peers or "input" in self.table["chains"]:
                result["peers"] = peers
            udp = self.udp_state()
            if udp:
                result["encap_peers"] = udp
            mss = [
                str(rule.get("comment"))[len(MSS_COMMENT) :]
                for rule in self.table["chains"].get(NFT_MSS_CHAIN, {}).get("rules", [])
                if str(rule.get("comment", "")).startswith(MSS_COMMENT)
            ]
            if mss:
                result["mss_clamp"] = mss
        accepts = [
            f"{self._label(chain)} ({user_rule_label(rule.get('comment'))})"
            for chain in self.chains
            for rule in chain["rules"]
            if user_rule_label(rule.get("comment")) is not None
        ]
        if accepts:
            result["accept_in"] = accepts
        forwards = [
            f"{self._label(chain)} ({' '.join(str(rule['comment'])[len(FORWARD_COMMENT) :].split()[:3])})"
            for chain in self.forward_chains
            for rule in chain["rules"]
            if str(rule.get("comment", "")).startswith(FORWARD_COMMENT)
        ]
        if forwards:
            result["accept_forward"] = forwards
        return result

    def udp_state(self) -> dict[str, list[str]]:
        """The peers of linuxnet_gre's UDP sets, by IP version name: ``ADDRESS udp/PORT``, by port and address."""
        found: dict[str, list[str]] = {}
        for version in VERSIONS:
            prefix = f"udp{version}_"
            for name in sorted(
                (n for n in (self.table or {}).get("sets", {}) if n.startswith(prefix) and n[len(prefix) :].isdigit()),
                key=lambda n: int(n[len(prefix) :]),
            ):
                port = name[len(prefix) :]
                addresses = sorted(self.table["sets"][name]["elem"], key=ipaddress.ip_address)  # type: ignore[index]
                found.setdefault(FAMILY_NAME[version], []).extend(f"{a} udp/{port}" for a in addresses)
        return found

    def counters(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for rule in (self.table or {}).get("rules", []):
            comment = rule.get("comment")
            for version in VERSIONS:
                prefix = f"{MANAGED_ALIAS} {FAMILY_NAME[version]} udp "
                if isinstance(comment, str) and comment.startswith(prefix) and comment.endswith((" peers", " others")):
                    key = "udp_accepted" if comment.endswith(" peers") else "udp_dropped"
                    entry = result.setdefault(FAMILY_NAME[version], {})
                    entry[key] = entry.get(key, 0) + (_nft.counter(rule) or 0)
                for what in ("peers", "others"):
                    if comment == f"{MANAGED_ALIAS} {FAMILY_NAME[version]} {what}":
                        key = "accepted" if what == "peers" else "dropped"
                        result.setdefault(FAMILY_NAME[version], {})[key] = _nft.counter(rule) or 0
            if str(comment).startswith(MSS_COMMENT):
                clamped = result.setdefault("mss_clamp", {"clamped": 0})
                clamped["clamped"] += _nft.counter(rule) or 0
        for chain in self.forward_chains:
            for rule in chain["rules"]:
                comment = str(rule.get("comment", ""))
                if comment.startswith(FORWARD_COMMENT):
                    family = comment[len(FORWARD_COMMENT) :].split()[0]
                    entry = result.setdefault(family, {})
                    entry["forwarded"] = entry.get("forwarded", 0) + (_nft.counter(rule) or 0)
        return result

    @staticmethod
    def filtering_chain(chain: dict[str, t.Any]) -> bool:
        """A drop policy, or a rule this module did not add."""
        return chain.get("policy") == "drop" or any(not ours(r.get("comment")) for r in chain["rules"])


class IptablesState:
    """iptables-legacy or iptables-nft with their ip6tables, read with iptables-save; _firewall.Iptables changes them."""

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
        """The tables of each IP version whose tools are installed (iptables-save loads no kernel module).

        ``loaded_only``, for iptables-legacy: a version whose kernel has neither legacy filter nor mangle
        table loaded reads as empty without running iptables-save, which would list nothing of ours.
        """
        for version in VERSIONS:
            if not self.installed[version]:
                continue
            if loaded_only and self.variant == "legacy" and not self.loaded(version):
                self.tables[version] = parse_save("")
                continue
            argv = [self.tools[version][1], "--counters"]
            rc, out, err = self.host.run(argv)
            if rc != 0:
                raise GreError(f"{' '.join(argv)} failed: {err.strip()}", command=argv, stderr=err)
            self.tables[version] = parse_save(out)

    def loaded(self, version: int) -> bool:
        """Whether the kernel has the legacy filter or mangle table of this version (iptables-legacy only)."""
        names = (self.host.read_text(LEGACY_TABLES[version]) or "").split()
        return "filter" in names or "mangle" in names

    def filtering(self, versions: t.Iterable[int]) -> list[str]:
        return self._filtering("INPUT", (CHAIN, UDP_CHAIN), versions)

    def filtering_forward(self, versions: t.Iterable[int]) -> list[str]:
        return self._filtering("FORWARD", (FWD_CHAIN,), versions)

    def _filtering(self, hook: str, own: tuple[str, ...], versions: t.Iterable[int]) -> list[str]:
        found = []
        for version in versions:
            table = self.tables.get(version)
            if table and (policy(table, "filter", hook) == "DROP" or others(table, "filter", hook, *own)):
                found.append(f"{self.name}: {hook} ({FAMILY_NAME[version]})")
        return found

    def state(self) -> dict[str, t.Any]:
        result = {}
        for version, table in self.tables.items():
            entry: dict[str, t.Any] = {}
            chain = rules(table, "filter", CHAIN)
            jumps = count_jumps(table, "filter", "INPUT", CHAIN)
            if chain is not None or jumps:
                entry["chain"] = chain is not None
                entry["jumps"] = jumps
                entry["peers"] = [rule[3].split("/")[0] for rule in chain or [] if rule[2:3] == ["-s"]]
            udp = rules(table, "filter", UDP_CHAIN)
            jumps = count_jumps(table, "filter", "INPUT", UDP_CHAIN)
            if udp is not None or jumps:
                entry["encap_peers"] = {
                    "chain": udp is not None,
                    "jumps": jumps,
                    "peers": [udp_peer(rule) for rule in udp or [] if rule[2:3] == ["-s"]],
                }
            mss = rules(table, "mangle", MSS_CHAIN)
            jumps = count_jumps(table, "mangle", "FORWARD", MSS_CHAIN)
            if mss is not None or jumps:
                entry["mss_clamp"] = {"jumps": jumps, "interfaces": [rule[3] for rule in mss or [] if len(rule) > 3]}
            chains = {name: rules(table, "filter", name) for name in (FWD_CHAIN, TO_CHAIN, FROM_CHAIN)}
            jumps = count_jumps(table, "filter", "FORWARD", FWD_CHAIN)
            if any(found is not None for found in chains.values()) or jumps:
                entry["forward"] = {
                    "jumps": jumps,
                    "tunnels": forward_state(chains[FWD_CHAIN] or []),
                    "networks": [rule[3] for rule in chains[TO_CHAIN] or [] if len(rule) > 3],
                }
            if entry:
                result[FAMILY_NAME[version]] = entry
        return result

    def counters(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for version, table in self.tables.items():
            chain = table["tables"].get("filter", {}).get(CHAIN)
            if chain is not None:
                pairs = list(zip(chain["packets"], chain["rules"]))
                dropped = sum(p for p, rule in pairs if rule == ["-A", CHAIN, "-j", "DROP"])
                accepted = sum(p for p, rule in pairs if rule[-1] == "ACCEPT")
                result[FAMILY_NAME[version]] = {"accepted": accepted, "dropped": dropped}
            udp = table["tables"].get("filter", {}).get(UDP_CHAIN)
            if udp is not None:
                pairs = list(zip(udp["packets"], udp["rules"]))
                entry = result.setdefault(FAMILY_NAME[version], {})
                entry["udp_accepted"] = sum(p for p, rule in pairs if rule[-1] == "ACCEPT")
                entry["udp_dropped"] = sum(p for p, rule in pairs if rule == ["-A", UDP_CHAIN, "-j", "DROP"])
            forwarded = [table["tables"].get("filter", {}).get(name) for name in (TO_CHAIN, FROM_CHAIN)]
            if any(found is not None for found in forwarded):
                entry = result.setdefault(FAMILY_NAME[version], {})
                entry["forwarded"] = sum(sum(found["packets"]) for found in forwarded if found is not None)
            mss = table["tables"].get("mangle", {}).get(MSS_CHAIN)
            if mss is not None:
                clamped = result.setdefault("mss_clamp", {"clamped": 0})
                clamped["clamped"] += sum(mss["packets"])
        return result


def parse_save(text: str) -> dict[str, t.Any]:
    """iptables-save --counters' tables: ``tables``: {table: {chain: {policy, rules (word lists), packets}}}.

    A chain is there when declared (``:NAME POLICY [p:b]``) or when a rule names it.
    """
    result: dict[str, t.Any] = {"tables": {}}
    chains: dict[str, dict[str, t.Any]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            chains = result["tables"].setdefault(line[1:], {})
            continue
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith(":"):
            name, chain_policy = line[1:].split()[:2]
            chains.setdefault(name, {"policy": chain_policy, "rules": [], "packets": []})
            continue
        packets = 0
        counted = re.match(r"^\[(\d+):(\d+)\]\s+(.*)$", line)
        if counted:
            packets, line = int(counted.group(1)), counted.group(3)
        words = shlex.split(line)
        if words[:1] == ["-A"] and len(words) > 1:
            chain = chains.setdefault(words[1], {"policy": "-", "rules": [], "packets": []})
            chain["rules"].append(words)
            chain["packets"].append(packets)
    return result


def policy(table: dict[str, t.Any], name: str, chain: str) -> str:
    return str(table["tables"].get(name, {}).get(chain, {}).get("policy", "ACCEPT"))


def rules(table: dict[str, t.Any], name: str, chain: str) -> list[list[str]] | None:
    """A chain's rules as word lists; None without the chain."""
    found = table["tables"].get(name, {}).get(chain)
    return None if found is None else list(found["rules"])


def udp_peer(rule: list[str]) -> str:
    """``ADDRESS udp/PORT`` of an ACCEPT of LINUXNET-GRE-UDP (``-A CHAIN -s ADDRESS/LEN -p udp -m udp --dport PORT``)."""
    port = rule[rule.index("--dport") + 1] if "--dport" in rule else "?"
    return f"{rule[3].split('/')[0]} udp/{port}"


def is_jump(words: list[str], target: str) -> bool:
    """Whether a rule (after ``-A CHAIN``) is this module's jump to ``target``."""
    if target == CHAIN:
        return len(words) == 4 and words[0] == "-p" and words[1] in GRE_NAMES and words[2:] == ["-j", CHAIN]
    if target == UDP_CHAIN:
        return (
            len(words) == 8
            and words[0] == "-p"
            and words[1] in UDP_NAMES
            and words[2:5] == ["-m", "udp", "--dport"]
            and words[6:] == ["-j", UDP_CHAIN]
        )
    return words == ["-j", target]


def count_jumps(table: dict[str, t.Any], name: str, hook: str, target: str) -> int:
    return sum(1 for rule in rules(table, name, hook) or [] if is_jump(rule[2:], target))


def others(table: dict[str, t.Any], name: str, hook: str, *targets: str) -> list[list[str]]:
    """The rules of a built-in chain other than this module's jumps (to any of ``targets``)."""
    return [rule for rule in rules(table, name, hook) or [] if not any(is_jump(rule[2:], target) for target in targets)]


def forward_state(fwd: list[list[str]]) -> dict[str, list[str]]:
    """Per tunnel, its networks, from LINUXNET-GRE-FWD's rules (``-s NET -i TUNNEL`` ones)."""
    result: dict[str, list[str]] = {}
    for rule in fwd:
        if len(rule) >= 6 and rule[2] == "-s" and rule[4] == "-i":
            result.setdefault(rule[5], []).append(rule[3])
    return result


def read_frameworks(
    host: Host,
    look_only: bool = False,
    nftables: type[NftablesState] = NftablesState,
    iptables: type[IptablesState] = IptablesState,
) -> tuple[t.Any, list[t.Any]]:
    """nftables (probed) and the frameworks that work on the host, each read, as ``nftables`` and ``iptables``
    (gre_firewall's own classes, which also change them).

    ``look_only``, for a verdict that changes nothing: legacy iptables is read only where its filter
    or mangle table is loaded (the common case of a host filtering with nftables runs no iptables-legacy-save).
    """
    nft = nftables(host)
    frameworks: list[t.Any] = []
    if nft.probe():
        nft.read()
        frameworks.append(nft)
    candidates = [iptables(host, "legacy")]
    if not nft.installed:
        # With nft installed, iptables-nft's tables are nftables chains, handled as such.
        candidates.append(iptables(host, "nft"))
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
        "managed": any(f.state() for f in frameworks) or host.exists(SETTINGS) or host.exists(_firewalld.POLICY_FILE),
        "backends": usable_backends(nft, frameworks),
        "nftables": nft.probe_error or "works",
    }


def usable_backends(nft: NftablesState, frameworks: list[t.Any]) -> list[str]:
    """The values of the backend option that converge can act on here (nftables where nft works, iptables where installed)."""
    return (["nftables"] if nft.works else []) + (
        ["iptables"] if any(isinstance(f, IptablesState) for f in frameworks) else []
    )
