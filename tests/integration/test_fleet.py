"""The fleet module against the real libvirtd: many guests in one task, the plan, prune, a bad guest.

Each scenario converges (check mode predicts per task what the real run makes, a second run changes
nothing, check mode after it predicts nothing), then asserts on what libvirt holds and on what a
booted guest reports on its console.
"""

from __future__ import annotations

import pytest
from lxml import etree

import harness
from harness import report_where, serial_log

pytestmark = pytest.mark.slow
NS = {"k": "https://kvmfleet.dev/xmlns/libvirt/guest/1"}


def member(name, lab, **extra):
    """A guest of the fleet: defined, shut off, a disk in the lab pool and a NIC on the lab network."""
    spec = {"name": name, "virt_type": "qemu", "memory": "128MiB", "tags": {"fleet": "it"},
            "disks": [{"pool": lab["pool"], "volume": name + ".qcow2", "size": "16MiB"}],
            "interfaces": [{"network": lab["network"]}]}
    spec.update(extra)
    return spec


def booted(name, image, lab):
    """A member that boots the test guest, which prints its NICs' MACs on its console."""
    return member(name, lab, machine="pc", memory=256, state="running",
                  boot={"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": image["cmdline"]},
                  serials=[{"type": "pty", "log": str(serial_log(name))}],
                  disks=[{"pool": lab["pool"], "volume": name + "-root.qcow2", "size": "64MiB"}])


def fleet_task(guests, **extra):
    args = {"guests": guests, "shutdown_timeout": 30}
    args.update(extra)
    return {"name": "fleet", "kvmfleet.libvirt.fleet": args, "register": "result"}


def test_a_fleet_converges_in_one_task_and_a_one_line_edit_changes_one_guest(conn, prefix, ansible, image, lab):
    names = [prefix + n for n in ("a", "b", "c", "up")]
    guests = [member(names[0], lab), member(names[1], lab, vcpus=2), member(names[2], lab),
              booted(names[3], image, lab)]
    first = ansible.converge([fleet_task(guests)])
    result = first.result("fleet")
    assert result["summary"] == {"created": 4, "updated": 0, "unchanged": 0, "removed": 0, "held": 0, "failed": 0, "total": 4}
    assert [g["name"] for g in result["guests"]] == names
    assert [harness.domain_state(conn, n) for n in names] == ["shutoff", "shutoff", "shutoff", "running"]
    for name in names:
        root = etree.fromstring(harness.inactive_xml(conn, name).encode())
        assert root.xpath("metadata/k:guest/k:tag[@name='fleet']/@value", namespaces=NS) == ["it"]
    macs = {g["name"]: g["interfaces"][0]["mac"] for g in result["guests"]}
    assert len(set(macs.values())) == 4
    report = report_where(names[3], lambda r: r["nics"], "its NIC")
    assert list(report["nics"]) == [macs[names[3]]], "the booted guest sees the MAC the fleet reported"

    guests[1]["vcpus"] = 1
    edited = ansible.converge([fleet_task(guests)]).result("fleet")
    assert [g["name"] for g in edited["guests"] if g["changed"]] == [names[1]]
    assert edited["summary"]["updated"] == 1 and edited["summary"]["unchanged"] == 3
    assert edited["guests"][1]["changes"] == ["vcpus: 2 -> 1"]


def test_prune_removes_only_marked_unlisted_guests(conn, prefix, ansible, lab):
    keep, old = prefix + "keep", prefix + "old"
    ansible.run([fleet_task([member(keep, lab), member(old, lab)])])
    unmarked = prefix + "unmarked"
    conn.defineXML("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>"
                   "<os><type arch='x86_64'>hvm</type></os></domain>" % unmarked)
    old_volume = lab["pool_dir"] / (old + ".qcow2")
    task = fleet_task([member(keep, lab)], prune=True, prune_selector={"fleet": "it"})
    result = ansible.converge([task]).result("fleet")
    assert [(g["name"], g["removed"]) for g in result["guests"]] == [(keep, False), (old, True)]
    assert harness.domain_state(conn, old) == "absent" and harness.domain_state(conn, unmarked) == "shutoff"
    assert old_volume.exists(), "pruned guests keep their disks unless remove_storage is set"


def test_one_bad_guest_among_good_ones(conn, prefix, ansible, lab):
    good, bad = prefix + "good", prefix + "bad"
    # A spec error: nothing changes at all, and the error names the guest and the option.
    spec_error = fleet_task([member(good, lab), member(bad, lab, memory="lots")])
    for check in (True, False):
        run = ansible.run([spec_error], check=check, expect_rc=2)
        assert "guests[1] (%s): option memory: got 'lots'" % bad in run.result("fleet")["msg"]
    assert harness.domain_state(conn, good) == "absent"

    # A libvirt error (the driver refuses the document): the other guests converge, the task fails naming it.
    refused = member(bad, lab, xml_edits=[{"xpath": "/domain/devices", "fragment":
                                           "<disk type='file' device='disk'><source file='/var/lib/libvirt/images/x.img'/>"
                                           "<target dev='vda' bus='virtio'/></disk>"}])
    run = ansible.run([fleet_task([member(good, lab), refused])], expect_rc=2)
    result = run.result("fleet")
    assert result["msg"].startswith("1 of 2 guests failed: %s: the change to guest %s failed" % (bad, bad))
    assert result["summary"]["created"] == 1 and result["summary"]["failed"] == 1
    assert harness.domain_state(conn, good) == "shutoff" and harness.domain_state(conn, bad) == "absent"
    assert not (lab["pool_dir"] / (bad + ".qcow2")).exists(), "the failed guest's new volume was taken back"
    assert "Traceback" not in run.output


def test_in_a_cluster_the_role_refuses_lists_the_other_hypervisors_cannot_see(ansible, prefix, lab, conn):
    """The local inventory puts this machine in group hypervisors: the guests role converges it as a cluster member,
    whose description is the inventory's. A list given as a role parameter is refused before anything changes (prune
    would otherwise take this host's guests for undeclared ones); guests_cluster: false converges it alone."""
    guests = [member(prefix + "solo", lab)]
    role = {"name": "guests", "ansible.builtin.include_role": {"name": "kvmfleet.libvirt.guests"},
            "vars": {"guests_list": guests, "guests_prune": True, "guests_prune_selector": {"fleet": "it"}}}
    tasks = [dict(role, vars=dict(role["vars"], guests_uri="qemu:///system"))]
    path = ansible.write_playbook(tasks, hosts="hypervisors")
    run = ansible.run(None, playbook=path, expect_rc=2)
    assert "is in group hypervisors, so its guests are converged as part of the cluster" in run.output
    assert prefix + "solo" not in [d.name() for d in conn.listAllDomains(0)]
    alone = [dict(role, vars=dict(role["vars"], guests_uri="qemu:///system", guests_cluster=False))]
    ansible.converge(alone)
    assert conn.lookupByName(prefix + "solo").autostart() == 0
