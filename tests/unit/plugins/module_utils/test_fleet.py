"""The fleet runner against libvirt's in-process test driver (test:///default): no daemon.

Many guests in one call: every spec checked first, check mode as the plan of the real run, a second
run that changes nothing, prune limited to marked guests, one failing guest among good ones.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import uuid

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet import spec as fleet_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.apply import converge_fleet
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from testdriver import module_params

POOL = "default-pool"
SPEC = fleet_spec.argument_spec()
# A test driver of its own per test (test:///default is shared by every connection of the process, so other
# tests' guests would be there to prune): a network and a pool, nothing else. Such a driver lives in its
# connection, so these tests converge with one worker; the parallel test uses the shared test:///default.
NODE = """<node>
  <network><name>default</name><bridge name='virbr0'/><ip address='192.168.122.1' netmask='255.255.255.0'/></network>
  <pool type='dir'><name>default-pool</name><target><path>/default-pool</path></target></pool>
</node>"""


@pytest.fixture
def conn(test_host):
    return test_host(NODE)


def params(conn, guests, **extra):
    """The module's parameters as AnsibleModule hands them over (every default filled in)."""
    extra.setdefault("parallel", 1)
    return module_params(SPEC, uri=conn.getURI(), guests=guests, **extra)


def run(conn, guests, check=False, **extra):
    return converge_fleet(conn, params(conn, copy.deepcopy(guests), **extra), check)


def prefix():
    return "f%s-" % uuid.uuid4().hex[:6]


def guest(name, **extra):
    return dict({"name": name, "virt_type": "qemu", "memory": "128MiB", "tags": {"fleet": "unit"},
                 "interfaces": [{"network": "default"}]}, **extra)


def plan_of(result):
    return [(g["name"], g["changed"], g.get("created"), g["removed"], g.get("actions"), g.get("changes"))
            for g in result["guests"]], result["summary"], result["diff"]


def test_a_fleet_converges_in_one_call_and_the_plan_is_the_run(conn):
    p = prefix()
    guests = [guest(p + "a"), guest(p + "b", vcpus=2), guest(p + "c", state="running")]
    plan = run(conn, guests, check=True)
    assert [d.name() for d in conn.listAllDomains(0) if d.name().startswith(p)] == [], "check mode made guests"
    made = run(conn, guests)
    assert plan_of(plan) == plan_of(made)
    assert made["summary"] == {"created": 3, "updated": 0, "unchanged": 0, "removed": 0, "held": 0, "failed": 0, "total": 3}
    assert conn.lookupByName(p + "c").isActive()
    assert [d["before_header"] for d in made["diff"]] == ["guest %s%s (persistent config)" % (p, n) for n in "abc"]
    macs = {g["name"]: g["interfaces"][0]["mac"] for g in made["guests"]}
    assert len(set(macs.values())) == 3

    again = run(conn, guests)
    assert again["changed"] is False and again["diff"] == []
    assert again["summary"]["unchanged"] == 3
    assert {g["name"]: g["interfaces"][0]["mac"] for g in again["guests"]} == macs

    guests[1]["vcpus"] = 1  # a one-line edit changes exactly that guest
    edited = run(conn, guests)
    assert [g["name"] for g in edited["guests"] if g["changed"]] == [p + "b"]
    assert edited["summary"]["updated"] == 1


def test_a_guest_declared_absent_is_counted_and_shown_as_removed(conn):
    """state=absent is a removal in the result, the summary and the printed plan - not an update."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import plan_lines
    p = prefix()
    run(conn, [guest(p + "a"), guest(p + "b")])
    gone = [{"name": p + "a", "state": "absent"}, guest(p + "b")]
    plan = run(conn, gone, check=True)
    assert plan["summary"] == {"created": 0, "updated": 0, "unchanged": 1, "removed": 1, "held": 0, "failed": 0,
                               "total": 2}
    assert plan_lines(plan, "hv1") == ["hv1: - %sa" % p, "hv1: 0 to create, 0 to change, 1 to remove, 1 unchanged, 0 failed"]
    made = run(conn, gone)
    assert plan_of(plan) == plan_of(made)
    again = run(conn, gone)
    assert again["changed"] is False and again["summary"]["removed"] == 0 and again["summary"]["unchanged"] == 2


def test_every_spec_error_is_reported_at_once_and_nothing_changes(conn):
    p = prefix()
    guests = [guest(p + "ok"), guest(p + "bad1", memory="lots"), guest(p + "bad2", vcpus=4, max_vcpus=2),
              guest(p + "ok")]
    with pytest.raises(UserError) as info:
        run(conn, guests)
    message = str(info.value)
    assert "4 guests" not in message and "3 guests of the fleet are wrong" in message
    assert "guests[1] (%sbad1): option memory: got 'lots'" % p in message
    assert "guests[2] (%sbad2): option vcpus" % p in message
    assert "guests[3] (%sok): the guest is listed twice (also guests[0])" % p in message
    assert not [d for d in conn.listAllDomains(0) if d.name().startswith(p)]


def _colliding_names(p):
    """Two guest names whose first NICs would derive the same MAC (found by brute force)."""
    seen = {}
    for n in itertools.count():
        name = "%s%d" % (p, n)
        mac = hashlib.sha256(("%s/0" % name).encode()).hexdigest()[:6]
        if mac in seen:
            return seen[mac], name
        seen[mac] = name


def test_macs_two_listed_guests_would_share_are_refused_first(conn):
    p = prefix()
    first, second = _colliding_names(p)
    with pytest.raises(UserError, match="would have MAC 52:54:00:.* give one of them an explicit interfaces"):
        run(conn, [guest(first), guest(second)])
    explicit = [guest(p + "x", interfaces=[{"network": "default", "mac": "52:54:00:00:00:42"}]),
                guest(p + "y", interfaces=[{"network": "default", "mac": "52:54:00:00:00:42"}])]
    with pytest.raises(UserError, match="52:54:00:00:00:42"):
        run(conn, explicit)
    assert not [d for d in conn.listAllDomains(0) if d.name().startswith(p)]


def test_prune_removes_only_marked_guests_that_match_the_selector(conn):
    p = prefix()
    run(conn, [guest(p + "keep"), guest(p + "old"), guest(p + "other", tags={"fleet": "someone-else"})])
    conn.defineXML("<domain type='test'><name>%sunmarked</name><memory>131072</memory><os><type>hvm</type></os>"
                   "</domain>" % p)
    listed = [guest(p + "keep")]
    plan = run(conn, listed, check=True, prune=True, prune_selector={"fleet": "unit"})
    assert [(g["name"], g["removed"]) for g in plan["guests"]] == [(p + "keep", False), (p + "old", True)]
    made = run(conn, listed, prune=True, prune_selector={"fleet": "unit"})
    assert plan_of(plan) == plan_of(made)
    names = {d.name() for d in conn.listAllDomains(0)}
    assert p + "old" not in names and {p + "keep", p + "other", p + "unmarked"} <= names
    assert made["summary"]["removed"] == 1
    # without a selector every marked guest not listed goes; the unmarked one never does
    run(conn, listed, prune=True)
    names = {d.name() for d in conn.listAllDomains(0)}
    assert p + "other" not in names and p + "unmarked" in names


class RefusingOne:
    """A connection on which libvirt refuses to define one guest (as it would a document its driver refuses)."""

    def __init__(self, conn, name):
        self._conn, self._name = conn, name

    def __getattr__(self, attr):
        return getattr(self._conn, attr)

    def defineXMLFlags(self, xml, flags):  # noqa: N802  (libvirt's name)
        if "<name>%s</name>" % self._name in xml:
            raise libvirt.libvirtError("refused for the test")
        return self._conn.defineXMLFlags(xml, flags)


def test_a_libvirt_error_on_one_guest_does_not_stop_the_others(conn):
    p = prefix()
    guests = [guest(p + "a"), guest(p + "broken"), guest(p + "c")]
    with pytest.raises(UserError) as info:
        converge_fleet(RefusingOne(conn, p + "broken"), params(conn, copy.deepcopy(guests), parallel=1), False)
    assert str(info.value).startswith("1 of 3 guests failed: %sbroken: the change to guest %sbroken failed" % (p, p))
    assert info.value.code == "guests_failed" and info.value.result["guests"][1]["code"] == "rolled_back"
    result = info.value.result
    assert [g["error"] is None for g in result["guests"]] == [True, False, True]
    assert result["summary"]["created"] == 2 and result["summary"]["failed"] == 1
    names = {d.name() for d in conn.listAllDomains(0)}
    assert {p + "a", p + "c"} <= names and p + "broken" not in names

    with pytest.raises(UserError) as info:
        converge_fleet(RefusingOne(conn, p + "d1"), params(conn, [guest(p + "d1"), guest(p + "d2")], parallel=1,
                                                           fail_fast=True), False)
    assert "fail_fast" in info.value.result["guests"][1]["error"]
    assert p + "d2" not in {d.name() for d in conn.listAllDomains(0)}


def test_parallel_workers_converge_the_same_fleet():
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open("test:///default")  # shared by the workers' own connections
    p = prefix()
    guests = [guest("%s%02d" % (p, n), state="running" if n % 2 else "shutoff") for n in range(12)]
    made = run(conn, guests, parallel=4)
    assert made["summary"]["created"] == 12 and [g["name"] for g in made["guests"]] == [g["name"] for g in guests]
    again = run(conn, guests, parallel=4)
    assert again["summary"]["unchanged"] == 12
    macs = [g["interfaces"][0]["mac"] for g in again["guests"]]
    assert len(set(macs)) == 12
    assert sum(conn.lookupByName(g["name"]).isActive() for g in guests) == 6
    conn.close()


@pytest.mark.parametrize("nics", [
    [{"network": "default"}],
    [{"network": "default"}, {"network": "default"}, {"network": "default"}],
    [{"network": "default", "mac": "52:54:00:aa:bb:01"}, {"network": "default"}],
    [],
])
def test_the_macs_checked_across_the_fleet_are_the_macs_the_plan_gives(conn, nics):
    """listed_guest_macs (the fleet's cross-guest check) skips the whole plan: it must agree with plan_domain,
    for a new guest and for one with fewer, the same or more NICs than declared."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.plan import plan_domain
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.model import listed_guest_macs

    name = prefix() + "macs"
    for existing in (None, [{"network": "default"}, {"network": "default"}]):
        if existing is not None:
            run(conn, [guest(name, interfaces=existing)])
        host = gather_host(conn)
        raw = module_params(SPEC["guests"]["options"], guest(name, interfaces=nics))
        spec = normalize_guest(raw, host)
        expected = plan_domain(host.current_xml(name), spec, host).macs
        assert listed_guest_macs(spec, host) == expected
        assert len(expected) == len(nics)


def test_a_cordoned_host_gets_no_new_guest_and_prune_keeps_visitors(conn):
    """A guest absent from a cordoned host may run elsewhere (evacuated): the fleet creates none there, in check mode
    and for real, but still converges the guests it has; prune never removes a guest visiting from its home."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.maintenance import MaintenanceRunner
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.origin import with_origin

    def set_maintenance(conn, state, reason, check):
        return MaintenanceRunner(conn, {"state": state, "reason": reason}, check).run()

    p = prefix()
    run(conn, [guest(p + "here")])
    set_maintenance(conn, "present", "disk swap", False)
    for check in (True, False):
        with pytest.raises(UserError) as failure:
            run(conn, [guest(p + "here"), guest(p + "gone")], check=check)
        assert "1 of 2 guests failed" in str(failure.value)
        assert "guest %sgone is not created: this host is in maintenance (cordoned since " % p in str(failure.value)
        assert ": disk swap)" in str(failure.value)
        assert [d.name() for d in conn.listAllDomains(0)] == [p + "here"]
    set_maintenance(conn, "absent", None, False)
    # a guest evacuated here from another host, marked as ours, not listed here: prune leaves it
    dom = conn.lookupByName(p + "here")
    conn.defineXML(with_origin(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), {"uuid": "other", "host": "hv9"}))
    result = run(conn, [], prune=True)
    assert result["summary"]["removed"] == 0 and [d.name() for d in conn.listAllDomains(0)] == [p + "here"]


def _cluster(me="hv1", **parts):
    return dict({"hypervisor": me, "declared": [], "retire": [], "hold": [], "conflicts": [], "placement": []}, **parts)


def test_in_a_cluster_autostart_is_off_prune_keeps_the_declared_and_stale_copies_go(conn):
    p = prefix()
    run(conn, [guest(p + "home", autostart=True), guest(p + "elsewhere"), guest(p + "stale"), guest(p + "gone")])
    assert conn.lookupByName(p + "home").autostart() == 1
    stale_uuid = conn.lookupByName(p + "stale").UUIDString()
    cluster = _cluster(
        declared=[{"name": p + n, "uuid": None} for n in ("home", "elsewhere", "stale")],
        retire=[{"name": p + "stale", "uuid": stale_uuid, "code": "stale_copy", "reason": "a stale copy of it"}],
        hold=[{"name": p + "later", "code": "location_unknown", "reason": "not created: hv3 did not answer"}],
        conflicts=[{"name": p + "twice", "code": "runs_twice", "reason": "it runs on hv1 and hv2"}],
        placement=[{"name": p + "home", "home": "hv2", "runs_on": "hv1", "why": "moved from hv2 by rebalance",
                    "code": "moved", "was_named": None}])
    extra = {"cluster": cluster, "prune": True}
    with pytest.raises(UserError) as plan:
        run(conn, [guest(p + "home", autostart=True)], check=True, **extra)
    assert plan.value.code == "guests_failed"
    with pytest.raises(UserError) as done:
        run(conn, [guest(p + "home", autostart=True)], **extra)
    result = done.value.result
    by_name = {g["name"]: g for g in result["guests"]}
    assert by_name[p + "home"]["placement"] == "moved" and by_name[p + "home"]["home"] == "hv2"
    assert conn.lookupByName(p + "home").autostart() == 0, "a cluster's guest autostarts"
    assert any("autostart: true is not applied" in w for w in result["warnings"])
    assert by_name[p + "stale"]["retired"] and by_name[p + "stale"]["code"] == "stale_copy"
    assert by_name[p + "gone"]["removed"] and not by_name[p + "gone"].get("retired")
    assert by_name[p + "later"]["held"] and by_name[p + "later"]["code"] == "location_unknown"
    assert by_name[p + "twice"]["code"] == "runs_twice" and by_name[p + "twice"]["error"]
    left = {d.name() for d in conn.listAllDomains(0) if d.name().startswith(p)}
    assert left == {p + "home", p + "elsewhere"}, "prune removed a declared guest, or kept a stale or undeclared one"
    assert result["summary"]["held"] == 1 and result["summary"]["failed"] == 1
    assert [(g["name"], g["changed"]) for g in plan.value.result["guests"]] == [
        (g["name"], g["changed"]) for g in result["guests"]], "check mode is not the plan of the real run"


def test_in_a_cluster_a_stale_copy_that_runs_is_never_removed(conn):
    p = prefix()
    run(conn, [guest(p + "s", state="running")])
    cluster = _cluster(retire=[{"name": p + "s", "uuid": conn.lookupByName(p + "s").UUIDString(),
                                "code": "stale_copy", "reason": "a stale copy"}])
    with pytest.raises(UserError) as err:
        run(conn, [], cluster=cluster)
    assert err.value.result["guests"][0]["code"] == "runs_twice"
    assert conn.lookupByName(p + "s").isActive()


def test_prune_keeps_a_guest_being_renamed_by_its_declared_uuid(conn):
    p = prefix()
    run(conn, [guest(p + "old")])
    declared = conn.lookupByName(p + "old").UUIDString()
    renamed = [guest(p + "new", uuid=declared)]
    plan = run(conn, renamed, check=True, prune=True)
    assert [(g["name"], g["removed"]) for g in plan["guests"]] == [(p + "new", False)]
    run(conn, renamed, prune=True)
    assert conn.lookupByUUIDString(declared).name() == p + "new"


def test_one_uuid_for_two_listed_guests_is_refused(conn):
    p = prefix()
    with pytest.raises(UserError, match="a UUID names one guest"):
        run(conn, [guest(p + "a", uuid="4dea22b3-1d52-d8f3-2516-782e98ab3fa0"),
                   guest(p + "b", uuid="4DEA22B31D52D8F32516782E98AB3FA0")])
