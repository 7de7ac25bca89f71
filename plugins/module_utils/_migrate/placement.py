# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: which guest goes to which hypervisor, as pure functions of what ``host_info`` and
``domain_info`` report (the ``placement`` filters apply them; the playbooks only carry the plan out).

- ``evacuation_plan``: every running guest of one host to the others, packed by free memory with
  headroom, never onto a cordoned host or one whose migration failed in this run.
- ``rebalance_plan``: moves that even out memory use across hosts (the coefficient of variation of the
  hosts' memory use, vCPUs per physical CPU as the second key), each lowering the imbalance by at least
  ``min_gain``, best imbalance removed per GiB copied first, simulated one at a time.
- ``restore_plan``: the guests whose recorded origin is a host, back to it.

A host is ``{"name", "uri", "total_mib", "free_mib", "cpus", "cordoned", "capacity_mib"}`` (``host_view``
builds it from a host_info result); a guest is ``{"name", "host", "memory_mib", "vcpus", "running",
"copy_gib", "origin"}`` (``guest_view``, from a domain_info guest: its spec's memory and vCPUs, whether it is
active, and, when storage is not shared, the allocation of its writable disks as domain_info reports them).
The unit tests feed them outputs of host_info and domain_info recorded from the test bed
(tests/unit/plugins/module_utils/fixtures/placement/).

Every guest a plan leaves where it is carries a ``code`` (a _results.CODES entry) next to its ``reason``:
playbooks decide on the code, people read the reason.
"""

from __future__ import annotations

import calendar
import math
import time

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import parse_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import rules as rules_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError, Wording, known_code

MIB = 1024 * 1024


def host_view(name, info, capacity_mib=None):
    """One host from a host_info result (``info``; None or {"failed": true} when it did not answer).
    ``capacity_mib``: the memory the operator gives guests on this host (default: all of it)."""
    info = info or {}
    reachable = bool(info.get("uuid")) and not info.get("failed")
    memory = info.get("memory") or {}
    maintenance = info.get("maintenance") or {}
    if capacity_mib is not None and (isinstance(capacity_mib, bool) or not isinstance(capacity_mib, int)
                                     or capacity_mib < 0):
        raise SpecError("kvmfleet_guest_memory_mib", capacity_mib, "expected a whole number of MiB, 0 or more")
    return {
        "name": name,
        "uri": info.get("uri"),
        "uuid": info.get("uuid"),
        "reachable": reachable,
        "total_mib": int(memory.get("total_mib") or 0),
        "free_mib": int(memory.get("free_mib") or 0),
        "cpus": int((info.get("cpu") or {}).get("count") or 1),
        "cordoned": bool(maintenance.get("cordoned")),
        "maintenance_reason": maintenance.get("reason"),
        "capacity_mib": capacity_mib,
        "jobs": list(info.get("guests_with_jobs") or []),
    }


def guest_view(host, guest, shared_storage=True):
    """One guest from a domain_info entry (``guest``) on inventory host ``host``: its memory and vCPUs from its
    spec, running when it is active, and what moving it copies (GiB): its memory, and when the storage is not
    shared the space its writable disks take (``disks[].allocation_bytes``, else their capacity)."""
    spec = guest.get("spec") or {}
    memory = spec.get("current_memory") or spec.get("memory") or 0
    memory_mib = parse_size(memory, "memory", default_unit="KiB") // MIB if memory else 0
    copy_bytes = 0
    if not shared_storage:
        for disk in guest.get("disks") or []:
            if disk.get("readonly") or disk.get("shareable"):
                continue  # a cdrom, or a disk several guests share: it must be on the destination already
            used = disk.get("allocation_bytes")
            copy_bytes += used if used is not None else disk.get("capacity_bytes") or 0
    return {
        "name": guest["name"],
        "host": host,
        "memory_mib": memory_mib,
        "vcpus": int(spec.get("vcpus") or 1),
        "running": bool(guest.get("active")),
        "copy_gib": copy_bytes / float(1024 ** 3),
        "origin": guest.get("origin"),
        "tags": dict(guest.get("tags") or {}),
        "moved_at": _epoch((guest.get("last_move") or {}).get("at")),
    }


def _epoch(stamp):
    """Seconds since the epoch of a UTC time as the collection writes it (2026-12-03T10:00:00Z); None for none."""
    if not stamp:
        return None
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    except (TypeError, ValueError):
        return None


def stay(guest, reason_code, reason):
    """A guest a plan leaves where it is: its name, the ``code`` playbooks decide on, the ``reason`` people read."""
    return {"guest": guest, "code": known_code(reason_code), "reason": Wording.apply(reason)}


def used_by(guests, host):
    return sum(g["memory_mib"] for g in guests if g["host"] == host and g["running"])


def room_on(host, guests, headroom_mib):
    """MiB a host can still take: its free memory less the headroom, and no more than its capacity less
    what its running guests have."""
    room = host["free_mib"] - headroom_mib
    if host["capacity_mib"] is not None:
        room = min(room, host["capacity_mib"] - used_by(guests, host["name"]))
    return room


def check_headroom(headroom_mib, parallel=None):
    if isinstance(headroom_mib, bool) or not isinstance(headroom_mib, int) or headroom_mib < 0:
        raise SpecError("headroom_mib", headroom_mib, "expected a whole number of MiB, 0 or more")
    if parallel is not None and (isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1):
        raise SpecError("parallel", parallel, "expected a whole number, 1 or more")


def ruled(rules, hosts, guests):
    """The placement rules (as rules.normalize returns them, or as declared) over ``guests``, checked for
    feasibility with the hosts there are: a Rules object. Rules that cannot all hold are an error naming them,
    raised before any plan is made."""
    if not rules:
        return rules_of.Rules([], guests)
    names = [h["name"] for h in hosts]
    rules = rules_of.normalize(rules, names)  # as declared, or as the placement_rules filter gave them
    checked = rules_of.Rules(rules, guests)
    problems = rules_of.feasibility(checked, guests, names)
    if problems:
        raise UserError("the placement rules cannot all hold, so nothing is planned: %s" % "; ".join(problems),
                        code="invalid_option", result={"option": "kvmfleet_placement_rules", "problems": problems})
    return checked


def _running_where(guests):
    return {g["name"]: g["host"] for g in guests if g["running"]}


def rule_words(broken):
    """[(rule, why)] as 'rule NAME (strict|soft: why)', each rule once."""
    seen, words = set(), []
    for rule, why in broken:
        if rule["name"] not in seen:
            seen.add(rule["name"])
            words.append("%s rule %s (%s)" % ("strict" if rule["strict"] else "soft", rule["name"], why))
    return words


def host_loads(hosts, before, after):
    """Each host's guest memory and its use of the capacity, before and after a plan:
    {host: {"before": {"guest_memory_mib", "memory_use", "guests"}, "after": {...}}}."""
    def load(host, guests):
        return {"guest_memory_mib": used_by(guests, host["name"]), "memory_use": round(memory_use(host, guests), 4),
                "guests": sum(1 for g in guests if g["host"] == host["name"] and g["running"])}
    return {h["name"]: {"before": load(h, before), "after": load(h, after)} for h in hosts}


def evacuation_plan(hosts, guests, source, headroom_mib=512, exclude=(), stays=(), rules=()):
    """{"moves": [{"guest", "from", "to", "to_uri", "memory_mib", "why", "breaks"}], "stays": [{"guest", "code",
    "reason"}], "targets": {host: room left in MiB}, "hosts": host_loads} for every running guest of ``source``.

    Largest first, each to the target with the most room left (so the load spreads and no target is filled while
    another is empty); a guest fits only if the target keeps ``headroom_mib`` free after taking it, counting the
    guests planned for it before. ``rules`` (placement rules): a strict rule is never broken - guests a strict
    together rule binds move as one, to one target - and a target that breaks no soft rule, then the one the
    guest's on_hosts rules rank highest, is preferred; a soft rule broken because nothing else fits is in the
    move's ``breaks``. ``exclude``: hosts not to place on (a failed migration's target); ``stays``: guests already
    known not to move ({"guest", "reason"}).
    """
    check_headroom(headroom_mib)
    by_name = {h["name"]: h for h in hosts}
    if source not in by_name:
        raise SpecError("host", source, "one of the hypervisors: %s" % (", ".join(sorted(by_name)) or "none"))
    checked = ruled(rules, hosts, guests)
    known = _given_stays(stays)
    targets = {}
    for host in hosts:
        if host["name"] == source or not host["reachable"] or host["cordoned"] or host["name"] in exclude:
            continue
        targets[host["name"]] = room_on(host, guests, headroom_mib)
    plan = {"moves": [], "stays": [known[g] for g in sorted(known)], "targets": {}}
    leaving = [g for g in guests if g["host"] == source and g["name"] not in known]
    where = _running_where(guests)
    for guest in leaving:
        where.pop(guest["name"], None)
    running = {g["name"]: g for g in leaving if g["running"]}
    for guest in sorted(leaving, key=lambda g: g["name"]):
        if not guest["running"]:
            plan["stays"].append(stay(guest["name"], "shut_off", "shut off: stays defined on %s" % source))
    units, placed = [], set()
    for name in sorted(running):
        if name not in placed:
            unit = [running[m] for m in checked.together_with(name) if m in running]
            placed.update(g["name"] for g in unit)
            units.append(unit)
    after = list(guests)
    for unit in sorted(units, key=lambda u: (-sum(g["memory_mib"] for g in u), u[0]["name"])):
        choice = _place_unit(unit, targets, where, checked, headroom_mib)
        if isinstance(choice, dict):  # why it cannot move
            plan["stays"].extend(stay(g["name"], choice["code"], choice["reason"] if len(unit) == 1 else
                                      "%s (it moves with %s, together)" % (choice["reason"], ", ".join(
                                          m["name"] for m in unit if m is not g))) for g in unit)
            continue
        target, why, soft = choice
        for guest in unit:
            targets[target] -= guest["memory_mib"]
            where[guest["name"]] = target
            after = moved(after, guest["name"], target)
            plan["moves"].append({"guest": guest["name"], "from": source, "from_uri": by_name[source]["uri"], "to": target,
                                  "to_uri": by_name[target]["uri"], "memory_mib": guest["memory_mib"], "why": why,
                                  "breaks": soft.get(guest["name"], [])})
    plan["targets"] = targets
    plan["hosts"] = host_loads(hosts, guests, after)
    return plan


def _place_unit(unit, targets, where, checked, headroom_mib):
    """The target for guests that move together: (target, why, {guest: [soft rules broken]}), or {"code", "reason"}
    when none may take them."""
    need = sum(g["memory_mib"] for g in unit)
    candidates, refused = [], []
    for target in sorted(targets):
        if targets[target] < need:
            continue
        there = dict(where, **{g["name"]: target for g in unit})
        strict, soft = [], {}
        for guest in unit:
            others = {k: v for k, v in there.items() if k != guest["name"]}
            strict.extend(checked.strict_broken(guest["name"], target, others))
            broken = checked.soft_broken(guest["name"], target, others)
            if broken:
                soft[guest["name"]] = rule_words(broken)
        if strict:
            refused.append("%s: %s" % (target, "; ".join(rule_words(strict))))
            continue
        priority = sum(checked.priority(g["name"], target) for g in unit)
        candidates.append(((sum(len(v) for v in soft.values()), -priority, -targets[target], target), soft))
    if candidates:
        key, soft = min(candidates)
        target = key[3]
        why = "most room (%d MiB before it)" % targets[target]
        if key[1]:
            why = "the host its rules prefer (priority %d), %s" % (-key[1], why)
        if soft:
            others = [c for c in candidates if c[0][0] == 0]
            why += "; no host with room keeps every soft rule" if not others else ""
        return target, why, soft
    if refused:
        return {"code": "rule", "reason": "every hypervisor with room would break a rule: %s" % " | ".join(refused)}
    if not targets:
        return {"code": "no_target",
                "reason": "no hypervisor to take it (the others are cordoned, unreachable or failed a migration)"}
    best = max(sorted(targets), key=lambda h: targets[h])
    return {"code": "no_room", "reason": "no hypervisor has room for its %d MiB with %d MiB headroom (most room: %s, %d MiB)"
            % (need, headroom_mib, best, max(targets[best], 0))}


def _given_stays(stays):
    """The guests the caller says stay ({"guest", "reason"}, and the code when they have one), by name."""
    return {s["guest"]: dict(s, code=known_code(s.get("code") or "given")) for s in stays}


def restore_plan(hosts, guests, home, exclude=(), stays=(), declared=(), rules=()):
    """The guests whose recorded origin is ``home`` (by host UUID, else by URI), and those ``declared`` there (the
    names its list in the fleet's description declares: its guests by the Git description), back to it:
    {"moves": [...], "stays": [...]} as evacuation_plan gives. None go when ``home`` is in ``exclude`` (its
    migration failed) or does not answer; a guest in ``stays`` stays, and so does one a strict rule keeps away
    from ``home`` (a soft rule broken by going home is said in the move's ``breaks``)."""
    by_name = {h["name"]: h for h in hosts}
    if home not in by_name:
        raise SpecError("host", home, "one of the hypervisors: %s" % (", ".join(sorted(by_name)) or "none"))
    checked = ruled(rules, hosts, guests)
    target = by_name[home]
    plan = {"moves": [], "stays": []}
    known = _given_stays(stays)
    plan["stays"] = [known[g] for g in sorted(known)]
    where = _running_where(guests)
    after = list(guests)
    for guest in sorted(guests, key=lambda g: (g["host"], g["name"])):
        origin = guest.get("origin") or {}
        if guest["host"] == home or guest["name"] in known:
            continue
        recorded = origin and ((origin.get("uuid") and origin["uuid"] == target["uuid"])
                               or (not origin.get("uuid") and origin.get("uri") == target["uri"]))
        if not recorded and guest["name"] not in declared:
            continue
        others = {k: v for k, v in where.items() if k != guest["name"]}
        strict = checked.strict_broken(guest["name"], home, others) if guest["running"] else []
        if strict:
            plan["stays"].append(stay(guest["name"], "rule", "going home to %s would break %s"
                                      % (home, "; ".join(rule_words(strict)))))
            continue
        if guest["running"]:
            where[guest["name"]] = home
        after = moved(after, guest["name"], home)
        plan["moves"].append({"guest": guest["name"], "from": guest["host"], "from_uri": by_name[guest["host"]]["uri"],
                              "to": home, "to_uri": target["uri"], "memory_mib": guest["memory_mib"],
                              "why": "its home", "breaks": rule_words(checked.soft_broken(guest["name"], home, others))
                              if guest["running"] else []})
    why = ("home_unreachable", "%s does not answer" % home) if not target["reachable"] else \
        ("home_failed", "a migration to %s failed in this run" % home) if home in exclude else None
    if why:
        plan["stays"].extend(stay(m["guest"], *why) for m in plan["moves"])
        plan["moves"] = []
        after = guests
    plan["hosts"] = host_loads(hosts, guests, after)
    return plan


def capacity_of(host):
    return host["capacity_mib"] if host["capacity_mib"] is not None else host["total_mib"]


def memory_use(host, guests):
    capacity = capacity_of(host)
    return used_by(guests, host["name"]) / float(capacity) if capacity else 0.0


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


def moved(guests, name, target):
    return [dict(g, host=target) if g["name"] == name else g for g in guests]


def best_move(hosts, guests, headroom_mib=512, min_gain=0.05, exclude=(), pinned=(), checked=None, measure="allocated",
              min_improvement=0.0):
    """The one move that lowers the imbalance most per GiB copied (memory plus unshared disks), by at least
    ``min_gain`` and by at least ``min_improvement`` of the imbalance (relative); ties by the vCPU imbalance. A move
    breaks no strict rule (``checked``) and no soft rule that the guest keeps where it is. None when no move gains
    enough."""
    usable = [h for h in hosts if h["reachable"]]
    by_name = {h["name"]: h for h in usable}
    before = balance(usable, guests, measure)
    where = _running_where(guests)
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
    where = _running_where(guests)
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
                violations=checked.violations(_running_where(current)) if checked else [])
    if waiting:
        plan["waiting"] = {"code": known_code(waiting[0]), "reason": waiting[1]}
    else:
        unmoved(plan, guests, "no move lowers the imbalance by the minimum gain within room and rules"
                if not plan["balanced"] or plan["moves"] else "the hosts are balanced (within the tolerance)")
    plan["hosts"] = host_loads(usable, guests, current)
    return plan


def unmoved(plan, guests, reason):
    """Every running guest a plan neither moves nor already names: it stays, with ``reason`` (and its host)."""
    named = {m["guest"] for m in plan["moves"]} | {s["guest"] for s in plan["stays"]}
    for guest in sorted(guests, key=lambda g: (g["host"], g["name"])):
        if guest["running"] and guest["name"] not in named:
            plan["stays"].append(dict(stay(guest["name"], "not_moved", reason), host=guest["host"]))


def loop_item(item):
    """The item of a loop result, also through async_status (whose item is the started job, with the item in it)."""
    return item.get("item") if isinstance(item, dict) else item


def fleet_view(host_results, guest_results, capacities=None, shared_storage=True):
    """{"hosts": [...], "guests": [...]} from the registered results of a ``host_info`` loop and a ``domain_info``
    loop over the hypervisors' inventory names (each result's ``item``); a hypervisor whose host_info failed
    is unreachable, and its guests are unknown."""
    capacities = capacities or {}
    guests_of = {r.get("item"): r for r in guest_results or []}
    hosts, guests = [], []
    for result in host_results or []:
        name = loop_item(result.get("item"))
        if not isinstance(name, str):
            raise SpecError("host_results", name, "the registered results of a host_info loop over inventory names")
        capacity = capacities.get(name)
        hosts.append(host_view(name, None if result.get("failed") else result, capacity))
        listed = guests_of.get(name) or {}
        if result.get("failed") or listed.get("failed"):
            continue
        series = (result.get("load") or {}).get("guests") or {}
        for guest in listed.get("guests") or []:
            view = guest_view(name, guest, shared_storage)
            measured = series.get(view["name"])
            if measured and view["running"]:
                view["cpu_samples"] = [c or 0.0 for c in measured.get("cpu") or []]
                view["memory_used_samples_mib"] = [m if m is not None else view["memory_mib"]
                                                   for m in measured.get("memory_used_mib") or []]
            guests.append(view)
    return {"hosts": hosts, "guests": guests}


def plan_lines(plan):
    """A plan as short readable lines: one per move (->, with why, and the soft rules it breaks), one per guest
    that stays (with why), the balance, and each host's load before and after."""
    lines = []
    if plan.get("waiting"):
        lines.append("nothing is planned: %s" % plan["waiting"]["reason"])
    for move in plan.get("moves") or []:
        line = "%s: %s -> %s (%d MiB)" % (move["guest"], move["from"], move["to"], move["memory_mib"])
        if move.get("why"):
            line += ": %s" % move["why"]
        if move.get("breaks"):
            line += "; breaks %s" % "; ".join(move["breaks"])
        lines.append(line)
    lines.extend("%s stays: %s" % (s["guest"], s["reason"]) for s in plan.get("stays") or [] if s["code"] != "not_moved")
    kept = {}
    for entry in plan.get("stays") or []:
        if entry["code"] == "not_moved":
            kept.setdefault((entry.get("host"), entry["reason"]), []).append(entry["guest"])
    lines.extend("%s keeps %s: %s" % (host, ", ".join(names), reason) for (host, reason), names in sorted(kept.items()))
    for alone in plan.get("left_alone") or []:
        lines.append("%s is left alone: it %s on %s" % (
            alone["guest"], "is defined (shut off)" if alone.get("defined") else "runs", alone["host"]))
    for host in plan.get("power_off") or []:
        lines.append("%s powers off: %s" % (host["host"], host["reason"]))
    for host in plan.get("power_on") or []:
        lines.append("%s powers on: %s" % (host["host"], host["reason"]))
    for host in plan.get("uncordon") or []:
        lines.append("%s goes back in service: %s" % (host["host"], host["reason"]))
    for name in plan.get("stays_up") or []:
        lines.append("%s stays up, empty: without it the demand would leave the middle of the band" % name)
    if plan.get("reserve"):
        lines.append("spare host(s) kept up, empty: %s" % ", ".join(plan["reserve"]))
    for violation in plan.get("violations") or []:
        kind = "strict" if violation["strict"] else "soft"
        lines.append("%s rule %s stays broken: %s" % (kind, violation["rule"], violation["reason"]))
    if "before" in plan:
        words = "memory imbalance" if plan.get("measure", "allocated") == "allocated" else "measured load imbalance"
        lines.append("%s (coefficient of variation) %.3f -> %.3f, tolerance %.3f; vCPU imbalance %.3f -> %.3f"
                     % (words, plan["before"].get("imbalance", plan["before"]["memory"]),
                        plan["after"].get("imbalance", plan["after"]["memory"]), plan["tolerance"],
                        plan["before"]["vcpus"], plan["after"]["vcpus"]))
    if not plan.get("moves") and not plan.get("power_off") and not plan.get("power_on") and not plan.get("waiting"):
        lines.insert(0, "nothing to move")
    if "demand_before" in plan:
        lines.append("demand %.0f%% -> %.0f%% of the hosts in service (low %.0f%%, high %.0f%%, %s)" % (
            100 * plan["demand_before"], 100 * plan["demand_after"], 100 * plan["low"], 100 * plan["high"],
            "measured use" if plan.get("measure") == "used" else "guest memory"))
    if plan.get("released"):
        lines.append("hosts in standby after the plan: %d of %d (%.0f%% released)" % (
            plan["released"]["hosts"], plan["released"]["of"], 100 * plan["released"]["share"]))
    for name, load in sorted((plan.get("hosts") or {}).items()):
        before, after = load["before"], load["after"]
        if before == after and not plan.get("moves") and "pressure" not in plan:
            continue
        if name in (plan.get("pressure") or {}):
            pressure = plan["pressure"][name]
            lines.append("%s: guests %d -> %d, %.0f%% -> %.0f%% of its capacity used" % (
                name, before["guests"], after["guests"], 100 * pressure["before"], 100 * pressure["after"]))
            continue
        lines.append("%s: guests %d -> %d, guest memory %d -> %d MiB (%.0f%% -> %.0f%% of its capacity)" % (
            name, before["guests"], after["guests"], before["guest_memory_mib"], after["guest_memory_mib"],
            100 * before["memory_use"], 100 * after["memory_use"]))
    return lines


def batch_outcome(results):
    """What a batch of migrations did, from the registered results of the migrate tasks (directly, or through
    async_status, whose ``item`` is the started job with the move as its own ``item``):
    {"moved": [move + progress], "stays": [{"guest", "reason"}] for a refused pre-flight,
    "failed_targets": [host] whose migration failed, "failures": [{"guest", "to", "reason"}]}."""
    outcome = {"moved": [], "stays": [], "failed_targets": [], "failures": []}
    for result in results or []:
        move = result.get("item") or {}
        if "guest" not in move:
            move = move.get("item") or {}
        if "guest" not in move:
            raise SpecError("results", "(registered results)", "the results of a migrate loop over a plan's moves")
        if not result.get("failed"):
            outcome["moved"].append(dict(move, changed=bool(result.get("changed")), progress=result.get("progress")))
        elif result.get("stage") == "preflight":
            refused = stay(move["guest"], "preflight_refused", "refused by the pre-flight for %s: %s" % (
                move["to"], "; ".join(result.get("problems") or [result.get("msg") or "no reason given"])))
            refused["problem_kinds"] = list(result.get("problem_kinds") or [])
            outcome["stays"].append(refused)
        else:
            if move["to"] not in outcome["failed_targets"]:
                outcome["failed_targets"].append(move["to"])
            outcome["failures"].append({"guest": move["guest"], "to": move["to"], "reason": result.get("msg")})
    return outcome


def summary_lines(record):
    """A run's record ({"moved", "stays", "failures"}) as readable lines, with each migration's time and downtime."""
    lines = []
    for move in record.get("moved") or []:
        progress = move.get("progress") or {}
        timing = ""
        if progress.get("time_elapsed_ms") is not None:
            timing = " in %.1f s, downtime %s ms" % (progress["time_elapsed_ms"] / 1000.0, progress.get("downtime_ms"))
        lines.append("moved %s: %s -> %s%s%s" % (move["guest"], move["from"], move["to"], timing,
                                                 "" if move.get("changed", True) else " (already there)"))
    lines.extend("failed %s -> %s: %s" % (f["guest"], f["to"], f["reason"]) for f in record.get("failures") or [])
    for entry in record.get("imbalances") or []:
        if entry.get("expected") is not None:
            lines.append("imbalance before round %d: %.3f measured, %.3f expected by the moves before it"
                         % (entry["round"], entry["measured"], entry["expected"]))
    named = set()
    for stay in record.get("stays") or []:
        if stay["guest"] not in named and stay.get("code") != "not_moved":
            named.add(stay["guest"])
            lines.append("stays %s: %s" % (stay["guest"], stay["reason"]))
    return lines or ["nothing moved"]


def recovery_plan(hosts, guests, lost, specs, headroom_mib=512, others=(), rules=()):
    """Where each guest of the lost hypervisor ``lost`` restarts: ``specs`` are the fleet's descriptions of its
    guests (never read from the lost host), ``others`` those of the guests other hypervisors declare, of which the
    ones the fleet runs and that are on no reachable hypervisor were on the lost one (moved there). A guest the
    fleet does not run (its state is not running) is not restarted; one that already runs on a reachable host, or
    is defined on one (site.yml starts it there), is left alone; the others are placed as an evacuation places
    them. {"moves": [{"guest", "from", "to", "to_uri", "memory_mib"}], "stays", "left_alone", "targets"}."""
    by_name = {h["name"]: h for h in hosts}
    if lost not in by_name:
        raise SpecError("host", lost, "one of the hypervisors: %s" % (", ".join(sorted(by_name)) or "none"))
    running_at = {g["name"]: g["host"] for g in guests if g["running"] and g["host"] != lost}
    defined_at = {g["name"]: g["host"] for g in guests if g["host"] != lost}
    moved_there = [spec for spec in others if spec.get("state") == "running" and spec.get("name") not in defined_at]
    left_alone, skipped, lost_guests = [], [], []
    for spec in list(specs) + moved_there:
        name = spec.get("name")
        if spec.get("state") != "running":
            skipped.append(stay(name, "not_run_by_fleet", "the fleet does not run it (state %s): not restarted"
                                % (spec.get("state") or "present")))
        elif name in running_at:
            left_alone.append({"guest": name, "host": running_at[name]})
        elif name in defined_at:
            left_alone.append({"guest": name, "host": defined_at[name], "defined": True})
        else:
            memory = spec.get("current_memory") or spec.get("memory") or 0
            lost_guests.append({"name": name, "host": lost, "running": True, "copy_gib": 0.0, "origin": None,
                                "tags": dict(spec.get("tags") or {}), "moved_at": None,
                                "memory_mib": parse_size(memory, "guests[%s].memory" % name) // MIB if memory else 0,
                                "vcpus": int(spec.get("vcpus") or 1)})
    others = [g for g in guests if g["host"] != lost]
    plan = evacuation_plan(hosts, others + lost_guests, lost, headroom_mib, rules=rules)
    plan["stays"] = skipped + plan["stays"]
    plan["left_alone"] = left_alone
    plan["lost_reachable"] = by_name[lost]["reachable"]
    return plan


def evidence_lines(results):
    """The registered results of a recover loop as lines: per guest, what was done, then each check."""
    lines = []
    for result in results or []:
        move = result.get("item") or {}
        action = result.get("action") or ("refused" if result.get("failed") else "?")
        if result.get("failed") and not result.get("evidence"):
            action = "failed: %s" % result.get("msg")
        lines.append("%s -> %s: %s" % (move.get("guest"), move.get("to"), action))
        lines.extend("    %s %s: %s" % ("ok" if e["ok"] else "NO", e["check"], e["detail"])
                     for e in result.get("evidence") or [])
    return lines or ["nothing to restart"]
