"""Integration harness: run real ansible-playbook against the real libvirtd and read libvirt back.

Every libvirt object a test makes is named with ``PREFIX``; ``sweep`` removes them all, so a
failed test leaves nothing behind for the next one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import libvirt
import yaml

import testguest

REPO = Path(__file__).resolve().parents[2]
PREFIX = "kvmfleet-test-"
URI = "qemu:///system"
IMAGE_DIR = Path("/var/lib/libvirt/images/kvmfleet-test")
INVENTORY = REPO / "playbooks" / "inventories" / "local.yml"

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def unique_prefix():
    """A name prefix for one test's objects: PREFIX, the test run's pid, a short random tag."""
    return "%sp%d-%s-" % (PREFIX, os.getpid(), uuid.uuid4().hex[:6])


def _run_prefix(name):
    """'kvmfleet-test-p42-' for 'kvmfleet-test-p42-1a2b3c-g1'; the name itself when it has no pid."""
    rest = name[len(PREFIX):]
    if rest.startswith("p") and "-" in rest:
        return PREFIX + rest[:rest.index("-") + 1]
    return name


def _owner_alive(name):
    """Whether the test run that made ``name`` (by the pid in its prefix) is still running."""
    rest = name[len(PREFIX):]
    if not rest.startswith("p") or "-" not in rest:
        return False
    try:
        os.kill(int(rest[1:rest.index("-")]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(conn):
    """Remove what crashed or interrupted runs left behind; never what a live run is using."""
    names = [d.name() for d in conn.listAllDomains(0)] + [n.name() for n in conn.listAllNetworks(0)]
    names += [p.name() for p in conn.listAllStoragePools(0)]
    for pool in conn.listAllStoragePools(0):
        if pool.isActive():
            names += [v.name() for v in pool.listAllVolumes(0) or []]
    if IMAGE_DIR.is_dir():
        names += [p.name for p in IMAGE_DIR.iterdir()] + [p.name for p in IMAGE_DIR.parent.glob(PREFIX + "*")]
    stale = {_run_prefix(n) for n in names if n.startswith(PREFIX) and not _owner_alive(n)}
    for prefix in sorted(stale):
        sweep(conn, prefix)


@dataclass
class PlaybookRun:
    """One ansible-playbook run: return code, per-task results (from our callback) and the recap."""

    rc: int
    tasks: list
    recap: dict
    output: str
    check: bool = False
    argv: list = field(default_factory=list)

    def _task(self, task_name):
        matches = [t for t in self.tasks if t["task"] == task_name]
        assert matches, "no task named %r in run; tasks: %s" % (task_name, [t["task"] for t in self.tasks])
        return matches[-1]

    def result(self, task_name, host=None):
        """The result dict of the (last) task with this name (on ``host``, when several hosts ran it)."""
        if host is None:
            return self._task(task_name)["result"]
        matches = [t for t in self.tasks if t["task"] == task_name and t.get("host") == host]
        assert matches, "no task named %r ran on %s" % (task_name, host)
        return matches[-1]["result"]

    def status(self, task_name):
        """'ok', 'failed', 'skipped', ... of the (last) task with this name."""
        return self._task(task_name)["status"]

    @property
    def changed(self):
        return sum(h.get("changed", 0) for h in self.recap.values())

    @property
    def failed(self):
        return sum(h.get("failures", 0) + h.get("unreachable", 0) for h in self.recap.values())

    def changes_by_task(self):
        """(task name, changed, diff) of every task that ran: what check mode must predict.

        Loop tasks count per item: [(changed, diff), ...] of their results.
        """
        def effect(result):
            if "results" in result:
                return [(bool(r.get("changed")), r.get("diff")) for r in result["results"]]
            return (bool(result.get("changed")), result.get("diff"))
        # Hosts run in parallel, so their results arrive in any order: each host's, in order, host by host.
        ran = [(t.get("host", ""), n, t) for n, t in enumerate(self.tasks) if t["status"] == "ok"]
        return [(t["task"], effect(t["result"])) for _host, _n, t in sorted(ran, key=lambda r: (r[0], r[1]))]


class Ansible:
    """Writes playbooks from Python data and runs them with ansible-playbook."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def _env(self, record_file):
        env = dict(os.environ)
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".venv" / "collections"),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).parent / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "kvmfleet_record" + os.environ.get("KVMFLEET_EXTRA_CALLBACKS", ""),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "KVMFLEET_RECORD_FILE": str(record_file),
        })
        return env

    def write_playbook(self, tasks, hosts="localhost"):
        self._count += 1
        path = self.workdir / ("play%02d.yml" % self._count)
        play = [{"name": "kvmfleet test", "hosts": hosts, "gather_facts": False, "tasks": tasks}]
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        return path

    def run(self, tasks, extra_vars=None, check=False, diff=True, playbook=None, expect_rc=0, inventory=None,
            verbose=False):
        """Run tasks (a list of task dicts) or an existing playbook file; return a PlaybookRun (``verbose``: -vvv)."""
        path = Path(playbook) if playbook else self.write_playbook(tasks)
        self._count += 1
        record = self.workdir / ("record%02d.json" % self._count)
        argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory or INVENTORY), str(path)]
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        if verbose:
            argv.append("-vvv")
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        started = time.monotonic()
        proc = subprocess.run(argv, env=self._env(record), capture_output=True, text=True, timeout=900,
                              check=False)
        output = proc.stdout + proc.stderr
        sys.stdout.write("$ %s\n%s(%.1f s)\n" % (" ".join(argv), output, time.monotonic() - started))
        data = json.loads(record.read_text()) if record.exists() else {"tasks": [], "recap": {}}
        run = PlaybookRun(proc.returncode, data["tasks"], data["recap"], output, check, argv)
        if expect_rc is not None:
            assert proc.returncode == expect_rc, "ansible-playbook exited %d (expected %d):\n%s" % (
                proc.returncode, expect_rc, output[-6000:])
        return run

    def converge(self, tasks, extra_vars=None, expect_change=True, playbook=None, inventory=None):
        """The contract every scenario keeps; returns the first real run.

        1. check mode predicts the change (per task: changed and diff) that
        2. the real run then makes;
        3. a second real run changes nothing;
        4. check mode after it predicts nothing.
        """
        predicted = self.run(tasks, extra_vars, check=True, playbook=playbook, inventory=inventory)
        first = self.run(tasks, extra_vars, playbook=playbook, inventory=inventory)
        prediction = predicted.changes_by_task()
        ran_in_check = {name for name, _effect in prediction}
        made = [item for item in first.changes_by_task() if item[0] in ran_in_check]
        assert prediction == made, "check mode predicted a different change than the real run made"
        if expect_change:
            assert first.changed > 0, "the first run changed nothing"
        second = self.run(tasks, extra_vars, playbook=playbook, inventory=inventory)
        assert second.changed == 0, "second run was not idempotent: %s" % [
            t["task"] for t in second.tasks if t["result"].get("changed")]
        after = self.run(tasks, extra_vars, check=True, playbook=playbook, inventory=inventory)
        assert after.changed == 0, "check mode after convergence predicts a change"
        return first


# ---- reading and cleaning libvirt ------------------------------------------------------------

def connect():
    return libvirt.open(URI)


def _ignore(fn, *args):
    try:
        return fn(*args)
    except libvirt.libvirtError:
        return None


def sweep(conn, prefix=PREFIX):
    """Remove every domain, network, pool and volume whose name starts with ``prefix``."""
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(prefix):
            persistent = dom.isPersistent()  # a transient one is gone once destroyed
            if dom.isActive():
                _ignore(dom.destroy)
            if persistent:
                flags = (libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                         | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
                _ignore(dom.undefineFlags, flags)
    for net in conn.listAllNetworks(0):
        if net.name().startswith(prefix):
            persistent = net.isPersistent()
            if net.isActive():
                _ignore(net.destroy)
            if persistent:
                _ignore(net.undefine)
    for pool in conn.listAllStoragePools(0):
        if not pool.isActive():
            if pool.name().startswith(prefix) and pool.isPersistent():
                _ignore(pool.undefine)
            continue
        _ignore(pool.refresh, 0)
        for vol in pool.listAllVolumes(0) or []:
            if vol.name().startswith(prefix) or pool.name().startswith(prefix):
                _ignore(vol.delete, 0)
        if pool.name().startswith(prefix):
            persistent = pool.isPersistent()
            _ignore(pool.destroy)
            if persistent:
                _ignore(pool.undefine)
    if IMAGE_DIR.is_dir():
        for path in IMAGE_DIR.glob(prefix + "*"):
            if path.is_file():
                path.unlink()
    # The directories of the tests' dir pools (conftest's lab), left when a run was interrupted.
    for path in IMAGE_DIR.parent.glob(prefix + "*"):
        if path.is_dir() and not path.is_symlink() and path != IMAGE_DIR and not os.path.ismount(path):
            for leftover in path.iterdir():
                if leftover.is_file() or leftover.is_symlink():
                    leftover.unlink()
            _ignore_os(path.rmdir)


def _ignore_os(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def domain_xml(conn, name, inactive=False):
    dom = conn.lookupByName(name)
    return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0)


def domain_state(conn, name):
    """'running', 'shutoff', 'paused', ... or 'absent'."""
    try:
        state = conn.lookupByName(name).state(0)[0]
    except libvirt.libvirtError:
        return "absent"
    return {1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed",
            7: "pmsuspended"}.get(state, "nostate")


def wait_for(predicate, timeout=60.0, interval=0.5, what="condition"):
    """Poll ``predicate`` until it returns a truthy value; return it or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- test guests ------------------------------------------------------------------------------------

def serial_log(name):
    return Path("/var/log/libvirt/qemu/%s-serial.log" % name)


def guest(name, image, lab, **extra):
    """A domain task for a test guest: software emulation, direct kernel boot, console logged."""
    args = {
        "name": name,
        "virt_type": "qemu",
        "machine": "pc",
        "memory": 256,
        "boot": {"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": image["cmdline"]},
        "serials": [{"type": "pty", "log": str(serial_log(name))}],
        "disks": [{"pool": lab["pool"], "volume": name + "-root.qcow2", "size": "64MiB"}],
        "interfaces": [{"network": lab["network"]}],
        "state": "running",
        "shutdown_timeout": 30,
    }
    args.update(extra)
    return {"name": "guest " + name, "kvmfleet.libvirt.domain": args, "register": "result"}


def report_where(name, predicate, what, timeout=90):
    """Wait until the guest's latest console report satisfies ``predicate``; return it."""
    def check():
        path = serial_log(name)
        report = testguest.last_report(path.read_text(errors="replace")) if path.exists() else None
        return report if report and predicate(report) else None
    return wait_for(check, timeout=timeout, what="guest %s to report %s" % (name, what))


def inactive_xml(conn, name):
    return domain_xml(conn, name, inactive=True)


def unwrap_unsafe(value):
    """ansible-inventory marks the values an inventory plugin gave as unsafe ({"__ansible_unsafe": ...}):
    the values themselves."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: unwrap_unsafe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_unsafe(item) for item in value]
    return value
