"""Generated input, valid and hostile, through the modules' own main() (issue 22).

Hypothesis starts from a valid description of a guest, a fleet, a network, a pool, a volume, a snapshot or a seed, and
spoils it: an option (top-level or nested, in a dict or a list item) gets a wrong type, a size out of range, markup
and quotes, path separators and ``..``, an empty or huge string, a huge list, a duplicate of a list's identity; or an
unknown key is added. Each case runs through the module's main() exactly as Ansible runs it (argument validation by
Ansible's own validator, then the module) against libvirt's in-process test driver. What each case must give:

- success, with every document the module wrote valid for libvirt's schema (the daemon checks it too), or
- a failure whose message names the option that was spoiled, and the host exactly as it was before (no partial
  write: every guest, network, pool and volume compared before and after).

Never a traceback. The cases are counted (printed with -s); the README's test command runs a few hundred.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections import Counter

import libvirt
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _runner
from testdriver import TEST_URI, Exited

HOSTILE = [
    "<x a=\"'\">&amp;</x>", "../../etc/passwd", "a/b", "..", "", " ", "\u00fc" * 300, "x" * 5000, "\x00",
    "$(reboot)", "{{ lookup('env', 'HOME') }}", 10 ** 15, -1, 0, 1.5, True, None, [], {}, ["x"] * 1000,
    {"unknown": 1}, [{"a": 1}] * 300,
]
POOL = "default-pool"

BASES = {
    "domain": {"name": "gen-guest", "virt_type": "qemu", "memory": "64MiB", "vcpus": 1, "title": "generated",
               "disks": [{"pool": POOL, "volume": "gen-guest.qcow2", "size": "1MiB"}],
               "interfaces": [{"network": "default", "model": "virtio"}],
               "graphics": [{"type": "vnc", "password": "gen-s3c1"}],
               "tags": {"role": "web"}, "state": "present"},
    "fleet": {"guests": [{"name": "gen-f1", "virt_type": "qemu", "memory": "64MiB"},
                         {"name": "gen-f2", "virt_type": "qemu", "memory": "64MiB",
                          "interfaces": [{"network": "default"}]}]},
    "network": {"name": "gen-net", "bridge": "genbr0", "ipv4": {"address": "10.99.0.1/24", "dhcp": {
        "ranges": [{"start": "10.99.0.10", "end": "10.99.0.20"}]}}, "state": "present"},
    "pool": {"name": "gen-pool", "type": "dir", "path": "/var/lib/kvmfleet-generated-pool", "state": "inactive"},
    "volume": {"pool": POOL, "name": "gen-vol.qcow2", "size": "1MiB", "format": "qcow2"},
    "snapshot": {"guest": "test", "name": "gen-snap", "description": "generated", "disk_only": True,
                 "location": "external"},
    "cloud_init": {"pool": POOL, "name": "gen-seed.iso", "user_data": {"hostname": "gen", "password": "gen-secret-2"}},
}
# The test driver cannot write a volume's bytes (no upload), read a network's persistent definition or take an
# external snapshot: a seed, a network and a snapshot are checked up to their plans, in check mode.
CHECK_ONLY = {"cloud_init", "network", "snapshot"}
CASES = Counter()
EXAMPLES = 150  # per kind of description
ORIGINAL_VOLUMES = set()  # the test driver's own volumes (read at the first case)


class FakeModule:
    """AnsibleModule as module_main uses it: the arguments validated by Ansible's own validator (a refusal is a
    failure, as AnsibleModule makes it), then params, check_mode, warn, exit_json and fail_json."""

    given = {}
    check = False

    def __init__(self, argument_spec, supports_check_mode=True, **options):
        validator = ArgumentSpecValidator(argument_spec, **{k: v for k, v in options.items() if k in (
            "mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")})
        result = validator.validate(copy.deepcopy(FakeModule.given))
        if result.error_messages:
            raise Exited({"msg": "; ".join(result.error_messages), "failed": True, "validation": True}, True)
        self.params, self.check_mode, self.tmpdir, self.warnings = result.validated_parameters, FakeModule.check, None, []
        self.argument_spec = argument_spec

    def warn(self, warning):
        self.warnings.append(warning)

    def exit_json(self, **result):
        raise Exited(result, False)

    def fail_json(self, **result):
        raise Exited(dict(result, failed=True), True)


def host_state(conn):
    """Everything the test driver holds, as text: a partial write shows as a difference."""
    state = {"guests": sorted(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) for d in conn.listAllDomains(0)),
             "networks": sorted(n.XMLDesc(0) for n in conn.listAllNetworks(0)), "pools": {}}
    for pool in conn.listAllStoragePools(0):
        volumes = sorted(v.XMLDesc(0) for v in pool.listAllVolumes(0)) if pool.isActive() else []
        state["pools"][pool.name()] = (pool.XMLDesc(0), volumes)
    state["snapshots"] = sorted(s.getName() for d in conn.listAllDomains(0) for s in d.listAllSnapshots(0))
    return json.dumps(state, sort_keys=True)


def paths(value, prefix=()):
    """Every option path in a description: ('disks', 0, 'size'), ('name',), ..."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append(prefix + (key,))
            found.extend(paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(paths(item, prefix + (index,)))
    return found


def spoil(base, how, path, hostile):
    """The description with one spoil: ``how`` is 'value' (the option at ``path`` gets ``hostile``), 'unknown' (an
    unknown key next to it) or 'duplicate' (the list holding ``path`` gets a copy of its item)."""
    spoiled = copy.deepcopy(base)
    parent = spoiled
    for part in path[:-1]:
        parent = parent[part]
    if how == "value":
        parent[path[-1]] = hostile
    elif how == "unknown":
        parent["bogus_option"] = 1
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[path[-1]]))
    else:
        parent[path[-1]] = hostile
    return spoiled


def named(message, path, how):
    """Whether a failure's message names the spoiled option (its key, or the key of the list or dict it is in)."""
    keys = [str(p) for p in path if isinstance(p, str)]
    if how == "unknown":
        keys = ["bogus_option"]
    return any(re.search(r"(?<![A-Za-z_])%s(?![A-Za-z_])" % re.escape(key), message) for key in keys)


def run_case(conn, name, description, check):
    module = importlib.import_module("ansible_collections.kvmfleet.libvirt.plugins.modules.%s" % name)
    FakeModule.given, FakeModule.check = dict(description, uri=TEST_URI), check
    originals = _runner.AnsibleModule, _runner._raw_params
    _runner.AnsibleModule, _runner._raw_params = FakeModule, lambda: FakeModule.given
    try:
        with pytest.raises(Exited) as ended:
            module.main()
    finally:
        _runner.AnsibleModule, _runner._raw_params = originals
    return ended.value


def clean(conn):
    """Take back what a successful case made, so the next case starts from the same host (the test driver's own
    guest, network and pool stay)."""
    for dom in conn.listAllDomains(0):
        if dom.name() != "test":
            if dom.isActive():
                dom.destroy()
            # a case may leave a managed save image or snapshots: plain undefine refuses those
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        elif dom.hasManagedSaveImage(0):
            dom.managedSaveRemove(0)
    for snap in conn.lookupByName("test").listAllSnapshots(0):
        snap.delete(0)
    for net in conn.listAllNetworks(0):
        if net.name() != "default":
            if net.isActive():
                net.destroy()
            net.undefine()
    for pool in conn.listAllStoragePools(0):
        if pool.name() != POOL:
            if pool.isActive():
                pool.destroy()
            pool.undefine()
    pool = conn.storagePoolLookupByName(POOL)
    for vol in pool.listAllVolumes(0):
        if vol.name() not in ORIGINAL_VOLUMES:
            vol.delete(0)


def case_strategy(name):
    base = BASES[name]
    return st.tuples(st.sampled_from(["value", "value", "value", "unknown", "duplicate"]),
                     st.sampled_from(paths(base)), st.sampled_from(HOSTILE))


@pytest.mark.parametrize("name", sorted(BASES))
def test_generated_input_is_written_whole_or_refused_naming_the_option(conn, name):
    if not ORIGINAL_VOLUMES:
        ORIGINAL_VOLUMES.update(v.name() for v in conn.storagePoolLookupByName(POOL).listAllVolumes(0)
                                if not v.name().startswith("gen-"))
    clean(conn)
    valid = run_case(conn, name, BASES[name], name in CHECK_ONLY)
    assert not valid.failed, "the valid base description fails: %s" % valid.result
    clean(conn)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(case_strategy(name))
    def spoiled(case):
        how, path, hostile = case
        description = spoil(BASES[name], how, path, hostile)
        before = host_state(conn)
        ended = run_case(conn, name, description, name in CHECK_ONLY)
        CASES[name] += 1
        if ended.failed:
            CASES["refused"] += 1
            message = ended.result.get("msg", "")
            assert named(message, path, how), "%s %s %r: the message does not name the option: %s" % (
                name, how, path, message)
            if name == "fleet" and ended.result.get("guests"):
                # a fleet's guests are independent: a guest refused fails alone, and is not made
                refused = {g["name"] for g in ended.result["guests"] if g.get("error")}
                made = {d.name() for d in conn.listAllDomains(0)}
                assert not refused & made, "%s %s %r: a refused guest was made: %s" % (name, how, path, refused & made)
            else:
                assert host_state(conn) == before, "%s %s %r=%r: refused, but the host changed" % (
                    name, how, path, hostile)
        else:
            CASES["accepted"] += 1
        clean(conn)
    spoiled()


def test_zz_the_count():
    """How many generated cases ran (pytest -s prints it)."""
    print("generated cases: %s" % dict(CASES))
    assert sum(CASES[name] for name in BASES) >= EXAMPLES * len(BASES) or not CASES
