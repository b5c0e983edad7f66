# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host seam: its one way to start a program, and its readers of command output and systemd's KEY=value text."""

from __future__ import annotations

import pytest

from ansible_collections.linuxnet.gre.plugins.module_utils._host import (
    GreError,
    json_documents,
    key_values,
    run_process,
)


def test_key_values_reads_systemd_text_and_skips_comments():
    text = "# Written by linuxnet.gre\n[NetDev]\n  Name=gre-b\nMTUBytes=1400\n; Key=1\nADMIN_STATE=configured\n"
    assert key_values(text) == {"Name": "gre-b", "MTUBytes": "1400", "ADMIN_STATE": "configured"}
    assert key_values(None) == {}


def test_json_documents_stops_at_the_first_broken_document():
    documents, error = json_documents('[{"dst": "a"}]\n[]\n{broken')
    assert documents == [[{"dst": "a"}], []]
    assert isinstance(error, ValueError)
    assert json_documents("  \n") == ([], None)


def test_run_process_gives_input_as_it_is_and_returns_text(tmp_path):
    script = tmp_path / "echo-back"
    script.write_text('#!/bin/sh\ncat\necho "to stderr: $#" >&2\nexit 3\n')
    script.chmod(0o755)
    # Input without a trailing newline stays so (as run_command with binary_data=True); bytes not UTF-8 survive.
    assert run_process([str(script), "a", "b"], "link show\n\udcff") == (3, "link show\n\udcff", "to stderr: 2\n")


def test_run_process_without_input_gives_the_program_none(tmp_path):
    script = tmp_path / "reads"
    script.write_text("#!/bin/sh\nif read -r line; then echo got; else echo eof; fi\n")
    script.chmod(0o755)
    assert run_process([str(script)]) == (0, "eof\n", "")


def test_run_process_leaves_ansiballz_out_of_pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/tmp/ansible_x/ansible_modlib.zip:/opt/lib:/tmp/y/debug_dir")
    assert run_process(["/bin/sh", "-c", 'printf %s "$PYTHONPATH"']) == (0, "/opt/lib", "")
    monkeypatch.setenv("PYTHONPATH", "/tmp/ansible_x/ansible_modlib.zip")
    assert run_process(["/bin/sh", "-c", 'printf %s "${PYTHONPATH-unset}"']) == (0, "unset", "")


def test_run_process_names_a_program_that_cannot_start(tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(GreError, match=r"^cannot run .*not-executable: Permission denied$"):
        run_process([str(script)])
