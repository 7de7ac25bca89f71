# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the volumes a guest's disks declare (``size``, ``backing``).

``gather_disk_facts`` reads what libvirt has (the pool, the volume, the base image); the decisions
are the volume module's pure ``plan_volume`` over those facts (create empty, create a thin overlay,
grow, refuse a shrink, refuse a format or backing change), made per disk by ``plan_disk_volume``,
which is pure too and unit-tested without a daemon.
"""

from __future__ import annotations

import os
import posixpath

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import format_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import (
    find_pool,
    find_volume,
    pool_for_path,
    pool_type,
    volume_by_reference,
    volume_document,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.model import plan_volume
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.table import volume_facts
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml


class VolumeTask:
    """One volume to create or grow for a disk: ``plan`` is the volume module's VolumePlan."""

    def __init__(self, dev, pool, name, plan, vol=None):
        self.dev, self.pool, self.name, self.plan, self.vol = dev, pool, name, plan, vol

    @property
    def size(self):
        return self.plan.grow_to if self.vol is not None else (self.plan.capacity or 0)

    def describe(self):
        if self.vol is None:
            overlay = ", overlay on %s" % self.plan.backing[0] if self.plan.backing else ""
            return "create volume %s/%s (%s, %s%s)" % (self.pool["name"], self.name, format_size(self.size),
                                                       self.plan.format, overlay)
        return "grow volume %s/%s to %s" % (self.pool["name"], self.name, format_size(self.size))


def gather_disk_facts(conn, disk, check):
    """What libvirt has for a disk that names a volume (by pool and volume, or by a path in a pool's
    directory): None for other disks. {'pool': {name, obj, active, kind, path} or None, 'name',
    'volume': the existing volume's facts and object or None, 'base': the base image's facts or None}."""
    kind, attrs = disk["source"]
    attrs = dict(attrs)
    if kind == "volume":
        pool, name = find_pool(conn, attrs["pool"]), attrs["volume"]
        pool_name = attrs["pool"]
    elif kind == "file" and attrs.get("file"):
        pool, name = pool_for_path(conn, attrs["file"]), os.path.basename(attrs["file"])
        pool_name = None if pool is None else pool.name()
    else:
        return None
    facts = {"kind": kind, "path": attrs.get("file"), "name": name, "pool": None, "volume": None, "base": None}
    if pool is not None:
        active = bool(pool.isActive())
        target = parse_xml(pool.XMLDesc(0)).findtext("target/path")
        facts["pool"] = {"name": pool_name, "obj": pool, "active": active, "kind": pool_type(pool), "path": target}
        vol = find_volume(pool, name) if active else None
        if vol is not None:
            facts["volume"] = dict(volume_facts(volume_document(vol)), obj=vol)
    elif kind == "volume":
        facts["pool"] = {"name": pool_name, "obj": None, "active": False, "kind": None, "path": None}
    if disk.get("backing") is not None and facts["pool"] is not None and facts["pool"]["active"]:
        try:
            facts["base"] = volume_facts(volume_by_reference(conn, pool, disk["backing"], "backing").XMLDesc(0))
        except SpecError as exc:
            if facts["volume"] is None and not check:
                raise exc.under("disks[%d]." % disk["_index"]) from None
            if facts["volume"] is None:  # check mode: an earlier task of the play makes the base image
                reference = disk["backing"]
                path = reference if reference.startswith("/") else posixpath.join(target or "", reference)
                facts["base"] = {"path": path, "capacity": None, "format": "qcow2", "assumed": True}
    return facts


def plan_disk_volume(disk, facts, check):
    """(VolumeTask or None, the disk's format or None) for one disk, from its facts. Pure.

    The format is the existing volume's (or the new one's) where the disk declares none, so the
    guest's driver type matches the image. Raises SpecError naming the disk's option.
    """
    option = "disks[%d]." % disk["_index"]
    if facts is None:
        return None, None
    pool, vol = facts["pool"], facts["volume"]
    wants_volume = (disk.get("size") is not None or disk.get("backing") is not None) and disk["device"] == "disk"
    if pool is not None and not pool["active"]:
        if check:  # the pool does not exist or run yet: an earlier task of the play makes it
            return None, ("qcow2" if wants_volume and disk.get("format") is None else None)
        raise SpecError(option + "pool", pool["name"], "the pool is not active; start it first")
    spec = {"name": facts["name"], "size": disk.get("size"), "format": disk.get("format"), "backing": disk.get("backing"),
            "backing_path": None, "clone": None, "src": None, "url": None, "owner": None, "group": None, "mode": None}
    if vol is not None:
        if spec["backing"] is not None:
            spec["backing_path"] = (facts["base"] or {}).get("path") or vol["backing"]
        if disk["device"] != "disk":
            spec["format"] = None  # a cdrom's driver type is not the image's format
        try:
            plan = plan_volume(vol, spec, pool_kind=pool["kind"], disk=True)
        except SpecError as exc:
            raise exc.under(option) from None
        fmt = vol["format"] if disk.get("format") is None and disk["device"] == "disk" else None
        task = VolumeTask(disk["_key"], pool, facts["name"], plan, vol["obj"]) if plan.grow_to else None
        return task, fmt
    if not wants_volume:
        if facts["kind"] == "volume":
            raise SpecError(option + "volume", facts["name"], "pool %s has no such volume; give size to create it"
                            % pool["name"])
        return None, None
    if pool is None:
        key = "backing" if disk.get("backing") is not None else "size"
        raise SpecError(option + key, disk.get(key) if key == "backing" else format_size(disk["size"]),
                        "cannot create %s: its directory is not a storage pool's; declare pool and volume, or define "
                        "a pool for that directory" % facts["path"])
    try:
        plan = plan_volume(None, spec, facts["base"], pool["kind"], disk=True)
    except SpecError as exc:
        raise exc.under(option) from None
    return VolumeTask(disk["_key"], pool, facts["name"], plan), plan.format or "raw"


def plan_storage(conn, spec, check, named=()):
    """(volume tasks, {dev: format}) for a guest's disks. Refuses a shrink, before anything changes. A volume of a
    pool that is missing or stopped is refused, unless the guest names it already (``named``: (pool, volume)s) and
    the disk asks nothing of it (no size, no base image): converging a guest as it is changes nothing there."""
    tasks, formats = [], {}
    for index, disk in enumerate(spec.get("disks") or []):
        disk = dict(disk, _index=index)
        facts = gather_disk_facts(conn, disk, check)
        kind, attrs = disk["source"]
        if facts is not None and facts["pool"] is not None and not facts["pool"]["active"] and kind == "volume" and \
                (dict(attrs)["pool"], dict(attrs)["volume"]) in named and disk.get("size") is None and \
                disk.get("backing") is None:
            continue
        task, fmt = plan_disk_volume(disk, facts, check)
        if task is not None:
            tasks.append(task)
        if fmt is not None:
            formats[disk["_key"]] = fmt
    return tasks, formats
