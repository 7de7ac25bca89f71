"""The volume plan and the storage helpers over plain data: no daemon."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _storage as storage
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import model as volume
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import table as volume_table
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

SCHEMA = etree.RelaxNG(file="/usr/share/libvirt/schemas/storagevol.rng")
SHA256_EMPTY = hashlib.sha256(b"").hexdigest()

# libvirt 9.0's XMLDesc of a qcow2 overlay in a dir pool.
OVERLAY_XML = """<volume type='file'>
  <name>ov.qcow2</name>
  <key>/srv/images/ov.qcow2</key>
  <capacity unit='bytes'>33554432</capacity>
  <allocation unit='bytes'>200704</allocation>
  <physical unit='bytes'>196616</physical>
  <target>
    <path>/srv/images/ov.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0600</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
    <timestamps>
      <atime>1795523238.933678109</atime>
      <mtime>1795523238.930371888</mtime>
      <ctime>1795523238.930816191</ctime>
      <btime>0</btime>
    </timestamps>
  </target>
  <backingStore>
    <path>/srv/images/base.qcow2</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0640</mode>
      <owner>0</owner>
      <group>0</group>
    </permissions>
  </backingStore>
</volume>
"""


def params(**kwargs):
    base = {"name": "v1.qcow2", "pool": "p1", "size": None, "format": None, "backing": None, "clone": None,
            "clone_pool": None, "src": None, "url": None, "checksum": None, "mode": None, "owner": None, "group": None}
    base.update(kwargs)
    return base


def spec(**kwargs):
    return volume.normalize_volume_spec(params(**kwargs))


def facts(capacity=32 * 2 ** 20, fmt="qcow2", backing=None, path="/srv/images/v1.qcow2", **perms):
    result = {"name": path.rsplit("/", 1)[-1], "type": "file", "path": path, "capacity": capacity, "format": fmt,
              "backing": backing, "backing_format": "qcow2" if backing else None, "mode": 0o600, "owner": 0, "group": 0}
    result.update(perms)
    return result


def error_of(fn, *args, **kwargs):
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    return info.value


# ---- the spec ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,option,words", [
    ({"name": "a/b"}, "name", "without '/'"),
    ({"name": ".."}, "name", "not '.' or '..'"),
    ({"name": "x\ny"}, "name", "control characters"),
    ({"pool": "../p"}, "pool", "without '/'"),
    ({"size": "0MiB"}, "size", "above zero"),
    ({"size": "12 parsecs"}, "size", "512MiB"),
    ({"size": -1}, "size", "with its unit"),
    ({"size": 64}, "size", "needs its unit, such as 64GiB or 64MiB"),
    ({"size": "64"}, "size", "needs its unit"),
    ({"format": "vmdk"}, "format", "qcow2, raw"),
    ({"backing": "base.qcow2", "format": "raw"}, "format", "qcow2 overlay"),
    ({"backing": "b", "clone": "c"}, "clone", "one of backing, clone, src or url"),
    ({"url": "https://example.com/x.qcow2"}, "checksum", "sha256:"),
    ({"url": "gopher://example.com/x", "checksum": "sha256:" + SHA256_EMPTY}, "url", "http://"),
    ({"src": "relative.img"}, "src", "absolute path"),
    ({"clone_pool": "other"}, "clone_pool", "give clone too"),
    ({"src": "/x.img", "checksum": "sha256:abc"}, "checksum", "64 hex digits"),
    ({"src": "/x.img", "checksum": "crc32:00000000"}, "checksum", "sha256"),
    ({"src": "/x.img", "checksum": SHA256_EMPTY}, "checksum", "ALGORITHM:HEX"),
    ({"size": "10MiB", "checksum": "sha256:" + SHA256_EMPTY}, "checksum", "give one of them"),
    ({"mode": "rw-r--r--"}, "mode", "octal"),
    ({"owner": "no-such-user-kvmfleet"}, "owner", "no such user"),
])
def test_bad_input_names_the_option_and_what_is_accepted(kwargs, option, words):
    error = error_of(spec, **kwargs)
    assert error.option == option, str(error)
    assert words in str(error)
    assert str(error).startswith("option %s: got " % option)


def test_spec_normalises_sizes_checksums_and_permissions():
    result = spec(size="2GiB", src="/srv/x.img", checksum="SHA256:" + SHA256_EMPTY.upper(), mode="0640", owner="root",
                  group=0)
    assert result["size"] == 2 * 2 ** 30
    assert result["checksum"] == ("sha256", SHA256_EMPTY)
    assert (result["mode"], result["owner"], result["group"]) == (0o640, 0, 0)
    assert spec(size="64 MiB")["size"] == 64 * 2 ** 20
    assert spec(size="1G")["size"] == 2 ** 30


# ---- planning a new volume ----------------------------------------------------------------------------------

def test_new_empty_volume_defaults_to_qcow2_in_file_pools_only():
    plan = volume.plan_volume(None, spec(size="64MiB"), pool_kind="dir")
    assert (plan.create, plan.capacity, plan.format, plan.grow_to) == ("empty", 64 * 2 ** 20, "qcow2", None)
    assert plan.diff()["before"] == {"state": "absent"}
    assert plan.diff()["after"] == {"state": "present", "capacity": "64MiB", "format": "qcow2", "backing": None}
    assert volume.plan_volume(None, spec(size="64MiB"), pool_kind="logical").format is None
    error = error_of(volume.plan_volume, None, spec(size="64MiB", format="qcow2"), pool_kind="logical")
    assert error.option == "format" and "logical pool" in str(error)


def test_new_volume_needs_a_size_or_a_source():
    error = error_of(volume.plan_volume, None, spec(), pool_kind="dir")
    assert error.option == "size" and "give size" in str(error)


def test_overlay_takes_the_base_size_and_may_be_larger_only():
    base = facts(capacity=40 * 2 ** 20, path="/srv/images/base.qcow2")
    plan = volume.plan_volume(None, spec(backing="base.qcow2"), base)
    assert (plan.create, plan.capacity, plan.format) == ("overlay", 40 * 2 ** 20, "qcow2")
    assert plan.backing == ("/srv/images/base.qcow2", "qcow2")
    assert volume.plan_volume(None, spec(backing="base.qcow2", size="1GiB"), base).capacity == 2 ** 30
    error = error_of(volume.plan_volume, None, spec(backing="base.qcow2", size="16MiB"), base)
    assert error.option == "size" and "40MiB (41943040 bytes)" in str(error) and "16MiB (16777216 bytes)" in str(error)
    iso_base = facts(fmt="iso", path="/srv/images/seed.iso")
    assert volume.plan_volume(None, spec(backing="seed.iso"), iso_base).backing == ("/srv/images/seed.iso", "raw")


def test_clone_keeps_the_origin_format_and_grows_after_the_copy():
    origin = facts(capacity=32 * 2 ** 20, fmt="raw", path="/srv/golden.raw")
    plan = volume.plan_volume(None, spec(clone="golden.raw", size="48MiB"), origin)
    assert (plan.create, plan.capacity, plan.format, plan.grow_to) == ("clone", 32 * 2 ** 20, "raw", 48 * 2 ** 20)
    assert plan.actions == ["clone v1.qcow2 from /srv/golden.raw", "grow v1.qcow2 to 48MiB"]
    assert volume.plan_volume(None, spec(clone="golden.raw", format="qcow2"), origin).format == "qcow2"
    assert error_of(volume.plan_volume, None, spec(clone="golden.raw", size="16MiB"), origin).option == "size"


def test_import_is_what_the_image_is():
    image = {"format": "qcow2", "capacity": 40 * 2 ** 20}
    plan = volume.plan_volume(None, spec(src="/tmp/i.qcow2"), image)
    assert (plan.create, plan.format, plan.capacity) == ("import", "qcow2", 40 * 2 ** 20)
    error = error_of(volume.plan_volume, None, spec(src="/tmp/i.qcow2", format="raw"), image)
    assert error.option == "format" and "is qcow2, not raw" in str(error)
    error = error_of(volume.plan_volume, None, spec(src="/tmp/i.vmdk"), {"format": "vmdk", "capacity": None})
    assert error.option == "src" and "qemu-img" in str(error)
    url = volume.plan_volume(None, spec(url="http://127.0.0.1/x", checksum="sha256:" + SHA256_EMPTY), {})
    assert url.capacity is None and url.diff()["after"]["capacity"] == "(the origin's size)"


# ---- planning an existing volume -----------------------------------------------------------------------------

def test_an_unchanged_spec_is_a_no_op():
    plan = volume.plan_volume(facts(), spec(size="32MiB", format="qcow2", mode="0600", owner=0, group="root"))
    assert not plan.changed and plan.diff() == {} and plan.actions == []
    assert not volume.plan_volume(facts(fmt="iso"), spec(format="raw")).changed  # libvirt's label for raw ISO data


def test_grow_shows_only_what_changes():
    plan = volume.plan_volume(facts(), spec(size="64MiB"))
    assert plan.grow_to == 64 * 2 ** 20 and not plan.create
    assert plan.diff()["before"] == {"capacity": "32MiB"} and plan.diff()["after"] == {"capacity": "64MiB"}


def test_shrink_is_refused_with_current_and_requested_sizes():
    error = error_of(volume.plan_volume, facts(), spec(size="16MiB"))
    assert error.option == "size"
    assert "32MiB (33554432 bytes)" in str(error) and "16MiB (16777216 bytes)" in str(error)
    assert "shrinking is refused" in str(error)


def test_format_and_backing_cannot_change():
    error = error_of(volume.plan_volume, facts(), spec(format="raw"))
    assert error.option == "format" and "is qcow2" in str(error) and "'raw'" in str(error)
    current = facts(backing="/srv/images/base.qcow2")
    same = dict(spec(backing="base.qcow2"), backing_path="/srv/images/base.qcow2")
    assert not volume.plan_volume(current, same).changed
    other = dict(spec(backing="other.qcow2"), backing_path="/srv/images/other.qcow2")
    error = error_of(volume.plan_volume, current, other)
    assert error.option == "backing" and "/srv/images/base.qcow2" in str(error)
    error = error_of(volume.plan_volume, facts(), other)
    assert "no backing image" in str(error)


def test_permissions_are_compared_normalised():
    plan = volume.plan_volume(facts(), spec(mode=0o644, owner="0"))
    assert plan.permissions == {"mode": 0o644}
    assert plan.diff() == {"before": {"mode": "0600"}, "after": {"mode": "0644"},
                           "before_header": "volume v1.qcow2", "after_header": "volume v1.qcow2"}


def test_volume_facts_from_libvirts_xml():
    result = volume_table.volume_facts(OVERLAY_XML)
    assert result == {"name": "ov.qcow2", "type": "file", "path": "/srv/images/ov.qcow2", "capacity": 33554432,
                      "format": "qcow2", "backing": "/srv/images/base.qcow2", "backing_format": "qcow2",
                      "mode": 0o600, "owner": 0, "group": 0}
    assert volume_table.volume_facts("<volume><name>x</name><capacity unit='KiB'>4</capacity><target/></volume>")[
        "capacity"] == 4096


# ---- volume XML, images, checksums --------------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(name=st.from_regex(r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True), capacity=st.integers(1, 2 ** 50),
       fmt=st.sampled_from([None, "qcow2", "raw"]), backing=st.booleans(),
       perms=st.fixed_dictionaries({}, optional={"mode": st.integers(0, 0o7777), "owner": st.integers(0, 2 ** 31),
                                                 "group": st.integers(0, 2 ** 31)}))
def test_every_volume_xml_validates(name, capacity, fmt, backing, perms):
    xml = storage.volume_xml(name, capacity, fmt, ("/srv/base.qcow2", "qcow2") if backing else None, perms)
    assert SCHEMA.validate(etree.fromstring(xml.encode())), SCHEMA.error_log.last_error
    back = volume_table.volume_facts(xml)
    assert (back["name"], back["capacity"], back["format"]) == (name, capacity, fmt)
    assert {k: back[k] for k in perms} == perms


def test_sniff_image(tmp_path):
    qcow2 = tmp_path / "a.qcow2"
    qcow2.write_bytes(b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", 5 * 2 ** 30) + b"\0" * 100)
    assert storage.sniff_image(str(qcow2)) == ("qcow2", 5 * 2 ** 30)
    raw = tmp_path / "a.raw"
    raw.write_bytes(b"\0" * 4096)
    assert storage.sniff_image(str(raw)) == ("raw", 4096)
    vmdk = tmp_path / "a.vmdk"
    vmdk.write_bytes(b"KDMV" + b"\0" * 200)
    assert storage.sniff_image(str(vmdk)) == ("vmdk", None)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert storage.sniff_image(str(empty)) == ("raw", 0)


def test_file_digest_and_checksum(tmp_path):
    path = tmp_path / "f"
    data = b"kvmfleet" * 300000  # more than one chunk
    path.write_bytes(data)
    assert storage.file_digest(str(path), "sha256") == hashlib.sha256(data).hexdigest()
    assert storage.parse_checksum("sha512:" + "A" * 128) == ("sha512", "a" * 128)


@pytest.mark.parametrize("value,expected", [("0755", 0o755), ("755", 0o755), (0o640, 0o640), ("1777", 0o1777)])
def test_mode_codec(value, expected):
    assert storage.Mode().parse(value, "mode") == expected
    assert storage.Mode().dump(expected) == "%04o" % expected


@pytest.mark.parametrize("value", ["0800", "12", 0o10000, True, "u+rw"])
def test_mode_codec_refuses(value):
    assert error_of(storage.Mode().parse, value, "mode").option == "mode"


def test_local_uris():
    assert storage.is_local_uri("qemu:///system") and storage.is_local_uri("qemu+unix:///system")
    assert storage.is_local_uri("test:///default")
    assert not storage.is_local_uri("qemu+ssh://root@hv01.example.com/system")
