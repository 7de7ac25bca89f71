/* The fleet report's own script (plugins/module_utils/_report/html.py puts it in the page after uPlot and the data).
   Draws each hypervisor's charts (its own use, and its guests' use over the window, the guests to show picked by
   the reader), the sortable and paginated guest table, and the drift tables. Reads only the page's own data. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var N = D.window.samples || 0;
  var STEP = D.window.interval_s || 1;
  var X = [];
  for (var i = 0; i < N; i++) { X.push(Math.round((i + 1) * STEP * 10) / 10); }
  var PALETTE = ["#3b82c4", "#e4572e", "#29a36a", "#9b5de5", "#f3a712", "#17becf", "#d62f88", "#6c757d",
                 "#8c564b", "#2f4858"];
  var METRICS = {
    cpu: {label: "CPU (% of one host CPU)", fmt: pct},
    mem: {label: "Memory used (MiB)", fmt: mib},
    rd: {label: "Disk read (KiB/s)", fmt: rate},
    wr: {label: "Disk write (KiB/s)", fmt: rate},
    rx: {label: "Network rx (KiB/s)", fmt: rate},
    tx: {label: "Network tx (KiB/s)", fmt: rate}
  };
  var PAGE = 50;
  var charts = [];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function compact(x) {
    if (x === null || x === undefined || isNaN(x)) { return "\u2013"; }
    var a = Math.abs(x);
    if (a >= 1e9) { return (x / 1e9).toFixed(1) + "G"; }
    if (a >= 1e6) { return (x / 1e6).toFixed(1) + "M"; }
    if (a >= 1e4) { return (x / 1e3).toFixed(0) + "k"; }
    if (a >= 100) { return x.toFixed(0); }
    if (a >= 10) { return x.toFixed(1); }
    return a === 0 ? "0" : x.toFixed(2);
  }
  function pct(x) { return x === null || x === undefined ? "\u2013" : compact(x) + " %"; }
  function mib(x) {
    if (x === null || x === undefined) { return "\u2013"; }
    return x >= 1024 ? compact(x / 1024) + " GiB" : compact(x) + " MiB";
  }
  function rate(x) {
    if (x === null || x === undefined) { return "\u2013"; }
    return x >= 1024 ? compact(x / 1024) + " MiB/s" : compact(x) + " KiB/s";
  }
  function expand(v) {
    if (Array.isArray(v)) { return v; }
    var out = [];
    for (var i = 0; i < N; i++) { out.push(v === undefined ? null : v); }
    return out;
  }
  function stats(v) {
    var xs = expand(v).filter(function (x) { return x !== null; });
    if (!xs.length) { return {avg: null, max: null}; }
    var sum = 0, max = -Infinity;
    xs.forEach(function (x) { sum += x; if (x > max) { max = x; } });
    return {avg: sum / xs.length, max: max};
  }

  // ---- per-guest figures, once -------------------------------------------------------------------------------
  var byHost = {};
  D.guests.forEach(function (g) {
    g.st = {};
    Object.keys(METRICS).forEach(function (m) { g.st[m] = stats(g.s ? g.s[m] : null); });
    (byHost[g.host] = byHost[g.host] || []).push(g);
  });

  // ---- charts ------------------------------------------------------------------------------------------------
  function chartWidth(box) { return Math.max(300, (box.clientWidth || 600) - 4); }
  function plot(box, title, series, data, fmt) {
    box.textContent = "";
    box.appendChild(el("h4", {}, title));
    if (!N) { box.appendChild(el("p", {"class": "muted"}, "no samples (report_sample_seconds is 0)")); return null; }
    var opts = {
      width: chartWidth(box), height: 200,
      scales: {x: {time: false}},
      axes: [{label: "seconds into the window", size: 40}, {values: function (u, ticks) { return ticks.map(fmt); }, size: 70}],
      legend: {live: true},
      series: [{label: "s"}].concat(series.map(function (s, i) {
        return {label: s, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
                value: function (u, v) { return fmt(v); }};
      }))
    };
    var chart = new uPlot(opts, [X].concat(data), box);
    chart.root.setAttribute("data-chart", title);
    charts.push(chart);
    return chart;
  }

  function hostChart(host, box) {
    var names = ["CPU used", "memory used"], data = [expand(host.series.cpu),
      expand(host.series.mem).map(function (m) { return m === null ? null : 100 * m / host.memory_total_mib; })];
    if (host.pressure) {
      ["cpu", "memory", "io"].forEach(function (k) { names.push("stall " + k); data.push(expand(host.pressure[k])); });
    }
    plot(box, host.name + ": CPU and memory used" + (host.pressure ? ", pressure stall" : "") + " (%)", names, data, pct);
  }

  function guestChart(host, box) {
    var guests = byHost[host.name] || [];
    var controls = el("div", {"class": "controls"});
    var metric = el("select", {"aria-label": "metric"});
    Object.keys(METRICS).forEach(function (m) { metric.appendChild(el("option", {value: m}, METRICS[m].label)); });
    var top = el("button", {type: "button"}, "top 8");
    var none = el("button", {type: "button"}, "none");
    var find = el("input", {type: "search", placeholder: "filter guests"});
    controls.appendChild(metric); controls.appendChild(top); controls.appendChild(none); controls.appendChild(find);
    var picker = el("div", {"class": "picker"});
    var area = el("div", {"class": "plot"});
    box.appendChild(controls); box.appendChild(picker); box.appendChild(area);
    var boxes = {};
    guests.forEach(function (g) {
      var label = el("label", {title: g.name});
      var check = el("input", {type: "checkbox", value: g.name});
      boxes[g.name] = check;
      label.appendChild(check); label.appendChild(document.createTextNode(" " + g.name));
      picker.appendChild(label);
      check.addEventListener("change", draw);
    });
    function pickTop() {
      var m = metric.value;
      var ranked = guests.filter(function (g) { return g.s; }).sort(function (a, b) {
        return (b.st[m].avg || 0) - (a.st[m].avg || 0);
      });
      guests.forEach(function (g) { boxes[g.name].checked = false; });
      ranked.slice(0, 8).forEach(function (g) { boxes[g.name].checked = true; });
    }
    function draw() {
      var m = metric.value, chosen = guests.filter(function (g) { return boxes[g.name].checked && g.s; });
      var old = charts.indexOf(area._chart);
      if (area._chart) { area._chart.destroy(); charts.splice(old, 1); }
      area._chart = plot(area, host.name + ": " + METRICS[m].label + " per guest", chosen.map(function (g) { return g.name; }),
                         chosen.map(function (g) { return expand(g.s[m]); }), METRICS[m].fmt);
      if (!chosen.length) { area.appendChild(el("p", {"class": "muted"}, "no guest picked")); }
    }
    metric.addEventListener("change", function () { pickTop(); draw(); });
    top.addEventListener("click", function () { pickTop(); draw(); });
    none.addEventListener("click", function () { guests.forEach(function (g) { boxes[g.name].checked = false; }); draw(); });
    find.addEventListener("input", function () {
      var q = find.value.toLowerCase();
      Array.prototype.forEach.call(picker.children, function (label) {
        label.hidden = q && label.title.toLowerCase().indexOf(q) < 0;
      });
    });
    box._select = function (name) {
      if (boxes[name]) { boxes[name].checked = true; draw(); }
    };
    pickTop();
    draw();
  }

  var hostsByName = {};
  D.hosts.forEach(function (h) { hostsByName[h.name] = h; });
  function openHost(details) {
    if (details._drawn) { return; }
    details._drawn = true;
    var host = hostsByName[details.getAttribute("data-host")];
    if (!host || !host.reachable) { return; }
    hostChart(host, details.querySelector(".chart.host-use"));
    guestChart(host, details.querySelector(".chart.guest-use"));
  }
  Array.prototype.forEach.call(document.querySelectorAll("details.host"), function (details) {
    if (details.open) { openHost(details); }
    details.addEventListener("toggle", function () { if (details.open) { openHost(details); } });
  });

  // ---- sortable tables ----------------------------------------------------------------------------------------
  function sortable(table, rows, render, keys, initial) {
    var state = {key: initial, dir: -1};
    var heads = table.querySelectorAll("th");
    Array.prototype.forEach.call(heads, function (th, index) {
      th.addEventListener("click", function () {
        var key = keys[index];
        state.dir = state.key === key ? -state.dir : 1;
        state.key = key;
        Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
        apply();
      });
    });
    function value(row) { return state.key(row); }
    function apply() {
      if (state.key) {
        rows.sort(function (a, b) {
          var x = value(a), y = value(b);
          if (x === y) { return 0; }
          if (x === null || x === undefined) { return 1; }
          if (y === null || y === undefined) { return -1; }
          return (x < y ? -1 : 1) * state.dir;
        });
      }
      render();
    }
    apply();
    return apply;
  }

  // the hosts' table
  (function () {
    var table = document.getElementById("hosts-table");
    if (!table) { return; }
    var body = table.querySelector("tbody");
    var rows = D.hosts.slice();
    var keys = [function (h) { return h.name; }, function (h) { return h.reachable ? (h.cordoned ? 1 : 0) : 2; },
      function (h) { return h.states ? (h.states.running || 0) : null; }, function (h) { return h.guests_total; },
      function (h) { return h.vcpus_allocated / (h.cpus || 1); }, function (h) { return h.memory_allocated_mib / (h.capacity_mib || 1); },
      function (h) { return h.memory_used_mib / (h.memory_total_mib || 1); }, function (h) { return h.cpu_use_pct; },
      function (h) { return h.ksm ? h.ksm.saved_mib : null; },
      function (h) { return h.pressure ? h.pressure.avg.cpu : null; }];
    function render() {
      body.textContent = "";
      rows.forEach(function (h) {
        var tr = el("tr", {"data-host": h.name});
        tr.appendChild(el("td", {}, h.name));
        tr.appendChild(el("td", {"class": "text"}, !h.reachable ? "unreachable" : h.cordoned ? "cordoned" : "in service"));
        if (!h.reachable) {
          var td = el("td", {colspan: 8, "class": "detail"}, h.error);
          tr.appendChild(td); body.appendChild(tr); return;
        }
        tr.appendChild(el("td", {}, String((h.states || {}).running || 0)));
        tr.appendChild(el("td", {}, String(h.guests_total)));
        tr.appendChild(el("td", {}, h.vcpus_allocated + " / " + h.cpus));
        tr.appendChild(el("td", {}, mib(h.memory_allocated_mib) + " / " + mib(h.capacity_mib)));
        tr.appendChild(el("td", {}, mib(h.memory_used_mib) + " / " + mib(h.memory_total_mib)));
        tr.appendChild(el("td", {}, pct(h.cpu_use_pct)));
        tr.appendChild(el("td", {}, h.ksm ? mib(h.ksm.saved_mib) : "unknown"));
        tr.appendChild(el("td", {}, h.pressure ? ["cpu", "memory", "io"].map(function (k) {
          return compact(h.pressure.avg[k]);
        }).join(" / ") + " %" : "unknown"));
        body.appendChild(tr);
      });
    }
    sortable(table, rows, render, keys, null);
  })();

  // the guests' table: filtered, sorted, one page at a time
  (function () {
    var table = document.getElementById("guests-table");
    if (!table) { return; }
    var body = table.querySelector("tbody");
    var find = document.getElementById("guests-filter");
    var pageInfo = document.getElementById("guests-page");
    var page = 0, shown = D.guests.slice();
    var keys = [function (g) { return g.name; }, function (g) { return g.host; }, function (g) { return g.state; },
      function (g) { return g.vcpus; }, function (g) { return g.memory_mib; }, function (g) { return g.st.cpu.avg; },
      function (g) { return g.st.cpu.max; }, function (g) { return g.st.mem.avg; }, function (g) { return g.st.rd.avg; },
      function (g) { return g.st.wr.avg; }, function (g) { return g.st.rx.avg; }, function (g) { return g.st.tx.avg; },
      function (g) { return g.psi ? g.psi.avg.cpu : null; }, function (g) { return g.home; }, function (g) { return g.st.cpu.avg; }];
    function spark(values) {
      var canvas = el("canvas", {"class": "spark", width: 90, height: 18});
      var ctx = canvas.getContext("2d"), xs = expand(values), max = 0;
      xs.forEach(function (x) { if (x !== null && x > max) { max = x; } });
      ctx.strokeStyle = PALETTE[0]; ctx.beginPath();
      var started = false;
      xs.forEach(function (x, i) {
        if (x === null) { started = false; return; }
        var px = N > 1 ? i * 89 / (N - 1) : 0, py = 17 - (max ? x / max : 0) * 16;
        if (started) { ctx.lineTo(px, py); } else { ctx.moveTo(px, py); started = true; }
      });
      ctx.stroke();
      return canvas;
    }
    function render() {
      var pages = Math.max(1, Math.ceil(shown.length / PAGE));
      if (page >= pages) { page = pages - 1; }
      body.textContent = "";
      shown.slice(page * PAGE, page * PAGE + PAGE).forEach(function (g) {
        var tr = el("tr", {"data-guest": g.name, "data-host": g.host, "data-state": g.state, "data-vcpus": g.vcpus,
                           "data-memory-mib": g.memory_mib});
        var name = el("td", {});
        var link = el("a", {href: "#host-" + g.host, "class": "guest"}, g.name);
        link.addEventListener("click", function () {
          var details = document.getElementById("host-" + g.host);
          if (details) {
            details.open = true; openHost(details);
            var box = details.querySelector(".chart.guest-use");
            if (box && box._select) { box._select(g.name); }
          }
        });
        name.appendChild(link);
        tr.appendChild(name);
        tr.appendChild(el("td", {"class": "text"}, g.host));
        tr.appendChild(el("td", {"class": "text"}, g.state));
        tr.appendChild(el("td", {}, String(g.vcpus)));
        tr.appendChild(el("td", {}, mib(g.memory_mib)));
        tr.appendChild(el("td", {}, pct(g.st.cpu.avg)));
        tr.appendChild(el("td", {}, pct(g.st.cpu.max)));
        tr.appendChild(el("td", {}, mib(g.st.mem.avg)));
        ["rd", "wr", "rx", "tx"].forEach(function (m) { tr.appendChild(el("td", {}, rate(g.st[m].avg))); });
        tr.appendChild(el("td", {}, g.psi ? ["cpu", "memory", "io"].map(function (k) {
          return compact(g.psi.avg[k]);
        }).join(" / ") + " %" : (g.s ? "unknown" : "\u2013")));
        tr.appendChild(el("td", {"class": "text", title: g.why || ""}, g.home ? "home " + g.home : ""));
        var sparkCell = el("td", {});
        if (g.s) { sparkCell.appendChild(spark(g.s.cpu)); }
        tr.appendChild(sparkCell);
        body.appendChild(tr);
      });
      pageInfo.textContent = shown.length ? "guests " + (page * PAGE + 1) + "\u2013" + Math.min(shown.length, page * PAGE + PAGE)
        + " of " + shown.length + (shown.length < D.guests.length ? " (filtered from " + D.guests.length + ")" : "")
        : "no guest matches";
    }
    var resort = sortable(table, shown, render, keys, null);
    document.getElementById("guests-prev").addEventListener("click", function () { if (page > 0) { page--; render(); } });
    document.getElementById("guests-next").addEventListener("click", function () { page++; render(); });
    find.addEventListener("input", function () {
      var q = find.value.toLowerCase();
      shown.length = 0;
      D.guests.forEach(function (g) {
        var text = [g.name, g.host, g.state, g.home || ""].concat(Object.keys(g.tags).map(function (k) {
          return k + "=" + g.tags[k];
        })).join(" ").toLowerCase();
        if (!q || text.indexOf(q) >= 0) { shown.push(g); }
      });
      page = 0;
      resort();
    });
  })();

  // the drift: sortable like the rest
  Array.prototype.forEach.call(document.querySelectorAll("table.static"), function (table) {
    var body = table.querySelector("tbody");
    var rows = Array.prototype.slice.call(body.children);
    var keys = Array.prototype.map.call(table.querySelectorAll("th"), function (th, index) {
      return function (tr) { return tr.children[index] ? tr.children[index].textContent : ""; };
    });
    sortable(table, rows, function () { rows.forEach(function (tr) { body.appendChild(tr); }); }, keys, null);
  });

  // where the charts are drawn (the browser test crops its screenshot to them), and that the page is done; after
  // uPlot has sized its canvases (it does so after the constructor returns)
  window.setTimeout(function () {
    var rects = charts.map(function (c) {
      var r = c.root.querySelector("canvas").getBoundingClientRect();
      return [Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY), Math.round(r.width),
              Math.round(r.height)];
    });
    document.body.setAttribute("data-charts", JSON.stringify(rects));
    document.body.setAttribute("data-ready", "1");
  }, 100);
})();
