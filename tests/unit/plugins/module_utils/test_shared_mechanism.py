"""The mechanism every resource shares (docs/architecture.md), and proof that its tests would see it break.

Each scenario below passes as the code is. Each deliberate breakage of the shared mechanism - the rollback
skipped, a warning dropped (in a runner, or on its way out of the module), a result code renamed, placement
blind to a guest's private storage - is applied in turn, and the scenarios that guard that part must then fail.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit import spec as seed_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.apply import SeedVolumeRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import spec as domain_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import converge_guest, options_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet import spec as fleet_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.apply import converge_fleet
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host import tuning
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import Undo
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import balance, placement
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool import spec as pool_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.apply import PoolRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import CODES, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner, run_guarded
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume import spec as volume_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.apply import VolumeRunner
from testdriver import Exited, ModuleDouble, module_params

REPO = Path(__file__).resolve().parents[4]
POOL = "default-pool"  # the test driver's own dir pool
FLEET = Path(__file__).parent / "fixtures" / "placement" / "fleet.json"


def unique(what):
    return "%s-%s" % (what, uuid.uuid4().hex[:8])


class Refusing:
    """A connection (or pool) that passes every call through but one, which fails as libvirt fails."""

    def __init__(self, inner, refused, wrap=None):
        self._inner, self._refused, self._wrap = inner, refused, wrap or {}

    def __getattr__(self, name):
        if name == self._refused:
            def refuse(*_args):
                raise libvirt.libvirtError("refused for the test")
            return refuse
        attr = getattr(self._inner, name)
        if name in self._wrap:
            return lambda *args: self._wrap[name](attr(*args))
        return attr


# ---- rollback: what a failed run made is taken back --------------------------------------------------------

def scenario_guest_rollback(conn, _tmp_path):
    """A refused define takes back the new volume made for the guest's disk."""
    name = unique("g")
    params = module_params(domain_spec.argument_spec(), name=name, virt_type="qemu", memory=256,
                           disks=[{"pool": POOL, "volume": name + ".qcow2", "size": "16MiB"}])
    host = gather_host(conn)
    with pytest.raises(UserError) as info:
        converge_guest(Refusing(conn, "defineXMLFlags"), host, normalize_guest(params, host), options_of(params), False)
    assert info.value.code == "rolled_back"
    assert name + ".qcow2" not in conn.storagePoolLookupByName(POOL).listVolumes(), "the new volume was left behind"


def scenario_pool_rollback(conn, tmp_path):
    """A new pool that does not start is undefined again."""
    name = unique("p")
    refusing = Refusing(conn, "none", wrap={"storagePoolDefineXML": lambda pool: Refusing(pool, "create")})
    params = module_params(pool_spec.argument_spec(), name=name, type="dir", path=str(tmp_path / "pool"), build=True)
    with pytest.raises(UserError) as info:
        PoolRunner(refusing, params, False).run()
    assert info.value.code == "rolled_back" and "refused for the test" in str(info.value)
    assert name not in [p.name() for p in conn.listAllStoragePools(0)], "the new pool stayed defined"


def scenario_volume_rollback(conn, tmp_path):
    """A volume whose upload fails is deleted again."""
    name = unique("v") + ".raw"
    image = tmp_path / "image.raw"
    image.write_bytes(b"\0" * 65536)
    params = module_params(volume_spec.argument_spec(), pool=POOL, name=name, src=str(image))
    with pytest.raises(UserError) as info:
        VolumeRunner(Refusing(conn, "newStream"), params, False).run()
    assert info.value.code == "rolled_back"
    assert name not in conn.storagePoolLookupByName(POOL).listVolumes(), "the volume was left behind"


def scenario_seed_rollback(conn, _tmp_path):
    """A seed volume whose content cannot be written (libvirt's test driver has no volume upload) is deleted again;
    check mode predicts it and makes nothing."""
    name = unique("seed") + ".iso"
    params = module_params(seed_spec.argument_spec(), pool=POOL, name=name, user_data={"runcmd": ["true"]})
    predicted = SeedVolumeRunner(conn, params, True).run()
    assert predicted["changed"] and predicted["created"] and predicted["actions"] == [
        "create cloud-init seed volume %s/%s" % (POOL, name)]
    assert name not in conn.storagePoolLookupByName(POOL).listVolumes(), "check mode made the volume"
    with pytest.raises(UserError) as info:
        SeedVolumeRunner(conn, params, False).run()
    assert info.value.code == "rolled_back" and "virStorageVolUpload" in str(info.value)
    assert name not in conn.storagePoolLookupByName(POOL).listVolumes(), "the seed volume was left behind"


def scenario_files_rollback(_conn, tmp_path):
    """Kernel knobs already written are set back when a file after them cannot be written."""
    root = tmp_path / "root"
    for key, value in (("run", 0), ("pages_to_scan", 100), ("sleep_millisecs", 20), ("merge_across_nodes", 1),
                       ("pages_shared", 0), ("pages_sharing", 0), ("full_scans", 0)):
        (root / tuning.KSM).mkdir(parents=True, exist_ok=True)
        (root / tuning.KSM / key).write_text("%d\n" % value)
    (root / "etc").mkdir()
    (root / "etc" / "tmpfiles.d").write_text("a file where a directory should be\n")
    params = {"require_kvm": False, "nested": None, "ksm": {"enabled": True, "pages_to_scan": 300}, "hugepages": None}
    with pytest.raises(UserError) as info:
        tuning.TuningRunner(None, params, False, root=tuning.Root(str(root))).run()
    assert info.value.code == "rolled_back"
    assert (root / tuning.KSM / "run").read_text().strip() == "0", "ksm.run was left changed"
    assert (root / tuning.KSM / "pages_to_scan").read_text().strip() == "100", "pages_to_scan was left changed"


# ---- warnings: one way, from a runner to the task's warnings ----------------------------------------------

def scenario_runner_warning_reaches_the_task(conn, _tmp_path):
    """Check mode on a pool an earlier task makes: the runner warns, and the task shows it."""
    module = ModuleDouble(module_params(volume_spec.argument_spec(), pool="no-such-pool", name="w.qcow2",
                                        size="8MiB"), check=True)
    with pytest.raises(Exited) as done:
        run_guarded(module, lambda _conn: VolumeRunner(conn, module.params, True).run(), "volume")
    assert not done.value.failed
    assert any("assuming an earlier task makes it" in w for w in done.value.result["warnings"]), \
        done.value.result["warnings"]


def scenario_fleet_warning_names_its_guest(conn, _tmp_path):
    """A guest's warning reaches the fleet task's warnings, naming the guest."""
    name = unique("f")
    params = module_params(fleet_spec.argument_spec(), parallel=1, guests=[
        {"name": name, "virt_type": "qemu", "memory": "128MiB", "interfaces": [{"network": "no-such-net"}]}])
    module = ModuleDouble(params, check=True)
    with pytest.raises(Exited) as done:
        run_guarded(module, lambda _conn: converge_fleet(conn, params, True), "fleet")
    assert not done.value.failed
    assert any(w.startswith("guest %s: check mode: network no-such-net" % name) for w in done.value.result["warnings"])


def scenario_failure_keeps_its_warnings(_conn, _tmp_path):
    """A task that fails still shows what its run warned about, with its code and its partial result."""
    class WarnsThenFails(Runner):
        def run(self):
            self.warn("something to know")
            raise UserError("refused", code="refused", result={"warnings": self.warnings, "partial": 1})
    module = ModuleDouble({"uri": "test:///default"})
    with pytest.raises(Exited) as done:
        run_guarded(module, lambda conn: WarnsThenFails(conn, {}, False).run(), "thing")
    assert done.value.failed and done.value.result["code"] == "refused" and done.value.result["partial"] == 1
    assert done.value.result["warnings"] == ["something to know"]


# ---- codes: what playbooks and filters decide on ---------------------------------------------------------

_COMPARED = re.compile(r"""(?:'code'|"code"|\bcode|'kind'|\bkind|'outcome'|\boutcome|problem_kinds)\W{1,12}"""
                       r"""(?:eq|equalto|ne|==|!=|in|contains)\W{1,4}'([a-z_]+)'""")


def compared_codes():
    """Every code a playbook or role compares a result field against."""
    found = set()
    for path in list((REPO / "playbooks").rglob("*.yml")) + list((REPO / "roles").glob("*/tasks/*.yml")):
        found.update(_COMPARED.findall(path.read_text()))
    return found


def scenario_compared_codes_exist(_conn, _tmp_path):
    found = compared_codes()
    assert "not_run_by_fleet" in found, "recover.yml decides which guests were not restarted on purpose by code"
    assert found <= set(CODES), "playbooks compare against codes nothing gives: %s" % sorted(found - set(CODES))


def scenario_recovery_codes(_conn, _tmp_path):
    hosts = [placement.host_view("hv1", {"uuid": "u1", "uri": "qemu+tcp://hv1/system",
                                         "memory": {"total_mib": 4096, "free_mib": 4096}, "cpu": {"count": 2}}),
             placement.host_view("hv2", None)]
    plan = placement.recovery_plan(hosts, [], "hv2", [{"name": "r1", "memory": "128MiB", "state": "shutoff"}])
    assert [(s["guest"], s["code"]) for s in plan["stays"]] == [("r1", "not_run_by_fleet")]


# ---- placement: the cost of a move with private storage --------------------------------------------------

def recorded_view(shared_storage):
    recorded = json.loads(FLEET.read_text())
    return placement.fleet_view(recorded["hosts"], recorded["guests"], {}, shared_storage)


def scenario_private_storage_is_priced(_conn, _tmp_path):
    """A guest with a disk in a pool of its hypervisor's own: moving it copies the disk's allocation, and a move
    that copies nothing is preferred to one that copies a disk for the same gain."""
    private = {g["name"]: g for g in recorded_view(False)["guests"]}
    shared = {g["name"]: g for g in recorded_view(True)["guests"]}
    assert private["p-web"]["copy_gib"] > 0 and shared["p-web"]["copy_gib"] == 0
    assert private["p-db"]["copy_gib"] == 0, "a guest without disks copies none"
    hosts = [dict(h, cordoned=False) for h in recorded_view(False)["hosts"]]
    # two guests of the same size on hv1, one with a disk to copy: the other one moves
    guests = [dict(private["p-web"], memory_mib=512), dict(private["p-db"], memory_mib=512)]
    move = balance.best_move(hosts, guests, headroom_mib=0, min_gain=0.0)
    assert move["guest"] == "p-db", move


SCENARIOS = {
    "guest rollback": scenario_guest_rollback,
    "pool rollback": scenario_pool_rollback,
    "volume rollback": scenario_volume_rollback,
    "file rollback": scenario_files_rollback,
    "seed rollback": scenario_seed_rollback,
    "runner warning": scenario_runner_warning_reaches_the_task,
    "fleet warning": scenario_fleet_warning_names_its_guest,
    "failure warning": scenario_failure_keeps_its_warnings,
    "compared codes": scenario_compared_codes_exist,
    "recovery codes": scenario_recovery_codes,
    "private storage": scenario_private_storage_is_priced,
}


@pytest.fixture
def driver(conn):
    """The shared test driver (it has no network no-such-net: check mode assumes an earlier task makes it)."""
    return conn


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_shared_mechanism_works(name, driver, tmp_path):
    SCENARIOS[name](driver, tmp_path)


# ---- the breakages ------------------------------------------------------------------------------------------

def _skip_rollback(monkeypatch):
    monkeypatch.setattr(Undo, "rollback", lambda self: [])


def _drop_runner_warnings(monkeypatch):
    monkeypatch.setattr(Runner, "warn", lambda self, message: None)


def _drop_task_warnings(monkeypatch):
    monkeypatch.setattr(_runner, "_warn", lambda module, warnings: None)


def _rename_a_code(monkeypatch):
    monkeypatch.delitem(CODES, "not_run_by_fleet")
    monkeypatch.setitem(CODES, "not_in_fleet", "the fleet's description does not run it")


def _ignore_private_disks(monkeypatch):
    """The view as it was before issue 19: a disk's size from the spec (which domain_info never gives)."""
    original = placement.guest_view

    def guest_view(host, guest, shared_storage=True):
        view = original(host, guest, True)
        copy_bytes = sum(placement.parse_size(d["size"], "size", default_unit="B")
                         for d in (guest.get("spec") or {}).get("disks") or [] if d.get("size"))
        return dict(view, copy_gib=0.0 if shared_storage else copy_bytes / float(1024 ** 3))
    monkeypatch.setattr(placement, "guest_view", guest_view)


BREAKAGES = {
    "rollback skipped": (_skip_rollback, ["guest rollback", "pool rollback", "volume rollback", "file rollback",
                                          "seed rollback"]),
    "a runner's warning dropped": (_drop_runner_warnings, ["runner warning", "fleet warning"]),
    "the task's warnings dropped": (_drop_task_warnings, ["runner warning", "fleet warning", "failure warning"]),
    "a code renamed": (_rename_a_code, ["compared codes", "recovery codes"]),
    "placement blind to private storage": (_ignore_private_disks, ["private storage"]),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_breakage_of_the_shared_mechanism_fails_its_scenarios(breakage, driver, tmp_path, monkeypatch):
    apply, scenarios = BREAKAGES[breakage]
    apply(monkeypatch)
    for name in scenarios:
        place = tmp_path / name.replace(" ", "-")
        place.mkdir()
        with pytest.raises((AssertionError, ValueError, UserError)):
            SCENARIOS[name](driver, place)


def test_every_scenario_guards_against_a_breakage():
    guarded = {name for _apply, names in BREAKAGES.values() for name in names}
    assert guarded == set(SCENARIOS)


def test_every_code_is_explained_and_no_module_makes_one_up():
    """Each code has its meaning; every code the collection's source passes literally is one of them."""
    assert all(isinstance(meaning, str) and meaning for meaning in CODES.values())
    source = "\n".join(p.read_text() for p in (REPO / "plugins").rglob("*.py"))
    used = set(re.findall(r"""\bcode=["']([a-z_]+)["']""", source))
    used |= set(re.findall(r"""^    code = ["']([a-z_]+)["']""", source, re.MULTILINE))  # UserError classes' own
    used |= set(re.findall(r"""\b(?:problem|_evidence|known_code)\(\s*["']([a-z_]+)["']""", source))
    used |= set(re.findall(r"""\bstay\([^,()]+(?:\([^()]*\))?[^,()]*,\s*["']([a-z_]+)["']""", source))
    assert used and used <= set(CODES), sorted(used - set(CODES))


def test_an_unreachable_daemon_fails_with_its_code_and_libvirt_s_words():
    module = ModuleDouble({"uri": "qemu+unix:///system?socket=/nonexistent.sock"})
    with pytest.raises(Exited) as done:
        run_guarded(module, lambda conn: {"changed": False}, "host")
    assert done.value.failed and done.value.result["code"] == "unreachable"
    assert done.value.result["uri"] == "qemu+unix:///system?socket=/nonexistent.sock"


def test_without_libvirt_s_schemas_here_the_daemon_checks_and_the_task_says_so(conn, tmp_path, monkeypatch):
    """No silent pass: where the schemas are not installed, a document is still refused (by the daemon's own
    check, libvirt's VALIDATE flag), and the task warns that it could not check here."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _xml
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import define
    monkeypatch.setattr(_xml, "SCHEMA_DIR", str(tmp_path / "no-schemas"))
    _xml.schema_warnings()  # forget what earlier tests left
    bad = "<network><name>%s</name><bogus/></network>" % unique("n")
    with pytest.raises(libvirt.libvirtError, match="failed to validate against schema"):
        define("network", conn.networkDefineXMLFlags, bad)
    warnings = _xml.schema_warnings()
    assert len(warnings) == 1 and "network.rng" in warnings[0] and "not installed on this host" in warnings[0]
    assert _xml.schema_warnings() == [], "said once"
    module = ModuleDouble({"uri": "test:///default"})
    with pytest.raises(Exited) as done:
        run_guarded(module, lambda _conn: {"changed": False, "value": _xml.schema_value_error("x y", "diskSerial")},
                    "host")
    assert done.value.result["value"] is None and any("not installed" in w for w in done.value.result["warnings"])
