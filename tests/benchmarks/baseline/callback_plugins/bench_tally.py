# Copyright (c) linuxnet.gre contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Callback of tests/benchmarks/mesh_bench.py: per task and host, what ran, and how long each task took."""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_tally
type: aggregate
short_description: Tally of task results per host, with task timings, for tests/benchmarks/mesh_bench.py
description:
  - Writes, at the end of the playbook, a JSON file (path from the environment variable
    E(BENCH_TALLY)) with each task's name, action, start and end time (monotonic seconds), and per
    host the status of the task (ok, changed, skipped, failed, unreachable) and of each loop item,
    when the host's run of the task began and ended (monotonic seconds, a loop's items together),
    and for linuxnet.gre.gre_ping the links up and down, and the bytes of each host's result as JSON.
requirements:
  - enable in configuration (ANSIBLE_CALLBACKS_ENABLED=bench_tally)
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_tally"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()
        self.tasks: list[dict] = []
        self.by_uuid: dict[str, dict] = {}

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        entry = {
            "name": task.get_name(),
            "action": task.action,
            "start": time.monotonic() - self.started,
            "end": None,
            "hosts": {},
        }
        if task.action.rsplit(".", 1)[-1] in ("setup", "gather_facts"):
            entry["gather_subset"] = task.args.get("gather_subset", "play default")
        self.tasks.append(entry)
        self.by_uuid[task._uuid] = entry

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_runner_on_start(self, host, task) -> None:
        entry = self.by_uuid.get(task._uuid)
        if entry is not None:
            record = entry["hosts"].setdefault(host.get_name(), {"status": None, "items": []})
            record["began"] = time.monotonic() - self.started

    def _record(self, result, status: str, item: bool = False) -> None:
        task = getattr(result, "task", None) or result._task
        host = (getattr(result, "host", None) or result._host).get_name()
        entry = self.by_uuid.get(task._uuid)
        if entry is None:
            return
        entry["end"] = time.monotonic() - self.started
        record = entry["hosts"].setdefault(host, {"status": None, "items": []})
        if item:
            record["items"].append(status)
        else:
            if status == "ok" and result.is_changed():
                status = "changed"
            record["status"] = status
            record["ended"] = entry["end"]
            try:
                data = result.result  # ansible-core 2.19 and later
            except AttributeError:
                data = result._result
            record["bytes"] = len(json.dumps(data, default=str))
            if entry["action"].endswith("gre_ping"):
                record["up"], record["down"] = data.get("up"), data.get("down")

    def v2_runner_on_ok(self, result) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._record(result, "unreachable")

    def v2_runner_item_on_ok(self, result) -> None:
        self._record(result, "ok", item=True)

    def v2_runner_item_on_failed(self, result) -> None:
        self._record(result, "failed", item=True)

    def v2_runner_item_on_skipped(self, result) -> None:
        self._record(result, "skipped", item=True)

    def v2_playbook_on_stats(self, stats) -> None:
        path = os.environ.get("BENCH_TALLY")
        if path:
            with open(path, "w", encoding="utf-8") as file:
                json.dump({"tasks": self.tasks, "end": time.monotonic() - self.started}, file, indent=1)
