"""A hypervisor dies (issue 14): playbooks/recover.yml restarts its guests on the others, from the fleet's own
description of them (the inventory), never from the lost host.

hv2 runs r1 and r2 (disks on storage all three share) and r3 (a disk in hv2's own pool). First hv2 only loses its
network: its QEMUs run on and hold their disks, and libvirt's lock manager (virtlockd, its lockspace on the shared
storage) refuses to start r1 and r2 a second time - no copy is left behind. Then hv2 dies outright: recover restarts
r1 on hv1 and r2 on hv3, where each boots and reports on its console, carrying its origin; r3 is refused (its disk is
not shared). A second recover changes nothing. Check mode prints the evidence and changes nothing.
"""

from __future__ import annotations

import subprocess

import libvirt
import pytest
import yaml

import harness
from test_testbed_fleet import clear, report
from test_testbed_maintenance import identity, lines

pytestmark = pytest.mark.slow
RECOVER = harness.REPO / "playbooks" / "recover.yml"
TESTBED = harness.REPO / "tests" / "testbed" / "testbed.sh"
KERNEL = "/var/lib/libvirt/images/kvmfleet-test/"
NAMES = ("r1", "r2", "r3")


def inventory(path, testbed, shared):
    hosts = {"hv%d" % (n + 1): {"kvmfleet_uri": uri} for n, uri in enumerate(testbed["uris"])}
    # the room decides, not the free memory of the one machine all three share: r1 to hv1, r2 to hv3, r3 to hv1
    hosts["hv1"]["kvmfleet_guest_memory_mib"], hosts["hv3"]["kvmfleet_guest_memory_mib"] = 1000, 900
    hosts["hv2"]["guests_list"] = [
        {"name": name, "profile": "tiny", "serials": [{"type": "pty", "log": "/var/log/libvirt/qemu/%s-serial.log" % name}],
         "disks": [{"dev": "vda", "pool": "local" if name == "r3" else "shared", "volume": name + ".raw", "size": "8MiB",
                    "format": "raw", "cache": "none"}]} for name in NAMES]
    hosts["hv2"]["guests_profiles"] = {"tiny": {
        "virt_type": "qemu", "machine": "pc", "memory": "128MiB", "vcpus": 1, "state": "running",
        "boot": {"kernel": KERNEL + "vmlinuz", "initrd": KERNEL + "initrd.img", "cmdline": "console=ttyS0 panic=-1"},
        "interfaces": [{"network": "rec"}]}}
    path.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}}))
    return path


def bed(*argv):
    subprocess.run(["bash", str(TESTBED)] + list(argv), check=True, capture_output=True, text=True)


def recover(ansible, inv, check=False, expect_rc=2, **extra):
    return ansible.run(None, playbook=RECOVER, inventory=inv, check=check, expect_rc=expect_rc,
                       extra_vars=dict({"host": "hv2"}, **extra))


def where(testbed, alive=(1, 3)):
    found = {}
    for n in alive:
        conn = libvirt.open(testbed["uris"][n - 1])
        for dom in conn.listAllDomains(0):
            if dom.name() in NAMES:
                found[dom.name()] = ("hv%d" % n, "running" if dom.isActive() else "shutoff")
        conn.close()
    return found


def test_recover_the_guests_of_a_lost_hypervisor(testbed, ansible, tmp_path):
    clear(testbed)
    uris = testbed["uris"]
    shared = testbed["root"] / "shared" / "pool"
    (testbed["root"] / "hv2" / "lib" / "images" / "local").mkdir(exist_ok=True)
    for n, uri in enumerate(uris, start=1):
        conn = libvirt.open(uri)
        conn.networkCreateXML("<network><name>rec</name><bridge name='kvfrec0'/></network>")
        conn.storagePoolCreateXML("<pool type='dir'><name>shared</name><target><path>%s</path></target></pool>" % shared, 0)
        if n == 2:
            conn.storagePoolCreateXML("<pool type='dir'><name>local</name><target><path>/var/lib/libvirt/images/local"
                                      "</path></target></pool>", 0)
        conn.close()
    inv = inventory(tmp_path / "hosts.yml", testbed, shared)
    site = tmp_path / "site.yml"
    site.write_text(yaml.safe_dump([{"name": "hv2's fleet", "hosts": "hv2", "gather_facts": False,
                                     "roles": [{"role": "kvmfleet.libvirt.guests"}]}]))
    ansible.run(None, playbook=site, inventory=inv)
    for name in NAMES:
        report(testbed, 2, name, lambda r: "vda" in r["disks"], "its disk")
    try:
        # refused: hv2 answers; and without a fence or the lock manager
        run = recover(ansible, inv, recover_lock_manager=True)
        assert "hv2 answers: it is not lost" in run.output
        run = recover(ansible, inv)
        assert "say how the lost host cannot still run its guests" in run.output

        # hv2 loses its network: its QEMUs run on, holding their disks; the lock manager refuses a second start
        bed("isolate", "2")
        run = recover(ansible, inv, recover_lock_manager=True)
        evidence = lines(run, "The evidence, per guest")
        assert [line for line in evidence if not line.startswith(" ")] == [
            "r1 -> hv1: refused", "r2 -> hv3: refused", "r3 -> hv1: refused"]
        assert sum("NO disk locks: refused at start" in line for line in evidence) == 2, evidence
        assert where(testbed) == {}, "a refused start left a copy behind"

        # hv2 dies: its QEMUs, daemons and locks are gone
        bed("kill", "2")
        run = recover(ansible, inv, check=True, expect_rc=0, recover_fenced=True)
        evidence = lines(run, "The evidence, per guest")
        assert "r1 -> hv1: started on hv1" in evidence and "    ok cannot still run it: the user confirmed it is off" \
            in evidence and "    ok disk locks: no lock manager: the fence is the guarantee" in evidence
        assert any(line.startswith("r3 -> hv1: refused") for line in evidence)
        assert where(testbed) == {}
        run = recover(ansible, inv, recover_lock_manager=True)
        assert where(testbed) == {"r1": ("hv1", "running"), "r2": ("hv3", "running")}
        evidence = lines(run, "The evidence, per guest")
        assert "r1 -> hv1: started on hv1" in evidence and "r2 -> hv3: started on hv3" in evidence
        assert "    ok disk locks: taken when it starts" in evidence
        assert any("disk r3" in line or "local/r3.raw" in line for line in evidence if line.startswith("    NO")), \
            evidence
        assert "not restarted: r3" in run.output
        report(testbed, 1, "r1", lambda r: "vda" in r["disks"], "its disk, restarted on hv1")
        report(testbed, 3, "r2", lambda r: "vda" in r["disks"], "its disk, restarted on hv3")
        assert identity(testbed, "r1")[2] == "hv2"
        again = recover(ansible, inv, recover_lock_manager=True)
        assert again.changed == 0
        assert "r1 is left alone: it runs on hv1" in lines(again, "The plan")
        assert where(testbed) == {"r1": ("hv1", "running"), "r2": ("hv3", "running")}
    finally:
        bed("revive", "2")
        clear(testbed)
        for uri in uris:
            conn = libvirt.open(uri)
            for pool in conn.listAllStoragePools(0):
                if pool.name() in ("shared", "local"):
                    for volume in pool.listAllVolumes(0):
                        volume.delete(0)
                    pool.destroy()
            for net in conn.listAllNetworks(0):
                if net.name() == "rec":
                    net.destroy()
            conn.close()
