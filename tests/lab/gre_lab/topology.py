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
# A NIC's MTU: at least IPv4's 576, at most 1500, the largest UML's vector NICs take (max_mtu).
MIN_NIC_MTU = 576
MAX_NIC_MTU = 1500
# A Debian package name, for a topology's extra packages (its own image; see image.py).
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# The Debian releases the lab builds guest images of (image.py handles what differs between them),
# and the one a topology gets unless it, or a host of it, says `release:`.
RELEASES = ("bookworm", "trixie")
DEFAULT_RELEASE = "bookworm"
# How a host boots (`kind:`): a user-mode-linux guest (Debian's UML kernel, the default), or the same
# image under QEMU (TCG) with its own Debian cloud kernel, which UML's lacks features of (FOU/GUE tunnels).
KINDS = ("uml", "qemu")
DEFAULT_KIND = "uml"
# A host's memory in MiB, unless it says `memory:`, and the least it may ask for, by kind. A QEMU
# guest's cloud kernel unpacks a 15 MB initrd at boot and its processes need more than UML's (README.md,
# "QEMU hosts").
DEFAULT_MEMORY = {"uml": 256, "qemu": 384}
MIN_MEMORY = {"uml": 96, "qemu": 256}
MAX_MEMORY = 4096
HOST_KEYS = {"nics", "gateway", "routes", "groups", "memory", "vars", "nat", "release", "packages", "kind"}


class TopologyError(ValueError):
    """A topology file that the lab cannot build, with the culprit named."""


@dataclass(frozen=True)
class Nic:
    segment: str
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    mtu: int | None = None  # None: the NIC's own (1500)


@dataclass(frozen=True)
class Nat:
    """A router's 1:1 NAT: PUBLIC (on one of its segments) stands for PRIVATE (on another)."""

    public: ipaddress.IPv4Address
    private: ipaddress.IPv4Address


@dataclass(frozen=True)
class Host:
    name: str
    nics: tuple[Nic, ...]
    router: bool = False
    nat: tuple[Nat, ...] = ()
    gateway: str | None = None
    routes: tuple[tuple[str, str], ...] = ()
    groups: tuple[str, ...] = ()
    kind: str = DEFAULT_KIND
    memory: int = DEFAULT_MEMORY[DEFAULT_KIND]
    vars: dict[str, Any] = field(default_factory=dict)
    # The Debian release of the host's image, and the extra packages in it (the topology's and the
    # host's own): hosts that agree on both share one image.
    release: str = DEFAULT_RELEASE
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topology:
    name: str
    hosts: tuple[Host, ...]
    # Extra Debian packages for every guest of this topology: a separate image (its recipe hash
    # includes them), so that other topologies keep the small base image.
    packages: tuple[str, ...] = ()
    # Packages of a container root filesystem (a tarball built with mmdebstrap) that the image
    # carries unpacked at /var/lib/gre-lab/container-rootfs, for `podman run --rootfs`: nothing is pulled.
    container_rootfs: tuple[str, ...] = ()

    @property
    def images(self) -> list[tuple[str, tuple[str, ...]]]:
        """The images this topology's hosts boot, as (release, packages), each once."""
        return sorted({(host.release, host.packages) for host in self.hosts})

    @property
    def segments(self) -> list[str]:
        return sorted({nic.segment for host in self.hosts for nic in host.nics})

    def public_address(self, host: Host) -> str:
        """The address the world sees for HOST: a router's 1:1 NAT public address, else its own."""
        own = host.nics[0].address.ip
        for router in self.hosts:
            for nat in router.nat:
                if nat.private == own:
                    return str(nat.public)
        return str(own)


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


def _plain_address(text: Any, where: str) -> ipaddress.IPv4Address:
    """An IPv4 address without a prefix, outside the forbidden ranges."""
    try:
        address = ipaddress.ip_address(str(text))
    except ValueError:
        raise TopologyError(f"{where}: {text!r} is not an address without a prefix (e.g. 203.0.113.11)") from None
    if not isinstance(address, ipaddress.IPv4Address):
        raise TopologyError(f"{where}: {text} is not IPv4; the lab's NAT is IPv4 only")
    for network, why in FORBIDDEN.items():
        if address in ipaddress.ip_network(network):
            raise TopologyError(f"{where}: {text} is in {network}, {why}; use 198.51.100.0/24 or 203.0.113.0/24")
    return address


def _nat(where: str, entries: Any, nics: list[Nic]) -> tuple[Nat, ...]:
    """A router's 'nat' list: each public address on one of its subnets, each private on another."""
    if not isinstance(entries, list):
        raise TopologyError(f"{where} nat: expected a list of {{public: ADDRESS, private: ADDRESS}}")
    result: list[Nat] = []
    for index, entry in enumerate(entries):
        entry_where = f"{where} nat[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"public", "private"}:
            raise TopologyError(f"{entry_where}: expected {{public: ADDRESS, private: ADDRESS}}")
        public = _plain_address(entry["public"], f"{entry_where}.public")
        private = _plain_address(entry["private"], f"{entry_where}.private")
        sides = []
        for label, address in (("public", public), ("private", private)):
            inside = [n for n, nic in enumerate(nics) if address in nic.address.network]
            if not inside:
                subnets = ", ".join(str(nic.address.network) for nic in nics)
                raise TopologyError(f"{entry_where}.{label}: {address} is in none of the router's subnets ({subnets})")
            network = nics[inside[0]].address.network
            if address in (network.network_address, network.broadcast_address) and network.prefixlen < 31:
                raise TopologyError(f"{entry_where}.{label}: {address} is {network}'s network or broadcast address")
            if address == nics[inside[0]].address.ip:
                raise TopologyError(f"{entry_where}.{label}: {address} is the router's own address")
            sides.append(set(inside))
        if sides[0] & sides[1]:
            raise TopologyError(
                f"{entry_where}: public {public} and private {private} are on the same subnet; "
                "the public address belongs on the outer segment, the private one on a segment behind the router"
            )
        for other in result:
            if public == other.public:
                raise TopologyError(f"{entry_where}.public: {public} is already mapped (to {other.private})")
            if private == other.private:
                raise TopologyError(f"{entry_where}.private: {private} already has a public address ({other.public})")
        result.append(Nat(public, private))
    return tuple(result)


def _release(value: Any, where: str) -> str:
    """A `release:` value: one of the Debian releases the lab builds images of."""
    if value not in RELEASES:
        raise TopologyError(
            f"{where} release: {value!r} is not a Debian release the lab builds images of; use one of {', '.join(RELEASES)}"
        )
    return str(value)


def _host(name: str, spec: dict[str, Any], router: bool, release: str, packages: tuple[str, ...]) -> Host:
    """Host NAME from its SPEC; RELEASE and PACKAGES are the topology's, which the host's own keys override (release)
    or extend (packages)."""
    where = f"host {name}"
    if not NAME.match(name):
        raise TopologyError(f"{where}: a host name is lower-case letters, digits and '-', starting with a letter")
    if not isinstance(spec, dict):
        raise TopologyError(f"{where}: expected a mapping with 'nics'")
    if "nat" in spec and not router:
        raise TopologyError(f"{where}: 'nat' is a router key; move {name} under 'routers' or drop its 'nat'")
    unknown = set(spec) - HOST_KEYS
    if unknown:
        raise TopologyError(f"{where}: unknown keys {sorted(unknown)}")
    nics = []
    for index, nic in enumerate(spec.get("nics") or []):
        nic_where = f"{where} nics[{index}]"
        if not isinstance(nic, dict) or not {"segment", "address"} <= set(nic) <= {"segment", "address", "mtu"}:
            raise TopologyError(f"{nic_where}: expected {{segment: NAME, address: CIDR}} (and optionally mtu: NUMBER)")
        if not NAME.match(str(nic["segment"])):
            raise TopologyError(f"{nic_where}: segment {nic['segment']!r} is not a simple name")
        mtu = nic.get("mtu")
        if mtu is not None and (
            isinstance(mtu, bool) or not isinstance(mtu, int) or not MIN_NIC_MTU <= mtu <= MAX_NIC_MTU
        ):
            raise TopologyError(
                f"{nic_where}.mtu: {mtu!r} is not a number from {MIN_NIC_MTU} to {MAX_NIC_MTU} "
                "(1500 is the most user-mode-linux's NICs take)"
            )
        nics.append(Nic(str(nic["segment"]), _address(nic["address"], f"{nic_where}.address"), mtu))
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
    kind = spec.get("kind", DEFAULT_KIND)
    if kind not in KINDS:
        raise TopologyError(
            f"{where} kind: {kind!r} is not a kind of host the lab boots; use uml (user-mode-linux, the default) "
            "or qemu (the image's Debian cloud kernel under QEMU)"
        )
    memory = spec.get("memory", DEFAULT_MEMORY[kind])
    if isinstance(memory, bool) or not isinstance(memory, int) or not MIN_MEMORY[kind] <= memory <= MAX_MEMORY:
        raise TopologyError(
            f"{where} memory: {memory!r} is not a size in MiB from {MIN_MEMORY[kind]} to {MAX_MEMORY} (for kind {kind})"
        )
    return Host(
        name=name,
        nics=tuple(nics),
        router=router,
        nat=_nat(where, spec["nat"], nics) if "nat" in spec else (),
        gateway=None if gateway is None else str(gateway),
        routes=tuple(routes),
        groups=tuple(str(g) for g in spec.get("groups") or ()),
        kind=str(kind),
        memory=memory,
        vars=dict(spec.get("vars") or {}),
        release=_release(spec["release"], where) if "release" in spec else release,
        packages=tuple(sorted({*packages, *_packages(spec, "packages", where)})),
    )


def _packages(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A list of Debian package names under KEY of a topology or a host (WHERE), empty when absent, sorted."""
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(p, str) and PACKAGE.match(p) for p in value):
        raise TopologyError(f"{where} {key}: expected a list of Debian package names, e.g. [podman]")
    return tuple(sorted(set(value)))


def parse(data: Any, name: str) -> Topology:
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise TopologyError(f"topology {name}: expected a mapping with 'hosts' (and optionally 'routers')")
    unknown = set(data) - {"name", "description", "hosts", "routers", "packages", "container_rootfs", "release"}
    if unknown:
        raise TopologyError(f"topology {name}: unknown keys {sorted(unknown)}")
    where = f"topology {name}"
    release = _release(data["release"], where) if "release" in data else DEFAULT_RELEASE
    packages = _packages(data, "packages", where)
    container_rootfs = _packages(data, "container_rootfs", where)
    routers = data.get("routers") or {}
    duplicate = set(data["hosts"]) & set(routers)
    if duplicate:
        raise TopologyError(f"topology {name}: {sorted(duplicate)} listed both as host and as router")
    hosts = [_host(str(n), s, False, release, packages) for n, s in data["hosts"].items()]
    hosts += [_host(str(n), s, True, release, packages) for n, s in routers.items()]
    if len(hosts) > MAX_HOSTS:
        raise TopologyError(f"topology {name}: {len(hosts)} hosts, the lab boots at most {MAX_HOSTS}")
    seen: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, str] = {}
    for host in hosts:
        for nic in host.nics:
            if nic.address.ip in seen:
                raise TopologyError(f"host {host.name}: address {nic.address.ip} is also {seen[nic.address.ip]}'s")
            seen[nic.address.ip] = host.name
    mapped: dict[ipaddress.IPv4Address, str] = {}
    for host in hosts:
        for index, nat in enumerate(host.nat):
            where = f"host {host.name} nat[{index}]"
            if nat.public in seen:
                raise TopologyError(f"{where}.public: {nat.public} is already {seen[nat.public]}'s underlay address")
            if nat.public in mapped:
                raise TopologyError(f"{where}.public: {nat.public} is already a public address of {mapped[nat.public]}")
            if nat.private in mapped:
                raise TopologyError(f"{where}.private: {nat.private} is already mapped by {mapped[nat.private]}")
            if seen.get(nat.private) is None:
                raise TopologyError(f"{where}.private: {nat.private} is no host's underlay address")
            if seen[nat.private] == host.name:
                raise TopologyError(f"{where}.private: {nat.private} is the router's own address")
            mapped[nat.public] = mapped[nat.private] = host.name
    return Topology(
        name=str(data.get("name") or name),
        hosts=tuple(hosts),
        packages=packages,
        container_rootfs=container_rootfs,
    )


def load(path: str | Path) -> Topology:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise TopologyError(f"cannot read topology {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise TopologyError(f"topology {path} is not valid YAML: {error}") from None
    return parse(data, path.stem)
