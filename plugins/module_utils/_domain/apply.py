# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: converging one guest. The only code that calls libvirt for a guest.

``converge_guest(conn, host, spec, options, check)`` takes a connection, the host's facts (read once
by the caller, see host.py), a normalised spec (never changed) and the apply options (how to
converge: restart, shutdown_timeout, force_off, remove_storage, remove_shared_storage), and returns
the result; warnings go into it. It knows nothing of AnsibleModule: the ``domain`` module calls it
once, a fleet of guests once per guest.

Order of work, so that bad input never leaves anything half-made: which guest the description means
(its name, or its declared UUID under another name: identity.py) -> validate everything (spec,
references, storage, schema) -> the rename of a guest renamed in its description -> seed, Ignition
file, new volumes -> one define of the persistent config -> grown volumes -> live changes on a
running guest (each through its live kind: table.py, devices.py) -> a restart when asked and needed
-> power state -> autostart. A failed write takes back everything this run made (_libvirt.Undo).
"""

from __future__ import annotations

import os
import time
import uuid
from types import SimpleNamespace

# Storage, cloud-init and Ignition code is imported where it is used: the module runs from a zip without
# bytecode, so a run that has no disks, seed or Ignition file does not compile it (_lazy below).

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.disks import guest_disks
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import config_xml_flags, read_facts_for
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.identity import (
    ELSEWHERE,
    KEEP,
    PENDING,
    RENAME,
    Identity,
    elsewhere_warning,
    guest_identity,
    pending_warning,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.live import LiveGuest, live_label, split_live
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import (
    adopts,
    guest_element,
    mark_nvram_reset,
    nvram_reset_pending,
    only_metadata,
    stored_hash,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.plan import mask_secrets, plan_domain, renamed_document, seed_disk, set_uuid
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.readback import interfaces_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.references import check_references, named_references
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.schema import check_guest_document
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import IGNITION_DIR, LIVE_SEED
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import format_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    RUNNING_STATES,
    converge_autostart,
    define,
    libvirt,
    libvirt_error_code,
    lookup_domain,
    lookup_or_none,
    start,
    state_of,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import GUEST
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml, to_string

# How to converge a guest, as opposed to what it is: one set of these can serve a list of guests.
APPLY_OPTIONS = {"restart": "never", "shutdown_timeout": 120, "force_off": False, "remove_storage": False,
                 "remove_shared_storage": False}
# libvirt expands these in the live XML (host-model becomes a model with features): not a pending change.
_LIVE_EXPANDED = ("cpu.mode", "cpu.model", "cpu.features")


def _lazy(name):
    """A module_utils module imported on first use; the imports are written out so that Ansible, which
    reads them from the source, still ships each module with the task."""
    # pylint: disable=import-outside-toplevel
    if name == "_storage":
        from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _storage as module
    elif name == "_domain.storage":
        from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import storage as module
    elif name == "_domain.files":
        from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import files as module
    elif name == "_cloudinit.model":
        from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit import model as module
    elif name == "_cloudinit.apply":
        from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit import apply as module
    else:
        raise KeyError(name)
    return module


def options_of(params):
    """The apply options out of module parameters (their defaults where not given)."""
    return {key: default if params.get(key) is None else params[key] for key, default in APPLY_OPTIONS.items()}


def undefine(dom):
    """Undefine a guest with its UEFI NVRAM and managed save image; a driver that has neither (and refuses
    the flags) undefines it plainly."""
    try:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
    except libvirt.libvirtError as exc:
        if libvirt_error_code(exc) not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
            raise
        dom.undefineFlags(0)


# ---- one guest -------------------------------------------------------------------------------------------

def converge_guest(conn, host, spec, options, check):
    """Converge one guest to ``spec`` on ``conn``; the result dict (changed, diff, actions, applied_live,
    reboot_required, reasons, warnings, ...). Raises UserError (or a libvirt error) on failure, having
    taken back what it made."""
    return GuestRun(conn, host, spec, options, check).run()


class GuestRun(Runner):
    """One guest converged (a Runner whose parameters are the apply options): the engine the domain, fleet and
    recover modules share."""

    def __init__(self, conn, host, spec, options, check):
        super().__init__(conn, options, check)
        self.host, self.spec, self.options = host, spec, options
        self.applied_live = []
        self.live_failures = []
        self.nvram_reset = False
        # The guest's libvirt name before this run and after it: the declared name, but for a guest renamed in
        # its description (identity.py): renamed, it was another; running, it keeps the other until shut off.
        self.current_name = self.name = spec["name"]
        self.identity = Identity(KEEP, None)

    def run(self):
        dom = self.identify(self.host.domain(self.conn, self.spec["name"]) or lookup_domain(self.conn, self.spec["name"]))
        if self.identity.what == ELSEWHERE:
            self.warn(elsewhere_warning(self.current_name, self.spec["name"]))
            return self.finish({"changed": False, "state": "absent", "removed_volumes": []})
        return self.finish(self.absent(dom) if self.spec["state"] == "absent" else self.present(dom))

    def identify(self, dom):
        """The guest the description means (identity.py), given ``dom``, the guest of its name (or None): that one,
        or, when the description declares a UUID and no guest has its name, the guest with that UUID (one lookup).
        A UUID that differs from the named guest's, or a rename libvirt would refuse, fails here, before any change."""
        declared = self.spec.get("uuid")
        other = None
        if dom is None and declared:
            other = lookup_or_none(self.conn.lookupByUUIDString, declared, "VIR_ERR_NO_DOMAIN")
        self.identity = guest_identity(self.spec, dom.UUIDString() if dom is not None and declared else None,
                                       None if other is None else (other.name(), bool(other.isActive())))
        if other is None:
            return dom
        self.current_name = self.identity.current
        if self.identity.what == PENDING:
            self.name = self.identity.current
            self.warn(pending_warning(self.current_name, self.spec["name"]))
        elif self.identity.what == RENAME and other.hasManagedSaveImage(0):
            old = self.current_name
            raise UserError("guest %s (the UUID declared for %s) has a managed save image, and libvirt renames no such "
                            "guest. Nothing was changed. Start it or remove the image (virsh managedsave-remove %s), or "
                            "keep the name %s in the description" % (old, self.spec["name"], old, old))
        return other

    # -- power state -----------------------------------------------------------------------------------

    def _wait_shutoff(self, dom, timeout):
        deadline = time.monotonic() + timeout
        while dom.isActive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True

    def _stop(self, dom, why):
        """Graceful shutdown; force it off after shutdown_timeout only when force_off says so."""
        timeout = self.options["shutdown_timeout"]
        if timeout > 0:
            try:
                dom.shutdown()
            except libvirt.libvirtError:
                pass  # not running any more, or no ACPI: fall through to the wait/force
            if self._wait_shutoff(dom, timeout):
                return
        if not self.options["force_off"]:
            now = state_of(dom)
            raise UserError("guest %s did not shut down within shutdown_timeout=%ss (asked for: %s); it is still %s. "
                            "Set force_off: true to power it off, or raise shutdown_timeout"
                            % (dom.name(), timeout, why, now), result={"state": now})
        dom.destroy()

    def converge_state(self, dom, current, wanted):
        """Actions to bring the guest from ``current`` to ``wanted`` power state (performed unless check)."""
        if wanted in ("present", current):
            return
        if wanted == "running" and current == "paused":
            self.actions.append("resume")
            if not self.check:
                dom.resume()
        elif wanted == "running":
            self.actions.append("start")
            self._start(dom)
        elif wanted == "paused" and current == "running":
            self.actions.append("suspend")
            if not self.check:
                dom.suspend()
        elif wanted == "paused":
            self.actions.append("start paused")
            self._start(dom, libvirt.VIR_DOMAIN_START_PAUSED)
        elif wanted == "shutoff":
            self.actions.append("shutdown")
            if not self.check:
                self._stop(dom, "state: shutoff")

    def _start(self, dom, flags=0):
        """Start the guest (unless check mode). A pending firmware change (metadata.mark_nvram_reset) first
        re-creates its UEFI variables from the firmware's template, then clears the mark."""
        if self.nvram_reset:
            self.actions.append("reset UEFI variables (NVRAM) from the firmware template")
        if self.check:
            return
        if not self.nvram_reset:
            if not start(dom, lambda: dom.createWithFlags(flags)):
                self.actions[-1] += " (already started by another writer)"
            return
        dom.createWithFlags(flags | libvirt.VIR_DOMAIN_START_RESET_NVRAM)
        root = parse_xml(dom.XMLDesc(config_xml_flags()))
        mark_nvram_reset(root, False)
        define("domain", self.conn.defineXMLFlags, to_string(root))
        self.nvram_reset = False

    # -- absent ------------------------------------------------------------------------------------------

    def _disk_volumes(self, dom):
        """The volumes of the guest's disks (device disk) that are in a storage pool, and its cloud-init seed's (a cdrom
        the collection made for it; other cdroms, installer images, are never deleted); a disk image in no pool is kept
        and said so."""
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        root = parse_xml(xml)
        seed = seed_disk(root, root.find("devices"), dom.name())
        volumes = []
        for disk in guest_disks(xml):
            if seed is not None and disk["dev"] == seed[1] and not disk["empty"]:
                pass  # the seed cdrom: its volume is the guest's own
            elif (disk["device"] or "disk") != "disk" or disk["empty"] or disk["type"] not in ("volume", "file") or (
                    disk["type"] == "file" and not disk["path"]):
                continue
            vol = self._volume_of(disk["type"], disk["pool"], disk["volume"], disk["path"], "disk image")
            if vol is not None:
                volumes.append(vol)
        return volumes

    def _volume_of(self, kind, pool, volume, path, what):
        """The storage volume of a disk source (a pool's volume, or a file path), or None - said so: ``what`` (its
        words) is kept, being in no storage pool."""
        try:
            if kind == "volume":
                return self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
            return self.conn.storageVolLookupByPath(path or "")
        except libvirt.libvirtError:
            self.warn("%s %s is in no storage pool and was kept" % (what, path or volume))
            return None

    def _refuse_shared(self, dom, volumes):
        """remove_storage deletes no disk image another guest still uses, unless remove_shared_storage says so."""
        if self.options["remove_shared_storage"]:
            return
        for vol in volumes:
            pool = vol.storagePoolLookupByVolume()
            users = _lazy("_storage").guests_using_volume(self.conn, vol.path(), pool.name(), vol.name(), exclude=(dom.name(),))
            if users:
                raise UserError("guest %s: disk image %s is also used by guest(s) %s; remove_storage would leave them "
                                "pointing at a missing file. Nothing was changed. Detach it from them first, or set "
                                "remove_shared_storage: true" % (dom.name(), vol.path(), ", ".join(users)),
                                result={"used_by": users})

    def absent(self, dom):
        result = {"changed": dom is not None, "state": "absent", "removed_volumes": []}
        if dom is None:
            return result
        before = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        result["diff"] = Plan("domain (persistent config)", before, "", mask=mask_secrets).diff()
        snapshots = dom.snapshotNum(0)
        if snapshots:
            names = ", ".join(dom.snapshotListNames(0))
            raise UserError("guest %s has %d snapshot(s): %s. Delete them first (kvmfleet.libvirt.snapshot); "
                            "absent never deletes snapshots" % (dom.name(), snapshots, names))
        volumes = self._disk_volumes(dom) if self.options["remove_storage"] else []
        self._refuse_shared(dom, volumes)
        result["removed_volumes"] = [v.path() for v in volumes]
        if self.check:
            return result
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            undefine(dom)
        for vol in volumes:
            vol.delete(0)
        # The Ignition file is this module's own copy of the guest's config: it goes with the guest.
        for entry in parse_xml(before).iterfind("sysinfo[@type='fwcfg']/entry"):
            path = entry.get("file") or ""
            if os.path.dirname(path) == IGNITION_DIR and os.path.exists(path):
                os.unlink(path)
        self.host.forget(dom.name())
        return result

    # -- present / running / ... ---------------------------------------------------------------------------

    def pending_on_running_guest(self, dom, formats):
        """What the running guest differs in from the spec in ways only a restart applies.

        Planned against the live XML, so a change written to the config by an earlier run is still
        reported (and restarted for) until the guest has rebooted into it. The escape hatch, our
        metadata, and the CPU definition (libvirt expands host-model in the live XML) are left out.
        """
        live_spec = {key: value for key, value in self.spec.items() if key not in _LIVE_EXPANDED}
        live_spec.update(xml_edits=[], tags=None)
        live, later = split_live(plan_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE), live_spec, self.host, formats),
                                 True)
        return later, live

    def apply_live(self, name, live, seed_dev):
        """Apply each live change through its live kind; one the guest does not take is left to the next
        boot, and said so. The persistent config already holds every change at this point, so a refused or
        timed-out live operation (a vCPU unplug the guest ignores, say) is not a failure of the task."""
        guest = LiveGuest(self.conn, name, seed_dev)
        for item in live:
            try:
                item.live.call(guest, item)
            except libvirt.libvirtError as exc:
                what = item.label if getattr(item, "op", None) else item.what
                reason = "%s: not applied to the running guest (%s); applies at next boot" % (what, exc)
                self.live_failures.append(reason)
                self.warn(reason)
                continue
            self.applied_live.append(live_label(item))

    def present(self, dom):
        """Plan and write (one guest at a time: guests converged in parallel share the host's facts, and
        libvirtd's own schema check at define is not safe to run concurrently), then the power state
        (starts and shutdown waits overlap)."""
        with self.host.serial:
            stage = self._plan_and_write(dom)
        return self._finish(stage)

    def _plan_and_write(self, dom):
        spec, conn, check = self.spec, self.conn, self.check
        name = self.name
        if dom is None:
            mark = self.host.maintenance(conn)
            if mark["cordoned"]:
                raise UserError(
                    "guest %s is not created: this host is in maintenance (cordoned since %s%s). A guest absent from a "
                    "cordoned host may run elsewhere, evacuated, and a second copy would share its disks; bring it "
                    "back with playbooks/restore.yml, or put the host back in service (kvmfleet.libvirt.host_maintenance "
                    "state: absent)" % (name, mark["since"] or "an unknown time",
                                        ": %s" % mark["reason"] if mark["reason"] else ""),
                    code="cordoned", result={"maintenance": mark})
        current_xml = renamed_from = None
        if dom is not None:
            current_xml = self.host.current_xml(self.current_name) or dom.XMLDesc(config_xml_flags())
        named = named_references(current_xml)
        for warning in check_references(conn, spec, check, self.host.references, named):
            self.warn(warning)
        volume_tasks, formats = _lazy("_domain.storage").plan_storage(conn, spec, check, named[1]) \
            if spec.get("disks") else ([], {})
        if self.identity.what == RENAME:  # planned as the renamed guest, in check mode as in a real run
            renamed_from, current_xml = current_xml, renamed_document(current_xml, name)
            self.actions.append("rename %s to %s" % (self.current_name, name))
        read_facts_for(conn, self.host, current_xml, spec)  # a new NIC's MAC must avoid every guest's on the host
        plan = plan_domain(current_xml, spec, self.host, formats)
        # --diff shows the rename too (the plan's own before is the renamed document)
        diff = plan.diff() if renamed_from is None else Plan(plan.header, renamed_from, plan.after, mask=mask_secrets).diff()
        validate = True
        if plan.changed:
            validate = check_guest_document(current_xml or "", plan.after, spec.get("xml_edits") or ())
            if validate is not True:
                self.warn("guest %s: %s" % (name, validate))
                validate = False
        self.nvram_reset = nvram_reset_pending(plan.root)
        seed_task = None
        if spec.get("cloud_init"):
            current_root = None if current_xml is None else parse_xml(current_xml)
            stored = None if current_root is None else stored_hash(current_root, "cloud-init")
            seed_task = _lazy("_cloudinit.apply").plan_seed(conn, spec["cloud_init"], stored, check)
        ignition = spec.get("ignition")
        if ignition is not None and not _lazy("_storage").is_local_uri(conn.getURI()):
            raise SpecError("ignition", "(hidden)", "the Ignition file is written on the host the module runs on; "
                                                    "use a local uri (qemu:///system) on the hypervisor")
        write_ignition = ignition is not None and not _lazy("_domain.files").ignition_file_current(ignition["path"], ignition["config"])

        current_state = state_of(dom)
        running = current_state in RUNNING_STATES
        live, later = split_live(plan, running)
        if running and not plan.created:
            known = {what for what, _text in later}
            pending, unapplied = self.pending_on_running_guest(dom, formats)
            later += [item for item in pending if item[0] not in known]
            # Live-capable changes the config already has but the running guest does not (an attach
            # or a vCPU unplug an earlier run could not apply live), other than those this run applies.
            applying = {live_label(item) for item in live}
            for item in unapplied:
                label = live_label(item)
                # The seed's hash lives in metadata the running guest's XML keeps from its boot.
                if label not in applying and item.live is not LIVE_SEED:
                    later.append((label, "%s: in the config but not in the running guest; applies at next boot"
                                  % label))
        later = [text for _what, text in later]
        wanted_state = spec["state"]
        restart = bool(later) and running and self.options["restart"] == "if_needed" and wanted_state != "shutoff"
        if seed_task is not None:
            self.actions.append(seed_task.describe())
        if write_ignition:
            self.actions.append("write Ignition config %s" % ignition["path"])
        for task in volume_tasks:
            self.actions.append(task.describe())
        dropped = self._dropped_seed_volume(plan.dropped_seed, name) if self.options["remove_storage"] else None
        if dropped is not None:
            self.actions.append("delete cloud-init seed volume %s" % dropped.path())
        if not check:
            self._write(dom, name, plan, volume_tasks, running, seed_task, ignition if write_ignition else None, validate,
                        planned_from=renamed_from or current_xml)
            if dom is None or renamed_from is not None:
                dom = conn.lookupByName(name)
            if running and live:
                self.apply_live(name, live, plan.seed_dev)
            if dropped is not None:
                dropped.delete(0)  # last: the guest no longer names it
        else:
            self.applied_live.extend(live_label(item) for item in live)
        if renamed_from is not None:  # renamed (or, in check mode, predicted to be): later guests see the new name
            self.host.renamed(self.current_name, name, current_xml)
        return SimpleNamespace(dom=dom, plan=plan, diff=diff, later=later, restart=restart, running=running,
                               current_state=current_state, volume_tasks=volume_tasks)

    def _finish(self, stage):
        spec, check = self.spec, self.check
        name, wanted_state = self.name, spec["state"]
        dom, plan, later, restart = stage.dom, stage.plan, stage.later, stage.restart
        current_state, volume_tasks = stage.current_state, stage.volume_tasks
        if restart:
            self.actions.append("restart (to apply: %s)" % "; ".join(later))
            if not check:
                self._stop(dom, "restart: if_needed")
            self._start(dom)
        later.extend(self.live_failures)
        reboot_required = bool(later) and not restart and wanted_state != "shutoff"
        try:
            self.converge_state(dom, "shutoff" if plan.created else current_state, wanted_state)
        except libvirt.libvirtError as exc:
            if plan.created and not check:
                failed = self._undo_create(dom)
                raise UserError("guest %s was defined but could not start, so it was removed again along with "
                                "the volumes and files this task created: %s; %s"
                                % (name, exc, self.undo.describe_failure(failed)), code="start_failed",
                                cause=exc) from None
            raise
        action = converge_autostart(dom, spec.get("autostart"), check, dom is not None and not (plan.created and check))
        if action:
            self.actions.append(action)

        final_xml = plan.root  # the same document as plan.after, parsed
        changed = plan.changed or bool(volume_tasks) or bool(self.actions)
        if dom is not None and not check and changed:
            final_xml = dom.XMLDesc(config_xml_flags())  # with what libvirt filled in (addresses, a new MAC)
            self.host.remember(name, final_xml)
        elif check:  # the guests converged after this one must not be predicted with its MACs
            self.host.remember_macs(name, plan.macs)
        result = {
            "changed": changed,
            "diff": stage.diff,
            "created": plan.created,
            "changes": [c.describe() for c in plan.changes],
            "applied_live": self.applied_live,
            "reboot_required": reboot_required,
            "reasons": later if reboot_required else [],
            "actions": self.actions,
            "uuid": spec.get("uuid") if dom is None else dom.UUIDString(),
            "state": wanted_state if wanted_state != "present" else (
                "shutoff" if plan.created else current_state),
            "interfaces": interfaces_of(final_xml),
            "adopted": not plan.created and adopts(plan.changes),
        }
        if self.identity.what in (RENAME, PENDING):
            result["renamed_from" if self.identity.what == RENAME else "rename_pending"] = self.current_name
        return result

    def _write(self, dom, name, plan, volume_tasks, running, seed_task=None, ignition=None, validate=True,
               planned_from=None):
        """The writes, in order: the rename, seed, Ignition file, new volumes, the define, grown volumes. A failure
        takes back everything this run made (the rename too; a grown volume stays grown: shrinking could lose data).
        ``planned_from``: the definition the plan was made against; the define refuses to overwrite another one."""
        undo = self.undo
        define_xml = plan.after
        with undo.guard("the change to guest %s" % name):
            if dom is not None and plan.changed:
                self._refuse_other_writer(dom, name, planned_from)
            if self.identity.what == RENAME:  # first: the define below is of the renamed guest
                old = self.current_name
                dom.rename(name, 0)
                undo.add("the rename of guest %s to %s" % (old, name), lambda: dom.rename(old, 0))
            if seed_task is not None:
                instance_id = None
                if seed_task.seed["derive_instance_id"]:
                    if dom is None:
                        # libvirt would pick a UUID at define; this picks it first (or takes the declared one), for
                        # the instance-id.
                        guest_uuid = self.spec.get("uuid") or str(uuid.uuid4())
                        define_xml = _with_uuid(plan.after, guest_uuid)
                    else:
                        guest_uuid = dom.UUIDString()
                    instance_id = _lazy("_cloudinit.model").instance_id_for(guest_uuid)
                _lazy("_cloudinit.apply").write_seed(self.conn, seed_task, instance_id, undo)
            if ignition is not None:
                _lazy("_domain.files").write_ignition_file(ignition["path"], ignition["config"], undo)
            for task in volume_tasks:
                if task.vol is None:
                    pool = task.pool["obj"]
                    vol = define("volume", pool.createXML, _lazy("_storage").volume_xml(
                        task.name, task.size, task.plan.format, backing=task.plan.backing))
                    undo.add("volume %s" % vol.path(), lambda vol=vol: vol.delete(0))
            if plan.changed and dom is not None and self.identity.what != RENAME and only_metadata(plan.before, plan.root):
                # no define: the rest of the definition stays byte for byte as it is (adopting a guest)
                # (the config only, as a define: a running guest's own metadata keeps what it booted with, the seed's hash)
                flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
                old_element = guest_element(parse_xml(plan.before))
                GUEST.set_element_on(dom, guest_element(plan.root), flags)
                undo.add("the metadata of guest %s" % name, lambda: GUEST.set_element_on(dom, old_element, flags))
            elif plan.changed:
                defined = define("domain", self.conn.defineXMLFlags, define_xml, validate=validate)
                if dom is None:
                    undo.add("guest %s" % name, lambda: undefine(defined))
            for task in volume_tasks:
                if task.vol is not None:
                    self._grow(dom, task, running)

    @staticmethod
    def _refuse_other_writer(dom, name, planned_from):
        """Right before the define: the definition is still the one the plan was made against, or nothing is written
        (another writer changed the guest since; overwriting its change unseen would lose it). Taken as late as it can
        be: libvirt has no compare-and-define."""
        now = dom.XMLDesc(config_xml_flags())
        if planned_from is not None and now != planned_from:
            raise UserError("guest %s was changed by another writer during this run (its definition is no longer the "
                            "one this run planned against), so this run's change was not written and nothing it made "
                            "was kept. Run again: the next run plans from the definition as it is now" % name,
                            code="conflict", result={"changed": False})

    def _dropped_seed_volume(self, source, name):
        """The volume of a seed this run detaches (``source``: its disk source), to delete with remove_storage; None
        when there is none, or it is in no pool, or another guest uses it (said so)."""
        if source is None:
            return None
        attrs = dict(source[1])
        vol = self._volume_of(source[0], attrs.get("pool"), attrs.get("volume"), attrs.get("file"),
                              "the detached cloud-init seed")
        if vol is None:
            return None
        pool = vol.storagePoolLookupByVolume()
        users = _lazy("_storage").guests_using_volume(self.conn, vol.path(), pool.name(), vol.name(), exclude=(name,))
        if users:
            self.warn("the detached cloud-init seed %s is also used by %s and was kept" % (vol.path(), ", ".join(users)))
            return None
        return vol

    def _undo_create(self, dom):
        """Take back a guest this run defined, with everything made for it: no half-made objects."""
        if dom.isActive():
            dom.destroy()
        return self.undo.rollback()

    def _grow(self, dom, task, running):
        if running and dom is not None:
            try:
                dom.blockResize(task.dev, task.size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                self.applied_live.append("grow disk %s to %s" % (task.dev, format_size(task.size)))
                return
            except libvirt.libvirtError:
                pass  # the disk is not attached live yet: grow the volume itself
        task.vol.resize(task.size, 0)


def _with_uuid(xml, guest_uuid):
    root = parse_xml(xml)
    set_uuid(root, guest_uuid)
    return to_string(root)
