# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: which guest goes to which hypervisor, as pure functions of what ``host_info`` and
``domain_info`` report (the ``placement`` filters apply them; the playbooks only carry the plan out).

- ``evacuation_plan``: every running guest of one host to the others, packed by free memory with
  headroom, never onto a cordoned host or one whose migration failed in this run.
- ``rebalance_plan`` (_migrate/balance.py): moves that even out the hosts' load, built on this module's view.
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
        # the guest architectures its libvirt runs (host_info's architectures); None: not known, no constraint
        "architectures": sorted(info["architectures"]) if isinstance(info.get("architectures"), dict) else None,
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
        "arch": spec.get("arch"),
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


def architecture_rules(hosts, guests):
    """The rules no operator writes: a guest runs only where libvirt runs its architecture. For each guest
    architecture some hypervisor cannot run (host_info's ``architectures`` does not list it: no emulator for it), a
    strict on_hosts rule "architecture ARCH" over the guests of that architecture, naming the hosts that run it. A
    host whose architectures are not known (not read) constrains nothing."""
    known = {h["name"]: h.get("architectures") for h in hosts}
    by_arch = {}
    for guest in guests:
        if guest.get("arch"):
            by_arch.setdefault(guest["arch"], []).append(guest["name"])
    result = []
    for arch, names in sorted(by_arch.items()):
        runs = sorted(name for name, arches in known.items() if arches is None or arch in arches)
        if len(runs) == len(known):
            continue
        result.append({"name": "architecture %s" % arch, "kind": "on_hosts", "strict": True, "arch": arch,
                       "guests": sorted(set(names)), "tags": None, "hosts": [{"name": h, "priority": 0} for h in runs]})
    return result


def ruled(rules, hosts, guests):
    """The placement rules (as rules.normalize returns them, or as declared) over ``guests``, checked for
    feasibility with the hosts there are, and the architecture rules (architecture_rules): a Rules object. Declared
    rules that cannot all hold are an error naming them, raised before any plan is made."""
    implicit = architecture_rules(hosts, guests)
    if not rules:
        return rules_of.Rules(implicit, guests)
    names = [h["name"] for h in hosts]
    rules = rules_of.normalize(rules, names)  # as declared, or as the placement_rules filter gave them
    checked = rules_of.Rules(rules, guests)
    problems = rules_of.feasibility(checked, guests, names)
    if problems:
        raise UserError("the placement rules cannot all hold, so nothing is planned: %s" % "; ".join(problems),
                        code="invalid_option", result={"option": "kvmfleet_placement_rules", "problems": problems})
    return rules_of.Rules(rules + implicit, guests) if implicit else checked


def running_where(guests):
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
    where = running_where(guests)
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
    where = running_where(guests)
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


def moved(guests, name, target):
    return [dict(g, host=target) if g["name"] == name else g for g in guests]


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
    is unreachable, and its guests are unknown. So is one whose guests were not read (its domain_info result
    failed, or has no ``guests``, as a loop with ``failed_when: false`` registers a failure): an unread host is
    never taken for an empty one."""
    capacities = capacities or {}
    guests_of = {r.get("item"): r for r in guest_results or []}
    hosts, guests = [], []
    for result in host_results or []:
        name = loop_item(result.get("item"))
        if not isinstance(name, str):
            raise SpecError("host_results", name, "the registered results of a host_info loop over inventory names")
        capacity = capacities.get(name)
        listed = guests_of.get(name) or {}
        unread = guest_results is not None and (listed.get("failed") or not isinstance(listed.get("guests"), list))
        hosts.append(host_view(name, None if result.get("failed") or unread else result, capacity))
        if result.get("failed") or unread:
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
                                "vcpus": int(spec.get("vcpus") or 1), "arch": spec.get("arch")})
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
