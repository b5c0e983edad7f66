# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_tunnel's routes through main(), against the lab kernel's captured routes (fixtures/routes-*.json).

The routes go in the tunnels' one batch; the read stays one process; only routes with gre_tunnel's
protocol (250) are ever changed or deleted, and a route of someone else's to a listed prefix fails the run.
"""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import ROUTED_READ_COMMAND

from .conftest import BATCH, READ, answer, load, setup_step

ROUTED_READ = list(ROUTED_READ_COMMAND)
ROUTES = [{"prefix": "192.168.20.0/24", "via": "10.0.0.2"}, {"prefix": "2001:db8:20::/48"}]
ROUTED = {
    "name": "gre1",
    "local": "203.0.113.1",
    "remote": "198.51.100.1",
    "addresses": ["10.0.0.1/30", "2001:db8:ffff::1/64"],
    "routes": ROUTES,
}
ROUTED_LINES = [
    "link add name gre1 type gre remote 198.51.100.1 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc",
    'link set dev gre1 alias "managed-by: linuxnet.gre" up',
    "address add 10.0.0.1/30 dev gre1",
    "address add 2001:db8:ffff::1/64 dev gre1",
    "route add 192.168.20.0/24 via 10.0.0.2 dev gre1 proto 250 metric 0",
    "route add 2001:db8:20::/48 dev gre1 proto 250 metric 1024",
]
RETURNED = [
    {"prefix": "192.168.20.0/24", "via": "10.0.0.2", "metric": 0},
    {"prefix": "2001:db8:20::/48", "via": None, "metric": 1024},
]
DRIFT_LINES = [
    "route del 192.168.30.0/24 dev gre1 proto 250 metric 0",
    "route replace 192.168.20.0/24 via 10.0.0.2 dev gre1 proto 250 metric 0",
    "route add 2001:db8:20::/48 dev gre1 proto 250 metric 1024",
]


def routed_host(run, state):
    kernel = run.host(state)
    kernel.batch_answer = answer(setup_step("routes-managed", ROUTED_LINES))
    return kernel


def test_creates_the_tunnel_and_its_routes_with_one_read_and_one_batch(run):
    kernel = routed_host(run, "routes-fresh")
    result = run(ROUTED)
    assert kernel.calls == [ROUTED_READ, ["modprobe", "ip_gre"], BATCH]
    assert kernel.batch_lines == ROUTED_LINES
    assert result["changed"] is True
    assert result["changes"] == [{"name": "gre1", "action": "create", "fields": []}]
    assert result["tunnels"][0]["routes"] == RETURNED


def test_the_captured_routed_tunnel_is_what_the_module_creates():
    """routes-managed.json was set up with exactly the lines the module sends."""
    batches = [s for s in load("routes-managed")["setup"] if s.get("argv") == BATCH]
    assert batches[-1]["stdin"].splitlines() == ROUTED_LINES


@pytest.mark.parametrize("check_mode", [False, True])
def test_second_run_changes_nothing_and_only_reads_once(run, check_mode):
    kernel = routed_host(run, "routes-managed")
    result = run(ROUTED, check_mode=check_mode)
    assert kernel.calls == [ROUTED_READ]
    assert (result["changed"], result["commands"], result["changes"]) == (False, [], [])
    assert result["tunnels"][0]["routes"] == RETURNED


def test_drift_is_fixed_missing_changed_and_unwanted_routes_in_one_batch(run):
    kernel = routed_host(run, "routes-drift")
    result = run(ROUTED)
    assert kernel.calls == [ROUTED_READ, BATCH]
    assert kernel.batch_lines == DRIFT_LINES
    assert result["changes"] == [{"name": "gre1", "action": "update", "fields": ["routes"]}]
    assert result["commands"] == [f"ip {line}" for line in DRIFT_LINES]


def test_check_mode_predicts_the_drift_with_its_diff_and_runs_only_the_read(run):
    kernel = routed_host(run, "routes-drift")
    result = run(ROUTED, check_mode=True, diff=True)
    assert kernel.calls == [ROUTED_READ]
    assert result["changed"] is True
    assert result["commands"] == [f"ip {line}" for line in DRIFT_LINES]
    assert result["diff"]["before"]["gre1"]["routes"] == [
        {"prefix": "192.168.20.0/24", "via": None, "metric": 0},
        {"prefix": "192.168.30.0/24", "via": None, "metric": 0},
    ]
    assert result["diff"]["after"]["gre1"]["routes"] == RETURNED


def test_an_empty_list_removes_the_tunnel_s_routes(run):
    kernel = routed_host(run, "routes-managed")
    result = run(dict(ROUTED, routes=[]))
    assert kernel.batch_lines == [
        "route del 192.168.20.0/24 dev gre1 proto 250 metric 0",
        "route del 2001:db8:20::/48 dev gre1 proto 250 metric 1024",
    ]
    assert result["tunnels"][0]["routes"] == []


def test_without_the_option_routes_are_left_alone_and_not_read(run):
    kernel = routed_host(run, "routes-drift")
    result = run({k: v for k, v in ROUTED.items() if k != "routes"})
    assert (result["changed"], kernel.calls) == (False, [READ])
    assert "routes" not in result["tunnels"][0]


def test_a_recreated_tunnel_gets_all_its_routes_again(run):
    """The kernel deletes a device's routes with it: after `link del`, every route is added."""
    kernel = routed_host(run, "routes-managed")
    routes = [ROUTES[0], dict(ROUTES[1], via="2001:db8:ffff::2")]  # over gretap, every route needs via
    result = run(dict(ROUTED, mode="gretap", routes=routes))
    assert kernel.batch_lines[0] == "link del dev gre1"
    assert kernel.batch_lines[-2:] == [
        "route add 192.168.20.0/24 via 10.0.0.2 dev gre1 proto 250 metric 0",
        "route add 2001:db8:20::/48 via 2001:db8:ffff::2 dev gre1 proto 250 metric 1024",
    ]
    assert result["changes"] == [{"name": "gre1", "action": "recreate", "fields": ["mode"]}]


def test_a_route_made_by_someone_else_is_never_replaced(run):
    kernel = routed_host(run, "routes-foreign")
    result = run.fails(dict(ROUTED, addresses=["10.0.0.1/30"], routes=ROUTES[:1]))
    assert result["msg"] == (
        "tunnel 'gre1': routes: the host has a route to 192.168.20.0/24 that linuxnet.gre did not make "
        "(192.168.20.0/24 via 10.0.0.2 dev gre1 proto boot metric 0); it is never replaced or deleted: "
        "remove it, or leave this prefix out"
    )
    assert kernel.calls == [ROUTED_READ]


# The seed's gre1 and its route to hostb's LAN, both typed by hand (routes-by-hand.json), taken over.
SEED_TAKEN_OVER = {
    "name": "gre-hostb",
    "local": "203.0.113.1",
    "remote": "198.51.100.1",
    "addresses": ["10.0.0.1/30"],
    "routes": ROUTES[:1],
}


def test_adopt_takes_over_a_hand_made_tunnel_with_its_hand_made_route(run):
    """The hand-made route goes with the hand-made gre1 that adopt deletes first; the new tunnel gets the route."""
    kernel = run.host("routes-by-hand")
    result = run(dict(SEED_TAKEN_OVER, adopt=True))
    assert kernel.calls == [ROUTED_READ, BATCH]
    assert kernel.batch_lines == [
        "link del dev gre1",
        "link add name gre-hostb type gre remote 198.51.100.1 local 203.0.113.1 ttl 255 tos 0x00 pmtudisc",
        'link set dev gre-hostb alias "managed-by: linuxnet.gre" up',
        "address add 10.0.0.1/30 dev gre-hostb",
        "route add 192.168.20.0/24 via 10.0.0.2 dev gre-hostb proto 250 metric 0",
    ]
    assert result["changes"] == [{"name": "gre-hostb", "action": "adopt", "fields": [], "adopted": ["gre1"]}]


def test_without_adopt_the_hand_made_tunnel_is_named_before_its_route(run):
    kernel = run.host("routes-by-hand")
    result = run.fails(SEED_TAKEN_OVER)
    assert "gre1 was not created by linuxnet.gre: set adopt: true" in result["msg"]
    assert kernel.calls == [ROUTED_READ]


@pytest.mark.parametrize(
    "routes, msg",
    [
        ([{"prefix": "192.168.20.1/24"}], "prefix '192.168.20.1/24' is not a network (host bits set: 192.168.20.0/24)"),
        ([{"prefix": "192.168.20.1"}], "prefix '192.168.20.1' is not a network (for one host: 192.168.20.1/32)"),
        ([{"prefix": "nowhere"}], "prefix 'nowhere' is not a network"),
        (
            [{"prefix": "198.51.100.0/24"}],
            "prefix 198.51.100.0/24 holds the tunnel's underlay address 198.51.100.1: "
            "its GRE packets would be routed into the tunnel itself",
        ),
        (
            [{"prefix": "192.168.20.0/24", "via": "10.0.9.2"}],
            "via 10.0.9.2 (route to 192.168.20.0/24) is not another address of a subnet of the tunnel's addresses "
            "(10.0.0.1/30, 2001:db8:ffff::1/64)",
        ),
        (
            [{"prefix": "192.168.20.0/24", "via": "2001:db8:ffff::2"}],
            "via 2001:db8:ffff::2 is IPv6 but 192.168.20.0/24 is IPv4",
        ),
        (
            [{"prefix": "192.168.20.0/24", "metric": -1}],
            "metric -1 (route to 192.168.20.0/24) is outside 0..4294967295",
        ),
        (
            [{"prefix": "192.168.20.0/24"}, {"prefix": "192.168.20.0/24", "via": "10.0.0.2"}],
            "192.168.20.0/24 with metric 0 is listed twice",
        ),
    ],
)
def test_bad_routes_are_refused_before_any_command(run, routes, msg):
    kernel = routed_host(run, "routes-fresh")
    result = run.fails(dict(ROUTED, routes=routes))
    assert result["msg"] == f"tunnel 'gre1': routes: {msg}"
    assert kernel.calls == []


def test_a_route_listed_by_two_tunnels_is_refused(run):
    kernel = routed_host(run, "routes-fresh")
    other = dict(ROUTED, name="gre2", remote="198.51.100.2", addresses=["10.0.0.5/30"], routes=[ROUTES[1]])
    result = run.fails({"tunnels": [ROUTED, other]})
    assert result["msg"] == "tunnel 'gre2': routes: 2001:db8:20::/48 with metric 1024 is listed also by tunnel 'gre1'"
    assert kernel.calls == []


def test_routes_of_an_absent_tunnel_are_refused(run):
    kernel = routed_host(run, "routes-fresh")
    result = run.fails({"tunnels": [{"name": "gre1", "state": "absent", "routes": []}]})
    assert result["msg"] == "tunnel 'gre1': routes: only a tunnel with state present has routes (its routes go with it)"
    assert kernel.calls == []


def test_a_route_over_gretap_needs_a_next_hop(run):
    kernel = routed_host(run, "routes-fresh")
    result = run.fails(dict(ROUTED, mode="gretap", routes=[{"prefix": "192.168.20.0/24"}]))
    assert result["msg"] == (
        "tunnel 'gre1': routes: the route to 192.168.20.0/24 needs via (the inner address of the next hop) over "
        "gretap: without it the kernel would look for every destination on the tunnel's Ethernet"
    )
    assert kernel.calls == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_the_mark_is_found_by_number_when_the_host_names_the_protocol(run, check_mode):
    """With 250 named in rt_protos.d, ip prints the name; the read's third command filters by number."""
    kernel = routed_host(run, "routes-named-protocol")
    result = run(ROUTED, check_mode=check_mode)
    assert (result["changed"], kernel.calls) == (False, [ROUTED_READ])
    assert result["tunnels"][0]["routes"] == RETURNED
