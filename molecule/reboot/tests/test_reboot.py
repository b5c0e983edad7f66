"""After a real reboot and no second converge: the planned tunnels are back, managed, up, and pass packets.

hosta persists with systemd-networkd, hostb with linuxnet-gre.service (gre_mesh_persist auto). The links
to the router were taken out of the plan before the reboot: their tunnels and files stay gone.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PEER = {"hosta": "hostb", "hostb": "hosta"}
ADDRESS = {"hosta": "10.0.0.1/30", "hostb": "10.0.0.2/30"}
NETWORKD = "/etc/systemd/network/60-linuxnet-gre"
UNIT = "/etc/systemd/system/linuxnet-gre.service"
BATCH = "/etc/linuxnet-gre/tunnels.batch"


def recorded(name: str) -> dict:
    return json.loads((EPHEMERAL / f"reboot-{name}.json").read_text())


def persisted_before(name: str) -> list[str]:
    return json.loads((EPHEMERAL / f"persisted-{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(PEER))
def test_the_host_really_rebooted(lab_host, name):
    before = recorded(name)["boot_id_before"].strip()
    assert before
    assert lab_host(name).file("/proc/sys/kernel/random/boot_id").content_string.strip() != before


@pytest.mark.parametrize("name", sorted(PEER))
def test_the_planned_tunnel_is_back_managed_and_up(gre_links, hostvars, name):
    """gre_links reads only interfaces with the alias managed-by: linuxnet.gre: the link to the router is gone."""
    peer = PEER[name]
    assert gre_links(name) == {
        f"gre-{peer}": {
            "local": hostvars(name)["lab_address"],
            "remote": hostvars(peer)["lab_public_address"],
            "ttl": 255,
            "key": None,
            "up": True,
            "addresses": [ADDRESS[name]],
        }
    }


@pytest.mark.parametrize("name", sorted(PEER))
def test_ping_through_the_tunnel(ping_through, name):
    peer = PEER[name]
    ping_through(name, f"gre-{peer}", ADDRESS[peer].split("/")[0])


@pytest.mark.parametrize("name", sorted(PEER))
def test_gre_tunnel_would_change_nothing(lab_host, hostvars, name):
    """What the next converge's apply step sees: the tunnel is its own, as planned, nothing to purge."""
    peer = PEER[name]
    tunnel = {
        "name": f"gre-{peer}",
        "local": hostvars(name)["lab_address"],
        "remote": hostvars(peer)["lab_public_address"],
        "addresses": [ADDRESS[name]],
    }
    result = lab_host(name).ansible(
        "linuxnet.gre.gre_tunnel", json.dumps({"tunnels": [tunnel], "purge": True}), check=True, become=True
    )
    assert result["changed"] is False, result["changes"]


def test_hosta_came_back_through_networkd(lab_host):
    host = lab_host("hosta")
    assert host.service("systemd-networkd").is_running
    for suffix in ("-gre-hostb.netdev", "-gre-hostb.network", ".link"):
        assert host.file(NETWORKD + suffix).is_file, suffix
    assert not host.file(UNIT).exists
    ifindex = host.file("/sys/class/net/gre-hostb/ifindex").content_string.strip()
    state = host.file(f"/run/systemd/netif/links/{ifindex}").content_string
    assert f"NETWORK_FILE={NETWORKD}-gre-hostb.network" in state
    assert "ADMIN_STATE=configured" in state


def test_hostb_came_back_through_the_unit(lab_host):
    host = lab_host("hostb")
    assert not host.service("systemd-networkd").is_running
    unit = host.service("linuxnet-gre.service")
    assert unit.is_enabled
    assert host.run("systemctl is-active linuxnet-gre.service").stdout.strip() == "active"
    batch = host.file(BATCH).content_string
    assert "link add name gre-hosta " in batch and 'link set dev gre-hosta alias "managed-by: linuxnet.gre" up' in batch
    assert host.run(f"ls {NETWORKD}*").stdout == ""


@pytest.mark.parametrize("name", sorted(PEER))
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
