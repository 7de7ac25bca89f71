"""The storage pool model over plain XML: no daemon. Every contract of docs/contracts.md that the model owns."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool import apply as pool_apply
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool import spec as pool_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool import model
from testdriver import module_params
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

SCHEMA = etree.RelaxNG(file="/usr/share/libvirt/schemas/storagepool.rng")

# What libvirt 9.0 returns for XMLDesc(VIR_STORAGE_XML_INACTIVE) of a dir pool another tool made,
# plus things nobody declares here: copy-on-write feature, a vendor element.
DIR_POOL = """<pool type='dir'>
  <name>images</name>
  <uuid>e5d449e5-179b-47ee-9280-4745859177b2</uuid>
  <capacity unit='bytes'>270553174016</capacity>
  <allocation unit='bytes'>24806445056</allocation>
  <available unit='bytes'>245746728960</available>
  <features>
    <cow state='no'/>
  </features>
  <source>
  </source>
  <target>
    <path>/srv/images</path>
    <permissions>
      <mode>0750</mode>
      <owner>0</owner>
      <group>0</group>
      <label>system_u:object_r:virt_image_t:s0</label>
    </permissions>
  </target>
</pool>
"""

FS_POOL = """<pool type='fs'>
  <name>fast</name>
  <uuid>167dcf96-d9a0-4de7-a093-97f4825e3fe6</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
    <device path='/dev/loop0'/>
    <format type='ext4'/>
  </source>
  <target>
    <path>/srv/fast</path>
  </target>
  <fs:mount_opts xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>
    <fs:option name='noatime'/>
  </fs:mount_opts>
</pool>
"""

ISCSI_SECRET_UUID = "2ec115d7-3a88-3ceb-bc12-0ac909a6fd87"


def params(**kwargs):
    """Module parameters as AnsibleModule hands them over (unset options are None)."""
    base = {"type": None, "path": None, "source": None, "mode": None, "owner": None, "group": None}
    base.update(kwargs)
    return base


def plan(current, name="p1", **kwargs):
    return model.plan_pool(current, model.normalize_pool_spec(params(**kwargs)), name)


def assert_valid(xml):
    assert SCHEMA.validate(etree.fromstring(xml.encode())), SCHEMA.error_log.last_error


def converges(current, **kwargs):
    """Apply twice: the second application must change nothing; the result must validate."""
    first = plan(current, **kwargs)
    second = plan(first.after, **kwargs)
    assert not second.changed, second.changes
    assert second.after == first.after
    assert_valid(first.after)
    return first


# Every type with the options a new pool of that type needs (and some it may take).
NEW_POOLS = {
    "dir": dict(path="/srv/images", mode="0711", owner=0, group="0"),
    "fs": dict(path="/srv/fast", source={"devices": ["/dev/sdb1"], "format": "xfs"}),
    "netfs": dict(path="/srv/nfs", source={"hosts": ["nas.example.com"], "dir": "/export/vms", "format": "nfs"}),
    "logical": dict(source={"name": "vg_guests", "devices": ["/dev/sdc", "/dev/sdd"], "format": "lvm2"}),
    "disk": dict(path="/dev", source={"devices": ["/dev/sde"], "format": "gpt"}),
    "iscsi": dict(path="/dev/disk/by-path", source={
        "hosts": [{"name": "192.0.2.10", "port": 3260}], "devices": ["iqn.2013-06.com.example:storage"],
        "initiator": "iqn.2013-06.com.example:host1",
        "auth": {"username": "chapuser", "secret": ISCSI_SECRET_UUID}}),
    "rbd": dict(source={"name": "libvirt-pool", "hosts": [{"name": "mon1.example.com", "port": 6789}, "mon2.example.com"],
                        "auth": {"username": "libvirt", "secret": "client.libvirt secret"}}),
}


@pytest.mark.parametrize("pool_type", sorted(NEW_POOLS))
def test_new_pool_of_every_type_validates_and_converges(pool_type):
    result = converges(None, type=pool_type, **NEW_POOLS[pool_type])
    assert result.created and result.changed
    root = etree.fromstring(result.after.encode())
    assert root.get("type") == pool_type and root.findtext("name") == "p1"
    assert result.diff()["before"] == ""


def test_new_pool_xml_holds_what_was_declared():
    iscsi = etree.fromstring(plan(None, type="iscsi", **NEW_POOLS["iscsi"]).after.encode())
    assert iscsi.find("source/host").attrib == {"name": "192.0.2.10", "port": "3260"}
    assert iscsi.find("source/device").get("path") == "iqn.2013-06.com.example:storage"
    assert iscsi.find("source/initiator/iqn").get("name") == "iqn.2013-06.com.example:host1"
    assert iscsi.find("source/auth").attrib == {"type": "chap", "username": "chapuser"}
    assert iscsi.find("source/auth/secret").attrib == {"uuid": ISCSI_SECRET_UUID}
    rbd = etree.fromstring(plan(None, type="rbd", **NEW_POOLS["rbd"]).after.encode())
    assert [h.attrib for h in rbd.iterfind("source/host")] == [
        {"name": "mon1.example.com", "port": "6789"}, {"name": "mon2.example.com"}]
    assert rbd.find("source/auth").get("type") == "ceph"
    assert rbd.find("source/auth/secret").attrib == {"usage": "client.libvirt secret"}
    assert rbd.find("target") is None
    dir_pool = etree.fromstring(plan(None, type="dir", **NEW_POOLS["dir"]).after.encode())
    assert dir_pool.findtext("target/permissions/mode") == "0711"
    assert dir_pool.findtext("target/permissions/owner") == "0"


def test_unchanged_spec_is_a_no_op_on_libvirts_xml():
    result = plan(DIR_POOL, type="dir", path="/srv/images/", mode=0o750, owner="root", group=0)
    assert not result.changed, result.changes
    assert result.diff() == {}
    fs = plan(FS_POOL, type="fs", path="/srv//fast", source={"devices": ["/dev/loop0"], "format": "ext4"})
    assert not fs.changed, fs.changes


def test_an_empty_spec_changes_nothing():
    assert not plan(DIR_POOL).changed
    assert not plan(FS_POOL).changed


def test_preserves_what_was_not_declared():
    result = converges(DIR_POOL, path="/srv/images2")
    after = etree.fromstring(result.after.encode())
    assert after.findtext("uuid") == "e5d449e5-179b-47ee-9280-4745859177b2"
    assert after.find("features/cow").get("state") == "no"
    assert after.findtext("target/permissions/mode") == "0750"
    assert after.findtext("target/permissions/label") == "system_u:object_r:virt_image_t:s0"
    assert [c.describe() for c in result.changes] == ["path: /srv/images -> /srv/images2"]
    fs = converges(FS_POOL, source={"format": "xfs"})
    fs_root = etree.fromstring(fs.after.encode())
    assert fs_root.find("{http://libvirt.org/schemas/storagepool/fs/1.0}mount_opts/"
                        "{http://libvirt.org/schemas/storagepool/fs/1.0}option").get("name") == "noatime"
    assert fs_root.find("source/device").get("path") == "/dev/loop0"


def test_diff_is_the_xml_without_runtime_sizes():
    diff = plan(DIR_POOL, mode="0755").diff()
    assert "capacity" not in diff["before"] and "capacity" not in diff["after"]
    assert "<mode>0750</mode>" in diff["before"] and "<mode>0755</mode>" in diff["after"]
    assert diff["before"].replace("0750", "0755") == diff["after"]


def test_a_change_touches_only_its_field():
    result = plan(DIR_POOL, owner=107)
    assert [(c.what, c.before, c.after) for c in result.changes] == [("owner", 0, 107)]


@pytest.mark.parametrize("value", ["0755", "755", 0o755])
def test_mode_forms_compare_equal(value):
    current = plan(None, type="dir", path="/x", mode="0755").after
    assert not plan(current, mode=value).changed


def test_hosts_and_devices_compare_normalised():
    current = plan(None, type="logical", source={"name": "vg", "devices": ["/dev/sdb", "/dev/sdc"]}).after
    assert not plan(current, source={"devices": ["/dev/sdc", "/dev/sdb"]}).changed  # a set
    current = plan(None, type="rbd", **NEW_POOLS["rbd"]).after
    same = {"hosts": [{"name": "mon1.example.com", "port": "6789"}, {"name": "mon2.example.com"}]}
    assert not plan(current, source=same).changed
    reordered = {"hosts": ["mon2.example.com", {"name": "mon1.example.com", "port": 6789}]}
    assert plan(current, source=reordered).changed  # monitors are in order


def test_secret_switches_between_uuid_and_usage():
    current = plan(None, type="rbd", **NEW_POOLS["rbd"]).after
    result = converges(current, source={"auth": {"username": "libvirt", "secret": ISCSI_SECRET_UUID.upper()}})
    secret = etree.fromstring(result.after.encode()).find("source/auth/secret")
    assert secret.attrib == {"uuid": ISCSI_SECRET_UUID}
    assert not plan(result.after, source={"auth": {"username": "libvirt", "secret": ISCSI_SECRET_UUID}}).changed


# ---- clear errors, before anything changes ----------------------------------------------------------------

def error_of(current, **kwargs):
    with pytest.raises(SpecError) as info:
        plan(current, **kwargs)
    return info.value


def test_unknown_type_is_refused_with_the_accepted_ones():
    error = error_of(None, type="zfs", path="/x")
    assert error.option == "type"
    assert "'zfs'" in str(error) and "dir, fs, netfs, logical, disk, iscsi, rbd" in str(error)


def test_new_pool_needs_a_type():
    error = error_of(None, path="/x")
    assert error.option == "type" and "does not exist" in str(error)


def test_type_cannot_change():
    error = error_of(DIR_POOL, type="fs", source={"devices": ["/dev/sdb"]})
    assert error.option == "type" and "is a dir pool" in str(error) and "state: absent" in str(error)


@pytest.mark.parametrize("pool_type,kwargs,option", [
    ("dir", {}, "path"),
    ("fs", {"path": "/x"}, "source.devices"),
    ("netfs", {"path": "/x", "source": {"hosts": ["nas"]}}, "source.dir"),
    ("iscsi", {"path": "/dev/disk/by-path", "source": {"devices": ["iqn.2013-06.com.example:t"]}}, "source.hosts"),
    ("rbd", {"source": {"name": "pool"}}, "source.hosts"),
    ("logical", {"source": {"devices": ["/dev/sdb"]}}, "source.name"),
])
def test_what_a_new_pool_needs(pool_type, kwargs, option):
    error = error_of(None, type=pool_type, **kwargs)
    assert error.option == option and "a %s pool needs it" % pool_type in str(error)


@pytest.mark.parametrize("pool_type,kwargs,option,words", [
    ("dir", {"path": "/x", "source": {"dir": "/export"}}, "source.dir", "a dir pool does not take it"),
    ("rbd", {"path": "/x", "source": {"name": "p", "hosts": ["m"]}}, "path", "a rbd pool does not take it"),
    ("fs", {"path": "/x", "source": {"devices": ["/dev/a", "/dev/b"]}}, "source.devices", "exactly one"),
    ("fs", {"path": "/x", "source": {"devices": ["/dev/a"], "format": "nfs"}}, "source.format", "ext4"),
    ("fs", {"path": "/x", "source": {"devices": ["sdb"]}}, "source.devices[0]", "absolute path"),
    ("iscsi", {"path": "/dev", "source": {"hosts": ["h"], "devices": ["/dev/sdb"]}}, "source.devices[0]", "IQN"),
    ("dir", {"path": "relative/dir"}, "path", "absolute path"),
    ("dir", {"path": "/x", "mode": "rwxr-x---"}, "mode", "octal"),
    ("dir", {"path": "/x", "owner": "no-such-user-kvmfleet"}, "owner", "no such user"),
    ("dir", {"path": "/x", "group": -5}, "group", "numeric id"),
    ("netfs", {"path": "/x", "source": {"hosts": [{"name": "nas", "port": 70000}], "dir": "/e"}},
     "source.hosts[0].port", "65535"),
    ("dir", {"path": ""}, "path", "non-empty"),
])
def test_bad_input_names_the_option_and_what_is_accepted(pool_type, kwargs, option, words):
    error = error_of(None, type=pool_type, **kwargs)
    assert error.option == option, str(error)
    assert words in str(error)
    assert str(error).startswith("option %s: got " % option)


def test_bad_input_on_an_existing_pool_uses_its_type():
    error = error_of(FS_POOL, source={"hosts": ["nas"]})
    assert error.option == "source.hosts" and "a fs pool does not take it" in str(error)


# ---- properties ---------------------------------------------------------------------------------------------

_paths = st.lists(st.sampled_from(["srv", "images", "a-b", "x_1", "vm"]), min_size=1, max_size=3).map(
    lambda parts: "/" + "/".join(parts) + ("/" if len(parts) % 2 else ""))


@settings(max_examples=60, deadline=None)
@given(path=_paths, mode=st.one_of(st.none(), st.integers(0, 0o7777)), owner=st.one_of(st.none(), st.integers(0, 70000)),
       second=st.one_of(st.none(), _paths), start=st.sampled_from([None, DIR_POOL]))
def test_dir_pool_properties(path, mode, owner, second, start):
    """Idempotent, schema-valid, UUID-preserving, and only the declared fields differ."""
    first = converges(start, type="dir", path=path, mode=mode, owner=owner)
    if second is not None:
        result = converges(first.after, path=second)
        assert {c.what for c in result.changes} <= {"path"}
        if start:
            assert etree.fromstring(result.after.encode()).findtext("uuid") == "e5d449e5-179b-47ee-9280-4745859177b2"


# ---- the runner, against libvirt's in-process test driver (test:///default, no daemon) ------------------------

def run(conn, check=False, **params):
    params.setdefault("name", "p-" + uuid.uuid4().hex[:8])
    return pool_apply.PoolRunner(conn, module_params(pool_spec.argument_spec(), **params), check).run()


def pool_names(conn):
    return {p.name() for p in conn.listAllStoragePools(0)}


def test_runner_check_mode_predicts_and_writes_nothing(conn, tmp_path):
    spec = dict(name="p-check", type="dir", path=str(tmp_path / "pool"), mode="0711", build=True, autostart=True)
    predicted = run(conn, check=True, **spec)
    assert "p-check" not in pool_names(conn)
    made = run(conn, **spec)
    assert (predicted["changed"], predicted["diff"], predicted["actions"]) == (made["changed"], made["diff"], made["actions"])
    assert made["actions"] == ["define", "build", "start", "autostart on"]
    pool = conn.storagePoolLookupByName("p-check")
    assert pool.isActive() and pool.autostart()
    uuid_before = pool.UUIDString()
    again = run(conn, **spec)
    assert again["changed"] is False and again["actions"] == [] and again["uuid"] == uuid_before
    stopped = run(conn, **{**spec, "state": "inactive"})
    assert stopped["actions"] == ["stop"] and not conn.storagePoolLookupByName("p-check").isActive()
    # a real change: redefined, same UUID
    changed = run(conn, **{**spec, "mode": "0750", "state": "inactive"})
    assert changed["changes"] == ["mode: 0711 -> 0750"] and changed["actions"] == ["redefine"]
    assert conn.storagePoolLookupByName("p-check").UUIDString() == uuid_before
    started = run(conn, **{**spec, "mode": "0750"})
    assert started["actions"] == ["build", "start"] and started["restart_required"] is False
    gone = run(conn, name="p-check", state="absent")
    assert gone["actions"] == ["stop", "undefine"] and gone["removed_volumes"] == [] and gone["removed_target"] is None
    assert "p-check" not in pool_names(conn)


def test_present_defines_and_leaves_the_running_state_as_it_is(conn, tmp_path):
    """state: present (community.libvirt's virt_pool's): defined, never started or stopped; the result's state says
    which it is. A definition change still applies, and a second run changes nothing."""
    spec = dict(name="p-present", type="dir", path=str(tmp_path / "pool"), build=True, state="present")
    predicted = run(conn, check=True, **spec)
    made = run(conn, **spec)
    assert (predicted["changed"], predicted["actions"]) == (made["changed"], made["actions"])
    assert made["actions"] == ["define", "build"] and made["state"] == "inactive"  # build: when it defines
    assert not conn.storagePoolLookupByName("p-present").isActive()
    assert run(conn, **spec)["changed"] is False
    redefined = run(conn, **{**spec, "mode": "0750"})  # a definition change applies; the pool stays stopped
    assert redefined["actions"] == ["redefine"] and redefined["state"] == "inactive"
    assert run(conn, **{**spec, "mode": "0750"})["changed"] is False
    assert run(conn, **{**spec, "mode": "0750", "state": "active"})["actions"] == ["build", "start"]
    kept = run(conn, **{**spec, "mode": "0750"})  # present on a running pool: left running
    assert kept["changed"] is False and kept["state"] == "active" and kept["actions"] == []
    assert conn.storagePoolLookupByName("p-present").isActive()
    run(conn, name="p-present", state="absent")


def test_runner_refuses_a_path_that_is_a_file_before_defining(conn, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(SpecError) as info:
        run(conn, name="p-file", type="dir", path=str(afile), build=True)
    assert info.value.option == "path" and "is not a directory" in str(info.value)
    with pytest.raises(SpecError, match="set build: true"):
        run(conn, name="p-file", type="dir", path=str(tmp_path / "missing"))
    assert "p-file" not in pool_names(conn)


def test_runner_absent_with_remove_storage_names_what_it_deleted(conn, tmp_path):
    run(conn, name="p-rm", type="dir", path=str(tmp_path), autostart=False)
    conn.storagePoolLookupByName("p-rm").createXML("<volume><name>a.img</name><capacity>1024</capacity></volume>", 0)
    kept = run(conn, check=True, name="p-rm", state="absent")
    assert kept["removed_volumes"] == [] and "p-rm" in pool_names(conn)
    predicted = run(conn, check=True, name="p-rm", state="absent", remove_storage=True)
    result = run(conn, name="p-rm", state="absent", remove_storage=True)
    assert result["removed_volumes"] == predicted["removed_volumes"] == [str(tmp_path / "a.img")]
    assert result["removed_target"] == str(tmp_path)
    assert result["actions"] == predicted["actions"] == ["stop", "delete storage", "undefine"]
    assert "p-rm" not in pool_names(conn)
    assert run(conn, name="p-rm", state="absent")["changed"] is False
