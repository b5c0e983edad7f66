# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gre_persist filter: a host's tunnels as an ip -batch file or systemd-networkd settings."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.linuxnet.gre.plugins.filter import gre_persist as plugin
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import spec
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.changes import plan
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import wanted_tunnels

SEED = {
    "name": "gre-hostb",
    "mode": "gre",
    "local": "203.0.113.1",
    "remote": "198.51.100.1",
    "ttl": 255,
    "addresses": ["10.0.0.1/30"],
    "state": "present",
}
KEYED6 = {
    "name": "gre-hostc",
    "mode": "ip6gretap",
    "local": "2001:db8::1",
    "remote": "2001:db8::3",
    "ttl": 64,
    "key": "7",
    "mtu": 1400,
    "addresses": ["fd00::1/127", "10.0.0.5/30"],
    "state": "present",
}


def gre_persist(tunnels, format):
    return plugin.FilterModule().filters()["gre_persist"](tunnels, format)


def test_batch_is_what_gre_tunnel_runs_to_create_the_tunnels_on_a_bare_host():
    tunnels = [SEED, KEYED6]
    entries = [{**spec.defaults(), **tunnel} for tunnel in tunnels]
    module_lines = [line for _name, line in plan(wanted_tunnels({"tunnels": entries}), {}, purge=True).steps]
    assert gre_persist(tunnels, "batch") == module_lines


def test_batch_of_the_seed():
    assert gre_persist([SEED], "batch") == [
        "link add name gre-hostb type gre remote 198.51.100.1 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc",
        'link set dev gre-hostb alias "managed-by: linuxnet.gre" up',
        "address add 10.0.0.1/30 dev gre-hostb",
    ]


def test_the_module_defaults_apply_and_absent_tunnels_are_left_out():
    minimal = {"name": "gre-x", "remote": "198.51.100.9"}
    assert gre_persist([minimal, {"name": "gre-old", "state": "absent"}], "batch") == [
        "link add name gre-x type gre remote 198.51.100.9 ttl 255 tos 0x00 pmtudisc",
        'link set dev gre-x alias "managed-by: linuxnet.gre" up',
    ]
    assert gre_persist([], "batch") == []
    assert gre_persist([], "networkd") == []


def test_networkd_settings_of_the_seed():
    assert gre_persist([SEED], "networkd") == [
        {
            "name": "gre-hostb",
            "netdev": [["Name", "gre-hostb"], ["Kind", "gre"]],
            "tunnel": [
                ["Local", "203.0.113.1"],
                ["Remote", "198.51.100.1"],
                ["TTL", "255"],
                ["DiscoverPathMTU", "yes"],
                ["Independent", "yes"],
            ],
            "addresses": ["10.0.0.1/30"],
        }
    ]


def test_networkd_settings_with_key_mtu_and_ipv6_underlay():
    (result,) = gre_persist([KEYED6], "networkd")
    assert result["netdev"] == [["Name", "gre-hostc"], ["Kind", "ip6gretap"], ["MTUBytes", "1400"]]
    assert result["tunnel"] == [
        ["Local", "2001:db8::1"],
        ["Remote", "2001:db8::3"],
        ["TTL", "64"],
        ["Key", "7"],
        ["Independent", "yes"],
    ]
    assert result["addresses"] == ["10.0.0.5/30", "fd00::1/127"]


def test_networkd_settings_with_separate_keys_tos_and_no_pmtudisc():
    tunnel = {**SEED, "ikey": "1", "okey": "0.0.0.2", "tos": "0x10", "ttl": 0, "pmtudisc": False}
    (result,) = gre_persist([tunnel], "networkd")
    assert result["tunnel"] == [
        ["Local", "203.0.113.1"],
        ["Remote", "198.51.100.1"],
        ["TTL", "0"],
        ["TOS", "16"],
        ["InputKey", "1"],
        ["OutputKey", "2"],
        ["DiscoverPathMTU", "no"],
        ["Independent", "yes"],
    ]
    (inherit,) = gre_persist([{**SEED, "tos": "inherit"}], "networkd")
    assert ["TOS", "1"] in inherit["tunnel"]


@pytest.mark.parametrize(
    ("tunnel", "problem"),
    [
        ({**SEED, "dev": "eth0"}, "gre-hostb: dev: a tunnel bound to an underlay device"),
        ({**KEYED6, "tos": "inherit"}, "gre-hostc: tos: systemd-networkd has no traffic class setting"),
    ],
)
def test_what_networkd_cannot_express_is_an_error_naming_the_tunnel(tunnel, problem):
    with pytest.raises(AnsibleFilterError, match=problem):
        gre_persist([tunnel], "networkd")
    assert gre_persist([tunnel], "batch")


@pytest.mark.parametrize(
    ("tunnels", "fmt", "problem"),
    [
        ([SEED], "ifupdown", "format must be one of batch, networkd"),
        (SEED, "batch", "must be a list of tunnels"),
        ([{**SEED, "colour": "red"}], "batch", "tunnel gre-hostb: unknown option colour"),
        ([{"remote": "198.51.100.1"}], "batch", r"tunnel \?: no name"),
        ([{**SEED, "remote": "not-an-address"}], "batch", "gre-hostb"),
        ([SEED, SEED], "networkd", "gre-hostb"),
        # What gre_tunnel's argument spec refuses, the filter refuses: it checks with the same spec.
        ([{**SEED, "mode": "gre6"}], "batch", "tunnel gre-hostb: value of mode must be one of: gre, gretap, ip6gre"),
        (
            [{**SEED, "key": "1", "ikey": "2"}],
            "batch",
            r"tunnel gre-hostb: parameters are mutually exclusive: key\|ikey",
        ),
        ([{"name": "gre-x"}], "batch", "tunnel gre-x: state is present but all of the following are missing: remote"),
        ([{**SEED, "ttl": "many"}], "batch", "tunnel gre-hostb: argument 'ttl' is of type"),
    ],
)
def test_bad_input_is_an_error(tunnels, fmt, problem):
    with pytest.raises(AnsibleFilterError, match=problem):
        gre_persist(tunnels, fmt)


def test_the_filter_takes_the_options_of_gre_tunnel_s_tunnels_and_no_other():
    assert plugin.OPTION_NAMES == spec.OPTION_NAMES
    with pytest.raises(AnsibleFilterError, match="tunnel gre-hostb: unknown option purge"):
        gre_persist([{**SEED, "purge": True}], "batch")


def test_values_are_converted_as_the_module_converts_them():
    """Text from a template (ttl "64", mtu "1400", key 7) is what the module would make of it."""
    converted = gre_persist([{**SEED, "ttl": "64", "mtu": "1400", "key": 7, "pmtudisc": "yes"}], "batch")
    assert converted[0] == (
        "link add name gre-hostb mtu 1400 type gre remote 198.51.100.1 local 203.0.113.1 ttl 64 tos 0x00 pmtudisc "
        "ikey 7 okey 7"
    )


ROUTED = dict(SEED, routes=[{"prefix": "192.168.20.0/24", "via": "10.0.0.2"}, {"prefix": "fd20::/48", "metric": 5}])


def test_batch_ends_with_the_routes_as_the_module_adds_them():
    assert gre_persist([ROUTED], "batch")[-2:] == [
        "route add 192.168.20.0/24 via 10.0.0.2 dev gre-hostb proto 250 metric 0",
        "route add fd20::/48 dev gre-hostb proto 250 metric 5",
    ]


def test_networkd_gives_route_sections_with_the_protocol():
    (settings,) = gre_persist([ROUTED], "networkd")
    assert settings["routes"] == [
        [["Destination", "192.168.20.0/24"], ["Gateway", "10.0.0.2"], ["Metric", "0"], ["Protocol", "250"]],
        [["Destination", "fd20::/48"], ["Metric", "5"], ["Protocol", "250"]],
    ]


def test_routes_are_checked_as_the_module_checks_them():
    with pytest.raises(AnsibleFilterError, match="tunnel 'gre-hostb': routes: prefix '192.168.20.1' is not a network"):
        gre_persist([dict(SEED, routes=[{"prefix": "192.168.20.1"}])], "batch")
