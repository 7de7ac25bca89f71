# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: restart one guest of a lost hypervisor on a survivor (``recover_guest``), from the fleet's own
description of it (never from the lost host), after the evidence says it is safe:

1. the lost host does not answer;
2. it cannot still run the guest: it was fenced (the user confirmed it is off, or a fence command succeeded),
   or the survivors use libvirt's lock manager (virtlockd with a lockspace on the shared storage: a disk still
   held by a live QEMU cannot be opened by a second one);
3. the guest runs on no reachable hypervisor (one that does is left alone: each guest starts exactly once);
4. every disk is on storage this hypervisor shares (none would be created empty), every network and pool is
   there, and there is room (the migration pre-flight's checks, preflight.py);
5. the disk locks are taken when it starts (with the lock manager); a start the locks refuse leaves no copy.

The restarted guest records the lost host as its origin, so restore.yml can bring it home once it is back.
"""

from __future__ import annotations

import datetime

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import options_of, converge_guest, undefine
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host, read_facts_for
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.plan import plan_domain
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.spec import guest_options
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.storage import plan_storage
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    LibvirtConnectionError,
    libvirt,
    lookup_domain,
    lookup_or_none,
    open_connection,
    state_of,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import ORIGIN
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.apply import host_facts
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.preflight import guest_needs, preflight
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError, known_code, problem
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner


# How a start that a disk lock refuses reads in libvirt's own words (the error underneath, never a message of
# ours): virtlockd's lease ("resource busy", when the guest is resumed), or QEMU's own lock on the image file,
# which refuses first where both hosts see the same file's locks.
LOCKED = ("resource busy", "failed to acquire lock", 'failed to get "write" lock', "another process using the image")
# The checks, in the order they are made: (code, how the evidence names it).
CHECKS = (("lost_host_silent", "lost host does not answer"), ("cannot_run_it", "cannot still run it"),
          ("runs_nowhere", "runs on no reachable host"), ("fits_here", "disks on shared storage, networks, room"),
          ("disk_locks", "disk locks"))
_LABELS = dict(CHECKS)


def _evidence(check, ok, detail):
    """One check's evidence: its ``code``, the ``check`` in words, whether it passed, what was found."""
    return {"code": known_code(check), "check": _LABELS[check], "ok": ok, "detail": detail}


def _refused(name, evidence, why, **extra):
    return UserError("guest %s is not restarted: %s\n%s" % (name, why, "\n".join(
        "- %s %s: %s" % ("ok" if e["ok"] else "NO", e["check"], e["detail"]) for e in evidence)),
        code="not_recovered", result=dict(extra, evidence=evidence, action="refused", outcome="not_recovered",
                                          failed_check=next((e["code"] for e in evidence if not e["ok"]), None)))


def check_request(params):
    """What the request must say before anything is looked at: how the lost host cannot still run the guest,
    and a guest described as the domain module takes it."""
    if not (params.get("fenced") or params.get("lock_manager")):
        raise SpecError("fenced", False, "the lost host must be fenced (fenced: true once it is powered off, or a fence "
                                         "command succeeded) or the survivors must use the lock manager (lock_manager: "
                                         "true); otherwise it may still run the guest on the same disks")
    validated = ArgumentSpecValidator(guest_options()).validate(_given(params["guest"]))
    if validated.error_messages:
        raise UserError("guest: %s" % "; ".join(validated.error_messages), code="invalid_option",
                        result={"option": "guest"})
    return validated.validated_parameters


def _given(value):
    """A description without its None values, at every level: None is an option not given (a description that was
    validated once already has them for every option it left out)."""
    if isinstance(value, dict):
        return {key: _given(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_given(item) for item in value]
    return value


def lost_host_answers(uri, open_conn=open_connection):
    """(whether the lost host answers, its hostname or libvirt's reason it did not answer)."""
    try:
        conn = open_conn(uri)
    except LibvirtConnectionError as exc:
        return False, exc.cause_text
    except libvirt.libvirtError as exc:
        return False, str(exc)
    try:
        return True, conn.getHostname()
    finally:
        conn.close()


def _running_elsewhere(name, uris, target_uri, open_conn):
    """(where it runs, hosts that did not answer) among the reachable hypervisors other than the target."""
    found, silent = [], []
    for uri in uris:
        if uri == target_uri:
            continue
        try:
            conn = open_conn(uri)
        except (LibvirtConnectionError, libvirt.libvirtError):
            silent.append(uri)
            continue
        try:
            dom = lookup_domain(conn, name)
            if dom is not None and dom.isActive():
                found.append(uri)
        finally:
            conn.close()
    return found, silent


def placement_problems(volume_tasks, found):
    """What stops the guest here, from the storage plan's volumes (one to be created means its disk is not on
    shared storage) and the pre-flight's problems (by kind: a disk the storage plan already named is not named
    twice)."""
    problems = [problem("disk_would_be_created", "disk %s: volume %s/%s is not on this hypervisor (it would be created "
                        "empty): not on shared storage" % (task.dev, task.pool["name"], task.name), disk=task.dev)
                for task in volume_tasks if task.vol is None]
    named = {p["disk"] for p in problems}
    problems.extend(p for p in found if not (p["kind"] == "disk_not_shared" and p.get("disk") in named))
    return problems


def is_lock_refusal(error):
    """Whether a start failed on a disk lock: libvirt's error code, or libvirt's (or QEMU's) own words in the error
    underneath (a UserError's ``cause``)."""
    cause = getattr(error, "cause", None) if isinstance(error, UserError) else error
    if cause is None:
        return False
    get = getattr(cause, "get_error_code", None)
    if get is not None and get() == libvirt.VIR_ERR_RESOURCE_BUSY:
        return True
    return any(words in str(cause).lower() for words in LOCKED)


class RecoverRunner(Runner):
    """The recover module's run: the result dict, or UserError (``reason: not_recovered``, with the evidence) when
    it is refused. ``open_conn`` opens the other hypervisors (tests give the test driver's)."""

    open_conn = staticmethod(open_connection)

    def run(self):
        return self.finish(self._recover())

    def _recover(self):
        params, conn = self.params, self.conn
        guest = check_request(params)
        raw = dict(guest, state="running")
        name = raw.get("name")
        host = gather_host(conn, read_guests=False)
        try:
            spec = normalize_guest(raw, host)
        except UserError as exc:
            raise UserError("guest %s: %s" % (name, exc), code=exc.code, result=exc.result) from None
        evidence = []
        answers, detail = lost_host_answers(params["lost_uri"], self.open_conn)
        evidence.append(_evidence("lost_host_silent", not answers,
                                  "%s answers (as %s)" % (params["lost_uri"], detail) if answers else detail))
        if answers:
            raise _refused(name, evidence, "the lost host answers: move its guests with migrate or evacuate.yml instead")
        evidence.append(_evidence("cannot_run_it", True, params.get("fence_evidence") or (
            "fenced (the user confirmed it is off)" if params.get("fenced") else
            "not fenced: the survivors' lock manager refuses a disk a live QEMU still holds")))
        target = lookup_domain(conn, name)
        if target is not None and target.isActive():
            evidence.append(_evidence("runs_nowhere", True, "it already runs here: left alone"))
            return {"changed": False, "name": name, "evidence": evidence, "action": "left alone: runs here",
                    "outcome": "left_alone", "runs_on": conn.getURI()}
        elsewhere, silent = _running_elsewhere(name, params.get("reachable_uris") or [], conn.getURI(), self.open_conn)
        if elsewhere:
            evidence.append(_evidence("runs_nowhere", True, "it runs on %s: left alone" % ", ".join(elsewhere)))
            return {"changed": False, "name": name, "evidence": evidence, "outcome": "left_alone",
                    "action": "left alone: runs on %s" % elsewhere[0], "runs_on": elsewhere[0]}
        if silent:
            evidence.append(_evidence("runs_nowhere", False, "%s did not answer" % ", ".join(silent)))
            raise _refused(name, evidence, "it may run on a hypervisor that did not answer")
        evidence.append(_evidence("runs_nowhere", True, "not running on %d reachable hypervisor(s)"
                                  % len(params.get("reachable_uris") or [conn.getURI()])))
        for disk in raw.get("disks") or []:  # another host made these volumes on the shared storage: look again
            pool = lookup_or_none(conn.storagePoolLookupByName, disk.get("pool"), "VIR_ERR_NO_STORAGE_POOL") \
                if disk.get("pool") else None
            if pool is not None and pool.isActive():
                pool.refresh(0)
        tasks, formats = plan_storage(conn, spec, True)
        current = None if target is None else target.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        read_facts_for(conn, host, current, spec)
        xml = plan_domain(current, spec, host, formats).after
        needs = guest_needs(xml)
        facts = host_facts(conn, needs)
        room = dict(facts, free_mib=facts["free_mib"] - params["headroom_mib"])
        found, _warnings = preflight(needs, True, {"uuid": None}, room, {"unsafe": True}, where="this hypervisor",
                                     copy_hint=False)
        problems = placement_problems(tasks, found)
        disks = ", ".join(d["path"] or "%s/%s" % (d["pool"], d["volume"]) for d in needs["disks"]) or "no disks"
        fits = "%s here; %d MiB free for %d MiB with %d MiB headroom" % (
            disks, facts["free_mib"], needs["memory_mib"], params["headroom_mib"])
        evidence.append(_evidence("fits_here", not problems, "; ".join(p["message"] for p in problems) or fits))
        if problems:
            raise _refused(name, evidence, "this hypervisor cannot run it", problem_kinds=[p["kind"] for p in problems])
        lock = "taken when it starts" if params.get("lock_manager") else "no lock manager: the fence is the guarantee"
        evidence.append(_evidence("disk_locks", True, lock))
        result = {"changed": True, "name": name, "evidence": evidence, "action": "started on %s" % facts["name"],
                  "outcome": "started"}
        if self.check:
            return result
        created = target is None
        try:
            converge_guest(conn, host, spec, options_of({}), False)
        except (UserError, libvirt.libvirtError) as exc:
            left = lookup_domain(conn, name)
            if created and left is not None and not left.isActive():
                undefine(left)  # no stale copy of a guest that did not start
            busy = is_lock_refusal(exc)
            evidence[-1] = _evidence("disk_locks", False, "refused at start: %s" % exc if busy else str(exc))
            raise _refused(name, evidence, "its disks are still locked by a live QEMU on another host (the lost host "
                                           "lost only its network?)" if busy else "it did not start") from None
        dom = lookup_domain(conn, name)
        since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        ORIGIN.set_on(dom, {"uri": params["lost_uri"], "host": params.get("lost_host") or params["lost_uri"],
                            "since": since, "recovered": "true", "by": "recover"},
                      libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_AFFECT_LIVE)
        result["state"] = state_of(dom)
        return result
