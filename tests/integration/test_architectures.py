"""Guests of other architectures on this x86_64 machine, under QEMU's software emulation (TCG): an aarch64 ``virt``,
a ppc64le ``pseries`` and an s390x ``s390-ccw-virtio`` guest, each Debian's kernel for that architecture with a
busybox for it (tools/testguest.py --arch), declared with the ``domain`` module as a user would (arch, a machine
alias, direct kernel boot) and booted side by side; the aarch64 one through UEFI (AAVMF), the s390x one with a
cloud-init seed (on SCSI there); the aarch64 one is a VNC desktop too (virtio-gpu, the display agent, USB tablet and
keyboard) and takes a new display password live. Each reports on its console what it sees: ``uname -m``, its memory, CPUs, disk and
NIC, its firmware, the seed it read.
"""

from __future__ import annotations

import threading
import time

import libvirt
import pytest
from lxml import etree

import harness
import testguest
from harness import inactive_xml, report_where, serial_log

pytestmark = pytest.mark.slow

ARCHES = ("aarch64", "ppc64le", "s390x")
MEMORY_MIB = 256


@pytest.fixture(scope="module")
def images():
    return {arch: testguest.build(arch=arch) for arch in ARCHES}


def arch_guest(name, image, lab, nic):
    return {"name": "guest " + name, "kvmfleet.libvirt.domain": {
        "name": name,
        "arch": image["arch"],
        "machine": image["machine"],  # an alias: libvirt stores the arch's canonical machine (virt-7.2, ...)
        "virt_type": "qemu",
        "memory": MEMORY_MIB,
        "vcpus": 1,
        "boot": {"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": image["cmdline"]},
        "serials": [{"type": "pty", "log": str(serial_log(name))}],
        "disks": [{"pool": lab["pool"], "volume": name + "-root.qcow2", "size": "64MiB"}],
        "interfaces": [nic],
        "state": "running",
        "shutdown_timeout": 5,
    }}


def first_console_line(name):
    path = serial_log(name)
    return path.exists() and path.read_text(errors="replace").strip() != ""


def init_ran(name):
    path = serial_log(name)
    return path.exists() and testguest.booted(path.read_text(errors="replace"))


class BootClock(threading.Thread):
    """Watches the guests from the side: when each starts (libvirt says active) and when its console prints its first
    line, so the boot time is measured while the runs go on."""

    def __init__(self, names):
        super().__init__(daemon=True)
        self.names, self.started, self.first_line, self.init, self.stop = names, {}, {}, {}, threading.Event()

    def run(self):
        conn = harness.connect()
        try:
            while not self.stop.is_set() and len(self.init) < len(self.names):
                now = time.monotonic()
                for name in self.names:
                    if name not in self.started:
                        try:
                            if conn.lookupByName(name).isActive():
                                self.started[name] = now
                        except libvirt.libvirtError:
                            pass
                        continue
                    if name not in self.first_line and first_console_line(name):
                        self.first_line[name] = now
                    if name not in self.init and init_ran(name):
                        self.init[name] = now
                time.sleep(0.2)
        finally:
            conn.close()

    def seconds(self, name, to="first_line"):
        return round(getattr(self, to)[name] - self.started[name], 1)


def test_three_architectures_boot_side_by_side_and_report(conn, prefix, ansible, images, lab):
    names = {arch: prefix + arch.replace("_", "") for arch in ARCHES}
    # the s390x guest has the user-mode NIC (QEMU's own network stack, no bridge on the host)
    nics = {"aarch64": {"network": lab["network"]}, "ppc64le": {"network": lab["network"]}, "s390x": {"user": True}}
    tasks = [arch_guest(names[arch], images[arch], lab, nics[arch]) for arch in ARCHES]
    # the aarch64 guest boots through UEFI (Debian's AAVMF, qemu-efi-aarch64, libvirt's firmware autoselection); the
    # s390x one reads a cloud-init seed, which goes on SCSI there (s390x has no SATA or IDE)
    tasks[0]["kvmfleet.libvirt.domain"]["firmware"] = "efi"
    # and declares no machine: it gets virt (libvirt alone would define it on integratorcp, a 32-bit ARM926 board)
    del tasks[0]["kvmfleet.libvirt.domain"]["machine"]
    tasks[2]["kvmfleet.libvirt.domain"]["cloud_init"] = {"pool": lab["pool"], "meta_data": {"local-hostname": "zguest"}}
    # the aarch64 guest is a VNC desktop too: virtio-gpu (aarch64 virt has no VGA), the QEMU display agent, a USB
    # tablet and keyboard (no PS/2 there), all from what its domain capabilities offer
    password = "a" + prefix[-7:-1]
    desktop = {"graphics": [{"type": "vnc", "listen": "127.0.0.1", "password": password}], "video": "virtio",
               "qemu_vdagent": True, "inputs": [{"type": "tablet", "bus": "usb"}, {"type": "keyboard", "bus": "usb"}]}
    tasks[0]["kvmfleet.libvirt.domain"].update(desktop)
    clock = BootClock(list(names.values()))
    clock.start()
    started = time.monotonic()
    try:
        # check mode, the real run (which starts all three: they boot side by side while the runs go on), a second
        # run changes nothing, check mode after
        first = ansible.converge(tasks)
        reports = {arch: report_where(names[arch], lambda r: r["nics"] and r["disks"], "its disk and NIC",
                                      timeout=300) for arch in ARCHES}
        harness.wait_for(lambda: len(clock.init) == len(ARCHES), timeout=10, what="the boot clock")
    finally:
        clock.stop.set()
    first_line = {arch: clock.seconds(names[arch]) for arch in ARCHES}
    init = {arch: clock.seconds(names[arch], "init") for arch in ARCHES}
    print("seconds from start to the first console line: %s; to init (KVMFLEET-BOOTED): %s; from the check run "
          "to every report: %.0f" % (first_line, init, time.monotonic() - started))
    for arch in ARCHES:
        print("%s reports: uname -m %s, %s KiB, %s CPU, disks %s, NICs %s" % (
            arch, reports[arch]["machine"], reports[arch]["mem_total_kib"], reports[arch]["cpus_online"],
            reports[arch]["disks"], reports[arch]["nics"]))

    assert password not in first.output  # no_log: the display password is never shown
    for arch, task in zip(ARCHES, tasks):
        name = names[arch]
        result = first.result(task["name"])
        assert result["created"] is True
        root = etree.fromstring(inactive_xml(conn, name).encode())
        os_type = root.find("os/type")
        assert os_type.get("arch") == arch
        assert os_type.get("machine") == {"aarch64": "virt-7.2", "ppc64le": "pseries-7.2",
                                          "s390x": "s390-ccw-virtio-7.2"}[arch]
        # no x86 features: ACPI on aarch64 comes with UEFI, pseries and s390x have none
        assert root.find("features/apic") is None
        assert (root.find("features/acpi") is not None) == (arch == "aarch64")
        report = reports[arch]
        if arch == "aarch64":
            assert root.findtext("cpu/model") == "cortex-a57"  # QEMU's default would be a 32-bit cortex-a15
            # UEFI, without secure boot (the Microsoft-keyed AAVMF libvirt picks would refuse a kernel from QEMU)
            assert root.find("os").get("firmware") == "efi"
            assert report["platform"]["firmware"] == "efi" and report["platform"]["secure_boot"] is False, report
            live = etree.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE).encode())
            assert "AAVMF" in live.findtext("os/loader")
            assert live.find("devices/graphics[@type='vnc']").get("passwd") == password
            assert live.find("devices/video/model").get("type") == "virtio"
            assert live.find("devices/channel[@type='qemu-vdagent']") is not None
            assert sorted((i.get("type"), i.get("bus")) for i in live.iterfind("devices/input")) == [
                ("keyboard", "usb"), ("tablet", "usb")]  # and no PS/2 libvirt adds on x86
        else:
            assert report["platform"]["firmware"] == "bios", report
        if arch == "s390x":
            seed = [d for d in root.iterfind("devices/disk") if d.get("device") == "cdrom"]
            assert [d.find("target").get("bus") for d in seed] == ["scsi"]
            assert report["seed_label"] == "cidata" and "local-hostname: zguest" in report["seed"]["meta-data"], report

        assert report["machine"] == arch, report
        assert MEMORY_MIB * 1024 // 2 < report["mem_total_kib"] <= MEMORY_MIB * 1024, report
        assert report["cpus_online"] == 1
        assert report["disks"]["vda"]["size_bytes"] == 64 * 1024 * 1024  # (and s390x's seed: sr0)
        mac = result["interfaces"][0]["mac"]
        assert mac in report["nics"], report

    # a new VNC password reaches the running aarch64 desktop live (virDomainUpdateDeviceFlags), predicted by check mode
    desktop["graphics"][0]["password"] = new_password = "b" + prefix[-7:-1]
    predicted = ansible.run([tasks[0]], check=True).result(tasks[0]["name"])
    result = ansible.run([tasks[0]]).result(tasks[0]["name"])
    assert result["applied_live"] == predicted["applied_live"] == ["update graphics vnc"]
    assert result["reboot_required"] is False, result["reasons"]
    live = etree.fromstring(conn.lookupByName(names["aarch64"]).XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE).encode())
    assert live.find("devices/graphics[@type='vnc']").get("passwd") == new_password

    # domain_info reads the guests back: the user-mode NIC and the arch with them
    info = ansible.run([{"name": "info", "kvmfleet.libvirt.domain_info": {"name": names["s390x"]}}])
    spec = info.result("info")["guests"][0]["spec"]
    assert spec["arch"] == "s390x" and spec["interfaces"][0]["user"] is True
    assert spec["machine"] == "s390-ccw-virtio-7.2"


def test_a_device_the_architecture_cannot_have_is_refused_first(conn, prefix, ansible, images, lab):
    name = prefix + "ide"
    task = arch_guest(name, images["aarch64"], lab, {"network": lab["network"]})
    task["kvmfleet.libvirt.domain"]["disks"][0]["bus"] = "ide"
    for check in (True, False):
        run = ansible.run([task], check=check, expect_rc=2)
        assert "disks[0].bus" in run.output and "fdc, scsi, virtio, usb, sata" in run.output, run.output[-3000:]
    assert harness.domain_state(conn, name) == "absent"
    # an architecture this machine has no emulator for (qemu-system-mips is not installed), and KVM for aarch64 on
    # this x86 host: each named, in check mode as in a real run, nothing defined
    mips = arch_guest(name, images["aarch64"], lab, {"network": lab["network"]})
    mips["kvmfleet.libvirt.domain"].update(arch="mips64el", machine="malta")
    kvm = arch_guest(name, images["aarch64"], lab, {"network": lab["network"]})
    kvm["kvmfleet.libvirt.domain"]["virt_type"] = "kvm"
    for bad, words in ((mips, "option arch: got 'mips64el'; this hypervisor runs guests of aarch64"),
                       (kvm, "option virt_type: got 'kvm'; this hypervisor offers qemu guests of aarch64")):
        for check in (True, False):
            run = ansible.run([bad], check=check, expect_rc=2)
            assert words in run.output, run.output[-3000:]
    assert harness.domain_state(conn, name) == "absent"


def test_host_info_says_how_each_architecture_runs(ansible):
    facts = ansible.run([{"name": "facts", "kvmfleet.libvirt.host_info": {}}]).result("facts")
    arches = facts["architectures"]
    for arch in ARCHES:
        assert arches[arch]["acceleration"] == "emulation" and arches[arch]["domain_types"] == ["qemu"]
        assert arches[arch]["emulator"].startswith("/usr/bin/qemu-system-")
    assert arches["ppc64le"]["machine_aliases"]["pseries"] == "pseries-7.2"
