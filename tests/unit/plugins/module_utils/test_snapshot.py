# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The snapshot runner against libvirt's test driver (which implements snapshots), and its pure parts."""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot import apply as snapshot_apply
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot import model
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.apply import SnapshotRunner, list_snapshots
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.spec import argument_spec
from testdriver import module_params
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import schema_error

NODE = """<node>
  <domain type='test'><name>g1</name><memory>65536</memory><os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/g1.qcow2'/>
        <target dev='vda' bus='virtio'/></disk>
      <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/images/seed.iso'/>
        <target dev='sda' bus='sata'/><readonly/></disk>
    </devices></domain>
  <domain type='test'><name>raw1</name><memory>65536</memory><os><type>hvm</type></os>
    <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/images/raw1.img'/>
      <target dev='vdb' bus='virtio'/></disk></devices></domain>
</node>"""


def params(**given):
    """The snapshot module's parameters as AnsibleModule hands them over."""
    return module_params(argument_spec(), **given)


@pytest.fixture
def conn(test_host):
    return test_host(NODE)


def snap(conn, check=False, **given):
    return SnapshotRunner(conn, module_params(argument_spec(), **dict(given, guest=given.pop("guest", "g1"))),
                          check).run()


def names(conn, guest="g1"):
    return [s["name"] for s in list_snapshots(conn, {"name": guest})["snapshots"]]


def test_a_snapshot_is_taken_once_and_check_mode_predicts_it(conn):
    predicted = snap(conn, True, name="s1", description="before")
    assert predicted["changed"] and names(conn) == []
    made = snap(conn, name="s1", description="before")
    assert made["actions"] == predicted["actions"] == ["take internal memory+disk snapshot s1"]
    assert made["diff"]["after"] == {"snapshots": ["s1"]} == predicted["diff"]["after"]
    assert made["snapshot"]["memory"] and made["snapshot"]["current"] and made["snapshot"]["description"] == "before"
    again = snap(conn, name="s1", description="before")
    assert not again["changed"] and again["actions"] == [] and again["differences"] == []


def test_a_different_description_or_memory_is_reported_not_ignored(conn):
    snap(conn, name="s1", description="before")
    result = snap(conn, name="s1", description="after", memory=False)
    assert not result["changed"]
    assert result["differences"] == ["description: 'before' (asked: 'after')", "memory: True (asked: False)"]
    assert any("cannot be edited" in w for w in result["warnings"])


def test_bad_input_names_the_option_and_changes_nothing(conn):
    conn.lookupByName("g1").destroy()
    cases = [
        (dict(name="s1", memory=True), "memory", "is shutoff: there is no running state"),
        (dict(guest="nope", name="s1"), "guest", "no guest has that name"),
        (dict(guest="raw1", name="s1"), "location", "disk vdb (/images/raw1.img) is raw"),
        (dict(name="../s1"), "name", "expected a snapshot name"),
        (dict(name="s1", state="current"), "name", "has no snapshot of that name"),
        (dict(name="x", keep=2, prefix="pre-"), "name", "must start with prefix"),
        (dict(name="pre-1", keep=0, prefix="pre-"), "keep", "at least 1"),
        (dict(name="s1", quiesce=True), "quiesce", "only a running guest's agent"),
    ]
    for params, option, words in cases:
        for check in (True, False):
            with pytest.raises(SpecError) as info:
                snap(conn, check, **params)
            assert info.value.option == option and words in str(info.value), str(info.value)
    assert names(conn) == [] and names(conn, "raw1") == []


def test_a_snapshot_with_descendants_is_refused_then_deleted_with_them(conn):
    for name in ("s1", "s2", "s3"):
        snap(conn, name=name)
    with pytest.raises(SpecError) as info:
        snap(conn, name="s1", state="absent")
    assert info.value.option == "children" and "(s2, s3)" in str(info.value)
    assert names(conn) == ["s1", "s2", "s3"]
    only = snap(conn, True, name="s2", state="absent", children_only=True)
    assert only["deleted"] == ["s3"]
    result = snap(conn, name="s1", state="absent", children=True)
    assert result["deleted"] == ["s1", "s2", "s3"] and names(conn) == []
    assert not snap(conn, name="s1", state="absent", children=True)["changed"]


def test_keep_deletes_the_oldest_of_the_prefix_over_several_runs(conn):
    snap(conn, name="other")
    for day in range(1, 6):
        result = snap(conn, name="pre-%d" % day, prefix="pre-", keep=3)
        assert result["changed"]
    assert names(conn) == ["other", "pre-3", "pre-4", "pre-5"]
    predicted = snap(conn, True, name="pre-6", prefix="pre-", keep=2)
    assert predicted["deleted"] == ["pre-3", "pre-4"] and len(names(conn)) == 4
    assert not snap(conn, name="pre-5", prefix="pre-", keep=3)["changed"]


def test_revert_says_what_happens_to_the_running_state(conn):
    snap(conn, name="live")  # running: with memory
    dom = conn.lookupByName("g1")
    dom.destroy()
    snap(conn, name="cold")  # shut off: disk only
    dom.create()
    result = snap(conn, name="cold", state="current")
    assert result["running_state"] == "the snapshot has no memory state: the guest (now running) is shut off with the " \
                                      "snapshot's disks"
    assert dom.state(0)[0] == libvirt.VIR_DOMAIN_SHUTOFF
    result = snap(conn, name="live", state="current")
    assert "resumes where the snapshot left it (running, memory state)" in result["running_state"]
    assert dom.state(0)[0] == libvirt.VIR_DOMAIN_RUNNING
    paused = snap(conn, True, name="cold", state="current", after_revert="paused")
    assert paused["running_state"].endswith("then started paused (after_revert)")


def test_external_snapshots_are_not_reverted_by_libvirt_9_0(conn, monkeypatch):
    # Whatever libvirt runs the tests: as a libvirt older than the version that reverts external snapshots.
    monkeypatch.setattr(snapshot_apply, "EXTERNAL_REVERT_VERSION", conn.getLibVersion() + 1)
    snap(conn, name="s1")
    dom = conn.lookupByName("g1")
    # The test driver takes no external snapshots: record one as libvirt would (redefine, from s1's document).
    xml = dom.snapshotLookupByName("s1").getXMLDesc(libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE)
    xml = xml.replace("<name>s1</name>", "<name>ext</name>", 1).replace(
        "<memory snapshot='internal'/>", "<memory snapshot='no'/>").replace(
        "<disk name='vda' snapshot='internal'/>",
        "<disk name='vda' snapshot='external'><source file='/images/g1.ext.qcow2'/></disk>", 1)
    dom.snapshotCreateXML(xml, libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE)
    assert [s for s in list_snapshots(conn, {"name": "g1"})["snapshots"] if s["name"] == "ext"][0]["location"] == "external"
    for check in (True, False):
        with pytest.raises(SpecError) as info:
            snap(conn, check, name="ext", state="current")
        assert info.value.option == "state" and "cannot revert external snapshots" in str(info.value)
    # a libvirt that can (9.7 and later) is asked: check mode predicts the revert
    monkeypatch.setattr(snapshot_apply, "EXTERNAL_REVERT_VERSION", 0)
    assert snap(conn, True, name="ext", state="current")["actions"][0].startswith("revert to snapshot ext")


def test_the_snapshot_document_validates_and_overlays_are_named_predictably():
    spec = model.normalize_snapshot(params(guest="g1", name="nightly", location="external"))
    domain = NODE.split("<domain type='test'>", 2)[1].rsplit("</domain>", 1)[0]
    plan = model.plan_disks(model.guest_disks("<domain type='test'>%s</domain>" % domain.split("</domain>")[0]), spec)
    assert plan == [("vda", "external", "/images/g1.nightly.qcow2"), ("sda", "no", None)]
    xml = model.snapshot_xml(spec, plan, with_memory=False)
    assert schema_error(xml, "domainsnapshot.rng") is None
    assert model.overlay_path("/var/lib/libvirt/images/web.img", "s") == "/var/lib/libvirt/images/web.s.qcow2"
    with pytest.raises(SpecError, match="libvirt 9.0 cannot revert external snapshots"):
        model.normalize_snapshot(params(guest="g1", name="x", location="external", memory=True))


def test_retention_is_oldest_first_by_creation_time():
    snapshots = [{"name": "pre-b", "creation_time": 10}, {"name": "pre-a", "creation_time": 20},
                 {"name": "other", "creation_time": 1}, {"name": "pre-c", "creation_time": 30}]
    assert model.retention(snapshots, "pre-", 2) == ["pre-b"]
    assert model.retention(snapshots, "pre-", 5) == []


def test_a_libvirt_failure_on_create_is_a_message_naming_the_snapshot(conn, monkeypatch):
    dom_class = type(conn.lookupByName("g1"))

    def refuse(_self, _xml, _flags=0):
        raise libvirt.libvirtError("refused by the test")
    monkeypatch.setattr(dom_class, "snapshotCreateXML", refuse)
    with pytest.raises(UserError, match="taking internal memory\\+disk snapshot s1 of guest g1 failed"):
        snap(conn, name="s1")
