# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: balance - how uneven the hypervisors' load is and the moves that even it out (``rebalance_plan``), as
pure functions of the placement view (_migrate/placement.py: hosts and guests as ``host_view`` and ``guest_view``
give them).

- ``balance``: the coefficient of variation of the hosts' memory use (``allocated``), or of the load their guests were
  measured to use (``used``: memory and CPU, from host_info's samples), with vCPUs per CPU as the second key;
- ``best_move``/``repair_move``: the one move that lowers the imbalance most per GiB copied, or ends a broken rule;
- ``rebalance_plan``: those moves one after another, with the hold, the minimum gain, the cooldown and no plan while
  a move is in flight.
"""

from __future__ import annotations

import math
import time

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.placement import (
    capacity_of,
    check_headroom,
    host_loads,
    memory_use,
    moved,
    room_on,
    ruled,
    running_where,
    stay,
    unmoved,
    used_by,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, known_code


def _vcpu_ratio(host, guests):
    return sum(g["vcpus"] for g in guests if g["host"] == host["name"] and g["running"]) / float(host["cpus"] or 1)


def _measured_memory(guest):
    """The memory the guest really takes on its host (MiB, the mean of the samples), or its allocation when
    nothing was sampled."""
    samples = guest.get("memory_used_samples_mib")
    return sum(samples) / float(len(samples)) if samples else guest["memory_mib"]


def _measured_cpu(guest):
    samples = guest.get("cpu_samples")
    return sum(samples) / float(len(samples)) if samples else 0.0


def measured_load(host, guests, sample=None):
    """A host's load from what its running guests were measured to use: the mean of its memory use (the guests'
    resident memory over the capacity) and its CPU use (the host CPUs' worth of time its guests took over its CPU
    count); ``sample``: that one sample only (an index), else the mean over the window."""
    capacity = capacity_of(host)
    memory = cpu = 0.0
    for guest in guests:
        if guest["host"] != host["name"] or not guest["running"]:
            continue
        if sample is None:
            memory += _measured_memory(guest)
            cpu += _measured_cpu(guest)
        else:
            mem_samples, cpu_samples = guest.get("memory_used_samples_mib") or [], guest.get("cpu_samples") or []
            memory += mem_samples[sample] if sample < len(mem_samples) else guest["memory_mib"]
            cpu += cpu_samples[sample] if sample < len(cpu_samples) else 0.0
    mem_use = memory / float(capacity) if capacity else 0.0
    cpu_use = cpu / float(host["cpus"] or 1)
    return {"memory_use": mem_use, "cpu_use": cpu_use, "load": (mem_use + cpu_use) / 2.0}


def variation(values):
    """The coefficient of variation (population standard deviation over the mean); 0 for no load."""
    if not values:
        return 0.0
    mean = sum(values) / float(len(values))
    if mean == 0:
        return 0.0
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean


def balance(hosts, guests, measure="allocated"):
    """{"memory": CV of memory use, "vcpus": CV of vCPUs per physical CPU, "imbalance": the CV the plan lowers
    (memory use for ``measure`` allocated; the measured load, memory and CPU, for ``used``), "hosts": {name: {...}}}."""
    loads = {h["name"]: measured_load(h, guests) for h in hosts} if measure == "used" else {}
    result = {
        "memory": round(variation([memory_use(h, guests) for h in hosts]), 4),
        "vcpus": round(variation([_vcpu_ratio(h, guests) for h in hosts]), 4),
        "hosts": {h["name"]: {"memory_use": round(memory_use(h, guests), 4), "vcpus_per_cpu": round(_vcpu_ratio(h, guests), 4),
                              "guest_memory_mib": used_by(guests, h["name"])} for h in hosts},
        "measure": measure,
    }
    for name, load in loads.items():
        result["hosts"][name].update(measured_memory_use=round(load["memory_use"], 4), cpu_use=round(load["cpu_use"], 4),
                                     load=round(load["load"], 4))
    result["imbalance"] = round(variation([loads[h["name"]]["load"] for h in hosts]), 4) if loads else result["memory"]
    return result


def sampled_imbalance(hosts, guests):
    """The measured imbalance at each sample of the window (hosts sampled at the same moments), oldest first."""
    count = max([len(g.get("cpu_samples") or []) for g in guests] + [0])
    return [round(variation([measured_load(h, guests, i)["load"] for h in hosts]), 4) for i in range(count)]


def best_move(hosts, guests, headroom_mib=512, min_gain=0.05, exclude=(), pinned=(), checked=None, measure="allocated",
              min_improvement=0.0):
    """The one move that lowers the imbalance most per GiB copied (memory plus unshared disks), by at least
    ``min_gain`` and by at least ``min_improvement`` of the imbalance (relative); ties by the vCPU imbalance. A move
    breaks no strict rule (``checked``) and no soft rule that the guest keeps where it is. None when no move gains
    enough."""
    usable = [h for h in hosts if h["reachable"]]
    by_name = {h["name"]: h for h in usable}
    before = balance(usable, guests, measure)
    where = running_where(guests)
    best = None
    for guest in guests:
        if not guest["running"] or guest["name"] in pinned or guest["host"] not in by_name:
            continue
        others = {k: v for k, v in where.items() if k != guest["name"]}
        soft_here = len(checked.soft_broken(guest["name"], guest["host"], others)) if checked else 0
        for target in usable:
            if target["name"] == guest["host"] or target["cordoned"] or target["name"] in exclude:
                continue
            if room_on(target, guests, headroom_mib) < guest["memory_mib"]:
                continue
            if checked and (checked.strict_broken(guest["name"], target["name"], others)
                            or len(checked.soft_broken(guest["name"], target["name"], others)) > soft_here):
                continue
            after = balance(usable, moved(guests, guest["name"], target["name"]), measure)
            gain = before["imbalance"] - after["imbalance"]
            if gain < min_gain or gain < min_improvement * before["imbalance"] or gain <= 0:
                continue
            cost = guest["memory_mib"] / 1024.0 + guest["copy_gib"]
            # most imbalance removed per GiB copied; then the larger gain (fewer moves), the vCPU balance, and names
            key = (round(gain / max(cost, 1.0 / 1024), 6), round(gain, 6), round(before["vcpus"] - after["vcpus"], 6),
                   guest["name"], target["name"])
            candidate = {"guest": guest["name"], "from": guest["host"], "from_uri": by_name[guest["host"]]["uri"],
                         "to": target["name"], "to_uri": target["uri"], "memory_mib": guest["memory_mib"],
                         "gain": round(gain, 4), "imbalance_before": before["imbalance"],
                         "imbalance_after": after["imbalance"], "memory_after": after["memory"],
                         "vcpus_after": after["vcpus"], "breaks": [],
                         "why": "lowers the imbalance from %.3f to %.3f" % (before["imbalance"], after["imbalance"])}
            if best is None or key[:3] > best[0][:3] or (key[:3] == best[0][:3] and key[3:] < best[0][3:]):
                best = (key, candidate)
    return None if best is None else best[1]


def repair_move(hosts, guests, checked, headroom_mib=512, exclude=(), pinned=(), measure="allocated"):
    """A move that ends a broken rule (strict ones first, then soft) without breaking another, or None: the
    cheapest such move, to the target with the most room."""
    if not checked:
        return None
    usable = [h for h in hosts if h["reachable"]]
    by_name = {h["name"]: h for h in usable}
    where = running_where(guests)
    broken = checked.violations(where)
    if not broken:
        return None
    count = {True: 0, False: 0}
    for violation in broken:
        count[violation["strict"]] += 1
    best = None
    for guest in guests:
        if not guest["running"] or guest["name"] in pinned or guest["host"] not in by_name:
            continue
        for target in usable:
            if target["name"] == guest["host"] or target["cordoned"] or target["name"] in exclude:
                continue
            room = room_on(target, guests, headroom_mib)
            if room < guest["memory_mib"]:
                continue
            now = dict(where, **{guest["name"]: target["name"]})
            after = {True: 0, False: 0}
            for violation in checked.violations(now):
                after[violation["strict"]] += 1
            if (after[True], after[False]) >= (count[True], count[False]) or after[True] > count[True]:
                continue
            imbalance = balance(usable, moved(guests, guest["name"], target["name"]), measure)["imbalance"]
            key = (after[True], after[False], round(imbalance, 6), guest["memory_mib"] + guest["copy_gib"] * 1024,
                   -room, guest["name"], target["name"])
            if best is None or key < best[0]:
                ended = [v for v in broken if v["rule"] not in {x["rule"] for x in checked.violations(now)}]
                best = (key, {"guest": guest["name"], "from": guest["host"], "from_uri": by_name[guest["host"]]["uri"],
                              "to": target["name"], "to_uri": target["uri"], "memory_mib": guest["memory_mib"],
                              "breaks": [], "repairs": [v["rule"] for v in ended],
                              "why": "ends the broken rule %s (%s)" % (
                                  ", ".join(v["rule"] for v in ended) or broken[0]["rule"],
                                  "; ".join(v["reason"] for v in ended) or broken[0]["reason"])})
    return None if best is None else best[1]


def _merged(steps, guests):
    """One move per guest, from where it is to where the steps leave it (none when that is where it is): the steps
    are simulated one at a time, each lowering the imbalance, and a later step may move a guest again."""
    start = {g["name"]: g["host"] for g in guests}
    final, order, whys = {}, [], {}
    for step in steps:
        if step["guest"] not in final:
            order.append(step["guest"])
        final[step["guest"]] = step
        whys.setdefault(step["guest"], []).append(step)
    moves = []
    for name in order:
        last, first = final[name], whys[name][0]
        if last["to"] == start[name]:
            continue
        if len(whys[name]) == 1:
            moves.append(last)
            continue
        moves.append(dict(last, **{"from": first["from"], "from_uri": first["from_uri"],
                                   "why": "; then ".join(step["why"] for step in whys[name]),
                                   "repairs": [r for step in whys[name] for r in step.get("repairs") or []]}))
    return moves


def in_flight(hosts):
    return ["%s (%s)" % (h["name"], ", ".join(h.get("jobs") or [])) for h in hosts if h["reachable"] and h.get("jobs")]


def rebalance_plan(hosts, guests, tolerance=0.1, min_gain=0.05, headroom_mib=512, max_moves=10, exclude=(), pinned=(),
                   rules=(), measure="allocated", hold=1, min_improvement=0.0, cooldown_s=0, now=None):
    """{"before", "after", "moves": [...], "steps": [...], "stays": [...], "hosts": host_loads} — first the moves
    that end a broken
    placement rule (repair_move), then those ``best_move`` picks one after another on the simulated placement,
    until the imbalance is within ``tolerance`` or no move gains ``min_gain`` (and ``min_improvement`` relative).
    ``measure``: ``allocated`` balances the guests' memory; ``used`` what they were measured to use (memory and
    CPU, the samples of the view). Churn is held off: with samples, moves are planned only when the imbalance was
    above ``tolerance`` in each of the last ``hold`` samples; a guest that moved less than ``cooldown_s`` seconds
    before ``now`` stays; nothing is planned while a migration or another job is in flight on a host. ``steps`` are
    the simulated moves one by one (each lowers the imbalance or ends a broken rule; a guest may take several),
    ``moves`` one per guest, from where it is to where the steps leave it. The playbook makes only the first move,
    then measures again."""
    check_headroom(headroom_mib)
    if measure not in ("allocated", "used"):
        raise SpecError("measure", measure, "allocated (the guests' memory) or used (what they were measured to use)")
    for option, value, low in (("max_moves", max_moves, 1), ("hold", hold, 1), ("cooldown_s", cooldown_s, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SpecError(option, value, "expected a whole number, %d or more" % low)
    for option, value in (("tolerance", tolerance), ("min_gain", min_gain), ("min_improvement", min_improvement)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SpecError(option, value, "expected a number, 0 or more (a coefficient of variation such as 0.1)")
    usable = [h for h in hosts if h["reachable"]]
    checked = ruled(rules, hosts, guests)
    before = balance(usable, guests, measure)
    plan = {"before": before, "moves": [], "stays": [], "tolerance": tolerance, "measure": measure}
    now = time.time() if now is None else now
    held = set(pinned)
    for guest in guests:
        if guest["running"] and guest["name"] in pinned:
            plan["stays"].append(stay(guest["name"], "given", "pinned: it never moves (rebalance_pinned)"))
        elif guest["running"] and cooldown_s and guest.get("moved_at") and now - guest["moved_at"] < cooldown_s:
            held.add(guest["name"])
            plan["stays"].append(stay(guest["name"], "cooldown", "it moved %d s ago; it stays for %d s after a move"
                                      % (now - guest["moved_at"], cooldown_s)))
    flying = in_flight(usable)
    series = sampled_imbalance(usable, guests) if measure == "used" else []
    plan["samples"] = series
    waiting = None
    if flying:
        waiting = ("move_in_flight", "a job is in flight on %s: nothing is planned while a move runs" % ", ".join(flying))
    elif series and hold > 1 and (len(series) < hold or min(series[-hold:]) <= tolerance):
        waiting = ("holding", "the imbalance was above %.3f in %d of the last %d samples (%s); it must stay above for %d"
                   % (tolerance, sum(1 for v in series[-hold:] if v > tolerance), min(hold, len(series)),
                      ", ".join("%.3f" % v for v in series[-hold:]), hold))
    moves, current = [], list(guests)
    while not waiting and len(moves) < max_moves:
        move = repair_move(usable, current, checked, headroom_mib, exclude, held, measure)
        if move is None:
            if balance(usable, current, measure)["imbalance"] <= tolerance:
                break
            move = best_move(usable, current, headroom_mib, min_gain, exclude, held, checked, measure, min_improvement)
        if move is None:
            break
        current = moved(current, move["guest"], move["to"])
        moves.append(move)
        # the free memory both hosts would have after it
        usable = [dict(h, free_mib=h["free_mib"] - move["memory_mib"]) if h["name"] == move["to"]
                  else dict(h, free_mib=h["free_mib"] + move["memory_mib"]) if h["name"] == move["from"] else h
                  for h in usable]
    after = balance(usable, current, measure)
    plan.update(steps=moves, moves=_merged(moves, guests), after=after, balanced=after["imbalance"] <= tolerance,
                violations=checked.violations(running_where(current)) if checked else [])
    if waiting:
        plan["waiting"] = {"code": known_code(waiting[0]), "reason": waiting[1]}
    else:
        unmoved(plan, guests, "no move lowers the imbalance by the minimum gain within room and rules"
                if not plan["balanced"] or plan["moves"] else "the hosts are balanced (within the tolerance)")
    plan["hosts"] = host_loads(usable, guests, current)
    return plan
