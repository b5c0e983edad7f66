"""hostc, a Debian trixie host run by NetworkManager (issue 17): the tunnels stay the collection's.

NetworkManager sees every link it did not make, the tunnels included: it shows them "connected
(externally)" and describes each with a profile it generates in memory, flagged external and volatile
(a file under /run, never under /etc, with a new UUID at every boot). It configures nothing from such
a profile, and removes nothing: after site.yml, after a real reboot (linuxnet-gre.service brings the
tunnels back, gre_mesh_persist auto: networkd does not run there) and after a restart of NetworkManager,
the tunnels are there with their addresses and pass packets. What NetworkManager said before the
reboot was recorded by side_effect.yml.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
HOST = "hostc"
# hostc's tunnels: each one's address, and the peer's address at the other end.
TUNNELS = {"gre-hosta": ("10.0.0.6/30", "10.0.0.5"), "gre-hostb": ("10.0.0.10/30", "10.0.0.9")}
DEVICES = "nmcli -t device"
PROFILES = "nmcli -t -f NAME,UUID,TYPE,DEVICE,FILENAME connection"
STORED = "ls -A /etc/NetworkManager/system-connections"


def before(command: str) -> list[str]:
    """What COMMAND printed on hostc after site.yml, before the reboot (side_effect.yml)."""
    return json.loads((EPHEMERAL / f"networkmanager-{HOST}.json").read_text())[command]


def now(lab_host, command: str) -> list[str]:
    return lab_host(HOST).check_output(command).splitlines()


def tunnel_profiles(lines: list[str]) -> dict[str, dict[str, str]]:
    """The ip-tunnel profiles of `nmcli -t -f NAME,UUID,TYPE,DEVICE,FILENAME connection`, by name."""
    profiles = {}
    for line in lines:
        name, uuid, kind, device, filename = line.split(":")
        if kind == "ip-tunnel":
            profiles[name] = {"uuid": uuid, "device": device, "filename": filename}
    return profiles


def test_hostc_is_trixie_run_by_networkmanager_without_networkd(lab_host, hostvars):
    host = lab_host(HOST)
    assert hostvars(HOST)["lab_release"] == "trixie"
    assert host.file("/etc/debian_version").content_string.startswith("13.")
    assert host.service("NetworkManager").is_running
    assert host.service("NetworkManager").is_enabled
    assert not host.service("systemd-networkd").is_running


@pytest.mark.parametrize("when", ["before the reboot", "after the reboot"])
def test_networkmanager_shows_the_tunnels_connected_externally(lab_host, when):
    """Exactly what `nmcli -t device` says of them: NetworkManager did not take them over."""
    lines = before(DEVICES) if when == "before the reboot" else now(lab_host, DEVICES)
    for name in TUNNELS:
        assert f"{name}:iptunnel:connected (externally):{name}" in lines, lines
    # The underlay too stays as lab-setup made it: Debian's "Wired connection" profiles never activate.
    assert "eth1:ethernet:connected (externally):eth1" in lines, lines


@pytest.mark.parametrize("when", ["before the reboot", "after the reboot"])
def test_networkmanager_stores_no_profile_of_the_tunnels(lab_host, when):
    """The profiles it lists for the tunnels are its generated, in-memory ones (/run); /etc holds none."""
    lines = before(PROFILES) if when == "before the reboot" else now(lab_host, PROFILES)
    stored = before(STORED) if when == "before the reboot" else now(lab_host, STORED)
    assert stored == []
    profiles = tunnel_profiles(lines)
    assert sorted(profiles) == sorted(TUNNELS), lines
    for name, profile in profiles.items():
        assert profile["device"] == name
        assert profile["filename"] == f"/run/NetworkManager/system-connections/{name}.nmconnection"


def test_the_tunnel_profiles_are_generated_external_and_volatile(lab_host):
    host = lab_host(HOST)
    for name, (address, _peer) in TUNNELS.items():
        profile = host.file(f"/run/NetworkManager/system-connections/{name}.nmconnection").content_string
        for line in ("nm-generated=true", "volatile=true", "external=true", "autoconnect=false"):
            assert f"\n{line}\n" in profile, (name, profile)
        assert f"\naddress1={address}\n" in profile


def test_networkmanager_generated_the_tunnel_profiles_anew_at_boot(lab_host):
    """New UUIDs: nothing of them survived the reboot but the collection's own files."""
    old = tunnel_profiles(before(PROFILES))
    new = tunnel_profiles(now(lab_host, PROFILES))
    for name in TUNNELS:
        assert new[name]["uuid"] != old[name]["uuid"]


def test_the_tunnels_came_back_with_their_addresses(gre_links):
    links = gre_links(HOST)
    assert {name: link["addresses"] for name, link in links.items()} == {
        name: [address] for name, (address, _peer) in TUNNELS.items()
    }
    assert all(link["up"] for link in links.values())


def test_a_restart_of_networkmanager_leaves_the_tunnels_whole(lab_host, gre_links, ping_through):
    """NetworkManager stops and starts again: the tunnels keep their addresses, pass packets, stay external."""
    host = lab_host(HOST)
    host.check_output("systemctl restart NetworkManager.service")
    host.check_output("nm-online --wait-for-startup --quiet --timeout 30")
    assert {name: link["addresses"] for name, link in gre_links(HOST).items()} == {
        name: [address] for name, (address, _peer) in TUNNELS.items()
    }
    for name, (_address, peer) in TUNNELS.items():
        ping_through(HOST, name, peer)
    lines = now(lab_host, DEVICES)
    for name in TUNNELS:
        assert f"{name}:iptunnel:connected (externally):{name}" in lines, lines
    assert tunnel_profiles(now(lab_host, PROFILES)).keys() == TUNNELS.keys()
    assert now(lab_host, STORED) == []
