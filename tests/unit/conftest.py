# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Makes ``ansible_collections.linuxnet.gre`` importable for a plain ``pytest tests/unit``.

ansible-test units runs from a checkout at ``ansible_collections/linuxnet/gre`` and needs nothing.
Anywhere else, a temporary directory gets an ``ansible_collections/linuxnet/gre`` symlink to this
checkout and goes on ``sys.path``.
"""

from __future__ import annotations

import atexit
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _collection_importable() -> bool:
    try:
        import ansible_collections.linuxnet.gre.plugins  # noqa: F401
    except ImportError:
        return False
    return True


def _inside_a_collection_tree() -> bool:
    return ROOT.parent.name == "linuxnet" and ROOT.parent.parent.name == "ansible_collections"


if not _inside_a_collection_tree() and not _collection_importable():
    _tmp = pathlib.Path(tempfile.mkdtemp(prefix="linuxnet-gre-"))
    atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
    (_tmp / "ansible_collections" / "linuxnet").mkdir(parents=True)
    (_tmp / "ansible_collections" / "linuxnet" / "gre").symlink_to(ROOT)
    sys.path.insert(0, str(_tmp))
