"""One copy of every guest, whatever is done to the cluster (issue 20): a model of the cluster checked after every
step of a random sequence of the real playbooks and modules, on the three-hypervisor test bed.

The same idea as hypothesis's stateful testing, by hand: hypothesis's first example is its simplest (the same
step every time) and a step takes seconds, so there is no room for its search and shrinking. Each step is drawn
from the steps whose precondition holds, by a seeded generator; the seed is printed, and KVMFLEET_MODEL_SEED
replays a sequence. The steps: site.yml (twice:
the second changes nothing), plan.yml, evacuate.yml, restore.yml, rebalance.yml, a plain migrate, a hypervisor
cordoned and put back in service without a restore, a hypervisor killed (testbed.sh kill) then recover.yml by the
lock manager or by the fence, a killed hypervisor coming back with its old definitions and libvirt's autostart
(testbed.sh reboot).

After every step, against what the hypervisors report:
- no guest runs on two hypervisors, and no disk is opened by two QEMUs;
- a guest defined on two hypervisors that answer has at most one running copy, and no copy that libvirt would
  start by itself (autostart);
- after site.yml with every hypervisor answering: every guest of the description is defined exactly once, those it
  says run, run; a second site.yml changes nothing;
- plan.yml says where each guest away from its home runs.

KVMFLEET_MODEL_STEPS (18) steps per run; `scripts/run.sh model` runs a longer sequence.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
from collections import Counter

import libvirt
import pytest
import yaml

import harness
from test_testbed_fleet import PLAN_TASK, TESTBED, clear

pytestmark = pytest.mark.slow
PLAYBOOKS = harness.REPO / "playbooks"
KERNEL = "/var/lib/libvirt/images/kvmfleet-test/"
HVS = ("hv1", "hv2", "hv3")
# name: (home, state, disk on the shared storage)
GUESTS = {"m1": ("hv1", "running", True), "m2": ("hv2", "running", True), "m3": ("hv1", "present", True),
          "m4": ("hv3", "present", False), "m5": ("hv2", "present", False)}
STEPS = int(os.environ.get("KVMFLEET_MODEL_STEPS", "18"))
SEED = int(os.environ.get("KVMFLEET_MODEL_SEED") or random.SystemRandom().randrange(1, 2 ** 31))


def inventory(path, testbed):
    shared = str(testbed["root"] / "shared" / "pool")
    hosts = {}
    for n, hv in enumerate(HVS):
        listed = []
        for name, (home, state, disk) in GUESTS.items():
            if home != hv:
                continue
            guest = {"name": name, "profile": "tiny", "state": state}
            if disk:
                guest["disks"] = [{"dev": "vda", "pool": "shared", "volume": name + ".raw", "size": "8MiB",
                                   "format": "raw", "cache": "none"}]
            listed.append(guest)
        hosts[hv] = {"kvmfleet_uri": testbed["uris"][n], "kvmfleet_guest_memory_mib": 2000, "guests_list": listed}
    group_vars = {
        "hypervisor_manage": False,
        "networks_list": [{"name": "model", "bridge": "kvfmodel0", "autostart": True}],
        "storage_pools": [{"name": "shared", "type": "dir", "path": shared, "autostart": True}],
        "storage_volumes": [],
        "guests_profiles": {"tiny": {
            "virt_type": "qemu", "machine": "pc", "memory": "128MiB", "vcpus": 1,
            "boot": {"kernel": KERNEL + "vmlinuz", "initrd": KERNEL + "initrd.img", "cmdline": "console=ttyS0 panic=-1"},
            "interfaces": [{"network": "model"}], "tags": {"fleet": "model"}}},
        "guests_prune": True, "guests_prune_selector": {"fleet": "model"},
        # the shared pool is one directory of this machine: libvirt cannot tell it is shared (it knows NFS & co)
        "evacuate_unsafe": True, "restore_unsafe": True, "rebalance_unsafe": True,
        "guests_shutdown_timeout": 0, "guests_force_off": True,
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }
    path.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": group_vars}}}}))
    return path


def bed(*argv):
    subprocess.run(["bash", str(TESTBED)] + list(argv), check=True, capture_output=True, text=True)


def read(testbed, alive):
    """[(hypervisor, name, uuid, running, autostart, cordoned, [disk paths])] on the hypervisors alive."""
    found = []
    for hv in alive:
        conn = libvirt.open(testbed["uris"][HVS.index(hv)])
        cordoned = "kvmfleet-maintenance" in conn.listDefinedNetworks()
        for dom in conn.listAllDomains(0):
            xml = dom.XMLDesc(0)
            disks = re.findall(r"<source file='([^']+)'", xml)
            found.append((hv, dom.name(), dom.UUIDString(), bool(dom.isActive()), bool(dom.autostart()), cordoned, disks))
        conn.close()
    return found


class Cluster:
    """The cluster as the test drives it: which hypervisor is dead, which are cordoned; the steps and the invariants."""

    def __init__(self, testbed, ansible, inv, rng):
        self.testbed, self.ansible, self.inv, self.rng = testbed, ansible, inv, rng
        self.dead = None
        self.recovered = False  # recover.yml ran since the hypervisor died
        self.cordoned = set()
        self.log = []

    # -- helpers -------------------------------------------------------------------------------------------

    def alive(self):
        return [hv for hv in HVS if hv != self.dead]

    def play(self, name, check=False, **extra):
        expect = 2 if self.dead and name in ("site.yml", "guests.yml", "plan.yml") else 0
        return self.ansible.run(None, playbook=PLAYBOOKS / name, inventory=self.inv, check=check,
                                extra_vars=extra or None, expect_rc=expect)

    def step(self, text):
        self.log.append(text)
        print("model step %d: %s" % (len(self.log), text))

    def where(self):
        """{guest: the hypervisor of its running copy, else of a copy} over the hypervisors alive."""
        found = {}
        for g in read(self.testbed, self.alive()):
            if g[1] in GUESTS and (g[1] not in found or g[3]):
                found[g[1]] = g[0]
        return found

    def steps(self):
        """(weight, precondition, step) of every kind of step."""
        whole = self.dead is None
        return [
            (4, True, self.site),
            (2, True, self.plan),
            (2, whole, self.evacuate),
            (2, whole, self.restore),
            (2, whole and bool(self.cordoned), self.back_in_service_without_restore),
            (2, whole, self.rebalance),
            (3, whole, self.migrate),
            (2, whole, self.kill),
            (5, not whole and not self.recovered, self.recover),
            (2, not whole, self.reboot),
        ]

    def random_step(self):
        enabled = [(weight, step) for weight, ok, step in self.steps() if ok]
        step = self.rng.choices([s for _w, s in enabled], weights=[w for w, _s in enabled])[0]
        step()

    # -- steps ---------------------------------------------------------------------------------------------

    def site(self):
        self.step("site.yml (twice)")
        self.play("site.yml")
        second = self.play("site.yml")
        assert second.changed == 0, "a second site.yml changed: %s" % [
            (t["host"], t["task"]) for t in second.tasks if t["result"].get("changed")]
        if self.dead is None:
            found = read(self.testbed, HVS)
            for name, (_home, state, _disk) in GUESTS.items():
                copies = [g for g in found if g[1] == name]
                assert len(copies) == 1, "after site.yml %s is defined on %s" % (name, [g[0] for g in copies])
                assert copies[0][3] == (state == "running"), "after site.yml %s runs: %s" % (name, copies[0][3])

    def plan(self):
        self.step("plan.yml")
        run = self.play("plan.yml", check=True)
        lines = [line for t in run.tasks if t["task"] == PLAN_TASK for line in t["result"].get("msg") or []]
        found = read(self.testbed, self.alive())
        for hv, name, *_rest in found:
            if name in GUESTS and GUESTS[name][0] != hv and len([g for g in found if g[1] == name]) == 1:
                wanted = "%s: @ %s: home %s, runs here: " % (hv, name, GUESTS[name][0])
                assert any(line.startswith(wanted) for line in lines), (wanted, lines)

    def evacuate(self):
        hv = self.rng.choice(HVS)
        if not set(HVS) - self.cordoned - {hv}:
            return self.step("(no evacuation of %s: no other hypervisor in service)" % hv)
        self.step("evacuate.yml -e host=%s" % hv)
        self.play("evacuate.yml", host=hv)
        self.cordoned.add(hv)
        return None

    def restore(self):
        hv = self.rng.choice(HVS)
        self.step("restore.yml -e host=%s" % hv)
        self.play("restore.yml", host=hv)
        self.cordoned.discard(hv)

    def back_in_service_without_restore(self):
        hv = self.rng.choice(sorted(self.cordoned))
        self.step("%s back in service without a restore" % hv)
        self.ansible.run([{"name": "uncordon", "kvmfleet.libvirt.host_maintenance": {
            "uri": self.testbed["uris"][HVS.index(hv)], "state": "absent"}}])
        self.cordoned.discard(hv)

    def rebalance(self):
        self.step("rebalance.yml")
        self.play("rebalance.yml", rebalance_tolerance=0.05, rebalance_min_gain=0.01)

    def migrate(self):
        where = self.where()
        # A guest with a stale copy (a host back with its old definitions) is site.yml's to clean up first: migrate
        # refuses to move over, or away from beside, a copy, by design.
        copies = Counter(g[1] for g in read(self.testbed, self.alive()))
        moves = [(name, to) for name in sorted(GUESTS) for to in HVS
                 if where.get(name) not in (None, to) and to not in self.cordoned and copies[name] == 1]
        if not moves:
            return self.step("(no migration: every hypervisor a guest could go to is cordoned)")
        name, to = self.rng.choice(moves)
        here = where[name]
        self.step("migrate %s %s -> %s" % (name, here, to))
        self.ansible.run([{"name": "migrate", "kvmfleet.libvirt.migrate": {
            "uri": self.testbed["uris"][HVS.index(here)], "name": name,
            "destination_uri": self.testbed["uris"][HVS.index(to)], "record_origin": True, "unsafe": True}}])
        return None

    def kill(self):
        hv = self.rng.choice(HVS)
        self.step("testbed.sh kill %s" % hv)
        bed("kill", hv[2:])
        self.dead, self.recovered = hv, False

    def recover(self):
        how = self.rng.choice(["recover_lock_manager", "recover_fenced"])
        if not set(self.alive()) - self.cordoned:
            return self.step("(no recovery: no hypervisor in service to take the guests)")
        self.step("recover.yml -e host=%s -e %s=true" % (self.dead, how))
        self.play("recover.yml", host=self.dead, **{how: True})
        self.recovered = True
        return None

    def reboot(self):
        self.step("testbed.sh reboot %s (its old definitions, libvirt's autostart)" % self.dead)
        bed("reboot", self.dead[2:])
        self.dead = None

    # -- the invariants, after every step -----------------------------------------------------------------------

    def check(self):
        found = read(self.testbed, self.alive())
        running, opened, by_name = {}, {}, {}
        for hv, name, uuid, active, _autostart, _cordoned, disks in found:
            by_name.setdefault(name, []).append((hv, active, _autostart))
            if not active:
                continue
            assert uuid not in running, "%s runs on %s and %s" % (name, running[uuid], hv)
            running[uuid] = hv
            for path in disks:
                assert path not in opened, "%s is opened by %s and by %s on %s" % (path, opened[path], name, hv)
                opened[path] = "%s on %s" % (name, hv)
        for name, copies in by_name.items():
            if len(copies) > 1:
                assert sum(active for _hv, active, _a in copies) <= 1, "%s runs twice: %s" % (name, copies)
                assert not any(a for _hv, active, a in copies if not active), \
                    "a second copy of %s would start by itself (autostart): %s" % (name, copies)


def test_random_sequences_keep_one_copy_of_every_guest(testbed, ansible, tmp_path):
    print("model: seed %d, %d steps (replay: KVMFLEET_MODEL_SEED=%d)" % (SEED, STEPS, SEED))
    cluster = Cluster(testbed, ansible, inventory(tmp_path / "hosts.yml", testbed), random.Random(SEED))
    started = time.monotonic()
    try:
        clear(testbed)
        cluster.site()
        cluster.check()
        for _step in range(STEPS):
            cluster.random_step()
            cluster.check()
        if cluster.dead:  # the end: every hypervisor back, one site.yml, one copy of everything
            cluster.reboot()
        cluster.site()
        cluster.check()
    except BaseException:
        print("model: failed at step %d of seed %d; the steps: %s" % (len(cluster.log), SEED, cluster.log))
        raise
    finally:
        print("model: %.0f s, %d steps" % (time.monotonic() - started, len(cluster.log)))
        if cluster.dead:
            subprocess.run(["bash", str(TESTBED), "reboot", cluster.dead[2:]], capture_output=True, check=False)
        clear(testbed)
        forget_network_and_pool(testbed)


def forget_network_and_pool(testbed):
    """The model's network and pool go too: the test bed's other tests make a pool of that name themselves."""
    for uri in testbed["uris"]:
        conn = libvirt.open(uri)
        for lookup, name in ((conn.networkLookupByName, "model"), (conn.storagePoolLookupByName, "shared")):
            try:
                obj = lookup(name)
            except libvirt.libvirtError:
                continue
            if obj.isActive():
                obj.destroy()
            if obj.isPersistent():
                obj.undefine()
        conn.close()
