# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gre_tunnel's persistence decided from one read of the files it persisted before (_tunnel/persist.prepare)."""

from __future__ import annotations

import collections
import dataclasses
import pathlib

from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel import persist
from ansible_collections.linuxnet.gre.plugins.module_utils._tunnel.model import Tunnel

GRE1 = Tunnel(name="gre1", mode="gre", remote="198.51.100.1", local="203.0.113.1", mtu=1476, addresses=("10.0.0.1/30",))
NETDEV = f"{persist.NETWORKD_DIR}/{persist.PREFIX}-gre1.netdev"
NETWORK = f"{persist.NETWORKD_DIR}/{persist.PREFIX}-gre1.network"
# systemctl show of a host where networkd runs, enabled, with udevd.
SHOW = (
    "Id=systemd-networkd.service\nActiveState=active\nUnitFileState=enabled\n\n"
    "Id=systemd-udevd.service\nActiveState=active\nUnitFileState=static\n"
)


class CountingFiles(persist.Files):
    """The files under a directory of the test's; counts the reads of each, answers systemctl show."""

    def __init__(self, root: pathlib.Path) -> None:
        super().__init__(host=None)  # type: ignore[arg-type]
        self.root = str(root)
        self.reads: collections.Counter[str] = collections.Counter()
        self.calls: list[list[str]] = []

    def read(self, path: str) -> str | None:
        self.reads[path] += 1
        return super().read(path)

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
        self.calls.append(argv)
        return 0, SHOW if argv[:2] == ["systemctl", "show"] else "", ""

    def put(self, path: str, content: str) -> None:
        target = pathlib.Path(self._at(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def host_with(tmp_path: pathlib.Path, files: dict[str, str]) -> CountingFiles:
    fake = CountingFiles(tmp_path)
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    for path, content in files.items():
        fake.put(path, content)
    return fake


def test_the_mtu_of_the_boot_files_is_kept_from_the_one_read_of_them(tmp_path):
    """A tunnel without a given MTU keeps the boot file's; that file is read once, for that and the comparison."""
    unit = persist.unit_files([dataclasses.replace(GRE1, mtu=1400)])
    fake = host_with(tmp_path, unit)
    persistence = persist.prepare(fake, "unit", [GRE1], omitted={"gre1"})
    assert persistence.write == {}  # the files already hold gre1 with MTU 1400: nothing to write
    assert fake.reads == {persist.BATCH: 1, persist.UNIT_FILE: 1}


def test_a_switch_away_from_networkd_reads_each_file_once_for_the_mtus_and_the_diff(tmp_path):
    fake = host_with(tmp_path, persist.networkd_files([GRE1]))
    # gre1 is at MTU 1500 in the kernel now; its boot files say 1476, and its MTU is not given.
    persistence = persist.prepare(fake, "unit", [dataclasses.replace(GRE1, mtu=1500)], omitted={"gre1"})
    assert sorted(persistence.remove) == sorted([NETDEV, NETWORK, f"{persist.NETWORKD_DIR}/{persist.PREFIX}.link"])
    assert " mtu 1476 " in persistence.write[persist.BATCH]  # the .netdev's MTUBytes=1476
    assert all(count == 1 for count in fake.reads.values())
    assert set(fake.reads) == set(persistence.remove)
    assert [d["before_header"] for d in persistence.diff if d["after"] == ""] == persistence.remove
