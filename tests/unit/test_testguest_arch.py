"""tools/testguest.py's parts for guests of other architectures, without building or booting one."""

from __future__ import annotations

import pytest

import testguest


def test_the_report_says_the_guests_architecture():
    log = "\n".join(["junk", "KVMFLEET-REPORT-BEGIN seq=1", "arch machine=s390x", "mem total_kib=200000",
                     "cpus online=0", "KVMFLEET-REPORT-END seq=1"])
    report = testguest.last_report(log)
    assert report["machine"] == "s390x" and report["mem_total_kib"] == 200000 and report["cpus_online"] == 1


def moddir(tmp_path, dep, builtin=""):
    (tmp_path / "modules.dep").write_text(dep)
    (tmp_path / "modules.builtin").write_text(builtin)
    return tmp_path


def test_another_architectures_kernel_may_lack_a_module_or_have_it_built_in(tmp_path):
    path = moddir(tmp_path, "kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko\n"
                            "kernel/net/core/failover.ko:\n", "kernel/drivers/block/virtio_blk.ko\n")
    wanted = ("virtio_ccw", "virtio_blk", "virtio_net")
    assert testguest._resolve_modules(path, wanted, optional=True) == [
        "kernel/net/core/failover.ko", "kernel/drivers/net/virtio_net.ko"]
    with pytest.raises(RuntimeError, match="virtio_ccw"):  # the host's own list stays strict
        testguest._resolve_modules(path, wanted)


@pytest.mark.parametrize("arch, console, machine", [
    ("aarch64", "ttyAMA0", "virt"), ("ppc64le", "hvc0", "pseries"), ("s390x", "ttysclp0", "s390-ccw-virtio")])
def test_each_architecture_has_its_console_machine_and_debian_names(arch, console, machine):
    spec = testguest.ARCHES[arch]
    assert (spec["console"], spec["machine"]) == (console, machine)
    assert spec["deb"] in ("arm64", "ppc64el", "s390x") and "virtio_blk" in spec["modules"]


def test_the_kernel_package_behind_the_metapackage(monkeypatch):
    out = ("linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-57-arm64:arm64\n"
           "  Depends: linux-image-6.1.0-57-arm64-unsigned:arm64\n")
    monkeypatch.setattr(testguest, "_run", lambda *cmd, **kw: out)
    assert testguest._kernel_package("arm64", "arm64") == "linux-image-6.1.0-57-arm64"


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "ppc64le", "s390x"])
def test_domain_xml_is_the_architectures_and_valid(arch):
    """A guest defined from domain_xml() (tests that skip the modules) is of the image's architecture and machine, with
    no x86 features elsewhere, a 64-bit CPU on aarch64 and no USB controller on s390x, and libvirt's schema takes it."""
    from lxml import etree

    spec = testguest.ARCHES[arch]
    image = {"kernel": "/k", "initrd": "/i", "cmdline": "console=%s" % spec["console"], "arch": arch,
             "machine": spec["machine"]}
    doc = etree.fromstring(testguest.domain_xml("g", image, disks=[{"path": "/d.img", "target": "vda"}]).encode())
    assert etree.RelaxNG(file="/usr/share/libvirt/schemas/domain.rng").validate(doc)
    os_type = doc.find("os/type")
    assert (os_type.get("arch"), os_type.get("machine")) == (arch, spec["machine"])
    assert (doc.find("features/acpi") is not None) == (arch == "x86_64")
    assert (doc.findtext("cpu/model") == "cortex-a57") == (arch == "aarch64")
    assert (doc.find("devices/controller[@type='usb']") is None) == (arch == "s390x")
