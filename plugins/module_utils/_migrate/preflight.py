# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a migration needs, and whether the destination has it, as pure functions of the guest's
XML and plain facts about both hosts (``host_facts`` reads them). Every problem names what is missing;
the guest keeps running on the source when there is one.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

# Cache modes that keep no guest data in the source host's page cache (libvirt calls the others unsafe to
# migrate without copying storage).
SAFE_CACHE = ("none", "directsync")


def guest_needs(domain_xml):
    """{"memory_mib", "networks", "disks": [{dev, type, path, pool, volume, cache, readonly, shareable}],
    "cpu_mode", "cpu_xml"} of a guest."""
    root = parse_xml(domain_xml)
    memory = root.find("currentMemory")
    if memory is None:
        memory = root.find("memory")
    unit = (memory.get("unit") or "KiB") if memory is not None else "KiB"
    scale = {"KiB": 1, "k": 1, "KB": 1, "MiB": 1024, "M": 1024, "GiB": 1024 ** 2, "G": 1024 ** 2, "b": 1 / 1024,
             "bytes": 1 / 1024}.get(unit, 1)
    memory_mib = int(int(memory.text) * scale / 1024) if memory is not None else 0
    networks = sorted({s.get("network") for s in root.iterfind("devices/interface[@type='network']/source")
                       if s.get("network")})
    disks = []
    for disk in root.iterfind("devices/disk"):
        source, driver, target = disk.find("source"), disk.find("driver"), disk.find("target")
        if source is None or disk.get("device") in ("cdrom", "floppy") and not source.attrib:
            continue
        disks.append({
            "dev": None if target is None else target.get("dev"),
            "type": disk.get("type"),
            "path": source.get("file") or source.get("dev"),
            "pool": source.get("pool"),
            "volume": source.get("volume"),
            "cache": None if driver is None else driver.get("cache"),
            "readonly": disk.find("readonly") is not None or disk.get("device") in ("cdrom", "floppy"),
            "shareable": disk.find("shareable") is not None,
        })
    cpu = root.find("cpu")
    return {"memory_mib": memory_mib, "networks": networks, "disks": disks,
            "cpu_mode": None if cpu is None else (cpu.get("mode") or "custom"),
            "has_cpu_model": cpu is not None and cpu.find("model") is not None}


def preflight(needs, running, source, dest, options):
    """Problems that stop the migration (each a sentence naming what), and warnings.

    ``source``/``dest``: {"uuid", "name"}; ``dest`` also {"networks": {name: active}, "pools": {name: active},
    "free_mib", "paths": {path: bool, whether the destination has that file or volume}, "cpu_compatible":
    True/False/None}. ``options``: {"copy_storage": None|"all"|"incremental", "unsafe": bool}.
    """
    problems, warnings = [], []
    if source["uuid"] and source["uuid"] == dest["uuid"]:
        problems.append("the destination is the source: both report host UUID %s" % dest["uuid"])
    for network in needs["networks"]:
        if network not in dest["networks"]:
            problems.append("network %s: the destination has no network of that name" % network)
        elif not dest["networks"][network]:
            problems.append("network %s: not active on the destination" % network)
    copy = options.get("copy_storage")
    for disk in needs["disks"]:
        label = "disk %s (%s)" % (disk["dev"], disk["path"] or "%s/%s" % (disk["pool"], disk["volume"]))
        if disk["pool"]:
            if disk["pool"] not in dest["pools"]:
                problems.append("%s: the destination has no storage pool %s" % (label, disk["pool"]))
                continue
            if not dest["pools"][disk["pool"]]:
                problems.append("%s: storage pool %s is not active on the destination" % (label, disk["pool"]))
                continue
        if copy:
            continue
        if not dest["paths"].get(disk["path"] or "%s/%s" % (disk["pool"], disk["volume"])):
            problems.append("%s: not on the destination (no shared storage there); set copy_storage: all to copy it"
                            % label)
        elif running and not disk["readonly"] and not disk["shareable"] and disk["cache"] not in SAFE_CACHE \
                and not options.get("unsafe"):
            problems.append("%s: cache mode %s makes libvirt call a live migration unsafe (guest data in the source's "
                            "page cache); use cache: none, or set unsafe: true" % (label, disk["cache"] or "default"))
    if running:
        if dest["free_mib"] is not None and dest["free_mib"] < needs["memory_mib"]:
            problems.append("memory: the destination has %d MiB free, the guest needs %d MiB"
                            % (dest["free_mib"], needs["memory_mib"]))
        if needs["cpu_mode"] == "host-passthrough":
            warnings.append("the guest's CPU is host-passthrough: it migrates only between hosts with identical CPUs")
        elif dest.get("cpu_compatible") is False:
            problems.append("cpu: the destination's CPU cannot run the guest's CPU model (libvirt's CPU comparison)")
    return problems, warnings
