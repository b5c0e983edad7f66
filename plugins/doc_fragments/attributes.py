# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The attributes the collection's read-only modules share; each states its check_mode support itself."""

    READ_ONLY = r"""
attributes:
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to show.
  idempotent:
    support: full
    description: Never changes the host.
  platform:
    support: full
    platforms: posix
    description: Linux.
"""
