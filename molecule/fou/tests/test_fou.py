"""GRE in UDP (issue 18) through a router that drops GRE: what the path sees, what the hosts accept.

Links: hosta - hostb, hosta - hostc (behind a 1:1 NAT), both carried in UDP to port 5555 by the
kernel's FOU (gre_mesh_encap: fou). The tunnel hosts are QEMU guests with the image's cloud kernel.
Inner addresses are the planner's: hosta 10.0.0.1, hostb 10.0.0.2 (link 0); hosta 10.0.0.5, hostc
10.0.0.6 (link 1). After reboot.yml the test that runs the playbooks is not run again (the marker
file tells it); it runs last, as it changes the links and puts them back.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from conftest import inner, ping, playbook, recap

LINKS = [("hosta", "hostb"), ("hosta", "hostc")]
HOSTS = ["hosta", "hostb", "hostc"]
PORT = 5555
REBOOTED = "/var/lib/misc/linuxnet-gre-lab-rebooted"
# Five UDP datagrams to a host's receive port, as any host on the path could send them.
SEND_UDP = r"""
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    sock.sendto(b"\0\0\x08\0" + b"not a peer" * 4, (sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.parametrize(("host", "peer"), LINKS + [(b, a) for a, b in LINKS])
def test_pings_pass_through_every_tunnel_both_ways(gre_links, ping_through, host, peer):
    ping_through(host, f"gre-{peer}", inner(gre_links, peer, host))


def test_the_router_sees_only_udp_to_the_port_never_gre(lab_host, gre_links, gre_capture):
    """Pings through both tunnels, both ways, captured on every NIC of the router that drops GRE: each packet is
    UDP to port 5555 (both ends send to it), none is GRE; hostc's cross its NAT, from and to its public address."""

    def ping_all() -> None:
        for host, peer in LINKS + [(b, a) for a, b in LINKS]:
            address = inner(gre_links, peer, host)
            ping(lab_host(host), f"-c 3 -i 0.2 -W 2 -I gre-{peer} {address}")

    capture = gre_capture("router", "any", None, ping_all, expression="host 203.0.113.1")
    packets = [line for line in capture.splitlines() if " IP " in line]
    udp = [line for line in packets if re.search(rf"\.{PORT}: UDP, length \d+$", line)]
    assert len(udp) >= 4 * 3 * 2, capture  # 12 echo requests and their 12 replies, each seen in and out
    assert udp == packets, capture
    assert "GRE" not in capture, capture
    assert [line for line in udp if "> 198.51.100.20.5555: UDP" in line], capture
    assert [line for line in udp if " 198.51.100.20." in line and "> 203.0.113.1.5555: UDP" in line], capture
    assert [line for line in udp if "> 198.51.100.1.5555: UDP" in line], capture


@pytest.mark.parametrize("peer", ["hostb", "hostc"])
def test_a_full_size_packet_fits_the_underlay_whole(lab_host, gre_links, gre_capture, peer):
    """The planner's MTU leaves room for GRE and FOU's UDP header: 1468, and a full-size ping with DF leaves the
    router as a 1500-byte packet."""
    host = lab_host("hosta")
    mtu = int(host.check_output(f"cat /sys/class/net/gre-{peer}/mtu"))
    assert mtu == 1500 - 24 - 8
    address = inner(gre_links, peer, "hosta")

    def full_size() -> None:
        ping(host, f"-c 2 -i 0.3 -W 2 -M do -s {mtu - 28} -I gre-{peer} {address}")

    capture = gre_capture("router", "any", None, full_size, expression="host 203.0.113.1 and greater 1000")
    # tcpdump's "length" is UDP's payload: the IP packet adds its header (20) and UDP's (8).
    sizes = [int(length) + 28 for length in re.findall(r"UDP, length (\d+)", capture)]
    assert len(sizes) >= 4 and max(sizes) == 1500, capture


@pytest.mark.parametrize("name", HOSTS)
def test_the_kernel_has_the_tunnels_in_udp_and_one_receive_port(lab_host, name):
    host = lab_host(name)
    assert json.loads(host.check_output("ip -json fou show")) == [{"port": PORT, "ipproto": 47, "family": "inet"}]
    links = json.loads(host.check_output("ip -details -json link show type gre"))
    tunnels = {link["ifname"]: link["linkinfo"]["info_data"].get("encap") for link in links if "ifalias" in link}
    peers = [b for a, b in LINKS if a == name] + [a for a, b in LINKS if b == name]
    assert sorted(tunnels) == sorted(f"gre-{peer}" for peer in peers)
    for encap in tunnels.values():
        assert encap is not None and (encap["type"], encap["dport"], encap["sport"]) == ("fou", PORT, 0), tunnels


def dropped_from_others(host: Any) -> int:
    """The packets of the role's counted drop of UDP to the port from no planned peer, on hostb."""
    chain = json.loads(host.check_output("nft -j list chain inet linuxnet_gre input"))
    rules = [item["rule"] for item in chain["nftables"] if "rule" in item]
    (rule,) = [rule for rule in rules if rule.get("comment", "").endswith(f"udp {PORT} others")]
    (counter,) = [expression["counter"] for expression in rule["expr"] if "counter" in expression]
    return int(counter["packets"])


def test_udp_to_the_port_from_a_host_not_a_peer_is_dropped_and_counted(lab_host, hostvars):
    """hostb's input drops by default (its user's table), and the role lets UDP 5555 in from hosta only: intruder,
    on hostb's own segment, sends five datagrams to the port; the role's rule drops them, counted."""
    hostb = lab_host("hostb")
    before = dropped_from_others(hostb)
    lab_host("intruder").run(f"python3 -c '{SEND_UDP}' {hostvars('hostb')['lab_address']} {PORT}")
    deadline = time.monotonic() + 10
    while dropped_from_others(hostb) < before + 5 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert dropped_from_others(hostb) == before + 5


def test_verify_finds_every_link_up():
    run = playbook("verify")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "all 2 links up" in run.stdout, run.stdout[-3000:]


@pytest.fixture
def not_rebooted(lab_host):
    if lab_host("hosta").file(REBOOTED).exists:
        pytest.skip("run before the reboot (it changes the links and puts them back)")


def test_a_host_whose_kernel_lacks_gre_in_udp_stops_the_run_before_any_host_changes(lab_host, not_rebooted):
    """intruder (a UML guest: its kernel has the fou module but was built without FOU tunnels) given a link in UDP to
    hostb: the role's host check names it, its kernel and the fix, and no host changes, hostb's tunnels included."""
    links = '{"gre_mesh_links": [["hosta", "hostb"], ["hosta", "hostc"], ["hostb", "intruder"]]}'

    def state() -> dict[str, str]:
        """Its links, FOU ports, boot files and firewall rules (without their counters, which any packet moves): what
        a run of the role would change."""
        return {
            name: lab_host(name).check_output(
                "ip -details -json link show; ip -json fou show; nft --stateless list ruleset; "
                "cat /etc/linuxnet-gre/* /etc/systemd/system/linuxnet-gre*.service /etc/modules-load.d/linuxnet-gre.conf"
                " 2>&1; true"
            )
            for name in ("hostb", "intruder")
        }

    before = state()
    run = playbook("site", "-e", links)
    output = run.stdout + run.stderr  # the failed task's message goes to standard error
    assert run.returncode == 2, output[-3000:]
    assert (
        "intruder: GRE in UDP (gre_mesh_encap) is planned here for gre-hostb, but this kernel (6.1.176) cannot carry "
        "GRE in UDP: it was built without CONFIG_NET_FOU_IP_TUNNELS (/boot/config-6.1.176)"
    ) in output, output[-3000:]
    assert {name: row["changed"] for name, row in recap(run).items()} == dict.fromkeys(recap(run), 0)
    assert state() == before


def test_plain_gre_fails_here_and_verify_names_fou_as_the_fix(lab_host, gre_links, ping_through, not_rebooted):
    """The seed's case on this path: with the links back in plain GRE (gre_mesh_encap=none), site.yml's pings fail,
    and verify.yml names path_drops_gre with GRE in UDP as the fix, since UDP passes (its probe). Then site.yml with
    the inventory's fou puts the links back in UDP in place, and they ping again."""
    plain = playbook("site", "-e", "gre_mesh_encap=none")
    assert plain.returncode != 0, plain.stdout[-3000:]
    links = json.loads(lab_host("hosta").check_output("ip -details -json link show type gre"))
    assert [link["linkinfo"]["info_data"].get("encap") for link in links if "ifalias" in link] == [None, None]

    diagnosed = playbook("verify", "-e", "gre_mesh_encap=none")
    assert diagnosed.returncode != 0, diagnosed.stdout[-3000:]
    output = diagnosed.stdout
    assert re.search(r"hosta - hostb: DOWN \[path_drops_gre\]", output), output[-4000:]
    assert f"datagrams to udp/{PORT} arrived, both ways): gre_mesh_encap: fou for the link" in output, output[-4000:]
    assert "(in gre_mesh_links: {hosts: [hosta, hostb], encap: fou})" in output, output[-4000:]

    back = playbook("site")
    assert back.returncode == 0, back.stdout[-3000:]
    assert all(row["failed"] == 0 for row in recap(back).values())
    for host, peer in LINKS:
        ping_through(host, f"gre-{peer}", inner(gre_links, peer, host))
    assert json.loads(lab_host("hosta").check_output("ip -json fou show")) == [
        {"port": PORT, "ipproto": 47, "family": "inet"}
    ]
