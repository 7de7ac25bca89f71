"""One copy of every guest: the Git description and the cluster's moves composed (_fleet/cluster.py), pure.

Each scenario is one the issue found broken on three hypervisors: a guest moved by rebalance, a host put back in
service without a restore, a host that comes back after its guests were recovered elsewhere; and what a cluster
must refuse (a guest listed twice, a guest running twice, copies that cannot be told apart) or hold back (a
hypervisor that does not answer).
"""

from __future__ import annotations

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.cluster import assign, describe, locate
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError

HOSTS = {name: "5ca1ab1e-0000-4000-8000-0000000000%02d" % i for i, name in enumerate(("hv1", "hv2", "hv3"), 1)}


def uri(name):
    return "qemu+tcp://%s/system" % name


def view(guests, down=()):
    return {"hypervisors": [{"name": n, "uri": uri(n), "reachable": n not in down, "host_uuid": u, "cordoned": False}
                            for n, u in HOSTS.items()],
            "guests": guests}


def copy(name, on, active=False, uuid=None, origin=None, managed=True):
    return {"name": name, "uuid": uuid or "u-" + name, "hypervisor": on, "active": active, "persistent": True,
            "autostart": False, "managed": managed, "origin": origin}


def moved_from(home, by="rebalance", recovered=False):
    origin = {"uuid": None if recovered else HOSTS[home], "uri": uri(home), "host": home,
              "since": "2026-12-02T10:00:00Z"}
    if recovered:
        origin["recovered"] = "true"
    else:
        origin["by"] = by
    return origin


LISTS = (("hv1", [{"name": "web1", "state": "running"}, {"name": "db1"}]),
         ("hv2", [{"name": "web2", "state": "running"}]),
         ("hv3", []))


def parts(guests, down=(), lists=LISTS):
    description = describe(lists)
    return {hv: assign(view(guests, down), description, hv) for hv in HOSTS}


def names(part):
    return [g["name"] for g in part["guests"]]


def everything_home():
    return [copy("web1", "hv1", True), copy("db1", "hv1"), copy("web2", "hv2", True)]


def test_at_home_each_converges_its_own():
    p = parts(everything_home())
    assert names(p["hv1"]) == ["web1", "db1"] and names(p["hv2"]) == ["web2"] and names(p["hv3"]) == []
    assert all(not p[hv]["cluster"][key] for hv in p for key in ("retire", "hold", "conflicts"))
    assert {w["code"] for w in p["hv1"]["cluster"]["placement"]} == {"at_home"}


def test_a_guest_moved_by_rebalance_is_converged_where_it_runs_and_never_created_at_home():
    guests = [copy("web1", "hv2", True, origin=moved_from("hv1")), copy("db1", "hv1"), copy("web2", "hv2", True)]
    p = parts(guests)
    assert "web1" not in names(p["hv1"])
    assert names(p["hv2"]) == ["web1", "web2"]
    where = [w for w in p["hv2"]["cluster"]["placement"] if w["name"] == "web1"][0]
    assert where["home"] == "hv1" and where["code"] == "moved"
    assert where["why"] == "moved from hv1 since 2026-12-02T10:00:00Z by rebalance"
    # prune on hv2 keeps it: the description declares it
    assert {"name": "web1", "uuid": None} in p["hv2"]["cluster"]["declared"]


def test_a_guest_moved_without_a_record_is_found_by_name_and_marker():
    p = parts([copy("web1", "hv3", True), copy("db1", "hv1"), copy("web2", "hv2", True)])
    assert "web1" in names(p["hv3"]) and "web1" not in names(p["hv1"])
    assert [w["why"] for w in p["hv3"]["cluster"]["placement"]] == ["moved without a record of its origin"]


def test_an_unmarked_guest_of_the_same_name_elsewhere_is_not_the_declared_one():
    p = parts([copy("web1", "hv3", True, managed=False), copy("db1", "hv1"), copy("web2", "hv2", True)])
    assert "web1" in names(p["hv1"]) and "web1" not in names(p["hv3"])


def test_a_host_back_from_the_dead_retires_its_stale_copy_of_a_recovered_guest():
    guests = [copy("web2", "hv1", True, uuid="u2", origin=moved_from("hv2", recovered=True)),
              copy("web2", "hv2", False, uuid="u2"), copy("web1", "hv1", True), copy("db1", "hv1")]
    p = parts(guests)
    assert "web2" in names(p["hv1"]) and "web2" not in names(p["hv2"])
    assert p["hv2"]["cluster"]["retire"] == [{"name": "web2", "uuid": "u2", "code": "stale_copy",
                                              "reason": "a stale copy of web2: the guest is on hv1 (running)"}]
    assert [w["why"] for w in p["hv1"]["cluster"]["placement"] if w["name"] == "web2"] == [
        "recovered from hv2 since 2026-12-02T10:00:00Z"]


def test_two_shut_off_copies_the_one_that_recorded_leaving_the_other_is_current():
    guests = [copy("web2", "hv1", uuid="u2", origin=moved_from("hv2", recovered=True)),
              copy("web2", "hv2", uuid="u2"), copy("web1", "hv1", True), copy("db1", "hv1")]
    p = parts(guests)
    assert "web2" in names(p["hv1"]) and [r["name"] for r in p["hv2"]["cluster"]["retire"]] == ["web2"]


def test_two_shut_off_copies_that_cannot_be_told_apart_are_refused_and_left_alone():
    guests = [copy("web2", "hv1", uuid="u2"), copy("web2", "hv2", uuid="u2"), copy("web1", "hv1", True),
              copy("db1", "hv1")]
    p = parts(guests)
    for hv in ("hv1", "hv2"):
        assert "web2" not in names(p[hv])
        assert [(c["name"], c["code"]) for c in p[hv]["cluster"]["conflicts"]] == [("web2", "defined_twice")]
        assert not p[hv]["cluster"]["retire"]


def test_a_guest_running_twice_is_refused_everywhere_and_nothing_is_retired():
    guests = [copy("web1", "hv1", True, uuid="u1"), copy("web1", "hv3", True, uuid="u1"), copy("db1", "hv1"),
              copy("web2", "hv2", True)]
    p = parts(guests)
    assert [c["code"] for c in p["hv1"]["cluster"]["conflicts"]] == ["runs_twice"]
    assert [c["code"] for c in p["hv3"]["cluster"]["conflicts"]] == ["runs_twice"]
    assert "web1" not in names(p["hv1"]) + names(p["hv3"])
    assert not any(p[hv]["cluster"]["retire"] for hv in p)


def test_a_silent_hypervisor_holds_back_every_create_and_start():
    # web2 is nowhere reachable (its home hv2 is silent); db1 is shut off on hv1, web1 declared running but off
    guests = [copy("web1", "hv1", False), copy("db1", "hv1")]
    p = parts(guests, down=("hv2",))
    assert names(p["hv2"]) == [] and "web2" not in names(p["hv1"]) + names(p["hv3"])
    web1 = [g for g in p["hv1"]["guests"] if g["name"] == "web1"][0]
    assert web1["state"] == "present"  # converged, not started
    hold = p["hv1"]["cluster"]["hold"]
    assert [(h["name"], h["code"]) for h in hold] == [("web1", "location_unknown"), ("web2", "location_unknown")]
    assert "not started: hv2 did not answer" in hold[0]["reason"] and "not created: hv2 did not" in hold[1]["reason"]


def test_a_silent_hypervisor_does_not_hold_back_a_running_guest():
    p = parts(everything_home(), down=("hv3",))
    assert names(p["hv1"]) == ["web1", "db1"]
    assert [g.get("state") for g in p["hv1"]["guests"]] == ["running", None]
    assert not p["hv1"]["cluster"]["hold"]


def test_a_guest_nowhere_is_created_at_home_when_every_hypervisor_answers():
    p = parts([copy("web2", "hv2", True)])
    assert names(p["hv1"]) == ["web1", "db1"]


def test_a_guest_renamed_in_the_description_is_found_by_its_uuid():
    lists = [("hv1", [{"name": "web-new", "uuid": "4DEA22B31D52D8F32516782E98AB3FA0", "state": "running"}]),
             ("hv2", []), ("hv3", [])]
    p = parts([copy("web-old", "hv2", True, uuid="4dea22b3-1d52-d8f3-2516-782e98ab3fa0")], lists=lists)
    assert names(p["hv2"]) == ["web-new"] and names(p["hv1"]) == []
    assert p["hv2"]["cluster"]["placement"][0]["was_named"] == "web-old"
    assert {"name": "web-new", "uuid": "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"} in p["hv2"]["cluster"]["declared"]


def test_a_declared_absent_guest_is_removed_where_it_is():
    lists = [("hv1", [{"name": "old", "state": "absent"}]), ("hv2", []), ("hv3", [])]
    p = parts([copy("old", "hv3")], lists=lists)
    assert names(p["hv3"]) == ["old"] and names(p["hv1"]) == []


@pytest.mark.parametrize("lists, words", [
    ([("hv1", [{"name": "web1"}]), ("hv2", [{"name": "web1"}])],
     "guest web1 is listed by two hypervisors: hv1 guests_list[0] and hv2 guests_list[0]"),
    ([("hv1", [{"name": "a", "uuid": "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"}]), ("hv2", [{"name": "b", "uuid": "4DEA22B3-1D52-D8F3-2516-782E98AB3FA0"}])],
     "UUID 4dea22b3-1d52-d8f3-2516-782e98ab3fa0 is declared for two guests: a and b"),
    ([("hv1", [{"name": "a", "uuid": "nope"}])], "hv1 guests_list[0] (a): option uuid: got 'nope'"),
])
def test_two_hypervisors_declaring_one_guest_is_an_error_naming_both(lists, words):
    with pytest.raises(UserError) as err:
        describe(lists)
    assert words in str(err.value) and err.value.code == "invalid_option"


def test_locate_says_where_and_why():
    place = locate(view([copy("web1", "hv2", True, origin=moved_from("hv1", by="evacuate"))]),
                   describe(LISTS)[0])
    assert place["at"] == "hv2" and place["moved"] == "moved from hv1 since 2026-12-02T10:00:00Z by evacuate"


def test_a_guest_held_back_with_its_home_silent_is_reported_by_the_first_hypervisor_that_answers():
    p = parts([copy("web1", "hv1", True), copy("db1", "hv1")], down=("hv2",))
    assert [h["name"] for h in p["hv1"]["cluster"]["hold"]] == ["web2"]
    assert not p["hv3"]["cluster"]["hold"]


def test_an_unmarked_guest_of_the_same_name_at_home_is_never_retired():
    p = parts([copy("web1", "hv2", True, uuid="u1"), copy("web1", "hv1", uuid="other", managed=False),
               copy("db1", "hv1"), copy("web2", "hv2", True)])
    assert "web1" in names(p["hv2"]) and not p["hv1"]["cluster"]["retire"]
