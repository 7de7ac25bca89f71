"""The README's demo playbook, as a scenario: it converges, the guests it boots report in, it says what it made,
and -e demo_state=absent removes it all (again a scenario: check mode predicts it, a second run changes nothing)."""

from __future__ import annotations

import os

import harness
import libvirt

DEMO = harness.REPO / "playbooks" / "demo.yml"


def _gone(lookup, name):
    try:
        lookup(name)
    except libvirt.libvirtError:
        return True
    return False


def test_demo_playbook_converges_boots_guests_and_removes_them(conn, prefix, ansible):
    # Its own subnet: the README's demo may be running on this machine with the default one.
    subnet = "10.250.%d" % int(prefix[-3:-1], 16)
    extra = {"demo_prefix": prefix, "demo_subnet": subnet}
    run = ansible.converge(None, extra, playbook=DEMO)
    names = [prefix + n for n in ("web1", "web2", "db1")]
    assert [harness.domain_state(conn, n) for n in names] == ["running"] * 3
    shown = [item["msg"] for item in run.result("Show the guests")["results"]]
    assert len(shown) == 3
    assert "%sdb1 (db): 2 vCPU(s)" % prefix in shown[2]
    assert "address %s.21 (db1)" % subnet in shown[2], "the guest leased its static address on the demo network"
    assert conn.networkLookupByName(prefix + "net").isActive()
    pool = conn.storagePoolLookupByName(prefix + "pool")
    assert pool.isActive()
    disk = pool.storageVolLookupByName(prefix + "web1-root.qcow2")
    assert disk.info()[1] == 64 * 1024 * 1024
    facts = run.result("Read the hypervisor")
    assert facts["libvirt_version"].count(".") == 2
    # The guests came from the guests role's one fleet task, which printed its plan.
    plan = run.result("kvmfleet.libvirt.guests : The plan (or what was done)")["msg"]
    assert plan[-1] == "localhost: 3 to create, 0 to change, 0 to remove, 0 unchanged, 0 failed", plan
    # What it made, in one message: network, pool, each guest with the address libvirt sees it at, console, removal.
    said = run.result("What you got")["msg"]
    assert said[0].startswith("The demo made, on ")
    assert any(line.startswith("network %snet: %s.0/24, isolated" % (prefix, subnet)) for line in said), said
    assert any(line.startswith("pool %spool: a directory pool at /var/lib/libvirt/images/%spool" % (prefix, prefix))
               for line in said), said
    db1 = [line for line in said if line.startswith(prefix + "db1 ")]
    assert db1 and "running, 2 vCPU, 384 MiB, MAC 52:54:00:de:60:21" in db1[0], said
    assert db1[0].endswith("libvirt sees it at: %s.21" % subnet), said
    assert any(line.startswith("a guest's console: virsh -c qemu:///system console %sweb1" % prefix) for line in said)
    assert said[-1] == "remove everything: bash scripts/run.sh demo -e demo_state=absent"

    gone = ansible.converge(None, dict(extra, demo_state="absent"), playbook=DEMO)
    assert gone.result("What was removed")["msg"][0].startswith("The demo is removed from localhost")
    assert all(_gone(conn.lookupByName, n) for n in names)
    assert _gone(conn.networkLookupByName, prefix + "net")
    assert _gone(conn.storagePoolLookupByName, prefix + "pool")
    assert not os.path.exists("/var/lib/libvirt/images/%spool" % prefix), "the pool's directory is removed"
    assert not any(os.path.exists("/var/log/libvirt/qemu/%s-serial.log" % n) for n in names)
