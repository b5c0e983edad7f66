# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planner's part of GRE in UDP (plugin_utils/_planner/encap.py, mtu.tunnel_mtu): which links, the ``encap``
option of their tunnels, the peers each host's firewall lets in on which UDP port, the smaller MTU, and the
refusals (a bad value, IPsec on the same link, two kinds on one port).

The MTU rule is checked against the kernel's own figures: ``KERNEL`` is ``ip -details -json link show`` of two
tunnels made with ``encap`` on Debian's 6.1 cloud kernel (the lab image's, booted under QEMU: the lab's UML kernel
has no FOU tunnels), verbatim from the wip/issue-18 branch's notes/issue-18-fou-qemu-capture.txt, created without
an MTU over a 1500-byte underlay.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import (
    ENCAP_MODES,
    ENCAP_OVERHEAD,
    KEY_OVERHEAD,
    MAX_TUNNEL_MTU,
    OVERHEAD,
    overhead,
)
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.mtu import tunnel_mtu
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh, plan_host

from .inventories import LINKED, from_facts, pair_with_mtus, plain, plan, problem
from .test_agreement import GROUPS, HUB_SPOKE, inventory
from .test_agreement import problem as disagreement

KERNEL = [
    '[{"ifindex":5,"link":null,"ifname":"gx","flags":["POINTOPOINT","NOARP"],"mtu":1468,"qdisc":"noop","operstate":'
    '"DOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"gre","address":"127.0.0.1",'
    '"link_pointtopoint":true,"broadcast":"127.0.0.2","promiscuity":0,"allmulti":0,"min_mtu":0,"max_mtu":0,'
    '"linkinfo":{"info_kind":"gre","info_data":{"remote":"127.0.0.2","local":"127.0.0.1","ttl":0,"pmtudisc":true,'
    '"encap":{"type":"fou","sport":0,"dport":5555,"csum":false,"csum6":false,"remcsum":false}}},'
    '"inet6_addr_gen_mode":"eui64","num_tx_queues":1,"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,'
    '"tso_max_size":65536,"tso_max_segs":65535,"gro_max_size":65536}]',
    '[{"ifindex":6,"link":null,"ifname":"gy","flags":["BROADCAST","MULTICAST"],"mtu":1450,"qdisc":"noop",'
    '"operstate":"DOWN","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether","address":'
    '"d2:df:29:97:5c:e6","broadcast":"ff:ff:ff:ff:ff:ff","promiscuity":0,"allmulti":0,"min_mtu":68,"max_mtu":0,'
    '"linkinfo":{"info_kind":"gretap","info_data":{"remote":"127.0.0.3","local":"127.0.0.1","ttl":0,"pmtudisc":true,'
    '"encap":{"type":"gue","sport":4000,"dport":5556,"csum":true,"csum6":false,"remcsum":false}}},'
    '"inet6_addr_gen_mode":"eui64","num_tx_queues":1,"num_rx_queues":1,"gso_max_size":65536,"gso_max_segs":65535,'
    '"tso_max_size":65536,"tso_max_segs":65535,"gro_max_size":65536}]',
]
# IPv6 underlay addresses for the IPv6 modes.
PAIR6 = {"hosta": from_facts("2001:db8:1::1", 1500), "hostb": from_facts("2001:db8:2::1", 1500)}


def test_the_encap_overheads_are_what_the_kernel_computes() -> None:
    checked = set()
    for text in KERNEL:
        (device,) = json.loads(text)
        info = device["linkinfo"]
        encap = info["info_data"]["encap"]["type"]
        keyed = any(name in info["info_data"] for name in ("ikey", "okey"))
        assert 1500 - device["mtu"] == overhead(info["info_kind"], keyed, encap)
        assert tunnel_mtu(1500, info["info_kind"], keyed, ipsec=False, encap=encap) == device["mtu"]
        checked.add(encap)
    assert checked == set(ENCAP_OVERHEAD)


def link_plan(mode: str, **settings: t.Any) -> dict[str, t.Any]:
    hostvars = PAIR6 if mode.startswith("ip6") else pair_with_mtus(1500, 1500)
    return plan(hostvars, mode=mode, **LINKED, **settings)


@pytest.mark.parametrize(
    ("mode", "encap"),
    [(mode, "none") for mode in sorted(OVERHEAD)] + [(mode, encap) for mode in ENCAP_MODES for encap in ENCAP_OVERHEAD],
)
@pytest.mark.parametrize("key", [None, 7])
def test_every_mode_encap_and_key_gets_its_mtu(mode: str, encap: str, key: int | None) -> None:
    cost = OVERHEAD[mode] + (KEY_OVERHEAD if key is not None else 0) + ENCAP_OVERHEAD.get(encap, 0)
    result = link_plan(mode, encap=encap, key=key)
    for name in ("hosta", "hostb"):
        (tunnel,) = result["hosts"][name]["tunnels"]
        assert tunnel["mtu"] == 1500 - cost
        assert tunnel.get("encap") == (None if encap == "none" else {"type": encap, "dport": 5555})


@pytest.mark.parametrize("mode", ENCAP_MODES)
@pytest.mark.parametrize("encap", ["fou", "gue"])
def test_the_kernel_limit_with_encap_caps_a_jumbo_underlay(mode: str, encap: str) -> None:
    hostvars = pair_with_mtus(65535, 65535)
    (tunnel,) = plan(hostvars, mode=mode, encap=encap, **LINKED)["hosts"]["hosta"]["tunnels"]
    assert tunnel["mtu"] == min(
        65535 - overhead(mode, False, encap), MAX_TUNNEL_MTU[mode][False] - ENCAP_OVERHEAD[encap]
    )


@pytest.mark.parametrize("mode", ["ip6gre", "ip6gretap"])
def test_encap_over_ipv6_is_refused_as_gre_tunnel_refuses_it(mode: str) -> None:
    assert problem(PAIR6, mode=mode, encap="fou", **LINKED) == (
        f"link hosta <-> hostb (gre_mesh_links[0]): encap fou (gre_mesh_encap) carries GRE in UDP over IPv4 only "
        f"(modes gre and gretap), but the link's mode is {mode}: linuxnet.gre.gre_tunnel does not manage the IPv6 "
        "receive ports (fou6) it would need. Give the link IPv4 public addresses, or encap: none"
    )


def test_a_link_in_udp_has_encap_on_both_tunnels_and_its_peer_in_each_firewall() -> None:
    result = plan(pair_with_mtus(), encap="fou", **LINKED)
    hosta, hostb = result["hosts"]["hosta"], result["hosts"]["hostb"]
    assert hosta["tunnels"][0]["encap"] == hostb["tunnels"][0]["encap"] == {"type": "fou", "dport": 5555}
    assert hosta["encap_peers"] == [{"port": 5555, "peers": ["198.51.100.1"]}]
    assert hostb["encap_peers"] == [{"port": 5555, "peers": ["203.0.113.1"]}]
    assert hosta["tunnels"][0]["mtu"] == 1468


def test_the_role_gets_the_tunnels_in_udp_by_name_and_only_the_others_peers_as_gre_peers() -> None:
    hostvars = {"hosta": plain("203.0.113.1"), "hostb": plain("198.51.100.1"), "hostc": plain("198.51.100.3")}
    links = [{"hosts": ["hosta", "hostb"], "encap": "gue"}, ["hosta", "hostc"]]
    hosta = plan(hostvars, links=links)["hosts"]["hosta"]
    assert [tunnel["name"] for tunnel in hosta["tunnels"]] == ["gre-hostb", "gre-hostc"]
    assert (hosta["in_udp"], hosta["gre_peers"], hosta["modes"]) == (["gre-hostb"], ["198.51.100.3"], ["gre"])


def test_without_encap_a_plan_has_neither_encap_nor_encap_peers() -> None:
    result = plan(pair_with_mtus(), **LINKED)
    assert "encap_peers" not in result["hosts"]["hosta"]
    assert "encap" not in result["hosts"]["hosta"]["tunnels"][0]


@pytest.mark.parametrize(
    ("settings", "override", "expected"),
    [
        pytest.param({"encap": "fou"}, {"encap": "none"}, None, id="a link without it"),
        pytest.param({}, {"encap": "gue", "encap_port": 6000}, {"type": "gue", "dport": 6000}, id="a link with it"),
        pytest.param({"encap": "gue", "encap_port": 7000}, {}, {"type": "gue", "dport": 7000}, id="the settings"),
        pytest.param(
            {"encap": "fou", "encap_port": 7000}, {"encap_port": 6000}, {"type": "fou", "dport": 6000}, id="own port"
        ),
        pytest.param({"encap": "fou", "encap_port": "6000"}, {}, {"type": "fou", "dport": 6000}, id="INI strings"),
        pytest.param({}, {"encap": "gue", "encap_port": " 6001"}, {"type": "gue", "dport": 6001}, id="INI on a link"),
        pytest.param({"encap": None}, {}, None, id="null is none"),
        pytest.param({}, {"encap_port": 6000}, None, id="a port alone is no encap"),
    ],
)
def test_a_link_may_set_encap_of_its_own(
    settings: dict[str, t.Any], override: dict[str, t.Any], expected: t.Any
) -> None:
    result = plan(pair_with_mtus(), links=[{"hosts": ["hosta", "hostb"], **override}], **settings)
    assert result["hosts"]["hosta"]["tunnels"][0].get("encap") == expected
    assert result["hosts"]["hostb"]["tunnels"][0].get("encap") == expected
    peers = result["hosts"]["hosta"].get("encap_peers")
    assert peers == (None if expected is None else [{"port": expected["dport"], "peers": ["198.51.100.1"]}])


def test_only_the_links_in_udp_open_udp() -> None:
    hostvars = pair_with_mtus() | {"hostc": from_facts("198.51.100.2", 1500), "hostd": from_facts("198.51.100.3", 1500)}
    links = [
        {"hosts": ["hosta", "hostb"], "encap": "fou"},
        ["hosta", "hostc"],
        {"hosts": ["hosta", "hostd"], "encap": "fou"},
    ]
    result = plan(hostvars, links=links)
    hosta = result["hosts"]["hosta"]
    assert hosta["encap_peers"] == [{"port": 5555, "peers": ["198.51.100.1", "198.51.100.3"]}]
    assert {tunnel["name"]: tunnel["mtu"] for tunnel in hosta["tunnels"]} == {
        "gre-hostb": 1468,
        "gre-hostc": 1476,
        "gre-hostd": 1468,
    }
    assert "encap_peers" not in result["hosts"]["hostc"]


def test_a_host_behind_nat_is_let_in_from_its_public_address() -> None:
    hostvars = {
        "hosta": plain("203.0.113.1"),
        "hostb": {"ansible_host": "198.51.100.1", "gre_mesh_public": "198.51.100.7", "gre_mesh_local": "172.16.5.2"},
    }
    result = plan(hostvars, encap="gue", **LINKED)
    assert result["hosts"]["hosta"]["encap_peers"] == [{"port": 5555, "peers": ["198.51.100.7"]}]
    assert result["hosts"]["hostb"]["tunnels"][0]["local"] == "172.16.5.2"


def test_a_host_plans_its_encap_alone_as_the_whole_plan_does() -> None:
    hostvars = pair_with_mtus() | {"hostc": from_facts("198.51.100.2", 1500)}
    groups = {"all": sorted(hostvars)}
    settings: dict[str, t.Any] = {
        "encap": "fou",
        "links": [["hosta", "hostb"], {"hosts": ["hosta", "hostc"], "encap": "none"}],
    }
    check = check_mesh(hostvars, groups, **settings)
    whole = plan(hostvars, groups, **settings)["hosts"]
    for name in hostvars:
        assert plan_host(hostvars, groups, name, check, **settings) == whole[name]


def test_an_external_peer_gets_its_receive_port_and_the_encap_in_its_commands() -> None:
    hostvars = {"hosta": from_facts("203.0.113.1", 1500)}
    result = plan(
        hostvars,
        links=[{"hosts": ["hosta", "router"], "encap": "gue", "encap_port": 6080}],
        external_peers=[{"name": "router", "address": "198.51.100.9", "mtu": 1500}],
    )
    router = result["external_peers"]["router"]
    assert router["tunnels"][0]["encap"] == {"type": "gue", "dport": 6080}
    assert router["commands"][0] == "ip fou add port 6080 gue"
    assert "encap gue encap-sport auto encap-dport 6080" in router["commands"][1]
    assert router["commands"][1].startswith("ip link add name gre-hosta mtu 1464 type gre remote 203.0.113.1")
    assert result["hosts"]["hosta"]["encap_peers"] == [{"port": 6080, "peers": ["198.51.100.9"]}]


def test_a_given_mtu_must_leave_room_for_the_udp_header() -> None:
    message = problem(pair_with_mtus(), encap="gue", mtu=1476, **LINKED)
    assert message == (
        "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 1476 does not fit the underlay MTUs (host hosta: "
        "1500, ansible_default_ipv4.mtu; host hostb: 1500, ansible_default_ipv4.mtu): gre adds 24 bytes, 12 for GRE "
        "in UDP with gue (its UDP header and GUE's 4-byte header), so the largest tunnel MTU that fits is 1464; lower "
        "gre_mesh_mtu, or unset it to have the MTU follow the underlay"
    )
    # The largest that fits is taken.
    assert plan(pair_with_mtus(), encap="gue", mtu=1464, **LINKED)["hosts"]["hosta"]["tunnels"][0]["mtu"] == 1464


def test_a_given_mtu_above_the_kernels_limit_with_encap_is_refused() -> None:
    hostvars = pair_with_mtus(None, None)
    assert problem(hostvars, encap="fou", mtu=65511, **LINKED) == (
        "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 65511 is above 65503, the largest the kernel allows "
        "for gre without a key in UDP with fou"
    )
    assert plan(hostvars, encap="fou", mtu=65503, **LINKED)["hosts"]["hosta"]["tunnels"][0]["mtu"] == 65503


def test_the_computed_mtu_names_the_encapsulation() -> None:
    message = problem(pair_with_mtus(1300, 1300), encap="fou", pool6="fd00:1::/64", **LINKED)
    assert message == (
        "link hosta <-> hostb (gre_mesh_links[0]): the tunnel MTU from the underlay MTUs (host hosta: 1300, "
        "ansible_default_ipv4.mtu; host hostb: 1300, ansible_default_ipv4.mtu) less 24 for gre, 8 for GRE in UDP with "
        "fou (its UDP header): 1268 is below 1280, the minimum for IPv6 addresses such as fd00:1::/127; raise the "
        "underlay MTU, or give the link an mtu of its own (gre_mesh_links)"
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"encap": "udp"},
            "gre_mesh_encap: 'udp' is not one of none, fou, gue (none: plain GRE; fou and gue: GRE in UDP, the "
            "kernel's Foo-over-UDP and Generic UDP Encapsulation)",
        ),
        (
            {"encap": "FOU"},
            "gre_mesh_encap: 'FOU' is not one of none, fou, gue (none: plain GRE; fou and gue: GRE in UDP, the "
            "kernel's Foo-over-UDP and Generic UDP Encapsulation)",
        ),
        (
            {"encap": True},
            "gre_mesh_encap: True is not one of none, fou, gue (none: plain GRE; fou and gue: GRE in UDP, the "
            "kernel's Foo-over-UDP and Generic UDP Encapsulation)",
        ),
        ({"encap_port": 0}, "gre_mesh_encap_port: 0 is not a UDP port number from 1 to 65535"),
        ({"encap_port": 65536}, "gre_mesh_encap_port: 65536 is not a UDP port number from 1 to 65535"),
        ({"encap_port": "55x"}, "gre_mesh_encap_port: '55x' is not a UDP port number from 1 to 65535"),
        ({"encap_port": True}, "gre_mesh_encap_port: True is not a UDP port number from 1 to 65535"),
        (
            {"links": [{"hosts": ["hosta", "hostb"], "encap": "vxlan"}]},
            "gre_mesh_links[0].encap: 'vxlan' is not one of none, fou, gue (none: plain GRE; fou and gue: GRE in UDP, "
            "the kernel's Foo-over-UDP and Generic UDP Encapsulation)",
        ),
        (
            {"links": [{"hosts": ["hosta", "hostb"], "encap": "fou", "encap_port": -1}]},
            "gre_mesh_links[0].encap_port: -1 is not a UDP port number from 1 to 65535",
        ),
    ],
)
def test_bad_values_name_the_variable(settings: dict[str, t.Any], expected: str) -> None:
    assert problem(pair_with_mtus(), **{**LINKED, **settings}) == expected


def test_ipsec_and_encap_on_one_link_are_refused() -> None:
    hostvars = pair_with_mtus(1500, 1500, gre_mesh_ipsec_secret="correct horse battery staple")
    hostvars["hosta"]["gre_mesh_ipsec_secret"] = "correct horse battery staple"
    assert problem(hostvars, ipsec=True, links=[{"hosts": ["hosta", "hostb"], "encap": "fou"}]) == (
        "link hosta <-> hostb (gre_mesh_links[0]): ipsec is on and so is encap fou (gre_mesh_links[0].encap), but the "
        "role's IPsec protects GRE (IP protocol 47), which GRE in UDP is not: its packets would leave unencrypted. "
        "Choose one for this link: ipsec, where ESP passes the path, or encap, where only UDP does (ipsec: false or "
        "encap: none on the link in gre_mesh_links)"
    )
    # Each on a link of its own is fine.
    hostvars["hostc"] = from_facts("198.51.100.2", 1500, gre_mesh_ipsec_secret="correct horse battery staple")
    links = [{"hosts": ["hosta", "hostb"], "ipsec": True}, {"hosts": ["hosta", "hostc"], "encap": "gue"}]
    hosta = plan(hostvars, links=links)["hosts"]["hosta"]
    assert [entry["peer"] for entry in hosta["ipsec"]] == ["hostb"]
    assert hosta["encap_peers"] == [{"port": 5555, "peers": ["198.51.100.2"]}]


def test_one_port_of_a_host_receives_one_kind() -> None:
    hostvars = pair_with_mtus() | {"hostc": from_facts("198.51.100.2", 1500)}
    links: list[dict[str, t.Any]] = [
        {"hosts": ["hosta", "hostb"], "encap": "fou"},
        {"hosts": ["hosta", "hostc"], "encap": "gue"},
    ]
    assert problem(hostvars, links=links) == (
        "host hosta: its links to hostb (encap fou, gre_mesh_links[0].encap) and to hostc (encap gue, "
        "gre_mesh_links[1].encap) both receive on UDP port 5555 (gre_mesh_encap_port, gre_mesh_encap_port), which "
        "takes one kind only; give one of them another encap_port in gre_mesh_links, or the same encap"
    )
    links[1]["encap_port"] = 5556
    hosta = plan(hostvars, links=links)["hosts"]["hosta"]
    assert hosta["encap_peers"] == [
        {"port": 5555, "peers": ["198.51.100.1"]},
        {"port": 5556, "peers": ["198.51.100.2"]},
    ]


def test_the_ports_of_ike_are_refused_where_ipsec_runs() -> None:
    secret = {"gre_mesh_ipsec_secret": "correct horse battery staple"}
    hostvars = {
        "hosta": from_facts("203.0.113.1", 1500, **secret),
        "hostb": from_facts("198.51.100.1", 1500, **secret),
        "hostc": from_facts("198.51.100.2", 1500),
    }
    links = [{"hosts": ["hosta", "hostb"], "ipsec": True}, {"hosts": ["hosta", "hostc"], "encap": "fou"}]
    assert problem(hostvars, links=links, encap_port=4500) == (
        "host hosta: its link to hostc receives GRE in UDP on port 4500 (gre_mesh_encap_port), which strongSwan holds "
        "for IKE on this host (its link hosta <-> hostb (gre_mesh_links[0]) has ipsec on); choose another encap_port"
    )
    # hostc runs no IPsec: 4500 is free there, and the link is refused once, on hosta.
    assert plan(hostvars, links=links, encap_port=4501)["hosts"]["hostc"]["encap_peers"] == [
        {"port": 4501, "peers": ["203.0.113.1"]}
    ]


def test_encap_in_one_groups_variables_is_named() -> None:
    """gre_mesh_encap is a topology setting: kept for the spokes alone, the run fails before any change."""
    everywhere: dict[str, dict[str, t.Any]] = {name: {"gre_mesh_hub_spoke": HUB_SPOKE} for name in GROUPS["all"]}
    for spoke in GROUPS["spokes"]:
        everywhere[spoke] = {**everywhere[spoke], "gre_mesh_encap": "fou", "gre_mesh_encap_port": 6000}
    message = disagreement(inventory(**everywhere), ["hub", "s1", "s2"], hub_spoke=HUB_SPOKE)
    assert message.splitlines() == [
        "gre_mesh_encap: the hosts of this play and their peers see different values, so the plan would depend on "
        'which host plans: "fou" for s1, s2 (set for every host of group spokes); "none" for hub (not set for them: '
        "the role's default). Topology settings must be the same for every host: set them in group_vars/all, or in "
        "the play's vars; for some links only, set encap on those links in gre_mesh_links",
        "gre_mesh_encap_port: the hosts of this play and their peers see different values, so the plan would depend "
        "on which host plans: 6000 for s1, s2 (set for every host of group spokes); 5555 for hub (not set for them: "
        "the role's default). Topology settings must be the same for every host: set them in group_vars/all, or in "
        "the play's vars; for some links only, set encap_port on those links in gre_mesh_links",
    ]
