# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the managed hosts: gre_host_facts's logic, a cheap read of what the role needs of a host.

- ``default_ipv4`` / ``default_ipv6``: the interface of the default route, its MTU and the address
  the kernel sends from, in the shape (a subset of the keys) of the facts ``ansible.builtin.setup``
  gathers under these names, from ``route show default`` and ``address show``, both in one
  ``ip -json [-6] -batch -`` per IP version. Unlike the setup module's network subset, the cost
  does not grow with the host's interfaces.
- ``systemd``, ``networkd_active``, ``networkd_enabled``, ``udevd_active``, ``dbus``, ``systemd_version``: what
  decides how the role persists tunnels, from one ``systemctl show``, and ``systemctl --version`` only where
  systemd-networkd and systemd-udevd run (the version decides nothing elsewhere): _systemd.
- ``firewall``: what filters input, and whether gre_firewall's objects are in place (_firewall).
- ``tools``: what gre_tunnel would fail with for a tool it needs (iproute2's ``ip``; ``modprobe`` for a GRE
  kernel module not loaded yet), and, where asked, for a kernel built without GRE in UDP, so that the role stops
  before any host changes.

The host is reached through _host.Host alone; tests replace it with answers captured from real kernels.
"""

from __future__ import annotations

import ipaddress
import os
import re
import typing as t

from ansible_collections.linuxnet.gre.plugins.module_utils import _firewall_state
from ansible_collections.linuxnet.gre.plugins.module_utils._constants import FORWARD_CONF, IPSEC_CONF, KERNEL_MODULE
from ansible_collections.linuxnet.gre.plugins.module_utils._host import (
    GreError,
    Host,
    not_installed,
    output,
    read_json,
)
from ansible_collections.linuxnet.gre.plugins.module_utils._systemd import persistence, services
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.kernel import Kernel, not_loaded

# IPv4's default routes and the addresses (with their links' MTU and MAC) in one process. IPv6's
# default routes need -6, which applies to a whole batch and leaves the link-layer details out of
# `address show`: a process of their own.
BATCH = ["ip", "-json", "-batch", "-"]
BATCH_LINES = "route show default\naddress show\n"
ROUTES6 = ["ip", "-json", "-6", "route", "show", "default"]
ADDRESSES = ["ip", "-json", "address", "show"]
# Whether ip is iproute2's, which prints JSON: BusyBox's refuses -json (fixtures/tools/busybox.json).
IP_CHECK = ["ip", "-json", "link", "show", "dev", "lo"]
# GRE in UDP (a tunnel's encap) is a build option of its own: without it the fou module still loads and takes
# receive ports, and `ip link add ... encap fou` fails with "Invalid argument" (the lab's UML kernel 6.1.176, whose
# configuration says "# CONFIG_NET_FOU_IP_TUNNELS is not set"; Debian's own kernels set it). Read where Debian,
# Ubuntu and the RHEL family install a kernel's configuration, beside it.
OSRELEASE = "/proc/sys/kernel/osrelease"
KERNEL_CONFIG = "/boot/config-{release}"
FOU_TUNNELS = "CONFIG_NET_FOU_IP_TUNNELS"
FAMILY = {4: "inet", 6: "inet6"}


def default_route(routes: list[dict[str, t.Any]]) -> dict[str, t.Any] | None:
    """The default route the kernel uses: the lowest metric among those with a device."""
    usable = [r for r in routes if r.get("dst") == "default" and r.get("dev") and r.get("type", "unicast") == "unicast"]
    return min(usable, key=lambda r: r.get("metric", 0), default=None)


def usable_address(info: dict[str, t.Any], version: int) -> bool:
    """A global address of that version that the kernel may send from."""
    if info.get("family") != FAMILY[version] or info.get("scope") != "global":
        return False
    return not any(info.get(flag) for flag in ("secondary", "tentative", "deprecated", "dadfailed", "temporary"))


def default_interface(route: dict[str, t.Any], links: list[dict[str, t.Any]], version: int) -> dict[str, t.Any] | None:
    """The fact for one IP version, as setup names its keys; None when the route's device has no address to send from."""
    link = next((link for link in links if link.get("ifname") == route["dev"]), None)
    if link is None:
        return None
    addresses = [info for info in link.get("addr_info", []) if info.get("family") == FAMILY[version]]
    source = route.get("prefsrc")
    chosen = next((info for info in addresses if info.get("local") == source), None) if source else None
    if chosen is None:
        chosen = next((info for info in addresses if usable_address(info, version)), None)
    if chosen is None:
        return None
    fact: dict[str, t.Any] = {
        "address": chosen["local"],
        "prefix": str(chosen["prefixlen"]),
        "interface": route["dev"],
        "mtu": link.get("mtu"),
        "macaddress": link.get("address"),
        "type": link.get("link_type"),
    }
    if "gateway" in route:
        fact["gateway"] = route["gateway"]
    if version == 4:
        network = ipaddress.ip_interface(f"{chosen['local']}/{chosen['prefixlen']}").network
        fact["network"] = str(network.network_address)
        fact["netmask"] = str(network.netmask)
    else:
        fact["scope"] = chosen["scope"]
    return fact


def defaults(host: Host, versions: t.Iterable[int]) -> dict[str, t.Any]:
    """``default_ipv4`` / ``default_ipv6`` for the versions asked for and found."""
    versions = set(versions)
    routes: dict[int, dict[str, t.Any] | None] = {}
    links: list[dict[str, t.Any]] | None = None
    if 4 in versions:
        routes4, links = read_json(host, BATCH, BATCH_LINES)
        routes[4] = default_route(routes4)
    if 6 in versions:
        routes[6] = default_route(read_json(host, ROUTES6)[0])
    if links is None and any(routes.values()):
        (links,) = read_json(host, ADDRESSES)
    facts = {}
    for version, route in routes.items():
        fact = default_interface(route, links or [], version) if route else None
        if fact:
            facts[f"default_ipv{version}"] = fact
    return facts


def encap_problem(host: Host) -> str | None:
    """Why this kernel cannot carry a tunnel's GRE in UDP, from its build configuration; None where it can, and
    where the configuration is not there to read (then the tunnel's creation is the test)."""
    release = (host.read_text(OSRELEASE) or "").strip()
    path = KERNEL_CONFIG.format(release=release)
    config = host.read_text(path) if release else None
    if config is None or re.search(rf"^{FOU_TUNNELS}=y$", config, re.MULTILINE):
        return None
    return (
        f"this kernel ({release}) cannot carry GRE in UDP: it was built without {FOU_TUNNELS} ({path}), and refuses "
        "a tunnel's encap"
    )


def tools(host: Host, encap: bool = False, check_ip: bool = True) -> dict[str, t.Any]:
    """What gre_tunnel would fail with for lack of a tool here (None: nothing lacks), before it changes anything.

    ``ip``: iproute2's, which every run of gre_tunnel reads the kernel with: found (``which``) and printing
    JSON (one ``ip -json link show dev lo``; not with ``check_ip`` false, where the default routes' own read is
    the check). ``modprobe``: per tunnel mode, its kernel module is loaded or built in (under /sys/module), or
    ``modprobe`` is found to load it; no process. With ``encap``, ``encap``: whether the kernel can carry GRE in
    UDP (encap_problem); two reads, no process.
    """
    ip = None
    if host.which("ip") is None:
        ip = not_installed("ip")
    elif check_ip:
        try:
            output(host, IP_CHECK)
        except GreError as exc:
            ip = exc.msg
    loader = host.which("modprobe") is not None
    loadable = {
        name: loader or host.exists(os.path.join(Kernel.sys_module_dir, name))
        for name in sorted(set(KERNEL_MODULE.values()))
    }
    found: dict[str, t.Any] = {
        "ip": ip,
        "modprobe": {
            mode: None if loadable[name] else not_loaded(name, not_installed("modprobe"))
            for mode, name in KERNEL_MODULE.items()
        },
    }
    if encap:
        found["encap"] = encap_problem(host)
    return found


def files(host: Host) -> dict[str, bool]:
    """Whether the collection's files that a step undoes where nothing is planned any more are here: gre_forward's
    sysctl.d file (the values to put back) and the role's swanctl file (the IKE connections to remove). Where neither
    is, the role skips those steps on a host with nothing planned for them: two module runs fewer per host."""
    return {"forward": host.exists(FORWARD_CONF), "ipsec": host.exists(IPSEC_CONF)}


def gather(host: Host, params: dict[str, t.Any]) -> dict[str, t.Any]:
    """The module's ansible_facts; GreError when the default routes are asked for and ip cannot read them.

    Where they are (the role's discovery), their ``ip -json`` read is the check that ip is iproute2's: a process
    fewer, and the same error (BusyBox's ip refuses -json whatever the command; _host.busybox_problem)."""
    found = tools(host, params["encap"], check_ip=not params["default_routes"])
    if params["default_routes"] and found["ip"] is not None:
        raise GreError(found["ip"])
    facts = defaults(host, params["default_routes"])
    own: dict[str, t.Any] = services(host)
    own["tools"] = found
    own["persist"] = persistence(own)
    own["files"] = files(host)
    if params["firewall"]:
        own["firewall"] = _firewall_state.summary(host)
    facts["linuxnet_gre"] = own
    return facts
