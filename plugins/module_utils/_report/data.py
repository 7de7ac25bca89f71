# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private (controller side): the fleet report's data, shaped from what the playbooks already read.

``report_data`` takes the placement view (``placement_view``: hosts with capacity and maintenance, guests with
their memory, vCPUs and recorded origin), the registered ``host_info`` results (sampled: ``load``), the
``domain_info`` results and each hypervisor's fleet plan (the ``guests`` role in check mode), and returns one
plain dict the page is drawn from. Pure and unit-tested; numbers are made compact here (a fleet of 1,000 guests
with 120 samples each stays a few MB): series are rounded to three significant figures, and a series whose
values are all equal is one number.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.placement import loop_item

# A guest's series in the page: short key -> (host_info load key, scale). CPU in % of one host CPU, memory in MiB,
# disk and network rates in KiB/s.
GUEST_SERIES = (("cpu", "cpu", 100.0), ("mem", "memory_used_mib", 1.0),
                ("rd", "disk_read_bytes_per_s", 1 / 1024.0), ("wr", "disk_write_bytes_per_s", 1 / 1024.0),
                ("rx", "net_rx_bytes_per_s", 1 / 1024.0), ("tx", "net_tx_bytes_per_s", 1 / 1024.0))
PRESSURE_KINDS = ("cpu", "memory", "io")
PAGE_KIB = 4


def compact(value):
    """A figure for the page: three significant figures, an int when it is whole (None stays None)."""
    if value is None:
        return None
    magnitude = abs(value)
    if magnitude >= 100:
        rounded = round(value)
    elif magnitude >= 10:
        rounded = round(value, 1)
    elif magnitude >= 1:
        rounded = round(value, 2)
    else:
        rounded = round(value, 3)
    return int(rounded) if float(rounded).is_integer() else rounded


def packed(values, length, scale=1.0):
    """``values`` scaled and compacted, padded at the front with None to ``length`` (a guest that started during
    the window has its later samples); one number when they are all equal, None when there are none."""
    values = list(values or [])[-length:] if length else list(values or [])
    out = [None] * (length - len(values)) + [compact(v * scale) if v is not None else None for v in values]
    if not out or all(v is None for v in out):
        return None
    if all(v == out[0] for v in out):
        return out[0]
    return out


def mean(values):
    known = [v for v in values or [] if v is not None]
    return sum(known) / float(len(known)) if known else None


def _by_item(results):
    return {loop_item(r.get("item")): r for r in results or []}


def _error(result):
    if not result:
        return "not read"
    if result.get("failed") or result.get("unreachable"):
        return result.get("msg") or "failed"
    return None


def _hugepages(info, load):
    """[{"size_kib", "total", "free"}] for each hugepage size the host has (free: None when unknown)."""
    free = (load or {}).get("hugepages_free")
    rows = []
    for size, total in sorted((info.get("hugepages") or {}).items(), key=lambda item: int(item[0])):
        rows.append({"size_kib": int(size), "total": total,
                     "free": free.get(str(size)) if isinstance(free, dict) else None})
    return rows


def _ksm(info):
    ksm = info.get("ksm")
    if not isinstance(ksm, dict):
        return None
    sharing = ksm.get("pages_sharing")
    return {"active": bool(ksm.get("active")), "pages_shared": ksm.get("pages_shared"), "pages_sharing": sharing,
            "full_scans": ksm.get("full_scans"), "merge_across_nodes": ksm.get("merge_across_nodes"),
            "saved_mib": compact(sharing * PAGE_KIB / 1024.0) if isinstance(sharing, int) else None}


def _pressure(series, length):
    """{kind: packed % series} and each kind's mean, or None (unknown)."""
    if not isinstance(series, dict):
        return None
    shaped = {kind: packed(series.get(kind), length, 100.0) for kind in PRESSURE_KINDS}
    shaped["avg"] = {kind: compact(100.0 * mean(series.get(kind)) if mean(series.get(kind)) is not None else None)
                     for kind in PRESSURE_KINDS}
    return shaped


def plan_rows(result):
    """The drift of one hypervisor's fleet plan (a fleet result in check mode) as rows: {"guest", "kind" (create,
    change, remove, retire, fail, held, away), "detail"}."""
    rows = []
    for guest in (result or {}).get("guests") or []:
        name = guest.get("name")
        if guest.get("error"):
            rows.append({"guest": name, "kind": "fail", "detail": guest["error"]})
        elif guest.get("retired"):
            rows.append({"guest": name, "kind": "retire", "detail": guest.get("reason") or ""})
        elif guest.get("removed"):
            rows.append({"guest": name, "kind": "remove", "detail": ""})
        elif guest.get("created"):
            rows.append({"guest": name, "kind": "create", "detail": ""})
        elif guest.get("changed"):
            detail = "; ".join((guest.get("changes") or []) + (guest.get("actions") or []))
            if guest.get("adopted"):
                detail = "adopted" + ("; " + detail if detail else "")
            if guest.get("reboot_required"):
                detail += " (at next boot: %s)" % "; ".join(guest.get("reasons") or [])
            rows.append({"guest": name, "kind": "change", "detail": detail})
        if guest.get("placement") == "moved":
            rows.append({"guest": name, "kind": "away", "detail": "home %s: %s" % (guest.get("home"), guest.get("why"))})
        if guest.get("held"):
            rows.append({"guest": name, "kind": "held", "detail": guest.get("reason") or ""})
    return rows


def _host_entry(view_host, info, guests, window_len):
    load = info.get("load") or {}
    running = [g for g in guests if g["running"]]
    total = view_host["total_mib"]
    series = load.get("host") or {}
    memory = info.get("memory") or {}
    used_now = [m for m in series.get("memory_used_mib") or [] if m is not None]
    if used_now:
        used_mib = used_now[-1]
    elif memory.get("total_mib") is not None and memory.get("free_mib") is not None:
        used_mib = memory["total_mib"] - memory["free_mib"] - (memory.get("buffers_mib") or 0) - (
            memory.get("cached_mib") or 0)
    else:
        used_mib = None
    states = {k: v for k, v in sorted((info.get("domains") or {}).items()) if k != "total"}
    cpu_use = mean(series.get("cpu_use"))
    return {
        "name": view_host["name"], "uri": view_host["uri"], "hostname": info.get("hostname"),
        "reachable": view_host["reachable"], "error": None,
        "cpus": view_host["cpus"], "memory_total_mib": total,
        "capacity_mib": view_host["capacity_mib"] if view_host["capacity_mib"] is not None else total,
        "memory_used_mib": used_mib,
        "memory_allocated_mib": sum(g["memory_mib"] for g in running),
        "memory_defined_mib": sum(g["memory_mib"] for g in guests),
        "vcpus_allocated": sum(g["vcpus"] for g in running), "vcpus_defined": sum(g["vcpus"] for g in guests),
        "cpu_use_pct": compact(100.0 * cpu_use) if cpu_use is not None else None,
        "cordoned": view_host["cordoned"], "maintenance_reason": view_host["maintenance_reason"],
        "maintenance_since": (info.get("maintenance") or {}).get("since"),
        "jobs": view_host["jobs"],
        "ksm": _ksm(info), "hugepages": _hugepages(info, load),
        "guests_total": (info.get("domains") or {}).get("total", len(guests)), "states": states,
        "series": {"cpu": packed(series.get("cpu_use"), window_len, 100.0),
                   "mem": packed(series.get("memory_used_mib"), window_len)},
        "pressure": _pressure(series.get("pressure"), window_len) if "pressure" in series else None,
        "pressure_known": isinstance(series.get("pressure"), dict),
        "libvirt_version": info.get("libvirt_version"), "kvm": (info.get("kvm") or {}).get("usable"),
    }


def _window(host_results, seconds=None):
    samples, interval = 0, None
    for result in host_results:
        load = result.get("load") or {}
        if load.get("samples", 0) > samples:
            samples, interval = load["samples"], load.get("interval_s")
    return {"samples": samples, "interval_s": interval, "seconds": seconds}


def report_data(view, host_results, guest_results, plans=None, title="Fleet report", generated=None,
                sample_seconds=None):
    """The page's data: {"title", "generated", "window", "hosts": [...], "guests": [...], "drift": {"rows",
    "errors"}} (see docs/report.md). ``plans``: inventory name -> that hypervisor's fleet result in check mode
    (or a failed result), None when no plan was made."""
    hosts_read, guests_read = _by_item(host_results), _by_item(guest_results)
    window = _window(list(hosts_read.values()), sample_seconds)
    length = window["samples"]
    states = {}
    for name, result in guests_read.items():
        for guest in result.get("guests") or []:
            states[(name, guest.get("name"))] = guest
    view_guests = {}
    for guest in view.get("guests") or []:
        view_guests.setdefault(guest["host"], []).append(guest)
    away = {}
    drift_rows, drift_errors = [], []
    for host, plan in sorted((plans or {}).items()):
        if not plan:
            drift_errors.append({"host": host, "error": "no plan: the hypervisor did not make one"})
            continue
        if plan.get("failed") and not plan.get("guests"):
            drift_errors.append({"host": host, "error": plan.get("msg") or "the plan failed"})
            continue
        for row in plan_rows(plan):
            drift_rows.append(dict(row, host=host))
        for guest in plan.get("guests") or []:
            if guest.get("placement") == "moved":
                away[guest.get("name")] = {"home": guest.get("home"), "why": guest.get("why")}
    hosts, guests = [], []
    for view_host in view.get("hosts") or []:
        name = view_host["name"]
        info = hosts_read.get(name) or {}
        mine = view_guests.get(name, [])
        if not view_host["reachable"]:
            # host_info failed, or it answered but its guests were not read (the placement view then takes the
            # host as unreachable too: its guests are unknown)
            listed = guests_read.get(name) or {}
            unread = None if _error(info) or not info else "guests not read: %s" % (
                _error(listed) or listed.get("msg") or "no answer")
            hosts.append({"name": name, "uri": view_host["uri"] or info.get("uri"), "reachable": False,
                          "error": _error(info) or unread or "did not answer", "cordoned": view_host["cordoned"]})
            continue
        hosts.append(_host_entry(view_host, info, mine, length))
        listed = guests_read.get(name) or {}
        if _error(listed) or "guests" not in listed:  # (a loop with failed_when false registers failed: false)
            hosts[-1]["error"] = "guests not read: %s" % (_error(listed) or listed.get("msg") or "no answer")
        series = (info.get("load") or {}).get("guests") or {}
        for guest in sorted(mine, key=lambda g: g["name"]):
            read = states.get((name, guest["name"])) or {}
            measured = series.get(guest["name"]) or {}
            origin = guest.get("origin") or {}
            home = (away.get(guest["name"]) or {}).get("home") or origin.get("host")
            entry = {"name": guest["name"], "host": name, "state": read.get("state") or "unknown",
                     "libvirt_state": read.get("libvirt_state"), "vcpus": guest["vcpus"],
                     "memory_mib": guest["memory_mib"], "home": home if home and home != name else None,
                     "why": (away.get(guest["name"]) or {}).get("why") or (
                         "moved from %s since %s" % (origin.get("host"), origin.get("since")) if origin else None),
                     "tags": guest.get("tags") or {}}
            if measured:
                entry["s"] = {key: packed(measured.get(source), length, scale) for key, source, scale in GUEST_SERIES}
                entry["psi"] = _pressure(measured.get("pressure"), length)
            guests.append(entry)
    rows = [r for r in drift_rows if r["kind"] != "away"]
    runaways = [g for g in guests if g["home"]]
    return {"title": title, "generated": generated, "window": window, "hosts": hosts, "guests": guests,
            "drift": {"planned": plans is not None, "rows": rows, "errors": drift_errors,
                      "away": [{"guest": g["name"], "host": g["host"], "home": g["home"], "why": g["why"]}
                               for g in runaways]}}
