# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The persistence decision that gre_host_facts reports and gre_tunnel takes: one function, two users."""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._systemd import (
    PERSIST_PROBLEMS,
    auto_mechanism,
    persistence,
)

NETWORKD = {
    "systemd": True,
    "networkd_active": True,
    "networkd_enabled": True,
    "udevd_active": True,
    "systemd_version": 252,
}
OLD_SYSTEMD = (
    "this host runs systemd 249, and systemd-networkd creates tunnels bound to no underlay link (Independent=, in "
    "the .netdev files it would get) only from systemd 252 on: the tunnels would not come back at boot; persist them "
    "with the unit (auto takes it here)"
)


@pytest.mark.parametrize(
    ("state", "auto", "problems"),
    [
        (NETWORKD, "networkd", {"unit": None, "networkd": None}),
        ({**NETWORKD, "networkd_enabled": False}, "unit", {"unit": None, "networkd": PERSIST_PROBLEMS["networkd"]}),
        ({**NETWORKD, "udevd_active": False}, "unit", {"unit": None, "networkd": PERSIST_PROBLEMS["networkd"]}),
        ({**NETWORKD, "systemd_version": 249}, "unit", {"unit": None, "networkd": OLD_SYSTEMD}),
        ({**NETWORKD, "systemd_version": 257}, "networkd", {"unit": None, "networkd": None}),
        (
            {"systemd": False, "networkd_active": False, "networkd_enabled": False, "udevd_active": False},
            "none",
            {"unit": PERSIST_PROBLEMS["unit"], "networkd": PERSIST_PROBLEMS["networkd"]},
        ),
    ],
)
def test_persistence_says_what_auto_takes_and_why_the_others_fail(
    state: dict[str, bool], auto: str, problems: dict[str, str | None]
) -> None:
    assert persistence(state) == {"auto": auto, "problems": problems}


def test_auto_takes_none_for_a_host_without_tunnels() -> None:
    assert auto_mechanism(NETWORKD, has_tunnels=False) == "none"
    assert auto_mechanism(NETWORKD) == "networkd"
