"""The seed's premise: the GRE hosts sit on different subnets that meet only through the router."""

from __future__ import annotations

testinfra_hosts = ["ansible://gre_hosts"]


def _inventory(host, pattern):
    """Another inventory host's variables (testinfra gives a host only its own)."""
    runner = host.backend.ansible_runner
    return [runner.get_variables(name) for name in runner.get_hosts(pattern)]


def _peers(host):
    me = host.ansible.get_variables()["inventory_hostname"]
    return [peer for peer in _inventory(host, "gre_hosts") if peer["inventory_hostname"] != me]


def _router_addresses(host):
    return {
        nic["address"].split("/")[0] for router in _inventory(host, "lab_routers") for nic in router["lab_underlay"]
    }


def test_peer_reachable_over_the_underlay(host):
    for peer in _peers(host):
        assert host.run(f"ping -c 1 -W 3 {peer['lab_address']}").rc == 0, peer["lab_address"]


def test_peer_not_on_link(host):
    # A direct send, bypassing the routing table, finds no such neighbour.
    for peer in _peers(host):
        assert host.run(f"ping -r -c 1 -W 1 {peer['lab_address']}").rc != 0, peer["lab_address"]


def test_router_is_the_hop_between(host):
    # With a hop limit of one, the router answers "time to live exceeded" and names itself.
    routers = _router_addresses(host)
    for peer in _peers(host):
        hop = host.run(f"ping -t 1 -c 1 -W 3 {peer['lab_address']}")
        assert hop.rc != 0
        assert "Time to live exceeded" in hop.stdout, hop.stdout
        assert any(f"From {address} " in hop.stdout for address in routers), hop.stdout
