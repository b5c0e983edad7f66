"""What QEMU guests (topology `kind: qemu`) need: a disk over the image, and the command line that boots it.

A QEMU host boots the same image as a UML host, with the image's own Debian cloud kernel and initrd
(image.boot_files), in software emulation (TCG: KVM does not work on the lab's machines, LAB-NOTES).
Its NICs are tap devices that the lab creates in its network namespace: the management tap carries
the namespace's end of the host's /30 as a UML host's veth does, and the underlay taps are ports of
the segments' bridges. No user-mode networking: a guest reaches nothing but the lab.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

QEMU_BINARY = "qemu-system-x86_64"
QEMU_IMG = "qemu-img"
TUN = Path("/dev/net/tun")
# The translation cache of each guest, in MiB: QEMU's default (a quarter of the guest's memory, at
# least 1 GiB here) doubles a guest's memory on the machine (LAB-NOTES: 742 MiB instead of ~340).
# 128 MiB: each task 10-15 % faster than with 64 for ~100 MiB more per guest (tests/lab/README.md),
# and the suite's minutes are scarcer than the machine's memory.
TB_SIZE = 128
# Kernel parameters before the lab's own (lab.*): the root is the virtio disk, the console the
# serial port (the host's log), and the NICs keep the kernel's names eth0, eth1... in the order of
# their PCI slots, which is the order of -device below (the initrd's udev loads virtio_net, so
# they exist before lab-setup runs).
KERNEL_PARAMETERS = ("root=/dev/vda", "rw", "console=ttyS0", "net.ifnames=0")


def check() -> None:
    """Whether this machine can boot QEMU hosts; raise RuntimeError saying what is missing otherwise."""
    missing = [
        f"{program} (Debian package {package})"
        for program, package in ((QEMU_BINARY, "qemu-system-x86"), (QEMU_IMG, "qemu-utils"))
        if shutil.which(program) is None
    ]
    if missing:
        raise RuntimeError(f"QEMU hosts need {' and '.join(missing)}: see tests/requirements-apt.txt")
    # QEMU opens the tun device for each NIC as this user (root of the lab's user namespace maps to
    # us): mode 0600 root, as here, serves only root.
    if not os.access(TUN, os.R_OK | os.W_OK):
        try:
            mode = stat.filemode(TUN.stat().st_mode)
        except OSError:
            mode = "missing"
        raise RuntimeError(
            f"QEMU hosts need read and write access to {TUN} for their tap NICs ({mode} here, uid {os.getuid()}); "
            "run the lab as root or give the device mode 0666"
        )


def create_overlay(base: Path, overlay: Path) -> None:
    """A qcow2 disk of the host's own over the read-only raw BASE image: the guest writes only there, and a
    reboot of the guest (same QEMU process) keeps it."""
    overlay.unlink(missing_ok=True)
    result = subprocess.run(
        [QEMU_IMG, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"qemu-img could not create {overlay} over {base}: {result.stderr.strip()}")


def mac(host_index: int, nic: int) -> str:
    """NIC's MAC address on host HOST_INDEX (1..): unique in the lab (QEMU's default is the same for every
    process, and two guests on one bridge must differ), in QEMU's own 52:54:00 prefix."""
    return f"52:54:00:{host_index >> 8:02x}:{host_index & 0xFF:02x}:{nic:02x}"


def command(
    *,
    memory: int,
    kernel: Path,
    initrd: Path,
    overlay: Path,
    taps: list[str],
    host_index: int,
    parameters: list[str],
) -> list[str]:
    """The QEMU command line of a guest: MEMORY MiB, booting KERNEL and INITRD with the lab's PARAMETERS (lab.*)
    from the disk OVERLAY, with one virtio NIC on each tap device of TAPS (the first is eth0, management)."""
    argv = [
        QEMU_BINARY,
        "-accel",
        f"tcg,tb-size={TB_SIZE}",
        "-machine",
        "pc",
        "-smp",
        "1",
        "-m",
        str(memory),
        # Nothing QEMU would add by itself (a NIC on user-mode networking, a VGA card, a monitor):
        # the console is the serial port, on stdout, which the lab writes to the host's log.
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        " ".join((*KERNEL_PARAMETERS, *parameters)),
        # The base image is opened read-only, without locking: a UML guest holds a POSIX read lock over
        # the whole of it, which QEMU takes for a writer denying it a consistent read.
        "-drive",
        f"file={overlay},format=qcow2,if=virtio,cache=unsafe,backing.file.locking=off",
    ]
    for number, tap in enumerate(taps):
        argv += [
            "-netdev",
            f"tap,id=n{number},ifname={tap},script=no,downscript=no",
            "-device",
            # romfile=: no iPXE option ROM, the kernel is booted directly.
            f"virtio-net-pci,netdev=n{number},mac={mac(host_index, number)},romfile=",
        ]
    return argv
