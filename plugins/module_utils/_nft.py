# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to the linuxnet.gre collection; runs on the managed hosts: nftables as ``nft --json list ruleset`` shows it.

The one reader of nftables, for gre_firewall (_firewall.py) and gre_probe (_probe/probe.py): one
``nft --json list ruleset``, walked into tables with their sets and chains, each chain with its
rules in order. A rule's expressions are read here too: its counter, the matches it makes, and the
rule in nft's own words for people (``ip saddr 203.0.113.3 ip protocol gre counter drop``, its
counter without numbers), as ``nft list ruleset`` prints it.

The command goes through _host.Host.run; tests replace it with answers captured from real kernels.
"""

from __future__ import annotations

import json
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError, Host

READ = ["nft", "--json", "list", "ruleset"]
# Meta keys nft writes without "meta" (``iifname "lo"``), and those whose values it quotes.
UNQUALIFIED_META = ("iif", "oif", "iifname", "oifname", "iifgroup", "oifgroup")
QUOTED_META = ("iifname", "oifname")
VERDICTS = ("accept", "drop", "continue", "return", "queue")

Tables = t.Dict[t.Tuple[str, str], t.Dict[str, t.Any]]


def read(host: Host) -> Tables:
    """Every table by (family, name): its object, with ``sets`` and ``chains`` by name, each chain with its ``rules``.

    Raises GreError when nft fails or prints no nftables JSON.
    """
    rc, out, err = host.run(READ)
    if rc != 0:
        raise GreError(f"{' '.join(READ)} failed: {err.strip() or f'exit code {rc}'}", command=READ, stderr=err)
    try:
        objects = [next(iter(o.items())) for o in json.loads(out)["nftables"]]
    except (ValueError, KeyError, TypeError, AttributeError, StopIteration) as exc:
        raise GreError(f"{' '.join(READ)} printed no nftables JSON: {exc}", stdout=out) from exc
    tables: Tables = {}
    for kind, obj in objects:
        if kind == "table":
            tables[(obj["family"], obj["name"])] = dict(obj, sets={}, chains={})
            continue
        table = tables.get((str(obj.get("family")), str(obj.get("table")))) if isinstance(obj, dict) else None
        if table is None:
            continue
        if kind == "set":
            table["sets"][obj["name"]] = obj
        elif kind == "chain":
            table["chains"][obj["name"]] = dict(obj, rules=[])
        elif kind == "rule" and obj.get("chain") in table["chains"]:
            table["chains"][obj["chain"]]["rules"].append(obj)
    return tables


def elements(nft_set: dict[str, t.Any]) -> list[str]:
    """A set's elements, as text."""
    found = nft_set.get("elem", [])
    return [str(e) for e in ([found] if isinstance(found, str) else found)]


def expressions(rule: dict[str, t.Any]) -> list[tuple[str, t.Any]]:
    """A rule's statements as (name, value): ``("match", {...})``, ``("counter", {...})``, ``("drop", None)``."""
    return [next(iter(e.items())) for e in rule.get("expr", []) if isinstance(e, dict) and e]


def counter(rule: dict[str, t.Any]) -> int | None:
    """The packets the rule's counter counted; None without a counter of its own (or with a named one)."""
    for name, value in expressions(rule):
        if name == "counter" and isinstance(value, dict):
            return int(value.get("packets", 0))
    return None


def uses_xt(rule: dict[str, t.Any]) -> bool:
    """Whether the rule holds an x_tables match or target: iptables-nft's, which nft itself cannot show."""
    return any(name == "xt" for name, _value in expressions(rule))


def matches(rule: dict[str, t.Any]) -> list[tuple[str, bool, list[str]]]:
    """Each match of the rule: what it looks at in nft's words (``ip saddr``), whether negated (``!=``), the values."""
    return [
        (operand(value["left"]), value.get("op") == "!=", values(value["right"]))
        for name, value in expressions(rule)
        if name == "match"
    ]


def text(rule: dict[str, t.Any]) -> str:
    """The rule in nft's words, as ``nft list ruleset`` prints it, its counter without numbers."""
    return " ".join(statement(name, value) for name, value in expressions(rule))


def statement(name: str, value: t.Any) -> str:
    if name == "match":
        left = operand(value["left"])
        op = value.get("op", "==")
        right = words(value["right"], quoted=left in QUOTED_META)
        return f"{left} {right}" if op in ("==", "in") else f"{left} {op} {right}"
    if name == "counter":
        return "counter" if isinstance(value, dict) else f"counter name {words(value)}"
    if name in ("jump", "goto"):
        return f"{name} {value['target']}"
    if name == "reject":
        if isinstance(value, dict) and value.get("expr"):
            return f"reject with {value.get('type', 'icmpx')} {value['expr']}"
        return "reject"
    if name in VERDICTS and value is None:
        return name
    return f"{name} {json.dumps(value, sort_keys=True)}"


def operand(left: t.Any) -> str:
    """The left side of a match: ``ip saddr``, ``meta l4proto``, ``iifname``, ``ct state``."""
    if isinstance(left, dict) and len(left) == 1:
        name, value = next(iter(left.items()))
        if name == "payload" and "protocol" in value:
            return f"{value['protocol']} {value['field']}"
        if name == "meta":
            return value["key"] if value["key"] in UNQUALIFIED_META else f"meta {value['key']}"
        if name == "ct":
            return f"ct {value['key']}"
    return json.dumps(left, sort_keys=True)


def values(right: t.Any) -> list[str]:
    """The values a match compares with: a set's elements, one by one; else the one value."""
    if isinstance(right, dict) and "set" in right:
        found = right["set"]
        return [words(e) for e in (found if isinstance(found, list) else [found])]
    return [words(right)]


def words(value: t.Any, quoted: bool = False) -> str:
    """A value in nft's words: ``gre``, ``203.0.113.0/24``, ``{ 198.51.100.4, 198.51.100.5 }``, ``@peers``."""
    if isinstance(value, str):
        return json.dumps(value) if quoted else value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return ",".join(words(v) for v in value)
    if isinstance(value, dict) and len(value) == 1:
        name, inner = next(iter(value.items()))
        if name == "set":
            return "{ " + ", ".join(values(value)) + " }"
        if name == "prefix":
            return f"{words(inner['addr'])}/{inner['len']}"
        if name == "range":
            return f"{words(inner[0])}-{words(inner[1])}"
    return json.dumps(value, sort_keys=True)
