# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host seam's readers of command output and systemd's KEY=value text."""

from __future__ import annotations

from ansible_collections.linuxnet.gre.plugins.module_utils._host import json_documents, key_values


def test_key_values_reads_systemd_text_and_skips_comments():
    text = "# Written by linuxnet.gre\n[NetDev]\n  Name=gre-b\nMTUBytes=1400\n; Key=1\nADMIN_STATE=configured\n"
    assert key_values(text) == {"Name": "gre-b", "MTUBytes": "1400", "ADMIN_STATE": "configured"}
    assert key_values(None) == {}


def test_json_documents_stops_at_the_first_broken_document():
    documents, error = json_documents('[{"dst": "a"}]\n[]\n{broken')
    assert documents == [[{"dst": "a"}], []]
    assert isinstance(error, ValueError)
    assert json_documents("  \n") == ([], None)
