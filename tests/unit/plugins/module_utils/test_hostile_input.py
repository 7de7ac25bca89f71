"""Input a careless or hostile user would give, one test per class of defect (issue 9).

Every test here failed before its fix. The runners are driven on libvirt's in-process test driver
(test:///default), with the host paths they touch moved into pytest's tmp_path.
"""

from __future__ import annotations

import os
import stat
import uuid

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool import apply as pool_apply
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool import spec as pool_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import apply as volume_apply
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import model as volume_model
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import spec as volume_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import normalize, spec as domain_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import plan as planner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import options_of, converge_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import HostContext, gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network import model as _network_model
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import GUEST_NAME, confined_path, parse_disk_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import disk_uses_volume
from testdriver import module_params

POOL = "default-pool"


@pytest.fixture
def ignition_dir(tmp_path, monkeypatch):
    path = tmp_path / "ignition"
    monkeypatch.setattr(normalize, "IGNITION_DIR", str(path))
    return path


def domain(conn, check=False, **params):
    params.setdefault("virt_type", "qemu")
    for disk in params.get("disks") or []:
        disk.setdefault("device", "disk")
    given = module_params(domain_spec.argument_spec(), **params)
    host = gather_host(conn)
    return converge_guest(conn, host, normalize.normalize_guest(given, host), options_of(given), check)


def guest_name():
    return "g-" + uuid.uuid4().hex[:8]


IGNITION = {"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "core", "passwordHash": "$6$secret"}]}}


# ---- 1. a guest name reaches the filesystem only once it is checked ------------------------------------

@pytest.mark.parametrize("name", ["../../../../../tmp/x", "a/b", ".", "..", "x\ny", "", "g" * 201])
@pytest.mark.parametrize("check", [True, False])
def test_a_bad_guest_name_is_refused_before_any_file_is_written(conn, ignition_dir, tmp_path, name, check):
    with pytest.raises(SpecError) as info:
        domain(conn, check, name=name, memory=256, ignition=IGNITION)
    assert info.value.option == "name"
    assert not ignition_dir.exists() and not (tmp_path.parent / "x.ign").exists()


def test_ignition_files_are_confined_to_their_directory(tmp_path):
    directory = tmp_path / "ign"
    directory.mkdir()
    assert confined_path(str(directory), "g1.ign", "name") == str(directory / "g1.ign")
    os.symlink("/etc/passwd", directory / "g2.ign")  # planted: writing it must not follow it out
    with pytest.raises(SpecError, match="resolve outside"):
        confined_path(str(directory), "g2.ign", "name")
    for bad in ("../g.ign", "a/b.ign", ".."):
        with pytest.raises(SpecError):
            confined_path(str(directory), bad, "name")


def test_names_of_networks_pools_and_volumes_are_checked_too(conn):
    with pytest.raises(SpecError) as info:
        _network_model.normalize_spec({"name": "a/b"})
    assert info.value.option == "name"
    with pytest.raises(SpecError) as info:
        pool_apply.PoolRunner(conn, module_params(pool_spec.argument_spec(), name="..", type="dir", path="/x"), False).run()
    assert info.value.option == "name"
    with pytest.raises(SpecError) as info:
        volume_model.normalize_volume_spec({"name": "x\ty", "pool": POOL})
    assert info.value.option == "name"
    with pytest.raises(SpecError) as info:
        domain(conn, name=guest_name(), disks=[{"pool": POOL, "volume": "../../etc/x", "size": "1MiB"}])
    assert info.value.option == "disks[0].volume"
    with pytest.raises(SpecError) as info:
        domain(conn, name=guest_name(), disks=[{"path": "/var/lib/libvirt/images/../../../etc/x.img"}])
    assert info.value.option == "disks[0].path"
    with pytest.raises(SpecError) as info:
        domain(conn, name=guest_name(), cloud_init={"pool": POOL, "volume": "../seed.iso", "user_data": {}})
    assert info.value.option == "cloud_init.volume"
    assert GUEST_NAME.parse("web-01.example", "name") == "web-01.example"


# ---- 2. a failed create leaves nothing behind -----------------------------------------------------------

class RefusingDefine:
    """A connection whose defineXMLFlags fails, as libvirt does for a document its driver refuses."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def defineXMLFlags(self, xml, flags):  # noqa: N802  (libvirt's name)
        raise libvirt.libvirtError("XML error: refused for the test")


def test_a_refused_define_takes_back_the_ignition_file_and_the_volumes(conn, ignition_dir):
    name = guest_name()
    with pytest.raises(UserError) as info:
        domain(RefusingDefine(conn), name=name, memory=256, ignition=IGNITION,
               disks=[{"pool": POOL, "volume": name + ".qcow2", "size": "16MiB"}])
    assert "refused for the test" in str(info.value) and "taken back" in str(info.value)
    assert not (ignition_dir / (name + ".ign")).exists(), "the Ignition file (keys, password hashes) stays"
    assert name + ".qcow2" not in conn.storagePoolLookupByName(POOL).listVolumes()
    assert name not in [d.name() for d in conn.listAllDomains(0)]


def test_a_refused_define_puts_back_an_existing_ignition_file(conn, ignition_dir):
    name = guest_name()
    domain(conn, name=name, memory=256, ignition=IGNITION)
    path = ignition_dir / (name + ".ign")
    before = path.read_bytes()
    changed = dict(IGNITION, storage={"files": [{"path": "/etc/motd"}]})
    with pytest.raises(UserError):
        domain(RefusingDefine(conn), name=name, memory=512, ignition=changed)
    assert path.read_bytes() == before


# ---- 3. a secret never shows, old or new ------------------------------------------------------------------

def test_a_changed_graphics_password_shows_neither_value(conn):
    name = guest_name()
    domain(conn, name=name, memory=256, graphics=[{"type": "vnc", "password": "old-pw"}])
    for check in (True, False):
        result = domain(conn, check, name=name, memory=256, graphics=[{"type": "vnc", "password": "new-pw"}])
        text = repr(result)
        assert "old-pw" not in text and "new-pw" not in text
        assert "graphics vnc.password: <secret changed>" in result["changes"]
        assert "******** (changed)" in result["diff"]["after"]


def test_secret_changes_through_xml_edits_are_masked_too(fixture_text):
    ctx = HostContext()
    current = planner.plan_domain(fixture_text("domain-running-guest.xml"), normalize.normalize_guest(
        {"name": "guest1", "graphics": [{"type": "vnc", "password": "old-pw"}]}, ctx), ctx).after
    spec = normalize.normalize_guest({"name": "guest1", "xml_edits": [
        {"xpath": "/domain/devices/graphics/@passwd", "value": "new-pw"}]}, ctx)
    plan = planner.plan_domain(current, spec, ctx)
    described = [c.describe() for c in plan.changes]
    assert described == ["xml_edits: /domain/devices/graphics/@passwd: <secret changed>"]
    assert "old-pw" not in repr(plan.changes) and "old-pw" not in repr(plan.diff())


# ---- 4. owner and mode never follow a symlink -----------------------------------------------------------

def test_volume_permissions_refuse_a_symlink_and_leave_its_target_alone(tmp_path):
    target = tmp_path / "shadow"
    target.write_text("secret")
    target.chmod(0o600)
    link = tmp_path / "vol.qcow2"
    os.symlink(target, link)
    with pytest.raises(UserError, match="symlink"):
        volume_apply.set_permissions(str(link), {"mode": 0o644, "owner": 0})
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    plain = tmp_path / "plain.qcow2"
    plain.write_text("")
    volume_apply.set_permissions(str(plain), {"mode": 0o640})
    assert stat.S_IMODE(plain.stat().st_mode) == 0o640


def test_pool_build_refuses_a_symlinked_target_directory(conn, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    params = module_params(pool_spec.argument_spec(), name="p-" + uuid.uuid4().hex[:6], type="dir",
                           path=str(tmp_path / "link"), mode="0777", build=True)
    with pytest.raises(SpecError, match="symlink"):
        pool_apply.PoolRunner(conn, params, False).run()


# ---- 5. check mode refuses what the real run refuses ----------------------------------------------------

@pytest.mark.parametrize("params, option", [
    ({"memory": 0}, "memory"),
    ({"memory": "512KiB"}, "memory"),
    ({"current_memory": 0, "memory": 256}, "current_memory"),
    ({"vcpus": 99999999999}, "vcpus"),
    ({"interfaces": [{"network": "a/b", "model": "virtio"}]}, "interfaces[0].network"),
])
def test_values_libvirt_refuses_fail_in_the_model(params, option):
    with pytest.raises(SpecError) as info:
        normalize.normalize_guest(dict({"name": "g1"}, **params), HostContext())
    assert info.value.option == option


# ---- 6. a value the schema refuses names its option ---------------------------------------------------

@pytest.mark.parametrize("params, option", [
    ({"disks": [{"path": "/var/lib/libvirt/images/a.img", "device": "disk", "serial": "a<b>"}]}, "disks[0].serial"),
    ({"interfaces": [{"network": "default", "model": "virtio'/><x"}]}, "interfaces[0].model"),
    ({"title": "two\nlines"}, "title"),
    ({"boot": {"kernel": "relative/vmlinuz"}}, "boot.kernel"),
    ({"cpu": {"features": ["x2apic<"]}}, "cpu.features[0].name"),
    ({"cputune": {"vcpupin": [{"vcpu": 0, "cpuset": "0-1;rm"}]}}, "cputune.vcpupin[0].cpuset"),
    ({"graphics": [{"type": "vnc", "listen": "<script>"}]}, "graphics[0].listen"),
    ({"disks": [{"path": "/x.img", "device": "disk", "dev": "vd<a"}]}, "disks[0].dev"),
])
def test_schema_refusals_name_the_option(params, option):
    with pytest.raises(SpecError) as info:
        normalize.normalize_guest(dict({"name": "g1"}, **params), HostContext())
    assert info.value.option == option, str(info.value)


def test_network_schema_refusals_name_the_option():
    with pytest.raises(SpecError) as info:
        _network_model.normalize_spec({"name": "n1", "dns_hosts": [{"ip": "10.0.0.5", "hostnames": ["ok", "<b>"]}]})
    assert info.value.option == "dns_hosts[0].hostnames[1]"
    with pytest.raises(SpecError) as info:
        _network_model.normalize_spec({"name": "n1", "domain": "lab<"})
    assert info.value.option == "domain"


# ---- 7. remove_storage keeps what another guest uses -----------------------------------------------------

def test_disk_uses_volume_by_path_or_by_pool_and_name():
    xml = ("<domain><devices><disk type='volume'><source pool='p' volume='v'/></disk>"
           "<disk type='file'><source file='/images/a.qcow2'/></disk></devices></domain>")
    assert disk_uses_volume(xml, "/images/a.qcow2")
    assert disk_uses_volume(xml, "/other/v", "p", "v")
    assert not disk_uses_volume(xml, "/images/b.qcow2", "p", "w")


def test_remove_storage_refuses_a_disk_another_guest_uses(conn):
    first, second = guest_name(), guest_name()
    shared = [{"pool": POOL, "volume": first + "-shared.raw", "size": "8MiB", "format": "raw", "shareable": True}]
    domain(conn, name=first, memory=256, disks=[dict(d) for d in shared])
    domain(conn, name=second, memory=256, disks=[dict(d) for d in shared])
    for check in (True, False):
        with pytest.raises(UserError, match="also used by guest\\(s\\) %s" % second):
            domain(conn, check, name=first, state="absent", remove_storage=True)
    assert first in [d.name() for d in conn.listAllDomains(0)]
    assert first + "-shared.raw" in conn.storagePoolLookupByName(POOL).listVolumes()
    with pytest.raises(UserError, match="a disk of guest"):
        params = module_params(volume_spec.argument_spec(), pool=POOL, name=first + "-shared.raw", state="absent")
        volume_apply.VolumeRunner(conn, params, False).run()
    # (check mode: the test driver does not take the NVRAM flag of a real undefine)
    removed = domain(conn, True, name=first, state="absent", remove_storage=True, remove_shared_storage=True)
    assert removed["removed_volumes"] == ["/default-pool/%s-shared.raw" % first]


# ---- 8. pool permissions are the directory's: converged, shown, never through a link ----------------------

def test_pool_mode_on_an_existing_directory_is_shown_and_converged(conn, tmp_path):
    existing = tmp_path / "images"
    existing.mkdir()
    existing.chmod(0o700)
    params = dict(name="p-" + uuid.uuid4().hex[:6], type="dir", path=str(existing), mode="0750", build=True)
    predicted = pool_apply.PoolRunner(conn, module_params(pool_spec.argument_spec(), **params), True).run()
    assert stat.S_IMODE(existing.stat().st_mode) == 0o700, "check mode changed the directory"
    made = pool_apply.PoolRunner(conn, module_params(pool_spec.argument_spec(), **params), False).run()
    assert predicted["actions"] == made["actions"]
    assert "set mode of %s to 0750" % existing in made["actions"]
    assert stat.S_IMODE(existing.stat().st_mode) == 0o750


# ---- sizes: one rule for every disk size -----------------------------------------------------------------

@pytest.mark.parametrize("value", [20, "20", " 20 ", 1.5])
def test_disk_sizes_need_their_unit(value):
    with pytest.raises(SpecError, match="needs its unit"):
        parse_disk_size(value, "disks[0].size")


def test_disk_sizes_with_a_unit():
    assert parse_disk_size("20GiB", "size") == 20 * 2 ** 30
    assert parse_disk_size("512 MiB", "size") == 512 * 2 ** 20
    assert parse_disk_size("10G", "size") == 10 * 2 ** 30
    assert parse_disk_size("1073741824B", "size") == 2 ** 30
