"""After the reboot check, hosta switched from networkd to the unit (switch.yml): its tunnel stayed whole.

gre_tunnel removed gre-hostb's networkd files, told networkd (restarted: the lab has no D-Bus), waited
until networkd let go of the tunnel and put back whatever it dropped, in the same run; the role calls
it once. The tunnel keeps its address, is up, passes packets; networkd no longer manages it; the unit
brings it back at boot.
"""

from __future__ import annotations

import json
import os
import pathlib

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
NETWORKD = "/etc/systemd/network/60-linuxnet-gre"
NETWORKD_FILES = [f"{NETWORKD}.link", f"{NETWORKD}-gre-hostb.network", f"{NETWORKD}-gre-hostb.netdev"]
UNIT = "/etc/systemd/system/linuxnet-gre.service"
BATCH = "/etc/linuxnet-gre/tunnels.batch"


def applied(run: str) -> dict:
    """What gre_tunnel returned on hosta in the role's run ``run`` (check, real, again)."""
    return json.loads((EPHEMERAL / f"switch-{run}.json").read_text())


def test_check_mode_predicted_the_switch_and_named_the_released_tunnel():
    result = applied("check")
    assert result["changed"] is True
    assert result["persisted"]["mechanism"] == "unit"
    assert result["persisted"]["removed"] == NETWORKD_FILES
    assert result["persisted"]["released"] == ["gre-hostb"]
    assert (result["changes"], result["commands"]) == ([], [])


def test_the_switch_released_the_tunnel_and_restored_anything_networkd_dropped_in_the_same_run():
    result = applied("real")
    assert result["changed"] is True
    assert result["persisted"]["mechanism"] == "unit"
    assert result["persisted"]["written"] == [BATCH, UNIT]
    assert result["persisted"]["removed"] == NETWORKD_FILES
    assert result["persisted"]["commands"] == [
        "systemctl enable --no-reload linuxnet-gre.service",
        "systemctl restart systemd-networkd.service",
    ]
    assert result["persisted"]["released"] == ["gre-hostb"]
    # The tunnel itself was as planned: whatever changed was put back after networkd let go of it.
    assert all(change["action"] == "restore" for change in result["changes"]), result["changes"]


def test_the_next_run_changes_nothing():
    result = applied("again")
    assert result["changed"] is False
    assert result["persisted"]["released"] == []


def test_gre_hostb_kept_its_address_and_is_up(gre_links, hostvars):
    assert gre_links("hosta") == {
        "gre-hostb": {
            "local": hostvars("hosta")["lab_address"],
            "remote": hostvars("hostb")["lab_public_address"],
            "ttl": 255,
            "key": None,
            "up": True,
            "addresses": ["10.0.0.1/30"],
        }
    }


def test_ping_hostb_through_the_tunnel(ping_through):
    ping_through("hosta", "gre-hostb", "10.0.0.2")


def test_networkd_runs_and_no_longer_manages_the_tunnel(lab_host):
    host = lab_host("hosta")
    assert host.service("systemd-networkd").is_running
    ifindex = host.file("/sys/class/net/gre-hostb/ifindex").content_string.strip()
    state = host.file(f"/run/systemd/netif/links/{ifindex}").content_string
    assert "ADMIN_STATE=unmanaged\n" in state
    assert "NETWORK_FILE=" not in state
    assert host.run(f"ls {NETWORKD}*").stdout == ""


def test_the_unit_is_in_place(lab_host):
    host = lab_host("hosta")
    assert host.service("linuxnet-gre.service").is_enabled
    assert host.file(UNIT).is_file
    batch = host.file(BATCH).content_string
    assert "link add name gre-hostb " in batch
    assert 'link set dev gre-hostb alias "managed-by: linuxnet.gre" up' in batch
    assert "address add 10.0.0.1/30 dev gre-hostb" in batch
