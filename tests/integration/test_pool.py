"""The pool module against the real libvirtd: what libvirt stores, what is on disk, what is refused.

Pools that this machine can start (dir; fs on a loop device, in test_volume.py) are started and used;
the others (logical, disk, iscsi, netfs) are defined and read back; rbd has no backend here, so its
define must fail cleanly.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import libvirt
import pytest
from lxml import etree

import harness

IMAGES = Path("/var/lib/libvirt/images")


def pool_task(name, **args):
    args["name"] = name
    return {"name": "pool " + name, "kvmfleet.libvirt.pool": args, "register": "result"}


def config(conn, name):
    return etree.fromstring(conn.storagePoolLookupByName(name).XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE).encode())


@pytest.fixture
def pool_dirs(conn, prefix):
    """Directories for this test's pools under /var/lib/libvirt/images, removed afterwards."""
    made = []

    def make(suffix):
        path = IMAGES / (prefix + suffix)
        made.append(path)
        return path
    yield make
    harness.sweep(conn, prefix)
    for path in made:
        if path.is_dir() and not os.path.ismount(path):
            shutil.rmtree(path)


def test_define_only_types_and_a_dir_pool_converge(conn, prefix, ansible, pool_dirs):
    images = pool_dirs("dir")
    tasks = [
        pool_task(prefix + "dir", type="dir", path=str(images), mode="0711", build=True, autostart=True),
        pool_task(prefix + "lvm", type="logical", state="inactive",
                  source={"name": "vg_kvmfleet_test", "devices": ["/dev/kvmfleet-nope1", "/dev/kvmfleet-nope2"],
                          "format": "lvm2"}),
        pool_task(prefix + "disk", type="disk", path="/dev", state="inactive",
                  source={"devices": ["/dev/kvmfleet-nope3"], "format": "gpt"}),
        pool_task(prefix + "iscsi", type="iscsi", path="/dev/disk/by-path", state="inactive",
                  source={"hosts": [{"name": "192.0.2.10", "port": 3260}],
                          "devices": ["iqn.2013-06.com.example:kvmfleet"],
                          "initiator": "iqn.2013-06.com.example:host1"}),
        pool_task(prefix + "nfs", type="netfs", path=str(images) + "-nfs", state="inactive",
                  source={"hosts": ["192.0.2.20"], "dir": "/export/vms", "format": "nfs"}),
    ]
    first = ansible.converge(tasks)
    result = first.result("pool " + prefix + "dir")
    assert result["created"] and result["actions"] == ["define", "build", "start", "autostart on"]
    assert "<mode>0711</mode>" in result["diff"]["after"]

    pool = conn.storagePoolLookupByName(prefix + "dir")
    assert pool.isActive() and pool.autostart()
    assert stat.S_IMODE(images.stat().st_mode) == 0o711, "build made the directory with the declared mode"
    assert config(conn, prefix + "dir").findtext("target/path") == str(images)
    lvm = config(conn, prefix + "lvm")
    assert lvm.findtext("source/name") == "vg_kvmfleet_test"
    assert sorted(d.get("path") for d in lvm.iterfind("source/device")) == ["/dev/kvmfleet-nope1", "/dev/kvmfleet-nope2"]
    assert config(conn, prefix + "disk").find("source/format").get("type") == "gpt"
    iscsi = config(conn, prefix + "iscsi")
    assert iscsi.find("source/host").attrib == {"name": "192.0.2.10", "port": "3260"}
    assert iscsi.find("source/initiator/iqn").get("name") == "iqn.2013-06.com.example:host1"
    nfs = config(conn, prefix + "nfs")
    assert (nfs.find("source/host").get("name"), nfs.find("source/dir").get("path")) == ("192.0.2.20", "/export/vms")
    for name in ("lvm", "disk", "iscsi", "nfs"):
        assert not conn.storagePoolLookupByName(prefix + name).isActive()

    # Another tool adds a feature and a label; we change the mode only: both stay, and so does the UUID.
    uuid = pool.UUIDString()
    edited = config(conn, prefix + "dir")
    etree.SubElement(etree.SubElement(edited, "features"), "cow", state="no")
    conn.storagePoolDefineXML(etree.tostring(edited, encoding="unicode"), 0)
    tasks[0]["kvmfleet.libvirt.pool"]["mode"] = "0755"
    changed = ansible.converge(tasks[:1]).result(tasks[0]["name"])
    assert changed["changes"] == ["mode: 0711 -> 0755"]
    # The mode is the directory's (libvirt rewrites a started pool's definition from it): set on the directory
    # now, not left for a restart that would have put the old one back.
    assert changed["actions"] == ["redefine", "set mode of %s to 0755" % images]
    assert changed["restart_required"] is False and stat.S_IMODE(images.stat().st_mode) == 0o755
    after = config(conn, prefix + "dir")
    assert after.findtext("uuid") == uuid and after.find("features/cow").get("state") == "no"
    assert after.findtext("target/permissions/mode") == "0755"
    assert conn.storagePoolLookupByName(prefix + "dir").isActive(), "a redefine does not stop the pool"


def test_absent_keeps_contents_unless_remove_storage(conn, prefix, ansible, pool_dirs):
    kept_dir, gone_dir = pool_dirs("keep"), pool_dirs("gone")
    for suffix, path in (("keep", kept_dir), ("gone", gone_dir)):
        path.mkdir()
        pool = conn.storagePoolDefineXML("<pool type='dir'><name>%s%s</name><target><path>%s</path></target></pool>"
                                         % (prefix, suffix, path), 0)
        pool.create(0)
        pool.createXML("<volume><name>%sdata.qcow2</name><capacity unit='MiB'>8</capacity><target>"
                       "<format type='qcow2'/></target></volume>" % prefix, 0)
    # an inactive pool: remove_storage starts it to find its volumes
    conn.storagePoolLookupByName(prefix + "gone").destroy()

    tasks = [pool_task(prefix + "keep", state="absent"),
             pool_task(prefix + "gone", state="absent", remove_storage=True)]
    run = ansible.converge(tasks)
    kept = run.result("pool %skeep" % prefix)
    assert kept["removed_volumes"] == [] and kept["removed_target"] is None
    assert kept["actions"] == ["stop", "undefine"]
    assert (kept_dir / (prefix + "data.qcow2")).is_file(), "absent left the volume on disk"
    gone = run.result("pool %sgone" % prefix)
    assert gone["removed_volumes"] == [str(gone_dir / (prefix + "data.qcow2"))]
    assert gone["removed_target"] == str(gone_dir)
    assert not gone_dir.exists(), "remove_storage deleted the volume and the directory"
    names = {p.name() for p in conn.listAllStoragePools(0)}
    assert prefix + "keep" not in names and prefix + "gone" not in names


def test_bad_input_fails_before_any_change(conn, prefix, ansible, pool_dirs, tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("not a directory\n")
    existing = pool_dirs("existing")
    existing.mkdir()
    conn.storagePoolDefineXML("<pool type='dir'><name>%sexisting</name><target><path>%s</path></target></pool>"
                              % (prefix, existing), 0)
    cases = {
        "file": ({"type": "dir", "path": str(afile), "build": True},
                 "option path: got '%s'; it exists and is not a directory" % afile),
        "zfs": ({"type": "zfs", "path": "/x"}, "value of type must be one of: dir, fs, netfs, logical, disk, iscsi, rbd"),
        "existing": ({"type": "fs", "source": {"devices": ["/dev/loop0"]}},
                     "option type: got 'fs'; pool %sexisting is a dir pool and a pool's type cannot change" % prefix),
        "nodev": ({"type": "fs", "path": str(tmp_path / "mnt"), "source": {"devices": ["/dev/kvmfleet-nope"]},
                   "build": True}, "option source.devices[0]: got '/dev/kvmfleet-nope'; no such device"),
        "dirsrc": ({"type": "dir", "path": "/x", "source": {"dir": "/export"}},
                   "option source.dir: got '/export'; a dir pool does not take it"),
        "nodir": ({"type": "dir", "path": str(tmp_path / "missing")},
                  "the directory does not exist; set build: true"),
    }
    tasks = [dict(pool_task(prefix + key, **args), ignore_errors=True) for key, (args, _msg) in cases.items()]
    rbd = dict(pool_task(prefix + "rbd", type="rbd", source={"name": "rbd", "hosts": ["192.0.2.30"]}), ignore_errors=True)
    before = config(conn, prefix + "existing")
    for check in (True, False):
        run = ansible.run(tasks + ([] if check else [rbd]), check=check)
        for key, (_args, message) in cases.items():
            result = run.result("pool " + prefix + key)
            assert run.status("pool " + prefix + key) == "ignored", result
            assert message in result["msg"], result["msg"]
    # rbd: libvirt here has no rbd backend; its refusal comes back as the message, and nothing is defined
    assert "rbd" in run.result(rbd["name"])["msg"]
    names = {p.name() for p in conn.listAllStoragePools(0) if p.name().startswith(prefix)}
    assert names == {prefix + "existing"}
    assert etree.tostring(config(conn, prefix + "existing")) == etree.tostring(before)
    assert not (tmp_path / "mnt").exists() and afile.read_text() == "not a directory\n"
