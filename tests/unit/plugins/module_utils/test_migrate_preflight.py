# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration's pre-flight, as a pure function of the guest's XML and plain facts about the hosts."""

from __future__ import annotations

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.apply import check_params
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.preflight import guest_needs, preflight
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

GUEST = """<domain type='kvm'><name>web</name><memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <cpu mode='custom'><model>Skylake-Client</model></cpu>
  <devices>
    <disk type='volume' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
      <source pool='images' volume='web.qcow2'/><target dev='vda'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='writeback'/>
      <source file='/srv/data/web-data.img'/><target dev='vdb'/></disk>
    <disk type='file' device='cdrom'><source file='/srv/iso/seed.iso'/><target dev='sda'/><readonly/></disk>
    <interface type='network'><source network='lan'/></interface>
    <interface type='network'><source network='storage'/></interface>
  </devices></domain>"""
SOURCE = {"uuid": "11111111-1111-1111-1111-111111111111", "name": "hv1"}


def dest(**extra):
    facts = {"uuid": "22222222-2222-2222-2222-222222222222", "name": "hv2",
             "networks": {"lan": True, "storage": True}, "pools": {"images": True}, "free_mib": 4096,
             "paths": {"images/web.qcow2": True, "/srv/data/web-data.img": True, "/srv/iso/seed.iso": True},
             "cpu_compatible": True}
    facts.update(extra)
    return facts


def test_what_a_guest_needs():
    needs = guest_needs(GUEST)
    assert needs["memory_mib"] == 1024 and needs["networks"] == ["lan", "storage"]
    assert [(d["dev"], d["cache"], d["readonly"]) for d in needs["disks"]] == [
        ("vda", "none", False), ("vdb", "writeback", False), ("sda", None, True)]
    assert needs["cpu_mode"] == "custom" and needs["has_cpu_model"]


def messages(problems):
    return [p["message"] for p in problems]


def test_every_problem_is_named_at_once():
    facts = dest(uuid=SOURCE["uuid"], networks={"lan": False}, pools={}, free_mib=512, cpu_compatible=False,
                 paths={})
    problems, _warnings = preflight(guest_needs(GUEST), True, SOURCE, facts, {})
    assert [p["kind"] for p in problems] == ["same_host", "network_inactive", "network_missing", "pool_missing",
                                             "disk_not_shared", "disk_not_shared", "memory_short", "cpu_incompatible"]
    assert messages(problems) == [
        "the destination is the source: both report host UUID 11111111-1111-1111-1111-111111111111",
        "network lan: not active on the destination",
        "network storage: the destination has no network of that name",
        "disk vda (images/web.qcow2): the destination has no storage pool images",
        "disk vdb (/srv/data/web-data.img): not on the destination (no shared storage there); set copy_storage: all "
        "to copy it",
        "disk sda (/srv/iso/seed.iso): not on the destination (no shared storage there); set copy_storage: all to copy it",
        "memory: the destination has 512 MiB free, the guest needs 1024 MiB",
        "cpu: the destination's CPU cannot run the guest's CPU model (libvirt's CPU comparison)",
    ]


def test_an_unsafe_cache_mode_is_named_unless_the_user_says_unsafe():
    problems, _warnings = preflight(guest_needs(GUEST), True, SOURCE, dest(), {})
    assert messages(problems) == ["disk vdb (/srv/data/web-data.img): cache mode writeback makes libvirt call a live "
                                  "migration unsafe (guest data in the source's page cache); use cache: none, or set "
                                  "unsafe: true"]
    assert preflight(guest_needs(GUEST), True, SOURCE, dest(), {"unsafe": True})[0] == []
    assert preflight(guest_needs(GUEST), True, SOURCE, dest(paths={}), {"copy_storage": "all"})[0] == []
    # a shut-off guest moves offline: no memory, CPU or cache question
    assert preflight(guest_needs(GUEST), False, SOURCE, dest(free_mib=0, cpu_compatible=False), {})[0] == []


def test_host_passthrough_is_a_warning():
    xml = GUEST.replace("<cpu mode='custom'><model>Skylake-Client</model></cpu>", "<cpu mode='host-passthrough'/>")
    problems, warnings = preflight(guest_needs(xml), True, SOURCE, dest(), {"unsafe": True})
    assert problems == [] and "host-passthrough" in warnings[0]


@pytest.mark.parametrize("params, option", [
    ({"uri": "qemu:///system", "destination_uri": "qemu:///system"}, "destination_uri"),
    ({"uri": "a", "destination_uri": "b", "timeout_action": "postcopy", "postcopy": False}, "timeout_action"),
    ({"uri": "a", "destination_uri": "b", "bandwidth": 0}, "bandwidth"),
])
def test_bad_parameters_name_the_option(params, option):
    with pytest.raises(SpecError) as info:
        check_params(params)
    assert info.value.option == option


ARM_GUEST = """<domain type='qemu'><name>arm</name><memory unit='KiB'>262144</memory>
  <os><type arch='aarch64' machine='virt-7.2'>hvm</type></os><devices/></domain>"""


def test_a_destination_without_the_guests_architecture_or_kvm_is_named():
    """An aarch64 guest to a hypervisor without qemu-system-aarch64, a KVM guest to one that only emulates: named
    before anything moves (libvirt would fail at the destination: no emulator)."""
    needs = guest_needs(ARM_GUEST)
    assert (needs["arch"], needs["virt_type"]) == ("aarch64", "qemu")
    problems, _warnings = preflight(needs, True, SOURCE, dest(architectures={"x86_64": ["kvm", "qemu"]}), {})
    assert [p["kind"] for p in problems] == ["arch_missing"]
    assert messages(problems) == ["arch: the destination runs no aarch64 guests (no QEMU emulator for them; the "
                                  "hypervisor role installs it with hypervisor_architectures: [aarch64]); it runs x86_64"]
    both = {"x86_64": ["kvm", "qemu"], "aarch64": ["qemu"]}
    assert preflight(needs, True, SOURCE, dest(architectures=both), {})[0] == []
    kvm_guest = ARM_GUEST.replace("type='qemu'", "type='kvm'")
    problems, _warnings = preflight(guest_needs(kvm_guest), True, SOURCE, dest(architectures=both), {})
    assert [p["kind"] for p in problems] == ["kvm_missing"] and "offers no KVM for aarch64 (only qemu)" in problems[0]["message"]
    # not known (an older fact set): no problem made up
    assert preflight(needs, True, SOURCE, dest(), {})[0] == []
