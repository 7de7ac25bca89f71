"""Snapshots of real guests (issue 13): the test guest writes a marker at 1 MiB into its disk when booted with
``kvmfleet.mark=VALUE`` and reports the marker it reads on its console. Take a snapshot, change the marker,
revert, boot, and the guest reads the old marker again. Every task runs in check mode, for real, and again
(no change), through harness.converge.
"""

from __future__ import annotations

import os

import harness


def snapshot(guest, title="snapshot", **args):
    args.update(guest=guest)
    return {"name": title, "kvmfleet.libvirt.snapshot": args, "register": "result"}


def booted_with(name, image, lab, mark=None, state="running"):
    cmdline = image["cmdline"] + (" kvmfleet.mark=%s" % mark if mark else "")
    return harness.guest(name, image, lab, state=state, boot={"kernel": image["kernel"], "initrd": image["initrd"],
                                                              "cmdline": cmdline})


def marks(name, value, timeout=120):
    return harness.report_where(name, lambda r: r.get("marks", {}).get("vda") == value,
                                "marker %s on vda" % value, timeout=timeout)


def off(conn, name):
    dom = conn.lookupByName(name)
    if dom.isActive():
        dom.destroy()


def snapshot_names(conn, name):
    return sorted(s.getName() for s in conn.lookupByName(name).listAllSnapshots(0))


def test_revert_brings_back_the_disk_the_snapshot_saw(ansible, conn, prefix, lab, image):
    name = prefix + "snap"
    ansible.run([booted_with(name, image, lab, mark="A")])
    marks(name, "A")
    off(conn, name)
    ansible.run([booted_with(name, image, lab, state="shutoff")])  # boots from now on without writing a marker
    made = ansible.converge([snapshot(name, name="before-upgrade", description="marker A")])
    facts = made.result("snapshot")["snapshot"]
    assert facts["location"] == "internal" and not facts["memory"] and facts["state"] == "shutoff"
    assert snapshot_names(conn, name) == ["before-upgrade"]

    # the "upgrade": the guest writes marker B
    ansible.run([booted_with(name, image, lab, mark="B")])
    marks(name, "B")
    off(conn, name)

    # roll back: once, and then nothing to do until the guest writes again
    first = ansible.converge([snapshot(name, name="before-upgrade", state="current", after_revert="running")])
    assert "the snapshot has no memory state" in first.result("snapshot")["running_state"]
    marks(name, "A")  # booted from the reverted disk: the old marker again
    assert conn.lookupByName(name).snapshotCurrent(0).getName() == "before-upgrade"

    # the base disk survives deleting the snapshot
    ansible.converge([snapshot(name, name="before-upgrade", state="absent")])
    assert snapshot_names(conn, name) == []
    assert (lab["pool_dir"] / (name + "-root.qcow2")).exists()


def test_children_keep_and_bad_input(ansible, conn, prefix, lab, image):
    name = prefix + "snaps"
    ansible.run([booted_with(name, image, lab, state="shutoff")])
    for child in ("base", "child", "grandchild"):
        ansible.run([snapshot(name, name=child)])
    refused = ansible.run([snapshot(name, name="base", state="absent")], expect_rc=2)
    assert "has descendants (child, grandchild); set children: true" in refused.result("snapshot")["msg"]
    assert snapshot_names(conn, name) == ["base", "child", "grandchild"]
    ansible.converge([snapshot(name, name="child", state="absent", children=True)])
    assert snapshot_names(conn, name) == ["base"]

    # a rolling set: three runs with keep 2 leave the newest two of the prefix, and base
    for day in (1, 2, 3):
        ansible.run([snapshot(name, name="pre-%d" % day, prefix="pre-", keep=2)])
    assert snapshot_names(conn, name) == ["base", "pre-2", "pre-3"]
    predicted = ansible.run([snapshot(name, name="pre-4", prefix="pre-", keep=2)], check=True)
    assert predicted.result("snapshot")["deleted"] == ["pre-2"]
    assert snapshot_names(conn, name) == ["base", "pre-2", "pre-3"]

    # bad input: clear errors naming the option, nothing changed
    for task, words in (
            (snapshot(name, name="x", memory=True), "option memory: got True; guest %s is shutoff" % name),
            (snapshot(name + "-missing", name="x"), "option guest"),
            (snapshot(name, name="nope", state="current"), "has no snapshot of that name"),
    ):
        for check in (True, False):
            run = ansible.run([task], check=check, expect_rc=2)
            assert words in run.result("snapshot")["msg"], run.result("snapshot")["msg"]
    assert snapshot_names(conn, name) == ["base", "pre-2", "pre-3"]
    info = ansible.run([{"name": "info", "kvmfleet.libvirt.snapshot_info": {"name": name}, "register": "info"}])
    listed = info.result("info")
    assert [s["name"] for s in listed["snapshots"]] == ["base", "pre-2", "pre-3"]
    assert listed["current"] == "pre-3" and listed["snapshots"][1]["parent"] == "base"


def test_a_raw_disk_is_named_for_an_internal_snapshot(ansible, conn, prefix, lab, image):
    name = prefix + "raw"
    task = booted_with(name, image, lab, state="shutoff")
    task["kvmfleet.libvirt.domain"]["disks"] = [{"pool": lab["pool"], "volume": name + ".img", "size": "16MiB",
                                                 "format": "raw"}]
    ansible.run([task])
    run = ansible.run([snapshot(name, name="s")], expect_rc=2)
    assert "disk vda (%s) is raw: internal snapshots need qcow2 disks" % (lab["pool_dir"] / (name + ".img")) \
        in run.result("snapshot")["msg"]


def test_an_external_snapshot_of_a_running_guest(ansible, conn, prefix, lab, image):
    name = prefix + "ext"
    ansible.run([booted_with(name, image, lab, mark="E")])
    marks(name, "E")
    # the test guest runs no guest agent: quiesce fails saying so, and nothing is taken
    quiet = ansible.run([snapshot(name, name="quiesced", location="external", quiesce=True)], expect_rc=2)
    assert "quiesce: the guest agent of %s did not answer" % name in quiet.result("snapshot")["msg"]
    assert snapshot_names(conn, name) == []
    assert not (lab["pool_dir"] / (name + "-root.quiesced.qcow2")).exists()
    made = ansible.converge([snapshot(name, name="nightly", location="external")])
    overlay = lab["pool_dir"] / (name + "-root.nightly.qcow2")
    facts = made.result("snapshot")["snapshot"]
    assert facts["location"] == "external" and facts["disks"][0]["file"] == str(overlay)
    assert overlay.exists() and str(overlay) in harness.domain_xml(conn, name)
    assert conn.lookupByName(name).isActive()

    refused = ansible.run([snapshot(name, name="nightly", state="current")], expect_rc=2)
    if conn.getLibVersion() < 9007000:
        assert "cannot revert external snapshots" in refused.result("snapshot")["msg"]

    # deleting merges it back, or is refused with the reason: never a guest pointing at a missing file
    gone = ansible.run([snapshot(name, name="nightly", state="absent")], expect_rc=None)
    sources = [line for line in harness.domain_xml(conn, name).splitlines() if "<source file=" in line]
    for line in sources:
        path = line.split("file='", 1)[1].split("'", 1)[0]
        assert os.path.exists(path), "the guest points at a missing file: %s" % path
    assert (lab["pool_dir"] / (name + "-root.qcow2")).exists()
    if gone.rc == 0:
        assert "nightly" not in snapshot_names(conn, name)
    else:
        assert "could not delete (merge back)" in gone.result("snapshot")["msg"]
        assert "nightly" in snapshot_names(conn, name)
    off(conn, name)
