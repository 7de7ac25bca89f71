"""Adopting a guest another tool made (issue 21): the marker goes in with virDomainSetMetadata, never a define, so
the rest of the definition stays byte for byte as it was; the result and the plan say "adopted"."""

from __future__ import annotations

import uuid

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import only_metadata
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.schema import option_at
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import plan_lines
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import GUEST
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import SchemaError, invalid_parts, parse_xml, to_string
from testdriver import converge_described
from test_shared_mechanism import Refusing

FIXTURES = ("domain-virt-install.xml", "domain-virt-manager-uefi.xml", "domain-all-devices.xml")


def without_ours(xml):
    root = parse_xml(xml)
    GUEST.write(root, None)
    return to_string(root)


def define_foreign(conn, fixture_text, fixture):
    """A fixture defined under a new name and UUID, as another tool left it (no marker of ours)."""
    root = parse_xml(fixture_text(fixture))
    GUEST.write(root, None)
    name = "adopt-%s" % uuid.uuid4().hex[:8]
    root.find("name").text = name
    root.find("uuid").text = str(uuid.uuid4())
    return conn.defineXML(to_string(root))


@pytest.mark.parametrize("fixture", FIXTURES)
def test_adopting_writes_only_our_metadata_and_never_defines(conn, fixture_text, fixture):
    dom = define_foreign(conn, fixture_text, fixture)
    before = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    virt_type = parse_xml(before).get("type")
    try:
        planned = converge_described(conn, check=True, name=dom.name(), virt_type=virt_type)
        assert planned["changed"] and planned["adopted"]
        assert dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before, "check mode changed the guest"
        # a define would fail: the marker must go in without one
        result = converge_described(Refusing(conn, "defineXMLFlags"), name=dom.name(), virt_type=virt_type)
        assert result["changed"] and result["adopted"] and result["changes"] == ["metadata.managed: (none) -> True"]
        after = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert GUEST.find(after) is not None and GUEST.find(after).get("managed") == "true"
        assert without_ours(after) == without_ours(before)
        again = converge_described(Refusing(conn, "defineXMLFlags"), name=dom.name(), virt_type=virt_type)
        assert not again["changed"] and not again["adopted"]
        tagged = converge_described(Refusing(conn, "defineXMLFlags"), name=dom.name(), virt_type=virt_type,
                                    tags={"role": "web"})
        assert tagged["changed"] and not tagged["adopted"]
        assert without_ours(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) == without_ours(before)
    finally:
        dom.undefine()


def test_adopting_with_a_change_says_both_and_defines(conn, fixture_text):
    dom = define_foreign(conn, fixture_text, "domain-virt-install.xml")
    try:
        result = converge_described(conn, name=dom.name(), virt_type="kvm", vcpus=3)
        assert result["adopted"] and "vcpus: 2 -> 3" in result["changes"]
        assert parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).findtext("vcpu") == "3"
    finally:
        dom.undefine()


def test_only_metadata_sees_any_other_difference():
    before = "<domain><name>a</name><memory>1</memory></domain>"
    after = parse_xml("<domain><name>a</name><memory>1</memory></domain>")
    GUEST.write(after, {"managed": "true"})
    assert only_metadata(before, after)
    after.find("memory").text = "2"
    assert not only_metadata(before, after)
    assert not only_metadata("", after)


def test_the_plan_says_adopted():
    result = {"guests": [
        {"name": "web1", "changed": True, "adopted": True, "changes": ["metadata.managed: (none) -> True"]},
        {"name": "db1", "changed": True, "adopted": True,
         "changes": ["metadata.managed: (none) -> True", "tags: (none) -> {}", "vcpus: 2 -> 3"]},
        {"name": "web2", "changed": True, "changes": ["vcpus: 2 -> 3"]}],
        "summary": {"updated": 3}}
    lines = plan_lines(result)
    assert lines[:3] == ["~ web1: adopted, metadata only", "~ db1: adopted, vcpus: 2 -> 3", "~ web2: vcpus: 2 -> 3"]


# ---- a definition that already fails libvirt's schema (virt-install writes relative paths) ----------------------

RELATIVE_LOADER = "<loader readonly='yes' type='pflash'>OVMF_CODE.fd</loader>"


def test_invalid_parts_names_each_part_that_fails_the_schema(fixture_text):
    xml = fixture_text("domain-all-devices.xml")
    assert invalid_parts(xml, "domain.rng") == []
    bad = xml.replace("<os>", "<os>" + RELATIVE_LOADER, 1).replace(
        "<source file='/var/lib/libvirt/images/alldev-root.qcow2'/>", "<source file='alldev-root.qcow2'/>")
    parts = invalid_parts(bad, "domain.rng")
    assert [p.describe() for p in parts] == ["/domain/os/loader (its text)", "/domain/devices/disk[1]/source/@file"]
    assert [option_at(p) for p in parts] == ["firmware", "disks[].source"]


def test_a_change_to_an_already_invalid_guest_goes_ahead_and_says_where(conn, fixture_text):
    root = parse_xml(fixture_text("domain-virt-install.xml").replace("<os>", "<os>" + RELATIVE_LOADER, 1))
    root.find("name").text = "invalid-%s" % uuid.uuid4().hex[:8]
    root.find("uuid").text = str(uuid.uuid4())
    dom = conn.defineXML(to_string(root))  # as libvirt takes it: without validation
    try:
        result = converge_described(conn, name=dom.name(), virt_type="kvm", vcpus=3)
        assert result["changed"] and "vcpus: 2 -> 3" in result["changes"]
        assert any("already fails libvirt's schema" in w and "/domain/os/loader (its text)" in w
                   for w in result["warnings"]), result["warnings"]
        assert parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).findtext("vcpu") == "3"
        # a change that makes another part invalid is refused, naming it and the option
        with pytest.raises(SchemaError) as info:
            converge_described(conn, name=dom.name(), virt_type="kvm", xml_edits=[
                {"xpath": "/domain/devices/disk[1]/source/@file", "value": "relative.qcow2"}])
        assert "at /domain/devices/disk/source/@file (option xml_edits[0])" in str(info.value)
        assert parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).find("devices/disk/source").get(
            "file").startswith("/"), "a refused change was written"
    finally:
        dom.undefine()


# ---- what the read-back emits, the module takes, and it changes nothing ----------------------------------------

FOREIGN_DEVICES = """<domain type='qemu'>
  <name>NAME</name>
  <memory unit='KiB'>262144</memory>
  <vcpu placement='static'>1</vcpu>
  <memoryBacking><access mode='shared'/></memoryBacking>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images/f.qcow2'/>
      <target dev='vda' bus='virtio'/></disk>
    <interface type='user'><mac address='52:54:00:f0:00:01'/><model type='virtio'/></interface>
    <interface type='ethernet'><mac address='52:54:00:f0:00:02'/><target dev='tap7' managed='no'/>
      <model type='virtio'/></interface>
    <interface type='vhostuser'><mac address='52:54:00:f0:00:03'/>
      <source type='unix' path='/run/vhost.sock' mode='client'/><model type='virtio'/></interface>
    <interface type='network'><mac address='52:54:00:f0:00:04'/><source network='default'/><model type='e1000e'/>
    </interface>
    <serial type='tcp'><source mode='bind' host='127.0.0.1' service='4555'/><protocol type='telnet'/></serial>
    <console type='pty'><target type='virtio'/></console>
    <graphics type='sdl' display=':0'/>
    <graphics type='egl-headless'><gl rendernode='/dev/dri/renderD128'/></graphics>
    <graphics type='vnc' port='-1' autoport='yes'/>
  </devices>
</domain>"""


def test_the_read_back_of_foreign_devices_is_valid_input_that_changes_nothing(conn):
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.readback import read_spec
    name = "foreign-%s" % uuid.uuid4().hex[:8]
    dom = conn.defineXML(FOREIGN_DEVICES.replace("NAME", name))
    before = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    try:
        spec = read_spec(before)
        macs = ["52:54:00:f0:00:01", "52:54:00:f0:00:03", "52:54:00:f0:00:04"]
        assert [nic.get("mac") for nic in spec["interfaces"]] == macs
        assert spec["interfaces"][1]["vhostuser"] == "/run/vhost.sock"
        assert spec["interfaces"][0]["user"] is True and "type" not in spec["interfaces"][0]
        assert [g["type"] for g in spec["graphics"]] == ["sdl", "egl-headless", "vnc"]
        assert spec["serials"] == [{"type": "tcp"}]
        spec.pop("managed")
        spec["tags"] = None
        result = converge_described(conn, **spec)  # the module's own argument spec takes it
        assert result["changes"] == ["metadata.managed: (none) -> True"], result["changes"]
        assert without_ours(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) == without_ours(before)
        # a declared list leaves the NICs it cannot express alone; naming one is an error
        fewer = converge_described(conn, **dict(spec, interfaces=[{"user": True}]))
        macs = [n["mac"] for n in fewer["interfaces"]]
        assert macs == ["52:54:00:f0:00:01", "52:54:00:f0:00:02"], macs
        with pytest.raises(SpecError) as info:
            converge_described(conn, **dict(spec, interfaces=[{"network": "default", "mac": "52:54:00:f0:00:02"}]))
        assert info.value.option == "interfaces[0]" and "xml_edits" in str(info.value)
    finally:
        dom.undefine()


def test_local_displays_take_no_port_or_password(conn):
    with pytest.raises(SpecError) as info:
        converge_described(conn, check=True, name="nodisplay", graphics=[{"type": "sdl", "port": 5900}])
    assert info.value.option == "graphics[0].port" and "only vnc, spice, rdp" in str(info.value)
