# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for moving guests between hypervisors: which guest goes where (module_utils/_migrate/placement.py).
The playbooks (evacuate, restore, rebalance) only apply the plans these give."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import placement
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError


def _guarded(function):
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UserError as exc:
            raise AnsibleFilterError(str(exc)) from None
    run.__name__ = function.__name__
    return run


def _plain(value):
    """Plain lists and dicts (registered results and hostvars come as Ansible's own types)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _capacities(results, capacities):
    """{name: MiB} from a mapping of inventory name to MiB, or to host variables (hostvars: their
    kvmfleet_guest_memory_mib)."""
    found = {}
    for result in results:
        name = result.get("item")
        try:
            entry = capacities[name]
        except (KeyError, TypeError):
            continue
        if hasattr(entry, "get"):
            entry = entry.get("kvmfleet_guest_memory_mib")
        if entry is not None:
            found[name] = _plain(entry)
    return found


@_guarded
def placement_view(host_results, guest_results, capacities=None, shared_storage=True):
    host_results = _plain(host_results)
    return placement.fleet_view(host_results, _plain(guest_results), _capacities(host_results, capacities or {}),
                                shared_storage)


def _lined(plan):
    plan["lines"] = placement.plan_lines(plan)
    return plan


@_guarded
def evacuation_plan(view, host, headroom_mib=512, exclude=None, stays=None):
    view = _plain(view)
    return _lined(placement.evacuation_plan(view["hosts"], view["guests"], host, int(headroom_mib),
                                            exclude=_plain(exclude) or (), stays=_plain(stays) or ()))


@_guarded
def restore_plan(view, host, exclude=None, stays=None):
    view = _plain(view)
    return _lined(placement.restore_plan(view["hosts"], view["guests"], host, exclude=_plain(exclude) or (),
                                         stays=_plain(stays) or ()))


@_guarded
def recovery_plan(view, host, specs, headroom_mib=512):
    view = _plain(view)
    return _lined(placement.recovery_plan(view["hosts"], view["guests"], host, _plain(specs) or [], int(headroom_mib)))


@_guarded
def rebalance_plan(view, tolerance=0.1, min_gain=0.05, headroom_mib=512, max_moves=10, exclude=None, pinned=None):
    view = _plain(view)
    return _lined(placement.rebalance_plan(view["hosts"], view["guests"], float(tolerance), float(min_gain),
                                           int(headroom_mib), int(max_moves), exclude=_plain(exclude) or (),
                                           pinned=_plain(pinned) or ()))


@_guarded
def migration_outcome(results):
    return placement.batch_outcome(_plain(results))


def migration_summary(record):
    return placement.summary_lines(_plain(record))


def recovery_evidence(results):
    return placement.evidence_lines(_plain(results))


class FilterModule:
    def filters(self):
        return {"placement_view": placement_view, "evacuation_plan": evacuation_plan, "restore_plan": restore_plan,
                "recovery_plan": recovery_plan,
                "rebalance_plan": rebalance_plan, "migration_outcome": migration_outcome,
                "migration_summary": migration_summary, "recovery_evidence": recovery_evidence}
