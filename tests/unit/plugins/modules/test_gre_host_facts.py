# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole gre_host_facts module through main(), its commands answered from real-kernel captures.

fixtures/host/*.json were written by fixtures/host/capture.py on a lab guest: each holds every
command the module can run there with its exact answer. The packet filter part replays the reads
of the gre_firewall captures (fixtures/firewall/), and must see what gre_firewall saw.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils import _host_facts, _systemd
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import FORWARD_CONF as FORWARD_FILE
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import IPSEC_CONF
from ansible_collections.linuxnet.gre.plugins.module_utils._firewall_state import SETTINGS
from ansible_collections.linuxnet.gre.plugins.module_utils._firewalld import POLICY_FILE
from ansible_collections.linuxnet.gre.plugins.modules import gre_host_facts

from .conftest import FIXTURES, Replay, Seam, load

FIREWALL_READS = ("nft", "iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save")
LEGACY_SAVE = {
    "iptables-legacy-save": "/proc/net/ip_tables_names",
    "ip6tables-legacy-save": "/proc/net/ip6_tables_names",
}


class FakeHost(Replay):
    """A captured guest (fixtures/host/NAME.json): its commands and paths as captured."""

    def __init__(self, name: str) -> None:
        self.fixture = load(f"host/{name}")
        super().__init__(self.fixture["calls"], which=self.fixture["which"], exists=self.fixture["exists"])

    def firewall(self, name: str, index: int) -> dict[str, t.Any]:
        """Answer the packet filter reads of run ``index`` of fixtures/firewall/``name``; that run's record."""
        fixture = load(f"firewall/{name}")
        record = fixture["runs"][index]
        self.installed = {**self.installed, **fixture["which"]}
        # Captured with persist off (or before it existed): no boot unit settings on those hosts. firewalld's
        # policy file is there where its permanent policy was (firewall-cmd --permanent --info-policy answered).
        self.present[SETTINGS] = False
        self.present[POLICY_FILE] = "firewalld" in record.get("result", {}).get("diff", {}).get("before", {})
        for call in record["calls"]:
            if call["argv"][0] not in FIREWALL_READS or call["argv"][:2] == ["nft", "-j"]:
                break
            self.add(call)
            if call["argv"][0] in LEGACY_SAVE:
                # iptables-legacy-save prints exactly the tables /proc/net/ip*_tables_names lists (and
                # nothing when the file is missing): the file as the captured output shows it.
                tables = [line[1:] for line in call["stdout"].splitlines() if line.startswith("*")]
                self.add({"path": LEGACY_SAVE[call["argv"][0]], "text": "".join(f"{table}\n" for table in tables)})
        return record


@pytest.fixture
def facts(seam: Seam) -> t.Callable[..., dict[str, t.Any]]:
    def run(host: FakeHost, **args: t.Any) -> dict[str, t.Any]:
        seam.use(host)
        return seam.main(gre_host_facts.main, args, check_mode=True)

    return run


def eth1(fixture: dict[str, t.Any]) -> dict[str, t.Any]:
    links = json.loads(next(call for call in fixture["calls"] if call["argv"] == _host_facts.ADDRESSES)["stdout"])
    return next(link for link in links if link["ifname"] == "eth1")


def test_the_ipv4_default_route_gives_setups_default_ipv4(facts):
    host = FakeHost("default4")
    result = facts(host, default_routes=[4])
    assert result["changed"] is False
    assert result["ansible_facts"]["default_ipv4"] == {
        "address": "203.0.113.1",
        "prefix": "24",
        "netmask": "255.255.255.0",
        "network": "203.0.113.0",
        "gateway": "203.0.113.254",
        "interface": "eth1",
        "mtu": 1500,
        "macaddress": eth1(host.fixture)["address"],
        "type": "ether",
    }
    assert "default_ipv6" not in result["ansible_facts"]
    assert host.calls == [_host_facts.BATCH, _systemd.SYSTEMCTL]


def test_both_versions_take_the_primary_address_and_the_interfaces_mtu(facts):
    result = facts(FakeHost("dual-stack"), default_routes=[6, 4])
    v4, v6 = result["ansible_facts"]["default_ipv4"], result["ansible_facts"]["default_ipv6"]
    assert (v4["address"], v4["mtu"]) == ("203.0.113.1", 1400)  # not the secondary 203.0.113.7
    assert v6 == {
        "address": "2001:db8:1::1",
        "prefix": "64",
        "scope": "global",
        "gateway": "2001:db8:1::fe",
        "interface": "eth1",
        "mtu": 1400,
        "macaddress": v4["macaddress"],
        "type": "ether",
    }


def test_a_route_that_names_its_source_address_gives_that_address(facts):
    result = facts(FakeHost("prefsrc"), default_routes=[4])
    assert result["ansible_facts"]["default_ipv4"]["address"] == "203.0.113.7"


def test_ipv4_route_and_addresses_are_one_process_and_ipv6_adds_one(facts):
    """Read with -json, they also prove ip iproute2's: no process of the tools check besides them."""
    host = FakeHost("dual-stack")
    facts(host, default_routes=[4, 6])
    assert host.calls == [_host_facts.BATCH, _host_facts.ROUTES6, _systemd.SYSTEMCTL]


def test_ipv6_alone_reads_the_addresses_after_its_route(facts):
    host = FakeHost("dual-stack")
    result = facts(host, default_routes=[6])
    assert result["ansible_facts"]["default_ipv6"]["address"] == "2001:db8:1::1"
    assert host.calls == [_host_facts.ROUTES6, _host_facts.ADDRESSES, _systemd.SYSTEMCTL]


def test_no_default_route_no_fact_and_no_address_read(facts):
    host = FakeHost("no-default")
    result = facts(host, default_routes=[6])
    assert set(result["ansible_facts"]) == {"linuxnet_gre"}
    assert _host_facts.ADDRESSES not in host.calls
    assert set(facts(FakeHost("no-default"), default_routes=[4, 6])["ansible_facts"]) == {"linuxnet_gre"}


def test_without_default_routes_asked_for_only_the_tools_check_runs_ip(facts):
    host = FakeHost("default4")
    result = facts(host)
    assert set(result["ansible_facts"]) == {"linuxnet_gre"}
    assert host.calls == [_host_facts.IP_CHECK, _systemd.SYSTEMCTL]


def kernel(name: str, host: FakeHost | None = None) -> FakeHost:
    """A captured guest whose kernel is fixtures/tools/kernel-config.json's ``name`` (uml, cloud): its two reads."""
    host = host or FakeHost("default4")
    host.add(*load("tools/kernel-config")["kernels"][name]["calls"])
    return host


def test_a_kernel_built_without_gre_in_udp_is_named_with_its_configuration(facts):
    """The lab's UML kernel: the fou module loads there, but `ip link add ... encap fou` fails with Invalid argument."""
    tools = facts(kernel("uml"), encap=True)["ansible_facts"]["linuxnet_gre"]["tools"]
    assert tools["encap"] == (
        "this kernel (6.1.176) cannot carry GRE in UDP: it was built without CONFIG_NET_FOU_IP_TUNNELS "
        "(/boot/config-6.1.176), and refuses a tunnel's encap"
    )


def test_debians_cloud_kernel_carries_gre_in_udp(facts):
    host = kernel("cloud")
    assert facts(host, encap=True)["ansible_facts"]["linuxnet_gre"]["tools"]["encap"] is None
    assert [call["path"] for call in host.log if "path" in call] == [
        "/proc/sys/kernel/osrelease",
        "/boot/config-6.1.0-50-cloud-amd64",
    ]


def test_without_a_configuration_to_read_nothing_is_claimed(facts):
    """No /boot/config-RELEASE (a kernel installed otherwise): unknown is not a problem; creating the tunnel tells."""
    host = FakeHost("default4")
    host.add({"path": _host_facts.OSRELEASE, "text": "6.1.176\n"}, {"path": "/boot/config-6.1.176", "text": None})
    assert facts(host, encap=True)["ansible_facts"]["linuxnet_gre"]["tools"]["encap"] is None


def test_the_kernel_configuration_is_read_only_when_asked(facts):
    host = kernel("uml")
    assert "encap" not in facts(host)["ansible_facts"]["linuxnet_gre"]["tools"]
    assert not [call for call in host.log if "path" in call]


@pytest.mark.parametrize(
    ("name", "networkd"),
    [("no-default", False), ("networkd", True)],
)
def test_systemd_networkd_and_udevd_as_systemctl_shows_them(facts, name, networkd):
    own = facts(FakeHost(name))["ansible_facts"]["linuxnet_gre"]
    assert own == {
        "systemd": True,
        "networkd_active": networkd,
        "networkd_enabled": networkd,
        "udevd_active": True,
        "dbus": False,
        # Read only where networkd and udevd run (systemctl --version); it decides nothing elsewhere.
        "systemd_version": 252 if networkd else None,
        # ip is iproute2's, modprobe is installed (the GRE modules are not loaded on the guest).
        "tools": {"ip": None, "modprobe": {"gre": None, "gretap": None, "ip6gre": None, "ip6gretap": None}},
        # gre_tunnel's own decision on these services (module_utils/_systemd.persistence).
        "persist": {
            "auto": "networkd" if networkd else "unit",
            "problems": {"unit": None, "networkd": None if networkd else _systemd.PERSIST_PROBLEMS["networkd"]},
        },
        # Neither the sysctl.d file of gre_forward nor the role's swanctl file on a fresh guest.
        "files": {"forward": False, "ipsec": False},
    }


def test_without_systemd_systemctl_is_not_asked(facts):
    host = FakeHost("default4")
    host.present["/run/systemd/system"] = False
    own = facts(host)["ansible_facts"]["linuxnet_gre"]
    assert host.calls == [_host_facts.IP_CHECK]
    assert not any(own[key] for key in ("systemd", "networkd_active", "networkd_enabled", "udevd_active"))


RUNS_WITH_A_BEFORE = [
    (path.stem, index)
    for path in sorted((FIXTURES / "firewall").glob("*.json"))
    for index, run in enumerate(json.loads(path.read_text())["runs"])
    if "diff" in run.get("result", {})
]


@pytest.mark.parametrize(("name", "index"), RUNS_WITH_A_BEFORE)
def test_the_firewall_as_gre_firewall_sees_it(facts, name, index):
    host = FakeHost("default4")
    record = host.firewall(name, index)
    firewall = facts(host, firewall=True)["ansible_facts"]["linuxnet_gre"]["firewall"]
    backends, nftables = USABLE[name.split("-", 1)[0]]
    assert firewall == {
        "filtered_by": record["result"]["filtered_by"],
        "managed": bool(record["result"]["diff"]["before"]),
        "backends": backends,
        "nftables": firewall["nftables"],
    }
    assert firewall["nftables"].startswith(nftables)


@pytest.mark.parametrize("path", [SETTINGS, POLICY_FILE], ids=["boot unit settings", "firewalld policy"])
def test_a_host_with_files_of_gre_firewall_is_managed_even_with_no_rule_in_the_kernel(facts, path):
    """gre_firewall's boot unit would put its rules back, and firewalld loads the policy linuxnet-gre from its
    files: the role must call gre_firewall, to remove them or keep them."""
    host = FakeHost("default4")
    host.firewall("legacy-open", 0)
    host.present[path] = True
    firewall = facts(host, firewall=True)["ansible_facts"]["linuxnet_gre"]["firewall"]
    assert firewall["filtered_by"] == [] and firewall["managed"] is True


# What works on each kind of captured host (fixtures/firewall/README.md): the lab guest's kernel has no
# nf_tables family for nft (legacy-*); the namespace has both (nft-*); no-nft-* hides nft, and its
# iptables-nft tools are then the iptables backend.
USABLE = {
    "legacy": (["iptables"], "Error: Could not process rule: Operation not supported"),
    "nft": (["nftables", "iptables"], "works"),
    "no": (["iptables"], "nft is not installed"),
    "firewalld": (["iptables"], "Error: Could not process rule: Operation not supported"),  # the lab kernel too
}


@pytest.mark.parametrize(
    ("name", "index", "saves"),
    [
        ("nft-open", 0, []),
        ("nft-with-legacy", 0, ["iptables-legacy-save"]),
        ("legacy-open", 0, ["iptables-legacy-save", "ip6tables-legacy-save"]),
    ],
)
def test_iptables_legacy_save_runs_only_where_its_filter_table_is_loaded(facts, name, index, saves):
    host = FakeHost("default4")
    host.firewall(name, index)
    facts(host, firewall=True)
    assert [argv[0] for argv in host.calls if argv[0] in LEGACY_SAVE] == saves


def test_both_firewall_cases_are_covered():
    seen = set()
    for name, index in RUNS_WITH_A_BEFORE:
        result = load(f"firewall/{name}")["runs"][index]["result"]
        seen.add((bool(result["filtered_by"]), bool(result["diff"]["before"])))
    assert {(False, False), (True, False), (True, True)} <= seen


def test_a_failing_command_is_named(facts):
    host = FakeHost("default4")
    host.add(
        {
            "argv": _host_facts.ROUTES6,
            "stdin": None,
            "rc": 1,
            "stdout": "",
            "stderr": "Cannot open netlink socket: Permission denied\n",
        },
        first=True,
    )
    result = facts(host, default_routes=[6])
    assert result["failed"] is True
    assert result["msg"] == "ip -json -6 route show default failed: Cannot open netlink socket: Permission denied"


def test_bad_versions_are_refused_before_anything_runs(facts):
    host = FakeHost("default4")
    result = facts(host, default_routes=[5])
    assert result["failed"] is True
    assert "default_routes" in result["msg"]
    assert host.calls == []


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({}, {"forward": False, "ipsec": False}),
        ({FORWARD_FILE: True}, {"forward": True, "ipsec": False}),
        ({IPSEC_CONF: True}, {"forward": False, "ipsec": True}),
    ],
)
def test_files_say_whether_the_forward_and_ipsec_steps_have_anything_to_undo(facts, present, expected):
    host = FakeHost("default4")
    host.present.update(present)
    own = facts(host)["ansible_facts"]["linuxnet_gre"]
    assert own["files"] == expected
    # Looked up as paths, no process of their own.
    assert host.calls == [_host_facts.IP_CHECK, _systemd.SYSTEMCTL]
