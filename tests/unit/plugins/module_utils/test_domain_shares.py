"""Sharing with the host and devices, over plain XML: virtiofs and 9p shares (with the shared memory virtiofs needs),
vsock, panic, balloon, IOMMU, and the NICs that are host devices (SR-IOV VF, vDPA, vhost-user)."""

from __future__ import annotations

import pytest
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import readback
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.live import split_live
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

from test_domain_model import FIXTURE, _as_params, converges, plan

SHARES = [{"source": "/srv/data", "target": "data", "driver": "virtiofs"},
          {"source": "/srv/logs", "target": "logs", "driver": "path", "accessmode": "mapped", "readonly": True}]


def _root(xml):
    return etree.fromstring(xml.encode())


def test_virtiofs_and_9p_shares_bring_shared_memory(fixture_text):
    first = converges(fixture_text(FIXTURE), filesystems=SHARES)
    root = _root(first.after)
    fs = {f.find("target").get("dir"): f for f in root.findall("devices/filesystem")}
    assert fs["data"].get("type") == "mount" and fs["data"].find("driver").get("type") == "virtiofs"
    assert fs["data"].find("source").get("dir") == "/srv/data"
    assert fs["logs"].find("driver") is None, "9p's path driver is libvirt's default"
    assert fs["logs"].get("accessmode") == "mapped"
    assert fs["logs"].find("readonly") is not None
    assert root.find("memoryBacking/source").get("type") == "memfd"
    assert root.find("memoryBacking/access").get("mode") == "shared"
    whats = [c.what for c in first.changes]
    assert "memory_backing.access" in whats and "filesystem data" in whats
    # a running guest takes shares at its next boot, and says why
    live, later = split_live(first, running=True)
    assert not [op for op in live if getattr(op, "kind", None) == "filesystems"]
    assert ("filesystem data", "filesystem data: added") in later
    assert any(what == "memory_backing.access" for what, _why in later)


def test_a_guest_made_elsewhere_without_shared_memory_is_left_as_it_is(fixture_text):
    """Shared memory comes with a share this plan adds: an adopted guest's own share (libvirt refuses to start it,
    saying why) is no difference, and its read-back applied changes nothing."""
    xml = plan(fixture_text(FIXTURE)).after.replace(
        "<devices>", "<devices><filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/>"
                     "<source dir='/srv/x'/><target dir='x'/></filesystem>", 1)
    params_ = _as_params(readback.read_spec(xml))
    params_.pop("name")
    assert not plan(xml, **params_).changed
    assert not plan(xml).changed
    added = converges(xml, filesystems=[{"source": "/srv/x", "target": "x"}, {"source": "/srv/y", "target": "y"}])
    assert _root(added.after).find("memoryBacking/access").get("mode") == "shared"


def test_9p_share_without_virtiofs_needs_no_shared_memory(fixture_text):
    first = converges(fixture_text(FIXTURE), filesystems=[dict(SHARES[1])])
    assert _root(first.after).find("memoryBacking") is None


def test_memory_already_shared_is_left_as_it_is(fixture_text):
    xml = fixture_text(FIXTURE).replace("<devices>", "<memoryBacking><source type='file'/><access mode='shared'/>"
                                                     "</memoryBacking><devices>", 1)
    first = converges(xml, filesystems=[SHARES[0]])
    assert _root(first.after).find("memoryBacking/source").get("type") == "file"
    assert not [c for c in first.changes if c.what.startswith("memory_backing")]


def test_share_read_back_converges_to_the_same_xml(fixture_text):
    xml = plan(fixture_text(FIXTURE), filesystems=SHARES).after
    spec = readback.read_spec(xml)
    assert spec["filesystems"] == [{"source": "/srv/data", "driver": "virtiofs", "target": "data"},
                                   {"source": "/srv/logs", "driver": "path", "accessmode": "mapped", "readonly": True,
                                    "target": "logs"}]
    params_ = _as_params(spec)
    params_.pop("name")
    assert not plan(xml, **params_).changed


def test_a_9p_share_without_a_driver_element_reads_as_path(fixture_text):
    xml = plan(fixture_text(FIXTURE)).after.replace(
        "<devices>", "<devices><filesystem type='mount' accessmode='passthrough'>"
                     "<source dir='/srv/x'/><target dir='x'/></filesystem>", 1)
    assert readback.read_spec(xml)["filesystems"] == [{"source": "/srv/x", "driver": "path",
                                                      "accessmode": "passthrough", "target": "x"}]
    assert not plan(xml, filesystems=[{"source": "/srv/x", "target": "x", "driver": "path"}]).changed


def test_removing_a_share_removes_exactly_it(fixture_text):
    xml = plan(fixture_text(FIXTURE), filesystems=SHARES).after
    second = converges(xml, filesystems=[SHARES[1]])
    assert [f.find("target").get("dir") for f in _root(second.after).findall("devices/filesystem")] == ["logs"]
    assert [op.op for op in second.device_ops] == ["remove"]


def test_a_9p_share_turned_virtiofs_drops_what_only_9p_has(fixture_text):
    """Found by hypothesis (applying B after A): a read-only, mapped 9p share declared again with the virtiofs default
    kept its <readonly/> and accessmode, a share the module refuses and libvirt 9.0 does not start, so the next run
    failed. The driver change takes them away; the run after changes nothing."""
    xml = plan(fixture_text(FIXTURE), filesystems=[SHARES[1]]).after
    second = converges(xml, filesystems=[{"source": "/srv/logs", "target": "logs"}])
    share = _root(second.after).find("devices/filesystem")
    assert share.find("driver").get("type") == "virtiofs"
    assert share.find("readonly") is None and share.get("accessmode") is None


@pytest.mark.parametrize("share, option, words", [
    ({"source": "/srv/a", "target": "a", "accessmode": "mapped"}, "filesystems[0].accessmode", "passthrough only"),
    ({"source": "/srv/a", "target": "a", "readonly": True}, "filesystems[0].readonly", "driver: path (9p)"),
    ({"source": "srv/a", "target": "a"}, "filesystems[0].source", "absDirPath"),
    ({"target": "a"}, "filesystems[0].source", "host directory"),
    ({"source": "/srv/a", "target": "a b"}, "filesystems[0].target", "tag of up to 36"),
    ({"source": "/srv/a", "target": "a", "driver": "loop"}, "filesystems[0].driver", "expected one of"),
])
def test_bad_shares_name_the_option(share, option, words):
    with pytest.raises(SpecError) as info:
        plan(None, filesystems=[share])
    assert info.value.option == option and words in str(info.value)


def test_two_shares_with_one_tag_are_refused():
    with pytest.raises(SpecError, match="each share needs its own tag"):
        plan(None, filesystems=[{"source": "/a", "target": "t"}, {"source": "/b", "target": "t"}])


def test_vsock_with_an_automatic_cid_is_never_a_difference(fixture_text):
    first = converges(fixture_text(FIXTURE), vsock=True)
    cid = _root(first.after).find("devices/vsock/cid")
    assert cid.get("auto") == "yes"
    # the CID libvirt picked, as a running guest's XML shows it
    picked = first.after.replace('<cid auto="yes"/>', '<cid auto="yes" address="3"/>')
    assert picked != first.after and not plan(picked, vsock=True).changed
    assert "vsock_cid" not in readback.read_spec(picked)
    fixed = converges(picked, vsock_cid=42)
    assert _root(fixed.after).find("devices/vsock/cid").attrib == {"auto": "no", "address": "42"}
    assert readback.read_spec(fixed.after)["vsock_cid"] == 42
    with pytest.raises(SpecError, match="option vsock_cid"):
        plan(None, vsock=False, vsock_cid=5)


def test_panic_balloon_and_guest_agent(fixture_text):
    first = converges(fixture_text(FIXTURE), panic="isa", guest_agent=True,
                      balloon={"autodeflate": True, "free_page_reporting": True, "stats_period": 10})
    root = _root(first.after)
    assert root.find("devices/panic").get("model") == "isa"
    balloon = root.find("devices/memballoon")
    assert balloon.attrib == {"model": "virtio", "autodeflate": "on", "freePageReporting": "on"}
    assert balloon.find("stats").get("period") == "10"
    assert balloon.find("address") is not None, "the balloon keeps its address"
    spec = readback.read_spec(first.after)
    assert spec["balloon"] == {"model": "virtio", "autodeflate": True, "free_page_reporting": True, "stats_period": 10}
    assert spec["panic"] == "isa"
    new = converges(None, balloon={"stats_period": 5})
    assert _root(new.after).find("devices/memballoon").get("model") == "virtio"


def test_intel_iommu_needs_q35_and_brings_the_split_ioapic(fixture_text):
    with pytest.raises(SpecError) as info:
        plan(fixture_text(FIXTURE), iommu="intel")
    assert info.value.option == "iommu" and "q35" in str(info.value) and "pc-i440fx-7.2" in str(info.value)
    with pytest.raises(SpecError, match="option iommu: .*hypervisor's default"):
        plan(None, iommu="intel")
    first = converges(fixture_text(FIXTURE), iommu="intel", machine="q35")
    root = _root(first.after)
    assert root.find("devices/iommu").get("model") == "intel"
    assert root.find("features/ioapic").get("driver") == "qemu"
    assert converges(fixture_text(FIXTURE), iommu="virtio").after.count("ioapic") == 0
    # a guest that has one already (an adopted one) is left as it is; changing its machine is checked
    odd = plan(fixture_text(FIXTURE)).after.replace("<devices>", "<devices><iommu model='intel'/>", 1)
    assert not plan(odd).changed
    with pytest.raises(SpecError, match="option iommu"):
        plan(first.after, machine="pc")


def test_nics_that_are_host_devices(fixture_text):
    nics = [{"hostdev": "03:10.1", "mac": "52:54:00:00:0a:01"},
            {"vdpa": "/dev/vhost-vdpa-0", "mac": "52:54:00:00:0a:02"},
            {"vhostuser": "/run/vu.sock", "vhostuser_mode": "server", "mac": "52:54:00:00:0a:03"}]
    first = converges(fixture_text(FIXTURE), interfaces=[dict(n) for n in nics])
    root = _root(first.after)
    by_mac = {i.find("mac").get("address"): i for i in root.findall("devices/interface")}
    vf = by_mac["52:54:00:00:0a:01"]
    assert vf.get("type") == "hostdev" and vf.get("managed") == "yes" and vf.find("model") is None
    assert vf.find("source/address").attrib == {"type": "pci", "domain": "0x0000", "bus": "0x03", "slot": "0x10",
                                                "function": "0x1"}
    assert by_mac["52:54:00:00:0a:02"].find("source").attrib == {"dev": "/dev/vhost-vdpa-0"}
    assert by_mac["52:54:00:00:0a:03"].find("source").attrib == {"type": "unix", "path": "/run/vu.sock",
                                                                 "mode": "server"}
    assert root.find("memoryBacking/access").get("mode") == "shared", "vhost-user needs shared memory"
    spec = readback.read_spec(first.after)
    assert [n.get("hostdev") or n.get("vdpa") or n.get("vhostuser") for n in spec["interfaces"]] == \
        ["0000:03:10.1", "/dev/vhost-vdpa-0", "/run/vu.sock"]
    params_ = _as_params(spec)
    params_.pop("name")
    assert not plan(first.after, **params_).changed
    # a NIC moved from a network to a VF and back keeps its MAC
    moved = converges(first.after, interfaces=[{"network": "default", "mac": "52:54:00:00:0a:01"}])
    nic = _root(moved.after).find("devices/interface")
    assert nic.get("type") == "network" and nic.get("managed") is None and nic.find("source/address") is None
    back = _root(converges(moved.after, interfaces=[{"hostdev": "03:10.1", "mac": "52:54:00:00:0a:01"}]).after)
    vf = back.find("devices/interface")
    assert vf.get("type") == "hostdev" and vf.find("model") is None and vf.find("source").get("network") is None
    with pytest.raises(SpecError, match=r"option interfaces\[0\]\.model: .*no model"):
        plan(None, interfaces=[{"hostdev": "03:10.1", "model": "e1000e"}])
    with pytest.raises(SpecError, match=r"option interfaces\[0\]\.hostdev"):
        plan(None, interfaces=[{"hostdev": "nope"}])


def test_balloon_stats_period_is_live_and_the_rest_of_the_balloon_is_not(fixture_text):
    xml = plan(fixture_text(FIXTURE), balloon={"stats_period": 5}).after
    live, later = split_live(plan(xml, balloon={"stats_period": 2}), running=True)
    assert [change.what for change in live] == ["balloon.stats_period"] and not later
    live, later = split_live(plan(xml, balloon={"autodeflate": True}), running=True)
    assert not live and [what for what, _why in later] == ["balloon.autodeflate"]
