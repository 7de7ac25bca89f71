"""cloud-init seeds, Ignition and base images against the real libvirtd, with a guest that reports what it saw.

The test guest mounts the seed cdrom and prints meta-data and the top-level keys of user-data (never
values) on its console, and the hash of the fw_cfg Ignition entry.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pycdlib
import pytest
from lxml import etree

import harness
from harness import guest, inactive_xml, report_where

pytestmark = pytest.mark.slow

NS = {"k": "https://kvmfleet.dev/xmlns/libvirt/guest/1"}
SECRET = "kvmfleet-S3CRET-pa55w0rd-91c7"


def _iso(path):
    """(volume label, {file: text}) of an ISO file."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    files = {}
    for child in iso.list_children(rr_path="/"):
        if child.is_file():
            name = child.rock_ridge.name().decode()
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path="/" + name)
            files[name] = out.getvalue().decode()
    label = iso.pvd.volume_identifier.decode().rstrip()
    iso.close()
    return label, files


def _assert_secret_nowhere(runs):
    for run in runs:
        assert SECRET not in run.output
        assert SECRET not in json.dumps(run.tasks), "the secret leaked into a task result or diff"


def _seed_disk(root):
    for disk in root.iterfind("devices/disk"):
        source = disk.find("source")
        if source is not None and (source.get("volume") or "").endswith("-cidata.iso"):
            return disk
    return None


def test_seed_boots_configured_edits_live_and_hides_secrets(conn, prefix, ansible, image, lab):
    name = prefix + "ci"
    user_data = {"users": [{"name": "admin", "passwd": SECRET}], "packages": ["vim"]}
    seed = {"pool": lab["pool"], "meta_data": {"local-hostname": "ci-host"}, "user_data": user_data,
            "network_config": {"version": 2, "ethernets": {"eth0": {"dhcp4": True}}}}
    task = guest(name, image, lab, cloud_init=seed)
    runs = [ansible.converge([task])]
    result = runs[0].result(task["name"])
    assert any(a.startswith("create cloud-init seed volume") for a in result["actions"])

    root = etree.fromstring(inactive_xml(conn, name).encode())
    cdrom = _seed_disk(root)
    assert cdrom.get("device") == "cdrom" and cdrom.find("readonly") is not None
    assert cdrom.find("target").get("dev") == "sda" and cdrom.find("target").get("bus") == "sata"
    stored = root.xpath("metadata/k:guest/k:cloud-init/@hash", namespaces=NS)[0]
    iso_path = lab["pool_dir"] / (name + "-cidata.iso")
    label, files = _iso(iso_path)
    assert label == "cidata" and sorted(files) == ["meta-data", "network-config", "user-data"]
    uuid = conn.lookupByName(name).UUIDString()

    report = report_where(name, lambda r: r["seed_label"] == "cidata" and r["user_data_keys"], "its seed")
    assert report["meta_data"] == {"instance-id": "iid-" + uuid, "local-hostname": "ci-host"}
    assert report["user_data_keys"] == ["packages", "users"]
    assert report["disks"]["sr0"]["ro"] is True

    # Unchanged: nothing rebuilt (the file is untouched), nothing redefined.
    stat = iso_path.stat()
    before = inactive_xml(conn, name)
    again = ansible.run([task])
    runs.append(again)
    assert again.changed == 0
    assert iso_path.stat().st_mtime_ns == stat.st_mtime_ns and iso_path.stat().st_ino == stat.st_ino
    assert inactive_xml(conn, name) == before

    # Changed user data on the running guest: new ISO bytes in the same volume, a live media change on the
    # same target and address, and the guest sees the new keys.
    address = etree.tostring(cdrom.find("address"))
    user_data["runcmd"] = [["touch", "/tmp/edited"]]
    user_data["users"][0]["passwd"] = SECRET + "-v2"
    edited = guest(name, image, lab, cloud_init=seed)
    runs.append(ansible.converge([edited]))
    result = runs[-1].result(edited["name"])
    assert result["applied_live"] == ["cloud-init seed media change"] and result["reboot_required"] is False
    assert result["changes"][0].startswith("cloud_init: content sha256:")
    diff = result["diff"]
    assert "<kvmfleet:cloud-init hash=" in diff["after"] and diff["before"] != diff["after"]
    root = etree.fromstring(inactive_xml(conn, name).encode())
    assert etree.tostring(_seed_disk(root).find("address")) == address
    assert root.xpath("metadata/k:guest/k:cloud-init/@hash", namespaces=NS)[0] != stored
    report = report_where(name, lambda r: "runcmd" in r["user_data_keys"], "the edited user-data")
    assert report["user_data_keys"] == ["packages", "runcmd", "users"]
    assert report["meta_data"]["instance-id"] == "iid-" + uuid
    assert conn.lookupByName(name).UUIDString() == uuid

    # The guest read back (its seed cdrom as one of its disks) is valid input that changes nothing.
    read = ansible.run([{"name": "read", "kvmfleet.libvirt.domain_info": {"name": name}, "register": "read"}])
    spec = dict(read.result("read")["guests"][0]["spec"])
    runs.append(ansible.run([{"name": "read-back", "kvmfleet.libvirt.domain": spec}]))
    assert runs[-1].changed == 0, runs[-1].result("read-back").get("changes")

    # Left out of a description that declares the whole disk list: the seed is detached (at the next boot: a SATA
    # cdrom does not unplug live), its metadata goes, and with remove_storage its volume is deleted.
    dropped = guest(name, image, lab, remove_storage=True)
    runs.append(ansible.converge([dropped]))
    result = runs[-1].result(dropped["name"])
    assert "delete cloud-init seed volume %s" % iso_path in result["actions"], result["actions"]
    assert result["reboot_required"] and any("disk sda" in reason for reason in result["reasons"]), result
    assert not iso_path.exists()
    root = etree.fromstring(inactive_xml(conn, name).encode())
    assert _seed_disk(root) is None and not root.xpath("metadata/k:guest/k:cloud-init", namespaces=NS)
    assert [d.find("target").get("dev") for d in root.iterfind("devices/disk")] == ["vda"]

    _assert_secret_nowhere(runs)


@pytest.mark.parametrize("bad, option, words", [
    ({"user_data": "#cloud-config\npassword: %s\nusers: [oops\n" % SECRET}, "cloud_init.user_data", "valid YAML"),
    ({"network_config": {"version": 1, "config": []}}, "cloud_init.network_config.version", "version 2"),
    ({"ignition": '{"ignition": {"version": "3.4.0"}, "x": "%s"' % SECRET}, "ignition", "not JSON"),
])
def test_bad_input_fails_and_makes_nothing(conn, prefix, ansible, image, lab, bad, option, words):
    name = prefix + "bad"
    seed = {"pool": lab["pool"], "user_data": {"packages": ["vim"]}}
    extra = {"cloud_init": dict(seed, **{k: v for k, v in bad.items() if k != "ignition"})}
    if "ignition" in bad:
        extra["ignition"] = bad["ignition"]
    task = guest(name, image, lab, **extra)
    for check in (True, False):
        run = ansible.run([task], check=check, expect_rc=2)
        msg = run.result(task["name"])["msg"]
        assert ("option %s:" % option) in msg and words in msg, msg
        assert SECRET not in run.output and SECRET not in json.dumps(run.tasks)
    assert harness.domain_state(conn, name) == "absent"
    assert list(lab["pool_dir"].iterdir()) == []


def test_seed_module_ignition_and_base_image_overlay(conn, prefix, ansible, image, lab, request):
    pool = conn.storagePoolLookupByName(lab["pool"])
    # A base image for the overlay: a 32 MiB qcow2 volume.
    base = pool.createXML("<volume><name>%sbase.qcow2</name><capacity unit='MiB'>32</capacity>"
                          "<target><format type='qcow2'/></target></volume>" % prefix, 0)

    # The cloud_init module on its own: a seed volume, idempotent, and rewritten only on a change.
    seed_task = {"name": "seed", "kvmfleet.libvirt.cloud_init": {
        "pool": lab["pool"], "name": prefix + "alone-cidata.iso", "meta_data": {"local-hostname": "alone"},
        "user_data": {"users": [{"name": "x", "passwd": SECRET}]}}}
    runs = [ansible.converge([seed_task])]
    path = Path(runs[0].result("seed")["volume_path"])
    label, files = _iso(path)
    assert label == "cidata" and "local-hostname: alone" in files["meta-data"]
    assert "instance-id: iid-" in files["meta-data"]
    seed_task["kvmfleet.libvirt.cloud_init"]["meta_data"]["local-hostname"] = "alone2"
    runs.append(ansible.converge([seed_task]))
    assert "local-hostname: alone2" in _iso(path)[1]["meta-data"]

    # A guest with an overlay disk on the base image and an Ignition config through fw_cfg.
    name = prefix + "ign"
    ignition = {"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "core", "passwordHash": SECRET}]}}
    disks = [{"pool": lab["pool"], "volume": name + "-root.qcow2", "backing": base.name(), "size": "64MiB"}]
    task = guest(name, image, lab, disks=disks, ignition=ignition)
    runs.append(ansible.converge([task]))
    vol = etree.fromstring(pool.storageVolLookupByName(name + "-root.qcow2").XMLDesc(0).encode())
    assert vol.findtext("backingStore/path") == base.path()
    assert int(vol.findtext("capacity")) == 64 * 1024 * 1024
    root = etree.fromstring(inactive_xml(conn, name).encode())
    entry = root.find("sysinfo[@type='fwcfg']/entry[@name='opt/com.coreos/config']")
    ign_path = Path(entry.get("file"))
    request.addfinalizer(lambda: ign_path.unlink(missing_ok=True))
    config = ign_path.read_bytes()
    assert json.loads(config) == ignition
    report = report_where(name, lambda r: r["fwcfg"], "the fw_cfg entry")
    assert report["fwcfg"]["opt/com.coreos/config"] == hashlib.sha256(config).hexdigest()

    # A changed config: the file is rewritten; Ignition reads it at the next boot.
    ignition["passwd"]["users"][0]["passwordHash"] = SECRET + "2"
    runs.append(ansible.converge([guest(name, image, lab, disks=disks, ignition=ignition)]))
    result = runs[-1].result(task["name"])
    assert result["reboot_required"] is True and any(r.startswith("ignition:") for r in result["reasons"])
    assert json.loads(ign_path.read_bytes()) == ignition
    _assert_secret_nowhere(runs)
    assert base.info()[1] == 32 * 1024 * 1024  # the base image is never written to

    # The Ignition file goes with the guest; the overlay and the base image stay.
    gone = ansible.run([{"name": "gone", "kvmfleet.libvirt.domain": {"name": name, "state": "absent"}}])
    assert gone.result("gone")["changed"] and not ign_path.exists()
    assert (lab["pool_dir"] / (name + "-root.qcow2")).exists()
