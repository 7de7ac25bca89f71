# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``domain`` module's runner. The only code that calls libvirt for a guest.

Order of work, so that bad input never leaves anything half-made:
validate everything (spec, references, storage, schema) -> create/grow volumes -> one define of
the persistent config -> live operations on a running guest -> power state -> autostart.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import uuid

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain_model import (
    DEVICE_KIND,
    LIVE_MEMORY,
    LIVE_SEED,
    LIVE_VCPUS,
    IGNITION_DIR,
    Context,
    interfaces_of,
    mark_nvram_reset,
    mask_secrets,
    normalize_spec,
    nvram_reset_pending,
    plan_domain,
    stored_hash,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit import instance_id_for
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import GUEST_NAME, SpecError, format_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    Undo,
    converge_autostart,
    libvirt,
    lookup_or_none,
    run_guarded,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import find_volume as _find_volume
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import guests_using_volume
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import is_local_uri as _is_local_uri
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import pool_for_path as _pool_for_path
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import volume_xml as _volume_xml
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._seed import plan_seed, write_seed
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import validate_schema as validate_xml_schema

STATE_NAMES = {1: "running", 2: "running", 3: "paused", 4: "running", 5: "shutoff", 6: "shutoff", 7: "paused"}
_CONFIG_ONLY = ("tags", "metadata.managed")
_LIVE_EXPANDED = ("cpu.mode", "cpu.model", "cpu.features")


# ---- host context -------------------------------------------------------------------------------

def host_context(conn, own_name, need_macs=True):
    """Machine aliases and (when a NIC may need a derived MAC) the MACs of every other guest."""
    caps = parse_xml(conn.getCapabilities())
    host_arch = caps.findtext("host/cpu/arch") or "x86_64"
    aliases = {}
    for machine in caps.iterfind("guest/arch[@name='%s']/machine" % host_arch):
        if machine.get("canonical"):
            aliases[machine.text] = machine.get("canonical")
    used = set()
    for dom in conn.listAllDomains(0) if need_macs else ():
        if dom.name() == own_name:
            continue
        for mac in parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).iterfind("devices/interface/mac"):
            used.add(mac.get("address", "").lower())
    return Context(aliases, used, host_arch)


def _lookup_domain(conn, name):
    return lookup_or_none(conn.lookupByName, name, "VIR_ERR_NO_DOMAIN")


def _state(dom):
    return "absent" if dom is None else STATE_NAMES.get(dom.state(0)[0], "shutoff")


# ---- validation of references -------------------------------------------------------------------

def _names(items):
    return ", ".join(sorted(i.name() for i in items)) or "(none)"


_ASSUMED = ("check mode: %s %s does not exist yet; assuming an earlier task in the play creates it "
            "(a real run fails here if it does not)")


def check_references(conn, spec, check=False):
    """Networks and pools named in the spec must exist: fail before any change if one does not.

    In check mode a missing one is assumed to come from an earlier task of the same play (which
    in check mode predicted it and made nothing); the returned warnings say so.
    """
    warnings = []
    for index, nic in enumerate(spec.get("interfaces") or []):
        kind, attrs = nic["source"]
        if kind == "network":
            name = dict(attrs)["network"]
            try:
                conn.networkLookupByName(name)
            except libvirt.libvirtError:
                if check:
                    warnings.append(_ASSUMED % ("network", name))
                    continue
                raise SpecError("interfaces[%d].network" % index, name,
                                "no libvirt network has that name; existing networks: %s"
                                % _names(conn.listAllNetworks(0))) from None
    for index, disk in enumerate(spec.get("disks") or []):
        kind, attrs = disk["source"]
        if kind == "volume":
            name = dict(attrs)["pool"]
            try:
                conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                if check:
                    warnings.append(_ASSUMED % ("storage pool", name))
                    continue
                raise SpecError("disks[%d].pool" % index, name,
                                "no storage pool has that name; existing pools: %s"
                                % _names(conn.listAllStoragePools(0))) from None
    seed = spec.get("cloud_init")
    if seed:
        try:
            pool = conn.storagePoolLookupByName(seed["pool"])
        except libvirt.libvirtError:
            if not check:
                raise SpecError("cloud_init.pool", seed["pool"], "no storage pool has that name; existing pools: %s"
                                % _names(conn.listAllStoragePools(0))) from None
            warnings.append(_ASSUMED % ("storage pool", seed["pool"]))
        else:
            if not pool.isActive() and not check:
                raise SpecError("cloud_init.pool", seed["pool"], "the pool is not active; start it first")
    return warnings


def validate_schema(xml):
    """Validate against libvirt's own RelaxNG schema when it is installed; raise SchemaError if invalid."""
    validate_xml_schema(xml, "domain.rng", "domain")


# ---- storage: volumes a disk declares with a size ------------------------------------------------------

class VolumeTask:
    def __init__(self, option, disk, pool, name, size, fmt, vol=None, backing=None):
        self.option, self.disk, self.pool, self.name, self.size, self.fmt, self.vol = (
            option, disk, pool, name, size, fmt, vol)
        self.backing = backing  # (path, format) of the base image of a new overlay

    def describe(self):
        if self.vol is None:
            overlay = ", overlay on %s" % self.backing[0] if self.backing else ""
            return "create volume %s/%s (%s, %s%s)" % (self.pool.name(), self.name, format_size(self.size), self.fmt,
                                                       overlay)
        return "grow volume %s/%s to %s" % (self.pool.name(), self.name, format_size(self.size))


def base_image(conn, pool, reference, option, check=False):
    """(path, format, capacity) of a disk's base image: a volume of ``pool`` by name, or of any pool by path.

    In check mode one that does not exist yet is assumed (an earlier task makes it); capacity is then None.
    """
    try:
        if reference.startswith("/"):
            vol = conn.storageVolLookupByPath(reference)
        else:
            vol = pool.storageVolLookupByName(reference)
    except libvirt.libvirtError:
        if check:
            path = reference
            if not reference.startswith("/"):
                path = os.path.join(parse_xml(pool.XMLDesc(0)).findtext("target/path") or "", reference)
            return path, "qcow2", None
        where = "no volume of any storage pool has that path" if reference.startswith("/") else (
            "pool %s has no volume of that name" % pool.name())
        raise SpecError(option, reference, "%s; the base image must be a volume (a file copied into a pool's "
                                           "directory shows up after a refresh of the pool)" % where) from None
    root = parse_xml(vol.XMLDesc(0))
    fmt = root.find("target/format")
    return vol.path(), "raw" if fmt is None else fmt.get("type"), vol.info()[1]


def plan_storage(conn, spec, check=False):
    """Volumes to create or grow, and each disk's format filled in from its volume. Refuses to shrink.

    In check mode a pool that does not exist or is not active yet is assumed to be made by an earlier
    task (see check_references): its disks are planned as new volumes when they declare a size.
    """
    tasks = []
    for index, disk in enumerate(spec.get("disks") or []):
        option = "disks[%d]" % index
        kind, attrs = disk["source"]
        attrs = dict(attrs)
        if kind == "volume":
            try:
                pool = conn.storagePoolLookupByName(attrs["pool"])
            except libvirt.libvirtError:
                pool = None
            if check and (pool is None or not pool.isActive()):
                if (disk.get("size") is not None or disk.get("backing")) and disk["device"] == "disk":
                    disk.setdefault("format", "qcow2")
                continue
            name = attrs["volume"]
        elif kind == "file" and attrs.get("file"):
            pool = _pool_for_path(conn, attrs["file"])
            name = os.path.basename(attrs["file"])
        else:
            continue
        vol = _find_volume(pool, name) if pool is not None else None
        if pool is not None and not pool.isActive():
            raise SpecError(option + ".pool", pool.name(), "the pool is not active; start it first")
        if vol is not None:
            vol_format = parse_xml(vol.XMLDesc(0)).find("target/format")
            if disk.get("format") is None and vol_format is not None and disk["device"] == "disk":
                disk["format"] = vol_format.get("type")
            capacity = vol.info()[1]
            size = disk.get("size")
            if size is not None and size < capacity:
                raise SpecError(option + ".size", format_size(size),
                                "volume %s is %s; shrinking a disk is refused (it would lose data)"
                                % (vol.path(), format_size(capacity)))
            if size is not None and size > capacity:
                tasks.append(VolumeTask(option, disk, pool, name, size, disk.get("format"), vol))
        elif disk.get("backing") is not None:
            if pool is None:
                raise SpecError(option + ".backing", disk["backing"],
                                "cannot create %s: its directory is not a storage pool's" % attrs.get("file"))
            path, fmt, capacity = base_image(conn, pool, disk["backing"], option + ".backing", check)
            size = disk.get("size") or capacity
            if capacity is not None and size < capacity:
                raise SpecError(option + ".size", format_size(size), "the base image %s is %s; an overlay cannot be "
                                                                     "smaller" % (path, format_size(capacity)))
            if size is None:  # check mode, base image assumed: its size is not known yet
                size = 0
            disk["format"] = "qcow2"
            tasks.append(VolumeTask(option, disk, pool, name, size, "qcow2", backing=(path, fmt)))
        elif disk.get("size") is not None:
            if pool is None:
                raise SpecError(option + ".size", format_size(disk["size"]),
                                "cannot create %s: its directory is not a storage pool's; declare pool and "
                                "volume, or define a pool for that directory" % attrs.get("file"))
            disk.setdefault("format", "qcow2")
            tasks.append(VolumeTask(option, disk, pool, name, disk["size"], disk["format"]))
        elif kind == "volume":
            raise SpecError(option + ".volume", name, "pool %s has no such volume; give size to create it"
                            % pool.name())
    return tasks


# ---- the cloud-init seed volume and the Ignition file -------------------------------------------------

def ignition_file_current(path, config):
    try:
        with open(path, "rb") as handle:
            return handle.read() == config.encode("utf-8")
    except OSError:
        return False


def write_ignition_file(path, config, undo=None):
    """Write the config atomically, readable by the qemu process (group libvirt-qemu when it exists).

    With ``undo``, how to take it back is registered: the previous file comes back, or a new one goes.
    """
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    previous = None
    if undo is not None and os.path.lexists(path):
        with open(path, "rb") as handle:
            previous = handle.read()
    _replace_file(path, config.encode("utf-8"))
    if undo is not None:
        undo.add("Ignition file %s" % path,
                 (lambda: os.unlink(path)) if previous is None else (lambda: _replace_file(path, previous)))


def _replace_file(path, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".kvmfleet-ign-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            import grp
            os.chown(tmp, 0, grp.getgrnam("libvirt-qemu").gr_gid)
            os.chmod(tmp, 0o640)
        except (KeyError, PermissionError):
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- the runner ----------------------------------------------------------------------------------------

class DomainRunner:
    def __init__(self, module, conn):
        self.module = module
        self.conn = conn
        self.params = module.params
        self.check = module.check_mode
        self.applied_live = []
        self.live_failures = []
        self.undo = Undo()  # what this run made, taken back if a later step fails
        self.nvram_reset = False
        self.reasons = []
        self.actions = []
        self.seed_dev = None

    # -- power state -------------------------------------------------------------------------------

    def _wait_shutoff(self, dom, timeout):
        deadline = time.monotonic() + timeout
        while dom.isActive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True

    def _stop(self, dom, why):
        """Graceful shutdown; force it off after shutdown_timeout only when force_off says so."""
        timeout = self.params["shutdown_timeout"]
        if timeout > 0:
            try:
                dom.shutdown()
            except libvirt.libvirtError:
                pass  # not running any more, or no ACPI: fall through to the wait/force
            if self._wait_shutoff(dom, timeout):
                return
        if not self.params["force_off"]:
            raise UserError("guest %s did not shut down within shutdown_timeout=%ss (%s); set force_off: true "
                              "to power it off, or raise shutdown_timeout" % (dom.name(), timeout, why))
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
        """Start the guest (unless check mode). A pending firmware change (see mark_nvram_reset in the
        model) first re-creates its UEFI variables from the firmware's template, then clears the mark."""
        if self.nvram_reset:
            self.actions.append("reset UEFI variables (NVRAM) from the firmware template")
        if self.check:
            return
        if not self.nvram_reset:
            dom.createWithFlags(flags)
            return
        dom.createWithFlags(flags | libvirt.VIR_DOMAIN_START_RESET_NVRAM)
        root = parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        mark_nvram_reset(root, False)
        self.conn.defineXML(to_string(root))
        self.nvram_reset = False

    # -- absent ----------------------------------------------------------------------------------------

    def _disk_volumes(self, dom):
        volumes = []
        root = parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        for disk in root.iterfind("devices/disk[@device='disk']"):
            source = disk.find("source")
            if source is None:
                continue
            try:
                if disk.get("type") == "volume":
                    pool = self.conn.storagePoolLookupByName(source.get("pool"))
                    volumes.append(pool.storageVolLookupByName(source.get("volume")))
                elif disk.get("type") == "file" and source.get("file"):
                    volumes.append(self.conn.storageVolLookupByPath(source.get("file")))
            except libvirt.libvirtError:
                self.reasons.append("disk image %s is in no storage pool and was kept"
                                    % (source.get("file") or source.get("volume")))
        return volumes

    def _refuse_shared(self, dom, volumes):
        """remove_storage deletes no disk image another guest still uses, unless remove_shared_storage says so."""
        if self.params.get("remove_shared_storage"):
            return
        for vol in volumes:
            pool = vol.storagePoolLookupByVolume()
            users = guests_using_volume(self.conn, vol.path(), pool.name(), vol.name(), exclude=(dom.name(),))
            if users:
                raise UserError("guest %s: disk image %s is also used by guest(s) %s; remove_storage would leave them "
                                  "pointing at a missing file. Nothing was changed. Detach it from them first, or set "
                                  "remove_shared_storage: true" % (dom.name(), vol.path(), ", ".join(users)))

    def absent(self, dom):
        result = {"changed": dom is not None, "state": "absent", "removed_volumes": []}
        if dom is None:
            return result
        before = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        result["diff"] = {"before": mask_secrets(before), "after": ""}
        snapshots = dom.snapshotNum(0)
        if snapshots:
            names = ", ".join(dom.snapshotListNames(0))
            raise UserError("guest %s has %d snapshot(s): %s. Delete them first (kvmfleet.libvirt.snapshot); "
                              "absent never deletes snapshots" % (dom.name(), snapshots, names))
        volumes = self._disk_volumes(dom) if self.params["remove_storage"] else []
        self._refuse_shared(dom, volumes)
        result["removed_volumes"] = [v.path() for v in volumes]
        if self.check:
            return result
        if dom.isActive():
            dom.destroy()
        flags = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
        if dom.isPersistent():
            dom.undefineFlags(flags)
        for vol in volumes:
            vol.delete(0)
        # The Ignition file is this module's own copy of the guest's config: it goes with the guest.
        for entry in parse_xml(before).iterfind("sysinfo[@type='fwcfg']/entry"):
            path = entry.get("file") or ""
            if os.path.dirname(path) == IGNITION_DIR and os.path.exists(path):
                os.unlink(path)
        return result

    # -- present / running / ... ---------------------------------------------------------------------

    def _config_device(self, name, kind, key):
        """A device element from the new persistent config (with the address libvirt gave it)."""
        dom = self.conn.lookupByName(name)
        root = parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        return self._find_device(root, kind, key)

    @staticmethod
    def _find_device(root, kind, key):
        model = DEVICE_KIND[kind]
        devices = root.find("devices")
        for elem in model.select(devices):
            if model.key_of(elem) == key:
                for alias in elem.findall("alias"):
                    elem.remove(alias)
                return elem
        return None

    def live_changes(self, plan, dom_running):
        """Split the plan into what a running guest takes live and what waits for the next boot."""
        live, later = [], []
        if not dom_running or plan.created:
            return live, later
        device_whats = set()
        for op in plan.device_ops:
            device_whats.update(c.what for c in op.changes)
            device_whats.add(DEVICE_KIND[op.kind].label(op.key))
            if op.op in ("attach", "detach", "update"):
                live.append(op)
            else:
                later.append((op.label, "%s: %s" % (op.label, "; ".join(c.describe() for c in op.changes))))
        for change in plan.changes:
            if change.what in device_whats:
                continue
            if change.what in _CONFIG_ONLY:
                continue  # kvmfleet's own metadata: read from the config, no reboot needed
            if change.live in (LIVE_MEMORY, LIVE_VCPUS, LIVE_SEED) or change.what in ("title", "description"):
                live.append(change)
            else:
                later.append((change.what, change.describe()))
        return live, later

    def pending_on_running_guest(self, dom, spec, ctx):
        """What the running guest differs in from the spec in ways only a restart applies.

        Planned against the live XML, so a change written to the config by an earlier run is still
        reported (and restarted for) until the guest has rebooted into it. The escape hatch, our
        metadata, and the CPU definition (libvirt expands host-model in the live XML) are left out.
        """
        live_spec = copy.deepcopy(spec)
        live_spec["xml_edits"] = []
        live_spec["tags"] = None
        for key in _LIVE_EXPANDED:
            live_spec.pop(key, None)
        live_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
        live, later = self.live_changes(plan_domain(live_xml, live_spec, ctx), True)
        return later, live

    def apply_live(self, dom, name, live):
        """Apply each live change; one the guest does not take is left to the next boot, and said so.

        The persistent config already holds every change at this point, so a refused or timed-out
        live operation (a vCPU unplug the guest ignores, say) is not a failure of the task.
        """
        for item in live:
            try:
                self._apply_one_live(dom, name, item)
            except libvirt.libvirtError as exc:
                what = item.label if getattr(item, "op", None) else item.what
                reason = "%s: not applied to the running guest (%s); applies at next boot" % (what, exc)
                self.live_failures.append(reason)
                self.module.warn(reason)

    @staticmethod
    def live_label(item):
        """How a live change is listed in applied_live (the same words in check mode)."""
        if getattr(item, "op", None):
            return "%s %s" % (item.op, item.label)
        if item.live == LIVE_MEMORY:
            return "current_memory: %s" % format_size(item.after * 1024)
        if item.live == LIVE_VCPUS:
            return "vcpus: %d" % item.after
        if item.live == LIVE_SEED:
            return "cloud-init seed media change"
        return item.what

    def _apply_one_live(self, dom, name, item):
        if getattr(item, "op", None):
            self._apply_device_op(dom, name, item)
        elif item.live == LIVE_MEMORY:
            dom.setMemoryFlags(item.after, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        elif item.live == LIVE_VCPUS:
            dom.setVcpusFlags(item.after, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        elif item.live == LIVE_SEED:
            self._refresh_seed_media(dom, name)
        else:
            kind = libvirt.VIR_DOMAIN_METADATA_TITLE if item.what == "title" else libvirt.VIR_DOMAIN_METADATA_DESCRIPTION
            dom.setMetadata(kind, item.after, None, None, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        self.applied_live.append(self.live_label(item))

    def _refresh_seed_media(self, dom, name):
        """New bytes in the same seed volume: eject and insert it again (same target, same address), so the
        guest sees a media change and reads the new content; libvirt skips a change to the same source."""
        dev = self.seed_dev
        elem = self._config_device(name, "disks", dev)
        address = elem.find("address")
        if address is not None:
            elem.remove(address)
        empty = copy.deepcopy(elem)
        empty.set("type", "file")
        for source in empty.findall("source"):
            empty.remove(source)
        dom.updateDeviceFlags(to_string(empty), libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE)
        dom.updateDeviceFlags(to_string(elem), libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def _apply_device_op(self, dom, name, op):
        live_flag = libvirt.VIR_DOMAIN_AFFECT_LIVE
        if op.op == "detach":
            live_root = parse_xml(dom.XMLDesc(0))
            elem = self._find_device(live_root, op.kind, op.key)
            if elem is not None:
                dom.detachDeviceFlags(to_string(elem), live_flag)
            return
        elem = self._config_device(name, op.kind, op.key)
        if op.op == "update":
            address = elem.find("address")
            if address is not None:
                elem.remove(address)
            dom.updateDeviceFlags(to_string(elem), live_flag)
            return
        try:
            dom.attachDeviceFlags(to_string(elem), live_flag)
        except libvirt.libvirtError:
            # The config's address may be taken in the running guest: let libvirt pick one live.
            address = elem.find("address")
            if address is None:
                raise
            elem.remove(address)
            dom.attachDeviceFlags(to_string(elem), live_flag)

    def present(self, dom, ctx):
        name = self.params["name"]
        spec = normalize_spec(self.params, ctx)
        for warning in check_references(self.conn, spec, self.check):
            self.module.warn(warning)
        volume_tasks = plan_storage(self.conn, spec, self.check)
        current_xml = None
        if dom is not None:
            current_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        plan = plan_domain(current_xml, spec, ctx)
        if plan.changed:
            validate_schema(plan.after)
        self.nvram_reset = nvram_reset_pending(plan.root)
        seed_task = None
        if spec.get("cloud_init"):
            self.seed_dev = spec["cloud_init"]["dev"]
            current_root = None if current_xml is None else parse_xml(current_xml)
            seed_task = plan_seed(self.conn, spec["cloud_init"],
                                  None if current_root is None else stored_hash(current_root, "cloud-init"), self.check)
        ignition = spec.get("ignition")
        if ignition is not None and not _is_local_uri(self.conn.getURI()):
            raise SpecError("ignition", "(hidden)", "the Ignition file is written on the host the module runs on; "
                                                    "use a local uri (qemu:///system) on the hypervisor")
        write_ignition = ignition is not None and not ignition_file_current(ignition["path"], ignition["config"])

        current_state = _state(dom)
        running = current_state in ("running", "paused")
        live, later = self.live_changes(plan, running)
        if running and not plan.created:
            known = {what for what, _text in later}
            pending, unapplied = self.pending_on_running_guest(dom, spec, ctx)
            later += [item for item in pending if item[0] not in known]
            # Live-capable changes the config already has but the running guest does not (an attach
            # or a vCPU unplug an earlier run could not apply live), other than those this run applies.
            applying = {self.live_label(item) for item in live}
            for item in unapplied:
                label = self.live_label(item)
                # The seed's hash lives in metadata the running guest's XML keeps from its boot.
                if label not in applying and getattr(item, "live", None) != LIVE_SEED:
                    later.append((label, "%s: in the config but not in the running guest; applies at next boot"
                                  % label))
        later = [text for _what, text in later]
        wanted_state = self.params["state"]
        restart = bool(later) and running and self.params["restart"] == "if_needed" and wanted_state != "shutoff"
        if seed_task is not None:
            self.actions.append(seed_task.describe())
        if write_ignition:
            self.actions.append("write Ignition config %s" % ignition["path"])
        for task in volume_tasks:
            self.actions.append(task.describe())
        if not self.check:
            self._apply(dom, name, plan, volume_tasks, live, running, seed_task, ignition if write_ignition else None)
            dom = self.conn.lookupByName(name)
        else:
            self._predict_live(live)
        if restart:
            self.actions.append("restart (to apply: %s)" % "; ".join(later))
            if not self.check:
                self._stop(dom, "restart: if_needed")
            self._start(dom)
        later.extend(self.live_failures)
        reboot_required = bool(later) and not restart and wanted_state != "shutoff"
        try:
            self.converge_state(dom, "shutoff" if plan.created else current_state, wanted_state)
        except libvirt.libvirtError as exc:
            if plan.created and not self.check:
                failed = self._undo_create(dom)
                raise UserError("guest %s was defined but could not start, so it was removed again along with "
                                  "the volumes and files this task created: %s; %s"
                                  % (name, exc, self.undo.describe_failure(failed))) from None
            raise
        autostart_changed = self._autostart(dom, plan.created)

        final_xml = plan.after
        if dom is not None and not self.check:
            final_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        changed = plan.changed or bool(volume_tasks) or bool(self.actions) or autostart_changed
        return {
            "changed": changed,
            "diff": plan.diff(),
            "created": plan.created,
            "changes": [c.describe() for c in plan.changes],
            "applied_live": self.applied_live,
            "reboot_required": reboot_required,
            "reasons": later if reboot_required else [],
            "actions": self.actions,
            "uuid": None if dom is None else dom.UUIDString(),
            "state": wanted_state if wanted_state != "present" else (
                "shutoff" if plan.created else current_state),
            "interfaces": interfaces_of(final_xml),
        }

    def _predict_live(self, live):
        self.applied_live.extend(self.live_label(item) for item in live)

    def _apply(self, dom, name, plan, volume_tasks, live, running, seed_task=None, ignition=None):
        """The writes, in order: seed, Ignition file, new volumes, the define, grown volumes. A failure
        takes back everything this run made (a grown volume stays grown: shrinking could lose data)."""
        undo = self.undo
        define_xml = plan.after
        try:
            if seed_task is not None:
                instance_id = None
                if seed_task.seed["derive_instance_id"]:
                    if dom is None:
                        # libvirt would pick a UUID at define; this picks it first, for the instance-id.
                        guest_uuid = str(uuid.uuid4())
                        define_xml = _with_uuid(plan.after, guest_uuid)
                    else:
                        guest_uuid = dom.UUIDString()
                    instance_id = instance_id_for(guest_uuid)
                write_seed(self.conn, seed_task, instance_id, undo)
            if ignition is not None:
                write_ignition_file(ignition["path"], ignition["config"], undo)
            for task in volume_tasks:
                if task.vol is None:
                    vol = task.pool.createXML(_volume_xml(task.name, task.size, task.fmt, backing=task.backing), 0)
                    undo.add("volume %s" % vol.path(), lambda vol=vol: vol.delete(0))
            if plan.changed:
                defined = self.conn.defineXMLFlags(define_xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
                if dom is None:
                    undo.add("guest %s" % name, lambda: defined.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM))
            for task in volume_tasks:
                if task.vol is not None:
                    self._grow(dom, task, running)
        except (libvirt.libvirtError, OSError) as exc:
            failed = undo.rollback()
            raise UserError("the change to guest %s failed: %s; %s" % (name, exc, undo.describe_failure(failed))) \
                from None
        except BaseException:
            undo.rollback()
            raise
        if running and live:
            self.apply_live(self.conn.lookupByName(name), name, live)

    def _undo_create(self, dom):
        """Take back a guest this run defined, with everything made for it: no half-made objects."""
        if dom.isActive():
            dom.destroy()
        return self.undo.rollback()

    def _grow(self, dom, task, running):
        if running and dom is not None:
            try:
                dom.blockResize(task.disk["_key"], task.size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                self.applied_live.append("grow disk %s to %s" % (task.disk["_key"], format_size(task.size)))
                return
            except libvirt.libvirtError:
                pass  # the disk is not attached live yet: grow the volume itself
        task.vol.resize(task.size, 0)

    def _autostart(self, dom, created):
        action = converge_autostart(dom, self.params["autostart"], self.check, dom is not None and not (created and self.check))
        if action:
            self.actions.append(action)
        return bool(action)

    def run(self):
        name = GUEST_NAME.parse(self.params["name"], "name")
        dom = _lookup_domain(self.conn, name)
        if self.params["state"] == "absent":
            return self.absent(dom)
        nics = self.params.get("interfaces")
        ctx = host_context(self.conn, name, need_macs=bool(nics) and any(not n.get("mac") for n in nics))
        return self.present(dom, ctx)


def _with_uuid(xml, guest_uuid):
    root = parse_xml(xml)
    node = root.find("uuid")
    if node is None:
        node = etree.Element("uuid")
        root.find("name").addnext(node)
    node.text = guest_uuid
    return to_string(root)


def run_module(module):
    """Entry point for plugins/modules/domain.py."""
    run_guarded(module, lambda conn: DomainRunner(module, conn).run(), "guest %s" % module.params["name"])
