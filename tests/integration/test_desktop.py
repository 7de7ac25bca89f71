"""Desktops against the real daemon: a guest with a SPICE display and every desktop device, booted under software
emulation (direct kernel boot), converged (check mode predicts, the run makes it, the second run and check mode after
change nothing), read back through domain_info, then changed live: a new display password through
virDomainUpdateDeviceFlags and a USB redirection channel hot-plugged."""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree

import harness
from harness import guest, report_where

pytestmark = pytest.mark.slow

DESKTOP = {
    "video": "qxl", "video_heads": 2, "spice_agent": True,
    "inputs": [{"type": "tablet", "bus": "usb"}], "sounds": [{"model": "ich9"}], "audio": [{"type": "spice"}],
    "redirdevs": 1, "smartcards": [{"mode": "passthrough"}],
}


def _live(conn, name):
    """The running guest's XML with its secrets (VIR_DOMAIN_XML_SECURE)."""
    return etree.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE).encode())


def test_a_spice_desktop_converges_reads_back_and_changes_live(conn, prefix, ansible, image, lab):
    name = prefix + "desk"
    password = "d" + prefix[-7:-1]
    display = {"type": "spice", "listen": "127.0.0.1", "password": password, "clipboard": True}
    task = guest(name, image, lab, graphics=[display], **DESKTOP)
    first = ansible.converge([task])
    assert password not in first.output
    report_where(name, lambda r: r["nics"], "its first report")  # it boots with all of it

    root = _live(conn, name)
    devices = root.find("devices")
    assert devices.find("graphics[@type='spice']").get("passwd") == password
    assert devices.find("graphics/clipboard").get("copypaste") == "yes"
    assert devices.find("video/model").get("type") == "qxl" and devices.find("video/model").get("heads") == "2"
    assert devices.find("channel[@type='spicevmc']/target").get("name") == "com.redhat.spice.0"
    assert [(i.get("type"), i.get("bus")) for i in devices.iterfind("input") if i.get("bus") != "ps2"] == [
        ("tablet", "usb")]
    assert devices.find("sound").get("model") == "ich9" and devices.find("audio").get("type") == "spice"
    assert len(devices.findall("redirdev[@type='spicevmc']")) == 1
    assert devices.find("smartcard").attrib == {"mode": "passthrough", "type": "spicevmc"}

    # domain_info's spec converges back to the same XML (its secrets named, never shown)
    info = ansible.run([{"name": "info", "kvmfleet.libvirt.domain_info": {"name": name}, "register": "info"}])
    read = info.result("info")["guests"][0]
    assert read["secrets"] == ["graphics[0].password"] and password not in info.output
    spec = read["spec"]
    assert spec["graphics"] == [{"type": "spice", "listen": "127.0.0.1", "autoport": True, "clipboard": True}]
    assert (spec["redirdevs"], spec["smartcards"]) == ([{"bus": "usb", "type": "spicevmc"}],
                                                       [{"mode": "passthrough", "type": "spicevmc"}])
    spec.pop("managed", None)
    before = harness.inactive_xml(conn, name)
    again = ansible.run([{"name": "read back", "kvmfleet.libvirt.domain": spec}])
    assert again.changed == 0 and harness.inactive_xml(conn, name) == before

    # live: a new password (virDomainUpdateDeviceFlags) and a second USB redirection channel (hot-plug)
    new_password = "e" + prefix[-7:-1]
    changed = guest(name, image, lab, **{**DESKTOP, "graphics": [dict(display, password=new_password)], "redirdevs": 2})
    predicted = ansible.run([changed], check=True)
    run = ansible.run([changed])
    result = run.result(changed["name"])
    assert result["applied_live"] == predicted.result(changed["name"])["applied_live"]
    assert sorted(result["applied_live"]) == ["attach redirdev 1", "update graphics spice"]
    assert result["reboot_required"] is False, result["reasons"]
    assert new_password not in run.output and new_password not in predicted.output
    root = _live(conn, name)
    assert root.find("devices/graphics[@type='spice']").get("passwd") == new_password, "the running guest's password"
    assert len(root.findall("devices/redirdev[@type='spicevmc']")) == 2, "hot-plugged"
    assert ansible.run([changed]).changed == 0
