"""What a careless or hostile user gives, through real playbooks against the real libvirtd (issue 9).

One scenario per class of defect. Each asserts that the task fails (or succeeds) the same way in
check mode and in a real run, that the message names the option, and that nothing on the host was
made, changed or lost: files, volumes, modes, definitions.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import harness
from harness import inactive_xml

IGNITION_DIR = Path("/var/lib/libvirt/kvmfleet/ignition")
IGNITION = {"ignition": {"version": "3.4.0"},
            "passwd": {"users": [{"name": "core", "passwordHash": "$6$kvmfleet-hostile-hash"}]}}


def domain_task(name, title="guest", **args):
    args.setdefault("virt_type", "qemu")
    args.update(name=name)
    return {"name": title, "kvmfleet.libvirt.domain": args, "register": "result"}


def fails_alike(ansible, task, words):
    """The task fails in check mode and in a real run, with the same message containing ``words``."""
    messages = []
    for check in (True, False):
        run = ansible.run([task], check=check, expect_rc=2)
        assert "Traceback" not in run.output
        messages.append(run.result(task["name"])["msg"])
    assert messages[0] == messages[1], messages
    assert words in messages[0], messages[0]
    return messages[0]


def test_a_traversing_guest_name_writes_no_file_anywhere(conn, prefix, ansible):
    target = Path("/tmp") / (prefix + "x.ign")
    name = "../../../../.." + str(target)[:-len(".ign")]
    before = sorted(os.listdir(IGNITION_DIR)) if IGNITION_DIR.is_dir() else []
    message = fails_alike(ansible, domain_task(name, memory=256, ignition=IGNITION), "option name: got")
    assert "without '/'" in message
    assert not target.exists(), "the Ignition file was written outside its directory"
    assert (sorted(os.listdir(IGNITION_DIR)) if IGNITION_DIR.is_dir() else []) == before


def test_a_refused_create_takes_back_its_files_and_volumes(conn, prefix, ansible, lab):
    """libvirt refuses the define (two disks on one target, through the escape hatch): the Ignition file
    (keys, password hashes), the seed volume and the new disk volume all go again."""
    name = prefix + "refused"
    task = domain_task(name, memory=256, ignition=IGNITION,
                       cloud_init={"pool": lab["pool"], "user_data": {"packages": ["vim"]}},
                       disks=[{"pool": lab["pool"], "volume": name + "-root.qcow2", "size": "16MiB"}],
                       xml_edits=[{"xpath": "/domain/devices", "fragment":
                                   "<disk type='file' device='disk'><source file='/var/lib/libvirt/images/x.img'/>"
                                   "<target dev='vda' bus='virtio'/></disk>"}])
    check = ansible.run([task], check=True)
    assert check.result(task["name"])["changed"] is True  # libvirt's own duplicate check runs at define only
    run = ansible.run([task], expect_rc=2)
    message = run.result(task["name"])["msg"]
    assert "the change to guest %s failed" % name in message and "taken back" in message, message
    assert harness.domain_state(conn, name) == "absent"
    assert not (IGNITION_DIR / (name + ".ign")).exists()
    conn.storagePoolLookupByName(lab["pool"]).refresh(0)
    assert sorted(p.name for p in lab["pool_dir"].iterdir()) == []


def test_a_password_change_shows_neither_password(conn, prefix, ansible, lab):
    name = prefix + "pw"
    old, new, guess = "o" + prefix[-7:-1], "n" + prefix[-7:-1], "g" + prefix[-7:-1]
    ansible.run([domain_task(name, memory=256, graphics=[{"type": "vnc", "password": old}])])
    # Anyone who may run the play in check mode, with a made-up password, must not learn the current one.
    probe = ansible.run([domain_task(name, memory=256, graphics=[{"type": "vnc", "password": guess}])], check=True)
    result = probe.result("guest")
    assert "graphics vnc.password: <secret changed>" in result["changes"]
    assert old not in probe.output and old not in json.dumps(probe.tasks)
    run = ansible.converge([domain_task(name, memory=256, graphics=[{"type": "vnc", "password": new}])])
    assert old not in run.output and new not in run.output and old not in json.dumps(run.tasks)
    assert harness.domain_state(conn, name) == "shutoff"


def test_owner_and_mode_never_follow_a_symlink(conn, prefix, ansible, lab, tmp_path):
    target = tmp_path / "shadow"
    target.write_text("root:*:19000:0:99999:7:::\n")
    target.chmod(0o600)
    link = lab["pool_dir"] / (prefix + "link.raw")
    os.symlink(target, link)
    conn.storagePoolLookupByName(lab["pool"]).refresh(0)
    args = {"pool": lab["pool"], "name": link.name, "mode": "0644", "owner": "nobody"}
    task = {"name": "volume", "kvmfleet.libvirt.volume": args}
    fails_alike(ansible, task, "is a symlink")
    info = target.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0


def test_pool_mode_is_the_directory_s_and_never_set_through_a_symlink(conn, prefix, ansible, tmp_path):
    """libvirt rewrites a started dir pool's definition from its directory: the declared mode is converged on
    the directory, shown in check mode and the diff; a symlinked path is refused and its target left alone."""
    existing = Path("/var/lib/libvirt/images") / (prefix + "pooldir")
    existing.mkdir(mode=0o700)
    existing.chmod(0o700)
    link = Path("/var/lib/libvirt/images") / (prefix + "poollink")
    try:
        task = {"name": "pool", "register": "result", "kvmfleet.libvirt.pool": {
            "name": prefix + "built", "type": "dir", "path": str(existing), "mode": "0750", "build": True}}
        result = ansible.converge([task]).result("pool")
        assert "set mode of %s to 0750" % existing in result["actions"]
        assert stat.S_IMODE(existing.stat().st_mode) == 0o750
        # changed behind the module's back: the next run shows it and puts it back
        existing.chmod(0o777)
        result = ansible.converge([task]).result("pool")
        assert result["changes"] == ["mode: 0777 -> 0750"] and result["restart_required"] is False
        assert stat.S_IMODE(existing.stat().st_mode) == 0o750

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        os.symlink(elsewhere, link)
        linked = {"name": "pool", "kvmfleet.libvirt.pool": {
            "name": prefix + "linked", "type": "dir", "path": str(link), "mode": "0777", "build": True}}
        fails_alike(ansible, linked, "option path")
        assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700
        assert prefix + "linked" not in [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        harness.sweep(conn, prefix)
        if link.is_symlink():
            link.unlink()
        if existing.exists():  # the sweep removes an empty one
            existing.rmdir()


@pytest.mark.parametrize("args, option", [
    ({"name": "a/b"}, "name"),
    ({"memory": 0}, "memory"),
    ({"disks": [{"path": "/var/lib/libvirt/images/x.img", "serial": "a<b>"}]}, "disks[0].serial"),
    ({"interfaces": [{"network": "default", "model": "virtio'><x"}]}, "interfaces[0].model"),
    ({"vcpus": 999999999}, "vcpus"),
    ({"disks": [{"path": "/var/lib/libvirt/images/x.img", "size": 20}]}, "disks[0].size"),
], ids=["slash-name", "memory-0", "serial", "nic-model", "vcpus", "bare-size"])
def test_check_mode_refuses_what_the_real_run_refuses(conn, prefix, ansible, args, option):
    args = dict(args)
    name = args.pop("name", prefix + "same")
    fails_alike(ansible, domain_task(name, memory=args.pop("memory", 256), **args), "option %s: got" % option)
    assert harness.domain_state(conn, name if "/" not in name else prefix + "none") == "absent"


def test_network_names_and_dns_hostnames_are_checked_alike(conn, prefix, ansible):
    bad_name = {"name": "network", "kvmfleet.libvirt.network": {"name": prefix + "a/b"}}
    fails_alike(ansible, bad_name, "option name: got")
    bad_host = {"name": "network", "kvmfleet.libvirt.network": {
        "name": prefix + "dns", "ipv4": {"address": "192.168.251.1/24"},
        "dns_hosts": [{"ip": "192.168.251.5", "hostnames": ["<b>"]}]}}
    fails_alike(ansible, bad_host, "option dns_hosts[0].hostnames[0]: got")
    assert prefix + "dns" not in [n.name() for n in conn.listAllNetworks(0)]


def test_remove_storage_keeps_a_disk_another_guest_uses(conn, prefix, ansible, lab):
    first, second = prefix + "one", prefix + "two"
    shared = {"pool": lab["pool"], "volume": prefix + "shared.raw", "size": "8MiB", "format": "raw", "shareable": True}
    ansible.run([domain_task(first, "first", memory=256, disks=[dict(shared)]),
                 domain_task(second, "second", memory=256, disks=[dict(shared)])])
    volume = lab["pool_dir"] / (prefix + "shared.raw")
    before = inactive_xml(conn, first)
    absent = {"name": "absent", "kvmfleet.libvirt.domain": {"name": first, "state": "absent", "remove_storage": True}}
    message = fails_alike(ansible, absent, "also used by guest(s) %s" % second)
    assert "remove_shared_storage" in message
    assert volume.exists() and inactive_xml(conn, first) == before
    delete = {"name": "delete", "kvmfleet.libvirt.volume": {"pool": lab["pool"], "name": volume.name, "state": "absent"}}
    fails_alike(ansible, delete, "is a disk of guest(s) %s, %s" % (first, second))
    assert volume.exists()

    absent["kvmfleet.libvirt.domain"]["remove_shared_storage"] = True
    result = ansible.converge([absent]).result("absent")
    assert result["removed_volumes"] == [str(volume)] and not volume.exists()
    assert harness.domain_state(conn, first) == "absent" and harness.domain_state(conn, second) == "shutoff"
