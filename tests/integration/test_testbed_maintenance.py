"""Host maintenance and rebalancing on the test bed (issue 14): playbooks/evacuate.yml empties hv1 - cordoned
first, its running guests placed by room on hv2 and hv3, a few at a time, each keeping its UUID, its MAC and its
console count (it runs on, it does not restart), persistent on its new hypervisor only and carrying its origin;
restore.yml brings them home from that record and puts hv1 back in service; rebalance.yml spreads them until the
memory imbalance is within tolerance. Each playbook: check mode changes nothing, the real run, a second run that
changes nothing.
"""

from __future__ import annotations


import libvirt
import pytest
import yaml
from lxml import etree

import harness
import testguest
from test_testbed_fleet import MAINTENANCE, clear, report

pytestmark = pytest.mark.slow
PLAYBOOKS = harness.REPO / "playbooks"
KERNEL = "/var/lib/libvirt/images/kvmfleet-test/"
# g3 (192 MiB) goes first, to hv3 (the most room: 400 MiB); then g1 to hv3 (208 left against hv2's 200); g2 to hv2
GUESTS = {"g1": 128, "g2": 128, "g3": 192, "g4": 128}
ORIGIN = "{https://kvmfleet.dev/xmlns/libvirt/origin/1}home"


def inventory(path, testbed, capacities):
    hosts = {"hv%d" % (n + 1): {"kvmfleet_uri": uri} for n, uri in enumerate(testbed["uris"])}
    for name, capacity in capacities.items():
        hosts[name]["kvmfleet_guest_memory_mib"] = capacity
    path.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}}))
    return path


def where(testbed):
    found = {}
    for n, uri in enumerate(testbed["uris"]):
        conn = libvirt.open(uri)
        for dom in conn.listAllDomains(0):
            if dom.name() in GUESTS:
                assert dom.name() not in found, "%s is defined on two hypervisors" % dom.name()
                found[dom.name()] = ("hv%d" % (n + 1), "running" if dom.isActive() else "shutoff", dom.isPersistent())
        conn.close()
    return found


def identity(testbed, name):
    """(uuid, MACs, origin host) of a guest, wherever it is."""
    for uri in testbed["uris"]:
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError:  # a hypervisor a test killed
            continue
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            conn.close()
            continue
        root = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        conn.close()
        origin = root.find("metadata/" + ORIGIN)
        return (root.findtext("uuid"), [m.get("address") for m in root.iterfind("devices/interface/mac")],
                None if origin is None else origin.get("host"))
    return None


def cordoned(testbed, hv):
    conn = libvirt.open(testbed["uris"][hv - 1])
    try:
        return MAINTENANCE in conn.listDefinedNetworks()
    finally:
        conn.close()


def ticks(testbed, hv):
    log = testbed["root"] / ("hv%d" % hv) / "log" / "qemu" / "g1-serial.log"
    return testguest.ticks(log.read_text(errors="replace")) if log.exists() else []


def lines(run, task):
    found = []
    for entry in run.tasks:
        if entry["task"] == task and not entry["result"].get("skipped"):
            msg = entry["result"].get("msg")
            if msg is not None:
                found.extend(msg if isinstance(msg, list) else [msg])
    return found


def playbook(ansible, name, inv, check=False, **extra):
    return ansible.run(None, playbook=PLAYBOOKS / name, inventory=inv, check=check, extra_vars=extra or None)


def test_evacuate_restore_and_rebalance(testbed, ansible, tmp_path):
    clear(testbed)
    uris = testbed["uris"]
    for uri in uris:
        conn = libvirt.open(uri)
        conn.networkCreateXML("<network><name>evac</name><bridge name='kvfevac0'/></network>")
        conn.close()
    guests = [{"name": name, "virt_type": "qemu", "machine": "pc", "memory": "%dMiB" % memory, "vcpus": 1,
               "boot": {"kernel": KERNEL + "vmlinuz", "initrd": KERNEL + "initrd.img",
                        "cmdline": "console=ttyS0 panic=-1" + (" kvmfleet.ticks" if name == "g1" else "")},
               "interfaces": [{"network": "evac"}],
               "serials": [{"type": "pty", "log": "/var/log/libvirt/qemu/%s-serial.log" % name}],
               "state": "shutoff" if name == "g4" else "running"} for name, memory in GUESTS.items()]
    ansible.run([{"name": "guests", "kvmfleet.libvirt.fleet": {"uri": uris[0], "guests": guests}}])
    before = {name: identity(testbed, name) for name in GUESTS}
    harness.wait_for(lambda: len(ticks(testbed, 1)) >= 3, timeout=120, what="g1 to count on hv1")
    evac = inventory(tmp_path / "evac.yml", testbed, {"hv2": 200, "hv3": 400})
    home = {name: ("hv1", "shutoff" if name == "g4" else "running", True) for name in GUESTS}
    assert where(testbed) == home

    # no hypervisor given, or one outside the group: refused before anything is read
    refused = ansible.run(None, playbook=PLAYBOOKS / "evacuate.yml", inventory=evac, expect_rc=2)
    assert "give the hypervisor to evacuate: -e host=NAME" in refused.output
    # check mode: the plan, each move's pre-flight; nothing changes
    run = playbook(ansible, "evacuate.yml", evac, check=True, host="hv1")
    assert lines(run, "The plan")[:4] == ["g3: hv1 -> hv3 (192 MiB): most room (400 MiB before it)",
                                          "g1: hv1 -> hv3 (128 MiB): most room (208 MiB before it)",
                                          "g2: hv1 -> hv2 (128 MiB): most room (200 MiB before it)",
                                          "g4 stays: shut off: stays defined on hv1"]
    assert where(testbed) == home and not cordoned(testbed, 1)

    counted = max(ticks(testbed, 1))
    run = playbook(ansible, "evacuate.yml", evac, host="hv1")
    assert where(testbed) == {"g1": ("hv3", "running", True), "g2": ("hv2", "running", True),
                              "g3": ("hv3", "running", True), "g4": ("hv1", "shutoff", True)}
    assert cordoned(testbed, 1)
    summary = lines(run, "What moved, what stays")
    assert [line.split(" in ")[0] for line in summary if line.startswith("moved")] == [
        "moved g3: hv1 -> hv3", "moved g1: hv1 -> hv3", "moved g2: hv1 -> hv2"]
    assert "stays g4: shut off: stays defined on hv1" in summary
    for name in ("g1", "g2", "g3"):
        uuid, macs, origin = identity(testbed, name)
        assert (uuid, macs) == before[name][:2] and origin == "hv1"
    # g1 runs on: its count goes on, on hv3, from where it was on hv1
    harness.wait_for(lambda: len(ticks(testbed, 3)) >= 2, timeout=60, what="g1 to count on hv3")
    assert ticks(testbed, 3)[0] > counted and ticks(testbed, 3) == sorted(ticks(testbed, 3))
    print("evacuation:", summary)

    again = playbook(ansible, "evacuate.yml", evac, host="hv1")
    assert again.changed == 0 and lines(again, "The plan") == ["nothing to move", "g4 stays: shut off: stays defined on hv1"]

    # restore: from each guest's own record; check mode first
    run = playbook(ansible, "restore.yml", evac, check=True, host="hv1")
    assert sorted(lines(run, "The plan")[:3]) == ["g1: hv3 -> hv1 (128 MiB): its home", "g2: hv2 -> hv1 (128 MiB): its home",
                                                  "g3: hv3 -> hv1 (192 MiB): its home"]
    assert where(testbed)["g1"][0] == "hv3" and cordoned(testbed, 1)
    on_hv3 = max(ticks(testbed, 3))
    run = playbook(ansible, "restore.yml", evac, host="hv1")
    assert where(testbed) == home and not cordoned(testbed, 1)
    for name in GUESTS:
        assert identity(testbed, name) == before[name]  # the origin record is gone
    harness.wait_for(lambda: max(ticks(testbed, 1)) > on_hv3, timeout=60, what="g1 to count on, back on hv1")
    print("restore:", lines(run, "What moved, what stays"))
    assert playbook(ansible, "restore.yml", evac, host="hv1").changed == 0

    # rebalance: 448 MiB on hv1 of 1024 each, none elsewhere (imbalance 1.414); g1 then g2 move (0.202, within 0.25)
    even = inventory(tmp_path / "even.yml", testbed, {"hv1": 1024, "hv2": 1024, "hv3": 1024})
    tuning = {"rebalance_tolerance": 0.25, "rebalance_min_gain": 0.05}
    run = playbook(ansible, "rebalance.yml", even, check=True, **tuning)
    planned = lines(run, "The plan")
    assert planned[:2] == ["g1: hv1 -> hv2 (128 MiB): lowers the imbalance from 1.414 to 0.881",
                           "g2: hv1 -> hv3 (128 MiB): lowers the imbalance from 0.881 to 0.202"]
    assert "hv1: guests 3 -> 1, guest memory 448 -> 192 MiB (44% -> 19% of its capacity)" in planned
    assert planned[2] == "hv1 keeps g3: no move lowers the imbalance by the minimum gain within room and rules"
    assert planned[3].startswith("memory imbalance (coefficient of variation) 1.414 -> 0.202, tolerance 0.250")
    assert where(testbed) == home
    run = playbook(ansible, "rebalance.yml", even, **tuning)
    spread = {"g1": "hv2", "g2": "hv3", "g3": "hv1", "g4": "hv1"}
    assert {name: place[0] for name, place in where(testbed).items()} == spread
    assert identity(testbed, "g1")[2] == "hv1"  # each move records where it came from: the plan says why it is there
    again = playbook(ansible, "rebalance.yml", even, **tuning)
    assert again.changed == 0 and lines(again, "The plan")[0] == "nothing to move" or \
        lines(again, "The plan")[0].startswith("memory imbalance (coefficient of variation) 0.202 -> 0.202")
    clear(testbed)
    for uri in uris:
        conn = libvirt.open(uri)
        conn.networkLookupByName("evac").destroy()
        conn.close()


def test_a_guest_copies_its_disk_to_a_hypervisor_with_private_storage(testbed, ansible):
    """Each test-bed hypervisor has its own /var/lib/libvirt: a pool of the same name on hv1 and hv2 holds different
    files. Without copy_storage the pre-flight refuses (the disk is not on hv2); with copy_storage: all the guest
    moves live and libvirt creates and fills the volume on hv2 - the marker the guest wrote to its disk on hv1 is
    in hv2's file."""
    clear(testbed)
    uris = testbed["uris"]
    for n in (1, 2):
        path = testbed["root"] / ("hv%d" % n) / "lib" / "images" / "priv"
        path.mkdir(exist_ok=True)
        conn = libvirt.open(uris[n - 1])
        conn.storagePoolCreateXML("<pool type='dir'><name>priv</name><target><path>/var/lib/libvirt/images/priv"
                                  "</path></target></pool>", 0)
        conn.close()
    name = "copier"
    ansible.run([{"name": "boot", "kvmfleet.libvirt.domain": {
        "uri": uris[0], "name": name, "virt_type": "qemu", "machine": "pc", "memory": "128MiB", "vcpus": 1,
        "boot": {"kernel": KERNEL + "vmlinuz", "initrd": KERNEL + "initrd.img",
                 "cmdline": "console=ttyS0 panic=-1 kvmfleet.mark=COPIED"},
        "disks": [{"dev": "vda", "pool": "priv", "volume": "copier.raw", "size": "16MiB", "format": "raw",
                   "cache": "none"}],
        "serials": [{"type": "pty", "log": "/var/log/libvirt/qemu/%s-serial.log" % name}], "state": "running"}}])
    report(testbed, 1, name, lambda r: r["marks"].get("vda") == "COPIED", "its disk marker")
    move = {"name": "migrate", "kvmfleet.libvirt.migrate": {"uri": uris[0], "name": name, "destination_uri": uris[1],
                                                            "timeout": 120}, "register": "result"}
    refused = ansible.run([move], expect_rc=2).result("migrate")
    assert refused["stage"] == "preflight" and refused["problems"] == [
        "disk vda (priv/copier.raw): not on the destination (no shared storage there); set "
        "copy_storage: all to copy it"]
    move["kvmfleet.libvirt.migrate"]["copy_storage"] = "all"
    result = ansible.converge([move]).result("migrate")
    assert result["actions"] == ["live migration of %s from hv1 to hv2 copying storage (all)" % name]
    copied = testbed["root"] / "hv2" / "lib" / "images" / "priv" / "copier.raw"
    with copied.open("rb") as disk:
        disk.seek(1024 * 1024)
        assert disk.read(20) == b"KVMFLEET-MARK:COPIED"
    conn = libvirt.open(uris[1])
    assert conn.lookupByName(name).isActive() and conn.lookupByName(name).isPersistent()
    conn.close()
    clear(testbed)
    for n in (1, 2):
        conn = libvirt.open(uris[n - 1])
        pool = conn.storagePoolLookupByName("priv")
        for volume in pool.listAllVolumes(0):
            volume.delete(0)
        pool.destroy()
        conn.close()
