# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: converging a guest's snapshot (``SnapshotRunner``) and reading them all (``list_snapshots``),
given a libvirt connection. Independent of AnsibleModule.

``state: current`` means: the guest's disks are as this snapshot left them. The module reverts when
the snapshot is not libvirt's current one, or when a disk was written after the snapshot was taken
or last reverted to (the disk files' modification times against the time recorded in the guest's
metadata); so a rollback task reverts once, and a second run changes nothing until the guest writes.
On a remote URI the files cannot be read: there it always reverts.
"""

from __future__ import annotations

import os
import time

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    RUNNING_STATES,
    check_document,
    define,
    libvirt,
    lookup_domain,
    state_of,
    version_string,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import SNAPSHOT_MARK
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.model import (
    differences,
    guest_disks,
    normalize_snapshot,
    plan_disks,
    read_mark,
    retention,
    snapshot_facts,
    snapshot_xml,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import is_local_uri, pools_short_of_space
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

EXTERNAL_REVERT_VERSION = 9007000  # libvirt reverts external snapshots from 9.7.0 on


def _guest(conn, name):
    dom = lookup_domain(conn, name)
    if dom is None:
        names = sorted(d.name() for d in conn.listAllDomains(0))
        raise SpecError("guest", name, "no guest has that name on %s; guests: %s"
                        % (conn.getURI(), ", ".join(names) or "none"))
    return dom


def _snapshots(dom):
    """{name: (virDomainSnapshot, facts)} of every snapshot of the guest."""
    result = {}
    for snap in dom.listAllSnapshots(0):
        result[snap.getName()] = (snap, snapshot_facts(snap.getXMLDesc(0), snap.isCurrent(0)))
    return result


def list_snapshots(conn, params, _check=False):
    """snapshot_info's result: every snapshot of the guest ``params['name']``, oldest first, with the current
    one named (the guest's name is returned as ``guest``)."""
    guest = params["name"]
    dom = _guest(conn, guest)
    facts = sorted((f for _snap, f in _snapshots(dom).values()), key=lambda f: (f["creation_time"] or 0, f["name"]))
    current = next((f["name"] for f in facts if f["current"]), None)
    return {"changed": False, "guest": guest, "snapshots": facts, "current": current}


def _disks(conn, dom, flags=0):
    """The guest's disks (guest_disks), a disk declared by pool and volume with its file."""
    def volume_path(pool, volume):
        try:
            return conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).path()
        except libvirt.libvirtError:
            return None
    return guest_disks(dom.XMLDesc(flags), volume_path)


def _set_mark(dom, name):
    """Record that the guest's disks are, now, as snapshot ``name`` left them."""
    flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else 0)
    SNAPSHOT_MARK.set_on(dom, {"snapshot": name, "time": "%d" % int(time.time())}, flags)


def _disks_written_since(disks, since):
    """Whether a writable disk file was modified after ``since`` (epoch seconds; one second of slack)."""
    for disk in disks:
        if disk["device"] in ("cdrom", "floppy") or disk["readonly"] or not disk["path"]:
            continue
        try:
            if os.stat(disk["path"]).st_mtime > since + 1:
                return True
        except OSError:
            return True
    return False


class SnapshotRunner(Runner):
    """Converge one snapshot of a guest (``params``: the snapshot module's) on ``conn``."""

    spec = None

    def run(self):
        spec = self.spec = normalize_snapshot(self.params)
        dom = _guest(self.conn, spec["guest"])
        snaps = _snapshots(dom)
        before = sorted(snaps)
        result = {"changed": False, "guest": spec["guest"], "deleted": [], "differences": []}
        if spec["state"] == "present":
            self.present(dom, snaps, result)
        elif spec["state"] == "absent":
            self.absent(dom, snaps, result)
        else:
            self.revert(dom, snaps, result)
        after = sorted(_snapshots(dom)) if not self.check else self.predicted(before, result)
        result["changed"] = bool(self.actions)
        result["diff"] = Plan("snapshots of %s" % spec["guest"], {"snapshots": before}, {"snapshots": after}).diff()
        if spec.get("name") and spec["state"] != "absent":
            current = _snapshots(dom) if not self.check else snaps
            if spec["name"] in current:
                result["snapshot"] = current[spec["name"]][1]
        return self.finish(result)

    def predicted(self, before, result):
        names = set(before) - set(result["deleted"])
        if result.get("created"):
            names.add(self.spec["name"])
        return sorted(names)

    # -- present --------------------------------------------------------------------------------------

    def present(self, dom, snaps, result):
        spec = self.spec
        state = state_of(dom)
        running = state in RUNNING_STATES
        with_memory = spec.get("memory")
        if spec["name"] is not None and spec["name"] in snaps:
            facts = snaps[spec["name"]][1]
            with_memory = facts["memory"] if with_memory is None else with_memory
            result["differences"] = differences(facts, spec, with_memory)
            for text in result["differences"]:
                self.warn("snapshot %s exists and differs - %s; a snapshot's content cannot be edited: "
                          "delete it (state: absent) and take it again" % (spec["name"], text))
        elif spec["name"] is not None:
            self.create(dom, state, running, result)
        if spec.get("keep") is not None:
            self.prune(dom, snaps, result)

    def create(self, dom, state, running, result):
        spec = self.spec
        with_memory = spec.get("memory")
        if spec["location"] == "external" or spec.get("disk_only"):
            with_memory = False if with_memory is None else with_memory
        elif with_memory is None:
            with_memory = running
        if with_memory and not running:
            raise SpecError("memory", True, "guest %s is %s: there is no running state to keep; set memory: false"
                            % (spec["guest"], state))
        if running and spec["location"] == "internal" and not with_memory:
            raise SpecError("memory", False, "libvirt takes an internal snapshot of a running guest with its memory "
                                             "state; set memory: true, shut the guest down first, or use location: "
                                             "external (disk only)")
        plan = plan_disks(_disks(self.conn, dom, 0 if running else libvirt.VIR_DOMAIN_XML_INACTIVE), spec)
        xml = snapshot_xml(spec, plan, with_memory)
        check_document("snapshot", xml)
        flags = 0
        if spec["location"] == "external":
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
            for dev, how, overlay in plan:
                if how == "external" and os.path.exists(overlay) and is_local_uri(self.conn.getURI()):
                    raise SpecError("name", spec["name"], "the overlay file for disk %s, %s, exists already: pick "
                                                          "another snapshot name" % (dev, overlay))
        if spec.get("quiesce"):
            if not running:
                raise SpecError("quiesce", True, "guest %s is %s: only a running guest's agent can quiesce its "
                                                 "file systems" % (spec["guest"], state))
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
        if spec.get("atomic"):
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
        what = "%s%s snapshot %s" % (spec["location"], " memory+disk" if with_memory else " disk-only", spec["name"])
        self.actions.append("take " + what)
        result["created"] = True
        if self.check:
            return
        try:
            define("snapshot", dom.snapshotCreateXML, xml, flags)
        except libvirt.libvirtError as exc:
            if spec.get("quiesce") and "agent" in str(exc).lower():
                raise UserError("quiesce: the guest agent of %s did not answer (%s); nothing was taken. Install and "
                                "start qemu-guest-agent in the guest (and give it guest_agent: true), or drop quiesce"
                                % (spec["guest"], exc)) from None
            hint = _space_hint(self.conn, dom, with_memory)
            raise UserError("taking %s of guest %s failed: %s%s" % (what, spec["guest"], str(exc).strip(), hint)) from None
        _set_mark(dom, spec["name"])
        if spec["location"] == "external":
            _refresh_pools(self.conn, [overlay for _dev, how, overlay in plan if how == "external"])

    def prune(self, dom, snaps, result):
        spec = self.spec
        facts = [f for _snap, f in snaps.values()]
        if result.get("created"):
            facts.append({"name": spec["name"], "creation_time": int(time.time()) + 1})
        for name in retention(facts, spec["prefix"], spec["keep"]):
            if name == spec.get("name"):
                continue
            snap, snap_facts = snaps[name]
            if snap_facts["location"] != "internal":
                self.warn("keep: snapshot %s is %s; it is left for a task with state: absent"
                          % (name, snap_facts["location"]))
                continue
            self.actions.append("delete snapshot %s (keep %d with prefix %s)" % (name, spec["keep"], spec["prefix"]))
            result["deleted"].append(name)
            if not self.check:
                snap.delete(0)  # its children, if any, get its parent

    # -- absent ---------------------------------------------------------------------------------------

    def absent(self, dom, snaps, result):
        spec = self.spec
        if spec["name"] not in snaps:
            return
        snap, facts = snaps[spec["name"]]
        children = sorted(c.getName() for c in snap.listAllChildren(libvirt.VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS))
        if children and not (spec.get("children") or spec.get("children_only")):
            raise SpecError("children", False, "snapshot %s has descendants (%s); set children: true to delete them "
                                               "with it, or children_only: true to delete only them"
                            % (spec["name"], ", ".join(children)))
        flags, deleted = 0, [spec["name"]] + children
        if spec.get("children"):
            flags = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN
        elif spec.get("children_only"):
            flags, deleted = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY, children
        if not deleted:
            return
        external = [name for name in deleted if snaps[name][1]["location"] != "internal"]
        for name in deleted:
            self.actions.append("delete snapshot %s%s" % (name, " (merged back into its disks)" if name in external
                                                          else ""))
        result["deleted"] = deleted
        if self.check:
            return
        guest_files = [d["path"] for d in _disks(self.conn, dom) if d["path"]]
        existed = {path for path in guest_files if os.path.exists(path)}
        try:
            snap.delete(flags)
        except libvirt.libvirtError as exc:
            if external:
                raise UserError("snapshot %s: libvirt %s could not delete (merge back) the external snapshot(s) %s: %s. "
                                "Nothing was deleted; the guest still uses its overlay files"
                                % (spec["name"], version_string(self.conn.getLibVersion()), ", ".join(external), exc)) from None
            raise
        # A file the guest points at now that is gone (it existed before), or that the merge named but did not make.
        missing = [d["path"] for d in _disks(self.conn, dom) if d["path"] and is_local_uri(self.conn.getURI())
                   and d["type"] in ("file", "volume") and not os.path.exists(d["path"])
                   and (d["path"] in existed or d["path"] not in guest_files)]
        if missing:
            raise UserError("after deleting snapshot %s, guest %s points at missing disk files: %s (before: %s)"
                            % (spec["name"], spec["guest"], ", ".join(missing), ", ".join(guest_files)))
        _refresh_pools(self.conn, guest_files)

    # -- current (revert) -----------------------------------------------------------------------------

    def revert(self, dom, snaps, result):
        spec = self.spec
        if spec["name"] not in snaps:
            raise SpecError("name", spec["name"], "guest %s has no snapshot of that name; snapshots: %s"
                            % (spec["guest"], ", ".join(sorted(snaps)) or "none"))
        snap, facts = snaps[spec["name"]]
        if facts["location"] != "internal" and self.conn.getLibVersion() < EXTERNAL_REVERT_VERSION:
            raise SpecError("state", "current", "snapshot %s is external: libvirt %s cannot revert external "
                                                "snapshots (9.7 and later can); nothing was changed"
                            % (spec["name"], version_string(self.conn.getLibVersion())))
        state = state_of(dom)
        domain_xml = dom.XMLDesc(0)
        mark_name, mark_time = read_mark(domain_xml)
        since = mark_time if mark_name == spec["name"] and mark_time else facts["creation_time"] or 0
        local = is_local_uri(self.conn.getURI())
        if facts["current"] and local and not _disks_written_since(_disks(self.conn, dom), since) \
                and _state_matches(state, facts, spec.get("after_revert")):
            return
        flags = {"running": libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING,
                 "paused": libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED}.get(spec.get("after_revert") or "", 0)
        result["running_state"] = _revert_effect(state, facts, spec.get("after_revert"))
        self.actions.append("revert to snapshot %s: %s" % (spec["name"], result["running_state"]))
        if self.check:
            return
        try:
            dom.revertToSnapshot(snap, flags)
        except libvirt.libvirtError as exc:
            raise UserError("reverting guest %s to snapshot %s failed: %s" % (spec["guest"], spec["name"], exc)) from None
        _set_mark(dom, spec["name"])
        result["state"] = state_of(dom)


def _state_matches(state, facts, after_revert):
    """Whether the guest is in the state a revert to this snapshot leaves it in."""
    if after_revert:
        return state == after_revert
    if facts["memory"]:
        return state == ("paused" if facts["state"] == "paused" else "running")
    return state == "shutoff"


def _revert_effect(state, facts, after_revert):
    """What a revert does to the running state, in words."""
    if facts["memory"]:
        base = "the guest resumes where the snapshot left it (%s, memory state)" % facts["state"]
    else:
        base = ("the snapshot has no memory state: the guest%s is shut off with the snapshot's disks"
                % (" (now %s)" % state if state in RUNNING_STATES else ""))
    if after_revert:
        base += "; then %s (after_revert)" % ("started" if after_revert == "running" else "started paused")
    return base


def _refresh_pools(conn, paths):
    """Refresh the active pools that hold these files (new or removed overlays show as volumes)."""
    directories = {os.path.dirname(p) for p in paths if p}
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        target = parse_xml(pool.XMLDesc(0)).findtext("target/path") or ""
        if target.rstrip("/") in directories:
            try:
                pool.refresh(0)
            except libvirt.libvirtError:
                continue


def _space_hint(conn, dom, with_memory):
    """Why a snapshot failed when QEMU only says 'Input/output error': a pool of the guest's disks short of space for
    what the snapshot writes (its memory too, with memory)."""
    need = dom.maxMemory() * 1024 if with_memory else 0
    short = pools_short_of_space(conn, [disk["path"] for disk in _disks(conn, dom) if disk["path"]], need)
    if not short:
        return ""
    return "; the likely cause: no space left on device - %s (the snapshot writes into the guest's disks%s)" % (
        ", ".join("pool %s has %d bytes free" % item for item in short),
        ", its memory of %d bytes too" % need if need else "")
