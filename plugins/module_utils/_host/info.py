# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: facts about a hypervisor.

``parse_capabilities`` and ``summarize_*`` are pure functions over libvirt's XML and plain values,
unit-tested without a daemon; ``gather_host_facts`` is the only function that calls libvirt.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    if_supported,
    libvirt,
    libvirt_error_code,
    libvirt_state_name,
    unsupported,
    version_string,
    xml_with,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.arch import parse_guest_arches
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.maintenance import NAME as MAINTENANCE_NAME
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.maintenance import parse_mark
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.model import managed_spec as network_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.model import read_pool_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

POOL_STATE_NAMES = {0: "inactive", 1: "building", 2: "running", 3: "degraded", 4: "inaccessible"}


def _int(text, default=None):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def _kib_to_mib(kib):
    return None if kib is None else kib // 1024


def parse_capabilities(xml):
    """Host CPU, NUMA, hugepages, IOMMU and the guest domain types from ``virConnectGetCapabilities``."""
    root = parse_xml(xml)
    cpu = root.find("host/cpu")
    topology = cpu.find("topology") if cpu is not None else None
    facts = {
        "uuid": root.findtext("host/uuid"),
        "cpu": {
            "arch": cpu.findtext("arch") if cpu is not None else None,
            "model": cpu.findtext("model") if cpu is not None else None,
            "vendor": cpu.findtext("vendor") if cpu is not None else None,
            "sockets": _int(topology.get("sockets")) if topology is not None else None,
            "dies": _int(topology.get("dies")) if topology is not None else None,
            "cores": _int(topology.get("cores")) if topology is not None else None,
            "threads": _int(topology.get("threads")) if topology is not None else None,
            "features": sorted(f.get("name") for f in cpu.iterfind("feature")) if cpu is not None else [],
        },
        "iommu": root.find("host/iommu") is not None and root.find("host/iommu").get("support") == "yes",
        "numa_cells": [],
        "hugepages": {},
        "guest_domain_types": {},
    }
    for cell in root.iterfind("host/topology/cells/cell"):
        pages = {}
        for page in cell.iterfind("pages"):
            size_kib = _int(page.get("size"))
            if size_kib and size_kib != 4:  # 4 KiB pages are ordinary memory, not hugepages
                pages[size_kib] = _int(page.text, 0)
        facts["numa_cells"].append({
            "id": _int(cell.get("id")),
            "memory_mib": _kib_to_mib(_int(cell.findtext("memory"))),
            "cpus": [_int(c.get("id")) for c in cell.iterfind("cpus/cpu")],
            "hugepages": {str(k): v for k, v in sorted(pages.items())},
        })
        for size_kib, count in pages.items():
            facts["hugepages"][str(size_kib)] = facts["hugepages"].get(str(size_kib), 0) + count
    for guest in root.iterfind("guest"):
        arch = guest.find("arch")
        if arch is None:
            continue
        types = sorted({d.get("type") for d in arch.iterfind("domain")})
        facts["guest_domain_types"][arch.get("name")] = types
    # every architecture the hypervisor runs, how (kvm or emulation), with its emulator and machine types
    facts["architectures"] = parse_guest_arches(root)
    return facts


def summarize_domain_states(states):
    """Count guests by state name; ``states`` is an iterable of virDomainState integers."""
    counts = {"total": 0}
    for state in states:
        name = libvirt_state_name(state)
        counts[name] = counts.get(name, 0) + 1
        counts["total"] += 1
    return counts


def kvm_status(capabilities, arch, domcaps_error=None):
    """Whether KVM acceleration is usable for ``arch``, and if not, why.

    ``capabilities`` is the output of :func:`parse_capabilities`; ``domcaps_error`` the message
    libvirt gave when asked for KVM domain capabilities (None if it answered).
    """
    types = capabilities["guest_domain_types"].get(arch, [])
    if "kvm" in types and domcaps_error is None:
        return {"usable": True, "reason": None}
    if domcaps_error:
        reason = domcaps_error
    elif not types:
        reason = "libvirt reports no QEMU emulator for arch %s" % arch
    else:
        reason = ("libvirt offers only %s guests for %s: /dev/kvm is missing or not usable by QEMU "
                  "(check that virtualization is enabled in the firmware and the kvm module is loaded)"
                  % ("/".join(types), arch))
    return {"usable": False, "reason": reason}


def _ksm(conn):
    """Kernel samepage merging, from the node memory parameters (None where libvirt cannot say)."""
    try:
        params = conn.getMemoryParameters(0)
    except libvirt.libvirtError:
        return None
    # libvirt exposes the shm_* knobs of /sys/kernel/mm/ksm; 'run' itself is not among them.
    return {
        "pages_shared": params.get("shm_pages_shared"),
        "pages_sharing": params.get("shm_pages_sharing"),
        "pages_to_scan": params.get("shm_pages_to_scan"),
        "full_scans": params.get("shm_full_scans"),
        "merge_across_nodes": params.get("shm_merge_across_nodes"),
        "active": bool(params.get("shm_pages_sharing")),
    }


def _guests_with_jobs(domains):
    """Names of running guests with a job in progress (a migration, a save, a block job's copy): what a
    daemon restart would break."""
    names = []
    for dom in domains:
        try:
            if dom.isActive() and dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
                names.append(dom.name())
        except libvirt.libvirtError:
            continue  # gone meanwhile
    return sorted(names)


def _domcaps_error(conn, arch):
    """libvirt's refusal of KVM domain capabilities for ``arch``, or None. A read-only connection may not ask
    (OPERATION_DENIED) and some drivers cannot: then the capabilities' domain types alone decide (kvm_status)."""
    try:
        conn.getDomainCapabilities(None, arch, None, "kvm", 0)
    except libvirt.libvirtError as exc:
        if unsupported(exc) or libvirt_error_code(exc) == libvirt.VIR_ERR_OPERATION_DENIED:
            return None
        return str(exc)
    return None


def _memory(conn, total_mib):
    """The host's memory in MiB; what the driver cannot say is None (the total then comes from virNodeGetInfo)."""
    mem = if_supported(conn.getMemoryStats, libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0, default={})
    free = if_supported(conn.getFreeMemory) if mem.get("free") is None else None
    return {
        "total_mib": _kib_to_mib(mem.get("total")) if mem.get("total") is not None else total_mib,
        "free_mib": _kib_to_mib(mem.get("free")) if free is None else free // (1024 * 1024),
        "buffers_mib": _kib_to_mib(mem.get("buffers")),
        "cached_mib": _kib_to_mib(mem.get("cached")),
    }


def _read_back(reader, xml):
    """An object's friendly spec (valid input for its module), without the UUID libvirt picked; None for a kind the
    module does not manage (a hostdev network, a gluster pool)."""
    spec = reader(xml)
    if spec is None:
        return None
    spec.pop("uuid", None)
    return spec


def _networks(conn, maintenance):
    """The host's networks, and its maintenance mark (a network of ours, _host/maintenance.py) into
    ``maintenance``."""
    result = []
    for net in conn.listAllNetworks(0):
        if net.name() == MAINTENANCE_NAME:
            maintenance.update(parse_mark(net.XMLDesc(0)))
            continue
        try:
            bridge = net.bridgeName()
        except libvirt.libvirtError:
            bridge = None
        result.append({
            "name": net.name(),
            "active": bool(net.isActive()),
            "autostart": bool(net.autostart()),
            "persistent": bool(net.isPersistent()),
            "bridge": bridge,
            "spec": _read_back(network_spec, xml_with(net, ["VIR_NETWORK_XML_INACTIVE"])),
        })
    return sorted(result, key=lambda n: n["name"])


def _pools(conn):
    result = []
    for pool in conn.listAllStoragePools(0):
        state, capacity, allocation, available = pool.info()
        root = parse_xml(pool.XMLDesc(0))
        result.append({
            "name": pool.name(),
            "type": root.get("type"),
            "state": POOL_STATE_NAMES.get(state, "unknown"),
            "active": bool(pool.isActive()),
            "autostart": bool(pool.autostart()),
            "path": root.findtext("target/path"),
            "capacity_bytes": capacity,
            "allocation_bytes": allocation,
            "available_bytes": available,
            "spec": _read_back(read_pool_spec, xml_with(pool, ["VIR_STORAGE_XML_INACTIVE"])),
        })
    return sorted(result, key=lambda p: p["name"])


def gather_host_facts(conn):
    """All host facts in one pass over the connection."""
    caps = parse_capabilities(conn.getCapabilities())
    arch = caps["cpu"]["arch"]
    model, memory_mib, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
    domains = conn.listAllDomains(0)
    maintenance = {"cordoned": False, "reason": None, "since": None}
    networks = _networks(conn, maintenance)
    return {
        "hostname": conn.getHostname(),
        "uri": conn.getURI(),
        "libvirt_version": version_string(conn.getLibVersion()),
        "hypervisor": conn.getType(),
        "hypervisor_version": version_string(conn.getVersion()),
        "uuid": caps["uuid"],
        "cpu": dict(caps["cpu"], count=cpus, mhz=mhz, numa_nodes=nodes),
        "numa_cells": caps["numa_cells"],
        "memory": _memory(conn, memory_mib),
        "hugepages": caps["hugepages"],
        "iommu": caps["iommu"],
        "kvm": kvm_status(caps, arch, _domcaps_error(conn, arch)),
        "guest_domain_types": caps["guest_domain_types"],
        "architectures": caps["architectures"],
        "ksm": _ksm(conn),
        "domains": summarize_domain_states(d.state(0)[0] for d in domains),
        "guests_with_jobs": _guests_with_jobs(domains),
        "networks": networks,
        "maintenance": maintenance,
        "pools": _pools(conn),
    }
