"""The README's demo playbook, as a scenario: it converges, and the guests it boots report in."""

from __future__ import annotations

import harness

DEMO = harness.REPO / "playbooks" / "demo.yml"


def test_demo_playbook_converges_and_boots_guests(conn, prefix, ansible):
    # Its own subnet: the README's demo may be running on this machine with the default one.
    subnet = "10.250.%d" % int(prefix[-3:-1], 16)
    run = ansible.converge(None, {"demo_prefix": prefix, "demo_subnet": subnet}, playbook=DEMO)
    names = [prefix + n for n in ("web1", "web2", "db1")]
    assert [harness.domain_state(conn, n) for n in names] == ["running"] * 3
    shown = [item["msg"] for item in run.result("Show the guests")["results"]]
    assert len(shown) == 3
    assert "%sdb1 (db): 2 vCPU(s)" % prefix in shown[2]
    assert "address %s.21 (db1)" % subnet in shown[2], "the guest leased its static address on the demo network"
    assert conn.networkLookupByName(prefix + "net").isActive()
    assert conn.storagePoolLookupByName(prefix + "pool").isActive()
    disk = conn.storagePoolLookupByName(prefix + "pool").storageVolLookupByName(prefix + "web1-root.qcow2")
    assert disk.info()[1] == 64 * 1024 * 1024
    facts = run.result("Read the hypervisor")
    assert facts["libvirt_version"].count(".") == 2
