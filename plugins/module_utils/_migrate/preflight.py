# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a migration needs, and whether the destination has it, as pure functions of the guest's
XML and plain facts about both hosts (``host_facts`` reads them). Every problem names what is missing;
the guest keeps running on the source when there is one.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.disks import guest_disks
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import problem
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

# Cache modes that keep no guest data in the source host's page cache (libvirt calls the others unsafe to
# migrate without copying storage).
SAFE_CACHE = ("none", "directsync")
_SCALE = {"KiB": 1, "k": 1, "KB": 1, "MiB": 1024, "M": 1024, "GiB": 1024 ** 2, "G": 1024 ** 2, "b": 1 / 1024,
          "bytes": 1 / 1024}


def guest_needs(domain_xml):
    """{"memory_mib", "networks", "disks": [{dev, type, path, pool, volume, cache, readonly, shareable}],
    "cpu_mode", "has_cpu_model", "arch", "virt_type"} of a guest (its disks from the one disk reader, _domain/disks.disk_facts;
    a drive without media needs nothing)."""
    root = parse_xml(domain_xml)
    memory = root.find("currentMemory")
    if memory is None:
        memory = root.find("memory")
    unit = (memory.get("unit") or "KiB") if memory is not None else "KiB"
    memory_mib = int(int(memory.text) * _SCALE.get(unit, 1) / 1024) if memory is not None else 0
    networks = sorted({s.get("network") for s in root.iterfind("devices/interface[@type='network']/source")
                       if s.get("network")})
    keys = ("dev", "type", "path", "pool", "volume", "cache", "shareable")
    disks = [dict({key: disk[key] for key in keys}, readonly=not disk["writable"])
             for disk in guest_disks(root) if not disk["empty"]]
    cpu = root.find("cpu")
    os_type = root.find("os/type")
    return {"memory_mib": memory_mib, "networks": networks, "disks": disks,
            "cpu_mode": None if cpu is None else (cpu.get("mode") or "custom"),
            "has_cpu_model": cpu is not None and cpu.find("model") is not None,
            "arch": None if os_type is None else os_type.get("arch"), "virt_type": root.get("type")}


def _arch_problems(needs, arches, where):
    """The guest's architecture and kind against the destination's (``arches``: {arch: [domain types]} from its
    capabilities; None: not known)."""
    arch = needs.get("arch")
    if not arch or arches is None:
        return []
    if arch not in arches:
        return [problem("arch_missing", "arch: %s runs no %s guests (no QEMU emulator for them; the hypervisor role "
                                        "installs it with hypervisor_architectures: [%s]); it runs %s"
                        % (where, arch, arch, ", ".join(sorted(arches)) or "none"), arch=arch)]
    if needs.get("virt_type") == "kvm" and "kvm" not in arches[arch]:
        return [problem("kvm_missing", "virt_type: the guest is a KVM guest and %s offers no KVM for %s (only %s)"
                        % (where, arch, ", ".join(arches[arch]) or "nothing"), arch=arch)]
    return []


def preflight(needs, running, source, dest, options, where="the destination", copy_hint=True):
    """Problems that stop the move (each a _results.problem: its kind, a sentence naming what), and warnings.

    ``source``/``dest``: {"uuid", "name"}; ``dest`` also {"networks": {name: active}, "pools": {name: active},
    "free_mib", "paths": {path: bool, whether the destination has that file or volume}, "cpu_compatible":
    True/False/None, "architectures": {arch: [domain types]} or None}. ``options``: {"copy_storage": None|"all"|"incremental", "unsafe": bool}. ``where`` names
    the destination in the sentences ('this hypervisor' for a recovery, which copies nothing: no ``copy_hint``).
    """
    problems, warnings = [], []
    if source["uuid"] and source["uuid"] == dest["uuid"]:
        problems.append(problem("same_host", "%s is the source: both report host UUID %s" % (where, dest["uuid"])))
    problems.extend(_arch_problems(needs, dest.get("architectures"), where))
    for network in needs["networks"]:
        if network not in dest["networks"]:
            problems.append(problem("network_missing", "network %s: %s has no network of that name"
                                    % (network, where), network=network))
        elif not dest["networks"][network]:
            problems.append(problem("network_inactive", "network %s: not active on %s" % (network, where),
                                    network=network))
    copy = options.get("copy_storage")
    for disk in needs["disks"]:
        label = "disk %s (%s)" % (disk["dev"], disk["path"] or "%s/%s" % (disk["pool"], disk["volume"]))
        if disk["pool"]:
            if disk["pool"] not in dest["pools"]:
                problems.append(problem("pool_missing", "%s: %s has no storage pool %s" % (label, where, disk["pool"]),
                                        disk=disk["dev"], pool=disk["pool"]))
                continue
            if not dest["pools"][disk["pool"]]:
                problems.append(problem("pool_inactive", "%s: storage pool %s is not active on %s"
                                        % (label, disk["pool"], where), disk=disk["dev"], pool=disk["pool"]))
                continue
        if copy:
            continue
        if not dest["paths"].get(disk["path"] or "%s/%s" % (disk["pool"], disk["volume"])):
            tail = " (no shared storage there); set copy_storage: all to copy it" if copy_hint else " (not shared)"
            problems.append(problem("disk_not_shared", "%s: not on %s%s" % (label, where, tail), disk=disk["dev"]))
        elif running and not disk["readonly"] and not disk["shareable"] and disk["cache"] not in SAFE_CACHE \
                and not options.get("unsafe"):
            problems.append(problem("disk_unsafe_cache", "%s: cache mode %s makes libvirt call a live migration unsafe "
                                    "(guest data in the source's page cache); use cache: none, or set unsafe: true"
                                    % (label, disk["cache"] or "default"), disk=disk["dev"]))
    if running:
        if dest["free_mib"] is not None and dest["free_mib"] < needs["memory_mib"]:
            problems.append(problem("memory_short", "memory: %s has %d MiB free, the guest needs %d MiB"
                                    % (where, dest["free_mib"], needs["memory_mib"])))
        if needs["cpu_mode"] == "host-passthrough":
            warnings.append("the guest's CPU is host-passthrough: it migrates only between hosts with identical CPUs")
        elif dest.get("cpu_compatible") is False:
            problems.append(problem("cpu_incompatible", "cpu: %s's CPU cannot run the guest's CPU model (libvirt's CPU "
                                    "comparison)" % where))
    return problems, warnings
