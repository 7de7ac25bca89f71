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

import math

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import parse_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, Wording, known_code

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
        "capacity_mib": capacity_mib,
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
    }


def stay(guest, reason_code, reason):
    """A guest a plan leaves where it is: its name, the ``code`` playbooks decide on, the ``reason`` people read."""
    return {"guest": guest, "code": known_code(reason_code), "reason": Wording.apply(reason)}


def _used(guests, host):
    return sum(g["memory_mib"] for g in guests if g["host"] == host and g["running"])


def _room(host, guests, headroom_mib):
    """MiB a host can still take: its free memory less the headroom, and no more than its capacity less
    what its running guests have."""
    room = host["free_mib"] - headroom_mib
    if host["capacity_mib"] is not None:
        room = min(room, host["capacity_mib"] - _used(guests, host["name"]))
    return room


def _check(headroom_mib, parallel=None):
    if isinstance(headroom_mib, bool) or not isinstance(headroom_mib, int) or headroom_mib < 0:
        raise SpecError("headroom_mib", headroom_mib, "expected a whole number of MiB, 0 or more")
    if parallel is not None and (isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1):
        raise SpecError("parallel", parallel, "expected a whole number, 1 or more")


def evacuation_plan(hosts, guests, source, headroom_mib=512, exclude=(), stays=()):
    """{"moves": [{"guest", "from", "to", "to_uri", "memory_mib"}], "stays": [{"guest", "reason"}],
    "targets": {host: room left in MiB}} for every running guest of ``source``.

    Largest guests first, each to the target with the most room left (so the load spreads and no target
    is filled while another is empty); a guest fits only if the target keeps ``headroom_mib`` free after
    taking it, counting the guests planned for it before. ``exclude``: hosts not to place on (a failed
    migration's target); ``stays``: guests already known not to move ({"guest", "reason"}).
    """
    _check(headroom_mib)
    by_name = {h["name"]: h for h in hosts}
    if source not in by_name:
        raise SpecError("host", source, "one of the hypervisors: %s" % (", ".join(sorted(by_name)) or "none"))
    known = _given_stays(stays)
    targets = {}
    for host in hosts:
        if host["name"] == source or not host["reachable"] or host["cordoned"] or host["name"] in exclude:
            continue
        targets[host["name"]] = _room(host, guests, headroom_mib)
    plan = {"moves": [], "stays": [known[g] for g in sorted(known)], "targets": {}}
    leaving = [g for g in guests if g["host"] == source and g["name"] not in known]
    for guest in sorted(leaving, key=lambda g: (-g["memory_mib"], g["name"])):
        if not guest["running"]:
            plan["stays"].append(stay(guest["name"], "shut_off", "shut off: stays defined on %s" % source))
            continue
        best = max(sorted(targets), key=lambda h: targets[h], default=None)
        if best is None or targets[best] < guest["memory_mib"]:
            plan["stays"].append(stay(guest["name"], "no_target" if not targets else "no_room",
                                      _no_room(guest, targets, headroom_mib)))
            continue
        targets[best] -= guest["memory_mib"]
        plan["moves"].append({"guest": guest["name"], "from": source, "from_uri": by_name[source]["uri"], "to": best,
                              "to_uri": by_name[best]["uri"],
                              "memory_mib": guest["memory_mib"]})
    plan["targets"] = targets
    return plan


def _given_stays(stays):
    """The guests the caller says stay ({"guest", "reason"}, and the code when they have one), by name."""
    return {s["guest"]: dict(s, code=known_code(s.get("code") or "given")) for s in stays}


def _no_room(guest, targets, headroom_mib):
    if not targets:
        return "no hypervisor to take it (the others are cordoned, unreachable or failed a migration)"
    best = max(sorted(targets), key=lambda h: targets[h])
    return ("no hypervisor has room for its %d MiB with %d MiB headroom (most room: %s, %d MiB)"
            % (guest["memory_mib"], headroom_mib, best, max(targets[best], 0)))


def restore_plan(hosts, guests, home, exclude=(), stays=(), declared=()):
    """The guests whose recorded origin is ``home`` (by host UUID, else by URI), and those ``declared`` there (the
    names its list in the fleet's description declares: its guests by the Git description), back to it:
    {"moves": [...], "stays": [...]} as evacuation_plan gives. None go when ``home`` is in ``exclude`` (its
    migration failed) or does not answer; a guest in ``stays`` stays."""
    by_name = {h["name"]: h for h in hosts}
    if home not in by_name:
        raise SpecError("host", home, "one of the hypervisors: %s" % (", ".join(sorted(by_name)) or "none"))
    target = by_name[home]
    plan = {"moves": [], "stays": []}
    for guest in sorted(guests, key=lambda g: (g["host"], g["name"])):
        origin = guest.get("origin") or {}
        if guest["host"] == home:
            continue
        recorded = origin and ((origin.get("uuid") and origin["uuid"] == target["uuid"])
                               or (not origin.get("uuid") and origin.get("uri") == target["uri"]))
        if not recorded and guest["name"] not in declared:
            continue
        plan["moves"].append({"guest": guest["name"], "from": guest["host"], "from_uri": by_name[guest["host"]]["uri"],
                              "to": home, "to_uri": target["uri"], "memory_mib": guest["memory_mib"]})
    known = _given_stays(stays)
    plan["stays"] = [known[g] for g in sorted(known)]
    plan["moves"] = [m for m in plan["moves"] if m["guest"] not in known]
    why = ("home_unreachable", "%s does not answer" % home) if not target["reachable"] else \
        ("home_failed", "a migration to %s failed in this run" % home) if home in exclude else None
    if why:
        plan["stays"].extend(stay(m["guest"], *why) for m in plan["moves"])
        plan["moves"] = []
    return plan


def _use(host, guests):
    capacity = host["capacity_mib"] if host["capacity_mib"] is not None else host["total_mib"]
    return _used(guests, host["name"]) / float(capacity) if capacity else 0.0


def _vcpu_ratio(host, guests):
    return sum(g["vcpus"] for g in guests if g["host"] == host["name"] and g["running"]) / float(host["cpus"] or 1)


def variation(values):
    """The coefficient of variation (population standard deviation over the mean); 0 for no load."""
    if not values:
        return 0.0
    mean = sum(values) / float(len(values))
    if mean == 0:
        return 0.0
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) / mean


def balance(hosts, guests):
    """{"memory": CV of memory use, "vcpus": CV of vCPUs per physical CPU, "hosts": {name: {use, vcpu_ratio}}}."""
    return {
        "memory": round(variation([_use(h, guests) for h in hosts]), 4),
        "vcpus": round(variation([_vcpu_ratio(h, guests) for h in hosts]), 4),
        "hosts": {h["name"]: {"memory_use": round(_use(h, guests), 4), "vcpus_per_cpu": round(_vcpu_ratio(h, guests), 4),
                              "guest_memory_mib": _used(guests, h["name"])} for h in hosts},
    }


def _move(guests, name, target):
    return [dict(g, host=target) if g["name"] == name else g for g in guests]


def best_move(hosts, guests, headroom_mib=512, min_gain=0.05, exclude=(), pinned=()):
    """The one move that lowers the memory imbalance most per GiB copied (memory plus unshared disks), by at
    least ``min_gain``; ties by the vCPU imbalance. None when no move gains enough."""
    usable = [h for h in hosts if h["reachable"]]
    by_name = {h["name"]: h for h in usable}
    before = balance(usable, guests)
    best = None
    for guest in guests:
        if not guest["running"] or guest["name"] in pinned or guest["host"] not in by_name:
            continue
        for target in usable:
            if target["name"] == guest["host"] or target["cordoned"] or target["name"] in exclude:
                continue
            if _room(target, guests, headroom_mib) < guest["memory_mib"]:
                continue
            after = balance(usable, _move(guests, guest["name"], target["name"]))
            gain = before["memory"] - after["memory"]
            if gain < min_gain:
                continue
            cost = guest["memory_mib"] / 1024.0 + guest["copy_gib"]
            # most imbalance removed per GiB copied; then the larger gain (fewer moves), the vCPU balance, and names
            key = (round(gain / max(cost, 1.0 / 1024), 6), round(gain, 6), round(before["vcpus"] - after["vcpus"], 6),
                   guest["name"], target["name"])
            candidate = {"guest": guest["name"], "from": guest["host"], "from_uri": by_name[guest["host"]]["uri"],
                         "to": target["name"], "to_uri": target["uri"], "memory_mib": guest["memory_mib"],
                         "gain": round(gain, 4), "memory_after": after["memory"], "vcpus_after": after["vcpus"]}
            if best is None or key[:3] > best[0][:3] or (key[:3] == best[0][:3] and key[3:] < best[0][3:]):
                best = (key, candidate)
    return None if best is None else best[1]


def rebalance_plan(hosts, guests, tolerance=0.1, min_gain=0.05, headroom_mib=512, max_moves=10, exclude=(), pinned=()):
    """{"before", "after", "moves": [...]} — the moves ``best_move`` picks one after another on the simulated
    placement, until the memory imbalance is within ``tolerance`` or no move gains ``min_gain``. The playbook
    makes only the first, then measures again."""
    _check(headroom_mib)
    if isinstance(max_moves, bool) or not isinstance(max_moves, int) or max_moves < 1:
        raise SpecError("max_moves", max_moves, "expected a whole number, 1 or more")
    for option, value in (("tolerance", tolerance), ("min_gain", min_gain)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SpecError(option, value, "expected a number, 0 or more (a coefficient of variation such as 0.1)")
    usable = [h for h in hosts if h["reachable"]]
    before = balance(usable, guests)
    moves, current = [], list(guests)
    while len(moves) < max_moves and balance(usable, current)["memory"] > tolerance:
        move = best_move(usable, current, headroom_mib, min_gain, exclude, pinned)
        if move is None:
            break
        moves.append(move)
        current = _move(current, move["guest"], move["to"])
        # the free memory both hosts would have after it
        usable = [dict(h, free_mib=h["free_mib"] - move["memory_mib"]) if h["name"] == move["to"]
                  else dict(h, free_mib=h["free_mib"] + move["memory_mib"]) if h["name"] == move["from"] else h
                  for h in usable]
    return {"before": before, "after": balance(usable, current), "moves": moves, "tolerance": tolerance,
            "balanced": balance(usable, current)["memory"] <= tolerance}


def fleet_view(host_results, guest_results, capacities=None, shared_storage=True):
    """{"hosts": [...], "guests": [...]} from the registered results of a ``host_info`` loop and a ``domain_info``
    loop over the hypervisors' inventory names (each result's ``item``); a hypervisor whose host_info failed
    is unreachable, and its guests are unknown."""
    capacities = capacities or {}
    guests_of = {r.get("item"): r for r in guest_results or []}
    hosts, guests = [], []
    for result in host_results or []:
        name = result.get("item")
        if not isinstance(name, str):
            raise SpecError("host_results", name, "the registered results of a host_info loop over inventory names")
        capacity = capacities.get(name)
        hosts.append(host_view(name, None if result.get("failed") else result, capacity))
        listed = guests_of.get(name) or {}
        if result.get("failed") or listed.get("failed"):
            continue
        guests.extend(guest_view(name, guest, shared_storage) for guest in listed.get("guests") or [])
    return {"hosts": hosts, "guests": guests}


def plan_lines(plan):
    """A plan as short readable lines: one per move (->) and per guest that stays (!), then the balance."""
    lines = ["%s: %s -> %s (%d MiB)%s" % (m["guest"], m["from"], m["to"], m["memory_mib"],
                                          ", imbalance -%.3f" % m["gain"] if "gain" in m else "")
             for m in plan.get("moves") or []]
    lines.extend("%s stays: %s" % (s["guest"], s["reason"]) for s in plan.get("stays") or [])
    for alone in plan.get("left_alone") or []:
        lines.append("%s is left alone: it %s on %s" % (
            alone["guest"], "is defined (shut off)" if alone.get("defined") else "runs", alone["host"]))
    if "before" in plan:
        lines.append("memory imbalance (coefficient of variation) %.3f -> %.3f, tolerance %.3f; vCPU imbalance "
                     "%.3f -> %.3f" % (plan["before"]["memory"], plan["after"]["memory"], plan["tolerance"],
                                       plan["before"]["vcpus"], plan["after"]["vcpus"]))
    if not lines:
        lines.append("nothing to move")
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
    named = set()
    for stay in record.get("stays") or []:
        if stay["guest"] not in named:
            named.add(stay["guest"])
            lines.append("stays %s: %s" % (stay["guest"], stay["reason"]))
    return lines or ["nothing moved"]


def recovery_plan(hosts, guests, lost, specs, headroom_mib=512, others=()):
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
                                "memory_mib": parse_size(memory, "guests[%s].memory" % name) // MIB if memory else 0,
                                "vcpus": int(spec.get("vcpus") or 1)})
    others = [g for g in guests if g["host"] != lost]
    plan = evacuation_plan(hosts, others + lost_guests, lost, headroom_mib)
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
