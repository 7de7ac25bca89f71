# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: converging a fleet of guests on one hypervisor: one connection, the host's guests read
once (HostContext), every guest converged by the same ``converge_guest`` the domain module uses.

Every spec is checked before any guest is changed. A libvirt error on one guest does not stop the
others (unless ``fail_fast``); the result names each failed guest and why (the failure's ``reason``
is ``guests_failed`` and ``guests`` has every guest's result; each failed guest's ``code`` says why). Guests are converged by a
bounded pool of workers (``parallel``), each with its own connection, so that start and shutdown
waits overlap; results keep the order of the list.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import options_of, converge_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.member import Member
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.model import normalize_fleet, prune_candidates, summarize
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt, open_connection
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError

# What a guest's entry in the result carries (the diff goes to the task's list of diffs; its warnings to the
# task's, each naming the guest).
_KEYS = ("changed", "created", "state", "uuid", "changes", "actions", "applied_live", "reboot_required", "reasons",
         "interfaces", "removed_volumes", "renamed_from", "rename_pending", "adopted")


def _entry(name, result=None, error=None, removed=False, code=None):
    entry = {"name": name, "error": error, "removed": removed}
    if code is not None:
        entry["code"] = code
    for key in _KEYS:
        if result is not None and key in result:
            entry[key] = result[key]
    entry.setdefault("changed", False)
    return entry


def check_parallel(params):
    if params["parallel"] < 1:
        raise SpecError("parallel", params["parallel"], "expected a whole number of at least 1")


class _Workers:
    """Connections for the worker threads: one each, opened on first use, closed at the end."""

    def __init__(self, conn, uri, parallel):
        self.main, self.uri, self.parallel = conn, uri, max(1, parallel)
        self.local = threading.local()
        self.opened = []
        self.lock = threading.Lock()

    def conn(self):
        if self.parallel == 1:
            return self.main
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = open_connection(self.uri)
            with self.lock:
                self.opened.append(conn)
        return conn

    def close(self):
        for conn in self.opened:
            conn.close()


def converge_fleet(conn, params, check):
    """Converge every guest listed in ``params['guests']`` (and prune) on ``conn``; the task's result.

    Raises UserError (``invalid_option``) before any change when a spec is wrong (all of them named), and
    UserError (``guests_failed``, with every guest's result) at the end when guests failed (the others
    converged), unless ``fail_fast`` stopped at the first.
    """
    check_parallel(params)
    host = gather_host(conn, read_guests=True)
    cluster = Member(params.get("cluster"))
    specs, errors = normalize_fleet(cluster.guests(params["guests"] or []), host)
    if errors:
        raise UserError("nothing was changed: %d guest%s of the fleet %s wrong:\n%s" % (
            len(errors), "" if len(errors) == 1 else "s", "is" if len(errors) == 1 else "are", "\n".join(errors)),
            code="invalid_option", result={"option": "guests"})
    options = options_of(params)
    removals = prune_candidates(host, {spec["name"] for spec in specs} | cluster.retiring, params.get("prune_selector"),
                                cluster.declared, {spec["uuid"] for spec in specs if spec.get("uuid")}) \
        if params.get("prune") else []
    work = [(spec, options) for spec in specs] + [({"name": name, "state": "absent"}, options) for name in removals]
    stop = threading.Event()
    workers = _Workers(conn, params["uri"], params.get("parallel") or 1)

    def one(item):
        spec, opts = item
        removing = spec["state"] == "absent"  # declared absent, or pruned
        if stop.is_set():
            return _entry(spec["name"], error="not converged: fail_fast stopped the fleet at an earlier failure",
                          code="refused"), None
        try:
            result = converge_guest(workers.conn(), host, spec, opts, check)
            cluster.annotate(spec["name"], result)
        except UserError as exc:
            error, failure = str(exc), exc.code
        except libvirt.libvirtError as exc:
            error, failure = "libvirt error on guest %s: %s" % (spec["name"], exc), "libvirt_error"
        else:
            entry = _entry(spec["name"], result, removed=removing and result["changed"])
            entry.update(cluster.fields(spec["name"]))
            entry["warnings"] = result.get("warnings") or []
            return entry, result.get("diff")
        if params.get("fail_fast"):
            stop.set()
        return _entry(spec["name"], error=error, code=failure), None

    try:
        if workers.parallel == 1:
            outcomes = [one(item) for item in work]
        else:
            with ThreadPoolExecutor(max_workers=workers.parallel) as pool:
                outcomes = list(pool.map(one, work))
    finally:
        workers.close()
    guests = [entry for entry, _diff in outcomes] + cluster.settle(conn, host, check)
    warnings = ["guest %s: %s" % (g["name"], w) for g in guests for w in g.pop("warnings", None) or []]
    diffs = []
    for entry, diff in outcomes:
        if entry["changed"] and diff:
            header = "guest %s (persistent config)" % entry["name"]
            diffs.append(dict(diff, before_header=header, after_header=header))
    result = {"changed": any(g["changed"] for g in guests), "guests": guests, "summary": summarize(guests),
              "diff": diffs, "warnings": warnings}
    failed = [g for g in guests if g["error"]]
    if failed:
        raise UserError("%d of %d guests failed: %s" % (len(failed), len(guests), "; ".join(
            "%s: %s" % (g["name"], g["error"]) for g in failed)), code="guests_failed", result=result)
    return result
