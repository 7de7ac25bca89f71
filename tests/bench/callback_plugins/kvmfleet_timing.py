# -*- coding: utf-8 -*-
# Bench-only callback: the wall time of every task, for tests/bench/run.py --cluster.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: kvmfleet_timing
type: aggregate
short_description: Record the wall time of every task as JSON (kvmfleet benchmarks only)
description:
  - Writes one JSON document to the file named by the environment variable E(KVMFLEET_TIMING_FILE) - per task
    name, the seconds from its start to the start of whatever came next (the next task, play or the recap),
    summed over the run; and the run's total from the playbook's start.
requirements:
  - enabled through ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kvmfleet_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._start = time.perf_counter()
        self._open = None  # [name, start] of the task running now
        self._tasks = {}

    def _close(self):
        now = time.perf_counter()
        if self._open is not None:
            name, start = self._open
            self._tasks[name] = self._tasks.get(name, 0.0) + now - start
            self._open = None
        return now

    def v2_playbook_on_start(self, playbook):
        self._start = time.perf_counter()

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._open = [task.get_name(), self._close()]

    def v2_playbook_on_handler_task_start(self, task):
        self._open = [task.get_name(), self._close()]

    def v2_playbook_on_stats(self, stats):
        end = self._close()
        path = os.environ.get("KVMFLEET_TIMING_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"tasks": self._tasks, "total": end - self._start}, handle, indent=1)
