"""Routed sites on one boot of the lab: devices on three LANs reach each other through the gateways' tunnels.

converge ran site.yml (full mesh of gw1..gw3, each with its LAN in gre_mesh_networks); lan1..lan3 are plain
lab hosts, in no GRE group, left out of every run (--limit 'all:!lans'), whose only configuration is an
address and a default route via their gateway. The router between the gateways knows no LAN.

The tests run in file order and build on each other: pings and the router's capture, a TCP transfer, a
network taken out of the inventory and put back, --check --diff, the hub-and-spoke variant, a real reboot of
the hub.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Callable
from itertools import permutations
from pathlib import Path
from typing import Any

import pytest
from conftest import playbook, recap

GATEWAYS = ["gw1", "gw2", "gw3"]
# Each LAN host, its gateway and the network behind that gateway (molecule.yml's host_vars).
SITES = {"lan1": ("gw1", "198.51.100.0/27"), "lan2": ("gw2", "198.51.100.32/27"), "lan3": ("gw3", "198.51.100.64/27")}
PAIRS = list(permutations(sorted(SITES), 2))
# Every run of site.yml from the tests, like converge: the LAN hosts are devices, not managed hosts.
NOT_LANS = ("--limit", "all:!lans")
ROUTE_PROTOCOL = "250"  # gre_tunnel's mark on the routes it makes
HUB_SPOKE = json.dumps({"gre_mesh_full_mesh": [], "gre_mesh_hub_spoke": [{"hubs": "hubs", "spokes": "spokes"}]})
PORT = 5001
TRANSFER = 4 * 1024 * 1024

Host = Callable[[str], Any]


def address(hostvars: Callable[[str], dict[str, Any]], name: str) -> str:
    return str(hostvars(name)["lab_address"])


def ping(lab_host: Host, hostvars: Callable[[str], dict[str, Any]], source: str, target: str) -> Any:
    return lab_host(source).run(f"ping -c 3 -i 0.2 -W 2 {address(hostvars, target)}")


def answered(result: Any) -> bool:
    return result.rc == 0 and " 0% packet loss" in result.stdout


def ping_until_answered(lab_host: Host, hostvars: Callable[[str], dict[str, Any]], source: str, target: str) -> Any:
    """ping until every echo of a round is answered, for 30 s at most; the last result. For a path just put back (a
    reboot, a route, a firewall): the first round after it may lose an echo on the busy lab (seen in CI: 2 of 3 from
    lan1 to lan2 right after the forward policy went back to ACCEPT), while a path still cut never answers."""
    deadline = time.monotonic() + 30
    result = ping(lab_host, hostvars, source, target)
    while not answered(result) and time.monotonic() < deadline:
        time.sleep(1)
        result = ping(lab_host, hostvars, source, target)
    return result


def routes(lab_host: Host, name: str) -> dict[str, dict[str, Any]]:
    """A host's routes of the main table, by destination (the kernel's JSON without its flags)."""
    return by_destination(lab_host(name).check_output("ip -json route show table main"))


def by_destination(text: str) -> dict[str, dict[str, Any]]:
    return {entry["dst"]: {k: v for k, v in entry.items() if k != "flags"} for entry in json.loads(text)}


def state(lab_host: Host) -> dict[str, dict[str, Any]]:
    """What a run may change on the gateways' kernels: their interfaces (GRE and others: name, alias, state,
    tunnel settings, MTU, addresses) and their routes, one command per gateway."""
    found = {}
    for name in GATEWAYS:
        links, table = (
            lab_host(name)
            .check_output("ip -details -json address show; echo '#'; ip -json route show table main")
            .split("#")
        )
        found[name] = {
            "links": {
                link["ifname"]: {
                    "alias": link.get("ifalias"),
                    "up": "UP" in link["flags"],
                    "mtu": link["mtu"],
                    "tunnel": link.get("linkinfo", {}).get("info_data"),
                    "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]),
                }
                for link in json.loads(links)
            },
            "routes": by_destination(table),
        }
    return found


def overlay(tmp_path: Path, host_vars: dict[str, dict[str, Any]]) -> Path:
    """An inventory directory whose host_vars override the scenario's (same precedence, read later)."""
    directory = tmp_path / "overlay"
    (directory / "host_vars").mkdir(parents=True)
    (directory / "hosts.yml").write_text(json.dumps({"all": {"hosts": {name: None for name in host_vars}}}))
    for name, variables in host_vars.items():
        (directory / "host_vars" / f"{name}.yml").write_text(json.dumps(variables))
    return directory


OUTER = re.compile(r" IP (\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+): (.*)$")
INNER_ECHO = re.compile(r"GREv0, .*: IP (\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+): ICMP echo (request|reply)")


def capture_underlay(lab_host: Host, hostvars: Callable[[str], dict[str, Any]], action: Callable[[], None]) -> str:
    """Every IPv4 packet on each of the router's underlay NICs while ``action()`` runs (tcpdump -n, one per NIC)."""
    router = lab_host("router")
    nics = [nic["device"] for nic in hostvars("router")["lab_underlay"]]
    router.check_output(
        " ; ".join(
            f"setsid tcpdump -l -n -i {nic} ip </dev/null >/tmp/sites-{nic}.cap 2>&1 & echo $! >/tmp/sites-{nic}.pid"
            for nic in nics
        )
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all("listening on" in router.run(f"cat /tmp/sites-{nic}.cap").stdout for nic in nics):
            break
        time.sleep(0.2)
    try:
        action()
    finally:
        pids = " ".join(f"$(cat /tmp/sites-{nic}.pid)" for nic in nics)
        router.run(f"kill {pids}; for p in {pids}; do timeout 5 tail --pid=$p -f /dev/null; done")
    return "".join(router.check_output(f"cat /tmp/sites-{nic}.cap") + "\n" for nic in nics)


LAN_NETWORKS = [ipaddress.ip_network(network) for _gateway, network in SITES.values()]


def in_a_lan(text: str) -> bool:
    return any(ipaddress.ip_address(text) in network for network in LAN_NETWORKS)


def check_only_gre_between(capture: str, publics: set[frozenset[str]]) -> set[tuple[str, str]]:
    """Every captured packet is GRE between a pair of ``publics``: no address of a LAN (devices or gateways) in
    an outer header. Returns the (source, target) addresses of the echo requests seen inside GRE."""
    echoes = set()
    packets = [line for line in capture.splitlines() if OUTER.search(line)]
    assert packets, capture
    for line in packets:
        source, target, rest = OUTER.search(line).groups()  # type: ignore[union-attr]
        assert not in_a_lan(source) and not in_a_lan(target), f"a LAN address in the clear: {line}"
        assert rest.startswith("GREv0"), f"not GRE: {line}"
        assert frozenset((source, target)) in publics, f"GRE between unexpected addresses: {line}"
        inner = INNER_ECHO.search(line)
        if inner and inner.group(3) == "request":
            echoes.add((inner.group(1), inner.group(2)))
    return echoes


# --- the full mesh, as converge left it ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SITES))
def test_the_lan_host_runs_nothing_of_the_collection(lab_host, hostvars, name):
    """Its only configuration is the lab's: an address in its site's LAN, a default route via its gateway.
    No GRE module was ever loaded there, and it has no route, file or sysctl of the collection."""
    gateway, network = SITES[name]
    via = hostvars(gateway)["lab_underlay"][1]["address"].split("/")[0]
    default, ours, files = (
        lab_host(name)
        .check_output(
            f"ip route show default; echo '#'; ip route show proto {ROUTE_PROTOCOL}; echo '#'; "
            "ls -d /sys/module/ip_gre /etc/linuxnet-gre /etc/sysctl.d/*linuxnet* 2>/dev/null; true"
        )
        .split("#")
    )
    assert default.split() == ["default", "via", via, "dev", "eth1"]
    assert (ours.strip(), files.strip()) == ("", "")
    assert ipaddress.ip_address(address(hostvars, name)) in ipaddress.ip_network(network)


@pytest.mark.parametrize("name", GATEWAYS)
def test_each_gateway_routes_the_other_lans_through_their_tunnels(lab_host, gre_links, name):
    """To each other LAN, a route of gre_tunnel's (proto 250) via the peer gateway's inner address."""
    found = routes(lab_host, name)
    ours = json.loads(lab_host(name).check_output(f"ip -json route show table main proto {ROUTE_PROTOCOL}"))
    assert sorted(entry["dst"] for entry in ours) == sorted(n for g, n in SITES.values() if g != name)
    links = gre_links(name)
    for lan, (gateway, network) in SITES.items():
        if gateway == name:
            assert found[network]["dev"] == "eth2" and found[network]["protocol"] == "kernel", (lan, found[network])
            continue
        route = found[network]
        (peer_inner,) = gre_links(gateway)[f"gre-{name}"]["addresses"]
        assert route["dev"] == f"gre-{gateway}" and f"gre-{gateway}" in links, route
        assert route["gateway"] == peer_inner.split("/")[0], route


@pytest.fixture(scope="module")
def mesh_pings(lab_host, hostvars) -> tuple[dict[tuple[str, str], Any], str]:
    """Every LAN host pings every other, while the router captures its underlay: (results, capture)."""
    results: dict[tuple[str, str], Any] = {}

    def pings() -> None:
        for source, target in PAIRS:
            results[(source, target)] = ping(lab_host, hostvars, source, target)

    capture = capture_underlay(lab_host, hostvars, pings)
    return results, capture


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_lan_host_pings_lan_host(mesh_pings, source, target):
    result = mesh_pings[0][(source, target)]
    assert answered(result), result.stdout + result.stderr


def test_the_router_sees_only_gre_between_the_gateways(mesh_pings, hostvars):
    """tcpdump on the router's three underlay NICs during the pings: every packet is GRE between two
    gateways' public addresses; no LAN address appears in an outer header; every ping crossed inside GRE."""
    publics = [hostvars(name)["lab_public_address"] for name in GATEWAYS]
    echoes = check_only_gre_between(mesh_pings[1], {frozenset(p) for p in permutations(publics, 2)})
    assert echoes == {(address(hostvars, s), address(hostvars, t)) for s, t in PAIRS}, mesh_pings[1]


SERVER = f"""
import socket
server = socket.create_server(("", {PORT}))
server.settimeout(60)
conn, _ = server.accept()
total = 0
while True:
    data = conn.recv(65536)
    if not data:
        break
    total += len(data)
conn.sendall(str(total).encode())
conn.close()
"""

CLIENT = """
import socket, sys, time
start = time.monotonic()
conn = socket.create_connection((sys.argv[1], {port}), timeout=30)
chunk = b"x" * 65536
for _ in range({count}):
    conn.sendall(chunk)
conn.shutdown(socket.SHUT_WR)
print(conn.recv(64).decode(), round(time.monotonic() - start, 3))
"""


def test_a_tcp_transfer_between_two_lans_completes_with_the_mss_clamped(lab_host, hostvars):
    """4 MiB from lan1 to lan3 with plain python3 sockets (DF set, as Linux TCP does), while lan3 captures
    the SYN: its MSS must fit the tunnel (MTU - 40) once the collection clamps MSS (gre_mesh_mss_clamp)."""
    server, client = lab_host("lan3"), lab_host("lan1")
    server.check_output(f"cat >/tmp/sites-server.py <<'EOF'\n{SERVER}\nEOF")
    server.check_output(
        "rm -f /tmp/sites-syn.cap; setsid tcpdump -l -n -v -i eth1 "
        f"'tcp port {PORT} and tcp[tcpflags] & tcp-syn != 0' </dev/null >/tmp/sites-syn.cap 2>&1 & "
        "echo $! >/tmp/sites-syn.pid; "
        "setsid python3 /tmp/sites-server.py </dev/null >/tmp/sites-server.log 2>&1 & echo $! >/tmp/sites-server.pid"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listening = server.run(f"ss -Hltn 'sport = :{PORT}'").stdout.strip()
        if listening and "listening on" in server.run("cat /tmp/sites-syn.cap").stdout:
            break
        time.sleep(0.2)
    client_code = CLIENT.format(port=PORT, count=TRANSFER // 65536)
    result = client.run(f"timeout 60 python3 - {address(hostvars, 'lan3')} <<'EOF'\n{client_code}\nEOF")
    server.run("kill $(cat /tmp/sites-syn.pid) $(cat /tmp/sites-server.pid) 2>/dev/null; sleep 0.5")
    assert result.rc == 0, result.stdout + result.stderr + server.run("cat /tmp/sites-server.log").stdout
    received, seconds = result.stdout.split()
    assert int(received) == TRANSFER, result.stdout
    assert float(seconds) < 30, result.stdout

    syn = server.check_output("cat /tmp/sites-syn.cap")
    mss = [int(m) for m in re.findall(r"Flags \[S\],.*?mss (\d+)", syn)]
    assert mss, syn
    mtu = int(lab_host("gw1").file("/sys/class/net/gre-gw3/mtu").content_string)
    assert max(mss) <= mtu - 40, (mss, mtu, syn)


# --- changes of the inventory -------------------------------------------------------------------------------


def test_a_network_taken_out_of_the_inventory_is_unrouted_everywhere(lab_host, hostvars, tmp_path):
    """gw3's LAN removed from its gre_mesh_networks: the other gateways lose their route to it, and nothing
    else changes (tunnels, other routes). lan1 no longer reaches lan3 (the router knows no LAN), lan2 still.
    Then the inventory as it was: the routes come back as they were."""
    before = state(lab_host)
    removed = SITES["lan3"][1]
    run = playbook("site", "-i", overlay(tmp_path, {"gw3": {"gre_mesh_networks": []}}), *NOT_LANS)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert recap(run)["router"]["changed"] == 0, recap(run)
    after = state(lab_host)
    for name in GATEWAYS:
        expected = dict(before[name]["routes"])
        if name != "gw3":
            assert removed in expected
            del expected[removed]
        assert after[name] == {"links": before[name]["links"], "routes": expected}, name
    assert not answered(ping(lab_host, hostvars, "lan1", "lan3"))
    assert answered(ping(lab_host, hostvars, "lan1", "lan2"))

    back = playbook("site", *NOT_LANS)
    assert back.returncode == 0, back.stdout[-3000:] + back.stderr
    assert state(lab_host) == before
    assert answered(ping_until_answered(lab_host, hostvars, "lan1", "lan3"))


def test_check_diff_predicts_a_route_change_and_makes_none(lab_host, tmp_path):
    """A second network behind gw3, in check mode with diff: gw1 and gw2 report the new route, no host
    changes."""
    before = state(lab_host)
    added = "198.51.100.96/27"
    networks = {"gw3": {"gre_mesh_networks": [SITES["lan3"][1], added]}}
    run = playbook("site", "-i", overlay(tmp_path, networks), *NOT_LANS, "--check", "--diff")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    counts = recap(run)
    assert counts["gw1"]["changed"] >= 1 and counts["gw2"]["changed"] >= 1, counts
    # The diff of gw1's and gw2's tunnel to gw3: the new route added.
    assert len(re.findall(rf"^\+.*{re.escape(added)}", run.stdout, re.MULTILINE)) >= 2, run.stdout[-5000:]
    assert state(lab_host) == before


def test_where_forwarded_traffic_is_dropped_the_role_opens_exactly_the_planned_networks(lab_host, hostvars):
    """gw2's FORWARD policy set to DROP by hand (a host firewall, like Docker's): lan2 is cut off. site.yml on gw2
    accepts the traffic between its tunnels and the planned networks, in chains of its own, and lan2 reaches the
    other LANs again; the user's policy stays. With the policy back to ACCEPT, the next run removes the openings
    and keeps the MSS clamp. lan2 to gw1's underlay address, outside the planned networks, is dropped while the
    openings are in place and passes once the policy is ACCEPT again."""
    gw2 = lab_host("gw2")
    gw1_public = hostvars("gw1")["lab_public_address"]
    gw2.check_output("iptables-legacy -P FORWARD DROP")
    try:
        assert not answered(ping(lab_host, hostvars, "lan1", "lan2"))
        run = playbook("site", "--limit", "gw2")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr
        assert recap(run)["gw2"]["changed"] >= 1, recap(run)
        rules = gw2.check_output("iptables-legacy -S FORWARD")
        assert "-P FORWARD DROP" in rules and "LINUXNET-GRE-FWD" in rules, rules
        for source, target in (("lan1", "lan2"), ("lan2", "lan3"), ("lan3", "lan2")):
            result = ping_until_answered(lab_host, hostvars, source, target)
            assert answered(result), (source, target, result.stdout + result.stderr)
        # Nothing else is forwarded: lan2 to gw1's underlay address leaves gw2 outside the tunnels, and is dropped.
        assert not answered(lab_host("lan2").run(f"ping -c 2 -i 0.2 -W 1 {gw1_public}"))
    finally:
        gw2.check_output("iptables-legacy -P FORWARD ACCEPT")
    again = playbook("site", "--limit", "gw2")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    rules = gw2.check_output("iptables-legacy-save")
    assert "LINUXNET-GRE-FWD" not in rules and "LINUXNET-GRE-MSS" in rules, rules
    assert answered(ping_until_answered(lab_host, hostvars, "lan1", "lan2"))
    # What the openings kept out passes again (gw1 answers lan2 through its tunnel to gw2).
    assert answered(lab_host("lan2").run(f"ping -c 2 -i 0.2 -W 1 {gw1_public}"))


# --- hub and spoke ------------------------------------------------------------------------------------------


def test_hub_and_spoke_spoke_lan_reaches_spoke_lan_through_the_hub(lab_host, hostvars, gre_links):
    """site.yml again with gw1 as hub, gw2 and gw3 as spokes: purge removes the spoke-spoke tunnel, each spoke
    routes the other spoke's LAN to the hub, and every LAN reaches every other; on the router, GRE only
    between the hub and each spoke."""
    run = playbook("site", *NOT_LANS, "-e", HUB_SPOKE)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert sorted(gre_links("gw1")) == ["gre-gw2", "gre-gw3"]
    assert sorted(gre_links("gw2")) == ["gre-gw1"]
    assert sorted(gre_links("gw3")) == ["gre-gw1"]
    for spoke, other in (("gw2", "lan3"), ("gw3", "lan2")):
        route = routes(lab_host, spoke)[SITES[other][1]]
        assert route["dev"] == "gre-gw1", (spoke, route)

    results = {}

    def pings() -> None:
        for source, target in PAIRS:
            results[(source, target)] = ping(lab_host, hostvars, source, target)

    capture = capture_underlay(lab_host, hostvars, pings)
    failed = {pair: r.stdout + r.stderr for pair, r in results.items() if not answered(r)}
    assert not failed, failed
    hub = hostvars("gw1")["lab_public_address"]
    spokes = [hostvars(name)["lab_public_address"] for name in ("gw2", "gw3")]
    echoes = check_only_gre_between(capture, {frozenset((hub, spoke)) for spoke in spokes})
    assert echoes == {(address(hostvars, s), address(hostvars, t)) for s, t in PAIRS}, capture


def test_after_a_real_reboot_of_the_hub_its_routes_and_forwarding_are_back(lab_host, hostvars, gre_links):
    """The hub rebooted for real (UML re-executes its kernel), no converge: its tunnels, its routes and its
    forwarding come back from the boot files, and every LAN reaches every other again through it.

    The hub's NICs come back with new MAC addresses (UML draws them at each boot, as a replaced NIC would
    have), and Linux announces no gratuitous ARP: lan1 keeps the old one for its gateway until it probes
    the entry again (delay_first_probe_time 5 s, unicast probes, then a broadcast). So each pair gets up
    to 30 s to answer, the time a LAN device takes to notice a rebooted gateway, not the collection's."""
    hub = lab_host("gw1")
    before = {"boot": hub.file("/proc/sys/kernel/random/boot_id").content_string, "routes": routes(lab_host, "gw1")}
    before["links"] = gre_links("gw1")
    # No D-Bus in the lab's guests, so no logind: `systemctl reboot`, as molecule/reboot does.
    hub.ansible(
        "ansible.builtin.reboot",
        "reboot_command='systemctl reboot' connect_timeout=5 reboot_timeout=300",
        check=False,
        become=True,
    )
    assert hub.file("/proc/sys/kernel/random/boot_id").content_string != before["boot"]
    assert gre_links("gw1") == before["links"]
    assert routes(lab_host, "gw1") == before["routes"]
    failed = {}
    for source, target in PAIRS:
        result = ping_until_answered(lab_host, hostvars, source, target)
        if not answered(result):
            failed[(source, target)] = result.stdout + result.stderr + lab_host(source).run("ip neigh").stdout
    assert not failed, failed
