"""Side-by-side benchmarks, printed as ratios. Run: bash scripts/run.sh bench [--guests 100 --scale 1000]

Every number comes from playbooks run in this one process, interleaved round by round (so drift hits
both sides alike), the median of the rounds reported:

1. a no-op ``kvmfleet.libvirt.domain`` task versus ``ansible.builtin.ping`` (per task, start-up removed);
2. a no-change converge of N defined guests: one ``kvmfleet.libvirt.fleet`` task, versus N ``domain``
   tasks, versus a loop of community.libvirt's ``virt`` ``command: define`` over the same guests (the
   peer most used for libvirt in Ansible, from the ``ansible`` package on PyPI), versus a one-task
   ``ansible.builtin.ping`` playbook;
3. scale: the no-change converge of M guests versus N, and the peak memory of the process doing it;
4. creating N guests: one fleet task versus the community.libvirt loop.
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(path, expect_changed=None):
    """Wall time of one ansible-playbook run, its changed count, and the peak RSS of its largest process."""
    start = time.perf_counter()
    proc = subprocess.run([str(PYTHON_BIN / "ansible-playbook"), "-i", str(harness.INVENTORY), str(path)], env=env(),
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit("benchmark playbook %s failed:\n%s%s" % (path.name, proc.stdout[-3000:], proc.stderr[-3000:]))
    changed = int(proc.stdout.rsplit("changed=", 1)[1].split()[0])
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


def rounds(books, count, expected=None):
    times = {key: [] for key in books}
    changed = {}
    for _round in range(count):
        for key, path in books.items():  # interleaved
            elapsed, changed[key] = timed(path, (expected or {}).get(key))
            times[key].append(elapsed)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guests", type=int, default=100, help="fleet size N")
    parser.add_argument("--scale", type=int, default=1000, help="the larger fleet M (0: skip the scale run)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--tasks", type=int, default=20, help="tasks per playbook for the per-task cost")
    args = parser.parse_args()
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
