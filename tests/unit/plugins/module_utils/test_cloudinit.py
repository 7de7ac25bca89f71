"""cloud-init seeds, Ignition configs and base images in the guest model: pure, no daemon."""

from __future__ import annotations

import io

import pycdlib
import pytest
import yaml
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit import model as ci
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import normalize, readback, table
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import plan as planner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import HostContext
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

SCHEMA = etree.RelaxNG(file="/usr/share/libvirt/schemas/domain.rng")
FIXTURE = "domain-running-guest.xml"
NS = {"k": table.METADATA_NS}
SECRET = "s3cr3t-Pa55w0rd-4711"


def ctx():
    return HostContext({"pc": "pc-i440fx-7.2"})


def params(**kwargs):
    base = {"name": "guest1"}
    for disk in kwargs.get("disks") or []:
        disk.setdefault("device", "disk")
    base.update(kwargs)
    return base


def plan(current, **kwargs):
    context = ctx()
    return planner.plan_domain(current, normalize.normalize_guest(params(**kwargs), context), context)


def seed(**kwargs):
    value = {"pool": "default", "user_data": {"users": [{"name": "admin", "passwd": SECRET}], "packages": ["vim"]}}
    value.update(kwargs)
    return value


def valid(xml):
    assert SCHEMA.validate(etree.fromstring(xml.encode())), SCHEMA.error_log.last_error
    return etree.fromstring(xml.encode())


def iso_files(data):
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    files = {}
    for child in iso.list_children(rr_path="/"):
        if child.is_file():
            out = io.BytesIO()
            name = child.rock_ridge.name().decode()
            iso.get_file_from_iso_fp(out, rr_path="/" + name)
            files[name] = out.getvalue().decode()
    label = iso.pvd.volume_identifier.decode().rstrip()
    iso.close()
    return label, files


# ---- rendering ----------------------------------------------------------------------------------------

def test_user_data_dict_is_rendered_as_cloud_config():
    text = ci.render_user_data({"packages": ["vim"], "runcmd": [["true"]]}, "user_data")
    assert text.startswith("#cloud-config\n")
    assert yaml.safe_load(text) == {"packages": ["vim"], "runcmd": [["true"]]}


@pytest.mark.parametrize("text", ["#cloud-config\nhostname: a\n", "#!/bin/sh\necho hi", "#include\nhttp://x/y"])
def test_user_data_strings_cloud_init_knows_pass_through(text):
    assert ci.render_user_data(text, "user_data").rstrip("\n") == text.rstrip("\n")


def test_invalid_yaml_user_data_names_the_option_and_hides_the_value():
    bad = "#cloud-config\npassword: %s\nusers: [unclosed\n" % SECRET
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(cloud_init=seed(user_data=bad)), ctx())
    message = str(err.value)
    assert err.value.option == "cloud_init.user_data"
    assert "valid YAML" in message and "line" in message and "hidden" in message
    assert SECRET not in message


@pytest.mark.parametrize("value", ["just text", "#cloud-config\n- a list\n", 42])
def test_user_data_of_an_unknown_kind_is_refused(value):
    with pytest.raises(SpecError) as err:
        ci.render_user_data(value, "cloud_init.user_data")
    assert err.value.option == "cloud_init.user_data"
    assert "#cloud-config" in str(err.value)


def test_network_config_must_be_version_2():
    assert yaml.safe_load(ci.render_network_config({"version": 2, "ethernets": {"eth0": {"dhcp4": True}}}, "n"))
    assert ci.render_network_config("network:\n  version: 2\n", "n")
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(cloud_init=seed(network_config={"version": 1, "config": []})), ctx())
    assert err.value.option == "cloud_init.network_config.version" and "version 2" in str(err.value)
    with pytest.raises(SpecError):
        ci.render_network_config("[not, a, mapping]", "n")


def test_ignition_must_be_json_with_a_version():
    text, digest = ci.normalize_ignition({"ignition": {"version": "3.4.0"}})
    assert text == '{"ignition":{"version":"3.4.0"}}\n' and digest.startswith("sha256:")
    assert ci.normalize_ignition('{"ignition": {"version": "3.4.0"}}')[1] == digest
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(ignition='{"ignition": {"version": "3.4.0", "x": "%s"' % SECRET), ctx())
    assert err.value.option == "ignition" and "not JSON" in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(SpecError) as err:
        ci.normalize_ignition({"passwd": {}})
    assert err.value.option == "ignition.ignition.version"


# ---- hash and ISO -------------------------------------------------------------------------------------

def test_content_hash_is_stable_and_follows_every_part():
    base = ci.normalize_cloud_init(seed(), guest_name="g")
    assert ci.normalize_cloud_init(seed(), guest_name="g")["hash"] == base["hash"]
    for change in ({"user_data": {"packages": ["vim", "git"]}}, {"meta_data": {"local-hostname": "other"}},
                   {"network_config": {"version": 2}}, {"vendor_data": "#cloud-config\n{}\n"},
                   {"meta_data": {"instance-id": "fixed"}}):
        assert ci.normalize_cloud_init(seed(**change), guest_name="g")["hash"] != base["hash"], change
    # where the seed lives is not content
    assert ci.normalize_cloud_init(seed(volume="x.iso", target="sdc"), guest_name="g")["hash"] == base["hash"]


def test_seed_iso_is_deterministic_nocloud():
    spec = ci.normalize_cloud_init(seed(network_config={"version": 2}), guest_name="web01")
    files = ci.seed_files(spec, ci.instance_id_for("A360092A-0E62-4DA8-9572-85499AD6CFE1"))
    first = ci.build_seed_iso(files, spec["hash"])
    assert ci.build_seed_iso(files, spec["hash"]) == first
    label, content = iso_files(first)
    assert label == "cidata"
    assert sorted(content) == ["meta-data", "network-config", "user-data"]
    assert yaml.safe_load(content["meta-data"]) == {"instance-id": "iid-a360092a-0e62-4da8-9572-85499ad6cfe1",
                                                    "local-hostname": "web01"}
    assert yaml.safe_load(content["user-data"])["users"][0]["passwd"] == SECRET
    pvd_label, stored = ci.parse_pvd(first[ci.PVD_OFFSET:ci.PVD_OFFSET + ci.PVD_LENGTH])
    assert pvd_label == "cidata" and ci.same_seed_hash(stored, spec["hash"])
    assert not ci.same_seed_hash(stored, ci.normalize_cloud_init(seed(), guest_name="x")["hash"])
    assert ci.parse_pvd(b"\0" * 2048) == (None, None)


# ---- the guest model ----------------------------------------------------------------------------------

def test_seed_cdrom_is_added_with_its_hash_and_converges(fixture_text):
    xml = planner.plan_domain(fixture_text(FIXTURE), normalize.normalize_guest(params(), ctx()), ctx()).after
    first = plan(xml, cloud_init=seed())
    root = valid(first.after)
    spec = normalize.normalize_guest(params(cloud_init=seed()), ctx())
    [cdrom] = [d for d in root.iterfind("devices/disk") if d.find("source") is not None
               and d.find("source").get("volume") == "guest1-cidata.iso"]
    assert cdrom.get("device") == "cdrom" and cdrom.find("readonly") is not None
    assert cdrom.find("target").get("bus") == "sata" and cdrom.find("driver").get("type") == "raw"
    taken = {t.get("dev") for t in etree.fromstring(xml.encode()).iterfind("devices/disk/target")}
    assert cdrom.find("target").get("dev") not in taken  # the next free sdX, not the fixture's cdrom
    assert root.xpath("metadata/k:guest/k:cloud-init/@hash", namespaces=NS) == [spec["cloud_init"]["hash"]]
    assert [op.op for op in first.device_ops] == ["attach"]
    again = plan(first.after, cloud_init=seed())
    assert not again.changed, again.changes


def test_changed_user_data_changes_only_the_hash_live_and_never_shows_it(fixture_text):
    first = plan(fixture_text(FIXTURE), cloud_init=seed())
    changed = plan(first.after, cloud_init=seed(user_data={"users": [{"name": "admin", "passwd": SECRET + "2"}]}))
    assert [c.what for c in changed.changes] == ["cloud_init"]
    assert changed.changes[0].live == table.LIVE_SEED and not changed.device_ops
    before, after = etree.fromstring(first.after.encode()), etree.fromstring(changed.after.encode())
    assert [d.find("target").get("dev") for d in before.iterfind("devices/disk")] == \
        [d.find("target").get("dev") for d in after.iterfind("devices/disk")]
    diff = changed.diff()
    assert SECRET not in str(diff) and SECRET not in str([c.describe() for c in changed.changes])
    assert "sha256:" in diff["after"] and changed.changes[0].describe().startswith("cloud_init: content sha256:")


def test_seed_keeps_its_target_with_disks_declared(fixture_text):
    disks = [{"path": "/var/lib/libvirt/images/x.img", "format": "raw"}]
    first = plan(fixture_text(FIXTURE), disks=disks, cloud_init=seed())
    root = valid(first.after)
    targets = [t.get("dev") for t in root.iterfind("devices/disk/target")]
    assert targets == ["vda", "sdb"]  # the fixture's cdrom sda is not declared: removed; the seed keeps off it
    assert not plan(first.after, disks=disks, cloud_init=seed()).changed
    explicit = plan(fixture_text(FIXTURE), cloud_init=seed(target="sdc"))
    assert "sdc" in [t.get("dev") for t in valid(explicit.after).iterfind("devices/disk/target")]


def test_seed_target_and_volume_must_not_clash_with_disks():
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(disks=[{"path": "/x.img"}], cloud_init=seed(target="vda")), ctx())
    assert err.value.option == "cloud_init.target"
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(disks=[{"pool": "default", "volume": "guest1-cidata.iso"}], cloud_init=seed()),
                                  ctx())
    assert err.value.option == "cloud_init.volume"


def test_ignition_fw_cfg_entry_and_hash(fixture_text):
    config = {"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "core", "passwordHash": SECRET}]}}
    first = plan(fixture_text(FIXTURE), ignition=config)
    root = valid(first.after)
    entry = root.find("sysinfo[@type='fwcfg']/entry")
    assert entry.get("name") == "opt/com.coreos/config"
    assert entry.get("file") == "/var/lib/libvirt/kvmfleet/ignition/guest1.ign"
    assert not plan(first.after, ignition=config).changed
    config["passwd"]["users"][0]["passwordHash"] = SECRET + "x"
    changed = plan(first.after, ignition=config)
    assert [c.what for c in changed.changes] == ["ignition"] and changed.changes[0].live is None
    assert SECRET not in str(changed.diff())


def test_backing_is_for_volume_disks_and_qcow2():
    spec = normalize.normalize_guest(params(disks=[{"pool": "p", "volume": "a.qcow2", "backing": "base.qcow2"}]), ctx())
    assert spec["disks"][0]["backing"] == "base.qcow2"
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(disks=[{"pool": "p", "volume": "a", "backing": "b", "format": "raw"}]), ctx())
    assert err.value.option == "disks[0].format"
    with pytest.raises(SpecError) as err:
        normalize.normalize_guest(params(disks=[{"block": "/dev/sdz", "backing": "b"}]), ctx())
    assert err.value.option == "disks[0].backing"


def others(root):
    """The guest's disks other than the seed, as a whole disk list declares them."""
    disks = []
    for disk in root.iterfind("devices/disk"):
        source = disk.find("source")
        if source is not None and source.get("volume"):
            continue  # the seed
        item = {"dev": disk.find("target").get("dev"), "device": disk.get("device")}
        if source is not None and source.get("file"):
            item["path"] = source.get("file")
        disks.append(item)
    return disks


def test_a_seed_left_out_of_a_whole_disk_list_is_detached_and_its_metadata_goes(fixture_text):
    seeded = plan(fixture_text(FIXTURE), cloud_init=seed()).after
    dev = etree.fromstring(seeded.encode()).xpath("metadata/k:guest/k:cloud-init/@dev", namespaces=NS)[0]
    disks = others(etree.fromstring(seeded.encode()))
    kept = plan(seeded, memory="1GiB")  # part of the guest declared: the seed stays
    assert kept.dropped_seed is None and valid(kept.after).xpath("metadata/k:guest/k:cloud-init", namespaces=NS)
    dropped = plan(seeded, disks=disks)
    root = valid(dropped.after)
    assert dev not in [t.get("dev") for t in root.iterfind("devices/disk/target")]
    assert not root.xpath("metadata/k:guest/k:cloud-init", namespaces=NS)
    assert dropped.dropped_seed == ("volume", (("pool", "default"), ("volume", "guest1-cidata.iso")))
    assert [(op.op, op.key) for op in dropped.device_ops] == [("detach", dev)]
    assert "cloud_init: content sha256:" in dropped.changes[0].describe()
    assert not plan(dropped.after, disks=disks).changed
    read_back = readback.read_spec(seeded)["disks"]  # the seed is one of the guest's disks there: it stays
    assert not plan(seeded, disks=read_back).changed


def test_a_seed_made_before_its_dev_was_recorded_is_found_by_its_volume(fixture_text):
    seeded = etree.fromstring(plan(fixture_text(FIXTURE), cloud_init=seed()).after.encode())
    node = seeded.xpath("metadata/k:guest/k:cloud-init", namespaces=NS)[0]
    del node.attrib["dev"]
    disks = others(seeded)
    dropped = plan(etree.tostring(seeded, encoding="unicode"), disks=disks)
    assert dropped.dropped_seed is not None and [op.op for op in dropped.device_ops] == ["detach"]
