# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for moving guests between hypervisors: which guest goes where (module_utils/_migrate/placement.py).
The playbooks (evacuate, restore, rebalance) only apply the plans these give."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.plugin_utils._filters import as_lists_and_dicts, guarded, number
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import balance, consolidate, placement


def _capacities(results, capacities):
    """{name: MiB} from a mapping of inventory name to MiB, or to host variables (hostvars: their
    kvmfleet_guest_memory_mib)."""
    found = {}
    for result in results:
        name = placement.loop_item(result.get("item"))
        try:
            entry = capacities[name]
        except (KeyError, TypeError):
            continue
        if hasattr(entry, "get"):
            entry = entry.get("kvmfleet_guest_memory_mib")
        if entry is not None:
            found[name] = as_lists_and_dicts(entry)
    return found


@guarded
def placement_view(host_results, guest_results, capacities=None, shared_storage=True):
    host_results = as_lists_and_dicts(host_results)
    return placement.fleet_view(host_results, as_lists_and_dicts(guest_results), _capacities(host_results, capacities or {}),
                                shared_storage)


def _lined(plan):
    plan["lines"] = placement.plan_lines(plan)
    return plan


@guarded
def evacuation_plan(view, host, headroom_mib=512, exclude=None, stays=None, rules=None):
    view = as_lists_and_dicts(view)
    return _lined(placement.evacuation_plan(view["hosts"], view["guests"], host, number(headroom_mib, "headroom_mib"),
                                            exclude=as_lists_and_dicts(exclude) or (), stays=as_lists_and_dicts(stays) or (),
                                            rules=as_lists_and_dicts(rules) or ()))


@guarded
def restore_plan(view, host, exclude=None, stays=None, declared=None, rules=None):
    view = as_lists_and_dicts(view)
    return _lined(placement.restore_plan(view["hosts"], view["guests"], host, exclude=as_lists_and_dicts(exclude) or (),
                                         stays=as_lists_and_dicts(stays) or (), declared=as_lists_and_dicts(declared) or (),
                                         rules=as_lists_and_dicts(rules) or ()))


@guarded
def recovery_plan(view, host, specs, headroom_mib=512, others=None, rules=None):
    view = as_lists_and_dicts(view)
    return _lined(placement.recovery_plan(view["hosts"], view["guests"], host, as_lists_and_dicts(specs) or [],
                                          number(headroom_mib, "headroom_mib"), others=as_lists_and_dicts(others) or (),
                                          rules=as_lists_and_dicts(rules) or ()))


@guarded
def rebalance_plan(view, tolerance=0.1, min_gain=0.05, headroom_mib=512, max_moves=10, exclude=None, pinned=None,
                   rules=None, measure="allocated", hold=1, min_improvement=0.0, cooldown_s=0, now=None):
    view = as_lists_and_dicts(view)
    return _lined(balance.rebalance_plan(
        view["hosts"], view["guests"], number(tolerance, "tolerance", float), number(min_gain, "min_gain", float),
        number(headroom_mib, "headroom_mib"), number(max_moves, "max_moves"), exclude=as_lists_and_dicts(exclude) or (),
        pinned=as_lists_and_dicts(pinned) or (), rules=as_lists_and_dicts(rules) or (), measure=measure,
        hold=number(hold, "hold"), min_improvement=number(min_improvement, "min_improvement", float),
        cooldown_s=number(cooldown_s, "cooldown_s"), now=None if now is None else number(now, "now", float)))


@guarded
def consolidation_plan(view, reserve=1, headroom_mib=512, low=0.2, high=0.8, rules=None, measure="allocated",
                       power=None, pinned=None):
    view = as_lists_and_dicts(view)
    return _lined(consolidate.consolidation_plan(
        view["hosts"], view["guests"], number(reserve, "reserve"), number(headroom_mib, "headroom_mib"),
        number(low, "low", float), number(high, "high", float), rules=as_lists_and_dicts(rules) or (), measure=measure,
        power=as_lists_and_dicts(power) or (), pinned=as_lists_and_dicts(pinned) or ()))


@guarded
def placement_rules(rules, hosts=None):
    """The rules as every plan reads them (checked: bad input is an error naming the rule's option)."""
    return placement.rules_of.normalize(as_lists_and_dicts(rules), as_lists_and_dicts(hosts))


@guarded
def loop_item(item):
    return placement.loop_item(as_lists_and_dicts(item))


@guarded
def migration_outcome(results):
    return placement.batch_outcome(as_lists_and_dicts(results))


@guarded
def migration_summary(record):
    return placement.summary_lines(as_lists_and_dicts(record))


@guarded
def recovery_evidence(results):
    return placement.evidence_lines(as_lists_and_dicts(results))


class FilterModule:
    def filters(self):
        return {"placement_view": placement_view, "evacuation_plan": evacuation_plan, "restore_plan": restore_plan,
                "recovery_plan": recovery_plan,
                "rebalance_plan": rebalance_plan, "consolidation_plan": consolidation_plan,
                "placement_rules": placement_rules, "loop_item": loop_item, "migration_outcome": migration_outcome,
                "migration_summary": migration_summary, "recovery_evidence": recovery_evidence}
