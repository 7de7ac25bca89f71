"""module_defaults for the collection's action group, through real ansible-playbook (issue 24).

``group/kvmfleet.libvirt.all`` (meta/runtime.yml) holds every module that takes the connection options: a play sets
``uri`` and ``connect_timeout`` once, and tasks that omit them use them. The group's values are really used: a group
that names libvirt's test driver makes host_info report that driver (which also shows host_info working on it), and
a group that names a port nothing listens on fails the task that omits uri, while a task's own uri wins.
"""

from __future__ import annotations

import yaml

DEAD_URI = "qemu+tcp://127.0.0.1:1/system"  # nothing listens on port 1: refused at once


def test_module_defaults_for_the_group(conn, prefix, ansible, tmp_path, lab):
    name = prefix + "md"
    vol = conn.storagePoolLookupByName(lab["pool"]).createXML(
        "<volume><name>%s.qcow2</name><capacity>1048576</capacity><target><format type='qcow2'/></target></volume>"
        % name, 0)
    conn.defineXML("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                   "<os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'>"
                   "<driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>"
                   "</devices></domain>" % (name, vol.path()))
    snap = conn.lookupByName(name).snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
    assert snap.getName() == "s1"
    play = [
        {"name": "module_defaults for the collection's group", "hosts": "localhost", "gather_facts": False,
         "module_defaults": {"group/kvmfleet.libvirt.all": {"uri": "qemu:///system", "connect_timeout": 20}},
         "tasks": [
             {"name": "host", "kvmfleet.libvirt.host_info": {}},
             {"name": "guest", "kvmfleet.libvirt.domain_info": {"name": name}},
             {"name": "snapshots by the guest alias", "kvmfleet.libvirt.snapshot_info": {"guest": name}},
             {"name": "the test driver, from the group", "module_defaults": {
                 "group/kvmfleet.libvirt.all": {"uri": "test:///default"}},
              "kvmfleet.libvirt.host_info": {}},
             {"name": "a dead uri, from the group", "module_defaults": {
                 "group/kvmfleet.libvirt.all": {"uri": DEAD_URI, "connect_timeout": 5}},
              "kvmfleet.libvirt.domain_info": {"name": name}, "ignore_errors": True},
             {"name": "a task's own uri wins", "module_defaults": {
                 "group/kvmfleet.libvirt.all": {"uri": DEAD_URI}},
              "kvmfleet.libvirt.domain_info": {"name": name, "uri": "qemu:///system"}},
         ]},
    ]
    path = tmp_path / "module_defaults.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    run = ansible.run(None, playbook=path)
    assert "could not resolve" not in run.output

    host = run.result("host")
    assert host["hypervisor"] == conn.getType() and host["uri"] == conn.getURI()
    assert [g["name"] for g in run.result("guest")["guests"]] == [name]
    snapshots = run.result("snapshots by the guest alias")
    assert [s["name"] for s in snapshots["snapshots"]] == ["s1"] and snapshots["current"] == "s1"

    test_driver = run.result("the test driver, from the group")
    assert test_driver["hypervisor"] == "TEST" and test_driver["uri"] == "test:///default"
    assert test_driver["memory"]["total_mib"] > 0 and test_driver["memory"]["cached_mib"] is None  # unknown there

    dead = run.result("a dead uri, from the group")
    assert run.status("a dead uri, from the group") == "ignored", dead  # it failed, and ignore_errors went on
    assert dead["code"] == "unreachable" and dead["uri"] == DEAD_URI, dead
    assert [g["name"] for g in run.result("a task's own uri wins")["guests"]] == [name]
