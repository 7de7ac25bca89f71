# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: energy-saving consolidation (playbooks/consolidate.yml), a pure function of the placement view.

At low demand, guests are packed onto the fewest hypervisors that keep their headroom and stay under the high
watermark, ``reserve`` emptied hosts stay up as spares and the other emptied hosts are powered off (oVirt's
power_saving policy with HostsInReserve; OpenStack Watcher's min_free_hosts_num). When demand rises above the high
watermark, hosts in standby are powered on again until it falls to the middle of the band (VMware DPM's rule, on
the in-service hosts' mean), and the playbook rebalances onto them.

A host's *pressure* is what bounds it: its guests' memory over its capacity (``measure`` allocated), or the larger
of its measured memory and CPU use (``used``). The fleet's *demand* is its guests' load over the capacity of the
hosts in service.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import balance, placement
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

# The maintenance reason of a host consolidation emptied and powered off: what tells its standby from other
# maintenance once it is up again.
STANDBY_REASON = "standby: emptied and powered off by consolidate"


def pressure(host, guests, measure, sample=None):
    """What bounds a host: its guests' memory over its capacity, or (``used``) the larger of its measured memory and
    CPU use, over the window or at one ``sample``."""
    if measure == "used":
        load = balance.measured_load(host, guests, sample)
        return max(load["memory_use"], load["cpu_use"])
    return placement.memory_use(host, guests)


def _samples(guests):
    return max([len(g.get("cpu_samples") or []) for g in guests] + [0])


def _peak(host, guests, measure):
    """The highest pressure of the window (the mean when nothing was sampled): a host is emptied only when it stayed
    under the low watermark through the window (oVirt waits for it to stay there)."""
    count = _samples(guests) if measure == "used" else 0
    return max([pressure(host, guests, measure, i) for i in range(count)] or [pressure(host, guests, measure)])


def _demand(hosts, guests, measure, sample=None):
    """The in-service hosts' load over their capacity (their mean pressure, weighted by capacity)."""
    capacity = sum(placement.capacity_of(h) for h in hosts)
    load = sum(pressure(h, guests, measure, sample) * placement.capacity_of(h) for h in hosts)
    return load / float(capacity) if capacity else 0.0


def _check(reserve, low, high, measure):
    if isinstance(reserve, bool) or not isinstance(reserve, int) or reserve < 0:
        raise SpecError("reserve", reserve, "expected a whole number of empty hosts to keep up, 0 or more")
    for option, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise SpecError(option, value, "expected a share of a host's capacity between 0 and 1 (such as 0.8)")
    if low >= high:
        raise SpecError("low", low, "expected a low watermark below the high watermark (%s)" % high)
    if measure not in ("allocated", "used"):
        raise SpecError("measure", measure, "allocated (the guests' memory) or used (what they were measured to use)")


def consolidation_plan(hosts, guests, reserve=1, headroom_mib=512, low=0.2, high=0.8, rules=(), measure="allocated",
                       power=(), pinned=()):
    """{"mode": "consolidate"|"wake"|"steady", "moves", "stays", "power_off": [{"host", "reason"}], "power_on":
    [{"host", "reason"}], "reserve": [hosts], "demand_before", "demand_after", "hosts": loads before and after,
    "pressure": {host: {"before", "after"}}}.

    ``power``: the hosts that have a power action (only they are powered off or on). A host that does not answer
    and has one is in standby; so is one that answers and is cordoned for standby (woken, not yet in service).
    Consolidate: hosts under ``low`` are emptied, least loaded first, onto the hosts that stay (the most loaded
    that take the guest without going over ``high`` or into the headroom, as strict rules allow); an emptied host
    that cannot be fully emptied stays as it is. Of the empty hosts, ``reserve`` stay up (those without a power
    action first) and the others with a power action are powered off. Wake: when the demand is above ``high``,
    standby hosts, in the order given, are powered on until it is at most the middle of the band.
    """
    placement.check_headroom(headroom_mib)
    _check(reserve, low, high, measure)
    power = list(power)
    usable = [h for h in hosts if h["reachable"]]
    checked = placement.ruled(rules, hosts, guests)  # the rules hold for the cluster, hosts in standby too
    standby_up = [h for h in usable if h["cordoned"] and h.get("maintenance_reason") == STANDBY_REASON]
    in_service = [h for h in usable if not h["cordoned"]]
    standby_down = [h["name"] for h in hosts if not h["reachable"] and h["name"] in power]
    plan = {"moves": [], "stays": [], "power_off": [], "power_on": [], "uncordon": [], "reserve": [],
            "measure": measure, "low": low, "high": high, "standby_reason": STANDBY_REASON}
    plan["demand_before"] = round(_demand(in_service, guests, measure), 4)
    flying = balance.in_flight(usable)
    if flying:
        plan.update(mode="steady", waiting={"code": "move_in_flight", "reason": "a job is in flight on %s: nothing is "
                                            "planned while a move runs" % ", ".join(flying)})
        return _finish(plan, usable, guests, guests, measure, hosts, standby_down)
    series = [_demand(in_service, guests, measure, i) for i in range(_samples(guests))] if measure == "used" else []
    plan["demand_samples"] = [round(d, 4) for d in series]
    if plan["demand_before"] > high and (standby_up or standby_down):
        if not series or min(series) > high:  # above the watermark through the window, not a spike (VMware DPM)
            return _wake(plan, in_service, standby_up, standby_down, hosts, guests, measure, high, low)
        plan["waiting"] = {"code": "holding", "reason": "the demand was above the high watermark in %d of %d samples; "
                           "it must stay there through the window to wake a host" % (
                               sum(1 for d in series if d > high), len(series))}
        plan["mode"] = "steady"
        return _finish(plan, usable, guests, guests, measure, hosts, standby_down)
    after = _pack(plan, in_service, guests, checked, headroom_mib, low, high, measure, set(pinned), power)
    empty = [h for h in in_service if not any(g["host"] == h["name"] and g["running"] for g in after)]
    # the spares: hosts without a power action first, then those already empty before, then the larger
    was_empty = {h["name"] for h in in_service if not any(g["host"] == h["name"] and g["running"] for g in guests)}
    spares = sorted(empty, key=lambda h: (h["name"] in power, h["name"] not in was_empty,
                                          -placement.capacity_of(h), h["name"]))
    plan["reserve"] = [h["name"] for h in spares[:reserve]]
    serving = list(in_service)
    for host in spares[reserve:]:
        if host["name"] not in power:
            continue
        left = [h for h in serving if h is not host]
        if _demand(left, after, measure) > (low + high) / 2.0:
            # what would wake it again at once: the demand without it must stay in the middle of the band
            plan["stays_up"] = plan.get("stays_up", []) + [host["name"]]
            continue
        serving = left
        plan["power_off"].append({"host": host["name"], "code": "standby", "reason": "empty%s; %d spare(s) stay up (%s);"
                                  " demand %.0f%% of the hosts left in service" % (
                                      "" if host["name"] in was_empty else " after the moves", reserve,
                                      ", ".join(plan["reserve"]) or "none", 100 * _demand(left, after, measure))})
    for host in standby_up:
        plan["power_off"].append({"host": host["name"], "code": "standby", "reason": "in standby, up but not in service"})
    emptied = {m["from"] for m in plan["moves"]}
    useless = emptied - {p["host"] for p in plan["power_off"]} - set(plan["reserve"]) if plan["power_off"] else emptied
    if useless:  # never move guests for a host that then stays up, empty, beyond the reserve
        plan["moves"] = [m for m in plan["moves"] if m["from"] not in useless]
        after = list(guests)
        for move in plan["moves"]:
            after = placement.moved(after, move["guest"], move["to"])
    plan["mode"] = "consolidate" if plan["moves"] or plan["power_off"] else "steady"
    placement.unmoved(plan, guests, "its host stays in service (above the low watermark, or it takes the others)")
    return _finish(plan, usable, guests, after, measure, hosts, standby_down)


def _pack(plan, in_service, guests, checked, headroom_mib, low, high, measure, pinned, power):
    """Empty the hosts under ``low`` that have a power action onto those that stay: the moves go into ``plan``;
    returns the placement after. A host without a power action stays up whatever it holds: it is never emptied
    (that would power nothing off), and it takes guests first when it is the most loaded with room."""
    current = list(guests)
    sources = sorted((h for h in in_service if _peak(h, guests, measure) < low and h["name"] in power),
                     key=lambda h: (pressure(h, guests, measure), h["name"]))
    if len(sources) == len(in_service) and sources:  # all are under low: the most loaded one stays, takes the others
        keeper = min(sources, key=lambda h: (-pressure(h, guests, measure), h["name"]))
        sources = [h for h in sources if h is not keeper]
    keep = [h for h in in_service if h not in sources]
    for source in sources:
        leaving = [g for g in current if g["host"] == source["name"] and g["running"]]
        if not leaving:
            continue  # already empty
        trial, moves, refused = list(current), [], None
        for guest in sorted(leaving, key=lambda g: (-g["memory_mib"], g["name"])):
            if guest["name"] in pinned:
                refused = placement.stay(guest["name"], "given", "pinned: it never moves, so %s is not emptied"
                                         % source["name"])
                break
            target, why = _fit(guest, keep, trial, checked, headroom_mib, high, measure, guests)
            if target is None:
                refused = placement.stay(guest["name"], why[0], "%s, so %s is not emptied" % (why[1], source["name"]))
                break
            moves.append({"guest": guest["name"], "from": source["name"], "from_uri": source["uri"],
                          "to": target["name"], "to_uri": target["uri"], "memory_mib": guest["memory_mib"],
                          "breaks": [], "why": "empties %s (%.0f%% < low %.0f%%); %s" % (
                              source["name"], 100 * pressure(source, guests, measure), 100 * low, why)})
            trial = placement.moved(trial, guest["name"], target["name"])
        if refused:
            plan["stays"].append(refused)
            keep.append(source)
            continue
        plan["moves"].extend(moves)
        current = trial
    return current


def _fit(guest, keep, current, checked, headroom_mib, high, measure, original):
    """The most loaded host of ``keep`` that takes ``guest`` and stays under ``high`` with its headroom, no strict
    rule broken (a soft one only when nothing else fits): (host, why) or (None, (code, reason))."""
    where = {g["name"]: g["host"] for g in current if g["running"] and g["name"] != guest["name"]}
    candidates, refused, full = [], [], []
    for host in keep:
        # its free memory less what this plan already put on it
        added = placement.used_by(current, host["name"]) - placement.used_by(original, host["name"])
        if placement.room_on(dict(host, free_mib=host["free_mib"] - added), current, headroom_mib) < guest["memory_mib"]:
            full.append(host["name"])
            continue
        moved = placement.moved(current, guest["name"], host["name"])
        after = pressure(host, moved, measure)
        if after > high:
            full.append(host["name"])
            continue
        strict = checked.strict_broken(guest["name"], host["name"], where)
        if strict:
            refused.append("%s: %s" % (host["name"], "; ".join(placement.rule_words(strict))))
            continue
        soft = len(checked.soft_broken(guest["name"], host["name"], where))
        candidates.append(((soft, -pressure(host, current, measure), host["name"]), host, after))
    if not candidates:
        if refused:
            return None, ("rule", "every host that stays and has room would break a rule: %s" % " | ".join(refused))
        return None, ("no_room", "no host that stays takes its %d MiB under the high watermark with headroom (%s)"
                      % (guest["memory_mib"], ", ".join(full) or "none"))
    host, after = min(candidates)[1:]
    return host, "the most loaded host that takes it: %s, %.0f%% after" % (host["name"], 100 * after)


def _wake(plan, in_service, standby_up, standby_down, hosts, guests, measure, high, low):
    """Power on (or put back in service) standby hosts until the demand is at most the middle of the band."""
    by_name = {h["name"]: h for h in hosts}
    target = (high + low) / 2.0
    serving = list(in_service)
    for host in standby_up + [by_name[n] for n in standby_down]:
        if _demand(serving, guests, measure) <= target:
            break
        # a host in standby is woken with the capacity its inventory gives, else that of the largest in service
        sized = host if host["reachable"] and placement.capacity_of(host) else dict(
            host, capacity_mib=host["capacity_mib"] or max([placement.capacity_of(h) for h in serving] or [0]))
        serving.append(sized)
        entry = {"host": host["name"], "code": "standby",
                 "reason": "demand %.0f%% of the hosts in service is above the high watermark %.0f%%; %.0f%% with it"
                           % (100 * plan["demand_before"], 100 * high, 100 * _demand(serving, guests, measure))}
        (plan["uncordon"] if host["reachable"] else plan["power_on"]).append(entry)
    plan["mode"] = "wake"
    plan["demand_after"] = round(_demand(serving, guests, measure), 4)
    plan["hosts"] = placement.host_loads([h for h in hosts if h["reachable"]], guests, guests)
    plan["pressure"] = {h["name"]: {"before": round(pressure(h, guests, measure), 4),
                                    "after": round(pressure(h, guests, measure), 4)} for h in in_service}
    return plan


def _finish(plan, usable, before, after, measure, hosts, standby_down):
    serving = [h for h in usable if h["name"] not in {p["host"] for p in plan["power_off"]} and not h["cordoned"]]
    # OpenStack Watcher reports the share of nodes a consolidation releases: the hosts in standby after the plan
    released = len(standby_down) + len(plan["power_off"])
    plan["released"] = {"hosts": released, "of": len(hosts), "share": round(released / float(len(hosts) or 1), 4)}
    plan["demand_after"] = round(_demand(serving, after, measure), 4)
    plan["hosts"] = placement.host_loads(usable, before, after)
    plan["pressure"] = {h["name"]: {"before": round(pressure(h, before, measure), 4),
                                    "after": round(pressure(h, after, measure), 4)} for h in usable}
    return plan
