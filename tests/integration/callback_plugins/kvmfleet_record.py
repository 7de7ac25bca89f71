# -*- coding: utf-8 -*-
# Test-only callback: records every task result and the recap as JSON for tests/integration.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kvmfleet_record
type: aggregate
short_description: Record task results and the recap as JSON (kvmfleet tests only)
description:
  - Writes one JSON document to the file named by the environment variable E(KVMFLEET_RECORD_FILE).
requirements:
  - enabled through ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


def _as_json_data(value):
    """Ansible 2.19 wraps results in tagged types; json round-trips them to plain data."""
    return json.loads(json.dumps(value, default=str))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kvmfleet_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._tasks = []
        self._started = {}

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _record(self, result, status):
        task = result._task
        self._tasks.append({
            "host": result._host.get_name(),
            "task": task.get_name(),
            "action": task.action,
            "status": status,
            "result": _as_json_data(result._result),
            "seconds": round(time.monotonic() - self._started.get((result._host.get_name(), task._uuid),
                                                                  time.monotonic()), 2),
        })

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        path = os.environ.get("KVMFLEET_RECORD_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({"tasks": self._tasks, "recap": recap}, handle, indent=1)
