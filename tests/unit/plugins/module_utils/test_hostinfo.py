from __future__ import annotations

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host import info as hostinfo
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import version_string


def test_parse_capabilities_cpu_and_numa(fixture_text):
    caps = hostinfo.parse_capabilities(fixture_text("capabilities-x86_64-amd.xml"))
    assert caps["cpu"]["arch"] == "x86_64"
    assert caps["cpu"]["vendor"] == "AMD"
    assert (caps["cpu"]["sockets"], caps["cpu"]["cores"], caps["cpu"]["threads"]) == (1, 2, 1)
    assert caps["cpu"]["features"] == sorted(caps["cpu"]["features"]) and len(caps["cpu"]["features"]) == 5
    assert caps["numa_cells"] == [{"id": 0, "memory_mib": 5728472 // 1024, "cpus": [0, 1],
                                   "hugepages": {"2048": 0, "1048576": 0}}]
    assert caps["hugepages"] == {"2048": 0, "1048576": 0}
    assert caps["iommu"] is False
    assert caps["guest_domain_types"]["x86_64"] == ["kvm", "qemu"]


def test_the_architectures_the_hypervisor_runs_and_how(fixture_text):
    """This machine's capabilities with QEMU for four architectures: KVM for its own, emulation for the others."""
    arches = hostinfo.parse_capabilities(fixture_text("capabilities-arches.xml"))["architectures"]
    assert sorted(arches) == ["aarch64", "ppc64le", "s390x", "x86_64"]
    assert arches["x86_64"]["acceleration"] == "kvm" and arches["x86_64"]["domain_types"] == ["kvm", "qemu"]
    assert arches["ppc64le"] == dict(arches["ppc64le"], acceleration="emulation", domain_types=["qemu"],
                                     emulator="/usr/bin/qemu-system-ppc64le", wordsize=64)
    assert arches["ppc64le"]["machine_aliases"]["pseries"] == "pseries-7.2"
    assert {"pseries", "pseries-7.2", "powernv9"} <= set(arches["ppc64le"]["machines"])
    assert hostinfo.parse_capabilities(fixture_text("capabilities-x86_64-amd.xml"))["architectures"]["x86_64"][
        "acceleration"] == "kvm"


def test_hugepages_are_summed_over_cells():
    xml = """<capabilities><host><cpu><arch>x86_64</arch></cpu><topology><cells num='2'>
      <cell id='0'><memory unit='KiB'>2097152</memory><pages unit='KiB' size='4'>1</pages>
        <pages unit='KiB' size='2048'>100</pages><cpus num='1'><cpu id='0'/></cpus></cell>
      <cell id='1'><memory unit='KiB'>2097152</memory><pages unit='KiB' size='2048'>28</pages>
        <pages unit='KiB' size='1048576'>1</pages><cpus num='1'><cpu id='1'/></cpus></cell>
    </cells></topology><iommu support='yes'/></host></capabilities>"""
    caps = hostinfo.parse_capabilities(xml)
    assert caps["hugepages"] == {"2048": 128, "1048576": 1}
    assert [c["memory_mib"] for c in caps["numa_cells"]] == [2048, 2048]
    assert caps["iommu"] is True


@pytest.mark.parametrize("types, error, usable, reason_part", [
    (["kvm", "qemu"], None, True, None),
    (["qemu"], None, False, "/dev/kvm"),
    ([], None, False, "no QEMU emulator"),
    (["kvm", "qemu"], "KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host", False,
     "KVM is not supported"),
])
def test_kvm_status(types, error, usable, reason_part):
    status = hostinfo.kvm_status({"guest_domain_types": {"x86_64": types}}, "x86_64", error)
    assert status["usable"] is usable
    if reason_part is None:
        assert status["reason"] is None
    else:
        assert reason_part in status["reason"]


def test_summarize_domain_states():
    assert hostinfo.summarize_domain_states([1, 1, 5, 3, 99]) == {
        "total": 5, "running": 2, "shutoff": 1, "paused": 1, "unknown": 1}
    assert hostinfo.summarize_domain_states([]) == {"total": 0}


def test_version_string():
    assert version_string(9000000) == "9.0.0"
    assert version_string(7002022) == "7.2.22"
