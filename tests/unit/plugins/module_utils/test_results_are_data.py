"""Results are data: every decision code or a playbook makes about another step's outcome reads a field (a code, a
list of problem kinds), never message text. Every message of the collection passes through _results.Wording; here
they are all reworded, and each decision comes out the same.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import placement, recover
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.apply import preflight_failure
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.preflight import guest_needs, preflight
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError, Wording
from test_recover import NODE as RECOVER_NODE
from test_recover import guest as recover_guest_spec
from test_recover import lost, params as recover_params, recover_guest

REPO = Path(__file__).resolve().parents[4]
GUEST = """<domain type='kvm'><name>web</name><memory unit='KiB'>1048576</memory>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='writeback'/>
      <source file='/srv/web.img'/><target dev='vda'/></disk>
    <interface type='network'><source network='lan'/></interface>
  </devices></domain>"""


def reworded(text):
    """Every message said otherwise: the same facts, none of the words."""
    return "[%d] %s" % (len(text), " ".join(reversed(text.upper().split())))


@pytest.fixture(params=[False, True], ids=["as written", "reworded"])
def wording(request, monkeypatch):
    if request.param:
        monkeypatch.setattr(Wording, "transform", staticmethod(reworded))
    return request.param


def hosts():
    def host(name, free=4096, reachable=True, cordoned=False):
        return {"name": name, "uri": "qemu+tcp://%s/system" % name, "uuid": "uuid-" + name, "reachable": reachable,
                "total_mib": 8192, "free_mib": free, "cpus": 4, "cordoned": cordoned, "capacity_mib": None}
    return [host("hv1"), host("hv2", free=1024), host("hv3", cordoned=True), host("hv4", reachable=False)]


def guests():
    def guest(name, on, memory, running=True, origin=None):
        return {"name": name, "host": on, "memory_mib": memory, "vcpus": 1, "running": running, "copy_gib": 0.0,
                "origin": origin}
    home = {"uuid": "uuid-hv4", "uri": "qemu+tcp://hv4/system", "host": "hv4"}
    return [guest("a", "hv1", 256), guest("b", "hv1", 4096), guest("off", "hv1", 128, running=False),
            guest("away", "hv2", 128, origin=home)]


def decisions(plan):
    """What a playbook acts on: the moves, and the code of each guest that stays."""
    return ([(m["guest"], m["to"]) for m in plan.get("moves", [])], sorted((s["guest"], s["code"]) for s in plan["stays"]))


def test_placement_decides_on_codes(wording):
    evacuation = decisions(placement.evacuation_plan(hosts(), guests(), "hv1", headroom_mib=256))
    restore = decisions(placement.restore_plan(hosts(), guests(), "hv4"))
    recovery = decisions(placement.recovery_plan(hosts(), guests(), "hv4", [
        {"name": "r1", "memory": "128MiB", "state": "running"}, {"name": "r2", "memory": "128MiB", "state": "shutoff"}]))
    assert evacuation == ([("a", "hv2")], [("b", "no_room"), ("off", "shut_off")]), wording
    assert restore == ([], [("away", "home_unreachable")])
    assert recovery == ([("r1", "hv1")], [("r2", "not_run_by_fleet")])


def test_a_refused_preflight_is_told_from_a_failed_migration_by_fields(wording):
    source = {"uuid": "u1", "name": "hv1"}
    dest = {"uuid": "u2", "name": "hv2", "networks": {}, "pools": {}, "free_mib": 4096, "paths": {},
            "cpu_compatible": None}
    problems, _warnings = preflight(guest_needs(GUEST), True, source, dest, {})
    refused = preflight_failure("web", ("hv2", "qemu+tcp://hv2/system"), ("running", "hv1"), problems)
    failed = UserError("migrating guest db to hv2 failed: timeout", code="migration_failed",
                       result={"stage": "migration"})
    results = [dict(error.fields(), failed=True, msg=str(error), item={"guest": guest, "from": "hv1", "to": "hv2"})
               for guest, error in (("web", refused), ("db", failed))]
    outcome = placement.batch_outcome(results)
    assert [(s["guest"], s["code"], s["problem_kinds"]) for s in outcome["stays"]] == [
        ("web", "preflight_refused", ["network_missing", "disk_not_shared"])]
    assert outcome["failed_targets"] == ["hv2"] and [f["guest"] for f in outcome["failures"]] == ["db"]


def test_recovery_decides_on_codes(wording, test_host, monkeypatch):
    facts = recover.host_facts
    monkeypatch.setattr(recover, "host_facts", lambda c, needs: dict(facts(c, needs), free_mib=4096))
    conn = test_host(RECOVER_NODE)
    with pytest.raises(UserError) as refused:
        recover_guest(conn, recover_params(conn, recover_guest_spec("r3", "r3.raw")), False, open_conn=lost)
    result = refused.value.fields()
    assert (result["code"], result["outcome"], result["failed_check"], result["problem_kinds"]) == (
        "not_recovered", "not_recovered", "fits_here", ["disk_would_be_created"])
    started = recover_guest(conn, recover_params(conn, recover_guest_spec("r1", "r1.raw")), False, open_conn=lost)
    again = recover_guest(conn, recover_params(conn, recover_guest_spec("r1", "r1.raw")), False, open_conn=lost)
    assert (started["outcome"], again["outcome"]) == ("started", "left_alone")
    assert [e["code"] for e in started["evidence"]] == [code for code, _words in recover.CHECKS]


def test_a_lock_refusal_is_read_from_libvirt_s_error_not_from_ours(wording):
    class LibvirtLike(Exception):
        def get_error_code(self):
            return 1  # VIR_ERR_INTERNAL_ERROR: QEMU's own image lock says it in words
    cause = LibvirtLike('Failed to get "write" lock')
    ours = UserError("guest r1 was defined but could not start: %s" % cause, code="start_failed", cause=cause)
    assert recover.is_lock_refusal(ours) and recover.is_lock_refusal(cause)
    assert not recover.is_lock_refusal(UserError("could not start: resource busy", code="start_failed"))


# Jinja tests and filters that match text: a playbook that used one on another step's result would decide on words.
_TEXT_MATCH = re.compile(r"""\b(search|match|regex|regex_search|regex_findall|contains)\b|\bin\s+[\w.]*\.(msg|reason)\b""")
# Where matching text is the point: demo.yml waits for the guest's console to print its lease (the guest's words).
_ALLOWED = {("playbooks/demo.yml", "search_regex")}


def test_no_playbook_or_role_decides_by_reading_message_text():
    found = []
    for path in sorted(list((REPO / "playbooks").rglob("*.yml")) + list((REPO / "roles").glob("*/tasks/*.yml"))):
        relative = str(path.relative_to(REPO))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for match in _TEXT_MATCH.finditer(code):
                if (relative, code.strip().split(":", 1)[0]) not in _ALLOWED:
                    found.append("%s:%d: %s" % (relative, number, line.strip()))
    assert not found, "\n".join(found)
