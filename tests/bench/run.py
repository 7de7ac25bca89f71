"""Side-by-side benchmarks, printed as ratios. Run: bash scripts/run.sh bench [--guests 100 --scale 1000],
or bash scripts/run.sh bench-cluster [--hypervisors 10 --guests-each 100 --rounds 5]

Every number comes from playbooks run in this one process, interleaved round by round (so drift hits
both sides alike), the median of the rounds reported:

1. a no-op ``kvmfleet.libvirt.domain`` task versus ``ansible.builtin.ping`` (per task, start-up removed);
2. a no-change converge of N defined guests: one ``kvmfleet.libvirt.fleet`` task, versus N ``domain``
   tasks, versus a loop of community.libvirt's ``virt`` ``command: define`` over the same guests (the
   peer most used for libvirt in Ansible, from the ``ansible`` package on PyPI), versus a one-task
   ``ansible.builtin.ping`` playbook;
3. scale: the no-change converge of M guests versus N, and the peak memory of the process doing it;
4. creating N guests: one fleet task versus the community.libvirt loop;
5. with --cluster (run.sh bench-cluster), alone: the test bed (tests/testbed/testbed.sh) brought up with H hypervisors
   of G defined guests each, made by one site.yml; then a no-change site.yml over all H with the cluster view on,
   versus one hypervisor's G alone (a cluster of one), versus all H with guests_cluster=false (before the cluster
   view), and all H with forks 10; the seconds of each task. The test bed goes down at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tools"))

import harness  # noqa: E402  (after the path insert)
import libvirt  # noqa: E402
import yaml  # noqa: E402

BENCH = "kvmfleet-bench-"
PEER_DIR = REPO / ".venv" / "bench" / "collections"
PEER = "ansible>=12,<13"  # ships community.libvirt; only that collection is taken out of the wheel
NETWORK = BENCH + "net"
PYTHON_BIN = Path(sys.executable).parent


def install_peer():
    """community.libvirt from the ansible package's wheel (PyPI), into .venv/bench/collections."""
    target = PEER_DIR / "ansible_collections" / "community" / "libvirt"
    if (target / "plugins" / "modules" / "virt.py").exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(PYTHON_BIN / "pip"), "download", "-q", "--no-deps", "-d", tmp, PEER], check=True)
        wheel = next(Path(tmp).glob("ansible-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            members = [n for n in archive.namelist() if n.startswith("ansible_collections/community/libvirt/")]
            archive.extractall(PEER_DIR, members)


def env():
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH="%s:%s" % (REPO / ".venv" / "collections", PEER_DIR),
                ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false")


def playbook(path, tasks):
    path.write_text(json.dumps([{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return path


def timed(path, expect_changed=None, inventory=None, args=(), extra_env=None):
    """Wall time of one ansible-playbook run and its changed count (summed over the hosts of the recap).
    extra_env: variables to set (a value of None removes the variable)."""
    run_env = env()
    for key, value in (extra_env or {}).items():
        if value is None:
            run_env.pop(key, None)
        else:
            run_env[key] = value
    start = time.perf_counter()
    proc = subprocess.run([str(PYTHON_BIN / "ansible-playbook"), "-i", str(inventory or harness.INVENTORY), *args, str(path)],
                          env=run_env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit("benchmark playbook %s failed:\n%s%s" % (path.name, proc.stdout[-3000:], proc.stderr[-3000:]))
    recap = re.findall(r"^\S+\s+:\s+ok=\d+\s+changed=(\d+)", proc.stdout, re.M)
    if not recap:
        raise SystemExit("benchmark playbook %s: no recap in its output:\n%s" % (path.name, proc.stdout[-3000:]))
    changed = sum(int(count) for count in recap)
    if expect_changed is not None and changed != expect_changed:
        raise SystemExit("benchmark playbook %s changed %d (expected %d):\n%s"
                         % (path.name, changed, expect_changed, proc.stdout[-3000:]))
    return elapsed, changed


def guest(n):
    return {"name": "%s%04d" % (BENCH, n), "virt_type": "qemu", "memory": "64MiB", "vcpus": 1,
            "interfaces": [{"network": NETWORK}], "tags": {"bench": "yes"}}


def fleet_task(count, **extra):
    return {"kvmfleet.libvirt.fleet": dict({"guests": [guest(n) for n in range(count)], "parallel": 1}, **extra)}


def domain_tasks(count):
    return [{"kvmfleet.libvirt.domain": guest(n)} for n in range(count)]


def peer_loop(xml_dir, count):
    """community.libvirt's virt module, command: define, over the guests' own XML (as libvirt dumped it)."""
    return [{"community.libvirt.virt": {"command": "define", "xml": "{{ lookup('file', item) }}"},
             "loop": [str(xml_dir / ("%s%04d.xml" % (BENCH, n))) for n in range(count)]}]


def sweep():
    conn = harness.connect()
    harness.sweep(conn, BENCH)
    conn.close()


def prepare(count):
    """count defined guests (by the fleet module), the network they use, and each one's XML for the peer."""
    conn = harness.connect()
    if NETWORK not in [n.name() for n in conn.listAllNetworks(0)]:
        conn.networkCreateXML("<network><name>%s</name><bridge name='kvfbench0'/></network>" % NETWORK)
    conn.close()
    with tempfile.TemporaryDirectory() as tmp:
        timed(playbook(Path(tmp) / "make.json", [fleet_task(count)]))


def dump_xml(xml_dir, count):
    conn = harness.connect()
    xml_dir.mkdir(exist_ok=True)
    for n in range(count):
        name = "%s%04d" % (BENCH, n)
        (xml_dir / (name + ".xml")).write_text(conn.lookupByName(name).XMLDesc(0x2))  # INACTIVE
    conn.close()


def rounds(books, count, expected=None, after=None):
    """Each book (a playbook, or a (playbook, options of timed) pair) once per round, interleaved; the medians.
    after(key, elapsed) is called after each run."""
    times = {key: [] for key in books}
    changed = {}
    for _round in range(count):
        for key, book in books.items():  # interleaved
            path, options = book if isinstance(book, tuple) else (book, {})
            elapsed, changed[key] = timed(path, (expected or {}).get(key), **options)
            times[key].append(elapsed)
            if after:
                after(key, elapsed)
    return {key: statistics.median(values) for key, values in times.items()}, changed


def peak_memory(count):
    """The peak RSS (MiB) of a process that converges ``count`` defined guests as the fleet module does
    (the module's own code path, without Ansible's wrapper around it)."""
    code = (
        "import json, resource, sys\n"
        "from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.apply import converge_fleet\n"
        "from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.spec import argument_spec\n"
        "from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import open_connection\n"
        "from ansible.module_utils.common.arg_spec import ArgumentSpecValidator\n"
        "params = ArgumentSpecValidator(argument_spec()).validate(json.load(sys.stdin)).validated_parameters\n"
        "conn = open_connection(params['uri'])\n"
        "result = converge_fleet(conn, params, check=False)\n"
        "print(json.dumps({'changed': result['changed'], 'rss_mib': resource.getrusage(resource.RUSAGE_SELF)"
        ".ru_maxrss / 1024}))\n")
    args = {"uri": "qemu:///system", "guests": [guest(n) for n in range(count)], "parallel": 1}
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps(args), capture_output=True, text=True,
                          env=dict(env(), PYTHONPATH=str(REPO / ".venv" / "collections")), check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --cluster: site.yml over the test bed's hypervisors (tests/testbed/testbed.sh), the cluster view on.

TESTBED = REPO / "tests" / "testbed" / "testbed.sh"
TESTBED_ROOT = Path(os.environ.get("KVMFLEET_TESTBED", "/run/kvmfleet-testbed"))
SITE = REPO / "playbooks" / "site.yml"
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
CLUSTER_GUEST = re.compile(r"^b\d\d-\d{4}$")


def testbed(verb, count):
    """testbed.sh VERB COUNT; its output's words (the URIs for up)."""
    proc = subprocess.run(["bash", str(TESTBED), verb, str(count)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("testbed.sh %s %d failed:\n%s%s" % (verb, count, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc.stdout.split()


def cluster_guest(host, n):
    """Guest n of hypervisor hvHOST: defined, not running, no disks, on the isolated network; b03-0042."""
    return {"name": "b%02d-%04d" % (host, n), "virt_type": "qemu", "memory": "64MiB", "vcpus": 1, "state": "present",
            "interfaces": [{"network": NETWORK}], "tags": {"fleet": "bench"}}


def cluster_inventory(path, uris, guests_each, members):
    """An inventory of the test bed's hypervisors ``members`` (1-based) in group hypervisors, each one's guests in
    its guests_list; prune on, over the guests tagged fleet=bench."""
    hosts = {"hv%d" % i: {"kvmfleet_uri": uris[i - 1], "guests_list": [cluster_guest(i, n) for n in range(guests_each)]}
             for i in members}
    group = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "hypervisor_manage": False,
        "networks_list": [{"name": NETWORK, "forward": "isolated", "bridge": "kvfbench0"}],
        "storage_pools": [],
        "guests_prune": True,
        "guests_prune_selector": {"fleet": "bench"},
    }
    inventory = {"all": {"children": {"hypervisors": {"hosts": hosts, "vars": group}}}}
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def check_guests(uris, guests_each):
    """Each hypervisor has its guests_each guests, and only those; none runs."""
    for i, uri in enumerate(uris, 1):
        conn = libvirt.openReadOnly(uri)
        try:
            names = sorted(d.name() for d in conn.listAllDomains(0))
            running = [d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]
        finally:
            conn.close()
        expected = [cluster_guest(i, n)["name"] for n in range(guests_each)]
        if names != expected or running:
            raise SystemExit("hv%d (%s) has %d guests (%d running), expected its %d defined: %s..."
                             % (i, uri, len(names), len(running), guests_each, names[:5]))


def undefine_guests(uris):
    """The bench's guests, undefined through the API: testbed.sh down does one virsh call per guest."""
    for uri in uris:
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError:
            continue
        try:
            for dom in conn.listAllDomains(0):
                if CLUSTER_GUEST.match(dom.name()):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
        finally:
            conn.close()


def machine():
    model = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from ansible.release import __version__ as ansible_version
    version = libvirt.getVersion()
    return "%s, %d cores, %s %s; ansible-core %s, libvirt %d.%d.%d" % (
        model, os.cpu_count(), platform.system(), platform.release(), ansible_version,
        version // 1000000, version // 1000 % 1000, version % 1000)


def cluster(args):
    """The cluster scale benchmark: (a) a no-change site.yml over every hypervisor, the cluster view on, against
    (b) one hypervisor's alone (a cluster of one) and (c) every hypervisor with guests_cluster=false."""
    count, each = args.hypervisors, args.guests_each
    if TESTBED_ROOT.exists():
        raise SystemExit("%s exists: the test bed is up (another run's?). This benchmark brings up its own and takes it "
                         "down at the end; if it is a leftover, run: bash %s down %d" % (TESTBED_ROOT, TESTBED, max(count, 3)))
    started = time.perf_counter()
    uris = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            print("test bed up (%d hypervisors)..." % count, file=sys.stderr, flush=True)
            clock = time.perf_counter()
            uris = testbed("up", count)
            up_time = time.perf_counter() - clock
            every = cluster_inventory(tmp / "cluster.yml", uris, each, range(1, count + 1))
            alone = cluster_inventory(tmp / "alone.yml", uris, each, [1])
            timing = {"ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS), "ANSIBLE_CALLBACKS_ENABLED": "kvmfleet_timing",
                      "ANSIBLE_FORKS": None}  # Ansible's default forks (5) unless a side says otherwise

            def side(inventory, key, cli=(), **extra):
                return (SITE, {"inventory": inventory, "args": cli,
                               "extra_env": dict(timing, KVMFLEET_TIMING_FILE=str(tmp / (key + ".json")), **extra)})

            print("creating %d x %d guests..." % (count, each), file=sys.stderr, flush=True)
            clock = time.perf_counter()
            path, options = side(every, "create")
            _elapsed, created = timed(path, **options)
            create_time = time.perf_counter() - clock
            if not created:
                raise SystemExit("creating the guests: site.yml reported no change")
            check_guests(uris, each)

            books = {
                "a": side(every, "a"),
                "b": side(alone, "b"),
                "c": side(every, "c", ("-e", "guests_cluster=false")),
                "a10": side(every, "a10", ANSIBLE_FORKS="10"),
            }
            per_task = {key: {} for key in books}
            outside = {key: [] for key in books}

            def after(key, elapsed):
                print("  %s: %.2f s" % (key, elapsed), file=sys.stderr, flush=True)
                record = json.loads((tmp / (key + ".json")).read_text())
                for task, seconds in record["tasks"].items():
                    per_task[key].setdefault(task, []).append(seconds)
                outside[key].append(elapsed - sum(record["tasks"].values()))

            print("%d rounds of a, b, c, a10 (no-change site.yml runs)..." % args.rounds, file=sys.stderr, flush=True)
            med, _changed = rounds(books, args.rounds, {key: 0 for key in books}, after)
            print(cluster_table(args, med, per_task, outside, up_time, create_time, created))
    finally:
        if uris:
            undefine_guests(uris)
        clock = time.perf_counter()
        testbed("down", count)
        print("test bed down: %.1f s; the whole benchmark: %.1f min" % (
            time.perf_counter() - clock, (time.perf_counter() - started) / 60))
    return 0


def cluster_table(args, med, per_task, outside, up_time, create_time, created):
    count, each = args.hypervisors, args.guests_each
    a, b, c, a10 = med["a"], med["b"], med["c"], med["a10"]
    lines = [
        "Cluster scale, %s: %d test-bed hypervisors x %d defined guests, no-change site.yml, median of %d rounds"
        % (time.strftime("%Y-%m-%d %H:%M"), count, each, args.rounds),
        "machine: %s" % machine(),
        "test bed up (%d): %.1f s; creating the %d guests (one site.yml, changed=%d): %.1f s"
        % (count, up_time, count * each, created, create_time),
        "",
        "| side | median |",
        "|---|---|",
        "| a. all %d hypervisors (%d guests), cluster view on, forks 5 | %.2f s |" % (count, count * each, a),
        "| b. hv1 alone (%d guests), a cluster of one, forks 5 | %.2f s |" % (each, b),
        "| c. all %d hypervisors, guests_cluster=false (today's), forks 5 | %.2f s |" % (count, c),
        "| a with forks 10 (ANSIBLE_FORKS=10) | %.2f s |" % a10,
        "",
        "a / b = %.2fx (goal: at most 2x: %s); a(forks 10) / b = %.2fx" % (a / b, "met" if a / b <= 2 else "NOT met", a10 / b),
        "a / c = %.2fx (the cluster view's extra cost: %+.2f s)" % (a / c, a - c),
        "",
        "Where the time goes: median wall seconds per task, from its start to the next's (tasks of 0.3 s or more on a side):",
        "| task | a | b | c | a10 |",
        "|---|---|---|---|---|",
    ]
    sides = ("a", "b", "c", "a10")
    medians = {key: {task: statistics.median(v) for task, v in tasks.items()} for key, tasks in per_task.items()}
    names = sorted({task for tasks in medians.values() for task in tasks},
                   key=lambda task: -max(tasks.get(task, 0) for tasks in medians.values()))
    shown = [task for task in names if max(tasks.get(task, 0) for tasks in medians.values()) >= 0.3]
    for task in shown:
        label = task if len(task) <= 100 else task[:97] + "..."
        lines.append("| %s | %s |" % (label, " | ".join(
            "%.2f" % medians[key][task] if task in medians[key] else "-" for key in sides)))
    rest = [task for task in names if task not in shown]
    lines.append("| (the %d other tasks) | %s |" % (len(rest), " | ".join(
        "%.2f" % sum(medians[key].get(task, 0) for task in rest) for key in sides)))
    lines.append("| (outside tasks: start-up, inventory, plays) | %s |" % " | ".join(
        "%.2f" % statistics.median(outside[key]) for key in sides))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=100, help="fleet size N")
    parser.add_argument("--scale", type=int, default=1000, help="the larger fleet M (0: skip the scale run)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds; the median is reported (3; --cluster: 5)")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per playbook for the per-task cost")
    parser.add_argument("--cluster", action="store_true", help="the cluster scale benchmark instead (5. above)")
    parser.add_argument("--hypervisors", type=int, default=10, help="--cluster: test-bed hypervisors")
    parser.add_argument("--guests-each", type=int, default=100, help="--cluster: defined guests per hypervisor")
    args = parser.parse_args()
    if args.cluster:
        args.rounds = args.rounds or 5
        return cluster(args)
    args.rounds = args.rounds or 3
    install_peer()
    sweep()
    n = args.guests
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            ping = {"ansible.builtin.ping": {}}
            one = guest(0)
            # 1. per-task cost of a no-op domain task
            prepare(n)
            books = {
                ("domain", 1): playbook(tmp / "d1.json", [{"kvmfleet.libvirt.domain": one}]),
                ("domain", args.tasks + 1): playbook(tmp / "dn.json", [{"kvmfleet.libvirt.domain": one}] * (args.tasks + 1)),
                ("ping", 1): playbook(tmp / "p1.json", [ping]),
                ("ping", args.tasks + 1): playbook(tmp / "pn.json", [ping] * (args.tasks + 1)),
            }
            med, _changed = rounds(books, args.rounds, {key: 0 for key in books})
            per_task = {name: (med[(name, args.tasks + 1)] - med[(name, 1)]) / args.tasks for name in ("domain", "ping")}
            print("1. a no-op task, %d tasks x %d rounds: domain %.1f ms, ping %.1f ms per task: %.2fx" % (
                args.tasks, args.rounds, per_task["domain"] * 1000, per_task["ping"] * 1000,
                per_task["domain"] / per_task["ping"]))

            # 2. no-change converge of N guests
            dump_xml(tmp / "xml", n)
            books = {
                "ping (1 task)": playbook(tmp / "ping.json", [ping]),
                "fleet (1 task)": playbook(tmp / "fleet.json", [fleet_task(n)]),
                "domain (%d tasks)" % n: playbook(tmp / "domains.json", domain_tasks(n)),
                "community.libvirt virt define (loop of %d)" % n: playbook(tmp / "peer.json", peer_loop(tmp / "xml", n)),
            }
            med, changed = rounds(books, args.rounds, {"ping (1 task)": 0, "fleet (1 task)": 0,
                                                       "domain (%d tasks)" % n: 0})
            fleet = med["fleet (1 task)"]
            print("2. no-change converge of %d defined guests (median of %d rounds):" % (n, args.rounds))
            for key, value in med.items():
                print("   %-45s %7.2f s  %6.2fx fleet  (changed=%d)" % (key, value, value / fleet, changed[key]))
            print("   fleet / ping: %.2fx; community.libvirt loop / fleet: %.1fx" % (
                fleet / med["ping (1 task)"], med["community.libvirt virt define (loop of %d)" % n] / fleet))

            # 3. scale
            if args.scale:
                prepare(args.scale)
                books = {"fleet %d" % n: playbook(tmp / "fleet-n.json", [fleet_task(n)]),
                         "fleet %d" % args.scale: playbook(tmp / "fleet-m.json", [fleet_task(args.scale)])}
                med, _changed = rounds(books, args.rounds, {key: 0 for key in books})
                memory = peak_memory(args.scale)
                print("3. no-change converge, %d guests defined: fleet of %d %.2f s, fleet of %d %.2f s: %.2fx for "
                      "%dx the guests; peak memory converging %d: %.0f MiB" % (
                          args.scale, n, med["fleet %d" % n], args.scale, med["fleet %d" % args.scale],
                          med["fleet %d" % args.scale] / med["fleet %d" % n], args.scale // n, args.scale,
                          memory["rss_mib"]))
            sweep()

            # 4. creating N guests (each side from nothing, rounds interleaved)
            create = {"fleet": [], "community.libvirt": []}
            conn = harness.connect()
            conn.networkCreateXML("<network><name>%s</name><bridge name='kvfbench0'/></network>" % NETWORK)
            conn.close()
            for _round in range(args.rounds):
                create["fleet"].append(timed(playbook(tmp / "create.json", [fleet_task(n)]), n and 1)[0])
                sweep_guests()
                create["community.libvirt"].append(timed(playbook(tmp / "create-peer.json", peer_loop(tmp / "xml", n)))[0])
                sweep_guests()
            fleet, peer = statistics.median(create["fleet"]), statistics.median(create["community.libvirt"])
            print("4. creating %d guests: fleet %.2f s, community.libvirt loop %.2f s: %.1fx" % (n, fleet, peer, peer / fleet))
    finally:
        sweep()
    return 0


def sweep_guests():
    conn = harness.connect()
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(BENCH):
            dom.undefine()
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
