"""Builds (once) and caches the lab's images: Debian bookworm or trixie, for user-mode-linux and QEMU guests."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from . import topology, uml

# Container root filesystems (container_rootfs) are always of the default release.
ROOTFS_RELEASE = topology.DEFAULT_RELEASE
IMAGE_SIZE = "2G"
GUEST_DIR = Path(__file__).resolve().parent.parent / "guest"

PACKAGES = (
    # What the issue asks every lab host to have.
    "linux-image-cloud-amd64",
    "systemd-sysv",
    "udev",
    "openssh-server",
    "python3",
    "iproute2",
    "iputils-ping",
    "tcpdump",
    "nftables",
    "iptables",
    # What the lab itself needs in a guest.
    "kmod",
    "netbase",
    "procps",
)

# Files copied into the image: (source under guest/, destination in the image, mode).
GUEST_FILES = (
    ("lab-setup", "/usr/local/sbin/lab-setup", 0o755),
    ("lab-setup.service", "/etc/systemd/system/lab-setup.service", 0o644),
    ("sshd-lab.conf", "/etc/ssh/sshd_config.d/lab.conf", 0o644),
)

# What a release needs beyond the common recipe: lines of the customize script, run last (measured
# on this machine; tests/lab/README.md, "Releases").
RELEASE_LINES: dict[str, tuple[str, ...]] = {
    "bookworm": (),
    "trixie": (
        # systemd 257 runs ldconfig.service, systemd-journal-catalog-update.service and
        # systemd-update-done.service at a boot whose /etc/.updated is missing or older than /usr
        # (ConditionNeedsUpdate), and every boot of a lab guest is the image's first: 3.7 s on the
        # way to ssh (systemd-analyze critical-chain, 2 cores). Done once here, and marked done.
        'chroot "$1" ldconfig',
        'chroot "$1" journalctl --update-catalog',
        'chroot "$1" /usr/lib/systemd/systemd-update-done',
    ),
}

# Podman's settings for a guest without D-Bus, in images whose topology asks for podman.
PODMAN_CONF = ("containers-lab.conf", "/etc/containers/containers.conf.d/lab.conf")
# Where an image whose topology asks for a container root filesystem carries it, unpacked (see
# topology.py): `podman run --rootfs DIR:O` starts containers on it at once, where `podman import`
# of the same tree took 51-63 s in a UML guest.
CONTAINER_ROOTFS = "/var/lib/gre-lab/container-rootfs"
# Left out of every image and container root filesystem.
DPKG_EXCLUDES = (
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
)

# Units that cost boot time and do nothing useful in a short-lived guest.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "getty@tty1.service",
    "serial-getty@ttyS0.service",
    "console-getty.service",
    "systemd-timesyncd.service",
    "getty.target",
)


def _apt_sources() -> list[tuple[str, list[str]]]:
    """This machine's apt sources of binary packages, as (URI, suites), in apt's order."""
    sources = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in Path(path).read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
            )
            if "deb" in fields.get("Types", "").split() and fields.get("URIs", "").split():
                sources.append((fields["URIs"].split()[0], fields.get("Suites", "").split()))
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text().splitlines():
            match = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match:
                sources.append((match.group(1), [match.group(2)]))
    return sources


def debian_mirror(release: str = topology.DEFAULT_RELEASE) -> str:
    """Return the Debian mirror this machine's apt already uses (never a hard-coded host).

    A Debian mirror carries every release: a machine whose apt knows only bookworm (Debian 12, as
    this one and CI) builds trixie images from its bookworm mirror, as tests/matrix builds its
    trixie root. The mirror that names RELEASE itself comes first, then one that names another
    release the lab knows (a plain codename: never -security, whose archive is another).
    """
    sources = _apt_sources()
    for wanted in (release, *topology.RELEASES):
        for uri, suites in sources:
            if wanted in suites:
                return uri
    raise RuntimeError(
        f"no Debian mirror found in this machine's apt sources (/etc/apt/sources.list*): "
        f"none names {', '.join(dict.fromkeys((release, *topology.RELEASES)))}"
    )


def _customize_script(release: str, packages: tuple[str, ...] = (), rootfs: Path | None = None) -> str:
    """The shell run inside mmdebstrap's namespace, on the finished root filesystem "$1" of Debian RELEASE.

    PACKAGES (extra packages: the topology's and the host's) and ROOTFS (a container root filesystem tarball) add
    lines only when given, so that the base image's script, and so its hash, stay as they were.
    """
    version = uml.kernel_version()
    lines = [
        "set -e",
        f'mkdir -p "$1/lib/modules" && cp -a /usr/lib/uml/modules/{version} "$1/lib/modules/"',
        # The UML kernel's build configuration where Debian installs a kernel's, as gre_host_facts reads it (the
        # cloud kernel's is there from its package): without CONFIG_NET_FOU_IP_TUNNELS, no GRE in UDP on UML.
        f'{uml.UML_BINARY} --showconfig > "$1/boot/config-{version}" || rm -f "$1/boot/config-{version}"',
        "echo 'LABEL=labroot / ext4 rw,noatime 0 1' > \"$1/etc/fstab\"",
        'echo lab > "$1/etc/hostname"',
        'rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"',
    ]
    for name, dest, mode in GUEST_FILES:
        lines.append(f'install -D -m {mode:o} {shlex.quote(str(GUEST_DIR / name))} "$1{dest}"')
    lines += [
        'chroot "$1" systemctl enable lab-setup.service',
        'chroot "$1" systemctl mask ' + " ".join(MASKED_UNITS),
    ]
    if packages:
        # Container engines (netavark, CNI, docker) write their rules with `iptables`, Debian's
        # iptables-nft by default; the UML kernel's nf_tables has no ip family: use legacy.
        lines += [
            'chroot "$1" update-alternatives --set iptables /usr/sbin/iptables-legacy',
            'chroot "$1" update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy',
        ]
    if "podman" in packages:
        source = shlex.quote(str(GUEST_DIR / PODMAN_CONF[0]))
        lines.append(f'install -D -m 644 {source} "$1{PODMAN_CONF[1]}"')
    if rootfs is not None:
        lines += [
            f'mkdir -p "$1{CONTAINER_ROOTFS}"',
            f'tar -C "$1{CONTAINER_ROOTFS}" --exclude="./dev/*" -xf {shlex.quote(str(rootfs))}',
        ]
    lines += RELEASE_LINES[release]
    lines += [
        'rm -rf "$1/var/cache/apt"/*.bin "$1/var/lib/apt/lists"/*_Packages',
        # mke2fs -d copies whatever it sees: bind the tree without its /proc, /sys and /dev mounts.
        'export ROOTFS="$1" TREE="$(mktemp -d)"',
        'unshare --mount --propagation private sh -ec \'mount --bind "$ROOTFS" "$TREE"; '
        f'mkfs.ext4 -q -F -L labroot -d "$TREE" "$LAB_IMAGE" {IMAGE_SIZE}\'',
        'rmdir "$TREE"',
    ]
    return "\n".join(lines)


def recipe_digest(
    release: str = topology.DEFAULT_RELEASE, packages: tuple[str, ...] = (), container_rootfs: tuple[str, ...] = ()
) -> str:
    """A hash of everything that decides the image's content (the release included): change any of it and the image
    is rebuilt."""
    digest = hashlib.sha256()
    digest.update(f"{release}\n{IMAGE_SIZE}\n{' '.join(PACKAGES)}\n".encode())
    if packages:
        digest.update(f"extra packages: {' '.join(packages)}\n".encode())
    rootfs = rootfs_path(container_rootfs) if container_rootfs else None
    # The script names guest/ (and the cache) by absolute paths: leave the locations out of the hash.
    script = (
        _customize_script(release, packages, rootfs).replace(str(GUEST_DIR), "guest").replace(str(cache_dir()), "cache")
    )
    digest.update(script.encode())
    for name, _dest, _mode in GUEST_FILES:
        digest.update((GUEST_DIR / name).read_bytes())
    if "podman" in packages:
        digest.update((GUEST_DIR / PODMAN_CONF[0]).read_bytes())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "linuxnet-gre-lab"


def _flavour(release: str, packages: tuple[str, ...], container_rootfs: tuple[str, ...]) -> str:
    """The image's name before its hash: RELEASE-base, or RELEASE-with-PACKAGES for extra packages."""
    if not packages and not container_rootfs:
        return f"{release}-base"
    return f"{release}-with-" + "+".join((*packages, *(["ctroot"] if container_rootfs else [])))[:60]


def image_path(
    release: str = topology.DEFAULT_RELEASE, packages: tuple[str, ...] = (), container_rootfs: tuple[str, ...] = ()
) -> Path:
    flavour = _flavour(release, packages, container_rootfs)
    return cache_dir() / f"{flavour}-{recipe_digest(release, packages, container_rootfs)}.img"


def rootfs_digest(packages: tuple[str, ...]) -> str:
    digest = hashlib.sha256(f"{ROOTFS_RELEASE}\nrootfs apt\n{' '.join(packages)}\n{' '.join(DPKG_EXCLUDES)}\n".encode())
    digest.update(_ROOTFS_HOOK.encode())
    return digest.hexdigest()[:16]


def rootfs_path(packages: tuple[str, ...]) -> Path:
    return cache_dir() / f"ctroot-{rootfs_digest(packages)}.tar"


# The container root filesystem's last touches: no apt lists, an empty machine-id, and the
# directory sshd needs (a container has no systemd to make it).
_ROOTFS_HOOK = (
    'rm -rf "$1/var/cache/apt"/*.bin "$1/var/lib/apt/lists"/*_Packages; '
    'rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"; mkdir -p "$1/run/sshd"'
)


def _mmdebstrap(release: str, packages: tuple[str, ...], hook: str, output: str) -> list[str]:
    """The mmdebstrap command line of an image or a container root filesystem: Debian RELEASE with PACKAGES, finished
    by the shell HOOK, written to OUTPUT."""
    return [
        "mmdebstrap",
        "--mode=" + ("root" if os.geteuid() == 0 else "unshare"),
        "--variant=apt",
        "--include=" + ",".join(packages),
        '--aptopt=Acquire::Languages "none"',
        *DPKG_EXCLUDES,
        "--customize-hook=" + hook,
        release,
        output,
        debian_mirror(release),
    ]


def _run_mmdebstrap(command: list[str], made: Path, env: dict[str, str] | None = None) -> None:
    """Run COMMAND, its output on our stderr; it must make the file MADE."""
    result = subprocess.run(command, env=env, stdout=sys.stderr, check=False)
    if result.returncode != 0 or not made.exists():
        raise RuntimeError(f"mmdebstrap failed (exit {result.returncode}); its output is above")


def _publish(partial: Path, cached: Path) -> None:
    """Put a finished build in the cache, read-only (a backing file must never change under the guests'
    copy-on-write layers), and remove the older recipes of the same name (and what was taken out of them)."""
    partial.chmod(0o444)
    partial.rename(cached)
    _remove_boot_files(cached)
    _remove_stale(keep=cached)


# What QEMU hosts boot (topology kind qemu): the image's own kernel and initrd, taken out of it once
# and kept beside it as IMAGE.vmlinuz and IMAGE.initrd (so a lab's QEMU command line names the image,
# which keeps it from being removed as stale while the lab runs, see _in_use).
BOOT_FILES = ("vmlinuz", "initrd")


def boot_files_of(image: Path) -> tuple[Path, Path]:
    """Where the kernel and the initrd taken out of IMAGE are cached (boot_files() makes them)."""
    kernel, initrd = (image.with_name(f"{image.name}.{what}") for what in BOOT_FILES)
    return kernel, initrd


def _remove_boot_files(image: Path) -> None:
    for path in boot_files_of(image):
        path.unlink(missing_ok=True)


def _kernel_versions(listing: str) -> list[str]:
    """The kernel versions in an image's /boot (`debugfs -R "ls -p /boot"`) that have both a vmlinuz and an
    initrd, oldest first."""
    names = {line.strip("/").split("/")[4] for line in listing.splitlines() if line.count("/") >= 6}
    versions = {name.removeprefix("vmlinuz-") for name in names if name.startswith("vmlinuz-")}
    return sorted(
        (version for version in versions if f"initrd.img-{version}" in names),
        key=lambda version: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", version)],
    )


def _debugfs(image: Path, request: str) -> str:
    result = subprocess.run(["debugfs", "-R", request, str(image)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or "File not found" in result.stderr:
        raise RuntimeError(f"debugfs -R {request!r} {image} failed: {result.stderr.strip()}")
    return result.stdout


def boot_files(image: Path) -> tuple[Path, Path]:
    """The kernel and initrd in IMAGE's /boot (the newest, linux-image-cloud-amd64's), taken out with debugfs
    (no mount, no root) the first time a QEMU host boots IMAGE, and again when IMAGE was rebuilt since."""
    kernel, initrd = boot_files_of(image)
    built = image.stat().st_mtime
    if all(path.exists() and path.stat().st_mtime >= built for path in (kernel, initrd)):
        return kernel, initrd
    if shutil.which("debugfs") is None:
        raise RuntimeError("QEMU hosts need debugfs to take the kernel out of the image (Debian package e2fsprogs)")
    versions = _kernel_versions(_debugfs(image, "ls -p /boot"))
    if not versions:
        raise RuntimeError(f"{image} has no kernel with an initrd in /boot (linux-image-cloud-amd64 is in its recipe)")
    for name, path in ((f"vmlinuz-{versions[-1]}", kernel), (f"initrd.img-{versions[-1]}", initrd)):
        # A name of our own for the partial file: another lab may be taking the same files out right now.
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        try:
            _debugfs(image, f"dump /boot/{name} {partial}")
            if not partial.exists() or partial.stat().st_size == 0:
                raise RuntimeError(f"debugfs wrote no /boot/{name} out of {image}")
            partial.chmod(0o444)
            partial.rename(path)
        finally:
            partial.unlink(missing_ok=True)
    return kernel, initrd


@contextlib.contextmanager
def _building(cached: Path) -> t.Iterator[None]:
    """Hold CACHED's build lock: labs started at once (tests/run's lanes) that want one recipe build it once, the
    others waiting for it and then finding it cached, never two builds into one partial file."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached.with_name(f"{cached.name}.lock"), "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_rootfs(packages: tuple[str, ...], force: bool = False) -> Path:
    """A container root filesystem (Debian, PACKAGES) as a tarball, cached by its recipe like images."""
    tarball = rootfs_path(packages)
    with _building(tarball):
        return _build_rootfs(tarball, packages, force)


def _build_rootfs(tarball: Path, packages: tuple[str, ...], force: bool) -> Path:
    if tarball.exists() and not force:
        print(f"lab: container rootfs {tarball} is cached", flush=True)
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial.tar")
    partial.unlink(missing_ok=True)
    command = _mmdebstrap(ROOTFS_RELEASE, packages, _ROOTFS_HOOK, str(partial))
    print(f"lab: building container rootfs {tarball.name} with mmdebstrap", flush=True)
    started = time.monotonic()
    try:
        _run_mmdebstrap(command, partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _publish(partial, tarball)
    print(f"lab: container rootfs built in {time.monotonic() - started:.1f} s: {tarball}", flush=True)
    return tarball


def _in_use(image: Path) -> bool:
    """Whether a running guest has IMAGE as its backing file (a rebooting guest opens it again)."""
    needle = str(image).encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def _remove_stale(keep: Path) -> None:
    """Images or container root filesystems of older recipes of the same flavour (the name before the recipe's
    digest) go, unless a running lab still uses one."""
    flavour = keep.name[: -len("-0123456789abcdef" + keep.suffix)]
    for stale in keep.parent.glob(f"{glob.escape(flavour)}-" + "?" * 16 + keep.suffix):
        if stale != keep and not _in_use(stale):
            stale.unlink()
            _remove_boot_files(stale)


def build(
    force: bool = False,
    release: str = topology.DEFAULT_RELEASE,
    packages: tuple[str, ...] = (),
    container_rootfs: tuple[str, ...] = (),
) -> Path:
    """Build the image of Debian RELEASE (the base, or with extra PACKAGES and CONTAINER_ROOTFS) unless
    an image of the same recipe is cached; return its path."""
    image = image_path(release, packages, container_rootfs)
    with _building(image):
        return _build(image, force, release, packages, container_rootfs)


def _build(
    image: Path, force: bool, release: str, packages: tuple[str, ...], container_rootfs: tuple[str, ...]
) -> Path:
    if image.exists() and not force:
        digest = recipe_digest(release, packages, container_rootfs)
        print(f"lab: image {image} is cached (recipe {digest})", flush=True)
        return image
    rootfs = build_rootfs(container_rootfs) if container_rootfs else None
    image.parent.mkdir(parents=True, exist_ok=True)
    partial = image.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    command = _mmdebstrap(release, (*PACKAGES, *packages), _customize_script(release, packages, rootfs), "/dev/null")
    print(f"lab: building {image.name} with mmdebstrap (about a minute)", flush=True)
    started = time.monotonic()
    # Without root, mmdebstrap's hooks run as a subordinate uid that cannot write to the user's
    # cache: mkfs writes into a world-writable staging directory, and we copy the result out.
    staging = None if os.geteuid() == 0 else Path(tempfile.mkdtemp(prefix="gre-lab-image-"))
    if staging is not None:
        staging.chmod(0o777)
    target = partial if staging is None else staging / "image"
    try:
        _run_mmdebstrap(command, target, env=dict(os.environ, LAB_IMAGE=str(target)))
        if staging is not None:
            subprocess.run(["cp", "--sparse=always", str(target), str(partial)], check=True)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    _publish(partial, image)
    print(f"lab: image built in {time.monotonic() - started:.1f} s: {image}", flush=True)
    return image


def main(argv: list[str]) -> int:
    """`python -m gre_lab.image rootfs TOPOLOGY`: build (or find) the topology's container root
    filesystem tarball and print its path last, for `docker import` on a machine with Docker."""
    if len(argv) != 2 or argv[0] != "rootfs":
        print("usage: python -m gre_lab.image rootfs TOPOLOGY.yml", file=sys.stderr)
        return 2
    packages = topology.load(argv[1]).container_rootfs
    if not packages:
        print(f"topology {argv[1]} has no container_rootfs", file=sys.stderr)
        return 2
    print(build_rootfs(packages))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
