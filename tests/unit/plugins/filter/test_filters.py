"""The collection's filters (plugins/filter/fleet.py and placement.py) as Ansible calls them: each documented, a
UserError turned into AnsibleFilterError, Ansible's own container types (hostvars, registered results) read as
plain dicts and lists, and the plans, summaries and evidence they give for host_info/domain_info results."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.kvmfleet.libvirt.plugins.filter import fleet, placement, report
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import apply_profiles
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import balance as balance_utils, placement as placement_utils
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import CODES, UserError

FILTERS = dict(fleet.FilterModule().filters(), **placement.FilterModule().filters(), **report.FilterModule().filters())
DOCS = Path(fleet.__file__).parent
GIB = 1024 ** 3


class Mapped(Mapping):
    """A mapping that is not a dict, as hostvars and its per-host variables are."""

    def __init__(self, data):
        self._data = data

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


def as_ansible(value):
    """``value`` with every dict a Mapped and every list a tuple."""
    if isinstance(value, dict):
        return Mapped({k: as_ansible(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(as_ansible(v) for v in value)
    return value


def plain(value):
    """Whether every container in ``value`` is a dict or a list (a Mapped compares equal to a dict)."""
    if isinstance(value, (Mapping, tuple, list)):
        if not isinstance(value, (dict, list)):
            return False
        return all(plain(v) for v in (value.values() if isinstance(value, dict) else value))
    return True


def host_result(name, free=8192, total=16384, cpus=8, cordoned=False):
    """One item of a host_info loop over the hypervisors' inventory names (gather_host_facts, and the loop's item)."""
    return {"item": name, "changed": False, "hostname": name, "uri": "qemu+tcp://%s/system" % name,
            "uuid": "uuid-" + name, "hypervisor": "QEMU", "cpu": {"model": "EPYC", "count": cpus},
            "memory": {"total_mib": total, "free_mib": free, "buffers_mib": 0, "cached_mib": 0},
            "maintenance": {"cordoned": cordoned, "reason": "kernel update" if cordoned else None, "since": None}}


def domain(name, memory="128MiB", vcpus=1, active=True, origin=None, disks=None):
    """One guest of a domain_info result, as info.gather() returns it."""
    return {"name": name, "uuid": "uuid-" + name, "state": "running" if active else "shutoff",
            "libvirt_state": "running" if active else "shutoff", "active": active, "persistent": True,
            "autostart": False, "managed": True, "tags": {}, "spec": {"name": name, "memory": memory, "vcpus": vcpus},
            "origin": origin, "disks": disks if disks is not None else []}


def disk(dev, allocation=None, capacity=None, readonly=False, shareable=False):
    return {"dev": dev, "readonly": readonly, "shareable": shareable, "capacity_bytes": capacity,
            "allocation_bytes": allocation}


HOME = {"uuid": "uuid-hv1", "uri": "qemu+tcp://hv1/system", "host": "hv1", "since": "2024-05-01T10:00:00Z"}
HOST_RESULTS = [host_result("hv1"), host_result("hv2", free=2048, cordoned=True), host_result("hv3", free=6144),
                {"item": "hv4", "failed": True, "msg": "Cannot connect to libvirt at uri 'qemu+tcp://hv4/system'"}]
GUEST_RESULTS = [
    {"item": "hv1", "changed": False, "guests": [
        domain("big", "2GiB", 2, disks=[disk("vda", allocation=3 * GIB, capacity=10 * GIB),
                                        disk("sda", capacity=GIB, readonly=True)]),
        domain("small", "512MiB", disks=[disk("vda", capacity=2 * GIB), disk("vdb", allocation=GIB, shareable=True)]),
        domain("huge", "32GiB", 4),
        domain("off", "1GiB", active=False)]},
    {"item": "hv2", "changed": False, "guests": [domain("cordoned-guest", "1GiB")]},
    {"item": "hv3", "changed": False, "guests": [domain("back-home", "256MiB", origin=HOME)]},
    {"item": "hv4", "failed": True, "msg": "unreachable"},
]


def view(**kwargs):
    return placement.placement_view(HOST_RESULTS, GUEST_RESULTS, **kwargs)


def signature(function):
    """A filter's own parameters (the guarded wrapper keeps them)."""
    return inspect.signature(function)


def test_every_filter_has_its_documentation_and_every_documentation_a_filter():
    assert sorted(FILTERS) == sorted(path.stem for path in DOCS.glob("*.yml"))


@pytest.mark.parametrize("path", sorted(DOCS.glob("*.yml")), ids=lambda path: path.stem)
def test_a_filter_documentation_names_its_file_and_the_filters_parameters(path):
    doc = yaml.safe_load(path.read_text())["DOCUMENTATION"]
    assert doc["name"] == path.stem
    options = [name for name in doc["options"] if name != "_input"]
    parameters = list(signature(FILTERS[path.stem]).parameters)[1:]
    assert options == parameters
    positional = [name.strip() for name in doc.get("positional", "").split(",") if name.strip()]
    assert positional == parameters[:len(positional)]


@pytest.mark.parametrize("call, direct", [
    (lambda: placement.evacuation_plan(view(), "hv1", headroom_mib=-1),
     lambda: placement_utils.evacuation_plan(view()["hosts"], view()["guests"], "hv1", -1)),
    (lambda: placement.restore_plan(view(), "hv9"),
     lambda: placement_utils.restore_plan(view()["hosts"], view()["guests"], "hv9")),
    (lambda: placement.rebalance_plan(view(), tolerance=-0.5),
     lambda: balance_utils.rebalance_plan(view()["hosts"], view()["guests"], tolerance=-0.5)),
    (lambda: placement.placement_view(HOST_RESULTS, GUEST_RESULTS, {"hv1": "lots"}),
     lambda: placement_utils.host_view("hv1", HOST_RESULTS[0], "lots")),
    (lambda: placement.migration_outcome([{"changed": True}]), lambda: placement_utils.batch_outcome([{"changed": True}])),
    (lambda: fleet.guest_profiles([{"name": "w1", "profile": "db"}], {"web": {"vcpus": 2}}),
     lambda: apply_profiles([{"name": "w1", "profile": "db"}], {"web": {"vcpus": 2}})),
], ids=["evacuation_plan", "restore_plan", "rebalance_plan", "placement_view", "migration_outcome", "guest_profiles"])
def test_a_user_error_becomes_an_ansible_filter_error_with_the_same_message(call, direct):
    with pytest.raises(UserError) as raised:
        direct()
    with pytest.raises(AnsibleFilterError) as filtered:
        call()
    assert not isinstance(filtered.value, UserError)
    assert str(filtered.value) == str(raised.value)


def test_the_view_reads_host_info_and_domain_info_results():
    hosts = {h["name"]: h for h in view()["hosts"]}
    assert hosts["hv1"] == {"name": "hv1", "uri": "qemu+tcp://hv1/system", "uuid": "uuid-hv1", "reachable": True,
                            "total_mib": 16384, "free_mib": 8192, "cpus": 8, "cordoned": False, "capacity_mib": None,
                            "maintenance_reason": None, "jobs": [], "architectures": None}
    assert hosts["hv2"]["cordoned"] and not hosts["hv4"]["reachable"] and hosts["hv4"]["uri"] is None
    guests = {g["name"]: g for g in view()["guests"]}
    assert sorted(guests) == ["back-home", "big", "cordoned-guest", "huge", "off", "small"]  # nothing of hv4
    assert guests["big"] == {"name": "big", "host": "hv1", "memory_mib": 2048, "vcpus": 2, "running": True,
                             "copy_gib": 0.0, "origin": None, "tags": {}, "moved_at": None, "arch": None}
    assert not guests["off"]["running"] and guests["back-home"]["origin"] == HOME


def test_without_shared_storage_a_move_copies_the_writable_disks():
    guests = {g["name"]: g for g in view(shared_storage=False)["guests"]}
    assert guests["big"]["copy_gib"] == 3.0  # its allocation, not its capacity; the cdrom is not copied
    assert guests["small"]["copy_gib"] == 2.0  # no allocation known: its capacity; the shared disk is not copied


def test_capacities_are_mib_per_name_or_host_variables():
    by_mib = view(capacities={"hv1": 4096, "hv3": 0})
    hostvars = Mapped({"hv1": Mapped({"kvmfleet_guest_memory_mib": 4096, "ansible_host": "10.0.0.1"}),
                       "hv2": Mapped({"ansible_host": "10.0.0.2"}),
                       "hv3": Mapped({"kvmfleet_guest_memory_mib": 0})})
    by_hostvars = view(capacities=hostvars)
    assert by_hostvars == by_mib
    assert [h["capacity_mib"] for h in by_mib["hosts"]] == [4096, None, 0, None]


def test_ansible_containers_give_the_same_view_as_plain_dicts_and_lists():
    expected = view(shared_storage=False)
    got = placement.placement_view(as_ansible(HOST_RESULTS), as_ansible(GUEST_RESULTS), shared_storage=False)
    assert got == expected and plain(got)


@pytest.mark.parametrize("name, args", [
    ("evacuation_plan", ("hv1", 512, ["hv9"], [{"guest": "small", "reason": "pinned by hand"}])),
    ("restore_plan", ("hv1", ["hv1"], [])),
    ("recovery_plan", ("hv4", [{"name": "r1", "memory": "1GiB", "state": "running"},
                               {"name": "r2", "memory": "1GiB", "state": "shutoff"}], 512)),
    ("rebalance_plan", (0.1, 0.05, 512, 10, ["hv2"], ["big"])),
])
def test_ansible_containers_give_the_same_plan_as_plain_dicts_and_lists(name, args):
    expected = FILTERS[name](view(), *args)
    got = FILTERS[name](as_ansible(view()), *as_ansible(list(args)))
    assert got == expected and plain(got)


def test_an_evacuation_plan_moves_what_fits_and_says_why_the_others_stay():
    plan = placement.evacuation_plan(view(), "hv1", 512, stays=[{"guest": "small", "reason": "pinned by hand"}])
    assert [(m["guest"], m["to"], m["to_uri"]) for m in plan["moves"]] == [("big", "hv3", "qemu+tcp://hv3/system")]
    assert {s["guest"]: s["code"] for s in plan["stays"]} == {"small": "given", "huge": "no_room", "off": "shut_off"}
    assert plan["lines"][0] == "big: hv1 -> hv3 (2048 MiB): most room (5632 MiB before it)"
    assert plan["hosts"]["hv3"]["after"]["guest_memory_mib"] == plan["hosts"]["hv3"]["before"]["guest_memory_mib"] + 2048
    assert "small stays: pinned by hand" in plan["lines"]


def test_every_stay_in_a_plan_carries_a_known_code():
    plans = [placement.evacuation_plan(view(), "hv1", 512, stays=[{"guest": "small", "reason": "pinned by hand"}]),
             placement.evacuation_plan(view(), "hv3", 512, exclude=["hv1"]),
             placement.restore_plan(view(), "hv1", exclude=["hv1"]),
             placement.recovery_plan(view(), "hv4", [{"name": "r1", "memory": "64GiB", "state": "running"},
                                                     {"name": "r2", "state": "shutoff"}]),
             placement.migration_outcome([{"item": {"guest": "a", "from": "hv1", "to": "hv3"}, "failed": True,
                                           "stage": "preflight", "problems": ["no network lan"]}])]
    stays = [entry for plan in plans for entry in plan["stays"]]
    assert {entry["code"] for entry in stays} == {"given", "no_room", "shut_off", "no_target", "home_failed",
                                                  "not_run_by_fleet", "preflight_refused"}
    assert all(entry["code"] in CODES and entry["reason"] for entry in stays)


def test_a_migration_summary_is_lines_of_moves_failures_and_stays():
    record = {"moved": [{"guest": "big", "from": "hv1", "to": "hv3", "changed": True,
                         "progress": {"time_elapsed_ms": 2500, "downtime_ms": 35}},
                        {"guest": "small", "from": "hv1", "to": "hv3", "changed": False, "progress": None}],
              "failures": [{"guest": "x", "to": "hv2", "reason": "timeout"}],
              "stays": [{"guest": "off", "code": "shut_off", "reason": "shut off: stays defined on hv1"},
                        {"guest": "off", "code": "shut_off", "reason": "shut off: stays defined on hv1"}]}
    lines = ["moved big: hv1 -> hv3 in 2.5 s, downtime 35 ms", "moved small: hv1 -> hv3 (already there)",
             "failed x -> hv2: timeout", "stays off: shut off: stays defined on hv1"]
    assert placement.migration_summary(record) == lines
    assert placement.migration_summary(as_ansible(record)) == lines
    assert placement.migration_summary({}) == ["nothing moved"]


def test_recovery_evidence_is_a_line_per_guest_then_one_per_check():
    evidence = [{"code": "lost_host_silent", "check": "lost host does not answer", "ok": True, "detail": "no route"},
                {"code": "disk_locks", "check": "disk locks", "ok": False, "detail": "no lock manager"}]
    results = [{"item": {"guest": "r1", "to": "hv1"}, "changed": True, "action": "started on hv1", "evidence": evidence},
               {"item": {"guest": "r2", "to": "hv3"}, "failed": True, "msg": "pool shared is not on hv3"}]
    lines = ["r1 -> hv1: started on hv1", "    ok lost host does not answer: no route", "    NO disk locks: no lock manager",
             "r2 -> hv3: failed: pool shared is not on hv3"]
    assert placement.recovery_evidence(results) == lines
    assert placement.recovery_evidence(as_ansible(results)) == lines
    assert placement.recovery_evidence([]) == ["nothing to restart"]


def test_a_fleet_plan_renders_the_fleet_result_as_lines():
    result = {"changed": True, "guests": [
        {"name": "web1", "changed": True, "created": True},
        {"name": "web2", "changed": True, "changes": ["vcpus: 1 -> 2"], "reboot_required": True,
         "reasons": ["vcpus: 1 -> 2"]},
        {"name": "db1", "changed": False}], "summary": {"created": 1, "updated": 1, "unchanged": 1}}
    lines = ["hv1: + web1", "hv1: ~ web2: vcpus: 1 -> 2 (at next boot: vcpus: 1 -> 2)",
             "hv1: 1 to create, 1 to change, 0 to remove, 1 unchanged, 0 failed, 1 waiting for a reboot"]
    assert fleet.fleet_plan(result, "hv1") == lines
    assert fleet.fleet_plan(as_ansible(result), "hv1") == lines
    assert fleet.fleet_plan(None) == ["0 to create, 0 to change, 0 to remove, 0 unchanged, 0 failed"]


def test_guest_profiles_merge_from_plain_dicts_and_lists():
    profiles = {"web": {"vcpus": 2, "tags": {"role": "web"}, "interfaces": [{"network": "lan"}]}}
    assert fleet.guest_profiles([{"name": "w1", "profile": "web", "tags": {"env": "prod"}}], profiles) == [
        {"name": "w1", "vcpus": 2, "tags": {"role": "web", "env": "prod"}, "interfaces": [{"network": "lan"}]}]


def test_guest_profiles_accept_ansible_containers():
    guests = [{"name": "w1", "profile": "web", "tags": {"env": "prod"}}]
    profiles = {"web": {"vcpus": 2, "tags": {"role": "web"}, "interfaces": [{"network": "lan"}]}}
    got = fleet.guest_profiles(as_ansible(guests), as_ansible(profiles))
    assert got == fleet.guest_profiles(guests, profiles) and plain(got)
