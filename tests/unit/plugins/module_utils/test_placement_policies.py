"""Placement policies with plain data (issue 23): affinity rules in every plan, load-aware balance with hysteresis,
energy-saving consolidation. Properties (hypothesis): strict rules are never broken, no target is overcommitted,
consolidation keeps its reserve and its high watermark, a guest in its cooldown never moves, and a second plan over
the result of the first proposes nothing."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import balance, consolidate, placement, rules as rules_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError


def host(name, free=8192, total=16384, cpus=8, cordoned=False, capacity=None, reachable=True, jobs=(), reason=None):
    return {"name": name, "uri": "qemu+tcp://%s/system" % name, "uuid": "uuid-" + name, "reachable": reachable,
            "total_mib": total, "free_mib": free, "cpus": cpus, "cordoned": cordoned, "capacity_mib": capacity,
            "jobs": list(jobs), "maintenance_reason": reason}


def guest(name, on, memory=1024, running=True, tags=None, moved_at=None, cpu=None, used=None):
    found = {"name": name, "host": on, "memory_mib": memory, "vcpus": 1, "running": running, "copy_gib": 0.0,
             "origin": None, "tags": tags or {}, "moved_at": moved_at}
    if cpu is not None:
        found["cpu_samples"] = list(cpu)
        found["memory_used_samples_mib"] = list(used or [memory] * len(cpu))
    return found


def apply(guests, moves):
    for move in moves:
        guests = placement.moved(guests, move["guest"], move["to"])
    return guests


# -- the rules themselves ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rules, option, accepted", [
    ("apart", "kvmfleet_placement_rules", "a list of rules"),
    ([{"name": "r", "kind": "near", "guests": ["a", "b"]}], "kvmfleet_placement_rules[0].kind", "one of together"),
    ([{"name": "r", "kind": "apart", "guests": ["a", "b"], "tags": {"role": "db"}}], "kvmfleet_placement_rules[0].guests",
     "either guests"),
    ([{"name": "r", "kind": "apart", "guests": ["a"]}], "kvmfleet_placement_rules[0].guests", "two guests or more"),
    ([{"name": "r", "kind": "on_hosts", "guests": ["a"]}], "kvmfleet_placement_rules[0].hosts", "a list of hypervisors"),
    ([{"name": "r", "kind": "on_hosts", "guests": ["a"], "hosts": ["hv9"]}], "kvmfleet_placement_rules[0].hosts",
     "one of the hypervisors: hv1, hv2"),
    ([{"name": "r", "kind": "apart", "guests": ["a", "b"], "strict": "yes"}], "kvmfleet_placement_rules[0].strict",
     "true or false"),
    ([{"name": "r", "kind": "apart", "guests": ["a", "b"], "weight": 3}], "kvmfleet_placement_rules[0].weight",
     "one of the keys"),
    ([{"name": "r", "kind": "apart", "guests": ["a", "b"]}, {"name": "r", "kind": "apart", "guests": ["c", "d"]}],
     "kvmfleet_placement_rules[1].name", "a name no other rule has"),
])
def test_a_badly_written_rule_is_named_with_what_is_accepted(rules, option, accepted):
    with pytest.raises(SpecError) as refused:
        rules_of.normalize(rules, ["hv1", "hv2"])
    assert refused.value.option == option and accepted in str(refused.value), str(refused.value)


def test_defaults_follow_proxmox_guests_strict_hosts_soft_and_priorities_order_hosts():
    rules = rules_of.normalize([
        {"name": "db-apart", "kind": "apart", "tags": {"role": "db"}},
        {"name": "db-fast", "kind": "on_hosts", "tags": {"role": "db"}, "hosts": ["hv1", {"name": "hv2", "priority": 5}]},
    ], ["hv1", "hv2"])
    assert [r["strict"] for r in rules] == [True, False]
    assert rules[1]["hosts"] == [{"name": "hv2", "priority": 5}, {"name": "hv1", "priority": 0}]
    guests = [guest("db1", "hv1", tags={"role": "db"}), guest("db2", "hv1", tags={"role": "db", "x": "y"}),
              guest("web", "hv1", tags={"role": "web"})]
    assert rules_of.members(rules[0], guests) == ["db1", "db2"]


def test_rules_that_cannot_hold_are_named_before_anything_is_planned():
    hosts = [host("hv1"), host("hv2")]
    guests = [guest(n, "hv1") for n in ("a", "b", "c")]
    three_apart = [{"name": "spread", "kind": "apart", "guests": ["a", "b", "c"]}]
    with pytest.raises(UserError) as refused:
        placement.evacuation_plan(hosts, guests, "hv1", rules=three_apart)
    assert "rule spread keeps 3 guests apart (a, b, c), but they have 2 hypervisor(s)" in str(refused.value)
    contradiction = [{"name": "pair", "kind": "together", "guests": ["a", "b"]},
                     {"name": "split", "kind": "apart", "guests": ["a", "b"]}]
    with pytest.raises(UserError) as refused:
        balance.rebalance_plan(hosts, guests, rules=contradiction)
    assert "rule split keeps a and b apart, but rules pair keep them together" in str(refused.value)
    nowhere = [{"name": "only1", "kind": "on_hosts", "guests": ["a"], "hosts": ["hv1"], "strict": True},
               {"name": "not1", "kind": "off_hosts", "guests": ["a"], "hosts": ["hv1"], "strict": True}]
    with pytest.raises(UserError) as refused:
        consolidate.consolidation_plan(hosts, guests, rules=nowhere)
    assert "rules not1, only1 leave a no hypervisor to run on" in str(refused.value)


# -- rules in the plans -----------------------------------------------------------------------------------------

def test_an_evacuation_keeps_apart_what_a_negative_rule_keeps_apart():
    hosts = [host("hv1"), host("hv2", free=8192), host("hv3", free=4096)]
    guests = [guest("db1", "hv1", 1024, tags={"role": "db"}), guest("db2", "hv1", 1024, tags={"role": "db"})]
    free = placement.evacuation_plan(hosts, guests, "hv1", headroom_mib=0)
    assert [m["to"] for m in free["moves"]] == ["hv2", "hv2"]  # most room, both
    apart = [{"name": "db-apart", "kind": "apart", "tags": {"role": "db"}}]
    plan = placement.evacuation_plan(hosts, guests, "hv1", headroom_mib=0, rules=apart)
    assert sorted((m["guest"], m["to"]) for m in plan["moves"]) == [("db1", "hv2"), ("db2", "hv3")]
    # with only one other host, the second stays and says which rule keeps it
    plan = placement.evacuation_plan(hosts[:2], guests, "hv1", headroom_mib=0, rules=apart)
    assert [m["guest"] for m in plan["moves"]] == ["db1"]
    assert plan["stays"][0]["code"] == "rule" and "strict rule db-apart (apart from db1, which runs on hv2)" in \
        plan["stays"][0]["reason"]
    assert "db2 stays: every hypervisor with room would break a rule" in " | ".join(placement.plan_lines(plan))


def test_a_together_rule_moves_its_guests_as_one_and_a_soft_rule_broken_is_said():
    hosts = [host("hv1"), host("hv2", free=3000), host("hv3", free=2500)]
    guests = [guest("app", "hv1", 1024), guest("cache", "hv1", 1024), guest("other", "hv1", 2048)]
    together = [{"name": "pair", "kind": "together", "guests": ["app", "cache"]}]
    plan = placement.evacuation_plan(hosts, guests, "hv1", headroom_mib=0, rules=together)
    placed = {m["guest"]: m["to"] for m in plan["moves"]}
    assert placed["app"] == placed["cache"]
    soft = [{"name": "not-hv2", "kind": "off_hosts", "guests": ["other"], "hosts": ["hv2", "hv3"]}]
    plan = placement.evacuation_plan(hosts, [guests[2]], "hv1", headroom_mib=0, rules=soft)
    move = plan["moves"][0]
    assert move["breaks"] == ["soft rule not-hv2 (never on %s)" % move["to"]]
    assert "breaks soft rule not-hv2" in placement.plan_lines(plan)[0] and "no host with room keeps every soft rule" in placement.plan_lines(plan)[0]


def test_node_affinity_prefers_the_highest_priority_host_with_room():
    hosts = [host("hv1"), host("hv2", free=9000), host("hv3", free=2000)]
    rules = [{"name": "fast", "kind": "on_hosts", "guests": ["db"], "hosts": [{"name": "hv3", "priority": 2}, "hv2"]}]
    plan = placement.evacuation_plan(hosts, [guest("db", "hv1", 1024)], "hv1", headroom_mib=0, rules=rules)
    assert plan["moves"][0]["to"] == "hv3" and "priority 2" in plan["moves"][0]["why"]


def test_restore_leaves_a_guest_a_strict_rule_keeps_from_home():
    hosts = [host("hv1"), host("hv2")]
    home = {"uuid": "uuid-hv1", "uri": "qemu+tcp://hv1/system", "host": "hv1"}
    guests = [dict(guest("db1", "hv2"), origin=home), guest("db2", "hv1")]
    plan = placement.restore_plan(hosts, guests, "hv1", rules=[{"name": "apart", "kind": "apart", "guests": ["db1", "db2"]}])
    assert plan["moves"] == [] and plan["stays"][0]["code"] == "rule"


def test_recovery_places_the_lost_guests_by_the_rules():
    hosts = [host("hv1", reachable=False), host("hv2", free=9000), host("hv3", free=4000)]
    guests = [guest("db2", "hv2", 1024, tags={"role": "db"})]
    specs = [{"name": "db1", "state": "running", "memory": "1GiB", "tags": {"role": "db"}}]
    plan = placement.recovery_plan(hosts, guests, "hv1", specs, headroom_mib=0,
                                   rules=[{"name": "db-apart", "kind": "apart", "tags": {"role": "db"}}])
    assert [(m["guest"], m["to"]) for m in plan["moves"]] == [("db1", "hv3")]


def test_rebalance_repairs_a_broken_strict_rule_first():
    hosts = [host("hv1", capacity=8192), host("hv2", capacity=8192)]
    guests = [guest("db1", "hv1"), guest("db2", "hv1"), guest("web", "hv2")]
    plan = balance.rebalance_plan(hosts, guests, tolerance=0.9, headroom_mib=0,
                                  rules=[{"name": "db-apart", "kind": "apart", "guests": ["db1", "db2"]}])
    assert plan["moves"][0]["repairs"] == ["db-apart"] and plan["moves"][0]["to"] == "hv2"
    assert plan["violations"] == []


def test_cooldown_pinning_and_a_move_in_flight_hold_a_rebalance():
    hosts = [host("hv1", capacity=8192), host("hv2", capacity=8192)]
    guests = [guest("a", "hv1", 2048, moved_at=1000), guest("b", "hv1", 2048)]
    plan = balance.rebalance_plan(hosts, guests, headroom_mib=0, cooldown_s=600, now=1300)
    assert [m["guest"] for m in plan["moves"]] == ["b"]
    assert {s["guest"]: s["code"] for s in plan["stays"]} == {"a": "cooldown"}
    plan = balance.rebalance_plan(hosts, guests, headroom_mib=0, cooldown_s=600, now=1700)
    assert len(plan["moves"]) == 1  # the cooldown is over: either may go
    busy = [host("hv1", capacity=8192), host("hv2", capacity=8192, jobs=["x"])]
    plan = balance.rebalance_plan(busy, guests, headroom_mib=0)
    assert plan["moves"] == [] and plan["waiting"]["code"] == "move_in_flight"
    assert placement.plan_lines(plan)[0] == "nothing is planned: a job is in flight on hv2 (x): nothing is planned while a move runs"


def test_measured_load_balances_cpu_and_holds_until_the_imbalance_persists():
    hosts = [host("hv1", capacity=8192, cpus=4), host("hv2", capacity=8192, cpus=4)]
    # equal memory everywhere; hv1's two guests burn a CPU each, hv2's are idle
    guests = [guest("busy1", "hv1", 1024, cpu=[1.0] * 5), guest("busy2", "hv1", 1024, cpu=[1.0] * 5),
              guest("idle1", "hv2", 1024, cpu=[0.0] * 5), guest("idle2", "hv2", 1024, cpu=[0.0] * 5)]
    allocated = balance.rebalance_plan(hosts, guests, headroom_mib=0)
    assert allocated["moves"] == [] and allocated["before"]["imbalance"] == 0.0
    used = balance.rebalance_plan(hosts, guests, headroom_mib=0, measure="used", hold=3, min_improvement=0.1,
                                  max_moves=1)
    # hv1: memory 25 %, CPU 50 % (load 0.375); hv2: 25 %, 0 % (0.125): a coefficient of variation of 0.5
    assert used["samples"] == [0.5] * 5 and used["moves"][0]["guest"].startswith("busy")
    assert used["moves"][0]["imbalance_before"] == 0.5 and used["moves"][0]["imbalance_after"] == 0.25
    # a spike in the last sample only: held
    spiky = [guest("busy1", "hv1", 1024, cpu=[0, 0, 0, 0, 2.0]), guest("idle1", "hv2", 1024, cpu=[0.0] * 5)]
    held = balance.rebalance_plan(hosts, spiky, headroom_mib=0, measure="used", hold=3)
    assert held["moves"] == [] and held["waiting"]["code"] == "holding"
    assert "above 0.100 in 1 of the last 3 samples" in held["waiting"]["reason"]


# -- consolidation ----------------------------------------------------------------------------------------------

def test_consolidation_packs_keeps_a_spare_and_powers_off_the_rest():
    hosts = [host("hv%d" % i, capacity=1024, free=16384) for i in (1, 2, 3)]
    guests = [guest("g1", "hv1", 128), guest("g2", "hv2", 128), guest("g3", "hv3", 96)]
    plan = consolidate.consolidation_plan(hosts, guests, reserve=1, headroom_mib=0, power=["hv1", "hv2", "hv3"])
    # hv3 (the least loaded) and hv2 are emptied onto hv1, the most loaded; hv2 is the spare; hv3 powers off
    assert plan["mode"] == "consolidate"
    assert sorted((m["guest"], m["to"]) for m in plan["moves"]) == [("g2", "hv1"), ("g3", "hv1")]
    assert plan["reserve"] == ["hv2"] and [p["host"] for p in plan["power_off"]] == ["hv3"]
    assert plan["pressure"]["hv1"]["after"] == 0.3438
    assert any(line.startswith("hv3 powers off: empty after the moves; 1 spare(s) stay up (hv2)") for line in placement.plan_lines(plan))
    # the same plan with hv3 powered off, the guests where the plan put them: nothing more to do
    after = apply(guests, plan["moves"])
    off = [dict(h, reachable=False) if h["name"] == "hv3" else h for h in hosts]
    again = consolidate.consolidation_plan(off, after, reserve=1, headroom_mib=0, power=["hv1", "hv2", "hv3"])
    assert again["mode"] == "steady" and again["moves"] == [] and again["power_off"] == []
    # no power action for hv3: nothing is moved for a host that would stay up anyway
    plan = consolidate.consolidation_plan(hosts, guests, reserve=1, headroom_mib=0, power=[])
    assert plan["moves"] == [] and plan["mode"] == "steady"


def test_rising_demand_wakes_standby_hosts_until_the_middle_of_the_band():
    hosts = [host("hv1", capacity=1024, free=16384), host("hv2", capacity=1024, free=16384),
             host("hv3", capacity=1024, reachable=False)]
    guests = [guest("a", "hv1", 900), guest("b", "hv2", 800)]
    plan = consolidate.consolidation_plan(hosts, guests, reserve=0, headroom_mib=0, power=["hv3"])
    assert plan["mode"] == "wake" and [p["host"] for p in plan["power_on"]] == ["hv3"]
    assert plan["demand_before"] == 0.8301 and plan["demand_after"] == 0.5534
    assert "demand 83% of the hosts in service is above the high watermark 80%; 55% with it" in plan["power_on"][0]["reason"]
    # a woken host that answers but is still cordoned for standby is put back in service, not powered on again
    woke = hosts[:2] + [host("hv3", capacity=1024, cordoned=True, reason=consolidate.STANDBY_REASON)]
    plan = consolidate.consolidation_plan(woke, guests, reserve=0, headroom_mib=0, power=["hv3"])
    assert [p["host"] for p in plan["uncordon"]] == ["hv3"] and plan["power_on"] == []


def test_consolidation_honours_rules_and_pins():
    hosts = [host("hv%d" % i, capacity=4096, free=16384) for i in (1, 2, 3)]
    guests = [guest("db1", "hv1", 256), guest("db2", "hv2", 256), guest("web", "hv3", 128)]
    rules = [{"name": "db-apart", "kind": "apart", "guests": ["db1", "db2"]}]
    plan = consolidate.consolidation_plan(hosts, guests, reserve=0, headroom_mib=0, rules=rules,
                                          power=["hv1", "hv2", "hv3"])
    assert not consolidate_violations(plan, guests, rules)
    assert {m["guest"] for m in plan["moves"]} == {"web"}
    assert [s["code"] for s in plan["stays"] if s["code"] != "not_moved"] == ["rule"]
    assert {s["guest"] for s in plan["stays"]} == {"db1", "db2"}  # every guest that does not move is named
    plan = consolidate.consolidation_plan(hosts, guests, reserve=0, headroom_mib=0, pinned=["web"],
                                          power=["hv1", "hv2", "hv3"])
    assert "web" not in {m["guest"] for m in plan["moves"]} and plan["stays"][0]["code"] == "given"


def consolidate_violations(plan, guests, rules):
    after = apply(guests, plan["moves"])
    checked = rules_of.Rules(rules_of.normalize(rules), after)
    return [v for v in checked.violations({g["name"]: g["host"] for g in after if g["running"]}) if v["strict"]]


@pytest.mark.parametrize("call, option", [
    (lambda: consolidate.consolidation_plan([host("hv1")], [], reserve=-1), "reserve"),
    (lambda: consolidate.consolidation_plan([host("hv1")], [], low=0.9, high=0.8), "low"),
    (lambda: consolidate.consolidation_plan([host("hv1")], [], high=1.5), "high"),
    (lambda: consolidate.consolidation_plan([host("hv1")], [], measure="peak"), "measure"),
    (lambda: balance.rebalance_plan([host("hv1")], [], hold=0), "hold"),
    (lambda: balance.rebalance_plan([host("hv1")], [], cooldown_s=-5), "cooldown_s"),
])
def test_bad_policy_input_is_named(call, option):
    with pytest.raises(SpecError) as refused:
        call()
    assert refused.value.option == option


# -- properties -------------------------------------------------------------------------------------------------

HOSTS = 4
layouts = st.lists(st.tuples(st.integers(0, HOSTS - 1), st.sampled_from([128, 256, 512, 1024]), st.booleans(),
                             st.sampled_from(["db", "web", "cache"])), min_size=1, max_size=10)
rule_sets = st.lists(st.sampled_from([
    {"name": "db-apart", "kind": "apart", "tags": {"role": "db"}},
    {"name": "cache-web", "kind": "together", "tags": {"role": "cache"}},
    {"name": "web-not-0", "kind": "off_hosts", "tags": {"role": "web"}, "hosts": ["hv0"], "strict": True},
    {"name": "db-on-12", "kind": "on_hosts", "tags": {"role": "db"}, "hosts": ["hv1", "hv2"]},
    {"name": "web-soft-apart", "kind": "apart", "tags": {"role": "web"}, "strict": False},
]), unique_by=lambda r: r["name"], max_size=3)


def fleet(layout, capacity):
    hosts = [host("hv%d" % i, capacity=capacity[i], free=capacity[i]) for i in range(HOSTS)]
    guests = [guest("g%d" % n, "hv%d" % on, memory, running=running, tags={"role": role})
              for n, (on, memory, running, role) in enumerate(layout)]
    for h in hosts:  # free memory: its capacity less what runs there
        h["free_mib"] = h["capacity_mib"] - placement.used_by(guests, h["name"])
    return hosts, guests


def strict_broken(rules, guests):
    checked = rules_of.Rules(rules_of.normalize(rules), guests)
    return [v for v in checked.violations({g["name"]: g["host"] for g in guests if g["running"]}) if v["strict"]]


def feasible(rules, hosts, guests):
    checked = rules_of.Rules(rules_of.normalize(rules), guests)
    return not rules_of.feasibility(checked, guests, [h["name"] for h in hosts])


def within_room(hosts, before, after, headroom):
    """No host took a guest that leaves it with less than ``headroom`` free or over its capacity."""
    for h in hosts:
        taken = placement.used_by(after, h["name"]) - placement.used_by(before, h["name"])
        if taken > 0 and (h["free_mib"] - taken < headroom
                          or placement.used_by(after, h["name"]) > h["capacity_mib"]):
            return False
    return True


@settings(max_examples=200, deadline=None)
@given(layouts, st.lists(st.sampled_from([1024, 2048, 4096]), min_size=HOSTS, max_size=HOSTS), rule_sets,
       st.integers(0, 256))
def test_an_evacuation_never_breaks_a_strict_rule_nor_overcommits(layout, capacity, rules, headroom):
    hosts, guests = fleet(layout, capacity)
    assume(feasible(rules, hosts, guests) and not strict_broken(rules, guests))
    plan = placement.evacuation_plan(hosts, guests, "hv0", headroom_mib=headroom, rules=rules)
    after = apply(guests, plan["moves"])
    assert not strict_broken(rules, [g for g in after if g["host"] != "hv0"])
    assert within_room(hosts, guests, after, headroom)
    leaving = {g["name"] for g in guests if g["host"] == "hv0"}
    assert {m["guest"] for m in plan["moves"]} | {s["guest"] for s in plan["stays"]} == leaving


@settings(max_examples=150, deadline=None)
@given(layouts, st.lists(st.sampled_from([2048, 4096]), min_size=HOSTS, max_size=HOSTS), rule_sets,
       st.integers(0, 2000), st.integers(0, 1))
def test_rebalance_keeps_rules_room_and_cooldowns_and_a_second_plan_is_empty(layout, capacity, rules, now, measured):
    hosts, guests = fleet(layout, capacity)
    guests = [dict(g, moved_at=1000 if n % 3 == 0 else None) for n, g in enumerate(guests)]
    if measured:
        guests = [dict(g, cpu_samples=[0.5 * (n % 3)] * 3, memory_used_samples_mib=[g["memory_mib"] // 2] * 3)
                  for n, g in enumerate(guests)]
    assume(feasible(rules, hosts, guests) and not strict_broken(rules, guests))
    measure = "used" if measured else "allocated"
    plan = balance.rebalance_plan(hosts, guests, tolerance=0.05, min_gain=0.01, headroom_mib=0, max_moves=20,
                                  rules=rules, cooldown_s=600, now=1000 + now, measure=measure)
    after = apply(guests, plan["moves"])
    assert not strict_broken(rules, after)
    assert within_room(hosts, guests, after, 0)
    if now < 600:
        assert not {m["guest"] for m in plan["moves"]} & {g["name"] for g in guests if g["moved_at"]}
    assert len({m["guest"] for m in plan["moves"]}) == len(plan["moves"])  # never back and forth in one plan
    freed = [dict(h, free_mib=h["capacity_mib"] - placement.used_by(after, h["name"])) for h in hosts]
    again = balance.rebalance_plan(freed, after, tolerance=0.05, min_gain=0.01, headroom_mib=0, max_moves=20,
                                   rules=rules, measure=measure)
    if len(plan["steps"]) < 20 and now >= 600:
        assert again["moves"] == [], (placement.plan_lines(plan), placement.plan_lines(again))


@settings(max_examples=200, deadline=None)
@given(layouts, st.lists(st.sampled_from([1024, 2048, 4096]), min_size=HOSTS, max_size=HOSTS), rule_sets,
       st.integers(0, 2), st.sampled_from([(0.2, 0.8), (0.3, 0.6), (0.5, 0.9)]),
       st.lists(st.booleans(), min_size=HOSTS, max_size=HOSTS), st.integers(0, 1))
# Found by this property: a host without a power action was emptied onto one with it, which the next plan emptied
# again (nothing was powered off for the first moves).
@example(layout=[(0, 128, True, "db"), (1, 128, True, "db"), (2, 128, True, "db"), (3, 1024, True, "db")],
         capacity=[1024, 1024, 1024, 1024], rules=[], reserve=0, band=(0.5, 0.9), powered=[True, True, False, False],
         measured=0)
def test_consolidation_keeps_rules_reserve_and_watermark_and_is_stable(
        layout, capacity, rules, reserve, band, powered, measured):
    hosts, guests = fleet(layout, capacity)
    measure = "used" if measured else "allocated"
    if measured:  # each guest uses a steady share of a CPU (hosts have 8) and half its memory
        guests = [dict(g, cpu_samples=[0.5 * (n % 4)] * 3, memory_used_samples_mib=[g["memory_mib"] // 2] * 3)
                  for n, g in enumerate(guests)]
    assume(feasible(rules, hosts, guests) and not strict_broken(rules, guests))
    low, high = band
    power = ["hv%d" % i for i in range(HOSTS) if powered[i]]
    plan = consolidate.consolidation_plan(hosts, guests, reserve=reserve, headroom_mib=0, low=low, high=high,
                                          rules=rules, power=power, measure=measure)
    after = apply(guests, plan["moves"])
    assert not strict_broken(rules, after)
    assert within_room(hosts, guests, after, 0)
    off = {p["host"] for p in plan["power_off"]}
    assert off <= set(power)
    for name in off:
        assert not any(g["host"] == name and g["running"] for g in after)  # only empty hosts power off
    if off:
        empty_up = [h for h in hosts if h["name"] not in off
                    and not any(g["host"] == h["name"] and g["running"] for g in after)]
        assert len(empty_up) >= reserve
    for h in hosts:
        took = placement.used_by(after, h["name"]) > placement.used_by(guests, h["name"])
        assert not took or consolidate.pressure(h, after, measure) <= high + 1e-9
    # the result, with the powered-off hosts down: nothing more to do
    down = [dict(h, reachable=False, free_mib=0) if h["name"] in off else
            dict(h, free_mib=h["capacity_mib"] - placement.used_by(after, h["name"])) for h in hosts]
    again = consolidate.consolidation_plan(down, after, reserve=reserve, headroom_mib=0, low=low, high=high,
                                           rules=rules, power=power, measure=measure)
    if plan["mode"] != "wake":
        assert again["moves"] == [] and again["power_off"] == [] and again["mode"] == "steady", (placement.plan_lines(plan),
                                                                                                 placement.plan_lines(again))


# -- what host_info's samples become ----------------------------------------------------------------------------

def test_samples_become_per_interval_use_and_the_view_carries_them():
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.load import load_series
    cpu = {"kernel": 0, "user": 0, "idle": 0, "iowait": 0}
    readings = [
        {"t": 0.0, "host_cpu": dict(cpu), "host_memory": {"total": 4 << 20, "free": 2 << 20, "buffers": 0, "cached": 0},
         "guests": {"busy": {"cpu_ns": 0, "rss_kib": 200 << 10}, "gone": {"cpu_ns": 0, "rss_kib": 1}}},
        {"t": 2.0, "host_cpu": dict(cpu, user=3 * 10 ** 9, idle=10 ** 9), "host_memory": {"total": 4 << 20, "free": 1 << 20},
         "guests": {"busy": {"cpu_ns": 2 * 10 ** 9, "rss_kib": 210 << 10}, "new": {"cpu_ns": 5, "rss_kib": 1}}},
        {"t": 4.0, "host_cpu": dict(cpu, user=4 * 10 ** 9, idle=4 * 10 ** 9), "host_memory": {},
         "guests": {"busy": {"cpu_ns": 3 * 10 ** 9, "rss_kib": 220 << 10}, "new": {"cpu_ns": 10 ** 9 + 5, "rss_kib": 3 << 10}}},
    ]
    series = load_series(readings)
    assert series["samples"] == 2 and series["interval_s"] == 2.0
    assert series["host"] == {"cpu_use": [0.75, 0.25], "memory_used_mib": [3072, None]}
    # one CPU busy, then half a CPU; a guest that started during the window has the samples it ran for
    assert series["guests"] == {"busy": {"cpu": [1.0, 0.5], "memory_used_mib": [210, 220]},
                                "new": {"cpu": [0.5], "memory_used_mib": [3]}}
    assert load_series(readings[:1])["samples"] == 0
    view = placement.fleet_view(
        [{"item": {"item": "hv1", "ansible_job_id": "1"}, "uuid": "u1", "uri": "qemu+tcp://hv1/system",
          "memory": {"total_mib": 4096, "free_mib": 2048}, "cpu": {"count": 2}, "load": series}],
        [{"item": "hv1", "guests": [{"name": "busy", "active": True, "spec": {"memory": "256MiB"}}]}])
    busy = view["guests"][0]
    assert view["hosts"][0]["name"] == "hv1" and busy["cpu_samples"] == [1.0, 0.5]
    assert busy["memory_used_samples_mib"] == [210, 220]
    assert balance.measured_load(view["hosts"][0], view["guests"]) == {
        "memory_use": 215 / 4096.0, "cpu_use": 0.375, "load": (215 / 4096.0 + 0.375) / 2}


def test_measured_consolidation_holds_through_the_window_and_says_what_it_releases():
    hosts = [host("hv1", capacity=1024, free=16384, cpus=2), host("hv2", capacity=1024, free=16384, cpus=2),
             host("hv3", capacity=1024, reachable=False, cpus=2)]
    # the demand is 85 % over the window, but its first sample was 62.5 %: not above 80 % through the window
    spike = [guest("a", "hv1", 256, cpu=[0.2, 2.0, 2.0]), guest("b", "hv2", 256, cpu=[2.0, 2.0, 2.0])]
    plan = consolidate.consolidation_plan(hosts, spike, reserve=0, headroom_mib=0, measure="used", power=["hv3"])
    assert plan["demand_before"] == 0.85 and plan["demand_samples"] == [0.625, 1.0, 1.0]
    assert plan["mode"] == "steady" and plan["waiting"]["code"] == "holding" and plan["power_on"] == []
    steady = [guest("a", "hv1", 256, cpu=[1.9, 1.9, 2.0]), guest("b", "hv2", 256, cpu=[1.9, 1.9, 1.9])]
    plan = consolidate.consolidation_plan(hosts, steady, reserve=0, headroom_mib=0, measure="used", power=["hv3"])
    assert plan["mode"] == "wake" and [p["host"] for p in plan["power_on"]] == ["hv3"]
    # a host under the low watermark on average but not through the window is not emptied
    up = [host("hv1", capacity=1024, free=16384, cpus=4), host("hv2", capacity=1024, free=16384, cpus=4)]
    once = [guest("a", "hv1", 64, cpu=[0.0, 0.0, 2.0]), guest("b", "hv2", 256, cpu=[1.0, 1.0, 1.0])]
    plan = consolidate.consolidation_plan(up, once, reserve=0, headroom_mib=0, measure="used", power=["hv1", "hv2"])
    assert plan["moves"] == [] and plan["mode"] == "steady"
    quiet = [guest("a", "hv1", 64, cpu=[0.0, 0.0, 0.1]), guest("b", "hv2", 256, cpu=[1.0, 1.0, 1.0])]
    plan = consolidate.consolidation_plan(up, quiet, reserve=0, headroom_mib=0, measure="used", power=["hv1", "hv2"])
    assert [(m["guest"], m["to"]) for m in plan["moves"]] == [("a", "hv2")]
    assert [p["host"] for p in plan["power_off"]] == ["hv1"] and plan["released"] == {"hosts": 1, "of": 2, "share": 0.5}
    assert "hosts in standby after the plan: 1 of 2 (50% released)" in placement.plan_lines(plan)
