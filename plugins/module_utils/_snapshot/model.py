# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: guest snapshots as pure functions over XML strings and dicts.

- ``normalize_snapshot``: the module's parameters checked (names, the options that go together);
- ``plan_disks``: which of the guest's disks a snapshot takes and how (internal: every writable disk
  must be qcow2; external: an overlay per disk next to it, named ``<stem>.<snapshot>.qcow2``);
- ``snapshot_xml``: the <domainsnapshot> document (it validates against domainsnapshot.rng);
- ``snapshot_facts``: what snapshot_info reports for one snapshot;
- ``retention``: which snapshots ``keep``/``prefix`` deletes (the oldest beyond N).
"""

from __future__ import annotations

import os
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import ObjectName
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.disks import guest_disks as read_disks
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import SNAPSHOT_MARK
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string

# libvirt keeps each snapshot's metadata as /var/lib/libvirt/qemu/snapshot/<guest>/<name>.xml.
SNAPSHOT_NAME = ObjectName("snapshot")


def normalize_snapshot(params):
    """The parameters as the runner uses them; SpecError naming the option for what cannot be."""
    spec = dict(params)
    state = spec.get("state") or "present"
    if spec.get("name") is not None:
        SNAPSHOT_NAME.parse(spec["name"], "name")
    elif state != "present" or spec.get("keep") is None:
        raise SpecError("name", None, "required (with state %s)" % state)
    if spec.get("keep") is not None:
        if state != "present":
            raise SpecError("keep", spec["keep"], "only with state: present (a new snapshot, then the oldest go)")
        if not spec.get("prefix"):
            raise SpecError("prefix", spec.get("prefix"), "required with keep: the snapshots counted are those whose "
                                                          "names start with it")
        if spec["keep"] < 1:
            raise SpecError("keep", spec["keep"], "expected at least 1 (the snapshot this task takes is kept)")
        if spec.get("name") is not None and not spec["name"].startswith(spec["prefix"]):
            raise SpecError("name", spec["name"], "must start with prefix %r, so that it counts among the kept"
                            % spec["prefix"])
    if spec.get("prefix") and ("/" in spec["prefix"] or "\n" in spec["prefix"]):
        raise SpecError("prefix", spec["prefix"], "a name prefix without '/' or newlines")
    if spec.get("location") == "external" and spec.get("memory"):
        raise SpecError("memory", True, "libvirt 9.0 cannot revert external snapshots, and an external memory image "
                                        "is only useful for that; take an internal snapshot (location: internal) "
                                        "to keep the running state")
    if spec.get("disk_only") and spec.get("memory"):
        raise SpecError("disk_only", True, "a disk-only snapshot has no memory state; drop memory or disk_only")
    if spec.get("children") and spec.get("children_only"):
        raise SpecError("children_only", True, "give children (the snapshot and its descendants) or children_only "
                                               "(its descendants only), not both")
    spec["location_asked"], spec["memory_asked"] = spec.get("location"), spec.get("memory")
    if spec.get("after_revert") and state != "current":
        raise SpecError("after_revert", spec["after_revert"], "only with state: current")
    spec["state"] = state
    spec["location"] = spec.get("location") or "internal"
    return spec


# ---- disks ------------------------------------------------------------------------------------------------

def guest_disks(domain_xml, volume_path=None):
    """[{dev, device, type, path, format, readonly}] of the guest's disks, in document order, from the one disk
    reader (_domain/disks.disk_facts). ``volume_path(pool, volume)`` gives the file of a disk declared by pool and
    volume (None: unknown; it is then named pool/volume)."""
    disks = []
    for disk in read_disks(domain_xml):
        path = disk["path"] or disk["name"]
        if disk["type"] == "volume" and disk["volume"]:
            path = (volume_path(disk["pool"], disk["volume"]) if volume_path else None) \
                or "%s/%s" % (disk["pool"], disk["volume"])
        disks.append({"dev": disk["dev"], "device": disk["device"] or "disk", "type": disk["type"], "path": path,
                      "format": disk["format"], "readonly": bool(disk["readonly"])})
    return disks


def overlay_path(path, snapshot):
    """The external overlay of a disk for a snapshot: next to it, ``<stem>.<snapshot>.qcow2``."""
    directory, base = os.path.split(path)
    stem = re.sub(r"\.(qcow2|img|raw)$", "", base)
    return os.path.join(directory, "%s.%s.qcow2" % (stem, snapshot))


def plan_disks(disks, spec):
    """[(dev, 'internal'|'external'|'no', overlay path or None)] for the snapshot of ``disks`` (guest_disks);
    SpecError naming the disk where the location cannot work (a raw disk for internal, a network disk for
    external)."""
    plan = []
    for disk in disks:
        if disk["device"] in ("cdrom", "floppy") or disk["readonly"] or not disk["path"]:
            plan.append((disk["dev"], "no", None))
            continue
        if spec["location"] == "internal":
            if disk["format"] != "qcow2":
                raise SpecError("location", "internal", "disk %s (%s) is %s: internal snapshots need qcow2 disks; "
                                                        "use location: external" % (disk["dev"], disk["path"],
                                                                                    disk["format"] or "raw"))
            plan.append((disk["dev"], "internal", None))
        else:
            if disk["type"] not in ("file", "volume") and not (disk["type"] == "block" and disk["path"]):
                raise SpecError("location", "external", "disk %s (%s) is a %s disk: external overlays are files; "
                                                        "snapshot it another way" % (disk["dev"], disk["path"], disk["type"]))
            plan.append((disk["dev"], "external", overlay_path(disk["path"], spec["name"])))
    if not any(how != "no" for _dev, how, _path in plan):
        raise SpecError("guest", spec["guest"], "the guest has no writable disk to snapshot")
    return plan


def snapshot_xml(spec, disk_plan, with_memory):
    """The <domainsnapshot> document for a new snapshot."""
    root = etree.Element("domainsnapshot")
    etree.SubElement(root, "name").text = spec["name"]
    if spec.get("description"):
        etree.SubElement(root, "description").text = spec["description"]
    if spec["location"] == "internal":
        etree.SubElement(root, "memory", snapshot="internal" if with_memory else "no")
    else:
        etree.SubElement(root, "memory", snapshot="no")
    disks = etree.SubElement(root, "disks")
    for dev, how, overlay in disk_plan:
        disk = etree.SubElement(disks, "disk", name=dev, snapshot=how)
        if how == "external":
            etree.SubElement(disk, "driver", type="qcow2")
            etree.SubElement(disk, "source", file=overlay)
    return to_string(root)


# ---- reading snapshots back ---------------------------------------------------------------------------

def snapshot_facts(xml, current=False):
    """One snapshot as snapshot_info reports it."""
    root = parse_xml(xml)
    memory = root.find("memory")
    memory_kind = None if memory is None else memory.get("snapshot")
    disks = []
    for disk in root.iterfind("disks/disk"):
        source = disk.find("source")
        disks.append({"dev": disk.get("name"), "snapshot": disk.get("snapshot"),
                      "file": None if source is None else source.get("file")})
    kinds = {d["snapshot"] for d in disks if d["snapshot"] not in (None, "no")}
    if memory_kind == "external":
        kinds.add("external")
    created = root.findtext("creationTime")
    return {
        "name": root.findtext("name"),
        "description": root.findtext("description"),
        "parent": root.findtext("parent/name"),
        "creation_time": int(created) if created and created.isdigit() else None,
        "state": root.findtext("state"),
        "memory": memory_kind in ("internal", "external"),
        "location": "external" if kinds == {"external"} else ("internal" if kinds <= {"internal"} else "mixed"),
        "current": bool(current),
        "disks": disks,
    }


def differences(facts, spec, with_memory):
    """What the task asks for that the existing snapshot of that name differs in (a snapshot's content
    cannot be edited: these are reported, never applied)."""
    diffs = []
    if spec.get("description") is not None and (facts["description"] or "") != spec["description"]:
        diffs.append("description: %r (asked: %r)" % (facts["description"] or "", spec["description"]))
    if spec.get("memory_asked") is not None and facts["memory"] != with_memory:
        diffs.append("memory: %s (asked: %s)" % (facts["memory"], with_memory))
    if spec.get("location_asked") and facts["location"] != spec["location_asked"]:
        diffs.append("location: %s (asked: %s)" % (facts["location"], spec["location_asked"]))
    return diffs


def retention(snapshots, prefix, keep):
    """Names to delete so that ``keep`` snapshots whose names start with ``prefix`` remain: the oldest
    first (by creation time, then name). ``snapshots`` is [facts]."""
    matching = sorted((s for s in snapshots if s["name"].startswith(prefix)),
                      key=lambda s: (s["creation_time"] or 0, s["name"]))
    return [s["name"] for s in matching[:max(0, len(matching) - keep)]]


# ---- our record of snapshot and revert times (to tell whether the disks moved on) ------------------------

def read_mark(domain_xml):
    """(snapshot name, time) from the guest's metadata (_metadata.SNAPSHOT_MARK: its own element, so other
    metadata, ours included, is left alone), or (None, None)."""
    mark = SNAPSHOT_MARK.read(parse_xml(domain_xml))
    if mark is None:
        return None, None
    try:
        return mark["snapshot"], int(mark["time"])
    except (TypeError, ValueError):
        return None, None
