# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to the linuxnet.gre collection; runs on the managed hosts and the controller: the facts of GRE on Linux.

Each fact is defined here once; the modules, the planner and the diagnosis import it. The numbers
were measured on Linux 6.1 in the lab (the file named beside each).
"""

from __future__ import annotations

# The interface alias (ifalias) that marks an interface as created by this collection; gre_firewall's
# rules and chains carry it too, in their comments.
MANAGED_ALIAS = "managed-by: linuxnet.gre"
# The route protocol number that marks the routes gre_tunnel makes (``ip route ... proto 250``), as the
# alias marks its tunnels: only routes with it are ever changed or deleted. Numbers up to 192 are
# named in iproute2's rt_protos (FRR's bgp..eigrp are 186..192, Calico uses 80, BIRD 12); 250 is
# unassigned there and well clear of them. The kernel does not interpret numbers above 4 (static).
ROUTE_PROTOCOL = 250
# The metric a route gets when none is given: the kernel's default for each family.
DEFAULT_METRIC = {4: 0, 6: 1024}

# The swanctl file of the role's IKE connections (roles/gre_mesh, GRE over IPsec): written where a host has
# links with IPsec, removed where it has none any more; gre_host_facts says whether it is there.
IPSEC_CONF = "/etc/swanctl/conf.d/linuxnet-gre.conf"
# gre_forward's sysctl.d file (_forward.FILE), whose presence gre_host_facts reports too.
FORWARD_CONF = "/etc/sysctl.d/60-linuxnet-gre.conf"

MODES = ("gre", "gretap", "ip6gre", "ip6gretap")
IPV6_MODES = ("ip6gre", "ip6gretap")
# The modes that carry Ethernet frames: a route through them needs a next hop (a neighbour to resolve).
ETHERNET_MODES = ("gretap", "ip6gretap")
KERNEL_MODULE = {"gre": "ip_gre", "gretap": "ip_gre", "ip6gre": "ip6_gre", "ip6gretap": "ip6_gre"}
# Devices the GRE kernel modules create for themselves when they load.
FALLBACK_DEVICES = ("gre0", "gretap0", "erspan0", "ip6gre0")
# IP protocol number of GRE.
GRE_PROTOCOL = 47
# GRE in UDP (``encap``, issue 18): the kernel's FOU and GUE encapsulations of a tunnel's packets. The
# receiving end takes them off on a FOU port of the same kind (``ip fou add port P ipproto 47`` for
# fou, ``… gue`` for gue). Only the IPv4 modes: ip6gre takes encap too, but only with the fou6 module
# and IPv6 receive ports, which gre_tunnel does not manage (tests/unit/plugins/modules/fixtures/fou-inplace.txt).
ENCAP_TYPES = ("fou", "gue")
ENCAP_MODES = ("gre", "gretap")
# The kernel module of both: neither `ip fou add` nor `ip link add … encap` loads it; both fail without it.
FOU_MODULE = "fou"

# An interface name: at most IFNAMSIZ - 1 bytes.
MAX_NAME_LENGTH = 15
MAX_KEY = 2**32 - 1
MIN_MTU = 68
MIN_MTU_IPV6 = 1280
MAX_MTU = 65535
# The largest MTU the kernel takes, by mode, without and with a key
# (tests/unit/plugins/modules/fixtures/mtu-limits.txt). Above it, `ip link add` silently gives
# another MTU and `ip link set` fails.
MAX_TUNNEL_MTU = {
    "gre": (65511, 65507),
    "gretap": (65497, 65493),
    "ip6gre": (65531, 65527),
    "ip6gretap": (65455, 65447),
}

# What Linux subtracts from the underlay MTU when it creates a tunnel without an MTU, over a route to
# the remote address (tests/unit/plugins/plugin_utils/planner/test_mtu.py): the outer IP header (20,
# or 40 for IPv6) and the GRE header (4), the inner Ethernet header for the tap modes (14), and for
# the IPv6 modes the 8 bytes of the encapsulation limit option that ip6gre sends by default. A key
# adds 4 bytes to the GRE header.
OVERHEAD = {"gre": 24, "gretap": 38, "ip6gre": 52, "ip6gretap": 66}
KEY_OVERHEAD = 4
# GRE in UDP (``encap``): what the kernel's FOU and GUE encapsulations add to that, the UDP header
# (8) and for GUE its own 4-byte header. Measured on Debian's 6.1 cloud kernel under QEMU (the lab's
# UML kernel has no FOU): over a 1500-byte route the kernel gives gre with fou 1468 (1500 - 24 - 8)
# and gretap with gue 1450 (1500 - 38 - 12). The largest MTU the kernel takes (MAX_TUNNEL_MTU) is
# that much smaller too (ip_tunnel_change_mtu counts the encapsulation in the tunnel's header).
ENCAP_OVERHEAD = {"fou": 8, "gue": 12}
# The UDP port both ends of a link receive GRE in UDP on when none is given.
DEFAULT_ENCAP_PORT = 5555


# gre_probe waits for its start_at at most this many seconds; one further ahead starts at once.
PROBE_MAX_WAIT = 60


def overhead(mode: str, keyed: bool, encap: str | None = None) -> int:
    """The bytes a tunnel of this mode (with or without a key, in UDP or not) adds to each packet it carries."""
    return OVERHEAD[mode] + (KEY_OVERHEAD if keyed else 0) + ENCAP_OVERHEAD.get(encap or "", 0)


def max_tunnel_mtu(mode: str, keyed: bool, encap: str | None = None) -> int:
    """The largest MTU the kernel takes for a tunnel of this mode, key and encapsulation."""
    return MAX_TUNNEL_MTU[mode][keyed] - ENCAP_OVERHEAD.get(encap or "", 0)
