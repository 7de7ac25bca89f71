# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hypervisor's kernel settings over a tree of plain files that stands for / (sysfs, procfs, /etc)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host import tuning
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

INTEL = "processor\t: 0\nflags\t\t: fpu vme de pse msr vmx sse2\n"
NO_VIRT = "processor\t: 0\nflags\t\t: fpu vme de pse msr sse2 hypervisor\n"


def put(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture
def host(tmp_path):
    """A KVM host: Intel CPU, kvm and kvm_intel loaded (nested off), /dev/kvm, KSM off, one NUMA node."""
    root = str(tmp_path)
    put(root, "proc/cpuinfo", INTEL)
    put(root, "sys/module/kvm/uevent", "")
    put(root, "sys/module/kvm_intel/parameters/nested", "N\n")
    put(root, "dev/kvm", "")
    for key, value in (("run", 0), ("pages_to_scan", 100), ("sleep_millisecs", 20), ("merge_across_nodes", 1),
                       ("pages_shared", 0), ("pages_sharing", 0), ("full_scans", 0)):
        put(root, tuning.KSM + key, "%d\n" % value)
    put(root, tuning.NR_2M, "0\n")
    put(root, tuning.NODE_2M % 0, "0\n")
    put(root, tuning.NR_1G, "0\n")
    return tuning.Root(root)


def params(**extra):
    return dict({"require_kvm": True, "nested": None, "ksm": None, "hugepages": None}, **extra)


def tune(host, wanted, check):
    """The host_tuning module's run over the test's tree of files."""
    return tuning.TuningRunner(None, wanted, check, root=host).run()


def test_kvm_usable_and_every_reason_when_it_is_not(host):
    assert tuning.kvm_usability(host) == {"usable": True, "vendor": "intel", "reasons": []}
    put(host.path, "proc/cpuinfo", NO_VIRT)
    os.unlink(host.full("dev/kvm"))
    status = tuning.kvm_usability(host)
    assert not status["usable"] and len(status["reasons"]) == 2
    assert "neither vmx (Intel VT-x) nor svm (AMD-V)" in status["reasons"][0]
    assert status["reasons"][1] == "/dev/kvm does not exist"


def test_kvm_missing_fails_before_anything_is_written_unless_emulation_is_allowed(host):
    put(host.path, "proc/cpuinfo", NO_VIRT)
    wanted = params(ksm={"enabled": True})
    with pytest.raises(SpecError) as info:
        tune(host, wanted, check=False)
    assert info.value.option == "require_kvm" and "KVM is not usable here: the CPU reports neither vmx" in str(info.value)
    assert host.value(tuning.KSM + "run") == "0" and not host.exists(tuning.FILES["ksm"])
    result = tune(host, dict(wanted, require_kvm=False), check=False)
    assert result["changed"] and host.value(tuning.KSM + "run") == "1"


def test_ksm_applied_now_kept_at_boot_and_idempotent(host):
    wanted = params(ksm={"enabled": True, "pages_to_scan": 200, "sleep_millisecs": 50, "merge_across_nodes": None})
    predicted = tune(host, wanted, check=True)
    assert predicted["changed"] and host.value(tuning.KSM + "run") == "0", "check mode wrote"
    done = tune(host, wanted, check=False)
    assert done["actions"] == predicted["actions"]
    assert [host.value(tuning.KSM + k) for k in ("run", "pages_to_scan", "sleep_millisecs")] == ["1", "200", "50"]
    boot = host.read(tuning.FILES["ksm"])
    assert boot.startswith(tuning.HEADER)
    assert "w /sys/kernel/mm/ksm/pages_to_scan - - - - 200\n" in boot and boot.rstrip().endswith("run - - - - 1")
    assert done["ksm"]["enabled"] is True
    again = tune(host, wanted, check=False)
    assert not again["changed"] and again["actions"] == []


def test_ksm_reports_the_memory_it_saves(host):
    put(host.path, tuning.KSM + "pages_sharing", "5400\n")
    put(host.path, tuning.KSM + "pages_shared", "1200\n")
    facts = tuning.ksm_facts(host, page_size=4096)
    assert facts["saved_bytes"] == 5400 * 4096 and facts["pages_shared"] == 1200


def test_merge_across_nodes_unmerges_first_when_pages_are_shared(host):
    put(host.path, tuning.KSM + "run", "1\n")
    put(host.path, tuning.KSM + "pages_shared", "10\n")
    for ksm in ({"merge_across_nodes": False, "enabled": True}, {"merge_across_nodes": False}):
        writes = tuning.plan_ksm(host, ksm)
        knobs = [(w.rel.rsplit("/", 1)[1], w.after.strip()) for w in writes if not w.persistent]
        assert knobs == [("run", "2"), ("merge_across_nodes", "0"), ("run", "1")]


def test_hugepages_now_and_at_boot_and_a_short_reservation_is_reported(host):
    wanted = params(hugepages={"count": 64, "per_node": None, "count_1g": None})
    result = tune(host, wanted, check=False)
    assert host.value(tuning.NR_2M) == "64"
    assert host.read(tuning.FILES["hugepages"]) == tuning.HEADER + "vm.nr_hugepages = 64\n"
    assert result["hugepages"]["reserved_2m"] == 64 and result["warnings"] == []
    assert not tune(host, wanted, check=False)["changed"]
    # the kernel gives fewer than asked: said, with the number it got
    put(host.path, tuning.NR_2M, "40\n")
    plan = tuning.plan_tuning(host, dict(wanted, hugepages={"count": 64}))[0]
    assert [w.action for w in plan] == ["hugepages (2M): 40 -> 64"]
    facts = tuning.hugepage_facts(host, {"count": 64})
    assert facts["short"] == ["hugepages.count: asked for 64 2M pages, the kernel reserved 40 (memory is short or "
                              "fragmented; a reservation at boot is more reliable)"]


def test_hugepages_per_node_and_1g_pages_need_a_reboot(host):
    result = tune(host, params(hugepages={"per_node": {"0": 8}, "count_1g": 2}), check=False)
    assert host.value(tuning.NODE_2M % 0) == "8"
    assert "w /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages - - - - 8" in \
        host.read(tuning.FILES["hugepages_nodes"])
    assert "hugepagesz=1G hugepages=2" in host.read(tuning.FILES["hugepages_1g"])
    assert result["reboot_required"] and "1G hugepages: 2 wanted, 0 reserved" in result["reasons"][0]
    with pytest.raises(SpecError, match="no NUMA node 3"):
        tune(host, params(hugepages={"per_node": {"3": 8}}), check=True)
    with pytest.raises(SpecError, match="either count"):
        tune(host, params(hugepages={"count": 8, "per_node": {"0": 8}}), check=True)
    with pytest.raises(SpecError) as info:
        tune(host, params(hugepages={"count": -1}), check=True)
    assert info.value.option == "hugepages.count"


def test_nested_is_written_and_a_loaded_module_is_reported_not_reloaded(host):
    result = tune(host, params(nested=True), check=False)
    assert host.read(tuning.FILES["nested"]) == tuning.HEADER + "options kvm_intel nested=1\n"
    assert result["nested"] == {"enabled": False, "wanted": True, "reload_required": True, "modules": ["kvm_intel"]}
    assert "takes the new value when reloaded" in result["reasons"][0]
    assert host.value("sys/module/kvm_intel/parameters/nested") == "N", "the module was changed behind the user's back"
    put(host.path, "sys/module/kvm_intel/parameters/nested", "Y\n")
    again = tune(host, params(nested=True), check=False)
    assert not again["changed"] and not again["nested"]["reload_required"]
