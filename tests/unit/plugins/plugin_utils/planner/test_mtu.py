# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planner's tunnel MTUs (plugin_utils/_planner/mtu.py): the GRE overheads as Linux computes them, and every rule.

The overheads were measured on a lab guest (user-mode-linux, Debian's kernel 6.1.176, iproute2
6.1.0) with the script ``MEASURE`` below; ``CAPTURE`` is its output, verbatim. To measure again:

    tests/lab/lab --lab-dir /tmp/mtu-lab up tests/lab/topologies/solo.yml
    sed -n '/^#!.bin.sh$/,/^ip link set eth1 mtu 1500$/p' tests/unit/plugins/plugin_utils/planner/test_mtu.py \\
        | tests/lab/lab --lab-dir /tmp/mtu-lab ssh solo -- sh -s
    tests/lab/lab --lab-dir /tmp/mtu-lab down
"""

from __future__ import annotations

import re
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import KEY_OVERHEAD, OVERHEAD, overhead
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh, plan_host, plan_mesh

from .inventories import LINKED, from_facts, pair_with_mtus
from .inventories import plan as whole_plan
from .inventories import problem as refused

MEASURE = r"""
#!/bin/sh
# Runs ON a lab guest (tests/lab/topologies/solo.yml): what MTU Linux gives each kind of GRE device
# it creates without one, over an underlay NIC of MTU 1500 and of 1400. IPv4 kinds: local is the
# guest's underlay address, remote an on-link address of its subnet (route: 203.0.113.0/24 dev
# eth1). IPv6 kinds: eth1's own link-local address to fe80::2 bound to eth1 (route: fe80::/64 dev
# eth1), so no address is added anywhere. The devices stay down: no packet is sent.
set -eu
echo "kernel $(uname -r); $(ip -V)"
modprobe ip_gre; modprobe ip6_gre
ll=$(ip -6 -o addr show dev eth1 scope link | awk '{print $4}' | cut -d/ -f1)
for underlay in 1500 1400; do
    ip link set eth1 mtu "$underlay"
    for m in gre gretap ip6gre ip6gretap; do
        case $m in
        ip6*) ep="local $ll remote fe80::2 dev eth1"; extra="encaplimit none" ;;
        *) ep="local 203.0.113.1 remote 203.0.113.77"; extra="" ;;
        esac
        for k in "" "key 5" $( [ -n "$extra" ] && echo x ) ; do
            opts=$k
            [ "$k" = x ] && opts=$extra
            # shellcheck disable=SC2086
            ip link add mx type $m $ep $opts
            mtu=$(cat /sys/class/net/mx/mtu)
            ip link del mx
            echo "underlay $underlay $m [${opts:-no key}] mtu $mtu overhead $((underlay - mtu))"
        done
    done
done
ip link set eth1 mtu 1500
"""

CAPTURE = """\
kernel 6.1.176; ip utility, iproute2-6.1.0, libbpf 1.1.2
underlay 1500 gre [no key] mtu 1476 overhead 24
underlay 1500 gre [key 5] mtu 1472 overhead 28
underlay 1500 gretap [no key] mtu 1462 overhead 38
underlay 1500 gretap [key 5] mtu 1458 overhead 42
underlay 1500 ip6gre [no key] mtu 1448 overhead 52
underlay 1500 ip6gre [key 5] mtu 1444 overhead 56
underlay 1500 ip6gre [encaplimit none] mtu 1456 overhead 44
underlay 1500 ip6gretap [no key] mtu 1434 overhead 66
underlay 1500 ip6gretap [key 5] mtu 1430 overhead 70
underlay 1500 ip6gretap [encaplimit none] mtu 1442 overhead 58
underlay 1400 gre [no key] mtu 1376 overhead 24
underlay 1400 gre [key 5] mtu 1372 overhead 28
underlay 1400 gretap [no key] mtu 1362 overhead 38
underlay 1400 gretap [key 5] mtu 1358 overhead 42
underlay 1400 ip6gre [no key] mtu 1348 overhead 52
underlay 1400 ip6gre [key 5] mtu 1344 overhead 56
underlay 1400 ip6gre [encaplimit none] mtu 1356 overhead 44
underlay 1400 ip6gretap [no key] mtu 1334 overhead 66
underlay 1400 ip6gretap [key 5] mtu 1330 overhead 70
underlay 1400 ip6gretap [encaplimit none] mtu 1342 overhead 58
"""
LINE = re.compile(r"^underlay (\d+) (\S+) \[(no key|key 5|encaplimit none)\] mtu (\d+) overhead (\d+)$")


def captured() -> list[tuple[int, str, str, int]]:
    rows = []
    for line in CAPTURE.splitlines()[1:]:
        match = LINE.match(line)
        assert match, line
        underlay, mode, variant, mtu, cost = match.groups()
        assert int(underlay) - int(mtu) == int(cost)
        rows.append((int(underlay), mode, variant, int(mtu)))
    return rows


def test_the_overheads_are_what_the_kernel_computes() -> None:
    """For each mode, with and without a key, over two underlay MTUs (so the kernel followed the route)."""
    rows = captured()
    checked = {(mode, variant) for _underlay, mode, variant, _mtu in rows}
    assert checked == {(mode, variant) for mode in OVERHEAD for variant in ("no key", "key 5")} | {
        ("ip6gre", "encaplimit none"),
        ("ip6gretap", "encaplimit none"),
    }
    for underlay, mode, variant, mtu in rows:
        if variant == "encaplimit none":
            # The 8 bytes of the IPv6 modes are the encapsulation limit option, which gre_tunnel keeps (the default).
            assert underlay - mtu == OVERHEAD[mode] - 8
        else:
            assert underlay - mtu == overhead(mode, keyed=variant == "key 5")
    assert KEY_OVERHEAD == 4


# Hosts without NAT, their underlay MTU from facts (as the role gathers them) unless said otherwise.
PAIR6 = {"hosta": from_facts("2001:db8:1::1", 1500), "hostb": from_facts("2001:db8:2::1", 1480)}


def plan(hostvars: dict[str, dict[str, t.Any]], **settings: t.Any) -> dict[str, t.Any]:
    """The plan of the link hosta <-> hostb, unless ``settings`` give other links."""
    return whole_plan(hostvars, **{**LINKED, **settings})


def mtus(hostvars: dict[str, dict[str, t.Any]], **settings: t.Any) -> tuple[t.Any, t.Any]:
    """The MTU of the tunnel on each end of the link hosta <-> hostb (None: left to the kernel)."""
    result = plan(hostvars, **settings)["hosts"]
    return (result["hosta"]["tunnels"][0].get("mtu"), result["hostb"]["tunnels"][0].get("mtu"))


def problem(hostvars: dict[str, dict[str, t.Any]], **settings: t.Any) -> str:
    return refused(hostvars, **{**LINKED, **settings})


@pytest.mark.parametrize(
    ("hostvars", "settings", "mtu"),
    [
        pytest.param(pair_with_mtus(), {}, 1476, id="gre"),
        pytest.param(pair_with_mtus(), {"key": 7}, 1472, id="gre with a key"),
        pytest.param(pair_with_mtus(), {"mode": "gretap"}, 1462, id="gretap"),
        pytest.param(pair_with_mtus(), {"mode": "gretap", "key": "0.0.0.7"}, 1458, id="gretap with a key"),
        pytest.param(PAIR6, {"mode": "ip6gre"}, 1428, id="ip6gre"),
        pytest.param(PAIR6, {"mode": "ip6gre", "key": 7}, 1424, id="ip6gre with a key"),
        pytest.param(PAIR6, {"mode": "ip6gretap"}, 1414, id="ip6gretap"),
        pytest.param(PAIR6, {"mode": "ip6gretap", "key": 7}, 1410, id="ip6gretap with a key"),
        pytest.param(pair_with_mtus(1500, 1400), {}, 1376, id="the smaller end: the router's far side"),
        pytest.param(pair_with_mtus(1400, 9000), {}, 1376, id="the smaller end, either one"),
        pytest.param(pair_with_mtus(9001, 9001), {"mode": "gretap"}, 8963, id="jumbo frames"),
        pytest.param(pair_with_mtus(65535, 65535), {"key": 7}, 65507, id="at most what the kernel takes"),
        pytest.param(pair_with_mtus("1500", "1400"), {}, 1376, id="MTUs as strings"),
    ],
)
def test_the_mtu_is_the_smaller_underlay_mtu_less_the_overhead(
    hostvars: dict[str, dict[str, t.Any]], settings: dict[str, t.Any], mtu: int
) -> None:
    assert mtus(hostvars, **settings) == (mtu, mtu)


@pytest.mark.parametrize(
    "hostvars",
    [
        pytest.param(pair_with_mtus(1500, None), id="no MTU in one end's facts"),
        pytest.param(pair_with_mtus(None, None), id="none in either"),
        pytest.param(
            {
                "hosta": from_facts("203.0.113.1", 1500),
                "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1"},
            },
            id="no facts",
        ),
        pytest.param(pair_with_mtus(1500, True), id="not a number"),
        pytest.param(pair_with_mtus(1500, 20), id="below 68"),
    ],
)
def test_an_unknown_underlay_mtu_leaves_the_mtu_to_the_kernel(hostvars: dict[str, dict[str, t.Any]]) -> None:
    result = plan(hostvars)
    assert mtus(hostvars) == (None, None)
    assert "mtu" not in " ".join(result["hosts"]["hosta"]["tunnels"][0])


def test_only_the_family_of_the_link_counts() -> None:
    """gre takes the IPv4 default interface's MTU; the IPv6 one does not matter to it, nor the other way round."""
    hostvars = pair_with_mtus()
    hostvars["hosta"]["ansible_facts"]["default_ipv6"] = {"address": "2001:db8:1::1", "mtu": 1280}
    assert mtus(hostvars) == (1476, 1476)
    hostvars6 = {name: dict(values) for name, values in PAIR6.items()}
    hostvars6["hosta"]["ansible_facts"] = {**PAIR6["hosta"]["ansible_facts"], "default_ipv4": {"mtu": 576}}
    assert mtus(hostvars6, mode="ip6gre") == (1428, 1428)


@pytest.mark.parametrize(
    ("variables", "mtu"),
    [
        pytest.param({"gre_mesh_underlay_mtu": 1420}, 1396, id="gre_mesh_underlay_mtu wins over facts"),
        pytest.param({"gre_mesh_underlay_mtu": "1420"}, 1396, id="gre_mesh_underlay_mtu as a string (INI)"),
        pytest.param({"gre_mesh_underlay_mtu": ""}, 1476, id="an empty gre_mesh_underlay_mtu is unset"),
        pytest.param(
            {"ansible_facts": {}, "ansible_default_ipv4": {"address": "198.51.100.1", "mtu": 1450}},
            1426,
            id="injected fact",
        ),
    ],
)
def test_underlay_mtu_sources(variables: dict[str, t.Any], mtu: int) -> None:
    hostvars = pair_with_mtus()
    hostvars["hostb"].update(variables)
    assert mtus(hostvars) == (mtu, mtu)


def test_gre_mesh_underlay_mtu_without_facts() -> None:
    hostvars = {
        "hosta": {"ansible_host": "203.0.113.1", "gre_mesh_local": "203.0.113.1", "gre_mesh_underlay_mtu": 1500},
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_local": "198.51.100.1", "gre_mesh_underlay_mtu": 1460},
    }
    assert mtus(hostvars) == (1436, 1436)


@pytest.mark.parametrize(
    ("settings", "mtu"),
    [
        pytest.param({"mtu": 1300}, 1300, id="gre_mesh_mtu"),
        pytest.param({"links": [{"hosts": ["hosta", "hostb"], "mtu": 1350}]}, 1350, id="the link's own"),
        pytest.param({"links": [{"hosts": ["hosta", "hostb"], "mtu": 1350}], "mtu": 1300}, 1350, id="the link's first"),
        # Not above what the underlay takes: test_inputs.py, test_a_given_mtu_must_fit_the_known_underlay.
    ],
)
def test_an_explicit_mtu_wins(settings: dict[str, t.Any], mtu: int) -> None:
    assert mtus(pair_with_mtus(1500, 1400), **settings) == (mtu, mtu)


def test_an_automatic_key_counts_too() -> None:
    """Two hosts behind one NAT address: their links to the hub get keys, so 4 bytes more overhead."""
    hostvars = {
        "hub": from_facts("203.0.113.1", 1500, gre_mesh_id=0),
        "site2": from_facts("198.51.100.1", 1500, gre_mesh_local="192.168.1.2"),
        "site3": from_facts("198.51.100.1", 1500, gre_mesh_local="192.168.1.3"),
        "site4": from_facts("198.51.100.4", 1500),
    }
    links = [["hub", "site2"], ["hub", "site3"], ["hub", "site4"]]
    result = plan(hostvars, links=links)["hosts"]
    assert {tunnel["name"]: (tunnel.get("key"), tunnel["mtu"]) for tunnel in result["hub"]["tunnels"]} == {
        "gre-site2": ("2", 1472),
        "gre-site3": ("4", 1472),
        "gre-site4": (None, 1476),
    }
    check = check_mesh(hostvars, {"all": sorted(hostvars)}, links=links)
    for name in ("hub", "site2", "site3", "site4"):
        assert plan_host(hostvars, {"all": sorted(hostvars)}, name, check, links=links) == result[name]


def test_external_peers_give_their_mtu() -> None:
    hostvars = {"hosta": from_facts("203.0.113.1", 1500)}
    external = {"name": "dc", "address": "198.51.100.250", "id": 9}
    links = [["hosta", "dc"]]
    assert "mtu" not in plan(hostvars, links=links, external_peers=[external])["hosts"]["hosta"]["tunnels"][0]
    result = plan(hostvars, links=links, external_peers=[{**external, "mtu": 1400}])
    assert result["hosts"]["hosta"]["tunnels"][0]["mtu"] == 1376
    assert result["external_peers"]["dc"]["tunnels"][0]["mtu"] == 1376
    assert result["external_peers"]["dc"]["commands"][0].startswith("ip link add name gre-hosta mtu 1376 type gre ")


def test_the_check_carries_each_nodes_underlay_mtus_for_gre_plan() -> None:
    hostvars = pair_with_mtus(1500, 1400)
    hostvars["hostc"] = from_facts("2001:db8:3::1", 1280)
    hostvars["hostd"] = from_facts("2001:db8:4::1")
    links = [*LINKED["links"], {"hosts": ["hostc", "hostd"], "mode": "ip6gre"}]
    groups = {"all": sorted(hostvars)}
    check = check_mesh(hostvars, groups, links=links)
    assert check["nodes"] == {
        "hosta": [0, "203.0.113.1", "gre-hosta", False, 1500, None],
        "hostb": [1, "198.51.100.1", "gre-hostb", False, 1400, None],
        "hostc": [2, "2001:db8:3::1", "gre-hostc", False, None, 1280],
        "hostd": [3, "2001:db8:4::1", "gre-hostd", False, None, None],
    }
    whole = plan_mesh(hostvars, groups, links=links)["hosts"]
    for name in hostvars:
        assert plan_host(hostvars, groups, name, check, links=links) == whole[name]


def test_gre_plan_takes_the_mtus_from_the_check_not_from_facts_it_reads() -> None:
    """Both ends of a link agree even when one host's facts changed since the check: the check decides."""
    hostvars = pair_with_mtus(1500, 1400)
    groups = {"all": sorted(hostvars)}
    check = check_mesh(hostvars, groups, **LINKED)
    hostvars["hosta"]["ansible_facts"]["default_ipv4"]["mtu"] = 1300
    assert plan_host(hostvars, groups, "hosta", check, **LINKED)["tunnels"][0]["mtu"] == 1376


def test_a_check_without_underlay_mtus_leaves_them_to_the_kernel() -> None:
    """A node table of four fields (a check from before MTUs were planned): the MTUs are unknown."""
    hostvars = pair_with_mtus(1500, 1400)
    groups = {"all": sorted(hostvars)}
    check = check_mesh(hostvars, groups, **LINKED)
    old = {**check, "nodes": {name: entry[:4] for name, entry in check["nodes"].items()}}
    assert "mtu" not in plan_host(hostvars, groups, "hosta", old, **LINKED)["tunnels"][0]


ERRORS = [
    pytest.param(
        pair_with_mtus(1500, 1400, gre_mesh_underlay_mtu="jumbo"),
        {},
        "host hostb: gre_mesh_underlay_mtu: 'jumbo' is not a number from 68 to 65535",
        id="gre_mesh_underlay_mtu not a number",
    ),
    pytest.param(
        pair_with_mtus(1500, 1400, gre_mesh_underlay_mtu=65536),
        {},
        "host hostb: gre_mesh_underlay_mtu: 65536 is not a number from 68 to 65535",
        id="gre_mesh_underlay_mtu too large",
    ),
    pytest.param(
        {"hosta": from_facts("203.0.113.1", 1500)},
        {"links": [["hosta", "dc"]], "external_peers": [{"name": "dc", "address": "198.51.100.250", "mtu": "big"}]},
        "gre_mesh_external_peers[0].mtu: 'big' is not a number from 68 to 65535",
        id="external peer mtu",
    ),
    pytest.param(
        pair_with_mtus(1500, 1300),
        {"pool6": "fd00::/64"},
        "link hosta <-> hostb (gre_mesh_links[0]): the tunnel MTU from the underlay MTUs (host hosta: 1500, "
        "ansible_default_ipv4.mtu; host hostb: 1300, ansible_default_ipv4.mtu) less 24 for gre: 1276 is below 1280, "
        "the minimum for IPv6 addresses such as fd00::/127; raise the underlay MTU, or give the link an mtu of its "
        "own (gre_mesh_links)",
        id="too small for IPv6 inside",
    ),
    pytest.param(
        {
            "hosta": from_facts("2001:db8:1::1", 1500),
            "hostb": from_facts("2001:db8:2::1", 1500, gre_mesh_underlay_mtu=1330),
        },
        {"mode": "ip6gretap", "key": 1, "pool": "", "pool6": "fd00::/64"},
        "link hosta <-> hostb (gre_mesh_links[0]): the tunnel MTU from the underlay MTUs (host hosta: 1500, "
        "ansible_default_ipv6.mtu; host hostb: 1330, gre_mesh_underlay_mtu) less 70 for ip6gretap with a key: 1260 is "
        "below 1280, the minimum for IPv6 addresses such as fd00::/127; raise the underlay MTU, or give the link an "
        "mtu of its own (gre_mesh_links)",
        id="too small for IPv6 inside, keyed ip6gretap",
    ),
    pytest.param(
        pair_with_mtus(90, 1500),
        {"mode": "gretap"},
        "link hosta <-> hostb (gre_mesh_links[0]): the tunnel MTU from the underlay MTUs (host hosta: 90, "
        "ansible_default_ipv4.mtu; host hostb: 1500, ansible_default_ipv4.mtu) less 38 for gretap: 52 is outside "
        "68..65535; raise the underlay MTU, or give the link an mtu of its own (gre_mesh_links)",
        id="below 68",
    ),
]


@pytest.mark.parametrize(("hostvars", "settings", "message"), ERRORS)
def test_errors_name_the_link_and_both_underlay_mtus(
    hostvars: dict[str, dict[str, t.Any]], settings: dict[str, t.Any], message: str
) -> None:
    assert problem(hostvars, **settings) == message


def test_an_explicit_mtu_keeps_its_own_error() -> None:
    assert problem(pair_with_mtus(1500, 1300), pool6="fd00::/64", mtu=1000) == (
        "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 1000 is below 1280, the minimum for IPv6 addresses "
        "such as fd00::/127"
    )
