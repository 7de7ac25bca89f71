"""The guest model over real libvirt XML: a virt-install guest, a virt-manager UEFI guest and a guest
with every device kind the spec covers (each defined in libvirt 9 and dumped as libvirt wrote it).

These tests fail for the deliberate breakages a review found the older tests let through: every
device operation treated as live, the NVRAM-reset mark dropped, the schema check always passing, a
shrink let through (test_domain_runner.py).
"""

from __future__ import annotations

import copy

import pytest
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import normalize, readback
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import plan as planner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import split_live
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import HostContext
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import nvram_reset_pending
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.storage import plan_disk_volume
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import SchemaError, validate_schema

FIXTURES = ("domain-virt-install.xml", "domain-virt-manager-uefi.xml", "domain-all-devices.xml")
SCHEMA = etree.RelaxNG(file="/usr/share/libvirt/schemas/domain.rng")
HOST = HostContext({"pc": "pc-i440fx-7.2", "q35": "pc-q35-7.2"})


def plan(xml, **params):
    params = dict({"name": etree.fromstring(xml.encode()).findtext("name")}, **params)
    for disk in params.get("disks") or []:
        disk.setdefault("device", "disk")
    for nic in params.get("interfaces") or []:
        nic.setdefault("model", "virtio")
        nic.setdefault("direct_mode", "bridge")
    spec = normalize.normalize_guest(params, HOST)
    frozen = copy.deepcopy(spec)
    result = planner.plan_domain(xml, spec, HOST)
    assert spec == frozen, "plan_domain changed the spec"
    return result


def managed(fixture_text, name):
    return plan(fixture_text(name)).after


def read_back(xml):
    spec = readback.read_spec(xml)
    spec.pop("managed")
    spec.pop("name")
    return spec


@pytest.mark.parametrize("name", FIXTURES)
def test_fixtures_are_valid_and_an_empty_spec_only_marks_them(fixture_text, name):
    xml = fixture_text(name)
    assert SCHEMA.validate(etree.fromstring(xml.encode())), SCHEMA.error_log.last_error
    first = plan(xml)
    assert [c.what for c in first.changes] == ["metadata.managed"]
    assert not plan(first.after).changed


@pytest.mark.parametrize("name", FIXTURES)
def test_read_back_spec_changes_nothing_and_keeps_every_address(fixture_text, name):
    xml = managed(fixture_text, name)
    again = plan(xml, **read_back(xml))
    assert not again.changed, [c.describe() for c in again.changes]
    before, after = etree.fromstring(xml.encode()), etree.fromstring(again.after.encode())
    assert [etree.tostring(a) for a in before.iter("address")] == [etree.tostring(a) for a in after.iter("address")]
    assert before.findtext("uuid") == after.findtext("uuid")


def test_virt_install_guest_reads_back_as_written(fixture_text):
    spec = read_back(managed(fixture_text, "domain-virt-install.xml"))
    assert spec["memory"] == "2GiB" and spec["vcpus"] == 2 and spec["machine"].startswith("pc-q35")
    assert spec["disks"] == [{"dev": "vda", "device": "disk", "bus": "virtio", "format": "qcow2", "discard": "unmap",
                              "path": "/var/lib/libvirt/images/fixture-vi.qcow2"}]
    assert spec["interfaces"][0]["network"] == "default" and spec["interfaces"][0]["mac"].startswith("52:54:00:")
    assert spec["graphics"] == [{"type": "vnc", "port": -1, "autoport": True}]
    assert spec["rng"] is True and spec["firmware"] == "bios"


def test_all_device_kinds_read_back(fixture_text):
    spec = read_back(managed(fixture_text, "domain-all-devices.xml"))
    assert [d["dev"] for d in spec["disks"]] == ["vda", "vdb", "vdc", "sdb", "sda"]  # libvirt's order
    assert spec["disks"][2]["network"] == {"protocol": "rbd", "name": "rbdpool/alldev", "hosts": [
        {"name": "mon1.example", "port": 6789}, {"name": "mon2.example", "port": 6789}]}
    assert [n.get("network") or n.get("bridge") or n.get("direct") for n in spec["interfaces"]] == ["default", "br0", "eth1"]
    assert spec["interfaces"][1]["vlan"] == 42 and spec["interfaces"][0]["mtu"] == 9000
    assert [g["type"] for g in spec["graphics"]] == ["vnc", "spice"]
    assert all("password" not in g for g in spec["graphics"]), "a secret is never read back"
    assert spec["hostdevs"] == [{"pci": "0000:03:00.0", "managed": True}, {"usb": "1d6b:0002", "managed": False}]
    assert spec["cpu"]["numa"] == [{"cpus": "0-1", "memory": "512MiB"}, {"cpus": "2-3", "memory": "512MiB"}]
    assert spec["cpu"]["features"] == [{"name": "svm", "policy": "disable"}, "x2apic"]  # a set, sorted
    assert spec["current_memory"] == "768MiB" and spec["max_vcpus"] == 4
    assert spec["tpm"] and spec["guest_agent"] and spec["hugepages"]
    assert spec["watchdog"] == {"model": "i6300esb", "action": "reset"}


# ---- which device changes a running guest takes live -------------------------------------------------------

def _ops(result):
    return {(op.op, op.label) for op in result.device_ops}


def test_only_link_state_and_media_changes_are_live(fixture_text):
    """A changed NIC model, disk bus or disk image is not a live update: the running guest keeps the old one
    until a restart. Only link state and cdrom/floppy media are (plus attach and detach)."""
    xml = managed(fixture_text, "domain-all-devices.xml")
    spec = read_back(xml)
    nics = copy.deepcopy(spec["interfaces"])
    nics[0]["link_state"] = "down"       # live: virDomainUpdateDeviceFlags
    nics[1]["model"] = "virtio"          # next boot
    disks = copy.deepcopy(spec["disks"])
    disks[0]["bus"] = "sata"             # next boot (and a new target name would be a new disk)
    disks[4]["path"] = "/var/lib/libvirt/images/new.iso"  # cdrom media: live
    disks[1]["cache"] = "writeback"      # next boot
    result = plan(xml, interfaces=nics, disks=disks)
    assert _ops(result) == {("update", "interface 52:54:00:a1:00:01"), ("modify", "interface 52:54:00:a1:00:02"),
                            ("modify", "disk vda"), ("update", "disk sda"), ("modify", "disk vdb")}
    live, later = split_live(result, running=True)
    assert sorted(item.live.label(item) for item in live) == ["update disk sda", "update interface 52:54:00:a1:00:01"]
    assert sorted(what for what, _reason in later) == ["disk vda", "disk vdb", "interface 52:54:00:a1:00:02"]
    assert any("model: e1000 -> virtio" in reason for _what, reason in later)
    # a guest that is not running takes everything at its next start: nothing is live
    assert split_live(result, running=False) == ([], [])


def test_live_fields_show_as_the_user_wrote_them(fixture_text):
    xml = managed(fixture_text, "domain-all-devices.xml")
    result = plan(xml, memory="2GiB", current_memory="1536MiB", vcpus=3, title="renamed")
    live, later = split_live(result, running=True)
    assert sorted(item.live.label(item) for item in live) == ["current_memory: 1536MiB", "title", "vcpus: 3"]
    assert [reason for _what, reason in later] == ["memory: 1GiB -> 2GiB"]


def test_more_vcpus_than_the_running_maximum_wait_for_the_next_boot(fixture_text):
    """A running guest's vCPU maximum (4 here) is fixed until it boots again: check mode must not promise live
    what libvirt refuses live (setVcpusFlags over the maximum)."""
    xml = managed(fixture_text, "domain-all-devices.xml")
    live, later = split_live(plan(xml, vcpus=4, max_vcpus=6), running=True)
    assert [item.live.label(item) for item in live] == ["vcpus: 4"], "up to the running maximum: live"
    assert [what for what, _reason in later] == ["max_vcpus"]
    live, later = split_live(plan(xml, vcpus=6, max_vcpus=6), running=True)
    assert live == []
    assert sorted(what for what, _reason in later) == ["max_vcpus", "vcpus"]
    assert any("more than the running guest's maximum of 4 vCPUs" in reason for _what, reason in later)


# ---- the NVRAM reset mark ------------------------------------------------------------------------------------

def test_a_firmware_change_marks_the_nvram_for_a_reset(fixture_text):
    uefi = managed(fixture_text, "domain-virt-manager-uefi.xml")
    assert not nvram_reset_pending(etree.fromstring(uefi.encode()))
    to_bios = plan(uefi, firmware="bios")
    assert nvram_reset_pending(to_bios.root), "a firmware change must re-create the UEFI variable store"
    secure = plan(uefi, secure_boot=True)
    assert nvram_reset_pending(secure.root)
    assert not nvram_reset_pending(plan(uefi, memory="4GiB").root), "other changes leave the variable store"
    # a new guest has no old variable store to reset
    fresh = planner.plan_domain(None, normalize.normalize_guest({"name": "new", "firmware": "efi"}, HOST), HOST)
    assert not nvram_reset_pending(fresh.root)


# ---- the schema check ------------------------------------------------------------------------------------------

def test_the_schema_check_refuses_a_document_libvirt_would_refuse(fixture_text):
    xml = managed(fixture_text, "domain-all-devices.xml")
    validate_schema(xml, "domain.rng", "domain")  # valid
    broken = plan(xml, xml_edits=[{"xpath": "/domain/devices", "fragment": "<disk type='file'/>"}])
    with pytest.raises(SchemaError, match="domain.rng"):
        validate_schema(broken.after, "domain.rng", "domain")


# ---- disk volumes: the shrink refusal, as a pure plan ------------------------------------------------------------

def _facts(capacity, fmt="qcow2"):
    pool = {"name": "images", "obj": None, "active": True, "kind": "dir", "path": "/images"}
    volume = {"name": "v.qcow2", "path": "/images/v.qcow2", "capacity": capacity, "format": fmt, "backing": None,
              "obj": object(), "owner": None, "group": None, "mode": None, "type": "file", "backing_format": None}
    return {"kind": "volume", "path": None, "name": "v.qcow2", "pool": pool, "volume": volume, "base": None}


def _disk(**extra):
    disk = normalize.normalize_guest({"name": "g", "disks": [dict({"pool": "images", "volume": "v.qcow2",
                                                                   "device": "disk"}, **extra)]}, HOST)["disks"][0]
    return dict(disk, _index=0)


def test_a_disk_smaller_than_its_volume_is_refused_never_shrunk():
    with pytest.raises(SpecError) as info:
        plan_disk_volume(_disk(size="16MiB"), _facts(64 * 2 ** 20), check=False)
    assert info.value.option == "disks[0].size" and "shrinking a disk is refused" in str(info.value)
    task, fmt = plan_disk_volume(_disk(size="128MiB"), _facts(64 * 2 ** 20), check=False)
    assert task.size == 128 * 2 ** 20 and task.describe() == "grow volume images/v.qcow2 to 128MiB" and fmt == "qcow2"
    assert plan_disk_volume(_disk(size="64MiB"), _facts(64 * 2 ** 20), check=False) == (None, "qcow2")


def test_a_disk_format_that_is_not_the_volume_s_is_refused():
    with pytest.raises(SpecError) as info:
        plan_disk_volume(_disk(format="raw"), _facts(64 * 2 ** 20, "qcow2"), check=False)
    assert info.value.option == "disks[0].format"


def test_a_missing_volume_is_created_with_its_format():
    facts = dict(_facts(0), volume=None)
    task, fmt = plan_disk_volume(_disk(size="1GiB"), facts, check=False)
    assert (task.describe(), fmt) == ("create volume images/v.qcow2 (1GiB, qcow2)", "qcow2")
    with pytest.raises(SpecError) as info:
        plan_disk_volume(_disk(), facts, check=False)
    assert info.value.option == "disks[0].volume" and "give size" in str(info.value)
