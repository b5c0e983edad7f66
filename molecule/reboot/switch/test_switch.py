"""After the reboot check, hosta switched from networkd to the unit (switch.yml): its tunnels stayed whole.

gre_tunnel removed the networkd files of gre-hostb and gre-hostc, told networkd (restarted: the lab has no
D-Bus), waited until networkd let go of the tunnels and put back whatever it dropped, in the same run; the
role calls it once. The tunnels keep their addresses, are up, pass packets; networkd no longer manages them;
the unit brings them back at boot.
"""

from __future__ import annotations

import json
import os
import pathlib

EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
NETWORKD = "/etc/systemd/network/60-linuxnet-gre"
# hosta's peers: hosta's address in the tunnel to each, and the peer's at the other end.
PEERS = {"hostb": ("10.0.0.1/30", "10.0.0.2"), "hostc": ("10.0.0.5/30", "10.0.0.6")}
TUNNELS = [f"gre-{peer}" for peer in PEERS]
# In the order gre_tunnel removes them: reverse order of their names.
NETWORKD_FILES = sorted(
    [f"{NETWORKD}.link", *(f"{NETWORKD}-{name}.{kind}" for name in TUNNELS for kind in ("network", "netdev"))],
    reverse=True,
)
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
    assert result["persisted"]["released"] == list(TUNNELS)
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
    assert result["persisted"]["released"] == list(TUNNELS)
    # The tunnels themselves was as planned: whatever changed was put back after networkd let go of it.
    assert all(change["action"] == "restore" for change in result["changes"]), result["changes"]


def test_the_next_run_changes_nothing():
    result = applied("again")
    assert result["changed"] is False
    assert result["persisted"]["released"] == []


def test_the_tunnels_kept_their_addresses_and_are_up(gre_links, hostvars):
    assert gre_links("hosta") == {
        f"gre-{peer}": {
            "local": hostvars("hosta")["lab_address"],
            "remote": hostvars(peer)["lab_public_address"],
            "ttl": 255,
            "key": None,
            "up": True,
            "addresses": [address],
        }
        for peer, (address, _peer_address) in PEERS.items()
    }


def test_ping_through_the_tunnels(ping_through):
    for peer, (_address, peer_address) in PEERS.items():
        ping_through("hosta", f"gre-{peer}", peer_address)


def test_networkd_runs_and_no_longer_manages_the_tunnels(lab_host):
    host = lab_host("hosta")
    assert host.service("systemd-networkd").is_running
    for name in TUNNELS:
        ifindex = host.file(f"/sys/class/net/{name}/ifindex").content_string.strip()
        state = host.file(f"/run/systemd/netif/links/{ifindex}").content_string
        assert "ADMIN_STATE=unmanaged\n" in state
        assert "NETWORK_FILE=" not in state
    assert host.run(f"ls {NETWORKD}*").stdout == ""


def test_the_unit_is_in_place(lab_host):
    host = lab_host("hosta")
    assert host.service("linuxnet-gre.service").is_enabled
    assert host.file(UNIT).is_file
    batch = host.file(BATCH).content_string
    for peer, (address, _peer_address) in PEERS.items():
        name = f"gre-{peer}"
        assert f"link add name {name} " in batch
        assert f'link set dev {name} alias "managed-by: linuxnet.gre" up' in batch
        assert f"address add {address} dev {name}" in batch
