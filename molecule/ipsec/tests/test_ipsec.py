"""GRE over IPsec (issue 18) through a router that drops GRE: what the path sees, what the hosts accept.

Links: hosta - hostb (ESP), hosta - hostc (ESP in UDP 4500: hostc is behind a 1:1 NAT). Inner
addresses are the planner's: hosta 10.0.0.1, hostb 10.0.0.2 (link 0); hosta 10.0.0.5, hostc 10.0.0.6
(link 1). After reboot.yml the tests of the keys (which run playbooks) are not run again.
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret
from conftest import forget_neighbours, inner, ping, playbook, recap

LINKS = [("hosta", "hostb"), ("hosta", "hostc")]
CONF = "/etc/swanctl/conf.d/linuxnet-gre.conf"
REBOOTED = "/var/lib/misc/linuxnet-gre-lab-rebooted"
# A forged GRE packet: outer source and destination, then an ICMP echo request inside (inner
# source and destination), sent 5 times through a raw socket, as an attacker on the path would.
FORGE = r"""
import socket, struct, sys
def checksum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
def ip(source, destination, protocol, payload):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload
outer_source, outer_destination, inner_source, inner_destination = sys.argv[1:5]
echo = struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1) + b"forged" * 8
echo = echo[:2] + struct.pack("!H", checksum(echo)) + echo[4:]
packet = ip(outer_source, outer_destination, 47, struct.pack("!HH", 0, 0x0800) + ip(inner_source, inner_destination, 1, echo))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(5):
    raw.sendto(packet, (outer_destination, 0))
"""


@pytest.mark.parametrize(("host", "peer"), LINKS + [(b, a) for a, b in LINKS])
def test_pings_pass_through_every_tunnel_both_ways(gre_links, ping_through, host, peer):
    ping_through(host, f"gre-{peer}", inner(gre_links, peer, host))


def test_the_router_sees_only_esp_never_gre_nor_an_inner_address(lab_host, gre_links, gre_capture):
    """Pings through both tunnels, both ways, captured on every NIC of the router that drops GRE."""

    def ping_all() -> None:
        for host, peer in LINKS + [(b, a) for a, b in LINKS]:
            address = inner(gre_links, peer, host)
            ping(lab_host(host), f"-c 3 -i 0.2 -W 2 -I gre-{peer} {address}")

    capture = gre_capture("router", "any", None, ping_all, expression="host 203.0.113.1")
    packets = [line for line in capture.splitlines() if " IP " in line]
    esp = [line for line in packets if "ESP(spi=" in line]
    assert len(esp) >= 4 * 3 * 2, capture  # 12 echo requests and their 12 replies, each seen in and out
    assert not [line for line in packets if "GRE" in line], capture
    assert "10.0.0." not in capture, capture
    # hostc's link crosses its NAT: ESP in UDP 4500 from and to its public address.
    assert [line for line in esp if "198.51.100.20.4500: UDP-encap: ESP" in line], capture
    assert [line for line in esp if "> 198.51.100.1: ESP" in line], capture


@pytest.mark.parametrize("peer", ["hostb", "hostc"])
def test_a_full_size_packet_fits_the_underlay_whole(lab_host, gre_links, gre_capture, peer):
    """The planner's MTU leaves room for ESP, NAT traversal and ESP's padding: a full-size ping with DF passes,
    and on the router the packet is at most 1500 bytes: exactly 1500 in UDP (hostc, behind its NAT), 1492 in plain
    ESP (hostb: the 8 bytes kept for NAT traversal go unused)."""
    host = lab_host("hosta")
    mtu = int(host.check_output(f"cat /sys/class/net/gre-{peer}/mtu"))
    assert mtu == 1434
    address = inner(gre_links, peer, "hosta")

    def full_size() -> None:
        ping(host, f"-c 2 -i 0.3 -W 2 -M do -s {mtu - 28} -I gre-{peer} {address}")

    capture = gre_capture("router", "any", None, full_size, expression="host 203.0.113.1 and greater 1000")
    # tcpdump's "length" is ESP's: the IP packet adds its header (20) and, in UDP, UDP's (8).
    sizes = [
        int(length) + 20 + (8 if encapsulated else 0)
        for encapsulated, length in re.findall(
            r"(UDP-encap: )?ESP\(spi=0x[0-9a-f]+,seq=0x[0-9a-f]+\), length (\d+)", capture
        )
    ]
    assert len(sizes) >= 4 and max(sizes) <= 1500, capture
    assert max(sizes) == (1500 if peer == "hostc" else 1492), capture


def test_the_ike_sas_are_established_hostcs_in_udp(lab_host):
    sas = lab_host("hosta").check_output("swanctl --list-sas 2>/dev/null")
    assert re.search(r"linuxnet-gre-hostb: #\d+, ESTABLISHED, IKEv2", sas), sas
    assert re.search(r"linuxnet-gre-hostc: #\d+, ESTABLISHED, IKEv2", sas), sas
    assert "INSTALLED, TRANSPORT, ESP:AES_GCM_16-256" in sas, sas
    assert "INSTALLED, TRANSPORT-in-UDP, ESP:AES_GCM_16-256" in sas, sas


def xfrm_mismatches(host: Any) -> int:
    stats = dict(line.split() for line in host.check_output("cat /proc/net/xfrm_stat").splitlines())
    return int(stats["XfrmInTmplMismatch"])


def test_plaintext_gre_forged_with_a_peers_address_is_dropped_and_counted(lab_host, hostvars, gre_links, gre_capture):
    """intruder, on hostb's segment, sends GRE with hosta's address as source and an echo request inside: it
    reaches hostb's NIC, and the kernel drops it (no ESP), counted in XfrmInTmplMismatch; gre-hosta takes none."""
    hostb = lab_host("hostb")
    hosta_address = hostvars("hosta")["lab_public_address"]
    target = hostvars("hostb")["lab_address"]
    inner_source, inner_destination = inner(gre_links, "hosta", "hostb"), inner(gre_links, "hostb", "hosta")
    nic = hostvars("hostb")["lab_underlay"][0]["device"]

    def received() -> int:
        return int(hostb.check_output("cat /sys/class/net/gre-hosta/statistics/rx_packets"))

    def forge() -> None:
        arguments = f"{hosta_address} {target} {inner_source} {inner_destination}"
        result = lab_host("intruder").run(
            f"cat > /tmp/forge.py <<'EOF'\n{FORGE}\nEOF\npython3 /tmp/forge.py {arguments}"
        )
        assert result.rc == 0, result.stderr
        # tcpdump may hold what it has while it is stopped: let it print the 5 packets first (5 s at most).
        hostb.run("for i in $(seq 25); do [ $(grep -c ': GRE' /tmp/gre.cap) -ge 5 ] && break; sleep 0.2; done")

    forget_neighbours(lab_host, hostvars, "intruder")  # hostb reboots in side_effect.yml, the intruder never
    before, taken = xfrm_mismatches(hostb), received()
    capture = gre_capture("hostb", nic, hosta_address, forge)
    after, taken_after = xfrm_mismatches(hostb), received()
    arrived = [line for line in capture.splitlines() if f"IP {hosta_address} > {target}: GRE" in line]
    assert len(arrived) == 5, capture
    assert after - before >= 5, (before, after)
    assert taken_after - taken < 5, (taken, taken_after)


@pytest.mark.parametrize("name", ["hosta", "hostb", "hostc"])
def test_the_key_file_is_private(lab_host, name):
    conf = lab_host(name).file(CONF)
    assert conf.exists and conf.user == "root" and conf.mode == 0o600
    assert "secret = 0s" in lab_host(name).check_output(f"cat {CONF}")


def vaulted(value: dict[str, str]) -> str:
    """The text of an inventory's vaulted value (ansible-inventory gives it encrypted), with the lab's password."""
    password = (pathlib.Path(__file__).parents[1] / "vault-password").read_bytes().strip()
    return VaultLib([("default", VaultSecret(password))]).decrypt(value["__ansible_vault"]).decode()


@pytest.fixture
def not_rebooted(lab_host):
    if lab_host("hosta").file(REBOOTED).exists:
        pytest.skip("run before the reboot (it changes a key and runs the playbooks)")


def test_a_wrong_key_is_named_by_verify_and_repaired_by_site_without_showing_any_key(lab_host, hostvars, not_rebooted):
    """hostb's key for hosta changed by hand and its IKE SA ended: verify.yml fails on that link with
    ipsec_not_established and strongSwan's words; site.yml --diff -v puts the key back (hostb changed) and shows
    neither the key nor the secret; the link pings again."""
    hostb = lab_host("hostb")
    right = re.search(r"secret = (0s\S+)", hostb.check_output(f"cat {CONF}")).group(1)
    hostb.check_output(
        f"sed -i 's|{right}|0sAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=|' {CONF} && "
        "swanctl --load-all --noprompt >/dev/null 2>&1 && swanctl --terminate --ike linuxnet-gre-hosta >/dev/null 2>&1"
    )
    verify = playbook("verify")
    assert verify.returncode != 0, verify.stdout
    line = next(line for line in verify.stdout.splitlines() if "hosta - hostb: DOWN" in line)
    assert "[ipsec_not_established]" in line and "MAC mismatched" in line, line
    assert "hosta - hostc: up" in verify.stdout, verify.stdout

    site = playbook("site", "--diff", "-v")
    assert site.returncode == 0, site.stdout[-3000:]
    assert recap(site)["hostb"]["changed"] >= 1, site.stdout[-3000:]
    secret = vaulted(hostvars("hostb")["gre_mesh_ipsec_secret"])
    assert len(secret) >= 16
    for shown in (right, right[2:], secret):
        assert shown not in site.stdout + site.stderr
    assert lab_host("hosta").run("ping -c 3 -i 0.2 -W 2 -I gre-hostb 10.0.0.2").rc == 0


def test_limit_to_the_links_second_end_establishes_ike_itself(lab_host, not_rebooted):
    """With --limit hostb, hosta (the link's first end, which establishes IKE) is not in the play: hostb does,
    so that the run's own pings through the tunnel are not lost to IKE, and the run passes.

    Any GRE packet between the two while the run reads and plans (a minute) makes the kernel's trap start IKE
    before the role's step: CI saw it in one run, and in both runs of a later one; the run then had nothing to
    initiate. CI also saw hosta's trap start IKE within a second of the SAs' end, before the run. (The kernel
    sends IPv6 router solicitations into every GRE tunnel, for as long as it is up, which molecule/firewall
    found firing such a race; whether they fire this one is not proven.) Such an attempt proves nothing either
    way, so the test ends the SAs and tries again, three times at most; a role that does not initiate fails
    every time."""
    site = None
    for _attempt in range(3):
        for host, connection in (("hosta", "linuxnet-gre-hostb"), ("hostb", "linuxnet-gre-hosta")):
            lab_host(host).run(f"swanctl --terminate --ike {connection} >/dev/null 2>&1")
        if "ESTABLISHED" in lab_host("hostb").check_output("swanctl --list-sas --ike linuxnet-gre-hosta 2>/dev/null"):
            continue  # up again before the run
        site = playbook("site", "--limit", "hostb", "-v")
        assert site.returncode == 0, site.stdout[-3000:]
        if "initiated linuxnet-gre-hosta" in site.stdout:
            break
    assert site is not None, "the IKE SA between hosta and hostb was up again at once after each of 3 ends"
    assert recap(site)["hostb"]["changed"] == 1, site.stdout[-3000:]  # the initiation, nothing else
    sas = lab_host("hostb").check_output("swanctl --list-sas --ike linuxnet-gre-hosta 2>/dev/null")
    assert re.search(r"linuxnet-gre-hosta: #\d+, ESTABLISHED, IKEv2, \S+_i\* ", sas), sas  # hostb initiated
