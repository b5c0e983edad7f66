# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planner's part of GRE over IPsec (plugin_utils/_planner/ipsec.py, mtu.tunnel_mtu): which links, the IKE
connections of each host's plan, the smaller MTU, and the secret checked on both ends but never shown.

The MTU rule is checked against a model of the packet on the wire (ESP in transport mode with AES-GCM, in UDP);
molecule/ipsec shows it on real kernels: a full-size ping with DF through the tunnel leaves the router as an ESP
packet of exactly the underlay MTU.
"""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MAX_TUNNEL_MTU, OVERHEAD, overhead
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.mtu import tunnel_mtu
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh, plan_host

from .inventories import LINKED, from_facts, pair_with_mtus, plan, problem

SECRET = "correct horse battery staple"
# The outer IP header of each mode, IPv6's with its encapsulation limit option (ip6gre's default).
OUTER_HEADER = {"gre": 20, "gretap": 20, "ip6gre": 48, "ip6gretap": 48}


def wire_size(mtu: int, mode: str, keyed: bool) -> int:
    """The size of a full-size packet of the tunnel on the wire: outer header, UDP (NAT traversal), ESP header and
    IV, the GRE packet, padding to a multiple of 4 with the 2-byte trailer, the 16-byte ICV."""
    gre_packet = mtu + overhead(mode, keyed) - OUTER_HEADER[mode]
    padding = -(gre_packet + 2) % 4
    return OUTER_HEADER[mode] + 8 + 8 + 8 + gre_packet + padding + 2 + 16


@pytest.mark.parametrize("mode", sorted(OVERHEAD))
@pytest.mark.parametrize("keyed", [False, True])
def test_the_ipsec_mtu_is_the_largest_whose_packets_fit(mode: str, keyed: bool) -> None:
    for underlay in range(1400, 1501):
        mtu = tunnel_mtu(underlay, mode, keyed, ipsec=True)
        assert wire_size(mtu, mode, keyed) <= underlay
        assert all(wire_size(larger, mode, keyed) > underlay for larger in range(mtu + 1, mtu + 8))
    assert tunnel_mtu(1500, mode, keyed, ipsec=False) == 1500 - overhead(mode, keyed)


def ipsec_pair(**extra: t.Any) -> dict[str, dict[str, t.Any]]:
    return pair_with_mtus(1500, 1500, gre_mesh_ipsec_secret=SECRET) | {
        "hosta": from_facts("203.0.113.1", 1500, gre_mesh_ipsec_secret=SECRET, **extra)
    }


def test_a_link_with_ipsec_has_its_ike_connection_on_both_ends_and_a_smaller_mtu() -> None:
    result = plan(ipsec_pair(), ipsec=True, **LINKED)
    hosta, hostb = result["hosts"]["hosta"], result["hosts"]["hostb"]
    assert hosta["ipsec"] == [
        {
            "name": "gre-hostb",
            "connection": "linuxnet-gre-hostb",
            "peer": "hostb",
            "local": "203.0.113.1",
            "remote": "198.51.100.1",
            "ends": ["hosta", "hostb"],
            "initiate": True,
        }
    ]
    assert hostb["ipsec"] == [
        {
            "name": "gre-hosta",
            "connection": "linuxnet-gre-hosta",
            "peer": "hosta",
            "local": "198.51.100.1",
            "remote": "203.0.113.1",
            "ends": ["hosta", "hostb"],
            "initiate": False,
        }
    ]
    assert hosta["tunnels"][0]["mtu"] == hostb["tunnels"][0]["mtu"] == 1434
    # What gre_tunnel gets has no IPsec key: the module knows nothing of it.
    assert "ipsec" not in hosta["tunnels"][0]


def test_without_ipsec_a_plan_has_no_ipsec_list() -> None:
    result = plan(ipsec_pair(), **LINKED)
    assert "ipsec" not in result["hosts"]["hosta"]
    assert result["hosts"]["hosta"]["tunnels"][0]["mtu"] == 1476


@pytest.mark.parametrize(
    ("setting", "override", "expected"),
    [
        (False, True, True),
        (True, False, False),
        ("no", "yes", True),  # as an INI inventory gives them
        ("True", None, True),
    ],
)
def test_a_link_may_set_ipsec_of_its_own(setting: t.Any, override: t.Any, expected: bool) -> None:
    link: dict[str, t.Any] = {"hosts": ["hosta", "hostb"]}
    if override is not None:
        link["ipsec"] = override
    result = plan(ipsec_pair(), ipsec=setting, links=[link])
    assert ("ipsec" in result["hosts"]["hosta"]) is expected


def test_only_the_links_with_ipsec_get_ike_connections() -> None:
    hostvars = ipsec_pair() | {"hostc": from_facts("198.51.100.2", 1500)}
    links = [{"hosts": ["hosta", "hostb"], "ipsec": True}, ["hosta", "hostc"]]
    result = plan(hostvars, links=links)
    assert [entry["peer"] for entry in result["hosts"]["hosta"]["ipsec"]] == ["hostb"]
    assert "ipsec" not in result["hosts"]["hostc"]
    mtus = {tunnel["name"]: tunnel["mtu"] for tunnel in result["hosts"]["hosta"]["tunnels"]}
    assert mtus == {"gre-hostb": 1434, "gre-hostc": 1476}


def test_a_host_plans_its_ipsec_alone_as_the_whole_plan_does() -> None:
    hostvars = ipsec_pair()
    groups = {"all": sorted(hostvars)}
    check = check_mesh(hostvars, groups, ipsec=True, **LINKED)
    whole = plan(hostvars, groups, ipsec=True, **LINKED)["hosts"]
    for name in hostvars:
        assert plan_host(hostvars, groups, name, check, ipsec=True, **LINKED) == whole[name]


def test_a_given_mtu_must_leave_room_for_ipsec() -> None:
    message = problem(ipsec_pair(), ipsec=True, mtu=1476, **LINKED)
    assert message == (
        "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 1476 does not fit the underlay MTUs (host hosta: "
        "1500, ansible_default_ipv4.mtu; host hostb: 1500, ansible_default_ipv4.mtu): gre adds 24 bytes, 42 for IPsec "
        "(ESP 34, NAT traversal 8) and ESP's padding, so the largest tunnel MTU that fits is 1434; lower gre_mesh_mtu, "
        "or unset it to have the MTU follow the underlay"
    )


def test_ipsec_must_be_a_boolean() -> None:
    assert problem(ipsec_pair(), ipsec="maybe", **LINKED) == "gre_mesh_ipsec: 'maybe' is not a boolean (true or false)"
    links = [{"hosts": ["hosta", "hostb"], "ipsec": "sure"}]
    assert problem(ipsec_pair(), links=links) == "gre_mesh_links[0].ipsec: 'sure' is not a boolean (true or false)"


def test_ipsec_to_an_external_peer_is_refused() -> None:
    hostvars = {"hosta": from_facts("203.0.113.1", 1500, gre_mesh_ipsec_secret=SECRET)}
    message = problem(
        hostvars,
        ipsec=True,
        links=[["hosta", "router"]],
        external_peers=[{"name": "router", "address": "198.51.100.9"}],
    )
    assert message == (
        "link hosta <-> router (gre_mesh_links[0]): ipsec is on, but external peer router is outside the inventory, "
        "where the role cannot configure IKE and ESP; set ipsec: false on this link in gre_mesh_links (and protect it "
        "by other means), or make the peer an inventory host"
    )


@pytest.mark.parametrize(
    ("hostb_secret", "expected"),
    [
        (
            None,
            "host hostb: gre_mesh_ipsec_secret is not set, but its link hosta <-> hostb (gre_mesh_links[0]) has ipsec "
            "on: set it to one secret for every host (for example the output of `openssl rand -base64 32`, kept with "
            "`ansible-vault encrypt_string`)",
        ),
        (
            "  ",
            "host hostb: gre_mesh_ipsec_secret is not set, but its link hosta <-> hostb (gre_mesh_links[0]) has ipsec "
            "on: set it to one secret for every host (for example the output of `openssl rand -base64 32`, kept with "
            "`ansible-vault encrypt_string`)",
        ),
        (
            "hunter2",
            "host hostb: gre_mesh_ipsec_secret is 7 characters long; it must be at least 16 (for example the output of "
            "`openssl rand -base64 32`, kept with `ansible-vault encrypt_string`)",
        ),
        (
            12345678901234567890,
            "host hostb: gre_mesh_ipsec_secret must be a string, not int (for example the output of `openssl rand "
            "-base64 32`, kept with `ansible-vault encrypt_string`)",
        ),
        (
            "another secret, long enough",
            "link hosta <-> hostb (gre_mesh_links[0]): ipsec is on, but hosts hosta and hostb have different values of "
            "gre_mesh_ipsec_secret (not shown), so their keys for this link would differ and IKE would fail; give both "
            "the same secret (keep it in group_vars/all, or in the variables of a group that holds both)",
        ),
    ],
)
def test_the_secret_is_checked_on_both_ends_and_never_shown(hostb_secret: t.Any, expected: str) -> None:
    hostvars = ipsec_pair()
    if hostb_secret is None:
        del hostvars["hostb"]["gre_mesh_ipsec_secret"]
    else:
        hostvars["hostb"]["gre_mesh_ipsec_secret"] = hostb_secret
    message = problem(hostvars, ipsec=True, **LINKED)
    assert message == expected
    assert SECRET not in message
    if isinstance(hostb_secret, str) and hostb_secret.strip():
        assert hostb_secret not in message


def test_no_secret_is_needed_without_ipsec() -> None:
    hostvars = pair_with_mtus(1500, 1500)
    assert "ipsec" not in plan(hostvars, **LINKED)["hosts"]["hosta"]


def test_the_kernel_limit_still_caps_a_jumbo_underlay() -> None:
    hostvars = {
        "hosta": from_facts("203.0.113.1", 65535, gre_mesh_ipsec_secret=SECRET),
        "hostb": from_facts("198.51.100.1", 65535, gre_mesh_ipsec_secret=SECRET),
    }
    mtu = plan(hostvars, ipsec=True, **LINKED)["hosts"]["hosta"]["tunnels"][0]["mtu"]
    assert mtu == min(tunnel_mtu(65535, "gre", False, ipsec=True), MAX_TUNNEL_MTU["gre"][False])
