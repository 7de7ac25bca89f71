"""The volume module against the real libvirtd, on a dir pool and an fs pool on a loop device.

Volumes are created, grown, refused a shrink, overlaid on a base image, cloned, imported from a file
and from a URL (a local HTTP server on 127.0.0.1), and booted by a test guest that reports the sizes
it sees. Assertions read libvirt (vol.info(), volume XML), the files on disk and the guest's console.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from lxml import etree

import harness
from harness import guest, report_where

IMAGES = Path("/var/lib/libvirt/images")
MiB = 1024 * 1024


def vol_task(pool, name, title=None, **args):
    args.update(pool=pool, name=name)
    return {"name": title or "volume %s/%s" % (pool, name), "kvmfleet.libvirt.volume": args, "register": "result"}


def volume(conn, pool, name):
    return conn.storagePoolLookupByName(pool).storageVolLookupByName(name)


def vol_xml(conn, pool, name):
    return etree.fromstring(volume(conn, pool, name).XMLDesc(0).encode())


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def storage(conn, prefix, tmp_path):
    """A loop device (for the fs pool) and directories under /var/lib/libvirt/images (qemu must reach them)."""
    backing = tmp_path / "loop.img"
    with open(backing, "wb") as handle:
        handle.truncate(96 * MiB)
    device = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True, capture_output=True,
                            text=True).stdout.strip()
    dirs = {"dir": IMAGES / (prefix + "dir"), "fs": IMAGES / (prefix + "fs")}
    yield {"device": device, "dir_path": dirs["dir"], "fs_path": dirs["fs"],
           "dir": prefix + "dir", "fs": prefix + "fs"}
    harness.sweep(conn, prefix)  # guests, then pools: the fs pool is unmounted before the device goes
    subprocess.run(["losetup", "--detach", device], check=False)
    for path in dirs.values():
        if path.is_dir() and not os.path.ismount(path):
            shutil.rmtree(path)


def test_dir_and_fs_pools_volumes_and_a_guest_that_sees_them(conn, prefix, ansible, image, lab, storage, tmp_path):
    dir_pool, fs_pool = storage["dir"], storage["fs"]
    pools = [
        {"name": "dir pool", "kvmfleet.libvirt.pool": {"name": dir_pool, "type": "dir", "path": str(storage["dir_path"]),
                                                       "build": True}},
        {"name": "fs pool", "kvmfleet.libvirt.pool": {"name": fs_pool, "type": "fs", "path": str(storage["fs_path"]),
                                                      "source": {"devices": [storage["device"]], "format": "ext4"},
                                                      "build": True}},
    ]
    run = ansible.converge(pools)
    assert run.result("fs pool")["actions"] == ["define", "build", "start"]
    mounts = Path("/proc/mounts").read_text().split("\n")
    assert any(line.split()[:3] == [storage["device"], str(storage["fs_path"]), "ext4"] for line in mounts if line), \
        "build made an ext4 file system on the loop device, and start mounted it"

    # A base image and a data volume, then everything made from or done to them.
    ansible.run([vol_task(dir_pool, "base.qcow2", size="32MiB"),
                 vol_task(fs_pool, "data.raw", size="32MiB", format="raw")])
    src = tmp_path / "src.raw"
    src.write_bytes(os.urandom(MiB) + b"\0" * (3 * MiB))
    src_sum = hashlib.sha256(src.read_bytes()).hexdigest()
    made = [
        vol_task(dir_pool, "overlay.qcow2", backing="base.qcow2", size="40MiB"),
        vol_task(fs_pool, "clone.raw", clone="base.qcow2", clone_pool=dir_pool, format="raw"),
        vol_task(fs_pool, "data.raw", size="48MiB"),
        vol_task(fs_pool, "imported.raw", src=str(src), checksum="sha256:" + src_sum, mode="0640"),
    ]
    run = ansible.converge(made)
    base_path = str(storage["dir_path"] / "base.qcow2")
    assert volume(conn, dir_pool, "overlay.qcow2").info()[1] == 40 * MiB
    overlay = vol_xml(conn, dir_pool, "overlay.qcow2")
    assert overlay.findtext("backingStore/path") == base_path
    assert overlay.find("target/format").get("type") == "qcow2"
    assert volume(conn, dir_pool, "overlay.qcow2").info()[2] < 2 * MiB, "the overlay is thin"
    assert run.result("volume %s/overlay.qcow2" % dir_pool)["diff"]["after"] == {
        "state": "present", "capacity": "40MiB", "format": "qcow2", "backing": base_path}
    assert vol_xml(conn, fs_pool, "clone.raw").find("target/format").get("type") == "raw"
    assert volume(conn, fs_pool, "clone.raw").info()[1] == 32 * MiB
    assert volume(conn, fs_pool, "data.raw").info()[1] == 48 * MiB
    assert run.result("volume %s/data.raw" % fs_pool)["diff"] == {
        "before": {"capacity": "32MiB"}, "after": {"capacity": "48MiB"},
        "before_header": "volume data.raw", "after_header": "volume data.raw"}
    imported = storage["fs_path"] / "imported.raw"
    assert hashlib.sha256(imported.read_bytes()).hexdigest() == src_sum, "the file arrived byte for byte"
    assert stat.S_IMODE(imported.stat().st_mode) == 0o640

    # Refused: a shrink (with both sizes), a format change; the volume is untouched. Allowed: a new mode.
    refused = [dict(vol_task(fs_pool, "data.raw", "shrink", size="16MiB"), ignore_errors=True),
               dict(vol_task(dir_pool, "base.qcow2", "format", format="raw"), ignore_errors=True),
               dict(vol_task(dir_pool, "base.qcow2", "delete base", state="absent"), ignore_errors=True),
               vol_task(fs_pool, "imported.raw", "chmod", mode="0644")]
    run = ansible.run(refused)
    assert run.result("shrink")["msg"] == (
        "option size: got '16MiB'; volume data.raw is 48MiB (50331648 bytes) and the requested size is 16MiB "
        "(16777216 bytes); shrinking is refused (it would lose data)")
    assert "option format: got 'raw'; volume base.qcow2 is qcow2" in run.result("format")["msg"]
    assert "is the backing image of %s" % (storage["dir_path"] / "overlay.qcow2") in run.result("delete base")["msg"]
    assert volume(conn, fs_pool, "data.raw").info()[1] == 48 * MiB and Path(base_path).is_file()
    assert stat.S_IMODE(imported.stat().st_mode) == 0o644
    assert vol_xml(conn, fs_pool, "imported.raw").findtext("target/permissions/mode") == "0644"

    # A guest boots with the fs pool's grown volume and the overlay: it sees the declared sizes.
    name = prefix + "g"
    disks = [{"pool": fs_pool, "volume": "data.raw"}, {"pool": dir_pool, "volume": "overlay.qcow2"}]
    ansible.run([guest(name, image, lab, disks=disks)])
    report = report_where(name, lambda r: "vdb" in r["disks"], "its two disks")
    assert report["disks"]["vda"]["size_bytes"] == 48 * MiB
    assert report["disks"]["vdb"]["size_bytes"] == 40 * MiB

    # While the guest runs, libvirt owns its images (dynamic ownership): a declared owner is left alone.
    data = storage["fs_path"] / "data.raw"
    uid = data.stat().st_uid
    assert uid != 0, "libvirt gave the running guest's image to the qemu user"
    run = ansible.run([vol_task(fs_pool, "data.raw", "owner", owner=0)])
    assert run.changed == 0 and data.stat().st_uid == uid
    assert any("running guest(s) %s use it" % name in w for w in run.result("owner")["warnings"])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """A directory served over HTTP on 127.0.0.1 (guest traffic never leaves the machine)."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def dir_pool(conn, prefix):
    path = IMAGES / (prefix + "url")
    path.mkdir()
    pool = conn.storagePoolDefineXML("<pool type='dir'><name>%surl</name><target><path>%s</path></target></pool>"
                                     % (prefix, path), 0)
    pool.create(0)
    yield prefix + "url", path
    harness.sweep(conn, prefix)
    shutil.rmtree(path, ignore_errors=True)  # the sweep removes it when only files were left


def test_url_import_with_checksum(conn, prefix, ansible, http_dir, dir_pool):
    www, base_url = http_dir
    pool, pool_path = dir_pool
    image = www / "cloud.qcow2"
    qemu_img("create", "-f", "qcow2", str(image), "24M")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    env = {"no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}

    task = dict(vol_task(pool, "cloud.qcow2", url=base_url + "cloud.qcow2", checksum="sha256:" + digest,
                         size="32MiB"), environment=env)
    result = ansible.converge([task]).result(task["name"])
    assert result["actions"] == ["import cloud.qcow2 from %scloud.qcow2" % base_url, "grow cloud.qcow2 to 32MiB"]
    vol = volume(conn, pool, "cloud.qcow2")
    assert vol.info()[1] == 32 * MiB, "imported (24 MiB virtual size) then grown"
    assert vol_xml(conn, pool, "cloud.qcow2").find("target/format").get("type") == "qcow2"
    assert result["format"] == "qcow2" and result["capacity"] == 32 * MiB

    # A bad checksum: the task fails naming both digests, and nothing is left behind.
    files_before = sorted(os.listdir(pool_path))
    tmp_root = Path.home() / ".ansible" / "tmp"
    leftovers = set(tmp_root.rglob("kvmfleet-volume-*")) if tmp_root.exists() else set()
    bad = dict(vol_task(pool, "bad.qcow2", url=base_url + "cloud.qcow2", checksum="sha256:" + "0" * 64),
               environment=env)
    run = ansible.run([bad], expect_rc=2)
    assert run.result(bad["name"])["msg"] == (
        "option checksum: got 'sha256:%s'; the download of %scloud.qcow2 has sha256:%s; nothing was created"
        % ("0" * 64, base_url, digest))
    conn.storagePoolLookupByName(pool).refresh(0)
    assert "bad.qcow2" not in {v.name() for v in conn.storagePoolLookupByName(pool).listAllVolumes(0)}
    assert sorted(os.listdir(pool_path)) == files_before
    assert (set(tmp_root.rglob("kvmfleet-volume-*")) if tmp_root.exists() else set()) == leftovers

    # A URL that is not there: the HTTP status in the message, nothing created.
    missing = dict(vol_task(pool, "missing.qcow2", url=base_url + "nope.qcow2", checksum="sha256:" + digest),
                   environment=env)
    run = ansible.run([missing], expect_rc=2)
    assert "cannot download %snope.qcow2: HTTP 404" % base_url in run.result(missing["name"])["msg"]

    # absent deletes, and says what
    gone = ansible.converge([vol_task(pool, "cloud.qcow2", state="absent")]).result(
        "volume %s/cloud.qcow2" % pool)
    assert gone["removed"] == str(pool_path / "cloud.qcow2")
    assert not (pool_path / "cloud.qcow2").exists()
