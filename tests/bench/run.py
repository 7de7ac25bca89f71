"""Side-by-side benchmark: a no-op ``kvmfleet.libvirt.domain`` task versus ``ansible.builtin.ping``.

Both run in the same process, interleaved, against the same host. The cost of one task is taken as
(time of a playbook with N+1 tasks - time of one with 1 task) / N, which removes ansible-playbook's
start-up cost from both sides; the result is printed as a ratio. Run: bash scripts/run.sh bench
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tools"))

import harness  # noqa: E402  (after the path insert)

GUEST = "kvmfleet-test-bench"


def playbook(path, tasks):
    play = [{"name": "bench", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    path.write_text(json.dumps(play))
    return path


def timed(path, env):
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(harness.INVENTORY),
                           str(path)], env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or "changed=0" not in proc.stdout:
        raise SystemExit("benchmark playbook failed or changed something:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20, help="tasks per measured playbook (N)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    args = parser.parse_args()

    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".venv" / "collections"), ANSIBLE_NOCOLOR="1")
    domain_task = {"kvmfleet.libvirt.domain": {
        "name": GUEST, "virt_type": "qemu", "memory": 128, "vcpus": 1,
        "disks": [], "interfaces": [], "tags": {"bench": "yes"}}}
    ping_task = {"ansible.builtin.ping": {}}
    conn = harness.connect()
    harness.sweep(conn, GUEST)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        setup = playbook(tmp / "setup.json", [domain_task])
        subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(harness.INVENTORY),
                        str(setup)], env=env, capture_output=True, check=True)
        books = {
            ("domain", 1): playbook(tmp / "d1.json", [domain_task]),
            ("domain", args.tasks + 1): playbook(tmp / "dn.json", [domain_task] * (args.tasks + 1)),
            ("ping", 1): playbook(tmp / "p1.json", [ping_task]),
            ("ping", args.tasks + 1): playbook(tmp / "pn.json", [ping_task] * (args.tasks + 1)),
        }
        times = {key: [] for key in books}
        try:
            for _round in range(args.rounds):
                for key, path in books.items():  # interleaved: drift hits both sides alike
                    times[key].append(timed(path, env))
        finally:
            harness.sweep(conn, GUEST)
    med = {key: statistics.median(values) for key, values in times.items()}
    per_task = {name: (med[(name, args.tasks + 1)] - med[(name, 1)]) / args.tasks for name in ("domain", "ping")}
    print("benchmark: no-op task cost, %d tasks x %d interleaved rounds (median)" % (args.tasks, args.rounds))
    for name in ("ping", "domain"):
        print("  %-7s playbook of 1: %.2f s  of %d: %.2f s  per task: %.1f ms" % (
            name, med[(name, 1)], args.tasks + 1, med[(name, args.tasks + 1)], per_task[name] * 1000))
    ratio = per_task["domain"] / per_task["ping"]
    print("ratio domain/ping per task: %.2fx (whole %d-task playbook: %.2fx)" % (
        ratio, args.tasks + 1, med[("domain", args.tasks + 1)] / med[("ping", args.tasks + 1)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
