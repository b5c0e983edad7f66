# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure functions of the gre_tunnel helpers: input parsing, reading ip's JSON, planning."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.linuxnet.gre.plugins.module_utils._host import GreError
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import changes as planner
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import desired, kernel
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import Interface, Tunnel, Wanted
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.spec import defaults

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "modules" / "fixtures"


def captured(name: str) -> dict[str, Interface]:
    """The interfaces of a host state captured from the lab's kernel (its read; in the older format, its stdout)."""
    capture = json.loads((FIXTURES / f"{name}.json").read_text())
    read = next((call for call in capture.get("calls", []) if call["argv"] == kernel.READ_COMMAND), capture)
    return kernel.parse_interfaces(json.loads(read["stdout"]))


GRE1 = Tunnel(name="gre1", mode="gre", remote="198.51.100.1", local="203.0.113.1", addresses=("10.0.0.1/30",))


# --- parsing the user's input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0),
        ("42", 42),
        ("4294967295", 4294967295),
        ("0.0.0.42", 42),
        ("1.2.3.4", 16909060),
        ("255.255.255.255", 4294967295),
    ],
)
def test_parse_key_accepts_numbers_and_dotted_quads(value, expected):
    assert desired.parse_key("t", "key", value) == expected


@pytest.mark.parametrize("value", ["4294967296", "-1", "", "0x10", "1.2.3", "1.2.3.256", "one"])
def test_parse_key_refuses(value):
    with pytest.raises(GreError, match=r"^tunnel 't': key: "):
        desired.parse_key("t", "key", value)


@pytest.mark.parametrize(
    "value, expected", [("0", "0x00"), ("16", "0x10"), ("0x10", "0x10"), ("255", "0xff"), ("inherit", "inherit")]
)
def test_parse_tos(value, expected):
    assert desired.parse_tos("t", value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1/30",
        "10.0.0.2/30",
        "10.0.0.0/31",
        "10.0.0.1/31",
        "10.0.0.0/32",
        "2001:db8::/127",
        "2001:db8::1/128",
        "fe80::1/64",
    ],
)
def test_interface_addresses_are_accepted(value):
    assert str(desired.parse_address("t", value)) == value


@pytest.mark.parametrize(
    "value", ["10.0.0.0/30", "10.0.0.3/30", "10.0.0.0/24", "10.0.0.255/24", "2001:db8::/64", "2001:db8::/126"]
)
def test_network_and_broadcast_addresses_are_refused(value):
    with pytest.raises(GreError, match=r"is the (network|broadcast) address of"):
        desired.parse_address("t", value)


@pytest.mark.parametrize("name", ["gre1", "g", "a" * 15, "gre-to_b.1", "GRE"])
def test_good_names(name):
    desired.check_name(name)


@pytest.mark.parametrize(
    "name", ["", "a" * 16, ".", "..", "a/b", "a b", "a\tb", "a:b", "gre0", "gretap0", "erspan0", "ip6gre0"]
)
def test_bad_names(name):
    with pytest.raises(GreError, match=r": name: "):
        desired.check_name(name)


@pytest.mark.parametrize(
    "name, problem",
    [
        ("gre\ud800", "is not text that UTF-8 can encode"),
        ("a%d", "must not be '.' or '..' nor contain '/', ':', '%' or whitespace"),
        ("a\u00a0b", "must not be '.' or '..' nor contain '/', ':', '%' or whitespace"),
        ("gre-münchen-dc1", "is 16 bytes long in UTF-8 (15 characters); the kernel allows at most 15 bytes"),
    ],
)
def test_the_one_interface_name_rule(name, problem):
    """The rule gre_tunnel, its dev option and the planner's names share; a lone surrogate is a problem, not a crash."""
    assert desired.interface_name_problem(name) == problem
    assert desired.tunnel_name_problem(name) == problem
    with pytest.raises(desired.TunnelError) as caught:
        desired.check_name(name)
    assert (caught.value.tunnel, caught.value.field, caught.value.problem) == (name, "name", problem)


def test_a_tunnel_error_names_the_tunnel_and_the_option_in_its_message_and_its_details():
    """The planner takes ``problem``; run_module gives the details to fail_json as before."""
    with pytest.raises(desired.TunnelError) as caught:
        desired.parse_mtu("t", 70000, [], "gre", keyed=False)
    error = caught.value
    assert isinstance(error, GreError)
    assert error.problem == "70000 is outside 68..65535"
    assert error.msg == "tunnel 't': mtu: 70000 is outside 68..65535"
    assert error.details == {"tunnel": "t", "field": "mtu"}


def test_addresses_are_normalized_and_sorted():
    entry = {
        **defaults(),
        "name": "t",
        "remote": "198.51.100.1",
        "addresses": ["2001:DB8::0:1/64", "10.0.0.9/30", "10.0.0.1/30", "10.0.0.1/30", "10.0.0.1/255.255.255.252"],
    }
    tunnel = desired.wanted_tunnel(entry)
    assert isinstance(tunnel, Tunnel)
    assert tunnel.addresses == ("10.0.0.1/30", "10.0.0.9/30", "2001:db8::1/64")
    assert tunnel.pmtudisc is True


# --- reading ip -details -json address show -------------------------------------------------------


def test_reads_the_managed_seed_tunnel():
    iface = captured("managed-gre1")["gre1"]
    assert iface.managed and iface.is_gre
    assert iface.tunnel == dataclasses.replace(GRE1, mtu=1476)
    assert iface.link_local == ("fe80::200:5efe:cb00:7101/64",)


def test_reads_the_ip6gre_tunnel():
    iface = captured("managed-ip6gre")["gre6a"]
    assert iface.tunnel == Tunnel(
        name="gre6a",
        mode="ip6gre",
        remote="2001:db8:2::1",
        local="2001:db8:1::1",
        ttl=255,
        tos="0x00",
        ikey=42,
        okey=42,
        pmtudisc=None,
        mtu=1400,
        dev=None,
        addresses=("10.0.1.1/31", "2001:db8:ffff::1/127"),
    )


@pytest.mark.parametrize(
    "state, field, value",
    [
        ("drift-remote", "remote", "198.51.100.9"),
        ("drift-local", "local", "203.0.113.7"),
        ("drift-key", "ikey", 5),
        ("drift-key", "okey", 5),
        ("drift-ttl", "ttl", 64),
        ("drift-tos", "tos", "inherit"),
        ("drift-pmtudisc", "pmtudisc", False),
        ("drift-pmtudisc", "ttl", 0),
        ("drift-mtu", "mtu", 1400),
        ("drift-addresses", "addresses", ("10.9.9.1/24", "2001:db8:ffff::1/64")),
        ("drift-down", "up", False),
        ("drift-dev", "dev", "eth1"),
        ("managed-gretap", "mode", "gretap"),
        ("managed-keyed", "dev", "eth1"),
    ],
)
def test_reads_each_drifted_setting(state, field, value):
    assert getattr(captured(state)["gre1"].tunnel, field) == value


def test_reads_other_interfaces_without_a_tunnel():
    interfaces = captured("managed-set")
    assert (interfaces["tun-x"].kind, interfaces["tun-x"].is_gre) == ("dummy", False)
    assert (interfaces["eth1"].kind, interfaces["eth1"].is_gre) == (None, False)
    assert (interfaces["gre-hand"].managed, interfaces["gre-hand"].is_gre) == (False, True)
    assert interfaces["erspan0"].is_gre is False
    assert interfaces["gre-old"].managed is True


def test_keeps_the_kernel_order_of_addresses():
    iface = captured("secondary-addresses")["gre1"]
    assert iface.address_order[:2] == ("10.0.0.1/24", "10.0.0.5/24")


# --- planning -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, recreate",
    [
        ({"remote": "198.51.100.9"}, False),
        ({"local": "203.0.113.9"}, False),
        ({"local": None}, False),
        ({"ttl": 64}, False),
        ({"tos": "inherit"}, False),
        ({"ikey": 1, "okey": 1}, False),
        ({"pmtudisc": False, "ttl": 0}, False),
        ({"dev": "eth1"}, False),
        ({"mtu": 1400}, False),
        ({"addresses": ()}, False),
        ({"mode": "gretap"}, True),
    ],
)
def test_what_changes_in_place_from_a_plain_tunnel(change, recreate):
    assert planner.needs_recreate(GRE1, dataclasses.replace(GRE1, **change)) is recreate


@pytest.mark.parametrize(
    "current, recreate",
    [
        ({"ikey": 5, "okey": 5}, True),
        ({"ikey": 5}, True),
        ({"okey": 5}, True),
        ({"dev": "eth1"}, True),
        ({"mode": "gretap"}, True),
        ({"remote": "any"}, True),
    ],
)
def test_dropping_a_key_or_the_dev_needs_a_new_interface(current, recreate):
    assert planner.needs_recreate(dataclasses.replace(GRE1, **current), GRE1) is recreate


@pytest.mark.parametrize(
    "tunnel, fields, words",
    [
        (GRE1, ["local", "remote"], ["local", "203.0.113.1", "remote", "198.51.100.1"]),
        (dataclasses.replace(GRE1, local=None), ["local"], ["local", "any"]),
        (dataclasses.replace(GRE1, tos="inherit"), ["tos"], ["tos", "inherit"]),
        (dataclasses.replace(GRE1, mode="ip6gre", tos="0x10", pmtudisc=None), ["tos", "pmtudisc"], ["tclass", "0x10"]),
        (dataclasses.replace(GRE1, pmtudisc=False, ttl=0), ["ttl", "pmtudisc"], ["ttl", "0", "nopmtudisc"]),
        (dataclasses.replace(GRE1, ikey=1, okey=2), ["ikey", "okey"], ["ikey", "1", "okey", "2"]),
        (dataclasses.replace(GRE1, dev="eth1"), ["dev"], ["dev", "eth1"]),
    ],
)
def test_tunnel_words(tunnel, fields, words):
    assert planner.tunnel_words(tunnel, fields) == words


def iface_with(order):
    return Interface(name="gre1", kind="gre", managed=True, address_order=tuple(order))


@pytest.mark.parametrize(
    "order, wanted, deletions, additions",
    [
        (["10.0.0.1/30"], ["10.0.0.1/30"], [], []),
        ([], ["10.0.0.1/30"], [], ["10.0.0.1/30"]),
        (["10.0.0.1/30"], [], ["10.0.0.1/30"], []),
        (["10.0.0.1/30"], ["10.0.0.1/29"], ["10.0.0.1/30"], ["10.0.0.1/29"]),
        # A secondary goes: the primary is deleted and added again (deleting it would not hurt, but
        # the kernel order is what we know; secondaries first, then the primary).
        (["10.0.0.1/24", "10.0.0.5/24"], ["10.0.0.1/24"], ["10.0.0.5/24", "10.0.0.1/24"], ["10.0.0.1/24"]),
        # The primary goes: its secondary is deleted first and added back.
        (["10.0.0.1/24", "10.0.0.5/24"], ["10.0.0.5/24"], ["10.0.0.5/24", "10.0.0.1/24"], ["10.0.0.5/24"]),
        # Other subnets and IPv6 are untouched.
        (["10.0.0.1/24", "10.1.0.1/24", "2001:db8::1/64"], ["10.1.0.1/24", "2001:db8::1/64"], ["10.0.0.1/24"], []),
        (["2001:db8::1/64", "2001:db8::2/64"], ["2001:db8::2/64"], ["2001:db8::1/64"], []),
    ],
)
def test_address_steps(order, wanted, deletions, additions):
    current = tuple(desired.sort_addresses(order))
    assert planner.address_steps(iface_with(order), current, desired.sort_addresses(wanted)) == (deletions, additions)


def test_plan_orders_deletions_updates_creations_then_addresses():
    interfaces = captured("managed-set")
    wanted: list[Wanted] = [
        Tunnel(
            name="gre-b", mode="gre", remote="198.51.100.1", local="203.0.113.1", ttl=64, addresses=("10.0.0.2/30",)
        ),
        Tunnel(name="gre-n", mode="gre", remote="198.51.100.8", local="203.0.113.1", addresses=("10.0.0.13/30",)),
    ]
    plan = planner.plan(wanted, interfaces, purge=True)
    assert [line for _name, line in plan.steps] == [
        "link del dev gre-c",
        "link del dev gre-old",
        "link set dev gre-b type gre ttl 64",
        "link add name gre-n type gre remote 198.51.100.8 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc",
        'link set dev gre-n alias "managed-by: linuxnet.gre" up',
        "address del 10.0.0.1/30 dev gre-b",
        "address add 10.0.0.2/30 dev gre-b",
        "address add 10.0.0.13/30 dev gre-n",
    ]
    assert [name for name, _line in plan.steps] == [
        "gre-c",
        "gre-old",
        "gre-b",
        "gre-n",
        "gre-n",
        "gre-b",
        "gre-b",
        "gre-n",
    ]
    assert plan.modules == ["ip_gre"]


def test_twin_key_tells_tunnels_apart_as_the_kernel_does():
    assert desired.twin_key(GRE1) == desired.twin_key(dataclasses.replace(GRE1, name="x", ttl=1, addresses=()))
    for change in ({"mode": "gretap"}, {"local": None}, {"dev": "eth1"}, {"ikey": 0}, {"remote": "198.51.100.2"}):
        assert desired.twin_key(GRE1) != desired.twin_key(dataclasses.replace(GRE1, **change))
    # Only the input key matters: the kernel looks tunnels up by what arrives.
    assert desired.twin_key(GRE1) == desired.twin_key(dataclasses.replace(GRE1, okey=9))


# --- address_steps against a model of the kernel's primary/secondary rule -------------------------

POOL = ["10.0.0.1/24", "10.0.0.5/24", "10.0.0.9/24", "10.0.0.1/30", "10.1.0.1/24", "2001:db8::1/64", "2001:db8::2/64"]


def kernel_apply(order: list[str], deletions: list[str], additions: list[str]) -> list[str]:
    """IPv4 as the kernel does it without promote_secondaries: deleting a subnet's primary (its
    first address) deletes the subnet's secondaries too. Deleting a missing address fails."""
    addresses = list(order)
    for address in deletions:
        assert address in addresses, f"address del {address} would fail"
        network = planner.ipv4_network(address)
        same = [a for a in addresses if network is not None and planner.ipv4_network(a) == network]
        addresses = [a for a in addresses if a not in same] if same and same[0] == address else addresses
        if address in addresses:
            addresses.remove(address)
    return addresses + [a for a in additions if a not in addresses]


@given(
    order=st.lists(st.sampled_from(POOL), unique=True),
    wanted=st.lists(st.sampled_from(POOL), unique=True),
)
def test_address_steps_reach_the_wanted_addresses_on_the_kernel(order, wanted):
    current = desired.sort_addresses(order)
    wanted_sorted = desired.sort_addresses(wanted)
    deletions, additions = planner.address_steps(iface_with(order), current, wanted_sorted)
    assert sorted(kernel_apply(order, deletions, additions)) == sorted(wanted_sorted)
    if set(order) == set(wanted):
        assert (deletions, additions) == ([], [])
