"""Reads and checks a lab topology file (YAML): hosts, their underlay segments and addresses."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Never a lab address: this machine's own networks, the lab's management links, and the
# collection's default inner pool (the lab must not pre-empt what the tests allocate).
FORBIDDEN = {
    "192.0.2.0/24": "this machine's own network",
    "fd00::/64": "this machine's own network",
    "169.254.0.0/16": "the lab's management links",
    "10.0.0.0/24": "the collection's default inner address pool",
}
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
MAX_HOSTS = 100


class TopologyError(ValueError):
    """A topology file that the lab cannot build, with the culprit named."""


@dataclass(frozen=True)
class Nic:
    segment: str
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True)
class Host:
    name: str
    nics: tuple[Nic, ...]
    router: bool = False
    gateway: str | None = None
    routes: tuple[tuple[str, str], ...] = ()
    groups: tuple[str, ...] = ()
    memory: int = 256
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    name: str
    hosts: tuple[Host, ...]

    @property
    def segments(self) -> list[str]:
        return sorted({nic.segment for host in self.hosts for nic in host.nics})


def _address(text: Any, where: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        address = ipaddress.ip_interface(str(text))
    except ValueError:
        raise TopologyError(f"{where}: {text!r} is not an address with a prefix (e.g. 203.0.113.1/24)") from None
    if "/" not in str(text):
        raise TopologyError(f"{where}: {text!r} needs a prefix length (e.g. 203.0.113.1/24)")
    for network, why in FORBIDDEN.items():
        if address.network.overlaps(ipaddress.ip_network(network)):
            raise TopologyError(f"{where}: {text} overlaps {network}, {why}; use 198.51.100.0/24 or 203.0.113.0/24")
    return address


def _host(name: str, spec: dict[str, Any], router: bool) -> Host:
    where = f"host {name}"
    if not NAME.match(name):
        raise TopologyError(f"{where}: a host name is lower-case letters, digits and '-', starting with a letter")
    if not isinstance(spec, dict):
        raise TopologyError(f"{where}: expected a mapping with 'nics'")
    unknown = set(spec) - {"nics", "gateway", "routes", "groups", "memory", "vars"}
    if unknown:
        raise TopologyError(f"{where}: unknown keys {sorted(unknown)}")
    nics = []
    for index, nic in enumerate(spec.get("nics") or []):
        nic_where = f"{where} nics[{index}]"
        if not isinstance(nic, dict) or set(nic) != {"segment", "address"}:
            raise TopologyError(f"{nic_where}: expected {{segment: NAME, address: CIDR}}")
        if not NAME.match(str(nic["segment"])):
            raise TopologyError(f"{nic_where}: segment {nic['segment']!r} is not a simple name")
        nics.append(Nic(str(nic["segment"]), _address(nic["address"], f"{nic_where}.address")))
    if not nics:
        raise TopologyError(f"{where}: needs at least one nic on an underlay segment")
    connected = [nic.address.network for nic in nics]
    gateway = spec.get("gateway")
    routes = []
    for index, route in enumerate(spec.get("routes") or []):
        if not isinstance(route, dict) or set(route) != {"to", "via"}:
            raise TopologyError(f"{where} routes[{index}]: expected {{to: CIDR, via: ADDRESS}}")
        routes.append((str(route["to"]), str(route["via"])))
    for via, label in [(gateway, "gateway"), *((r[1], f"routes[{i}].via") for i, r in enumerate(routes))]:
        if via is None:
            continue
        try:
            via_address = ipaddress.ip_address(str(via))
        except ValueError:
            raise TopologyError(f"{where} {label}: {via!r} is not an address") from None
        if not any(via_address in network for network in connected):
            raise TopologyError(f"{where} {label}: {via} is not on any of the host's segments")
    memory = spec.get("memory", 256)
    if not isinstance(memory, int) or not 96 <= memory <= 4096:
        raise TopologyError(f"{where} memory: {memory!r} is not a size in MiB from 96 to 4096")
    return Host(
        name=name,
        nics=tuple(nics),
        router=router,
        gateway=None if gateway is None else str(gateway),
        routes=tuple(routes),
        groups=tuple(str(g) for g in spec.get("groups") or ()),
        memory=memory,
        vars=dict(spec.get("vars") or {}),
    )


def parse(data: Any, name: str) -> Topology:
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise TopologyError(f"topology {name}: expected a mapping with 'hosts' (and optionally 'routers')")
    unknown = set(data) - {"name", "description", "hosts", "routers"}
    if unknown:
        raise TopologyError(f"topology {name}: unknown keys {sorted(unknown)}")
    routers = data.get("routers") or {}
    duplicate = set(data["hosts"]) & set(routers)
    if duplicate:
        raise TopologyError(f"topology {name}: {sorted(duplicate)} listed both as host and as router")
    hosts = [_host(str(n), s, router=False) for n, s in data["hosts"].items()]
    hosts += [_host(str(n), s, router=True) for n, s in routers.items()]
    if len(hosts) > MAX_HOSTS:
        raise TopologyError(f"topology {name}: {len(hosts)} hosts, the lab boots at most {MAX_HOSTS}")
    seen: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for host in hosts:
        for nic in host.nics:
            if nic.address.ip in seen:
                raise TopologyError(f"host {host.name}: address {nic.address.ip} is also {seen[nic.address.ip]}'s")
            seen[nic.address.ip] = host.name
    return Topology(name=str(data.get("name") or name), hosts=tuple(hosts))


def load(path: str | Path) -> Topology:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise TopologyError(f"cannot read topology {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise TopologyError(f"topology {path} is not valid YAML: {error}") from None
    return parse(data, path.stem)
