"""The guest_image test guest under a real libvirtd: boot report, disk hotplug, ACPI shutdown."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import libvirt
import pytest

import testguest as guest_image
import harness

MIB = 1024 * 1024


@pytest.fixture
def name(conn):
    """A unique domain name; the domain, its disk files and its console log go afterwards."""
    value = "kvmfleet-test-img-" + uuid.uuid4().hex[:6]
    yield value
    try:
        conn.lookupByName(value).destroy()  # a transient domain is gone once destroyed
    except libvirt.libvirtError:
        pass  # it powered off already, or never started
    for path in Path(guest_image.DEFAULT_DEST).glob(value + "-*"):
        path.unlink()
    console_log(value).unlink(missing_ok=True)


def console_log(name):
    return Path(f"/var/log/libvirt/qemu/{name}-serial.log")


def console(name):
    path = console_log(name)
    return path.read_text(errors="replace") if path.exists() else ""


def wait_report(name, predicate, timeout, what):
    """The newest report once it satisfies predicate; on timeout the console is in the error."""
    def check():
        report = guest_image.last_report(console(name))
        return report if report and predicate(report) else None

    try:
        return harness.wait_for(check, timeout=timeout, what=what)
    except AssertionError as exc:
        raise AssertionError("%s\n--- console ---\n%s" % (exc, console(name)[-4000:])) from None


def raw_disk(path, size_mib):
    subprocess.run(["qemu-img", "create", "-f", "raw", str(path), "%dM" % size_mib],
                   check=True, capture_output=True)
    return str(path)


@pytest.mark.slow
def test_guest_reports_disks_hotplug_and_powers_off(conn, name):
    image = guest_image.build()
    vda = raw_disk(Path(guest_image.DEFAULT_DEST, name + "-vda.raw"), 64)
    vdb = raw_disk(Path(guest_image.DEFAULT_DEST, name + "-vdb.raw"), 32)
    xml = guest_image.domain_xml(name, image, serial_log=str(console_log(name)),
                                 disks=[{"path": vda, "target": "vda", "serial": "KVMTEST1"}])
    dom = conn.createXML(xml, 0)

    first = wait_report(name, lambda r: "vda" in r["disks"], 60, "a report listing vda")
    assert guest_image.booted(console(name))
    assert first["disks"]["vda"] == {"size_bytes": 64 * MIB, "ro": False, "serial": "KVMTEST1"}
    assert first["nics"] == {}

    dom.attachDeviceFlags(guest_image.disk_xml(vdb, "vdb", serial="KVMTEST2"),
                          libvirt.VIR_DOMAIN_AFFECT_LIVE)
    later = wait_report(name, lambda r: "vdb" in r["disks"], 30, "the hot-plugged vdb")
    assert later["seq"] > first["seq"]
    assert later["disks"]["vdb"] == {"size_bytes": 32 * MIB, "ro": False, "serial": "KVMTEST2"}
    assert later["disks"]["vda"] == first["disks"]["vda"]

    dom.shutdown()  # no guest agent: libvirt presses the ACPI power button
    # A transient domain is gone ("absent") once it has shut off.
    harness.wait_for(lambda: harness.domain_state(conn, name) in ("shutoff", "absent"),
                     timeout=30, what="the guest to power off")
    assert "KVMFLEET-POWEROFF" in console(name)
