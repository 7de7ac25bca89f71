"""The volume runner against libvirt's in-process test driver (test:///default): no daemon.

The test driver keeps pools and volumes in memory (create, clone, delete; no resize or upload),
which is enough to show that check mode writes nothing yet predicts what the real run does, and
that refusals come before any change.
"""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import apply as volume_apply
from testdriver import module_params
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import spec as volume_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError

POOL = "default-pool"  # the test driver's own dir pool, at /default-pool


def runner(check=False, conn=None, **params):
    """A volume runner as the module makes it (the test driver's pool unless another is given)."""
    return volume_apply.VolumeRunner(conn, module_params(volume_spec.argument_spec(), **dict(dict(pool=POOL), **params)),
                                     check)


@pytest.fixture
def name():
    return "v-%s.qcow2" % uuid.uuid4().hex[:8]


def run(conn, check=False, **params):
    return runner(check, conn, **params).run()


def names(conn, pool=POOL):
    return {v.name() for v in conn.storagePoolLookupByName(pool).listAllVolumes(0)}


def test_check_mode_predicts_and_writes_nothing(conn, name):
    predicted = run(conn, check=True, name=name, size="64MiB")
    assert name not in names(conn)
    made = run(conn, name=name, size="64MiB")
    assert name in names(conn)
    assert (predicted["changed"], predicted["diff"]) == (made["changed"], made["diff"])
    assert predicted["volume_path"] == made["volume_path"] == "/default-pool/" + name
    assert conn.storagePoolLookupByName(POOL).storageVolLookupByName(name).info()[1] == 64 * 2 ** 20
    again = run(conn, name=name, size="64MiB", format="qcow2")
    assert again["changed"] is False and again["diff"] == {}


def test_shrink_and_format_change_are_refused_before_any_change(conn, name):
    run(conn, name=name, size="64MiB")
    with pytest.raises(SpecError) as info:
        run(conn, name=name, size="32MiB")
    assert "64MiB (67108864 bytes)" in str(info.value) and "32MiB (33554432 bytes)" in str(info.value)
    with pytest.raises(SpecError, match="option format: got 'raw'; volume .* is qcow2"):
        run(conn, name=name, format="raw")
    assert conn.storagePoolLookupByName(POOL).storageVolLookupByName(name).info()[1] == 64 * 2 ** 20


def test_clone_uses_create_xml_from(conn, name):
    run(conn, name=name, size="16MiB", format="raw")
    copy = "copy-" + name
    result = run(conn, name=copy, clone=name)
    assert result["created"] and result["actions"] == ["clone %s from /default-pool/%s" % (copy, name)]
    assert copy in names(conn)
    with pytest.raises(SpecError, match="option clone: got 'nope'; pool default-pool has no volume of that name"):
        run(conn, name="x-" + name, clone="nope")


def test_absent_deletes_and_says_what(conn, name):
    run(conn, name=name, size="8MiB")
    predicted = run(conn, check=True, name=name, state="absent")
    assert name in names(conn)
    result = run(conn, name=name, state="absent")
    assert name not in names(conn)
    assert result["removed"] == "/default-pool/" + name
    assert (predicted["changed"], predicted["diff"]) == (result["changed"], result["diff"])
    assert result["diff"]["after"] == {"state": "absent"}
    assert run(conn, name=name, state="absent")["changed"] is False


def test_missing_pool_fails_naming_the_existing_ones_but_check_mode_assumes_it(conn, name):
    with pytest.raises(SpecError) as info:
        run(conn, name=name, pool="no-such-pool", size="8MiB")
    assert info.value.option == "pool" and "default-pool" in str(info.value)
    result = runner(True, conn, name=name, pool="no-such-pool", size="8MiB").run()
    assert result["changed"] is True and "assuming an earlier task makes it" in result["warnings"][0]
    assert run(conn, name=name, pool="no-such-pool", state="absent")["changed"] is False


def test_permissions_of_an_existing_volume_not_on_this_host_are_refused_clearly(conn, name):
    run(conn, name=name, size="8MiB")
    # The test driver's volumes are not files on this machine: libvirt cannot chmod, and neither may we.
    with pytest.raises(UserError, match="libvirt cannot change the permissions of an existing volume"):
        run(conn, name=name, mode="0644")


def test_check_mode_assumes_a_base_image_an_earlier_task_makes(conn, name):
    result = runner(True, conn, name=name, backing="base-" + name, size="40MiB").run()
    assert result["changed"] and "backing base-%s does not exist yet" % name in result["warnings"][0]
    assert result["diff"]["after"] == {"state": "present", "capacity": "40MiB", "format": "qcow2",
                                       "backing": "/default-pool/base-" + name}
    assert name not in names(conn)
    clone = runner(True, conn, name=name, clone="nope-" + name)
    assert clone.run()["diff"]["after"]["capacity"] == "(the origin's size)"
    with pytest.raises(SpecError, match="option backing: got 'base-%s'; pool default-pool has no volume" % name):
        run(conn, name=name, backing="base-" + name, size="40MiB")


def test_a_clone_stopped_part_way_is_made_again_and_only_that(conn, name):
    """A run killed while it filled a volume leaves the volume and its marker: the next run deletes that half-made
    volume and makes it again (check mode says so and writes nothing). A volume without a marker is never replaced."""
    run(conn, name=name, size="16MiB", format="raw")
    copy = "copy-" + name
    pool = conn.storagePoolLookupByName(POOL)
    pool.createXML("<volume><name>%s</name><capacity>1024</capacity><target><format type='raw'/></target></volume>"
                   % (copy + ".kvmfleet-partial"), 0)
    pool.createXML("<volume><name>%s</name><capacity>4096</capacity><target><format type='raw'/></target></volume>"
                   % copy, 0)  # the half-made clone: the wrong size, whatever it holds
    predicted = run(conn, check=True, name=copy, clone=name)
    assert predicted["changed"] and predicted["actions"][0] == \
        "delete the half-made volume /default-pool/%s (a run was stopped while filling it)" % copy
    assert pool.storageVolLookupByName(copy).info()[1] == 4096, "check mode wrote"
    made = run(conn, name=copy, clone=name)
    assert made["actions"] == predicted["actions"] and made["created"]
    assert pool.storageVolLookupByName(copy).info()[1] == 16 * 2 ** 20
    assert copy + ".kvmfleet-partial" not in names(conn), "the marker stays after a finished fill"
    assert run(conn, name=copy, clone=name)["changed"] is False


class _BusyPool:
    """A pool whose refresh libvirt refuses while its post-upload probe runs (``busy`` times), as libvirt does."""

    def __init__(self, busy, message="Requested operation is not valid: storage pool 'p' has asynchronous jobs running."):
        self.busy, self.message, self.refreshed = busy, message, 0

    def refresh(self, flags):
        if self.busy:
            self.busy -= 1
            raise libvirt.libvirtError(self.message)
        self.refreshed += 1


def test_an_import_waits_for_libvirts_probe_before_anything_else():
    """After an upload libvirt probes the new content in a thread of its own; a grow before it ended resized a qcow2
    image as raw. The refresh is retried until libvirt takes it; another error, or one past the deadline, is raised."""
    refresh_after_upload = volume_apply.refresh_after_upload
    slept = []
    pool = _BusyPool(3)
    refresh_after_upload(pool, sleep=slept.append)
    assert pool.refreshed == 1 and len(slept) == 3
    with pytest.raises(libvirt.libvirtError, match="no space"):
        refresh_after_upload(_BusyPool(1, "no space"), sleep=slept.append)
    ticks = iter(range(100))
    with pytest.raises(libvirt.libvirtError, match="asynchronous"):
        refresh_after_upload(_BusyPool(50), timeout=5, sleep=lambda s: None, clock=lambda: next(ticks))
