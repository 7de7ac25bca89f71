"""playbooks/report.yml against the real daemon, its page opened offline in headless Chromium: no console errors,
the charts drawn, and the figures on the page what host_info and domain_info say."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser

import yaml
from PIL import Image

import harness

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PALETTE = [(0x3b, 0x82, 0xc4), (0xe4, 0x57, 0x2e), (0x29, 0xa3, 0x6a), (0x9b, 0x5d, 0xe5), (0xf3, 0xa7, 0x12)]
WINDOW = (1400, 2200)


class Elements(HTMLParser):
    """Every start tag's attributes, by tag (what the page shows, read back from the DOM Chromium dumps)."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))

    def having(self, tag, attr):
        return [a for t, a in self.found if t == tag and attr in a]


def chromium(page, tmp_path, *args):
    """Run headless Chromium on the page, offline (every request goes to a proxy that is not there)."""
    assert CHROMIUM, "Debian's chromium is not installed (bindep.txt; scripts/setup.sh installs it)"
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1",
            "--window-size=%d,%d" % WINDOW, "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0",
            "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--user-data-dir=%s" % (tmp_path / "chromium"), *args, page.as_uri()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, "the page said something in the browser's console:\n" + "\n".join(console)
    return proc.stdout


def inventory_for(tmp_path, declared):
    """This machine as the one hypervisor of group hypervisors, listing ``declared`` in Git (its guests_list)."""
    path = tmp_path / "inventory.yml"
    group = {"hosts": {"here": {"kvmfleet_uri": harness.URI, "guests_list": declared}},
             "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}
    path.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": group}}}))
    return path


def effects(run):
    """(task, changed) of every task a run made, by host: what check mode must predict."""
    return [(name, effect if not isinstance(effect, tuple) else effect[0]) for name, effect in run.changes_by_task()]


def test_report_page_offline_charts_and_figures(conn, prefix, ansible, image, lab, tmp_path):
    started = time.monotonic()
    one, two = prefix + "r1", prefix + "r2"
    ansible.run([harness.guest(one, image, lab), harness.guest(two, image, lab, vcpus=2)])
    # Git declares one of them with a vCPU more than it has: the drift the report shows
    declared = dict(harness.guest(one, image, lab)["kvmfleet.libvirt.domain"], vcpus=2)
    declared.pop("shutdown_timeout")  # the domain module's, not the guest's
    inventory = inventory_for(tmp_path, [declared])
    playbook = harness.REPO / "playbooks" / "report.yml"
    page = tmp_path / "report" / "fleet.html"
    page.parent.mkdir()

    # check mode reads and renders (the report is written; nothing changes on the hypervisor): the long window
    window = {"report_path": str(page), "report_sample_seconds": 12, "report_sample_interval": 3}
    checked = ansible.run(None, window, check=True, playbook=playbook, inventory=inventory)
    facts = ansible.run([{"name": "facts", "kvmfleet.libvirt.host_info": {}},
                         {"name": "guests", "kvmfleet.libvirt.domain_info": {"addresses": False}}])
    host, guests = facts.result("facts"), {g["name"]: g for g in facts.result("guests")["guests"]}
    assert checked.recap["here"]["changed"] == 0 and checked.recap["localhost"]["changed"] == 1, checked.recap
    text = page.read_text()
    assert 100_000 > len(text) > 50_000, len(text)  # uPlot (51 kB) and the page: nothing more to fetch
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:|//)', text, re.I)

    dom = chromium(page, tmp_path, "--dump-dom")
    parsed = Elements()
    parsed.feed(dom)
    body = parsed.having("body", "data-ready")
    assert body, "the page's script did not finish"
    assert "data-errors" not in body[0], re.search(r'<ul id="report-errors".*?</ul>', dom, re.S).group(0)

    # the hypervisor's card: host_info's figures, exactly
    card = [a for a in parsed.having("div", "data-host") if a.get("class") == "card"]
    assert len(card) == 1 and card[0]["data-host"] == "here" and card[0]["data-reachable"] == "true"
    card = card[0]
    assert int(card["data-cpus"]) == host["cpu"]["count"]
    assert int(card["data-memory-total-mib"]) == host["memory"]["total_mib"] == int(card["data-capacity-mib"])
    for size, count in host["hugepages"].items():
        assert int(card["data-hugepages-%s-total" % size]) == count
    assert card["data-cordoned"] == str(host["maintenance"]["cordoned"]).lower()
    if host["ksm"] is not None:
        assert int(card["data-ksm-pages-sharing"]) >= 0
    assert int(card["data-state-running"]) >= 2 and int(card["data-guests-total"]) >= 2
    # the guests' rows (drawn by the page's script): domain_info's figures, exactly
    rows = {a["data-guest"]: a for a in parsed.having("tr", "data-guest") if "data-vcpus" in a}
    for name in (one, two):
        spec = guests[name]["spec"]
        assert rows[name]["data-state"] == guests[name]["state"] == "running"
        assert int(rows[name]["data-vcpus"]) == spec["vcpus"] == (2 if name == two else 1)
        assert int(rows[name]["data-memory-mib"]) == 256 and rows[name]["data-host"] == "here"
    # the drift: Git says 2 vCPUs for the first guest
    assert not parsed.having("p", "data-plan-error")
    drift = parsed.having("tr", "data-kind")
    assert {"data-guest": one, "data-kind": "change", "class": "kind-change"} in drift, drift
    assert re.search(r"vcpus: 1 -&gt; 2", dom)
    # the samples: 4 of 3 s, each guest's series in the page's data
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text,
                                re.S).group(1))
    assert data["window"]["samples"] == 4 and 2.5 < data["window"]["interval_s"] < 4.5, data["window"]
    mine = {g["name"]: g for g in data["guests"] if g["name"] in (one, two)}
    assert set(mine) == {one, two} and all(set(g["s"]) == {"cpu", "mem", "rd", "wr", "rx", "tx"} for g in mine.values())

    # the charts: the host's and its guests' drawn, with lines in them
    rects = json.loads(body[0]["data-charts"])
    assert len(rects) == 2 and all(w > 300 and h > 100 for _x, _y, w, h in rects), rects
    shot = tmp_path / "report.png"
    chromium(page, tmp_path, "--screenshot=%s" % shot)
    picture = Image.open(shot).convert("RGB")
    assert picture.size == WINDOW
    for x, y, width, height in rects:
        assert y + height <= WINDOW[1], "chart below the screenshot: %s" % rects
        crop = picture.crop((x, y, x + width, y + height))
        colours = crop.getcolors(width * height)  # [(count, (r, g, b))]
        drawn = width * height - max(colours)[0]  # every pixel but the background's
        lines = sum(count for count, pixel in colours
                    if any(sum(abs(a - b) for a, b in zip(pixel, c)) < 40 for c in PALETTE))
        print("chart at %s: %d pixels drawn, %d in series colours" % ((x, y, width, height), drawn, lines))
        assert drawn > 0.02 * width * height and lines > 50, (x, y, width, height, drawn, lines)

    # the contract: check mode predicted what a real run makes; twice nothing changes on the hypervisor, and the
    # one change of a run is the report written on the controller
    quick = dict(window, report_sample_seconds=2, report_sample_interval=1)
    first = ansible.run(None, quick, playbook=playbook, inventory=inventory)
    second = ansible.run(None, quick, playbook=playbook, inventory=inventory)
    for run in (first, second):
        assert run.recap["here"]["changed"] == 0 and run.recap["localhost"]["changed"] == 1, run.recap
    assert effects(checked) == effects(first) == effects(second)
    assert harness.domain_state(conn, one) == "running" and re.search(r"<vcpu[^>]*>1</vcpu>", harness.inactive_xml(conn, one))
    print("report test: %.0f s" % (time.monotonic() - started))


def test_a_thousand_guest_page_loads_clean_and_draws_a_page_of_rows(tmp_path):
    """The unit tests' synthetic fleet (1,000 guests on 10 hypervisors, 120 samples each) in the browser: no console
    errors, 50 rows of the guest table drawn, a hypervisor's charts drawn when its section opens."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "unit_test_report", harness.REPO / "tests" / "unit" / "plugins" / "module_utils" / "test_report.py")
    unit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unit)
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._report import data as report_data, html as report_html
    view, hosts, guests = unit.synthetic_fleet()
    page = tmp_path / "big.html"
    # one section opened, as a reader would: its charts are drawn then
    text = report_html.render(report_data.report_data(view, hosts, guests, {}))
    page.write_text(text.replace('<details class="host" id="host-hv003" data-host="hv003">',
                                 '<details class="host" id="host-hv003" data-host="hv003" open>'))
    started = time.monotonic()
    dom = chromium(page, tmp_path, "--dump-dom")
    print("%.1f MB page loaded and drawn in %.1f s" % (page.stat().st_size / 1e6, time.monotonic() - started))
    parsed = Elements()
    parsed.feed(dom)
    body = parsed.having("body", "data-ready")
    assert body and "data-errors" not in body[0]
    assert len([a for a in parsed.having("tr", "data-guest") if "data-vcpus" in a]) == 50
    assert len(json.loads(body[0]["data-charts"])) == 2
