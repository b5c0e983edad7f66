# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Private to the linuxnet.gre collection; runs on the controller only: which routed paths each host probes.

A routed path is a (host, peer network) pair: from an address of one of the host's own networks
(``gre_mesh_networks``) to an address in a network of another node, which the plan routes through
the host's tunnels (``tunnels[].routes``). ``verify_paths`` chooses, per network, the address to
ping:

- the address named for the network in ``gre_mesh_verify_targets`` (a device behind its owner);
  the owner's own address in the network is then pinged too (``gateway``), so that a device without
  a route back is told from a path that does not work;
- else the network itself where it is one address (a /32 or /128, such as a loopback address);
- else the owner's own address in it, as the owner's interfaces have it (``ip -json address show``,
  read by the role before probing, ``__gre_mesh_verify_addresses``).

A network with none of these (a LAN routed further behind its owner, or the owner outside this
play) is not probed; ``skipped`` says so, with the variable that would make it probed.
"""

from __future__ import annotations

import collections.abc as c
import ipaddress
import json
import typing as t

from ansible_collections.linuxnet.gre.plugins.plugin_utils._planner.model import VariableError

NETWORKS = "gre_mesh_networks"
TARGETS = "gre_mesh_verify_targets"
READ = "__gre_mesh_verify_addresses"
EXTERNAL = "gre_mesh_external_peers"


class PathError(Exception):
    """Bad input, named by host and variable, with the fix."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def networks_of(host: str, variables: t.Mapping[str, t.Any]) -> list[str]:
    """The host's ``gre_mesh_networks`` as networks (the planner has refused bad ones before)."""
    if NETWORKS not in variables:
        return []
    value = variables[NETWORKS] or []
    return [str(ipaddress.ip_network(str(network))) for network in value]


def targets_of(host: str, variables: t.Mapping[str, t.Any]) -> dict[str, str]:
    """``gre_mesh_verify_targets`` as seen by ``host``: network -> an address in it. Raises PathError."""
    if TARGETS not in variables:
        return {}
    value = variables[TARGETS] or {}
    if not isinstance(value, c.Mapping):
        raise PathError(
            f"{host}: {TARGETS} must be a mapping of network to an address in it "
            f"({{'192.168.10.0/24': '192.168.10.20'}}), not {type(value).__name__}"
        )
    found = {}
    for network, address in value.items():
        try:
            parsed = ipaddress.ip_network(str(network))
            inside = ipaddress.ip_address(str(address))
        except ValueError as error:
            raise PathError(
                f"{host}: {TARGETS}: {network!r}: {address!r}: {error}; give a network (address/length without "
                "host bits) and an address in it"
            ) from None
        if inside not in parsed:
            raise PathError(
                f"{host}: {TARGETS}: {address} is not in {parsed}; give an address of a device in that network"
            )
        found[str(parsed)] = str(inside)
    return found


def network_key(network: str) -> tuple[int, ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Networks in order, IPv4 first (networks of two families do not compare)."""
    parsed = ipaddress.ip_network(network)
    return parsed.version, parsed


def covering(prefixes: t.Iterable[str], network: str) -> str | None:
    """The most specific of ``prefixes`` that holds ``network`` (the route the kernel picks for it), or None.

    A network is routed by a route to itself, or to a summary that holds it (``summary`` on a hub and spoke).
    """
    wanted = ipaddress.ip_network(network)
    holding = [
        parsed
        for parsed in (ipaddress.ip_network(prefix) for prefix in prefixes)
        if parsed.version == wanted.version and wanted.subnet_of(parsed)  # type: ignore[arg-type]
    ]
    return str(max(holding, key=lambda parsed: parsed.prefixlen)) if holding else None


def read_addresses(variables: t.Mapping[str, t.Any]) -> list[str]:
    """The host's interface addresses, from the role's ``ip -json address show`` (none when it was not read)."""
    read = variables.get(READ)
    if not isinstance(read, c.Mapping) or not read.get("stdout"):
        return []
    try:
        links = json.loads(read["stdout"])
    except ValueError:
        return []
    return [info["local"] for link in links for info in link.get("addr_info", []) if "local" in info]


def target_of(network: str, owner: str, targets: dict[str, str], addresses: list[str]) -> dict[str, t.Any] | None:
    """The address to ping in ``network`` (and its gateway), or None when there is none to ping."""
    parsed = ipaddress.ip_network(network)
    own = sorted(
        (
            a
            for a in addresses
            if ipaddress.ip_address(a) in parsed and ipaddress.ip_address(a) != parsed.network_address
        ),
        key=ipaddress.ip_address,
    )
    if parsed.num_addresses == 1:
        own = [str(parsed.network_address)]
    if network in targets:
        gateway = own[0] if own and own[0] != targets[network] else None
        return {"network": network, "peer": owner, "address": targets[network], "gateway": gateway}
    if own:
        return {"network": network, "peer": owner, "address": own[0], "gateway": None}
    return None


def verify_paths(hostvars: t.Mapping[str, t.Any], plan: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Per planned host with networks, the paths it probes; and the networks it cannot probe, in words.

    Raises PathError or VariableError (a variable that cannot be templated), naming host and variable.
    """
    hosts = plan.get("hosts", {})
    owners: dict[str, str] = {}
    for host in sorted(hosts):
        for network in networks_of(host, hostvars[host]):
            owners[network] = host
    first = hostvars[min(hosts)] if hosts else {}
    for peer in first.get(EXTERNAL) or []:
        for network in (peer.get("networks") or []) if isinstance(peer, c.Mapping) else []:
            owners.setdefault(str(ipaddress.ip_network(str(network))), str(peer.get("name")))
    paths: dict[str, list[dict[str, t.Any]]] = {}
    skipped: list[str] = []
    for host in sorted(hosts):
        own = networks_of(host, hostvars[host])
        if not own:
            continue
        targets = targets_of(host, hostvars[host])
        versions = {ipaddress.ip_network(network).version for network in own}
        prefixes = [
            route["prefix"] for tunnel in hosts[host].get("tunnels", []) for route in tunnel.get("routes") or []
        ]
        found = []
        # The other nodes' networks that a route of the host holds: its own route, or a summary's.
        for prefix, owner in sorted(owners.items(), key=lambda item: network_key(item[0])):
            if owner == host or covering(prefixes, prefix) is None:
                continue
            if ipaddress.ip_network(prefix).version not in versions:
                continue
            addresses = read_addresses(hostvars[owner]) if owner in hosts else []
            target = target_of(prefix, owner, targets, addresses)
            if target is None:
                whose = f"{owner} has no address in it" if owner in hosts else f"{owner} is not in this play"
                skipped.append(
                    f"{host} to {prefix}: not probed, {whose}; name an address in it to ping in {TARGETS} "
                    f"({{'{prefix}': ADDRESS}})"
                )
                continue
            found.append(target)
        paths[host] = found
    return {"paths": paths, "skipped": skipped}


__all__ = ["PathError", "VariableError", "covering", "verify_paths"]
