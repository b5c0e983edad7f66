# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The inventory planner (module_utils/_mesh_*): topologies, addresses, ids, names, keys, and every error."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._constants import MANAGED_ALIAS
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import changes
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import wanted_tunnels
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.spec import defaults
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.addresses import pair_index
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import MeshError
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.nodes import derive_id
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh, plan_host, plan_mesh

from .inventories import LINKED, PAIR, SEED, SEED_TUNNELS, host, plain, plan, problem, tunnels


def test_seed_gets_the_seed_addresses_and_sends_from_the_private_address() -> None:
    result = plan(SEED, {"gre_hosts": ["hosta", "hostb"]}, full_mesh=["gre_hosts"])
    assert result == {
        "hosts": {
            "hosta": {
                "tunnels": [SEED_TUNNELS["hosta"]],
                "peers": [{"interface": "gre-hostb", "peer": "hostb", "external": False, "addresses": ["10.0.0.2"]}],
                "forward": [],
                "modes": ["gre"],
                "in_udp": [],
                "gre_peers": [SEED_TUNNELS["hosta"]["remote"]],
                "routed": [],
                "routed_networks": [],
            },
            "hostb": {
                "tunnels": [SEED_TUNNELS["hostb"]],
                "peers": [{"interface": "gre-hosta", "peer": "hosta", "external": False, "addresses": ["10.0.0.1"]}],
                "forward": [],
                "modes": ["gre"],
                "in_udp": [],
                "gre_peers": [SEED_TUNNELS["hostb"]["remote"]],
                "routed": [],
                "routed_networks": [],
            },
        },
        "external_peers": {},
    }


def test_seed_as_an_explicit_link_is_the_same_plan() -> None:
    by_group = plan(SEED, {"gre_hosts": ["hosta", "hostb"]}, full_mesh=["gre_hosts"])
    assert plan(SEED, links=[["hostb", "hosta"]]) == by_group
    assert plan(SEED, links=[{"hosts": ["hosta", "hostb"]}]) == by_group


@pytest.mark.parametrize(
    ("variables", "local"),
    [
        pytest.param({"gre_mesh_local": "10.128.0.99"}, "10.128.0.99", id="gre_mesh_local wins over facts"),
        pytest.param({"ansible_default_ipv4": {"address": "10.128.0.98"}}, "10.128.0.98", id="injected fact"),
        pytest.param(
            {"ansible_facts": {"default_ipv4": {"address": "10.128.0.97"}}}, "10.128.0.97", id="ansible_facts"
        ),
    ],
)
def test_local_address_sources(variables: dict[str, t.Any], local: str) -> None:
    hostvars = {"hosta": {"ansible_host": "34.27.138.140", **variables}, "hostb": SEED["hostb"]}
    if "gre_mesh_local" in variables:
        hostvars["hosta"]["ansible_facts"] = {"default_ipv4": {"address": "10.128.0.11"}}
    assert tunnels(plan(hostvars, links=[["hosta", "hostb"]]), "hosta")["gre-hostb"]["local"] == local


@pytest.mark.parametrize(
    ("variables", "public"),
    [
        pytest.param(
            {"gre_mesh_public": "192.0.2.77", "ansible_host": "203.0.113.1"}, "192.0.2.77", id="gre_mesh_public"
        ),
        pytest.param({"ansible_host": "203.0.113.1"}, "203.0.113.1", id="ansible_host"),
    ],
)
def test_public_address_sources(variables: dict[str, t.Any], public: str) -> None:
    hostvars = {"hosta": {**variables, "gre_mesh_local": "10.1.0.1"}, "hostb": plain("198.51.100.1")}
    assert tunnels(plan(hostvars, links=[["hosta", "hostb"]]), "hostb")["gre-hosta"]["remote"] == public


def test_public_address_from_an_inventory_name_that_is_an_ip_address() -> None:
    hostvars = {"198.51.100.7": {"gre_mesh_local": "198.51.100.7"}, "hosta": plain("203.0.113.1")}
    result = plan(hostvars, links=[["hosta", "198.51.100.7"]])
    # gre-198.51.100.7 would be 16 characters: cut, and ended with the id (7).
    assert tunnels(result, "hosta")["gre-198.51.10-7"]["remote"] == "198.51.100.7"


@pytest.mark.parametrize(
    ("name", "node_id"),
    [
        ("hosta", 0),
        ("hostb", 1),
        ("HostB", 1),
        ("node7", 7),
        ("web-012", 12),
        ("spoke0999", 999),
        ("web1.example.com", 1),
        ("198.51.100.7", 7),
        ("2001:db8::17", 17),
        ("hub", 1),
        ("edge_", None),
        ("router-", None),
    ],
)
def test_derived_ids(name: str, node_id: int | None) -> None:
    assert derive_id(name) == node_id


@pytest.mark.parametrize(
    ("ids", "index"), [((0, 1), 0), ((0, 2), 1), ((1, 2), 2), ((0, 3), 3), ((2, 3), 5), ((1000, 1), 499501)]
)
def test_pair_index_is_triangular_and_symmetric(ids: tuple[int, int], index: int) -> None:
    assert pair_index(*ids) == pair_index(*reversed(ids)) == index


def test_full_mesh_numbers_links_by_ids() -> None:
    hostvars = {f"node{i}": plain(f"198.51.100.{i + 1}") for i in range(4)}
    result = plan(hostvars, {"core": sorted(hostvars)}, full_mesh=["core"])
    assert {name: tunnel["addresses"] for name, tunnel in tunnels(result, "node2").items()} == {
        "gre-node0": ["10.0.0.6/30"],  # link number 1
        "gre-node1": ["10.0.0.10/30"],  # link number 2
        "gre-node3": ["10.0.0.21/30"],  # link number 5: node2 has the lower id
    }


def test_hub_and_spoke_links_hubs_with_spokes_only() -> None:
    hostvars = {name: plain(f"198.51.100.{n}") for n, name in enumerate(["hub1", "hub2", "site3", "site4"], 1)}
    groups = {"hubs": ["hub1", "hub2"], "sites": ["site3", "site4"]}
    result = plan(hostvars, groups, hub_spoke=[{"hubs": "hubs", "spokes": "sites"}])
    assert sorted(tunnels(result, "hub1")) == ["gre-site3", "gre-site4"]
    assert sorted(tunnels(result, "site3")) == ["gre-hub1", "gre-hub2"]


def test_topologies_combine_and_an_explicit_link_sets_a_meshed_link() -> None:
    hostvars = {name: plain(f"198.51.100.{n}") for n, name in enumerate(["hub1", "site2", "site3"], 1)}
    groups = {"hubs": ["hub1"], "sites": ["site2", "site3"], "all_sites": ["hub1", "site2", "site3"]}
    result = plan(
        hostvars,
        groups,
        full_mesh=["all_sites", "sites"],
        hub_spoke=[{"hubs": "hubs", "spokes": "sites"}],
        links=[{"hosts": ["site3", "hub1"], "mtu": 1400}],
    )
    assert sorted(tunnels(result, "hub1")) == ["gre-site2", "gre-site3"]
    assert tunnels(result, "hub1")["gre-site3"]["mtu"] == 1400
    assert "mtu" not in tunnels(result, "hub1")["gre-site2"]


def test_per_link_settings() -> None:
    hostvars = {"hosta": plain("203.0.113.1"), "hostb": plain("198.51.100.1")}
    link = {
        "hosts": ["hosta", "hostb"],
        "mode": "gretap",
        "key": "0.0.1.0",
        "ttl": 64,
        "mtu": 1400,
        "subnet": "192.168.77.0/31",
        "subnet6": "fd00:77::/126",
    }
    result = plan(hostvars, links=[link], pool6="fd00:1::/64")
    assert tunnels(result, "hosta")["gre-hostb"] == {
        "name": "gre-hostb",
        "mode": "gretap",
        "local": "203.0.113.1",
        "remote": "198.51.100.1",
        "ttl": 64,
        "key": "256",
        "mtu": 1400,
        "addresses": ["192.168.77.0/31", "fd00:77::1/126"],
        "state": "present",
        "routes": [],
    }
    assert tunnels(result, "hostb")["gre-hosta"]["addresses"] == ["192.168.77.1/31", "fd00:77::2/126"]
    assert result["hosts"]["hosta"]["peers"][0]["addresses"] == ["192.168.77.1", "fd00:77::2"]


@pytest.mark.parametrize(
    ("settings", "low", "high"),
    [
        pytest.param({"prefix": 31}, ["10.0.0.0/31"], ["10.0.0.1/31"], id="/31"),
        pytest.param({"pool6": "fd00::/64"}, ["10.0.0.1/30", "fd00::/127"], ["10.0.0.2/30", "fd00::1/127"], id="/127"),
        pytest.param(
            {"pool6": "fd00::/64", "prefix6": 126},
            ["10.0.0.1/30", "fd00::1/126"],
            ["10.0.0.2/30", "fd00::2/126"],
            id="/126",
        ),
        pytest.param({"pool": None, "pool6": "fd00::/64"}, ["fd00::/127"], ["fd00::1/127"], id="IPv6 only"),
        pytest.param({"pool": "172.16.8.0/24"}, ["172.16.8.1/30"], ["172.16.8.2/30"], id="other pool"),
    ],
)
def test_inner_address_settings(settings: dict[str, t.Any], low: list[str], high: list[str]) -> None:
    result = plan(SEED, links=[["hosta", "hostb"]], **settings)
    assert tunnels(result, "hosta")["gre-hostb"]["addresses"] == low
    assert tunnels(result, "hostb")["gre-hosta"]["addresses"] == high


def test_defaults_apply_to_every_link() -> None:
    result = plan(SEED, links=[["hosta", "hostb"]], mode="gretap", ttl=0, key=7, mtu=1450)
    tunnel = tunnels(result, "hosta")["gre-hostb"]
    assert (tunnel["mode"], tunnel["ttl"], tunnel["key"], tunnel["mtu"]) == ("gretap", 0, "7", 1450)


def test_ip6gre_takes_the_ipv6_default_address_from_facts() -> None:
    hostvars = {
        "hosta": {"ansible_host": "2001:db8:1::1", "ansible_facts": {"default_ipv6": {"address": "2001:db8:1::1"}}},
        "hostb": {"ansible_host": "2001:db8:2::1", "gre_mesh_local": "2001:db8:2::1"},
    }
    result = plan(hostvars, links=[["hosta", "hostb"]], mode="ip6gre")
    assert tunnels(result, "hosta")["gre-hostb"]["local"] == "2001:db8:1::1"
    assert tunnels(result, "hosta")["gre-hostb"]["remote"] == "2001:db8:2::1"


def test_limit_plans_the_limited_hosts_with_every_peer() -> None:
    """Peers outside the limit need no facts and no local address; they get no entry."""
    hostvars = {"hosta": plain("203.0.113.1"), "hostb": host("198.51.100.1"), "hostc": host("198.51.100.3")}
    result = plan(hostvars, {"mesh": sorted(hostvars)}, full_mesh=["mesh"], hosts=["hosta"])
    assert sorted(result["hosts"]) == ["hosta"]
    assert sorted(tunnels(result, "hosta")) == ["gre-hostb", "gre-hostc"]


def test_asked_for_hosts_without_links_get_no_tunnels() -> None:
    hostvars = {"hosta": plain("203.0.113.1"), "hostb": plain("198.51.100.1"), "lonely": {}}
    result = plan(hostvars, links=[["hosta", "hostb"]], hosts=["lonely", "hosta"])
    assert result["hosts"]["lonely"] == {
        "tunnels": [],
        "peers": [],
        "forward": [],
        **{name: [] for name in ("modes", "in_udp", "gre_peers", "routed", "routed_networks")},
    }
    assert sorted(result["hosts"]) == ["hosta", "lonely"]


def test_interface_names_are_cut_to_15_characters_with_the_peer_id() -> None:
    hostvars = {
        "hub": plain("203.0.113.1") | {"gre_mesh_id": 0},
        "customer-site-0017": plain("198.51.100.17"),
        "customer-site-0018": plain("198.51.100.18"),
        "a:b/c": plain("198.51.100.20") | {"gre_mesh_id": 20},
        "very-long-name-but-short": plain("198.51.100.21") | {"gre_mesh_id": 21, "gre_mesh_short_name": "vl"},
    }
    groups = {"hubs": ["hub"], "spokes": sorted(set(hostvars) - {"hub"})}
    result = plan(hostvars, groups, hub_spoke=[{"hubs": "hubs", "spokes": "spokes"}])
    assert sorted(tunnels(result, "hub")) == ["gre-a-b-c", "gre-customer-17", "gre-customer-18", "gre-vl"]
    assert all(len(name) <= 15 for name in tunnels(result, "hub"))


def test_keys_only_where_two_tunnels_of_a_host_share_the_endpoints() -> None:
    """site2 and site3 sit behind one NAT address: the hub needs keys to tell their tunnels apart."""
    hostvars = {
        "hub": plain("203.0.113.1") | {"gre_mesh_id": 0},
        "site2": host("198.51.100.1", "192.168.1.2"),
        "site3": host("198.51.100.1", "192.168.1.3"),
        "site4": plain("198.51.100.4"),
    }
    groups = {"hubs": ["hub"], "sites": ["site2", "site3", "site4"]}
    result = plan(hostvars, groups, hub_spoke=[{"hubs": "hubs", "spokes": "sites"}])
    hub = tunnels(result, "hub")
    assert (hub["gre-site2"]["key"], hub["gre-site3"]["key"]) == (str(pair_index(0, 2) + 1), str(pair_index(0, 3) + 1))
    assert "key" not in hub["gre-site4"]
    assert tunnels(result, "site2")["gre-hub"]["key"] == hub["gre-site2"]["key"]
    assert tunnels(result, "site3")["gre-hub"]["key"] == hub["gre-site3"]["key"]
    assert "key" not in tunnels(result, "site4")["gre-hub"]


def test_keys_for_two_external_peers_on_one_router() -> None:
    result = plan(
        {"hosta": plain("203.0.113.1")},
        links=[["hosta", "vpn1"], ["hosta", "vpn2"]],
        external_peers=[{"name": "vpn1", "address": "192.0.2.50"}, {"name": "vpn2", "address": "192.0.2.50"}],
    )
    # Ids 0 (hosta), 1 (vpn1) and 2 (vpn2): link numbers 0 and 1, keys 1 and 2.
    assert {name: tunnel["key"] for name, tunnel in tunnels(result, "hosta").items()} == {
        "gre-vpn1": "1",
        "gre-vpn2": "2",
    }
    assert [tunnel["key"] for tunnel in result["external_peers"]["vpn1"]["tunnels"]] == ["1"]


def test_different_modes_to_one_address_need_no_key() -> None:
    result = plan(
        {"hosta": plain("203.0.113.1")},
        links=[["hosta", "vpn1"], {"hosts": ["hosta", "vpn2"], "mode": "gretap"}],
        external_peers=[{"name": "vpn1", "address": "192.0.2.50"}, {"name": "vpn2", "address": "192.0.2.50"}],
    )
    assert all("key" not in tunnel for tunnel in tunnels(result, "hosta").values())


def test_external_peer_side_is_returned_with_its_commands() -> None:
    result = plan(
        {"hosta": host("203.0.113.1", "10.1.0.5")},
        links=[{"hosts": ["hosta", "dc"], "key": 42, "mtu": 1400}],
        external_peers=[{"name": "dc", "address": "198.51.100.250", "local": "172.16.0.2", "id": 9}],
        pool6="fd00::/64",
    )
    assert result["external_peers"] == {
        "dc": {
            "address": "198.51.100.250",
            "tunnels": [
                {
                    "name": "gre-hosta",
                    "mode": "gre",
                    "local": "172.16.0.2",
                    "remote": "203.0.113.1",
                    "ttl": 255,
                    "key": "42",
                    "mtu": 1400,
                    "addresses": ["10.0.0.146/30", "fd00::49/127"],
                    "state": "present",
                    "routes": [],
                }
            ],
            "forward": [],
            "commands": [
                "ip link add name gre-hosta mtu 1400 type gre remote 203.0.113.1 local 172.16.0.2 ttl 255 tos 0x00 "
                "pmtudisc ikey 42 okey 42",
                "ip link set dev gre-hosta up",
                "ip address add 10.0.0.146/30 dev gre-hosta",
                "ip address add fd00::49/127 dev gre-hosta",
            ],
        }
    }
    assert tunnels(result, "hosta")["gre-dc"]["remote"] == "198.51.100.250"
    assert tunnels(result, "hosta")["gre-dc"]["addresses"] == ["10.0.0.145/30", "fd00::48/127"]


def test_external_ip6gre_commands_use_the_modules_words() -> None:
    result = plan(
        {"hosta": plain("2001:db8:1::1")},
        links=[["hosta", "dc"]],
        external_peers=[{"name": "dc", "address": "2001:db8:9::1"}],
        mode="ip6gre",
    )
    assert result["external_peers"]["dc"]["commands"][0] == (
        "ip link add name gre-hosta type ip6gre remote 2001:db8:1::1 local 2001:db8:9::1 ttl 255 tclass 0x00"
    )


@pytest.mark.parametrize(
    "link",
    [
        ["hosta", "dc"],
        {"hosts": ["hosta", "dc"], "key": 7, "mtu": 1400, "ttl": 0},
        {"hosts": ["hosta", "dc"], "mode": "gretap"},
    ],
)
def test_an_external_peer_gets_what_gre_tunnel_would_run_without_the_managed_alias(link: t.Any) -> None:
    """One generator: the peer's commands are gre_tunnel's for the same tunnel on a host without it, unmarked."""
    result = plan(
        {"hosta": plain("203.0.113.1")}, links=[link], external_peers=[{"name": "dc", "address": "192.0.2.9"}]
    )
    peer = result["external_peers"]["dc"]
    entries = [{**defaults(), **tunnel} for tunnel in peer["tunnels"]]
    module = [f"ip {line}" for _name, line in changes.plan(wanted_tunnels({"tunnels": entries}), {}, purge=False).steps]
    assert peer["commands"] == [line.replace(f' alias "{MANAGED_ALIAS}"', "") for line in module]
    assert not any(MANAGED_ALIAS in line for line in peer["commands"])


def with_vars(name: str, **variables: t.Any) -> dict[str, dict[str, t.Any]]:
    result = {host_name: dict(values) for host_name, values in PAIR.items()}
    result[name].update(variables)
    return result


ERRORS = [
    # A link to an unknown host.
    pytest.param(
        PAIR,
        {"links": [["hosta", "hostz"]]},
        "gre_mesh_links[0]: 'hostz' is neither a host of the inventory nor the name of one of gre_mesh_external_peers",
        id="unknown host",
    ),
    # A host linked to itself.
    pytest.param(PAIR, {"links": [["hosta", "hosta"]]}, "gre_mesh_links[0]: links hosta to itself", id="self link"),
    pytest.param(
        PAIR,
        {"hub_spoke": [{"hubs": "all", "spokes": "all"}]},
        "gre_mesh_hub_spoke[0]: host hosta is in both the hubs group 'all' and the spokes group 'all', which would link "
        "it to itself\n"
        "gre_mesh_hub_spoke[0]: host hostb is in both the hubs group 'all' and the spokes group 'all', which would link "
        "it to itself",
        id="hub is a spoke",
    ),
    # A duplicate link.
    pytest.param(
        PAIR,
        {"links": [["hosta", "hostb"], {"hosts": ["hostb", "hosta"], "mtu": 1400}]},
        "gre_mesh_links[1]: the link hosta <-> hostb is already gre_mesh_links[0]",
        id="duplicate link",
    ),
    # A pool too small for the links.
    pytest.param(
        with_vars("hostb", gre_mesh_id=200),
        LINKED,
        "gre_mesh_pool: 10.0.0.0/16 holds 16384 /30 subnets, too few for link hosta <-> hostb (gre_mesh_links[0]), "
        "link number 19900 (ids 0 and 200); use a /15 or larger pool, or smaller ids (gre_mesh_id)",
        id="pool too small",
    ),
    pytest.param(
        with_vars("hostb", gre_mesh_id=3),
        {**LINKED, "pool6": "fd00::/126"},
        "gre_mesh_pool6: fd00::/126 holds 2 /127 subnets, too few for link hosta <-> hostb (gre_mesh_links[0]), "
        "link number 3 (ids 0 and 3); use a /125 or larger pool, or smaller ids (gre_mesh_id)",
        id="pool6 too small",
    ),
    # A pool overlapping an underlay address.
    pytest.param(
        with_vars("hostb", ansible_host="10.0.3.4", gre_mesh_local="10.0.3.4"),
        LINKED,
        "gre_mesh_pool: 10.0.0.0/16 contains 10.0.3.4, the public address of host hostb (ansible_host); inner and "
        "underlay addresses must not overlap, choose another range",
        id="pool contains a public address",
    ),
    pytest.param(
        with_vars("hosta", gre_mesh_local="10.0.9.9"),
        LINKED,
        "gre_mesh_pool: 10.0.0.0/16 contains 10.0.9.9, the local address of host hosta (gre_mesh_local); inner and "
        "underlay addresses must not overlap, choose another range",
        id="pool contains a local address",
    ),
    pytest.param(
        PAIR,
        {"links": [{"hosts": ["hosta", "hostb"], "subnet": "198.51.100.0/30"}]},
        "gre_mesh_links[0].subnet: 198.51.100.0/30 contains 198.51.100.1, the public address of host hostb "
        "(ansible_host); inner and underlay addresses must not overlap, choose another range",
        id="link subnet contains an underlay address",
    ),
    # Mixed address families on a link.
    pytest.param(
        with_vars("hostb", ansible_host="2001:db8::2", gre_mesh_local="2001:db8::2"),
        LINKED,
        "link hosta <-> hostb (gre_mesh_links[0]) mixes address families: the public address of host hosta is "
        "203.0.113.1 (IPv4, ansible_host), that of host hostb is 2001:db8::2 (IPv6, ansible_host)",
        id="mixed families",
    ),
    pytest.param(
        PAIR,
        {"links": [{"hosts": ["hosta", "hostb"], "mode": "ip6gre"}]},
        "link hosta <-> hostb (gre_mesh_links[0]): mode ip6gre needs IPv6 underlay addresses, but the public "
        "addresses of hosta and hostb are IPv4; choose another mode (gre_mesh_mode, or mode on the link in "
        "gre_mesh_links)",
        id="mode of the other family",
    ),
    pytest.param(
        with_vars("hosta", gre_mesh_local="2001:db8::1"),
        LINKED,
        "host hosta: gre_mesh_local: 2001:db8::1 is IPv6, but link hosta <-> hostb (gre_mesh_links[0]) uses mode gre, "
        "which needs IPv4",
        id="local of the other family",
    ),
    # A missing underlay address.
    pytest.param(
        {"hosta": {"ansible_host": "203.0.113.1"}, "hostb": PAIR["hostb"]},
        LINKED,
        "host hosta: gre_mesh_local: not set, and there are no facts (ansible_default_ipv4) to take it from; gather "
        "facts on hosta or set gre_mesh_local",
        id="no local address",
    ),
    pytest.param(
        with_vars("hostb", ansible_host="hostb.example.com"),
        LINKED,
        "host hostb: gre_mesh_public: not set, and ansible_host 'hostb.example.com' is not an IP address to take it "
        "from (names are not resolved); set gre_mesh_public to the address its peers send to",
        id="ansible_host is a name",
    ),
    pytest.param(
        {"hosta": PAIR["hosta"], "hostb": {}},
        LINKED,
        "host hostb: gre_mesh_public: not set, and the inventory name 'hostb' is not an IP address to take it from; "
        "set gre_mesh_public to the address its peers send to",
        id="no public address",
    ),
    pytest.param(
        with_vars("hostb", gre_mesh_public="0.0.0.0"),
        LINKED,
        "host hostb: gre_mesh_public: '0.0.0.0' is the unspecified address, which cannot be a GRE endpoint",
        id="bad public address",
    ),
    # An id collision.
    pytest.param(
        with_vars("hostb", gre_mesh_id=0),
        LINKED,
        "host hosta and host hostb both have id 0 (host hosta: derived from the name, host hostb: gre_mesh_id); ids "
        "must be unique, set gre_mesh_id on one of them",
        id="id collision",
    ),
    pytest.param(
        {"hub": plain("203.0.113.1"), "hostb": plain("198.51.100.1")},
        {"links": [["hub", "hostb"]]},
        "host hostb and host hub both have id 1 (host hostb: derived from the name, host hub: derived from the name); "
        "ids must be unique, set gre_mesh_id on one of them",
        id="derived id collision",
    ),
    pytest.param(
        PAIR,
        {"links": [["hosta", "ext1"]], "external_peers": [{"name": "ext1", "address": "192.0.2.9", "id": 0}]},
        "external peer ext1 and host hosta both have id 0 (external peer ext1: gre_mesh_external_peers[0].id, host "
        "hosta: derived from the name); ids must be unique, set gre_mesh_id on the host, or id on the external peer",
        id="id collision with an external peer",
    ),
    pytest.param(
        with_vars("hosta", gre_mesh_id="seven"),
        LINKED,
        "host hosta: gre_mesh_id: 'seven' is not a whole number of 0 or more",
        id="bad id",
    ),
    pytest.param(
        with_vars("hosta", gre_mesh_id=-1),
        LINKED,
        "host hosta: gre_mesh_id: -1 is not a whole number of 0 or more",
        id="negative id",
    ),
    pytest.param(
        PAIR,
        {"links": [["hosta", "ext"]], "external_peers": [{"name": "ext", "address": "192.0.2.9", "id": True}]},
        "gre_mesh_external_peers[0].id: True is not a whole number of 0 or more",
        id="bad external id",
    ),
    pytest.param(
        {"edge_": plain("203.0.113.1"), "hostb": PAIR["hostb"]},
        {"links": [["edge_", "hostb"]]},
        "host edge_: gre_mesh_id: not set, and the name ends in neither a number nor a letter to derive it from; set "
        "gre_mesh_id",
        id="no id to derive",
    ),
    # A name collision after truncation.
    pytest.param(
        {
            "hub": plain("203.0.113.1") | {"gre_mesh_id": 0},
            "branch-office-1": plain("198.51.100.1"),
            "branch-office-2": plain("198.51.100.2") | {"gre_mesh_short_name": "branch-of-1"},
        },
        {"links": [["hub", "branch-office-1"], ["hub", "branch-office-2"]]},
        "host hub: the tunnels to branch-office-1 and branch-office-2 would both be named 'gre-branch-of-1' "
        "(interface names have at most 15 bytes); give one of them another gre_mesh_short_name (short_name for "
        "an external peer)",
        id="name collision",
    ),
    # Inner subnets and keys that cannot work.
    pytest.param(
        {**PAIR, "hostc": plain("198.51.100.3")},
        {"links": [["hosta", "hostc"], {"hosts": ["hosta", "hostb"], "subnet": "10.0.0.0/29"}]},
        "link hosta <-> hostb (gre_mesh_links[1]) and link hosta <-> hostc (gre_mesh_links[0]): their inner subnets "
        "10.0.0.0/29 and 10.0.0.4/30 overlap; give one of them another subnet",
        id="overlapping subnets",
    ),
    pytest.param(
        {"hosta": plain("203.0.113.1")},
        {
            "links": [{"hosts": ["hosta", "vpn1"], "key": 5}, {"hosts": ["hosta", "vpn2"], "key": "0.0.0.5"}],
            "external_peers": [{"name": "vpn1", "address": "192.0.2.50"}, {"name": "vpn2", "address": "192.0.2.50"}],
        },
        "host hosta: the tunnels to vpn1 and vpn2 would have the same mode gre, remote address 192.0.2.50 and key 5 "
        "(gre_mesh_links[0].key, gre_mesh_links[1].key), which the kernel cannot tell apart; give the links "
        "different keys (key in gre_mesh_links)",
        id="same key to one address",
    ),
    pytest.param(
        PAIR,
        {**LINKED, "mtu": 1000, "pool6": "fd00::/64"},
        "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 1000 is below 1280, the minimum for IPv6 addresses "
        "such as fd00::/127",
        id="mtu too small for IPv6",
    ),
    pytest.param(
        PAIR,
        {"links": [{"hosts": ["hosta", "hostb"], "mtu": 65510, "key": 1}]},
        "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_links[0].mtu: 65510 is above 65507, the largest the "
        "kernel allows for gre with a key",
        id="mtu too large with a key",
    ),
    # Settings and topology variables.
    pytest.param(PAIR, {**LINKED, "prefix": 29}, "gre_mesh_prefix: 29 is not one of 30, 31", id="prefix"),
    pytest.param(PAIR, {**LINKED, "prefix6": 64}, "gre_mesh_prefix6: 64 is not one of 126, 127", id="prefix6"),
    pytest.param(
        PAIR,
        {**LINKED, "pool": "10.0.0.1/16"},
        "gre_mesh_pool: '10.0.0.1/16' is not an IPv4 network (10.0.0.1/16 has host bits set)",
        id="pool with host bits",
    ),
    pytest.param(
        PAIR,
        {**LINKED, "pool": "fd00::/64"},
        "gre_mesh_pool: fd00::/64 is an IPv6 network; an IPv4 one is needed here",
        id="pool of the wrong family",
    ),
    pytest.param(
        PAIR,
        {**LINKED, "pool": "10.0.0.0/31"},
        "gre_mesh_pool: 10.0.0.0/31 is too small for a link: the prefix must be /30 or shorter",
        id="pool smaller than a link",
    ),
    pytest.param(
        PAIR,
        {**LINKED, "pool": ""},
        "gre_mesh_pool: is empty, and so is gre_mesh_pool6; the tunnels need inner addresses from one of them",
        id="no pool",
    ),
    pytest.param(
        PAIR,
        {**LINKED, "mode": "vxlan"},
        "gre_mesh_mode: 'vxlan' is not one of gre, gretap, ip6gre, ip6gretap",
        id="mode",
    ),
    pytest.param(
        PAIR, {**LINKED, "ttl": 256}, "gre_mesh_ttl: 256 is not a number from 0 to 255 (0 means inherit)", id="ttl"
    ),
    pytest.param(
        PAIR,
        {**LINKED, "key": "-1"},
        "gre_mesh_key: '-1' is neither a number from 0 to 4294967295 nor a dotted quad",
        id="key",
    ),
    pytest.param(PAIR, {**LINKED, "mtu": 10}, "gre_mesh_mtu: 10 is not a number from 68 to 65535", id="mtu"),
    pytest.param(
        PAIR,
        {"links": [{"hosts": ["hosta", "hostb"], "mttu": 1400}]},
        "gre_mesh_links[0]: unknown key 'mttu'; a link has hosts, mode, key, ttl, mtu, subnet, subnet6, metric, networks, ipsec, encap, encap_port",
        id="unknown link key",
    ),
    pytest.param(
        PAIR,
        {"links": [{"hosts": ["hosta", "hostb"], "subnet": "10.9.0.0/32"}]},
        "gre_mesh_links[0].subnet: 10.9.0.0/32 is too small for a link: the prefix must be /31 or shorter",
        id="link subnet too small",
    ),
    pytest.param(
        PAIR,
        {"links": [["hosta", "hostb", "hostc"]]},
        "gre_mesh_links[0]: must be a list of two host names, not ['hosta', 'hostb', 'hostc']",
        id="three hosts",
    ),
    pytest.param(
        PAIR,
        {"links": "hosta,hostb"},
        "gre_mesh_links: must be a list of links, each two host names or a dict with `hosts` and per-link settings",
        id="links not a list",
    ),
    pytest.param(
        PAIR,
        {"full_mesh": ["core"]},
        "gre_mesh_full_mesh[0]: group 'core' is not in the inventory; its groups are all",
        id="group",
    ),
    pytest.param(
        PAIR,
        {"hub_spoke": [{"hubs": "all"}]},
        "gre_mesh_hub_spoke[0]: must be a dict with the keys hubs and spokes (group names), and optionally summary "
        "(networks), not {'hubs': 'all'}",
        id="hub_spoke item",
    ),
    pytest.param(
        PAIR,
        {"links": [["hosta", "hostb"]], "external_peers": [{"name": "hostb", "address": "192.0.2.1"}]},
        "gre_mesh_external_peers[0].name: 'hostb' is a host of the inventory; an external peer needs a name of its own",
        id="external peer named like a host",
    ),
    pytest.param(
        PAIR,
        {"external_peers": [{"name": "dc1", "address": "192.0.2.1"}, {"name": "dc1", "address": "192.0.2.2"}]},
        "gre_mesh_external_peers[1]: name 'dc1' is used by an earlier external peer",
        id="external peer twice",
    ),
    pytest.param(
        PAIR,
        {"external_peers": [{"name": "dc1", "address": "dc1.example.com"}]},
        "gre_mesh_external_peers[0].address: 'dc1.example.com' is a name, and names are not resolved (the plan "
        "depends on the inventory alone); give an IP address",
        id="external peer address",
    ),
    pytest.param(
        PAIR,
        {
            "links": [{"hosts": ["hosta", "dc1"], "mode": "ip6gre"}],
            "external_peers": [{"name": "dc1", "address": "2001:db8::9"}],
        },
        "link dc1 <-> hosta (gre_mesh_links[0]) mixes address families: the public address of host hosta is "
        "203.0.113.1 (IPv4, ansible_host), that of external peer dc1 is 2001:db8::9 (IPv6, "
        "gre_mesh_external_peers[0].address)",
        id="external peer of another family",
    ),
    pytest.param(
        PAIR,
        {**LINKED, "hosts": ["hosta", "nohost"]},
        "hosts: 'nohost' is not a host of the inventory",
        id="hosts",
    ),
]


@pytest.mark.parametrize(("hostvars", "kwargs", "message"), ERRORS)
def test_errors_name_the_host_and_the_variable(
    hostvars: dict[str, dict[str, t.Any]], kwargs: dict[str, t.Any], message: str
) -> None:
    assert problem(hostvars, **kwargs) == message


def test_problems_of_one_kind_are_reported_together() -> None:
    hostvars = {"hosta": {"ansible_host": "203.0.113.1"}, "hostb": {"ansible_host": "198.51.100.1"}}
    assert problem(hostvars, links=[["hosta", "hostb"]]) == (
        "host hosta: gre_mesh_local: not set, and there are no facts (ansible_default_ipv4) to take it from; gather "
        "facts on hosta or set gre_mesh_local\n"
        "host hostb: gre_mesh_local: not set, and there are no facts (ansible_default_ipv4) to take it from; gather "
        "facts on hostb or set gre_mesh_local"
    )


def test_many_problems_are_cut_short() -> None:
    hostvars = {f"node{i}": {"ansible_host": f"198.51.100.{i + 1}"} for i in range(30)}
    lines = problem(hostvars, {"mesh": sorted(hostvars)}, full_mesh=["mesh"]).splitlines()
    assert len(lines) == 21
    assert lines[-1] == "... and 10 more problems"


class Recording(dict):
    """hostvars that remember whose variables were read."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, host: str) -> t.Any:
        self.read.add(host)
        return super().__getitem__(host)


HUB_AND_SPOKES: dict[str, t.Any] = {
    "hub": plain("203.0.113.1") | {"gre_mesh_id": 0},
    "site2": host("198.51.100.1", "192.168.1.2"),
    "site3": host("198.51.100.1", "192.168.1.3"),
    **{f"site{n}": plain(f"198.51.100.{n}") for n in range(4, 9)},
}
HUB_GROUPS = {"all": sorted(HUB_AND_SPOKES), "hubs": ["hub"], "sites": sorted(set(HUB_AND_SPOKES) - {"hub"})}
HUB_SETTINGS: dict[str, t.Any] = {"hub_spoke": [{"hubs": "hubs", "spokes": "sites"}], "full_mesh": ["hubs"]}


def test_check_is_the_whole_plan_with_what_planning_one_host_needs() -> None:
    check = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    whole = plan_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    assert (check["hosts"], check["external_peers"]) == (whole["hosts"], whole["external_peers"])
    assert check["summary"] == {"hosts": 8, "links": 7, "external_peers": 0}
    assert check["keys"] == [["hub", "site2", 2], ["hub", "site3", 4]]
    assert check["nodes"]["hub"] == [0, "203.0.113.1", "gre-hub", False, None, None]
    assert check["nodes"]["site8"] == [8, "198.51.100.8", "gre-site8", False, None, None]
    only_hub = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, hosts=["hub"], **HUB_SETTINGS)
    assert sorted(only_hub["hosts"]) == ["hub"]
    assert only_hub["digest"] == check["digest"]
    without_plans = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, plans=False, **HUB_SETTINGS)
    assert without_plans == {**check, "hosts": {}}


def test_check_without_plans_still_checks_the_local_addresses() -> None:
    hostvars = {"hosta": {"ansible_host": "203.0.113.1"}, "hostb": plain("198.51.100.1")}
    with pytest.raises(MeshError) as caught:
        check_mesh(hostvars, {"all": ["hosta", "hostb"]}, hosts=["hosta"], plans=False, links=[["hosta", "hostb"]])
    assert str(caught.value).startswith("host hosta: gre_mesh_local: not set")


@pytest.mark.parametrize("name", sorted(HUB_AND_SPOKES))
def test_a_host_planned_alone_gets_what_the_whole_plan_gives_it(name: str) -> None:
    check = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    whole = plan_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    assert plan_host(HUB_AND_SPOKES, HUB_GROUPS, name, check, **HUB_SETTINGS) == whole["hosts"][name]


def test_a_host_planned_alone_reads_only_its_own_variables_and_its_peers_groups() -> None:
    """A spoke reads its own variables and the hubs group: not the other spokes, not the hub's variables."""
    check = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    hostvars = Recording({name: dict(values, group_names=["sites"]) for name, values in HUB_AND_SPOKES.items()})
    groups = Recording(HUB_GROUPS)
    hostvars["hub"]["group_names"] = ["hubs"]
    hostvars.read.clear()
    plan_host(hostvars, groups, "site5", check, **HUB_SETTINGS)
    assert (hostvars.read, groups.read) == ({"site5"}, {"hubs"})
    hostvars.read.clear()
    groups.read.clear()
    assert len(plan_host(hostvars, groups, "hub", check, **HUB_SETTINGS)["tunnels"]) == 7
    assert (hostvars.read, groups.read) == ({"hub"}, {"hubs", "sites"})


def test_a_host_without_links_reads_nothing() -> None:
    check = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    hostvars = Recording(HUB_AND_SPOKES, lonely={})
    whole = plan_mesh({**HUB_AND_SPOKES, "lonely": {}}, HUB_GROUPS, hosts=["lonely"], **HUB_SETTINGS)
    assert plan_host(hostvars, HUB_GROUPS, "lonely", check, **HUB_SETTINGS) == whole["hosts"]["lonely"]
    assert hostvars.read == set()


def test_a_spoke_behind_a_shared_address_gets_its_key_from_the_check() -> None:
    """Only the hub sees that site2 and site3 share an address; site2 learns its key from the check."""
    check = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    assert plan_host(HUB_AND_SPOKES, HUB_GROUPS, "site2", check, **HUB_SETTINGS)["tunnels"][0]["key"] == "2"


@pytest.mark.parametrize(
    ("check", "message"),
    [
        pytest.param(
            None,
            "gre_plan: check must be the result of linuxnet.gre.gre_plan_check over the whole inventory, run once "
            "before it with the same settings",
            id="no check",
        ),
        pytest.param(
            {"digest": "0", "nodes": {}, "keys": []},
            "gre_plan: check comes from linuxnet.gre.gre_plan_check with other settings; give both filters the same "
            "gre_mesh_* values",
            id="other settings",
        ),
    ],
)
def test_plan_host_needs_a_check_with_the_same_settings(check: t.Any, message: str) -> None:
    with pytest.raises(MeshError) as caught:
        plan_host(HUB_AND_SPOKES, HUB_GROUPS, "hub", check, **HUB_SETTINGS)
    assert str(caught.value) == message


def test_plan_host_with_a_check_of_another_inventory() -> None:
    check = check_mesh(HUB_AND_SPOKES, HUB_GROUPS, **HUB_SETTINGS)
    groups = {**HUB_GROUPS, "sites": [*HUB_GROUPS["sites"], "site9"]}
    with pytest.raises(MeshError) as caught:
        plan_host({**HUB_AND_SPOKES, "site9": plain("198.51.100.9")}, groups, "hub", check, **HUB_SETTINGS)
    assert str(caught.value) == (
        "gre_plan: check does not know 'site9'; the inventory changed since gre_plan_check ran, run it again"
    )


def test_plan_host_of_an_unknown_host() -> None:
    with pytest.raises(MeshError) as caught:
        plan_host(HUB_AND_SPOKES, HUB_GROUPS, "nohost", {}, **HUB_SETTINGS)
    assert str(caught.value) == "gre_plan: 'nohost' is not a host of the inventory"


def test_unknown_setting() -> None:
    with pytest.raises(MeshError) as caught:
        plan_mesh(PAIR, {"all": sorted(PAIR)}, pools="10.0.0.0/8")
    assert str(caught.value) == (
        "unknown setting 'pools'; the settings are links, full_mesh, hub_spoke, external_peers, pool, prefix, pool6, "
        "prefix6, mode, ttl, key, mtu, ipsec, encap, encap_port"
    )
