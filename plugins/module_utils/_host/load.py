# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a hypervisor and its running guests use, sampled over a window (host_info's ``sample_seconds``).

Each reading is one bulk stats call for every running guest (``virConnectGetAllDomainStats``: CPU time, the
resident memory of its QEMU process, the bytes its disks read and wrote and its interfaces received and sent) and
the host's own CPU and memory counters; on a local connection also the pressure-stall counters (PSI) of the host
(``/proc/pressure``) and of each guest's cgroup. ``load_series`` turns the readings into per-interval figures (pure,
unit-tested): a guest's CPU use in host CPUs' worth of time (1.0 = one CPU busy), its memory in MiB, its disk and
network rates in bytes per second; the host's CPU use as a share of all its CPUs and its used memory; pressure as
the share of the interval some task was stalled. A guest that started or stopped during the window has the samples
it was running for, aligned to the end of the window.
"""

from __future__ import annotations

import os
import time

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt

PRESSURE_KINDS = ("cpu", "memory", "io")
# where libvirt's QEMU driver (qemu:///system) keeps each running guest's pid
QEMU_PID_DIR = "/run/libvirt/qemu"
# the guest counters a reading sums over all its disks and interfaces, and the rate load_series makes of each
RATES = (("rd_bytes", "block", "rd.bytes", "disk_read_bytes_per_s"),
         ("wr_bytes", "block", "wr.bytes", "disk_write_bytes_per_s"),
         ("rx_bytes", "net", "rx.bytes", "net_rx_bytes_per_s"),
         ("tx_bytes", "net", "tx.bytes", "net_tx_bytes_per_s"))


def guest_counters(stats):
    """A guest's counters from its bulk stats: CPU ns, resident KiB, and its disks' and interfaces' byte counters
    summed (None where libvirt gave none of a kind's)."""
    counters = {"cpu_ns": stats.get("cpu.time"), "rss_kib": stats.get("balloon.rss")}
    for key, group, field, _rate in RATES:
        count = stats.get(group + ".count")
        values = [stats.get("%s.%d.%s" % (group, index, field)) for index in range(count or 0)]
        counters[key] = None if count is None or any(v is None for v in values) else sum(values)
    return counters


def parse_pressure(text):
    """The ``total`` (microseconds stalled) of the ``some`` line of a PSI file; None when it has none."""
    for line in (text or "").splitlines():
        words = line.split()
        if words and words[0] == "some":
            for word in words[1:]:
                if word.startswith("total="):
                    try:
                        return int(word[len("total="):])
                    except ValueError:
                        return None
    return None


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def read_pressure(directory, names):
    """{kind: total µs} from the PSI files ``<directory>/<name>`` (``names``: kind to file name); None when the
    files are not there (a kernel without PSI, cgroup v1)."""
    found = {}
    for kind, name in names.items():
        found[kind] = parse_pressure(_read_text(os.path.join(directory, name)))
    return found if any(v is not None for v in found.values()) else None


def cgroup_dir(proc_cgroup, root="/sys/fs/cgroup"):
    """The unified (v2) cgroup directory of a guest from its QEMU process's ``/proc/<pid>/cgroup``, one level above
    libvirt's ``emulator``/``vcpuN`` children (so it covers the vCPUs), or None (no unified hierarchy)."""
    path = None
    for line in (proc_cgroup or "").splitlines():
        if line.startswith("0::"):
            path = line[3:].strip()
    if not path:
        return None
    parts = [p for p in path.split("/") if p]
    while parts and (parts[-1] in ("emulator", "libvirt") or parts[-1].startswith("vcpu")):
        parts.pop()
    for mount in (root, os.path.join(root, "unified")):
        candidate = os.path.join(mount, *parts) if parts else mount
        if parts and os.path.exists(os.path.join(candidate, "cpu.pressure")):
            return candidate
    return None


def is_local(uri, driver):
    """Whether the connection's daemon runs on this machine (a QEMU URI without a host): only then are this
    machine's /proc and cgroups the hypervisor's."""
    if driver != "QEMU" or "://" not in (uri or ""):
        return False
    rest = uri.split("://", 1)[1]
    return rest.startswith("/")


def _guest_pressure(name):
    pid = (_read_text(os.path.join(QEMU_PID_DIR, name + ".pid")) or "").strip()
    if not pid.isdigit():
        return None
    directory = cgroup_dir(_read_text("/proc/%s/cgroup" % pid))
    if directory is None:
        return None
    return read_pressure(directory, {kind: kind + ".pressure" for kind in PRESSURE_KINDS})


def _free_hugepages(conn, sizes):
    """{size KiB (str): free pages summed over NUMA cells} (virNodeGetFreePages); None where libvirt cannot say."""
    if not sizes:
        return {}
    try:
        cells = conn.getInfo()[4] or 1
        per_cell = conn.getFreePages([int(s) for s in sizes], 0, cells, 0)
    except (libvirt.libvirtError, AttributeError, TypeError):
        return None
    free = {}
    for pages in (per_cell or {}).values():
        for size, count in pages.items():
            free[str(size)] = free.get(str(size), 0) + count
    return free or None  # asked for sizes and told of none: libvirt cannot say


def read(conn, local=None, hugepage_sizes=()):
    """One reading: {"t", "host_cpu": {...ns}, "host_memory": {...KiB}, "host_pressure": {kind: µs} or None,
    "guests": {name: {"cpu_ns", "rss_kib", "rd_bytes", "wr_bytes", "rx_bytes", "tx_bytes", "pressure"}}}.
    ``local``: whether to read this machine's PSI files (default: when the connection is local)."""
    if local is None:
        local = is_local(conn.getURI(), conn.getType())
    flags = (libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_BLOCK
             | libvirt.VIR_DOMAIN_STATS_INTERFACE)
    guests = {}
    for dom, stats in conn.getAllDomainStats(flags, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE):
        guests[dom.name()] = guest_counters(stats)
        guests[dom.name()]["pressure"] = _guest_pressure(dom.name()) if local else None
    try:
        host_cpu = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
    except libvirt.libvirtError:
        host_cpu = {}
    try:
        host_memory = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
    except libvirt.libvirtError:
        host_memory = {}
    host_pressure = read_pressure("/proc/pressure", {k: k for k in PRESSURE_KINDS}) if local else None
    reading = {"t": time.monotonic(), "host_cpu": host_cpu, "host_memory": host_memory, "host_pressure": host_pressure,
               "guests": guests}
    if hugepage_sizes is not None:
        reading["hugepages_free"] = _free_hugepages(conn, hugepage_sizes)
    return reading


def sample(conn, seconds, interval, hugepage_sizes=()):
    """Readings every ``interval`` seconds for ``seconds`` (at least two), as load_series reads them."""
    count = max(2, int(seconds // interval) + 1)
    local = is_local(conn.getURI(), conn.getType())
    readings = []
    for index in range(count):
        if index:
            time.sleep(interval)
        readings.append(read(conn, local, hugepage_sizes if index == count - 1 else None))
    return readings


def _rate(before, after, elapsed):
    if before is None or after is None or elapsed <= 0:
        return None
    return int(round(max(after - before, 0) / elapsed))


def _stall(before, after, elapsed):
    """The share of ``elapsed`` seconds some task stalled, from two PSI totals (µs)."""
    if before is None or after is None or elapsed <= 0:
        return None
    return round(min(max(after - before, 0) / (elapsed * 1e6), 1.0), 4)


def _pressure_step(series, before, after, elapsed):
    """Appends one interval's stall shares to ``series`` ({kind: [...]}; None for an unknown one)."""
    for kind in PRESSURE_KINDS:
        series[kind].append(_stall((before or {}).get(kind), (after or {}).get(kind), elapsed))


def _known(series):
    """``series`` ({kind: [...]}), or None when not one of its figures is known (no PSI there)."""
    return series if any(v is not None for values in series.values() for v in values) else None


def load_series(readings):
    """{"interval_s", "samples", "host": {"cpu_use": [share], "memory_used_mib": [MiB], "pressure": {kind: [share]}
    or None}, "guests": {name: {"cpu": [CPUs' worth], "memory_used_mib": [MiB], "disk_read_bytes_per_s": [...],
    "disk_write_bytes_per_s", "net_rx_bytes_per_s", "net_tx_bytes_per_s", "pressure": {kind: [share]} or None}},
    "hugepages_free": {size KiB: pages} or None} from readings (oldest first). Keys the readings have no counters for
    are left out (readings of an older shape give the older result)."""
    samples = len(readings) - 1
    result = {"samples": max(samples, 0), "interval_s": None, "host": {"cpu_use": [], "memory_used_mib": []}, "guests": {}}
    pressured = bool(readings) and "host_pressure" in readings[-1]
    if pressured:
        result["host"]["pressure"] = {kind: [] for kind in PRESSURE_KINDS}
    if readings and "hugepages_free" in readings[-1]:
        result["hugepages_free"] = readings[-1]["hugepages_free"]
    if samples < 1:
        if pressured:
            result["host"]["pressure"] = None
        return result
    result["interval_s"] = round((readings[-1]["t"] - readings[0]["t"]) / samples, 3)
    for before, after in zip(readings, readings[1:]):
        elapsed = after["t"] - before["t"]
        busy = _host_busy(before["host_cpu"], after["host_cpu"])
        result["host"]["cpu_use"].append(busy)
        memory = after["host_memory"]
        used = None
        if memory.get("total") is not None and memory.get("free") is not None:
            used = (memory["total"] - memory["free"] - memory.get("buffers", 0) - memory.get("cached", 0)) // 1024
        result["host"]["memory_used_mib"].append(used)
        if pressured:
            _pressure_step(result["host"]["pressure"], before.get("host_pressure"), after.get("host_pressure"), elapsed)
        for name, now in after["guests"].items():
            then = before["guests"].get(name)
            if then is None or then.get("cpu_ns") is None or now.get("cpu_ns") is None or elapsed <= 0:
                continue
            series = result["guests"].get(name)
            if series is None:
                series = result["guests"][name] = {"cpu": [], "memory_used_mib": []}
                for key, _group, _field, rate in RATES:
                    if key in now:
                        series[rate] = []
                if "pressure" in now:
                    series["pressure"] = {kind: [] for kind in PRESSURE_KINDS}
            series["cpu"].append(round(max(now["cpu_ns"] - then["cpu_ns"], 0) / 1e9 / elapsed, 4))
            series["memory_used_mib"].append(now["rss_kib"] // 1024 if now.get("rss_kib") is not None else None)
            for key, _group, _field, rate in RATES:
                if rate in series:
                    series[rate].append(_rate(then.get(key), now.get(key), elapsed))
            if "pressure" in series:
                _pressure_step(series["pressure"], then.get("pressure"), now.get("pressure"), elapsed)
    if pressured:
        result["host"]["pressure"] = _known(result["host"]["pressure"])
    for series in result["guests"].values():
        if "pressure" in series:
            series["pressure"] = _known(series["pressure"])
    return result


def _host_busy(before, after):
    """The share of the host's CPU time that was not idle between two readings of its counters (None: unknown)."""
    keys = ("kernel", "user", "idle", "iowait")
    if not all(k in before and k in after for k in ("kernel", "user", "idle")):
        return None
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    total = sum(delta.values())
    return round(1 - (delta["idle"] + delta["iowait"]) / float(total), 4) if total > 0 else None
