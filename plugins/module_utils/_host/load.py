# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a hypervisor and its running guests use, sampled over a window (host_info's ``sample_seconds``).

Each reading is one bulk stats call for every running guest (``virConnectGetAllDomainStats``: CPU time and the
resident memory of its QEMU process) and the host's own CPU and memory counters. ``load_series`` turns the
readings into per-interval figures (pure, unit-tested): a guest's CPU use in host CPUs' worth of time (1.0 = one
CPU busy), its memory in MiB; the host's CPU use as a share of all its CPUs and its used memory. A guest that
started or stopped during the window has the samples it was running for, aligned to the end of the window.
"""

from __future__ import annotations

import time

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt


def read(conn):
    """One reading: {"t", "host_cpu": {...ns}, "host_memory": {...KiB}, "guests": {name: {"cpu_ns", "rss_kib"}}}."""
    flags = libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
    guests = {}
    for dom, stats in conn.getAllDomainStats(flags, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE):
        guests[dom.name()] = {"cpu_ns": stats.get("cpu.time"), "rss_kib": stats.get("balloon.rss")}
    try:
        host_cpu = conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0)
    except libvirt.libvirtError:
        host_cpu = {}
    try:
        host_memory = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
    except libvirt.libvirtError:
        host_memory = {}
    return {"t": time.monotonic(), "host_cpu": host_cpu, "host_memory": host_memory, "guests": guests}


def sample(conn, seconds, interval):
    """Readings every ``interval`` seconds for ``seconds`` (at least two), as load_series reads them."""
    count = max(2, int(seconds // interval) + 1)
    readings = []
    for index in range(count):
        if index:
            time.sleep(interval)
        readings.append(read(conn))
    return readings


def load_series(readings):
    """{"interval_s", "samples", "host": {"cpu_use": [share], "memory_used_mib": [MiB]}, "guests": {name: {"cpu":
    [CPUs' worth], "memory_used_mib": [MiB]}}} from readings (oldest first)."""
    samples = len(readings) - 1
    result = {"samples": max(samples, 0), "interval_s": None, "host": {"cpu_use": [], "memory_used_mib": []}, "guests": {}}
    if samples < 1:
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
        for name, now in after["guests"].items():
            then = before["guests"].get(name)
            if then is None or then.get("cpu_ns") is None or now.get("cpu_ns") is None or elapsed <= 0:
                continue
            series = result["guests"].setdefault(name, {"cpu": [], "memory_used_mib": []})
            series["cpu"].append(round(max(now["cpu_ns"] - then["cpu_ns"], 0) / 1e9 / elapsed, 4))
            series["memory_used_mib"].append(now["rss_kib"] // 1024 if now.get("rss_kib") is not None else None)
    return result


def _host_busy(before, after):
    """The share of the host's CPU time that was not idle between two readings of its counters (None: unknown)."""
    keys = ("kernel", "user", "idle", "iowait")
    if not all(k in before and k in after for k in ("kernel", "user", "idle")):
        return None
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in keys}
    total = sum(delta.values())
    return round(1 - (delta["idle"] + delta["iowait"]) / float(total), 4) if total > 0 else None
