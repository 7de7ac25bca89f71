"""The fleet report (module_utils/_report, filter plugins/filter/report.py) and what host_info's sampling feeds it
(module_utils/_host/load.py): plain data in, data and HTML out, no daemon, no browser (tests/integration/test_report.py
opens the page in Chromium)."""

from __future__ import annotations

import json
import random
import re

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.filter import report as report_filter
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host import load
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import placement
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._report import data as report_data
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._report import html as report_html


# -- host_info's sampling: disk and network rates, pressure stall -----------------------------------------------

def test_bulk_stats_become_summed_counters():
    stats = {"cpu.time": 5, "balloon.rss": 2048, "block.count": 2, "block.0.rd.bytes": 100, "block.0.wr.bytes": 10,
             "block.1.rd.bytes": 1, "block.1.wr.bytes": 2, "net.count": 1, "net.0.rx.bytes": 7, "net.0.tx.bytes": 9}
    assert load.guest_counters(stats) == {"cpu_ns": 5, "rss_kib": 2048, "rd_bytes": 101, "wr_bytes": 12,
                                          "rx_bytes": 7, "tx_bytes": 9}
    # no disks is 0 bytes; a driver that gives no counters at all is unknown
    assert load.guest_counters({"block.count": 0})["rd_bytes"] == 0
    assert load.guest_counters({})["rx_bytes"] is None
    assert load.guest_counters({"net.count": 1})["rx_bytes"] is None


def test_pressure_files_and_cgroups(tmp_path):
    text = "some avg10=1.00 avg60=0.50 avg300=0.10 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"
    assert load.parse_pressure(text) == 123456
    assert load.parse_pressure("") is None and load.parse_pressure(None) is None
    assert load.parse_pressure("some avg10=1 total=x") is None
    scope = tmp_path / "machine.slice" / "machine-qemu\\x2d1\\x2dweb.scope"
    (scope / "libvirt" / "emulator").mkdir(parents=True)
    for kind in ("cpu", "memory", "io"):
        (scope / ("%s.pressure" % kind)).write_text(text.replace("123456", str(len(kind))))
    proc = "0::/machine.slice/machine-qemu\\x2d1\\x2dweb.scope/libvirt/emulator\n"
    assert load.cgroup_dir(proc, str(tmp_path)) == str(scope)
    assert load.read_pressure(str(scope), {k: k + ".pressure" for k in load.PRESSURE_KINDS}) == {
        "cpu": 3, "memory": 6, "io": 2}
    # cgroup v1 only, or a cgroup without PSI files: unknown
    assert load.cgroup_dir("4:memory:/machine/qemu-1-web\n", str(tmp_path)) is None
    assert load.cgroup_dir("0::/\n", str(tmp_path)) is None
    assert load.read_pressure(str(tmp_path / "nowhere"), {"cpu": "cpu"}) is None
    # only a local QEMU connection reads this machine's files
    assert load.is_local("qemu:///system", "QEMU") and load.is_local("qemu:///session", "QEMU")
    assert not load.is_local("qemu+ssh://root@hv1/system", "QEMU") and not load.is_local("qemu+tls://hv1/system", "QEMU")
    assert not load.is_local("test:///default", "Test")


def _reading(t, guests, host_pressure=None, cpu=(0, 0)):
    return {"t": t, "host_cpu": {"kernel": 0, "user": cpu[0], "idle": cpu[1], "iowait": 0},
            "host_memory": {"total": 4 << 20, "free": 2 << 20}, "host_pressure": host_pressure, "guests": guests}


def test_counters_become_rates_and_stall_shares():
    def guest(cpu, rd, wr, rx, tx, psi=None):
        return {"cpu_ns": cpu, "rss_kib": 100 << 10, "rd_bytes": rd, "wr_bytes": wr, "rx_bytes": rx, "tx_bytes": tx,
                "pressure": psi}
    readings = [
        _reading(0.0, {"web": guest(0, 0, 0, 0, 0, {"cpu": 0, "memory": 0, "io": 0})}, {"cpu": 0, "memory": 0, "io": 0}),
        _reading(2.0, {"web": guest(10 ** 9, 4096, 2048, 1000, 500, {"cpu": 200000, "memory": 0, "io": 20000}),
                       "db": guest(0, 0, 0, 0, 0)}, {"cpu": 1000000, "memory": 0, "io": 0}, (1, 1)),
        _reading(4.0, {"web": guest(2 * 10 ** 9, 4096, 6144, 1000, 900, {"cpu": 200000, "memory": 0, "io": 20000}),
                       "db": guest(10 ** 9, 8192, 0, None, 10)}, {"cpu": 1000000, "memory": 10, "io": 0}, (2, 2)),
    ]
    series = load.load_series(readings)
    web, db = series["guests"]["web"], series["guests"]["db"]
    assert web["cpu"] == [0.5, 0.5] and web["memory_used_mib"] == [100, 100]
    assert web["disk_read_bytes_per_s"] == [2048, 0] and web["disk_write_bytes_per_s"] == [1024, 2048]
    assert web["net_rx_bytes_per_s"] == [500, 0] and web["net_tx_bytes_per_s"] == [250, 200]
    assert web["pressure"] == {"cpu": [0.1, 0.0], "memory": [0.0, 0.0], "io": [0.01, 0.0]}
    # a guest that started during the window has its later samples; a counter it did not give is unknown;
    # a guest without PSI figures has none (not an error)
    assert db["disk_read_bytes_per_s"] == [4096] and db["net_rx_bytes_per_s"] == [None] and db["pressure"] is None
    assert series["host"]["pressure"] == {"cpu": [0.5, 0.0], "memory": [0.0, 0.0], "io": [0.0, 0.0]}
    # a remote connection reads no PSI: unknown
    remote = load.load_series([dict(r, host_pressure=None) for r in readings])
    assert remote["host"]["pressure"] is None


class FakeConn:
    """Just enough of a libvirt connection for load.read and load.sample."""

    def __init__(self, uri="qemu+ssh://root@hv1/system"):
        self.uri, self.calls = uri, []

    def getURI(self):
        return self.uri

    def getType(self):
        return "QEMU"

    def getAllDomainStats(self, flags, which):
        self.calls.append(flags)

        class Dom:
            def name(self):
                return "web"
        return [(Dom(), {"cpu.time": 10 ** 9 * len(self.calls), "balloon.rss": 1024, "block.count": 1,
                         "block.0.rd.bytes": 4096 * len(self.calls), "block.0.wr.bytes": 0, "net.count": 0})]

    def getCPUStats(self, cpu, flags):
        return {"kernel": 1, "user": len(self.calls), "idle": 10, "iowait": 0}

    def getMemoryStats(self, cell, flags):
        return {"total": 1 << 20, "free": 1 << 19}

    def getInfo(self):
        return ["x86_64", 1024, 2, 2000, 1, 1, 2, 1]

    def getFreePages(self, pages, start, count, flags):
        return {0: {2048: 3, 1048576: 0}}


def test_one_bulk_call_reads_cpu_memory_disks_and_interfaces(monkeypatch):
    conn = FakeConn()
    monkeypatch.setattr(load.time, "sleep", lambda seconds: None)
    readings = load.sample(conn, 2, 1, ["1048576", "2048"])
    import libvirt
    wanted = (libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_BLOCK
              | libvirt.VIR_DOMAIN_STATS_INTERFACE)
    assert conn.calls == [wanted] * 3
    # remote: no PSI read from this machine; free hugepages once, at the end of the window
    assert all(r["host_pressure"] is None and r["guests"]["web"]["pressure"] is None for r in readings)
    assert "hugepages_free" not in readings[0] and readings[-1]["hugepages_free"] == {"2048": 3, "1048576": 0}
    series = load.load_series(readings)
    assert series["hugepages_free"] == {"2048": 3, "1048576": 0} and series["host"]["pressure"] is None
    assert series["guests"]["web"]["net_rx_bytes_per_s"] == [0, 0] and len(series["guests"]["web"]["cpu"]) == 2
    # a driver that has no free page counts (libvirt's test driver answers with none): unknown
    monkeypatch.setattr(conn, "getFreePages", lambda *args: {}, raising=False)
    assert load.read(conn, False, ["2048"])["hugepages_free"] is None
    assert load.read(conn, False, [])["hugepages_free"] == {}


# -- the report's data --------------------------------------------------------------------------------------------

def test_compact_numbers_and_packed_series():
    assert [report_data.compact(v) for v in (None, 0, 0.12345, 1.2345, 12.345, 123.45, 12345.6)] == [
        None, 0, 0.123, 1.23, 12.3, 123, 12346]
    assert report_data.packed([1, 1, 1], 3) == 1
    assert report_data.packed([0.5, 0.25], 4, 100) == [None, None, 50, 25]
    assert report_data.packed([], 3) is None and report_data.packed(None, 3) is None
    assert report_data.packed([1, 2, 3, 4], 2) == [3, 4]


def synthetic_fleet(hosts=10, guests=1000, samples=120, seed=24):
    """host_info and domain_info results of a fleet with samples as busy as a real one's: CPU wandering, memory
    creeping, disks and networks in bursts; every tenth guest shut off; one host cordoned, one unreachable."""
    rnd = random.Random(seed)
    host_results, guest_results = [], []
    each = guests // hosts
    for index in range(hosts):
        name = "hv%03d" % index
        listed, series = [], {}
        for number in range(each):
            guest = "guest-%04d" % (index * each + number)
            running = number % 10 != 0
            memory, vcpus = rnd.choice((512, 1024, 2048, 4096)), rnd.choice((1, 2, 4))
            listed.append({"name": guest, "state": "running" if running else "shutoff",
                           "libvirt_state": "running" if running else "shutoff", "active": running,
                           "spec": {"memory": "%dMiB" % memory, "vcpus": vcpus}, "tags": {"tier": "web"},
                           "origin": {"host": "hv000", "since": "2026-12-03T08:00:00Z"} if number == 1 and index else None})
            if not running:
                continue
            cpu, rss = rnd.random(), memory * rnd.uniform(0.3, 0.9)
            entry = {k: [] for k in ("cpu", "memory_used_mib", "disk_read_bytes_per_s", "disk_write_bytes_per_s",
                                     "net_rx_bytes_per_s", "net_tx_bytes_per_s")}
            for _step in range(samples):
                cpu = min(max(cpu + rnd.gauss(0, 0.05), 0.0), vcpus)
                rss += rnd.choice((0, 0, 0, 1))
                entry["cpu"].append(round(cpu, 4))
                entry["memory_used_mib"].append(int(rss))
                for key in ("disk_read_bytes_per_s", "disk_write_bytes_per_s"):
                    entry[key].append(int(rnd.expovariate(1 / 200000.0)) if rnd.random() < 0.3 else 0)
                for key in ("net_rx_bytes_per_s", "net_tx_bytes_per_s"):
                    entry[key].append(int(rnd.expovariate(1 / 20000.0)))
            entry["pressure"] = None
            series[guest] = entry
        result = {
            "item": {"item": name, "ansible_job_id": "j%d" % index}, "uuid": "u-%d" % index,
            "uri": "qemu+tls://%s/system" % name, "hostname": name, "libvirt_version": "9.0.0",
            "memory": {"total_mib": 262144, "free_mib": 100000, "buffers_mib": 100, "cached_mib": 2000},
            "cpu": {"count": 64}, "kvm": {"usable": True},
            "ksm": {"active": True, "pages_shared": 1000, "pages_sharing": 25600, "pages_to_scan": 100,
                    "full_scans": 3, "merge_across_nodes": 1},
            "hugepages": {"2048": 1024, "1048576": 0},
            "domains": {"total": each, "running": each - each // 10, "shutoff": each // 10},
            "maintenance": {"cordoned": index == 1, "reason": "kernel update" if index == 1 else None, "since": None},
            "guests_with_jobs": [],
            "load": {"samples": samples, "interval_s": 3.0,
                     "host": {"cpu_use": [round(rnd.random(), 4) for _s in range(samples)],
                              "memory_used_mib": [160000 + rnd.randint(0, 100) for _s in range(samples)],
                              "pressure": {k: [round(rnd.random() / 10, 4) for _s in range(samples)]
                                           for k in ("cpu", "memory", "io")}},
                     "guests": series, "hugepages_free": {"2048": 512, "1048576": 0}},
        }
        if index == hosts - 1:
            result = {"item": result["item"], "failed": True, "msg": "unable to connect to %s" % name}
            guest_results.append({"item": name, "skipped": True})
        else:
            guest_results.append({"item": name, "guests": listed})
        host_results.append(result)
    view = placement.fleet_view(host_results, guest_results)
    return view, host_results, guest_results


def test_a_thousand_guests_with_120_samples_stay_a_few_mb_and_paginated():
    view, hosts, guests = synthetic_fleet()
    plans = {"hv000": {"guests": [{"name": "guest-0003", "changed": True, "changes": ["vcpus: 1 -> 2"],
                                   "applied_live": ["vcpus"]}], "summary": {"updated": 1}},
             "hv002": {"failed": True, "msg": "hv002: unreachable"}}
    data = report_filter.fleet_report_data(view, hosts, guests, plans, title="Synthetic", generated="now",
                                           sample_seconds=360)
    assert len(data["guests"]) == 900 and len(data["hosts"]) == 10
    page = report_filter.fleet_report_html(data)
    size = len(page.encode("utf-8"))
    print("1,000-guest page (900 reachable, 120 samples each): %.2f MB" % (size / 1e6))
    assert size < 4 * 1000 * 1000, size
    # the guests are in the page's data, not as 1,000 table rows: the table is drawn a page at a time
    assert page.count("<tr") < 60
    embedded = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                                    re.S).group(1))
    assert embedded == json.loads(json.dumps(data))
    series = embedded["guests"][1]["s"]
    assert len(series["cpu"]) == 120 and all(v is None or isinstance(v, (int, float)) for v in series["cpu"])
    # many hosts: their chart sections start closed (drawn when opened)
    assert ' open>' not in page and page.count('<details class="host"') == 9


def test_host_figures_are_exact_and_in_data_attributes():
    view, hosts, guests = synthetic_fleet(hosts=3, guests=30, samples=4)
    data = report_data.report_data(view, hosts, guests, None, generated="2026-12-03T10:00:00Z")
    first, cordoned, down = data["hosts"]
    running = [g for g in guests[0]["guests"] if g["active"]]
    assert first["vcpus_allocated"] == sum(g["spec"]["vcpus"] for g in running)
    assert first["memory_allocated_mib"] == sum(int(g["spec"]["memory"][:-3]) for g in running)
    assert first["states"] == {"running": 9, "shutoff": 1} and first["guests_total"] == 10
    assert first["cpus"] == 64 and first["memory_total_mib"] == 262144 and first["capacity_mib"] == 262144
    assert first["ksm"]["saved_mib"] == 100 and first["hugepages"] == [
        {"size_kib": 2048, "total": 1024, "free": 512}, {"size_kib": 1048576, "total": 0, "free": 0}]
    assert cordoned["cordoned"] and cordoned["maintenance_reason"] == "kernel update"
    assert down == {"name": "hv002", "uri": None, "reachable": False, "error": "unable to connect to hv002",
                    "cordoned": False}
    assert not data["drift"]["planned"]
    # a guest whose origin says it left its home is away; the rest are home
    assert data["drift"]["away"] == [{"guest": "guest-0011", "host": "hv001", "home": "hv000",
                                      "why": "moved from hv000 since 2026-12-03T08:00:00Z"}]
    page = report_html.render(data)
    card = re.search(r'<div class="card" data-host="hv000"[^>]*>', page).group(0)
    assert 'data-vcpus-allocated="%d"' % first["vcpus_allocated"] in card
    assert 'data-memory-allocated-mib="%d"' % first["memory_allocated_mib"] in card
    assert 'data-state-running="9"' in card and 'data-state-shutoff="1"' in card and 'data-cpus="64"' in card
    assert 'data-ksm-pages-sharing="25600"' in card and 'data-hugepages-2048-free="512"' in card
    assert 'data-host="hv002" data-reachable="false"' in page and "cordoned</span>" in page
    # three hosts: their charts are open, drawn at load
    assert page.count('<details class="host"') == 2 and page.count(" open>") == 2


def test_drift_rows_from_plans():
    rows = report_data.plan_rows({"guests": [
        {"name": "a", "created": True, "changed": True},
        {"name": "b", "changed": True, "changes": ["memory: 1GiB -> 2GiB"], "reboot_required": True,
         "reasons": ["memory above the maximum"]},
        {"name": "c", "changed": False, "placement": "moved", "home": "hv1", "why": "moved by rebalance"},
        {"name": "d", "error": "no such network", "changed": False},
        {"name": "e", "retired": True, "reason": "stale copy", "changed": True},
        {"name": "f", "held": True, "reason": "hv3 is silent"},
        {"name": "g", "changed": False}]})
    assert rows == [
        {"guest": "a", "kind": "create", "detail": ""},
        {"guest": "b", "kind": "change", "detail": "memory: 1GiB -> 2GiB (at next boot: memory above the maximum)"},
        {"guest": "c", "kind": "away", "detail": "home hv1: moved by rebalance"},
        {"guest": "d", "kind": "fail", "detail": "no such network"},
        {"guest": "e", "kind": "retire", "detail": "stale copy"},
        {"guest": "f", "kind": "held", "detail": "hv3 is silent"}]
    view, hosts, guests = synthetic_fleet(hosts=2, guests=4, samples=2)
    data = report_data.report_data(view, hosts, guests, {
        "hv000": {"guests": [{"name": "guest-0001", "changed": False, "placement": "moved", "home": "hvX",
                              "why": "moved by evacuate"}]},
        "hv001": {"failed": True, "msg": "boom"}})
    assert data["drift"]["errors"] == [{"host": "hv001", "error": "boom"}] and data["drift"]["rows"] == []
    assert data["drift"]["away"] == [{"guest": "guest-0001", "host": "hv000", "home": "hvX", "why": "moved by evacuate"}]
    page = report_html.render(data)
    assert "Git and the hypervisors agree" in page and 'data-plan-error="hv001"' in page


def test_the_page_loads_nothing_and_cannot_be_broken_by_names():
    view, hosts, guests = synthetic_fleet(hosts=2, guests=4, samples=3)
    guests[0]["guests"][1]["name"] = "</script><script>alert(1)</script>"
    view = placement.fleet_view(hosts, guests)
    page = report_html.render(report_data.report_data(view, hosts, guests, {}, title="<b>x</b>"))
    assert "<script>alert(1)" not in page and "<title>&lt;b&gt;x&lt;/b&gt;</title>" in page
    # no src/href to anything but the page itself, and a policy that forbids every other source
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', page, re.I)
    assert "default-src 'none'" in page
    assert "uPlot 1.6.32" in page and "Permission is hereby granted" in page


def test_filters_name_bad_input():
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="placement view"):
        report_filter.fleet_report_data({"hosts": []}, [], [])
    with pytest.raises(AnsibleFilterError, match="fleet_report_data returns"):
        report_filter.fleet_report_html({"hosts": []})


def test_without_samples_the_page_has_the_figures_and_no_series():
    view, hosts, guests = synthetic_fleet(hosts=2, guests=4, samples=2)
    for result in hosts:
        result.pop("load", None)
    data = report_data.report_data(placement.fleet_view(hosts, guests), hosts, guests, None)
    assert data["window"] == {"samples": 0, "interval_s": None, "seconds": None}
    assert all("s" not in g for g in data["guests"]) and data["hosts"][0]["series"] == {"cpu": None, "mem": None}
    assert data["hosts"][0]["memory_used_mib"] == 262144 - 100000 - 100 - 2000
    assert 'data-samples="0"' in report_html.render(data)


def test_a_host_whose_guests_were_not_read_says_so():
    view, hosts, guests = synthetic_fleet(hosts=2, guests=4, samples=2)
    # what read_fleet.yml registers when domain_info failed (failed_when: false)
    guests[0] = {"item": "hv000", "failed": False, "failed_when_result": False, "code": "libvirt_error",
                 "msg": "libvirt error on the guests of qemu:///system: Domain not found"}
    data = report_data.report_data(placement.fleet_view(hosts, guests), hosts, guests, None)
    assert data["hosts"][0]["error"] == "guests not read: libvirt error on the guests of qemu:///system: Domain not found"
    assert "guests not read" in report_html.render(data)
