"""Hub and spoke built by site.yml: one tunnel from the hub to each spoke, none between spokes."""

from __future__ import annotations

import ipaddress

import pytest

SPOKES = ["spoke1", "spoke2", "spoke3"]


def test_hub_has_a_tunnel_to_each_spoke(gre_links):
    assert sorted(gre_links("hub")) == [f"gre-{spoke}" for spoke in SPOKES]


@pytest.mark.parametrize("spoke", SPOKES)
def test_spoke_has_only_the_hub(gre_links, hostvars, spoke):
    links = gre_links(spoke)
    assert sorted(links) == ["gre-hub"]
    assert (links["gre-hub"]["local"], links["gre-hub"]["remote"]) == (
        hostvars(spoke)["lab_address"],
        hostvars("hub")["lab_public_address"],
    )


@pytest.mark.parametrize("spoke", SPOKES)
def test_ping_hub_and_spoke_both_ways(gre_links, ping_through, spoke):
    (at_hub,), (at_spoke,) = gre_links("hub")[f"gre-{spoke}"]["addresses"], gre_links(spoke)["gre-hub"]["addresses"]
    assert ipaddress.ip_interface(at_hub).network == ipaddress.ip_interface(at_spoke).network
    ping_through("hub", f"gre-{spoke}", at_spoke.split("/")[0])
    ping_through(spoke, "gre-hub", at_hub.split("/")[0])
