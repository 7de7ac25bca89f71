"""The domain module against the real libvirtd, with a real guest that reports what it sees.

Each scenario converges (check mode predicts, real run changes, second run changed=0, check mode
after predicts nothing) and then asserts on what libvirt and the guest's own console report.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import libvirt
import pycdlib
import pytest
from lxml import etree

import harness
from harness import guest, inactive_xml, report_where, serial_log

pytestmark = pytest.mark.slow


def test_create_boot_and_idempotence(conn, prefix, ansible, image, lab):
    name = prefix + "g1"
    task = guest(name, image, lab, tags={"role": "web", "env": "test"}, vcpus=1, max_vcpus=2)
    first = ansible.converge([task])
    result = first.result(task["name"])
    assert result["created"] is True
    assert harness.domain_state(conn, name) == "running"
    mac = result["interfaces"][0]["mac"]
    assert mac.startswith("52:54:00:")

    # What libvirt stored: our marker and tags, KiB memory, the NIC with the reported MAC.
    root = etree.fromstring(inactive_xml(conn, name).encode())
    ns = {"k": "https://kvmfleet.dev/xmlns/libvirt/guest/1"}
    assert root.xpath("metadata/k:guest/@managed", namespaces=ns) == ["true"]
    assert {t.get("name"): t.get("value") for t in root.xpath("metadata/k:guest/k:tag", namespaces=ns)} == {
        "role": "web", "env": "test"}
    assert root.findtext("memory") == str(256 * 1024)
    assert root.find("vcpu").get("current") == "1" and root.findtext("vcpu") == "2"
    assert root.find("devices/interface/mac").get("address") == mac

    # What the guest sees: the declared disk size and the MAC.
    report = report_where(name, lambda r: r["nics"], "its NIC")
    assert report["disks"]["vda"]["size_bytes"] == 64 * 1024 * 1024
    assert mac in report["nics"]

    # A further run writes nothing: the stored XML is byte for byte the same.
    before = inactive_xml(conn, name)
    again = ansible.run([task])
    assert again.changed == 0
    assert inactive_xml(conn, name) == before
    assert again.result(task["name"])["interfaces"][0]["mac"] == mac


def test_live_hotplug_and_unplug(conn, prefix, ansible, image, lab):
    name = prefix + "hp"
    base = guest(name, image, lab, vcpus=1, max_vcpus=2, memory=256)
    ansible.run([base])
    report_where(name, lambda r: r["nics"] and r["mem_total_kib"], "its first report")
    uuid_before = conn.lookupByName(name).UUIDString()
    root_mac = ansible.run([base]).result(base["name"])["interfaces"][0]["mac"]

    grown = guest(name, image, lab, vcpus=2, max_vcpus=2, memory=256, current_memory=192,
                  disks=[{"pool": lab["pool"], "volume": name + "-root.qcow2", "size": "96MiB"},
                         {"pool": lab["pool"], "volume": name + "-data.qcow2", "size": "32MiB", "serial": "KVMDATA1"}],
                  interfaces=[{"network": lab["network"], "link_state": "down"}, {"network": lab["network"]}])
    run = ansible.converge([grown])
    result = run.result(grown["name"])
    assert result["reboot_required"] is False, result["reasons"]
    assert set(result["applied_live"]) == {
        "grow disk vda to 96MiB", "attach disk vdb", "update interface %s" % root_mac,
        "attach interface %s" % result["interfaces"][1]["mac"], "current_memory: 192MiB", "vcpus: 2"}
    new_mac = result["interfaces"][1]["mac"]

    report = report_where(name, lambda r: "vdb" in r["disks"] and new_mac in r["nics"] and r["cpus_online"] == 2,
                          "the hot-plugged disk, NIC and vCPU")
    assert report["disks"]["vdb"] == {"size_bytes": 32 * 1024 * 1024, "ro": False, "serial": "KVMDATA1"}
    report = report_where(name, lambda r: r["disks"]["vda"]["size_bytes"] == 96 * 1024 * 1024, "vda grown live")
    assert report["nics"][root_mac]["operstate"] == "down"
    report = report_where(name, lambda r: r["mem_total_kib"] <= 200 * 1024, "the balloon at 192 MiB")
    assert conn.lookupByName(name).UUIDString() == uuid_before
    assert conn.lookupByName(name).info()[2] == 192 * 1024  # memory in use, live

    # Take the data disk and the second NIC away again: detached live, the guest loses them.
    # (vCPUs stay at 2: a vCPU unplug needs the guest's cooperation, which is not the point here.)
    base["kvmfleet.libvirt.domain"]["vcpus"] = 2
    base["kvmfleet.libvirt.domain"]["disks"][0]["size"] = "96MiB"
    ansible.converge([base])
    report = report_where(name, lambda r: "vdb" not in r["disks"] and new_mac not in r["nics"], "the unplug")
    assert root_mac in report["nics"]
    config = etree.fromstring(inactive_xml(conn, name).encode())
    assert [d.get("dev") for d in config.iterfind("devices/disk/target")] == ["vda"]
    assert [m.get("address") for m in config.iterfind("devices/interface/mac")] == [root_mac]
    # the unplugged disk's image is kept
    assert (lab["pool_dir"] / (name + "-data.qcow2")).exists()


def _seed_iso(path, files):
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for fname, text in files.items():
        data = text.encode()
        iso.add_fp(io.BytesIO(data), len(data), "/%s.;1" % fname.upper().replace("-", "_"),
                   rr_name=fname, joliet_path="/" + fname)
    iso.write(str(path))
    iso.close()


def test_cdrom_media_change_is_live(conn, prefix, ansible, image, lab):
    name = prefix + "cd"
    disks = [{"pool": lab["pool"], "volume": name + "-root.qcow2", "size": "64MiB"},
             {"device": "cdrom", "dev": "sda", "bus": "sata"}]
    ansible.run([guest(name, image, lab, disks=disks)])
    report_where(name, lambda r: "sr0" in r["disks"], "its empty cdrom")
    iso = lab["pool_dir"] / (name + "-seed.iso")
    _seed_iso(iso, {"meta-data": "instance-id: %s\nlocal-hostname: cdtest\n" % name})
    conn.storagePoolLookupByName(lab["pool"]).refresh(0)

    with_media = disks[:1] + [{"device": "cdrom", "dev": "sda", "bus": "sata", "path": str(iso)}]
    run = ansible.converge([guest(name, image, lab, disks=with_media)])
    result = run.result("guest " + name)
    assert result["applied_live"] == ["update disk sda"] and result["reboot_required"] is False
    report = report_where(name, lambda r: r["seed"], "the seed on the new media")
    assert report["seed_label"] == "cidata"
    assert "local-hostname: cdtest\n" in report["seed"]["meta-data"]


def test_changes_that_need_a_reboot(conn, prefix, ansible, image, lab):
    name = prefix + "rb"
    ansible.run([guest(name, image, lab)])
    report_where(name, lambda r: r["nics"], "boot")
    dom_id = conn.lookupByName(name).ID()
    cmdline = image["cmdline"] + " kvmfleet.test=1"
    # A SATA disk cannot be hot-plugged: it goes to the config and stays pending until a restart.
    disks = [{"pool": lab["pool"], "volume": name + "-root.qcow2", "size": "64MiB"},
             {"pool": lab["pool"], "volume": name + "-data.qcow2", "size": "16MiB", "bus": "sata", "dev": "sda"}]
    changed = guest(name, image, lab, disks=disks,
                    boot={"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": cmdline})
    run = ansible.converge([changed])
    result = run.result(changed["name"])
    assert result["reboot_required"] is True
    assert any(r.startswith("boot.cmdline:") for r in result["reasons"])
    assert any("sda" in r and "not applied to the running guest" in r for r in result["reasons"]), result["reasons"]
    again = ansible.run([changed]).result(changed["name"])
    assert again["changed"] is False
    assert any("attach disk sda" in r and "in the config but not in the running guest" in r
               for r in again["reasons"]), "a device the guest could not take stays pending: %s" % again["reasons"]
    assert conn.lookupByName(name).ID() == dom_id  # not restarted: restart defaults to never
    live = etree.fromstring(harness.domain_xml(conn, name).encode())
    assert live.findtext("os/cmdline") == image["cmdline"]
    assert live.find("devices/disk/target[@dev='sda']") is None

    # restart: if_needed applies a pending change by a real restart (a new QEMU process)
    cmdline2 = cmdline + " kvmfleet.test=2"
    restarted = guest(name, image, lab, restart="if_needed", disks=disks,
                      boot={"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": cmdline2})
    result = ansible.converge([restarted]).result(restarted["name"])
    assert result["reboot_required"] is False
    assert any(a.startswith("restart") for a in result["actions"])
    assert conn.lookupByName(name).ID() != dom_id
    live = etree.fromstring(harness.domain_xml(conn, name).encode())
    assert live.findtext("os/cmdline") == cmdline2
    assert live.find("devices/disk/target[@dev='sda']") is not None, "the restart brought the pending disk in"


def test_power_states_and_absent(conn, prefix, ansible, image, lab):
    name = prefix + "ps"
    ansible.run([guest(name, image, lab)])
    report_where(name, lambda r: r["nics"], "boot")
    # graceful: the guest's ACPI power button handler powers it off
    result = ansible.converge([guest(name, image, lab, state="shutoff")]).result("guest " + name)
    assert result["actions"] == ["shutdown"]
    assert harness.domain_state(conn, name) == "shutoff"
    assert "KVMFLEET-POWEROFF" in serial_log(name).read_text(errors="replace")

    ansible.converge([guest(name, image, lab, state="paused")])
    assert harness.domain_state(conn, name) == "paused"
    ansible.converge([guest(name, image, lab, state="running")])
    assert harness.domain_state(conn, name) == "running"

    # no time to shut down gracefully: refused without force_off, powered off with it
    hurried = guest(name, image, lab, state="shutoff", shutdown_timeout=0)
    run = ansible.run([hurried], expect_rc=2)
    assert "Set force_off: true" in run.result(hurried["name"])["msg"]
    assert harness.domain_state(conn, name) == "running"
    hurried["kvmfleet.libvirt.domain"]["force_off"] = True
    ansible.converge([hurried])
    assert harness.domain_state(conn, name) == "shutoff"

    volume = lab["pool_dir"] / (name + "-root.qcow2")
    absent = {"name": "absent", "kvmfleet.libvirt.domain": {"name": name, "state": "absent"}}
    ansible.converge([absent])
    assert harness.domain_state(conn, name) == "absent"
    assert volume.exists(), "absent must keep disk images unless remove_storage is set"

    ansible.run([guest(name, image, lab, state="shutoff")])
    remove = {"name": "absent", "kvmfleet.libvirt.domain": {"name": name, "state": "absent", "remove_storage": True}}
    result = ansible.converge([remove]).result("absent")
    assert result["removed_volumes"] == [str(volume)]
    assert not volume.exists()


BAD_INPUTS = [
    ({"memory": "lots"}, "option memory: got 'lots'"),
    ({"vcpus": 4, "max_vcpus": 2}, "option vcpus"),
    ({"disks": [{"path": "/var/lib/libvirt/images/a.img", "dev": "vda"},
                {"path": "/var/lib/libvirt/images/b.img", "dev": "vda"}]}, "option disks[1].dev"),
    ({"interfaces": [{"network": "kvmfleet-no-such-net"}]}, "option interfaces[0].network: got 'kvmfleet-no-such-net'"),
    ({"disks": [{"pool": "kvmfleet-no-such-pool", "volume": "v"}]}, "option disks[0].pool"),
    ({"xml_edits": [{"xpath": "/domain/nosuchthing", "value": "1"}]}, "option xml_edits[0].xpath"),
    ({"xml_edits": [{"xpath": "/domain", "fragment": "<broken"}]}, "option xml_edits[0].fragment"),
    ({"disks": [{"volume": "kvmfleet-x", "pool": "POOL", "size": "1MiB"}]}, "shrinking a disk is refused"),
]


@pytest.mark.parametrize("change, message", BAD_INPUTS, ids=[m.split(":")[0] for _c, m in BAD_INPUTS])
def test_bad_input_fails_cleanly_and_changes_nothing(conn, prefix, ansible, image, lab, change, message):
    name = prefix + "bad"
    ansible.run([guest(name, image, lab, state="shutoff")])
    for disk in change.get("disks", []):
        if disk.get("pool") == "POOL":
            disk.update(pool=lab["pool"], volume=name + "-root.qcow2")  # exists at 64 MiB: a shrink
    before_xml = inactive_xml(conn, name)
    before_volumes = sorted(p.name for p in lab["pool_dir"].iterdir())
    task = guest(name, image, lab, state="shutoff")
    task["kvmfleet.libvirt.domain"].update(change)
    run = ansible.run([task], expect_rc=2)
    assert run.status(task["name"]) == "failed"
    msg = run.result(task["name"])["msg"]
    assert message in msg, msg
    assert "Traceback" not in run.output
    assert inactive_xml(conn, name) == before_xml
    assert sorted(p.name for p in lab["pool_dir"].iterdir()) == before_volumes
    if "no-such" in str(change):
        # Check mode cannot know whether an earlier task of the play would make the network or pool
        # (in check mode it made nothing): it predicts, and says what it assumed.
        check = ansible.run([task], check=True)
        assert "does not exist yet; assuming an earlier task" in check.output
    else:
        check = ansible.run([task], check=True, expect_rc=2)
        assert message in check.result(task["name"])["msg"]
    assert inactive_xml(conn, name) == before_xml


def test_malformed_xml_for_a_new_guest_defines_nothing(conn, prefix, ansible):
    name = prefix + "badxml"
    task = {"name": "bad", "kvmfleet.libvirt.domain": {"name": name, "xml": "<domain><name>x</name>"}}
    run = ansible.run([task], expect_rc=2)
    assert "option xml" in run.result("bad")["msg"]
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName(name)


def test_new_guest_that_cannot_start_leaves_nothing_behind(conn, prefix, ansible, image, lab):
    name = prefix + "nostart"
    task = guest(name, image, lab, boot={"kernel": "/nonexistent/vmlinuz", "cmdline": "console=ttyS0"})
    run = ansible.run([task], expect_rc=2)
    assert "could not start" in run.result(task["name"])["msg"]
    assert harness.domain_state(conn, name) == "absent"
    assert not (lab["pool_dir"] / (name + "-root.qcow2")).exists()


def test_uefi_secure_boot_and_tpm_seen_by_the_guest(conn, prefix, ansible, image, lab):
    name = prefix + "efi"
    secure = guest(name, image, lab, machine="q35", firmware="efi", secure_boot=True, tpm=True, rng=True)
    result = ansible.converge([secure]).result(secure["name"])
    assert result["created"] is True
    report = report_where(name, lambda r: r["platform"], "its platform", timeout=150)
    assert report["platform"] == {"firmware": "efi", "secure_boot": True, "tpm": True, "rng": "virtio_rng.0"}
    nvram = Path("/var/lib/libvirt/qemu/nvram/%s_VARS.fd" % name)
    assert nvram.exists()

    plain = guest(name, image, lab, machine="q35", firmware="efi", secure_boot=False, tpm=False, rng=True)
    result = ansible.converge([plain]).result(plain["name"])
    assert result["reboot_required"] is True
    assert {r.split(":")[0] for r in result["reasons"]} == {"secure_boot", "tpm"}

    # The old UEFI variable store keeps its enrolled keys: the restart re-creates it from the template.
    plain["kvmfleet.libvirt.domain"]["restart"] = "if_needed"
    actions = ansible.run([plain]).result(plain["name"])["actions"]
    assert "reset UEFI variables (NVRAM) from the firmware template" in actions
    report = report_where(name, lambda r: r["platform"] and not r["platform"]["tpm"], "the restart", timeout=150)
    assert report["platform"]["secure_boot"] is False

    ansible.converge([{"name": "absent", "kvmfleet.libvirt.domain": {"name": name, "state": "absent"}}])
    assert not nvram.exists(), "absent removes the UEFI NVRAM"


def test_secrets_never_leave_the_module(conn, prefix, ansible, image, lab, capsys):
    name = prefix + "sec"
    secret = "s" + prefix[-7:-1]  # VNC passwords are at most 8 characters
    task = guest(name, image, lab, state="present", autostart=True,
                 graphics=[{"type": "vnc", "listen": "127.0.0.1", "password": secret}],
                 xml_edits=[{"xpath": "/domain/clock/@offset", "value": "localtime"}])
    run = ansible.converge([task])
    assert secret not in run.output
    assert "********" in run.result(task["name"])["diff"]["after"]
    dom = conn.lookupByName(name)
    assert dom.autostart() == 1
    root = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE).encode())
    assert root.find("devices/graphics").get("passwd") == secret, "the password is set, only never shown"
    assert root.find("clock").get("offset") == "localtime"

    task["kvmfleet.libvirt.domain"]["graphics"][0]["password"] = "t" + prefix[-7:-1]
    changed = ansible.converge([task])
    assert "******** (changed)" in changed.result(task["name"])["diff"]["after"]
    everything = capsys.readouterr().out  # the output of all eight runs, check mode and --diff included
    assert everything.count("PLAY RECAP") == 8
    assert secret not in everything


def _iso_file(path, name):
    """The text of one file (by its Rock Ridge name) of an ISO image."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path="/" + name)
    iso.close()
    return out.getvalue().decode()


def test_a_guest_renamed_in_its_description_keeps_its_uuid(conn, prefix, ansible, lab):
    """With its UUID declared, a guest renamed in the description is the same guest, renamed in libvirt (it is shut
    off): same UUID, disks, MAC and cloud-init instance-id; no guest of the old name is left, and no second guest."""
    old, new = prefix + "uuid-old", prefix + "uuid-new"
    guest_uuid = str(uuid.uuid4())
    seed_volume = prefix + "uuid-cidata.iso"

    def task(name):
        return {"name": "guest", "register": "result", "kvmfleet.libvirt.domain": {
            "name": name, "uuid": guest_uuid.upper().replace("-", ""),  # any form libvirt takes
            "virt_type": "qemu", "memory": 128, "state": "shutoff",
            "disks": [{"pool": lab["pool"], "volume": prefix + "uuid-root.qcow2", "size": "16MiB"}],
            "interfaces": [{"network": lab["network"]}],
            "cloud_init": {"pool": lab["pool"], "volume": seed_volume, "meta_data": {"local-hostname": "uuid-test"}}}}

    created = ansible.converge([task(old)]).result("guest")
    assert created["created"] is True and created["uuid"] == guest_uuid
    assert conn.lookupByName(old).UUIDString() == guest_uuid
    meta_data = _iso_file(lab["pool_dir"] / seed_volume, "meta-data")
    assert "iid-" + guest_uuid in meta_data, "the seed's instance-id is made from the declared UUID"
    mac = created["interfaces"][0]["mac"]

    renamed = ansible.converge([task(new)]).result("guest")
    assert renamed["renamed_from"] == old
    assert renamed["actions"] == ["rename %s to %s" % (old, new)] and renamed["changes"] == []
    assert renamed["created"] is False and renamed["uuid"] == guest_uuid
    assert "<name>%s</name>" % old in renamed["diff"]["before"] and "<name>%s</name>" % new in renamed["diff"]["after"]

    # What libvirt has: the same UUID under the new name, nothing under the old one, no second guest.
    assert conn.lookupByUUIDString(guest_uuid).name() == new
    with pytest.raises(libvirt.libvirtError) as info:
        conn.lookupByName(old)
    assert info.value.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
    assert [d.name() for d in conn.listAllDomains(0) if d.name().startswith(prefix)] == [new]
    root = etree.fromstring(inactive_xml(conn, new).encode())
    assert root.find("devices/interface/mac").get("address") == mac
    assert [s.get("volume") for s in root.iterfind("devices/disk/source")] == [prefix + "uuid-root.qcow2", seed_volume]
    assert _iso_file(lab["pool_dir"] / seed_volume, "meta-data") == meta_data, "the seed was not rewritten"
