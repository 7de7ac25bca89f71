# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private (controller side): the fleet report as one self-contained HTML page.

``render`` takes the dict ``data.report_data`` makes and returns the page: the hypervisors' capacity cards are
written here (with the exact figures as data attributes), the charts and tables are drawn in the browser by
``report.js`` with uPlot (``uplot/``, vendored from npm by tools/vendor_uplot.sh) from the data embedded as JSON.
Nothing is loaded from anywhere: a Content-Security-Policy forbids it, so a page that tried would say so in the
browser's console.
"""

from __future__ import annotations

import html
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
# window.onerror and console.error into the page (#report-errors, body[data-errors]): what a browser test reads
ERROR_SINK = """(function () {
  function report(message) {
    var list = document.getElementById("report-errors");
    if (!list) { return; }
    var item = document.createElement("li");
    item.textContent = String(message);
    list.appendChild(item);
    list.hidden = false;
    document.body.setAttribute("data-errors", String(list.children.length));
  }
  window.addEventListener("error", function (event) { report(event.message || "error"); });
  var original = console.error;
  console.error = function () { report(Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
})();"""


def asset(name):
    """A file of this package (the page's script and style, the vendored library and its licence)."""
    with open(os.path.join(HERE, name)) as handle:
        return handle.read()


def uplot_version(script):
    found = re.search(r"uPlot \(v([0-9.]+)\)", script[:200])
    return found.group(1) if found else "unknown"


def _esc(value):
    return html.escape("" if value is None else str(value), quote=True)


def _json_for_script(data):
    """JSON safe inside a <script> element: no '<' that could close it."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True, allow_nan=False).replace("<", "\\u003c")


def _mib(value):
    if value is None:
        return "unknown"
    if value >= 1024:
        return "%.1f GiB" % (value / 1024.0)
    return "%d MiB" % value


def _bar(label, used, total, text, data_name, overcommit=False):
    """A capacity bar: ``used`` of ``total`` (over 100 % in red, over 85 % in amber; where overcommitting is usual,
    as with vCPUs, over 100 % in amber)."""
    share = (float(used) / total) if used is not None and total else 0.0
    level = " over" if share > 1 and not overcommit else (" high" if share > 0.85 else "")
    return ('<div class="bar" data-bar="%s"><div class="label"><span>%s</span><span>%s</span></div>'
            '<div class="track"><div class="fill%s" style="width:%.1f%%"></div></div></div>'
            % (_esc(data_name), _esc(label), _esc(text), level, min(share, 1.0) * 100))


def _attrs(values):
    return " ".join('%s="%s"' % (name, _esc(value)) for name, value in values if value is not None)


def host_card(host):
    """One hypervisor's card: capacity bars and facts, its exact figures as data attributes."""
    name = host["name"]
    if not host.get("reachable"):
        return ('<div class="card" data-host="%s" data-reachable="false"><h3><span>%s</span>'
                '<span class="badge down">unreachable</span></h3><div class="facts">%s</div></div>'
                % (_esc(name), _esc(name), _esc(host.get("error"))))
    attrs = [("data-host", name), ("data-reachable", "true"), ("data-cpus", host["cpus"]),
             ("data-memory-total-mib", host["memory_total_mib"]), ("data-capacity-mib", host["capacity_mib"]),
             ("data-memory-allocated-mib", host["memory_allocated_mib"]),
             ("data-memory-defined-mib", host["memory_defined_mib"]), ("data-vcpus-allocated", host["vcpus_allocated"]),
             ("data-vcpus-defined", host["vcpus_defined"]), ("data-memory-used-mib", host["memory_used_mib"]),
             ("data-guests-total", host["guests_total"]), ("data-cordoned", str(bool(host["cordoned"])).lower())]
    attrs += [("data-state-%s" % state, count) for state, count in sorted(host["states"].items())]
    ksm = host.get("ksm")
    if ksm:
        attrs += [("data-ksm-pages-shared", ksm["pages_shared"]), ("data-ksm-pages-sharing", ksm["pages_sharing"])]
    for page in host["hugepages"]:
        attrs += [("data-hugepages-%d-total" % page["size_kib"], page["total"]),
                  ("data-hugepages-%d-free" % page["size_kib"], page["free"])]
    if host["cordoned"]:
        badge = '<span class="badge cordoned" title="%s">cordoned</span>' % _esc(host.get("maintenance_reason") or "")
    else:
        badge = '<span class="badge">in service</span>'
    capacity, cpus = host["capacity_mib"], host["cpus"]
    vcpus = host["vcpus_allocated"]
    bars = [
        _bar("memory allocated to running guests", host["memory_allocated_mib"], capacity,
             "%s of %s" % (_mib(host["memory_allocated_mib"]), _mib(capacity)), "memory-allocated"),
        _bar("memory used on the host", host["memory_used_mib"], host["memory_total_mib"],
             "%s of %s" % (_mib(host["memory_used_mib"]), _mib(host["memory_total_mib"])), "memory-used"),
        _bar("vCPUs of running guests", vcpus, cpus, "%d on %d CPUs (%.1f:1)" % (vcpus, cpus, vcpus / float(cpus or 1)),
             "vcpus", overcommit=True),
        _bar("CPU used (window average)", host["cpu_use_pct"], 100,
             "unknown" if host["cpu_use_pct"] is None else "%s %%" % host["cpu_use_pct"], "cpu-used"),
    ]
    states = " ".join('<span data-state="%s">%s %s</span>' % (_esc(s), _esc(c), _esc(s))
                      for s, c in sorted(host["states"].items())) or "no guests"
    facts = ['<span class="states">guests: %s</span>' % states]
    if ksm:
        facts.append("<span>KSM: %s, %s pages sharing %s (%s saved)</span>" % (
            "active" if ksm["active"] else "idle", _esc(ksm["pages_sharing"]), _esc(ksm["pages_shared"]),
            _mib(ksm["saved_mib"])))
    else:
        facts.append("<span>KSM: unknown</span>")
    pages = ["%s: %s free of %d" % ("%d MiB" % (p["size_kib"] // 1024) if p["size_kib"] < 1048576 else
                                    "%d GiB" % (p["size_kib"] // 1048576),
                                    "?" if p["free"] is None else p["free"], p["total"]) for p in host["hugepages"]]
    facts.append("<span>hugepages: %s</span>" % _esc("; ".join(pages) if pages else "none"))
    if host["cordoned"]:
        since = " since %s" % host["maintenance_since"] if host.get("maintenance_since") else ""
        reason = host.get("maintenance_reason") or "no reason given"
        facts.append("<span>maintenance: %s%s</span>" % (_esc(reason), _esc(since)))
    pressure = host.get("pressure")
    if pressure:
        facts.append("<span>pressure stall (avg): cpu %s %%, memory %s %%, io %s %%</span>" % tuple(
            _esc(pressure["avg"][k]) for k in ("cpu", "memory", "io")))
    else:
        facts.append("<span>pressure stall: unknown</span>")
    if host.get("error"):
        facts.append('<span class="muted">%s</span>' % _esc(host["error"]))
    return '<div class="card" %s><h3><span>%s</span>%s</h3>%s<div class="facts">%s</div></div>' % (
        _attrs(attrs), _esc(name), badge, "".join(bars), "".join(facts))


def _totals(data):
    hosts = data["hosts"]
    up = [h for h in hosts if h.get("reachable")]
    guests = data["guests"]
    running = sum(1 for g in guests if g["state"] == "running")
    items = [
        ("hosts", len(hosts), "%d in service, %d cordoned, %d unreachable" % (
            sum(1 for h in up if not h["cordoned"]), sum(1 for h in up if h["cordoned"]), len(hosts) - len(up))),
        ("guests", len(guests), "%d running" % running),
        ("vcpus", sum(h["vcpus_allocated"] for h in up), "vCPUs running on %d CPUs" % sum(h["cpus"] for h in up)),
        ("memory", _mib(sum(h["memory_allocated_mib"] for h in up)),
         "allocated of %s" % _mib(sum(h["capacity_mib"] for h in up))),
        ("drift", len(data["drift"]["rows"]) if data["drift"]["planned"] else "?",
         "guests a plan would change" if data["drift"]["planned"] else "no plan made"),
        ("away", len(data["drift"]["away"]), "guests away from home"),
    ]
    return '<div class="totals">%s</div>' % "".join(
        '<div class="total" data-total="%s"><b>%s</b><span>%s</span></div>' % (_esc(k), _esc(v), _esc(text))
        for k, v, text in items)


def _table(table_id, headers, rows, css="static"):
    head = "".join('<th class="text">%s</th>' % _esc(h) if i < 1 or css == "static" else "<th>%s</th>" % _esc(h)
                   for i, h in enumerate(headers))
    body = "".join(rows)
    return ('<div class="scroll"><table id="%s" class="%s"><thead><tr>%s</tr></thead><tbody>%s</tbody></table></div>'
            % (table_id, css, head, body))


def _drift(drift):
    parts = []
    if not drift["planned"]:
        parts.append('<p class="muted">No plan was made (report_plan is false).</p>')
    else:
        for error in drift["errors"]:
            parts.append('<p class="muted" data-plan-error="%s">%s: the plan failed: %s</p>' % (
                _esc(error["host"]), _esc(error["host"]), _esc(error["error"])))
        if drift["rows"]:
            rows = ['<tr class="kind-%s" data-guest="%s" data-kind="%s"><td>%s</td><td class="text">%s</td>'
                    '<td class="text">%s</td><td class="detail">%s</td></tr>'
                    % (_esc(r["kind"]), _esc(r["guest"]), _esc(r["kind"]), _esc(r["host"]), _esc(r["guest"]),
                       _esc(r["kind"]), _esc(r["detail"])) for r in drift["rows"]]
            parts.append(_table("drift-table", ["hypervisor", "guest", "would", "what"], rows))
        else:
            parts.append("<p>Git and the hypervisors agree: the plan creates, changes and removes nothing.</p>")
    if drift["away"]:
        rows = ['<tr data-guest="%s"><td>%s</td><td class="text">%s</td><td class="text">%s</td>'
                '<td class="detail">%s</td></tr>' % (_esc(a["guest"]), _esc(a["guest"]), _esc(a["host"]),
                                                     _esc(a["home"]), _esc(a["why"])) for a in drift["away"]]
        parts.append("<h3>Away from home</h3>")
        parts.append(_table("away-table", ["guest", "runs on", "home", "why"], rows))
    else:
        parts.append("<p>Every guest runs at home.</p>")
    return "".join(parts)


def _host_details(data):
    many = len(data["hosts"]) > 6
    parts = []
    for host in data["hosts"]:
        if not host.get("reachable"):
            continue
        count = host["guests_total"]
        parts.append('<details class="host" id="host-%s" data-host="%s"%s><summary>%s (%d guest%s)</summary>'
                     '<div class="charts"><div class="chart host-use"></div><div class="chart guest-use"></div></div>'
                     '</details>' % (_esc(host["name"]), _esc(host["name"]), "" if many else " open",
                                     _esc(host["name"]), count, "" if count == 1 else "s"))
    return "".join(parts) or '<p class="muted">No hypervisor answered.</p>'


GUEST_HEADERS = ["guest", "hypervisor", "state", "vCPUs", "memory", "CPU avg", "CPU max", "memory used",
                 "disk read", "disk write", "net rx", "net tx", "stall cpu/mem/io", "away", "CPU over the window"]
HOST_HEADERS = ["hypervisor", "state", "running", "guests", "vCPUs / CPUs", "memory allocated", "memory used",
                "CPU used", "KSM saved", "stall cpu/mem/io"]


def render(data):
    """The whole page, as one string."""
    script = asset("uplot/uPlot.iife.min.js")
    window = data["window"]
    if window.get("samples"):
        sampled = "%d samples every %s s" % (window["samples"], window["interval_s"])
    else:
        sampled = "not sampled"
    meta = "generated %s; %s" % (data.get("generated") or "now", sampled)
    body = [
        "<header><h1>%s</h1><div class=\"meta\">%s</div></header><main>" % (_esc(data["title"]), _esc(meta)),
        '<ul id="report-errors" hidden></ul>',
        _totals(data),
        "<h2>Hypervisors</h2>",
        '<div class="cards">%s</div>' % "".join(host_card(h) for h in data["hosts"]),
        '<h2>Hypervisors side by side</h2>',
        _table("hosts-table", HOST_HEADERS, [], css="sortable"),
        "<h2>Use over the window</h2>",
        '<p class="muted">Each hypervisor: its CPU and memory use (and pressure stall where known); its guests\' use '
        'of the metric picked, the busiest 8 first - tick others, or click a guest in the table below.</p>',
        _host_details(data),
        "<h2>Guests</h2>",
        '<div class="pager"><input type="search" id="guests-filter" placeholder="filter: name, hypervisor, state, tag">'
        '<button type="button" id="guests-prev">previous</button><button type="button" id="guests-next">next</button>'
        '<span id="guests-page"></span></div>',
        _table("guests-table", GUEST_HEADERS, [], css="sortable"),
        "<h2>Drift</h2>",
        _drift(data["drift"]),
        "</main>",
        '<footer>kvmfleet.libvirt fleet report. Charts: uPlot %s (MIT licence):<details><summary>licence</summary>'
        "<pre>%s</pre></details></footer>" % (_esc(uplot_version(script)), _esc(asset("uplot/LICENSE"))),
    ]
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="%s">' % CSP,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title>" % _esc(data["title"]),
        "<style>%s\n%s</style></head>" % (asset("uplot/uPlot.min.css"), asset("report.css")),
        '<body data-samples="%d">' % (window.get("samples") or 0),
        "<script>%s</script>" % ERROR_SINK,
        "".join(body),
        "<script>%s</script>" % script,
        '<script type="application/json" id="report-data">%s</script>' % _json_for_script(data),
        "<script>%s</script>" % asset("report.js"),
        "</body></html>\n",
    ])
