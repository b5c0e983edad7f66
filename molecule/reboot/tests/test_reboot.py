"""After a real reboot and no second converge: the planned tunnels are back, managed, up, and pass packets.

hosta persists with systemd-networkd, hostb and hostc (run by NetworkManager: test_networkmanager.py) with
linuxnet-gre.service (gre_mesh_persist auto). The links to the router were taken out of the plan before the
reboot: their tunnels and files stay gone.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
# Each tunnel host's inner address towards each peer (the planner's allocation for the full mesh).
ADDRESSES = {
    "hosta": {"hostb": "10.0.0.1/30", "hostc": "10.0.0.5/30"},
    "hostb": {"hosta": "10.0.0.2/30", "hostc": "10.0.0.9/30"},
    "hostc": {"hosta": "10.0.0.6/30", "hostb": "10.0.0.10/30"},
}
LINKS = [(name, peer) for name in sorted(ADDRESSES) for peer in sorted(ADDRESSES[name])]
NETWORKD = "/etc/systemd/network/60-linuxnet-gre"
UNIT = "/etc/systemd/system/linuxnet-gre.service"
BATCH = "/etc/linuxnet-gre/tunnels.batch"


def recorded(name: str) -> dict:
    return json.loads((EPHEMERAL / f"reboot-{name}.json").read_text())


def persisted_before(name: str) -> list[str]:
    return json.loads((EPHEMERAL / f"persisted-{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_the_host_really_rebooted(lab_host, name):
    before = recorded(name)["boot_id_before"].strip()
    assert before
    assert lab_host(name).file("/proc/sys/kernel/random/boot_id").content_string.strip() != before


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_the_planned_tunnels_are_back_managed_and_up(gre_links, hostvars, name):
    """gre_links reads only interfaces with the alias managed-by: linuxnet.gre: the link to the router is gone."""
    assert gre_links(name) == {
        f"gre-{peer}": {
            "local": hostvars(name)["lab_address"],
            "remote": hostvars(peer)["lab_public_address"],
            "ttl": 255,
            "key": None,
            "up": True,
            "addresses": [address],
        }
        for peer, address in ADDRESSES[name].items()
    }


@pytest.mark.parametrize(("name", "peer"), LINKS)
def test_ping_through_the_tunnel(ping_through, name, peer):
    ping_through(name, f"gre-{peer}", ADDRESSES[peer][name].split("/")[0])


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_gre_tunnel_would_change_nothing(lab_host, hostvars, name):
    """What the next converge's apply step sees: the tunnels are its own, as planned, nothing to purge."""
    tunnels = [
        {
            "name": f"gre-{peer}",
            "local": hostvars(name)["lab_address"],
            "remote": hostvars(peer)["lab_public_address"],
            "addresses": [address],
        }
        for peer, address in ADDRESSES[name].items()
    ]
    result = lab_host(name).ansible(
        "linuxnet.gre.gre_tunnel", json.dumps({"tunnels": tunnels, "purge": True}), check=True, become=True
    )
    assert result["changed"] is False, result["changes"]


def test_hosta_came_back_through_networkd(lab_host):
    host = lab_host("hosta")
    assert host.service("systemd-networkd").is_running
    assert host.file(NETWORKD + ".link").is_file
    assert not host.file(UNIT).exists
    for peer in ADDRESSES["hosta"]:
        for suffix in (f"-gre-{peer}.netdev", f"-gre-{peer}.network"):
            assert host.file(NETWORKD + suffix).is_file, suffix
        ifindex = host.file(f"/sys/class/net/gre-{peer}/ifindex").content_string.strip()
        state = host.file(f"/run/systemd/netif/links/{ifindex}").content_string
        assert f"NETWORK_FILE={NETWORKD}-gre-{peer}.network" in state
        assert "ADMIN_STATE=configured" in state


@pytest.mark.parametrize("name", ["hostb", "hostc"])
def test_came_back_through_the_unit(lab_host, name):
    """hostb runs neither networkd nor NetworkManager, hostc runs NetworkManager: auto picks the unit on both."""
    host = lab_host(name)
    assert not host.service("systemd-networkd").is_running
    unit = host.service("linuxnet-gre.service")
    assert unit.is_enabled
    assert host.run("systemctl is-active linuxnet-gre.service").stdout.strip() == "active"
    batch = host.file(BATCH).content_string
    for peer in ADDRESSES[name]:
        assert f"link add name gre-{peer} " in batch
        assert f'link set dev gre-{peer} alias "managed-by: linuxnet.gre" up' in batch
    assert host.run(f"ls {NETWORKD}*").stdout == ""


@pytest.mark.parametrize("name", ["hosta", "hostb"])
def test_the_tunnel_taken_out_of_the_plan_left_the_persisted_configuration(lab_host, name):
    host = lab_host(name)
    before = persisted_before(name)
    if name == "hosta":
        assert f"{NETWORKD}-gre-router.netdev" in before and f"{NETWORKD}-gre-router.network" in before
        assert not host.file(f"{NETWORKD}-gre-router.netdev").exists
        assert not host.file(f"{NETWORKD}-gre-router.network").exists
        assert "gre-router" not in host.file(f"{NETWORKD}.link").content_string
    else:
        assert BATCH in before
        assert "gre-router" not in host.file(BATCH).content_string
    assert host.run("ip link show gre-router").rc != 0


def test_the_router_left_without_tunnels_lost_its_unit_and_file(lab_host, gre_links):
    host = lab_host("router")
    assert UNIT in persisted_before("router")
    assert not host.file(UNIT).exists
    assert not host.file("/etc/linuxnet-gre").exists
    assert host.run("systemctl is-enabled linuxnet-gre.service").rc != 0
    assert gre_links("router") == {}
