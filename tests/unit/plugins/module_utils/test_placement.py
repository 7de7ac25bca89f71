"""Placement (module_utils/_migrate/placement.py) with plain data: evacuation, restore, rebalance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import balance, placement
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError


def host(name, free=8192, total=16384, cpus=8, cordoned=False, capacity=None, reachable=True, uuid=None):
    return {"name": name, "uri": "qemu+tcp://%s/system" % name, "uuid": uuid or "uuid-" + name, "reachable": reachable,
            "total_mib": total, "free_mib": free, "cpus": cpus, "cordoned": cordoned, "capacity_mib": capacity}


def guest(name, on, memory=1024, vcpus=1, running=True, origin=None, copy_gib=0.0):
    return {"name": name, "host": on, "memory_mib": memory, "vcpus": vcpus, "running": running, "copy_gib": copy_gib,
            "origin": origin}


def words(stays):
    """The guests a plan leaves, with the reason in words (each also carries its code: codes(stays))."""
    return [{key: value for key, value in entry.items() if key not in ("code", "problem_kinds")} for entry in stays]


def codes(stays):
    return {entry["guest"]: entry["code"] for entry in stays}


def test_evacuation_spreads_largest_first_and_keeps_headroom():
    hosts = [host("hv1"), host("hv2", free=5000), host("hv3", free=3000)]
    guests = [guest("a", "hv1", 2048), guest("b", "hv1", 2048), guest("c", "hv1", 1024), guest("d", "hv1", 4096),
              guest("off", "hv1", 8192, running=False), guest("x", "hv2", 512)]
    plan = placement.evacuation_plan(hosts, guests, "hv1", headroom_mib=512)
    assert [(m["guest"], m["to"]) for m in plan["moves"]] == [("d", "hv2"), ("a", "hv3")]
    # after d and a: hv2 has 5000-512-4096 = 392 MiB of room, hv3 3000-512-2048 = 440: b and c fit nowhere
    stays = {s["guest"]: s["reason"] for s in plan["stays"]}
    assert stays["off"] == "shut off: stays defined on hv1"
    assert "no hypervisor has room for its 2048 MiB with 512 MiB headroom (most room: hv3, 440 MiB)" == stays["b"]
    assert "c" in stays
    assert plan["targets"] == {"hv2": 392, "hv3": 440}
    for move in plan["moves"]:
        assert move["from_uri"] == "qemu+tcp://hv1/system" and move["to_uri"] == "qemu+tcp://%s/system" % move["to"]


def test_evacuation_never_places_on_cordoned_unreachable_or_excluded_hosts():
    hosts = [host("hv1"), host("hv2", cordoned=True), host("hv3", reachable=False), host("hv4"), host("hv5")]
    guests = [guest("a", "hv1"), guest("b", "hv1")]
    plan = placement.evacuation_plan(hosts, guests, "hv1", exclude=["hv5"])
    assert {m["to"] for m in plan["moves"]} == {"hv4"}
    plan = placement.evacuation_plan(hosts, guests, "hv1", exclude=["hv4", "hv5"],
                                     stays=[{"guest": "b", "reason": "refused: local device"}])
    assert plan["moves"] == []
    assert words(plan["stays"]) == [{"guest": "b", "reason": "refused: local device"},
                                    {"guest": "a", "reason": "no hypervisor to take it (the others are cordoned, "
                                                             "unreachable or failed a migration)"}]
    assert codes(plan["stays"]) == {"b": "given", "a": "no_target"}


def test_capacity_bounds_a_host_below_its_free_memory():
    hosts = [host("hv1"), host("hv2", capacity=1536), host("hv3", capacity=4096)]
    guests = [guest("on2", "hv2", 1024), guest("a", "hv1", 1024), guest("b", "hv1", 1024), guest("c", "hv1", 1024)]
    plan = placement.evacuation_plan(hosts, guests, "hv1", headroom_mib=0)
    assert sorted(m["to"] for m in plan["moves"]) == ["hv3", "hv3", "hv3"]


def test_bad_input_names_the_option():
    with pytest.raises(UserError, match="headroom_mib"):
        placement.evacuation_plan([host("hv1")], [], "hv1", headroom_mib=-1)
    with pytest.raises(UserError, match="host.*one of the hypervisors: hv1"):
        placement.evacuation_plan([host("hv1")], [], "hv9")
    with pytest.raises(UserError, match="tolerance"):
        balance.rebalance_plan([host("hv1")], [], tolerance="x")
    with pytest.raises(UserError, match="kvmfleet_guest_memory_mib"):
        placement.host_view("hv1", {"uuid": "u"}, capacity_mib="lots")


def test_restore_brings_back_only_the_guests_of_that_home():
    hosts = [host("hv1"), host("hv2"), host("hv3")]
    home = {"uuid": "uuid-hv1", "uri": "qemu+tcp://hv1/system", "host": "hv1"}
    guests = [guest("a", "hv2", origin=home), guest("b", "hv3", origin=home), guest("c", "hv3"),
              guest("d", "hv2", origin={"uuid": "uuid-hv3", "uri": "x", "host": "hv3"})]
    plan = placement.restore_plan(hosts, guests, "hv1")
    assert [(m["guest"], m["from"], m["to"]) for m in plan["moves"]] == [("a", "hv2", "hv1"), ("b", "hv3", "hv1")]
    hosts[0]["reachable"] = False
    plan = placement.restore_plan(hosts, guests, "hv1")
    assert plan["moves"] == [] and [s["guest"] for s in plan["stays"]] == ["a", "b"]


def test_a_guest_goes_only_where_libvirt_runs_its_architecture():
    """hv2 has the most room but no aarch64 emulator (host_info's architectures): the aarch64 guest of an evacuation
    goes to hv3, which runs it, the x86 one to hv2; with no room on hv3 it stays, and the reason names hv2's lack.
    A host whose architectures were not read constrains nothing; so does every host running the architecture."""
    both, x86 = ["aarch64", "x86_64"], ["x86_64"]
    hosts = [dict(host("hv1"), architectures=both), dict(host("hv2", free=12000), architectures=x86),
             dict(host("hv3", free=4000), architectures=both)]
    guests = [dict(guest("arm", "hv1", 2048), arch="aarch64"), dict(guest("x", "hv1", 1024), arch="x86_64")]
    plan = placement.evacuation_plan(hosts, guests, "hv1", headroom_mib=512)
    assert sorted((m["guest"], m["to"]) for m in plan["moves"]) == [("arm", "hv3"), ("x", "hv2")]
    hosts[2]["free_mib"] = 1024
    plan = placement.evacuation_plan(hosts, guests, "hv1", headroom_mib=512)
    assert [(m["guest"], m["to"]) for m in plan["moves"]] == [("x", "hv2")]
    assert codes(plan["stays"]) == {"arm": "rule"}
    assert "hv2 runs no aarch64 guests" in plan["stays"][0]["reason"]
    # rebalancing never moves it to hv2 either, however empty hv2 is
    spread = [dict(guest("arm%d" % i, "hv1", 1024), arch="aarch64") for i in range(4)]
    hosts = [dict(host("hv1", capacity=8192), architectures=both), dict(host("hv2", capacity=8192), architectures=x86)]
    assert balance.rebalance_plan(hosts, spread, tolerance=0.1, min_gain=0.05, headroom_mib=0)["moves"] == []
    hosts[1]["architectures"] = None  # not read: no constraint
    assert balance.rebalance_plan(hosts, spread, tolerance=0.1, min_gain=0.05, headroom_mib=0)["moves"] != []
    assert placement.architecture_rules([dict(host("a"), architectures=both), dict(host("b"), architectures=both)],
                                        spread) == []
    # a lost hypervisor's aarch64 guest restarts only where aarch64 runs (its arch from the fleet's description)
    hosts = [dict(host("hv1", reachable=False), architectures=None), dict(host("hv2", free=12000), architectures=x86),
             dict(host("hv3", free=4000), architectures=both)]
    plan = placement.recovery_plan(hosts, [], "hv1", [{"name": "arm", "state": "running", "memory": "1GiB",
                                                       "arch": "aarch64"}])
    assert [(m["guest"], m["to"]) for m in plan["moves"]] == [("arm", "hv3")]


def test_rebalance_evens_out_and_a_second_run_moves_nothing():
    hosts = [host("hv1", capacity=4096), host("hv2", capacity=4096), host("hv3", capacity=4096)]
    guests = [guest(n, "hv1", 512) for n in "abcdef"]
    plan = balance.rebalance_plan(hosts, guests, tolerance=0.1, min_gain=0.05, headroom_mib=0)
    assert plan["before"]["memory"] == pytest.approx(1.4142, abs=1e-3)
    assert plan["balanced"] and plan["after"]["memory"] == 0.0
    assert len(plan["moves"]) == 4
    moved = guests
    for move in plan["moves"]:
        moved = [dict(g, host=move["to"]) if g["name"] == move["guest"] else g for g in moved]
    again = balance.rebalance_plan(hosts, moved, tolerance=0.1, min_gain=0.05, headroom_mib=0)
    assert again["moves"] == [] and again["balanced"]


def test_rebalance_prefers_the_move_that_copies_least():
    hosts = [host("hv1", capacity=8192), host("hv2", capacity=8192)]
    guests = [guest("big", "hv1", 2048), guest("small", "hv1", 1024), guest("small2", "hv1", 1024, copy_gib=40.0)]
    # big and small remove as much imbalance per GiB (1.0 for 2 GiB, 0.5 for 1 GiB): the larger gain wins
    assert balance.best_move(hosts, guests, headroom_mib=0, min_gain=0.05)["guest"] == "big"
    # with its 40 GiB of disks to copy, big removes far less per GiB than small
    guests[0]["copy_gib"] = 40.0
    move = balance.best_move(hosts, guests, headroom_mib=0, min_gain=0.05)
    assert move["guest"] == "small" and move["gain"] == 0.5


def test_rebalance_never_moves_onto_a_cordoned_host_nor_below_min_gain():
    hosts = [host("hv1", capacity=4096), host("hv2", capacity=4096, cordoned=True)]
    guests = [guest("a", "hv1", 1024), guest("b", "hv1", 1024)]
    assert balance.rebalance_plan(hosts, guests, headroom_mib=0)["moves"] == []
    hosts[1]["cordoned"] = False
    assert len(balance.rebalance_plan(hosts, guests, headroom_mib=0)["moves"]) == 1
    assert balance.rebalance_plan(hosts, guests, headroom_mib=0, min_gain=1.5)["moves"] == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([256, 512, 1024, 2048]), st.booleans()), max_size=12),
       st.lists(st.integers(0, 8192), min_size=4, max_size=4), st.integers(0, 1024))
def test_evacuation_never_overcommits_a_target(layout, free, headroom):
    hosts = [host("hv%d" % i, free=free[i]) for i in range(4)]
    guests = [guest("g%d" % n, "hv%d" % on, memory, running=running) for n, (on, memory, running) in enumerate(layout)]
    plan = placement.evacuation_plan(hosts, guests, "hv0", headroom_mib=headroom)
    for target in ("hv1", "hv2", "hv3"):
        taken = sum(m["memory_mib"] for m in plan["moves"] if m["to"] == target)
        assert taken == 0 or free[int(target[2:])] - taken >= headroom
    leaving = {g["name"] for g in guests if g["host"] == "hv0"}
    assert {m["guest"] for m in plan["moves"]} | {s["guest"] for s in plan["stays"]} == leaving
    assert not {m["guest"] for m in plan["moves"]} & {s["guest"] for s in plan["stays"]}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([256, 512, 1024])), min_size=1, max_size=10))
def test_rebalance_lowers_imbalance_with_every_move(layout):
    hosts = [host("hv%d" % i, capacity=8192, free=16384) for i in range(3)]
    guests = [guest("g%d" % n, "hv%d" % on, memory) for n, (on, memory) in enumerate(layout)]
    plan = balance.rebalance_plan(hosts, guests, tolerance=0.0, min_gain=0.01, headroom_mib=0, max_moves=20)
    current, level = guests, plan["before"]["memory"]
    for move in plan["steps"]:
        current = [dict(g, host=move["to"]) if g["name"] == move["guest"] else g for g in current]
        now = balance.balance(hosts, current)["memory"]
        assert now <= level - 0.01 + 1e-9
        level = now


def recorded():
    """What host_info and domain_info returned on the test bed, registered as read_fleet.yml registers them
    (tests/testbed/record_placement.py): hv1 runs p-web (16 MiB of data in a pool of its own) and p-db and has p-off
    shut off, hv2 runs p-cache, hv3 is cordoned and runs p-away, evacuated there from hv2."""
    return json.loads((Path(__file__).parent / "fixtures" / "placement" / "fleet.json").read_text())


def test_view_from_registered_results():
    fleet = recorded()
    view = placement.fleet_view(fleet["hosts"], fleet["guests"], {"hv1": 64})
    hosts = {h["name"]: h for h in view["hosts"]}
    assert hosts["hv3"]["cordoned"] and hosts["hv1"]["capacity_mib"] == 64 and hosts["hv2"]["capacity_mib"] is None
    assert all(h["reachable"] and h["total_mib"] > h["free_mib"] > 0 and h["cpus"] >= 1 for h in view["hosts"])
    guests = {g["name"]: g for g in view["guests"]}
    assert guests["p-web"] == {"name": "p-web", "host": "hv1", "memory_mib": 160, "vcpus": 2, "running": True,
                               "copy_gib": 0.0, "origin": None, "tags": {"recorded": "placement"}, "moved_at": None,
                               "arch": "x86_64"}
    assert not guests["p-off"]["running"] and guests["p-off"]["memory_mib"] == 256
    assert guests["p-away"]["host"] == "hv3" and guests["p-away"]["origin"]["host"] == "hv2"
    # hv2 does not answer: unreachable, its guests unknown
    lost = [dict(r, failed=True) if r["item"] == "hv2" else r for r in fleet["hosts"]]
    view = placement.fleet_view(lost, fleet["guests"])
    assert not {h["name"]: h for h in view["hosts"]}["hv2"]["reachable"]
    assert "p-cache" not in {g["name"] for g in view["guests"]}
    # hv2 answers host_info but its guests are not read (read_fleet.yml's failed_when: false registers failed: false
    # and no guests): unread is never empty - unreachable, and no evacuation takes it as a target
    unread = [{"item": "hv2", "failed": False, "failed_when_result": False, "msg": "Domain not found"}
              if r["item"] == "hv2" else r for r in fleet["guests"]]
    view = placement.fleet_view(fleet["hosts"], unread)
    assert not {h["name"]: h for h in view["hosts"]}["hv2"]["reachable"]
    assert "p-cache" not in {g["name"] for g in view["guests"]}
    evacuation = placement.evacuation_plan(view["hosts"], view["guests"], "hv1", headroom_mib=0)
    assert all(m["to"] != "hv2" for m in evacuation["moves"]), evacuation
    assert placement.plan_lines({"moves": [], "stays": []}) == ["nothing to move"]


def test_a_move_with_private_storage_costs_its_disks():
    """Without shared storage a move copies the space each writable disk takes, as domain_info reports it."""
    fleet = recorded()
    guests = {g["name"]: g for g in placement.fleet_view(fleet["hosts"], fleet["guests"], shared_storage=False)["guests"]}
    assert guests["p-web"]["copy_gib"] == pytest.approx(16 / 1024.0, rel=0.01)
    assert guests["p-db"]["copy_gib"] == 0.0
    # the recovered view restores p-away to hv2 (its origin, by host UUID)
    view = placement.fleet_view(fleet["hosts"], fleet["guests"])
    assert [(m["guest"], m["to"]) for m in placement.restore_plan(view["hosts"], view["guests"], "hv2")["moves"]] == [
        ("p-away", "hv2")]


def test_a_batch_outcome_tells_refused_guests_from_failed_targets():
    def started(move):  # what async_status gives back: its item is the started job, whose item is the move
        return {"item": {"ansible_job_id": "j", "item": move}}
    a = {"guest": "a", "from": "hv1", "to": "hv2"}
    b = {"guest": "b", "from": "hv1", "to": "hv3"}
    c = {"guest": "c", "from": "hv1", "to": "hv3"}
    results = [dict(started(a), changed=True, progress={"time_elapsed_ms": 1500, "downtime_ms": 40}),
               dict(started(b), failed=True, stage="preflight", problems=["network n: the destination has no network "
                                                                          "of that name"], msg="guest b cannot move"),
               dict(started(c), failed=True, stage="migration", msg="migrating guest c to hv3 failed: timeout")]
    outcome = placement.batch_outcome(results)
    assert [m["guest"] for m in outcome["moved"]] == ["a"]
    assert words(outcome["stays"]) == [{"guest": "b", "reason": "refused by the pre-flight for hv3: network n: the "
                                                                "destination has no network of that name"}]
    assert codes(outcome["stays"]) == {"b": "preflight_refused"}
    assert outcome["failed_targets"] == ["hv3"] and outcome["failures"][0]["guest"] == "c"
    # the next round places c elsewhere, b not at all
    hosts = [host("hv1"), host("hv2"), host("hv3", free=16000)]
    guests = [guest("b", "hv1"), guest("c", "hv1")]
    plan = placement.evacuation_plan(hosts, guests, "hv1", exclude=outcome["failed_targets"], stays=outcome["stays"])
    assert [(m["guest"], m["to"]) for m in plan["moves"]] == [("c", "hv2")]
    assert placement.summary_lines(dict(outcome, stays=outcome["stays"] + plan["stays"])) == [
        "moved a: hv1 -> hv2 in 1.5 s, downtime 40 ms",
        "failed c -> hv3: migrating guest c to hv3 failed: timeout",
        "stays b: refused by the pre-flight for hv3: network n: the destination has no network of that name"]
    with pytest.raises(UserError, match="results"):
        placement.batch_outcome([{"changed": True}])


def test_recovery_places_the_lost_hosts_running_guests_and_leaves_running_copies_alone():
    hosts = [host("hv1", free=4096), host("hv2", reachable=False), host("hv3", free=2048)]
    guests = [guest("r2", "hv3", 256)]  # a previous recovery restarted r2 on hv3
    specs = [{"name": "r1", "memory": "512MiB", "state": "running"}, {"name": "r2", "memory": "256MiB", "state": "running"},
             {"name": "r3", "memory": "1GiB", "state": "shutoff"}, {"name": "r4", "memory": "1GiB", "state": "running"}]
    plan = placement.recovery_plan(hosts, guests, "hv2", specs, headroom_mib=512)
    assert [(m["guest"], m["to"]) for m in plan["moves"]] == [("r4", "hv1"), ("r1", "hv1")]
    assert plan["left_alone"] == [{"guest": "r2", "host": "hv3"}]
    assert words(plan["stays"]) == [{"guest": "r3", "reason": "the fleet does not run it (state shutoff): not restarted"}]
    assert codes(plan["stays"]) == {"r3": "not_run_by_fleet"}
    assert "r2 is left alone: it runs on hv3" in placement.plan_lines(plan) and not plan["lost_reachable"]
    with pytest.raises(UserError, match="guests\\[r1\\].memory"):
        placement.recovery_plan(hosts, guests, "hv2", [{"name": "r1", "memory": "lots", "state": "running"}])
