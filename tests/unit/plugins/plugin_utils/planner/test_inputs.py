# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The planner's inputs (issue 13): interface names in bytes, external peers' own interface names, and the
inputs that were accepted without a word or answered with a message that pointed the wrong way."""

from __future__ import annotations

import ipaddress
import pathlib
import typing as t

import jinja2
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.desired import interface_name_problem, name_bytes
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner import nodes
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import MeshError, Node
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.nodes import interface_name
from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.plan import check_mesh, plan_host

from .inventories import LINKED, PAIR, from_facts, pair_with_mtus, plain, plan, problem

ROLE = pathlib.Path(__file__).resolve().parents[5] / "roles" / "gre_mesh"


def names(result: dict[str, t.Any], host: str) -> list[str]:
    return [tunnel["name"] for tunnel in result["hosts"][host]["tunnels"]]


def node(short_name: str, node_id: int = 7) -> Node:
    return Node(
        name="n",
        external=False,
        node_id=node_id,
        id_source="gre_mesh_id",
        public=ipaddress.ip_address("192.0.2.1"),
        public_source="ansible_host",
        short_name=short_name,
    )


# 1. Interface names are counted in bytes.


@pytest.mark.parametrize(
    ("short_name", "node_id", "name"),
    [
        pytest.param("münchen-dc", 7, "gre-münchen-dc", id="15 bytes fit"),
        pytest.param("münchen-dc1", 1, "gre-münchen-1", id="15 characters, 16 bytes: cut"),
        pytest.param("ääääääääää", 7, "gre-ääää-7", id="never half a character"),
        pytest.param("東京データセンター", 7, "gre-東京デ-7", id="three bytes a character"),
        pytest.param("🙂🙂🙂🙂", 3, "gre-🙂🙂-3", id="four bytes a character"),
        pytest.param("customer-site-0017", 17, "gre-customer-17", id="ASCII as before"),
        pytest.param("a\ud800b", 7, "gre-a-b", id="a lone surrogate"),
    ],
)
def test_interface_names_are_cut_by_bytes(short_name: str, node_id: int, name: str) -> None:
    assert interface_name(node(short_name, node_id)) == name
    assert name_bytes(name) <= 15


@given(st.text(max_size=40), st.integers(0, 10**13))
def test_every_interface_name_is_one_the_kernel_takes(short_name: str, node_id: int) -> None:
    assert interface_name_problem(interface_name(node(short_name, node_id))) is None


def test_a_non_ascii_short_name_gives_its_peers_a_valid_name() -> None:
    hostvars = {**PAIR, "dc1": plain("192.0.2.1", gre_mesh_short_name="münchen-dc1", gre_mesh_id=5)}
    result = plan(hostvars, links=[["hosta", "dc1"], ["hostb", "dc1"]])
    assert names(result, "hosta") == names(result, "hostb") == ["gre-münchen-5"]


def test_a_name_that_fits_only_in_characters_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every planned name goes through the kernel's rule: a cut by characters would not pass."""
    monkeypatch.setattr(nodes, "interface_name", lambda node: ("gre-" + node.short_name)[:15])
    hostvars = {**PAIR, "dc1": plain("192.0.2.1", gre_mesh_short_name="münchen-dc1", gre_mesh_id=5)}
    assert problem(hostvars, links=[["hosta", "dc1"]]) == (
        "host dc1: gre_mesh_short_name: 'münchen-dc1' gives its peers the interface name 'gre-münchen-dc1', which "
        "is 16 bytes long in UTF-8 (15 characters); the kernel allows at most 15 bytes"
    )
    external = [{"name": "dc2", "address": "192.0.2.2", "short_name": "zürich-dc20", "id": 5}]
    assert problem(PAIR, links=[["hosta", "dc2"]], external_peers=external) == (
        "gre_mesh_external_peers[0].short_name: 'zürich-dc20' gives its peers the interface name 'gre-zürich-dc20', "
        "which is 16 bytes long in UTF-8 (15 characters); the kernel allows at most 15 bytes"
    )


# 2. External peers: grouped per peer, and their own interface names.

SEED_HOSTA = {"hosta": {"ansible_host": "203.0.113.1", "ansible_facts": {"default_ipv4": {"address": "10.128.0.11"}}}}
MIGRANT = {"name": "hostb", "address": "198.51.100.1", "interfaces": {"hosta": "gre1"}}


def test_the_seed_migrant_keeps_his_gre1() -> None:
    result = plan(SEED_HOSTA, links=[["hosta", "hostb"]], external_peers=[MIGRANT])
    assert result["external_peers"] == {
        "hostb": {
            "address": "198.51.100.1",
            "tunnels": [
                {
                    "name": "gre1",
                    "mode": "gre",
                    "local": "198.51.100.1",
                    "remote": "203.0.113.1",
                    "ttl": 255,
                    "addresses": ["10.0.0.2/30"],
                    "state": "present",
                    "routes": [],
                }
            ],
            "forward": [],
            "commands": [
                "ip link add name gre1 type gre remote 203.0.113.1 local 198.51.100.1 ttl 255 tos 0x00 pmtudisc",
                "ip link set dev gre1 up",
                "ip address add 10.0.0.2/30 dev gre1",
            ],
        }
    }
    # The managed side keeps naming its interface after the peer.
    assert names(result, "hosta") == ["gre-hostb"]


def test_only_the_named_tunnels_of_an_external_peer_change() -> None:
    external = [{"name": "dc1", "address": "192.0.2.50", "id": 9, "interfaces": {"hostb": "tun-b"}}]
    result = plan(PAIR, links=[["hosta", "dc1"], ["hostb", "dc1"]], external_peers=external)
    assert [tunnel["name"] for tunnel in result["external_peers"]["dc1"]["tunnels"]] == ["gre-hosta", "tun-b"]
    assert names(result, "hosta") == names(result, "hostb") == ["gre-dc1"]


def test_each_external_peer_has_its_own_block_with_its_address() -> None:
    external = [{"name": "dc1", "address": "198.51.100.250"}, {"name": "dc2", "address": "198.51.100.251"}]
    result = plan(PAIR, links=[["hosta", "dc1"], ["hosta", "dc2"]], external_peers=external)
    peers = result["external_peers"]
    assert {name: peer["address"] for name, peer in peers.items()} == {"dc1": "198.51.100.250", "dc2": "198.51.100.251"}
    assert [peer["commands"][0] for peer in peers.values()] == [
        "ip link add name gre-hosta type gre remote 203.0.113.1 local 198.51.100.250 ttl 255 tos 0x00 pmtudisc",
        "ip link add name gre-hosta type gre remote 203.0.113.1 local 198.51.100.251 ttl 255 tos 0x00 pmtudisc",
    ]
    assert (
        check_mesh(PAIR, {"all": sorted(PAIR)}, links=[["hosta", "dc1"], ["hosta", "dc2"]], external_peers=external)[
            "external_peers"
        ]
        == peers
    )


def test_the_role_shows_one_block_per_external_peer_headed_by_its_name_and_address() -> None:
    tasks = yaml.safe_load((ROLE / "tasks" / "plan.yml").read_text())
    (task,) = [task for task in tasks if task["name"] == "Show what to configure on the peers outside the inventory"]
    assert task["loop"] == "{{ __gre_mesh_plan.external_peers | dict2items }}"
    assert task["ansible.builtin.debug"]["msg"] == "{{ item.value.commands }}"
    item = {"key": "dc1", "value": {"address": "198.51.100.250", "commands": []}}
    label = jinja2.Environment().from_string(task["loop_control"]["label"]).render(item=item)
    assert label == "on external peer dc1 (198.51.100.250)"


def test_a_host_planned_alone_keeps_its_name_for_an_external_peer_with_own_names() -> None:
    settings: dict[str, t.Any] = {"links": [["hosta", "hostb"]], "external_peers": [MIGRANT]}
    groups = {"all": sorted(SEED_HOSTA)}
    check = check_mesh(SEED_HOSTA, groups, **settings)
    assert plan_host(SEED_HOSTA, groups, "hosta", check, **settings) == plan(SEED_HOSTA, **settings)["hosts"]["hosta"]


def peer_with(interfaces: t.Any, **extra: t.Any) -> dict[str, t.Any]:
    return {"name": "dc1", "address": "192.0.2.50", "id": 9, "interfaces": interfaces, **extra}


INTERFACE_ERRORS = [
    pytest.param(
        [peer_with("gre1")],
        "gre_mesh_external_peers[0].interfaces: must be a dict such as {hosta: gre1}: for an inventory host the peer "
        "links to, the name of the peer's interface to it; not 'gre1'",
        id="not a mapping",
    ),
    pytest.param(
        [peer_with({"hosta": "gre1", "hostz": "gre2"})],
        "gre_mesh_external_peers[0].interfaces: dc1 has no link with 'hostz'; the keys are the inventory hosts it "
        "links to (hosta, hostb)",
        id="a host without a link",
    ),
    pytest.param(
        [peer_with({"hosta": "gre-münchen-dc1"})],
        "gre_mesh_external_peers[0].interfaces.hosta: 'gre-münchen-dc1' is 16 bytes long in UTF-8 (15 characters); "
        "the kernel allows at most 15 bytes",
        id="too long in bytes",
    ),
    pytest.param(
        [peer_with({"hosta": "gre/1", "hostb": ""})],
        "gre_mesh_external_peers[0].interfaces.hosta: 'gre/1' must not be '.' or '..' nor contain '/', ':', '%' or "
        "whitespace\n"
        "gre_mesh_external_peers[0].interfaces.hostb: '' must not be empty",
        id="names the kernel refuses",
    ),
    pytest.param(
        [peer_with({"hosta": "gre0"})],
        "gre_mesh_external_peers[0].interfaces.hosta: 'gre0' is the fallback device the GRE kernel modules create "
        "for themselves; choose another name",
        id="a fallback device",
    ),
    pytest.param(
        [peer_with({"hosta": 1, 2: "gre2"})],
        "gre_mesh_external_peers[0].interfaces.hosta: 1 is not an interface name\n"
        "gre_mesh_external_peers[0].interfaces: 2 is not an inventory host name",
        id="not strings",
    ),
    pytest.param(
        [peer_with({"hosta": "gre1", "hostb": "gre1"})],
        "gre_mesh_external_peers[0].interfaces: hosta and hostb both get the interface name 'gre1'; each tunnel of "
        "the peer needs a name of its own",
        id="one name twice",
    ),
    pytest.param(
        [peer_with({"hosta": "gre-hostb"})],
        "gre_mesh_external_peers[0].interfaces.hosta: 'gre-hostb' is the name of its tunnel to hostb too; choose "
        "another name",
        id="the name of another of its tunnels",
    ),
    pytest.param(
        [
            peer_with({"hosta": "gre1", "hostc": "gre3"}),
            peer_with({"hostb": "gre2", "hosta": "gre-hostb"}, name="dc2", id=8),
        ],
        "gre_mesh_external_peers[0].interfaces: dc1 has no link with 'hostc'; the keys are the inventory hosts it "
        "links to (hosta, hostb)\n"
        "gre_mesh_external_peers[1].interfaces: dc2 has no link with 'hosta'; the keys are the inventory hosts it "
        "links to (hostb)",
        id="every peer's problems together",
    ),
]


@pytest.mark.parametrize(("external", "message"), INTERFACE_ERRORS)
def test_an_external_peers_own_interface_names_are_checked(external: list[dict[str, t.Any]], message: str) -> None:
    links = [["hosta", "dc1"], ["hostb", "dc1"], ["hostb", "dc2"]]
    external = [*external, *([{"name": "dc2", "address": "192.0.2.51", "id": 8}] if len(external) == 1 else [])]
    assert problem(PAIR, links=links, external_peers=external) == message
    with pytest.raises(MeshError) as caught:
        check_mesh(PAIR, {"all": sorted(PAIR)}, links=links, external_peers=external, plans=False)
    assert str(caught.value) == message


# 3. Inputs that were taken without a word, or answered pointing the wrong way.

CONTROL_NODE_FIX = (
    "a loopback address cannot be a GRE endpoint: link the managed host by its inventory name instead, or, if {0} "
    "really is a tunnel end, set gre_mesh_public to its real underlay address"
)

CONTROL_NODE = [
    pytest.param(
        "localhost",
        {"ansible_connection": "local"},
        "host localhost: gre_mesh_public: not set, and localhost is Ansible's control node; "
        + CONTROL_NODE_FIX.format("localhost"),
        id="localhost",
    ),
    pytest.param(
        "127.0.0.1",
        {},
        "host 127.0.0.1: gre_mesh_public: not set, and 127.0.0.1 is Ansible's control node; "
        + CONTROL_NODE_FIX.format("127.0.0.1"),
        id="a host named 127.0.0.1",
    ),
    pytest.param(
        "ctl",
        {"ansible_connection": "local"},
        "host ctl: gre_mesh_public: not set, and ctl is Ansible's control node (ansible_connection: local); "
        + CONTROL_NODE_FIX.format("ctl"),
        id="ansible_connection local",
    ),
    pytest.param(
        "box",
        {"ansible_host": "127.0.0.1"},
        "host box: gre_mesh_public: not set, and ansible_host '127.0.0.1' is a loopback address (Ansible's control "
        "node, or a port forwarded to box); " + CONTROL_NODE_FIX.format("box"),
        id="ansible_host 127.0.0.1",
    ),
]


@pytest.mark.parametrize(("name", "variables", "message"), CONTROL_NODE)
def test_a_link_to_the_control_node_says_so(name: str, variables: dict[str, t.Any], message: str) -> None:
    hostvars = {"hosta": PAIR["hosta"], name: variables}
    assert problem(hostvars, links=[["hosta", name]]) == message


def test_a_link_to_localhost_outside_the_inventory_says_so() -> None:
    assert problem(PAIR, links=[["hosta", "localhost"]]) == (
        "gre_mesh_links[0]: 'localhost' is Ansible's control node, not a host of the inventory, and a loopback "
        "address cannot be a GRE endpoint; link the managed host by its inventory name"
    )


def test_the_control_node_with_a_real_underlay_address_is_a_tunnel_end() -> None:
    hostvars = {"hosta": PAIR["hosta"], "localhost": {"ansible_connection": "local", **plain("192.0.2.9")}}
    hostvars["localhost"]["gre_mesh_public"] = hostvars["localhost"].pop("ansible_host")
    result = plan(hostvars, links=[["hosta", "localhost"]])
    assert result["hosts"]["hosta"]["tunnels"][0]["remote"] == "192.0.2.9"


ENDPOINT = "cannot be a GRE endpoint"
BAD_ADDRESSES = [
    pytest.param(
        "198.51.100.7/24",
        "'198.51.100.7/24' is an address with a prefix length; give the address alone: 198.51.100.7",
        id="prefix length",
    ),
    pytest.param(
        "hostb.example.com",
        "'hostb.example.com' is a name, and names are not resolved (the plan depends on the inventory alone); give an "
        "IP address",
        id="DNS name",
    ),
    pytest.param(
        "nosuchhost",
        "'nosuchhost' is a name, and names are not resolved (the plan depends on the inventory alone); give an IP "
        "address",
        id="unresolvable name",
    ),
    pytest.param("198.51.100", "'198.51.100' is not an IP address", id="not an address"),
    pytest.param(3325256705, "3325256705 is not an IP address", id="a number"),
    pytest.param(
        "127.0.0.1", f"'127.0.0.1' is a loopback address, which never leaves its host: it {ENDPOINT}", id="lo"
    ),
    pytest.param("127.1.2.3", f"'127.1.2.3' is a loopback address, which never leaves its host: it {ENDPOINT}", id="8"),
    pytest.param("0.0.0.0", f"'0.0.0.0' is the unspecified address, which {ENDPOINT}", id="unspecified"),
    pytest.param("224.0.0.5", f"'224.0.0.5' is a multicast address, which {ENDPOINT}", id="multicast"),
    pytest.param("255.255.255.255", f"'255.255.255.255' is the broadcast address, which {ENDPOINT}", id="broadcast"),
    pytest.param("240.0.0.1", f"'240.0.0.1' is in 240.0.0.0/4, reserved and not routed: it {ENDPOINT}", id="240/4"),
]
BAD_ADDRESSES6 = [
    pytest.param("::1", f"'::1' is a loopback address, which never leaves its host: it {ENDPOINT}", id="lo6"),
    pytest.param("::", f"'::' is the unspecified address, which {ENDPOINT}", id="unspecified6"),
    pytest.param("ff02::1", f"'ff02::1' is a multicast address, which {ENDPOINT}", id="multicast6"),
    pytest.param(
        "::ffff:198.51.100.7",
        "'::ffff:198.51.100.7' is an IPv4-mapped IPv6 address; give the IPv4 address 198.51.100.7 (modes gre, gretap)",
        id="IPv4-mapped",
    ),
    pytest.param(
        "fe80::7",
        "'fe80::7' is an IPv6 link-local address, which needs an interface (a zone) that a tunnel's end cannot carry; "
        "give a global or unique-local address",
        id="IPv6 link-local",
    ),
    pytest.param(
        "fe80::7%eth0",
        "'fe80::7%eth0' is an IPv6 link-local address, which needs an interface (a zone) that a tunnel's end cannot "
        "carry; give a global or unique-local address",
        id="IPv6 link-local with a zone",
    ),
    pytest.param(
        "2001:db8::7%eth0",
        "'2001:db8::7%eth0' has a zone index (%eth0), which a tunnel's end cannot carry; give the address alone",
        id="a zone",
    ),
]


@pytest.mark.parametrize(("value", "message"), BAD_ADDRESSES + BAD_ADDRESSES6)
def test_a_bad_public_address_is_named(value: t.Any, message: str) -> None:
    hostvars = {**PAIR, "hostb": {**PAIR["hostb"], "gre_mesh_public": value}}
    assert problem(hostvars, **LINKED) == f"host hostb: gre_mesh_public: {message}"


@pytest.mark.parametrize(("value", "message"), BAD_ADDRESSES)
def test_a_bad_local_address_is_named(value: t.Any, message: str) -> None:
    hostvars = {**PAIR, "hostb": {**PAIR["hostb"], "gre_mesh_local": value}}
    assert problem(hostvars, **LINKED) == f"host hostb: gre_mesh_local: {message}"


@pytest.mark.parametrize(("value", "message"), BAD_ADDRESSES)
@pytest.mark.parametrize("key", ["address", "local"])
def test_a_bad_external_address_is_named(key: str, value: t.Any, message: str) -> None:
    external = {"name": "dc1", "address": "192.0.2.50", key: value}
    assert problem(PAIR, links=[["hosta", "dc1"]], external_peers=[external]) == (
        f"gre_mesh_external_peers[0].{key}: {message}"
    )


def test_an_external_peer_without_an_address() -> None:
    assert problem(PAIR, links=[["hosta", "dc1"]], external_peers=[{"name": "dc1"}]) == (
        "gre_mesh_external_peers[0].address: not set; give the peer's underlay IP address"
    )


def test_a_bad_address_from_facts_is_named() -> None:
    hostvars = {**PAIR, "hostb": {"ansible_host": "198.51.100.1", "ansible_default_ipv4": {"address": "127.0.0.1"}}}
    assert problem(hostvars, **LINKED) == (
        "host hostb: gre_mesh_local: not set, and ansible_default_ipv4.address '127.0.0.1' is a loopback address, "
        f"which never leaves its host: it {ENDPOINT}; set gre_mesh_local to the address it sends from"
    )


LINK_LOCAL_FIX = (
    "is a link-local address, a management address that peers do not route to; set gre_mesh_public to the underlay "
    "address its peers send to"
)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param(
            {"ansible_host": "169.254.3.4", "gre_mesh_local": "10.1.0.2"},
            f"host hostb: gre_mesh_public: not set, and ansible_host '169.254.3.4' {LINK_LOCAL_FIX}",
            id="IPv4",
        ),
        pytest.param(
            {"ansible_host": "fe80::3", "gre_mesh_local": "10.1.0.2"},
            f"host hostb: gre_mesh_public: not set, and ansible_host 'fe80::3' {LINK_LOCAL_FIX}",
            id="IPv6",
        ),
    ],
)
def test_a_link_local_ansible_host_is_no_public_address(variables: dict[str, t.Any], message: str) -> None:
    assert problem({**PAIR, "hostb": variables}, **LINKED) == message


def test_an_explicit_ipv4_link_local_address_is_taken() -> None:
    """It works within one segment, and whoever sets it says so."""
    hostvars = {
        "hosta": {"gre_mesh_public": "169.254.10.1", "gre_mesh_local": "169.254.10.1"},
        "hostb": {"ansible_host": "169.254.20.2", "gre_mesh_public": "169.254.10.2", "gre_mesh_local": "169.254.10.2"},
    }
    result = plan(hostvars, **LINKED)
    assert (result["hosts"]["hosta"]["tunnels"][0]["remote"], result["hosts"]["hostb"]["tunnels"][0]["local"]) == (
        "169.254.10.2",
        "169.254.10.2",
    )
    external = [{"name": "dc1", "address": "169.254.10.3"}]
    assert plan(hostvars, links=[["hosta", "dc1"]], external_peers=external)["external_peers"]["dc1"]["address"] == (
        "169.254.10.3"
    )


INNER = "inner addresses must be ordinary unicast ones, choose another range"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(
            {"pool": "127.0.0.0/16"},
            f"gre_mesh_pool: 127.0.0.0/16 is in 127.0.0.0/8, the loopback range; {INNER}",
            id="loopback",
        ),
        pytest.param(
            {"pool": "169.254.0.0/16"},
            "gre_mesh_pool: 169.254.0.0/16 is in 169.254.0.0/16, the link-local range, where clouds keep their "
            f"metadata service (169.254.169.254); {INNER}",
            id="IPv4 link-local",
        ),
        pytest.param(
            {"pool": "224.0.0.0/16"},
            f"gre_mesh_pool: 224.0.0.0/16 is in 224.0.0.0/4, the multicast range; {INNER}",
            id="multicast",
        ),
        pytest.param(
            {"pool": "240.0.0.0/16"},
            f"gre_mesh_pool: 240.0.0.0/16 is in 240.0.0.0/4, the reserved range; {INNER}",
            id="reserved",
        ),
        pytest.param(
            {"pool": "0.0.0.0/0"},
            f"gre_mesh_pool: 0.0.0.0/0 overlaps 127.0.0.0/8, the loopback range; {INNER}",
            id="everything",
        ),
        pytest.param(
            {"pool6": "fe80::/64"},
            "gre_mesh_pool6: fe80::/64 is in fe80::/10, the link-local range, from which the kernel addresses every "
            f"interface itself; {INNER}",
            id="IPv6 link-local",
        ),
        pytest.param(
            {"pool6": "ff00::/64"},
            f"gre_mesh_pool6: ff00::/64 is in ff00::/8, the multicast range; {INNER}",
            id="IPv6 multicast",
        ),
        pytest.param(
            {"pool6": "::/64"},
            f"gre_mesh_pool6: ::/64 overlaps ::1/128, the loopback address; {INNER}",
            id="IPv6 loopback",
        ),
        pytest.param(
            {"links": [{"hosts": ["hosta", "hostb"], "subnet": "127.0.0.0/30"}]},
            f"gre_mesh_links[0].subnet: 127.0.0.0/30 is in 127.0.0.0/8, the loopback range; {INNER}",
            id="a link's subnet",
        ),
        pytest.param(
            {"links": [{"hosts": ["hosta", "hostb"], "subnet6": "fe80::/127"}]},
            "gre_mesh_links[0].subnet6: fe80::/127 is in fe80::/10, the link-local range, from which the kernel "
            f"addresses every interface itself; {INNER}",
            id="a link's subnet6",
        ),
    ],
)
def test_inner_ranges_that_are_not_ordinary_unicast_are_refused(settings: dict[str, t.Any], message: str) -> None:
    assert problem(PAIR, **{**LINKED, **settings}) == message


GROUPS = {"core": ["hosta", "hostb"], "edge": ["hosta"], "hubs": ["hosta"], "spokes": ["hostb"]}


@pytest.mark.parametrize(
    ("groups", "settings", "message"),
    [
        pytest.param(
            GROUPS,
            {"full_mesh": ["cores"]},
            "gre_mesh_full_mesh[0]: group 'cores' is not in the inventory; did you mean 'core'?",
            id="full mesh typo",
        ),
        pytest.param(
            GROUPS,
            {"hub_spoke": [{"hubs": "hub", "spokes": "spoke"}]},
            "gre_mesh_hub_spoke[0].hubs: group 'hub' is not in the inventory; did you mean 'hubs'?\n"
            "gre_mesh_hub_spoke[0].spokes: group 'spoke' is not in the inventory; did you mean 'spokes'?",
            id="hub and spoke typos",
        ),
        pytest.param(
            {"web1": [], "web2": [], "webs": []},
            {"full_mesh": ["web"]},
            "gre_mesh_full_mesh[0]: group 'web' is not in the inventory; did you mean 'webs' or 'web2' or 'web1'?",
            id="several close",
        ),
        pytest.param(
            GROUPS,
            {"full_mesh": ["datacenter"]},
            "gre_mesh_full_mesh[0]: group 'datacenter' is not in the inventory; its groups are all, core, edge, hubs, "
            "spokes",
            id="none close",
        ),
        pytest.param(
            {f"g{number:02d}": [] for number in range(14)},
            {"full_mesh": ["datacenter"]},
            "gre_mesh_full_mesh[0]: group 'datacenter' is not in the inventory; its groups are all, g00, g01, g02, "
            "g03, g04, g05, g06, g07, g08 and 5 more",
            id="many groups",
        ),
        pytest.param(
            GROUPS,
            {"full_mesh": [["core"]]},
            "gre_mesh_full_mesh[0]: group ['core'] is not in the inventory; its groups are all, core, edge, hubs, spokes",
            id="not a name",
        ),
    ],
)
def test_a_group_that_is_not_there_names_the_closest(
    groups: dict[str, list[str]], settings: dict[str, t.Any], message: str
) -> None:
    assert problem(PAIR, groups, **settings) == message


FIX = "or unset it to have the MTU follow the underlay"


@pytest.mark.parametrize(
    ("hostvars", "settings", "message"),
    [
        pytest.param(
            pair_with_mtus(9000, 1500),
            {"mtu": 9000},
            "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 9000 does not fit the underlay MTUs (host hosta: "
            "9000, ansible_default_ipv4.mtu; host hostb: 1500, ansible_default_ipv4.mtu): gre adds 24 bytes, so the "
            f"largest tunnel MTU that fits is 1476; lower gre_mesh_mtu, {FIX}",
            id="gre_mesh_mtu 9000 over 1500",
        ),
        pytest.param(
            pair_with_mtus(1500, 1500),
            {"links": [{"hosts": ["hosta", "hostb"], "mtu": 1476, "key": 5}]},
            "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_links[0].mtu: 1476 does not fit the underlay MTUs "
            "(host hosta: 1500, ansible_default_ipv4.mtu; host hostb: 1500, ansible_default_ipv4.mtu): gre with a key "
            f"adds 28 bytes, so the largest tunnel MTU that fits is 1472; lower gre_mesh_links[0].mtu, {FIX}",
            id="a link's own, with a key",
        ),
        pytest.param(
            {
                "hosta": from_facts("203.0.113.1", 1500),
                "hostb": from_facts("198.51.100.1", None, gre_mesh_underlay_mtu=1400),
            },
            {"mode": "gretap", "mtu": 1400},
            "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 1400 does not fit the underlay MTUs (host hosta: "
            "1500, ansible_default_ipv4.mtu; host hostb: 1400, gre_mesh_underlay_mtu): gretap adds 38 bytes, so the "
            f"largest tunnel MTU that fits is 1362; lower gre_mesh_mtu, {FIX}",
            id="gretap, gre_mesh_underlay_mtu",
        ),
        pytest.param(
            pair_with_mtus(9000, None),
            {"mtu": 9000},
            "link hosta <-> hostb (gre_mesh_links[0]): gre_mesh_mtu: 9000 does not fit the underlay MTUs (host hosta: "
            "9000, ansible_default_ipv4.mtu; host hostb: unknown): gre adds 24 bytes, so the largest tunnel MTU that "
            f"fits is 8976; lower gre_mesh_mtu, {FIX}",
            id="one end known",
        ),
        pytest.param(
            {"hosta": from_facts("203.0.113.1", 1500)},
            {
                "links": [{"hosts": ["hosta", "dc"], "mtu": 1450}],
                "external_peers": [{"name": "dc", "address": "198.51.100.250", "mtu": 1400}],
            },
            "link dc <-> hosta (gre_mesh_links[0]): gre_mesh_links[0].mtu: 1450 does not fit the underlay MTUs (host "
            "hosta: 1500, ansible_default_ipv4.mtu; external peer dc: 1400, gre_mesh_external_peers[0].mtu): gre adds "
            f"24 bytes, so the largest tunnel MTU that fits is 1376; lower gre_mesh_links[0].mtu, {FIX}",
            id="an external peer's mtu",
        ),
    ],
)
def test_a_given_mtu_must_fit_the_known_underlay(
    hostvars: dict[str, dict[str, t.Any]], settings: dict[str, t.Any], message: str
) -> None:
    settings = {**LINKED, **settings}
    assert problem(hostvars, **settings) == message


def test_an_automatic_key_counts_when_the_given_mtu_is_checked() -> None:
    """site2 and site3 share an address: their links to the hub get keys, and 4 bytes more overhead."""
    hostvars = {
        "hub": from_facts("203.0.113.1", 1500, gre_mesh_id=0),
        "site2": from_facts("198.51.100.1", 1500, gre_mesh_local="192.168.1.2"),
        "site3": from_facts("198.51.100.1", 1500, gre_mesh_local="192.168.1.3"),
    }
    message = problem(hostvars, links=[["hub", "site2"], ["hub", "site3"]], mtu=1476)
    assert message.splitlines()[0] == (
        "link hub <-> site2 (gre_mesh_links[0]): gre_mesh_mtu: 1476 does not fit the underlay MTUs (host hub: 1500, "
        "ansible_default_ipv4.mtu; host site2: 1500, ansible_default_ipv4.mtu): gre with a key adds 28 bytes, so the "
        f"largest tunnel MTU that fits is 1472; lower gre_mesh_mtu, {FIX}"
    )
    assert len(message.splitlines()) == 2


@pytest.mark.parametrize(
    ("hostvars", "mtu"),
    [
        pytest.param(pair_with_mtus(1500, 1500), 1476, id="exactly what fits"),
        pytest.param(pair_with_mtus(9000, 9000), 8976, id="jumbo frames"),
        pytest.param(pair_with_mtus(None, None), 9000, id="nothing known, nothing to check"),
    ],
)
def test_a_given_mtu_that_fits_is_taken(hostvars: dict[str, dict[str, t.Any]], mtu: int) -> None:
    result = plan(hostvars, **LINKED, mtu=mtu)
    assert [result["hosts"][name]["tunnels"][0]["mtu"] for name in ("hosta", "hostb")] == [mtu, mtu]
    check = check_mesh(hostvars, {"all": sorted(hostvars)}, **LINKED, mtu=mtu)
    assert plan_host(hostvars, {"all": sorted(hostvars)}, "hosta", check, **LINKED, mtu=mtu) == result["hosts"]["hosta"]
