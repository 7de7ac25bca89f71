"""Sharing with the host and devices against the real daemon: a virtiofs and a 9p share the guest mounts and reads
a file the host wrote from; panic and balloon options on a running guest; and what this machine has no device for
(NICs that are host devices: SR-IOV VF, vDPA, vhost-user; vsock, which needs /dev/vhost-vsock): defined, read
back, and refused at start with libvirt's reason."""

from __future__ import annotations

import pytest

import harness
import testguest
from harness import IMAGE_DIR, guest, inactive_xml, report_where

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image():
    """The test guest (with its share modules) in a directory of its own: a test run of another branch rebuilding the
    shared image at the same time never swaps the initrd under this guest."""
    return testguest.build(str(IMAGE_DIR / "shares"))


def _share_dir(prefix, what, line):
    """A host directory (removed with the test's other objects: harness.sweep) holding KVMFLEET-SHARE."""
    path = IMAGE_DIR.parent / (prefix + what)
    path.mkdir()
    path.chmod(0o755)
    (path / "KVMFLEET-SHARE").write_text(line + "\nsecond line\n")
    (path / "KVMFLEET-SHARE").chmod(0o644)
    return path


def test_guest_reads_files_the_host_wrote_through_virtiofs_and_9p(conn, prefix, ansible, image, lab):
    name = prefix + "shares"
    vfs = _share_dir(prefix, "vfs", "written-for-virtiofs-" + prefix)
    ninep = _share_dir(prefix, "9p", "written-for-9p-" + prefix)
    cmdline = image["cmdline"] + " kvmfleet.shares=hostvfs,host9p"
    task = guest(name, image, lab, boot={"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": cmdline},
                 filesystems=[{"source": str(vfs), "target": "hostvfs", "driver": "virtiofs"},
                              {"source": str(ninep), "target": "host9p", "driver": "path", "accessmode": "mapped",
                               "readonly": True}],
                 panic="isa", balloon={"stats_period": 5, "autodeflate": True})
    first = ansible.converge([task])  # check mode predicts, the real run, a second run and check mode: no change
    assert "memory_backing.access" in " ".join(first.result("guest " + name)["changes"])
    root = parse_xml(inactive_xml(conn, name))
    assert root.find("memoryBacking/access").get("mode") == "shared"
    assert root.find("memoryBacking/source").get("type") == "memfd"

    report = report_where(name, lambda r: len(r["shares"]) == 2, "its two shares", timeout=120)
    assert report["shares"]["hostvfs"] == {"type": "virtiofs", "first": "written-for-virtiofs-" + prefix}
    assert report["shares"]["host9p"] == {"type": "9p", "first": "written-for-9p-" + prefix}

    # the balloon's statistics period changes live
    faster = dict(task["kvmfleet.libvirt.domain"], balloon={"stats_period": 2, "autodeflate": True})
    changed = ansible.run([dict(task, **{"kvmfleet.libvirt.domain": faster})]).result("guest " + name)
    assert changed["applied_live"] == ["balloon.stats_period: 2"] and not changed["reboot_required"], changed
    assert parse_xml(harness.domain_xml(conn, name)).find("devices/memballoon/stats").get("period") == "2"

    # the read-back spec is valid input and converges back to the same XML
    info = ansible.run([{"name": "info", "kvmfleet.libvirt.domain_info": {"name": name}, "register": "info"}])
    spec = dict(info.result("info")["guests"][0]["spec"])
    assert [(f["target"], f["driver"]) for f in spec["filesystems"]] == [("hostvfs", "virtiofs"), ("host9p", "path")]
    assert spec["panic"] == "isa"
    assert spec["balloon"] == {"model": "virtio", "autodeflate": True, "stats_period": 2}
    before = inactive_xml(conn, name)
    again = ansible.run([{"name": "apply", "kvmfleet.libvirt.domain": dict(spec, state="running")}])
    assert again.changed == 0, again.result("apply").get("changes")
    assert inactive_xml(conn, name) == before


def test_nics_that_are_host_devices_are_defined_read_back_and_refused_at_start(conn, prefix, ansible, lab):
    name = prefix + "vf"
    task = {"name": "nics", "register": "result", "kvmfleet.libvirt.domain": {
        "name": name, "virt_type": "qemu", "machine": "q35", "memory": 128, "state": "present",
        "iommu": "intel", "vsock": True,
        "interfaces": [{"hostdev": "0000:7f:1f.7"}, {"vdpa": "/dev/vhost-vdpa-7"},
                       {"vhostuser": "/run/%s.sock" % name, "vhostuser_mode": "server"}]}}
    ansible.converge([task])
    root = parse_xml(inactive_xml(conn, name))
    assert [nic.get("type") for nic in root.findall("devices/interface")] == ["hostdev", "vdpa", "vhostuser"]
    assert root.find("features/ioapic").get("driver") == "qemu"
    assert root.find("devices/vsock/cid").attrib == {"auto": "yes"}
    assert root.find("memoryBacking/access").get("mode") == "shared", "vhost-user needs shared memory"

    info = ansible.run([{"name": "info", "kvmfleet.libvirt.domain_info": {"name": name}, "register": "info"}])
    spec = dict(info.result("info")["guests"][0]["spec"])
    assert spec["vsock"] is True and "vsock_cid" not in spec
    assert [n.get("hostdev") or n.get("vdpa") or n.get("vhostuser") for n in spec["interfaces"]] == [
        "0000:7f:1f.7", "/dev/vhost-vdpa-7", "/run/%s.sock" % name]
    again = ansible.run([{"name": "apply", "kvmfleet.libvirt.domain": dict(spec, state="present")}])
    assert again.changed == 0, again.result("apply").get("changes")

    # this machine has no such devices: starting fails with libvirt's reason, and the guest stays defined
    task["kvmfleet.libvirt.domain"]["state"] = "running"
    failed = ansible.run([task], expect_rc=2)
    message = failed.result("nics")["msg"]
    assert failed.result("nics")["code"] == "libvirt_error", message
    assert any(missing in message for missing in ("vhost-vsock", "0000:7f:1f.7", "vhost-vdpa-7", "vu.sock")), message
    assert harness.domain_state(conn, name) == "shutoff"

    # an intel IOMMU on a machine that cannot have it: an error naming the option, nothing changed
    bad = {"name": "bad", "register": "result", "kvmfleet.libvirt.domain": {
        "name": prefix + "noq35", "virt_type": "qemu", "machine": "pc", "memory": 128, "iommu": "intel"}}
    refused = ansible.run([bad], expect_rc=2)
    assert "iommu" in refused.result("bad")["msg"] and "q35" in refused.result("bad")["msg"]
    assert prefix + "noq35" not in [d.name() for d in conn.listAllDomains(0)]
