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

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import apply_options, converge_guest, undefine
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.plan import plan_domain
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.storage import plan_storage
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    LibvirtConnectionError,
    libvirt,
    lookup_domain,
    lookup_or_none,
    open_connection,
    state_of,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.apply import host_facts
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.origin import NS as ORIGIN_NS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.preflight import guest_needs, preflight
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, to_string


# How a start that a disk lock refuses reads: virtlockd's lease ("resource busy", when the guest is resumed), or
# QEMU's own lock on the image file, which refuses first where both hosts see the same file's locks.
LOCKED = ("resource busy", "failed to acquire lock", 'failed to get "write" lock', "another process using the image")


def _evidence(check, ok, detail):
    return {"check": check, "ok": ok, "detail": detail}


def _refused(name, evidence, why, **extra):
    error = UserError("guest %s is not restarted: %s\n%s" % (name, why, "\n".join(
        "- %s %s: %s" % ("ok" if e["ok"] else "NO", e["check"], e["detail"]) for e in evidence)))
    error.result = dict(extra, evidence=evidence, action="refused")
    return error


def lost_host_answers(uri, open_conn=open_connection):
    """None when the lost host does not answer (the reason), else its hostname."""
    try:
        conn = open_conn(uri)
    except (LibvirtConnectionError, libvirt.libvirtError) as exc:
        return False, str(exc).split(". Check that", maxsplit=1)[0]
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


def _origin_element(params, since):
    node = etree.Element("home")  # libvirt puts it in ORIGIN_NS (setMetadata's key and URI)
    node.set("uri", params["lost_uri"])
    node.set("host", params.get("lost_host") or params["lost_uri"])
    node.set("since", since)
    node.set("recovered", "true")
    return to_string(node)


def recover_guest(conn, params, check, open_conn=open_connection):
    """The recover module's run: the result dict, or UserError (with the evidence) when it is refused."""
    if not (params.get("fenced") or params.get("lock_manager")):
        raise SpecError("fenced", False, "the lost host must be fenced (fenced: true once it is powered off, or a fence "
                                         "command succeeded) or the survivors must use the lock manager (lock_manager: "
                                         "true); otherwise it may still run the guest on the same disks")
    raw = dict(params["guest"], state="running")
    name = raw.get("name")
    host = gather_host(conn, read_guests=False)
    try:
        spec = normalize_guest(raw, host)
    except UserError as exc:
        raise UserError("guest %s: %s" % (name, exc)) from None
    evidence = []
    answers, detail = lost_host_answers(params["lost_uri"], open_conn)
    evidence.append(_evidence("lost host does not answer", not answers,
                              "%s answers (as %s)" % (params["lost_uri"], detail) if answers else detail))
    if answers:
        raise _refused(name, evidence, "the lost host answers: move its guests with migrate or evacuate.yml instead")
    evidence.append(_evidence("cannot still run it", True, params.get("fence_evidence") or (
        "fenced (the user confirmed it is off)" if params.get("fenced") else
        "not fenced: the survivors' lock manager refuses a disk a live QEMU still holds")))
    target = lookup_domain(conn, name)
    if target is not None and target.isActive():
        evidence.append(_evidence("runs on no reachable host", True, "it already runs here: left alone"))
        return {"changed": False, "name": name, "evidence": evidence, "action": "left alone: runs here"}
    elsewhere, silent = _running_elsewhere(name, params.get("reachable_uris") or [], conn.getURI(), open_conn)
    if elsewhere:
        evidence.append(_evidence("runs on no reachable host", True, "it runs on %s: left alone" % ", ".join(elsewhere)))
        return {"changed": False, "name": name, "evidence": evidence, "action": "left alone: runs on %s" % elsewhere[0]}
    if silent:
        evidence.append(_evidence("runs on no reachable host", False, "%s did not answer" % ", ".join(silent)))
        raise _refused(name, evidence, "it may run on a hypervisor that did not answer")
    evidence.append(_evidence("runs on no reachable host", True, "not running on %d reachable hypervisor(s)"
                              % len(params.get("reachable_uris") or [conn.getURI()])))
    for disk in raw.get("disks") or []:  # another host made these volumes on the shared storage: look again
        pool = lookup_or_none(conn.storagePoolLookupByName, disk.get("pool"), "VIR_ERR_NO_STORAGE_POOL") \
            if disk.get("pool") else None
        if pool is not None and pool.isActive():
            pool.refresh(0)
    tasks, formats = plan_storage(conn, spec, True)
    problems = ["disk %s: volume %s/%s is not on this hypervisor (it would be created empty): not on shared storage"
                % (task.dev, task.pool["name"], task.name) for task in tasks if task.vol is None]
    xml = plan_domain(None if target is None else target.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), spec, host,
                      formats).after
    needs = guest_needs(xml)
    facts = host_facts(conn, needs)
    found, _warnings = preflight(needs, True, {"uuid": None}, dict(facts, free_mib=facts["free_mib"] - params["headroom_mib"]),
                                 {"unsafe": True})
    problems.extend(p.replace("the destination", "this hypervisor").replace("no shared storage there", "not shared")
                    for p in found if not (tasks and "not on the destination" in p))
    disks = ", ".join(d["path"] or "%s/%s" % (d["pool"], d["volume"]) for d in needs["disks"]) or "no disks"
    fits = "%s here; %d MiB free for %d MiB with %d MiB headroom" % (
        disks, facts["free_mib"], needs["memory_mib"], params["headroom_mib"])
    evidence.append(_evidence("disks on shared storage, networks, room", not problems, "; ".join(problems) or fits))
    if problems:
        raise _refused(name, evidence, "this hypervisor cannot run it")
    lock = "taken when it starts" if params.get("lock_manager") else "no lock manager: the fence is the guarantee"
    evidence.append(_evidence("disk locks", True, lock))
    result = {"changed": True, "name": name, "evidence": evidence, "action": "started on %s" % facts["name"]}
    if check:
        return result
    created = target is None
    try:
        converge_guest(conn, host, spec, apply_options({}), False)
    except (UserError, libvirt.libvirtError) as exc:
        left = lookup_domain(conn, name)
        if created and left is not None and not left.isActive():
            undefine(left)  # no stale copy of a guest that did not start
        busy = (isinstance(exc, libvirt.libvirtError) and exc.get_error_code() == libvirt.VIR_ERR_RESOURCE_BUSY) \
            or any(words in str(exc).lower() for words in LOCKED)
        evidence[-1] = _evidence("disk locks", False, "refused at start: %s" % exc if busy else str(exc))
        raise _refused(name, evidence, "its disks are still locked by a live QEMU on another host (the lost host "
                                       "lost only its network?)" if busy else "it did not start") from None
    dom = lookup_domain(conn, name)
    since = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, _origin_element(params, since), "origin", ORIGIN_NS,
                    libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_AFFECT_LIVE)
    result["state"] = state_of(dom)
    return result
