"""converge_guest against libvirt's in-process test driver (test:///default): no daemon, no AnsibleModule.

The test driver keeps guests, pools and volumes in memory and runs guests without QEMU, which is
enough to show what converging a guest returns, that check mode predicts the real run, that the
spec is never changed, that the host's guests are read once, and that refusals come first.
"""

from __future__ import annotations

import copy
import uuid

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import spec as domain_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import derive_mac
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import HostContext, gather_host
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import SchemaError
from testdriver import converge_described, module_params

URI = "test:///default"
POOL = "default-pool"  # the test driver's own dir pool


def params(name, **extra):
    """A guest's description as AnsibleModule hands it over (defaults filled in)."""
    return module_params(domain_spec.argument_spec(), **dict(dict(name=name, virt_type="qemu", uri=URI), **extra))


def converge(conn, check=False, host=None, **extra):
    return converge_described(conn, check, host, **dict(extra, uri=URI))


def effect(result):
    return {key: result[key] for key in ("changed", "diff", "actions", "changes", "applied_live", "reboot_required")}


def guest_name():
    return "g-" + uuid.uuid4().hex[:8]


def config(conn, name):
    return conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def test_check_mode_predicts_the_real_run_and_the_second_run_changes_nothing(conn):
    name = guest_name()
    desc = dict(name=name, memory="256MiB", vcpus=1, max_vcpus=2, tags={"role": "web"}, autostart=True,
                disks=[{"pool": POOL, "volume": name + ".qcow2", "size": "1GiB"}],
                interfaces=[{"network": "default"}])
    predicted = converge(conn, True, **copy.deepcopy(desc))
    assert name not in [d.name() for d in conn.listAllDomains(0)], "check mode defined the guest"
    made = converge(conn, **copy.deepcopy(desc))
    assert effect(predicted) == effect(made)
    assert made["created"] and made["changed"] and made["warnings"] == []
    assert made["actions"] == ["create volume %s/%s.qcow2 (1GiB, qcow2)" % (POOL, name), "autostart on"]
    assert "memory: (none) -> 256MiB" in made["changes"], "changes read as the user wrote them"
    mac = made["interfaces"][0]["mac"]
    assert mac.startswith("52:54:00:") and made["uuid"] == conn.lookupByName(name).UUIDString()

    before = config(conn, name)
    again = converge(conn, **copy.deepcopy(desc))
    assert not again["changed"] and again["actions"] == [] and again["changes"] == []
    assert config(conn, name) == before, "a second run wrote to libvirt"
    assert again["interfaces"][0]["mac"] == mac, "a re-run never changes a MAC"
    assert not converge(conn, True, **copy.deepcopy(desc))["changed"]


def test_a_change_is_exactly_that_change(conn):
    name = guest_name()
    converge(conn, name=name, memory="256MiB", title="old")
    result = converge(conn, name=name, memory="512MiB", title="old")
    assert result["changes"] == ["memory: 256MiB -> 512MiB", "current_memory: 256MiB -> 512MiB"]
    assert result["reboot_required"] is False, "a guest that is not running takes it at its next start"


def test_a_running_guest_splits_live_from_next_boot(conn):
    name = guest_name()
    converge(conn, name=name, memory="256MiB", current_memory="256MiB", max_memory=None, state="running",
             interfaces=[{"network": "default"}])
    assert conn.lookupByName(name).isActive()
    result = converge(conn, True, name=name, memory="512MiB", current_memory="192MiB", state="running",
                      interfaces=[{"network": "default", "model": "e1000"}])
    assert result["applied_live"] == ["current_memory: 192MiB"]
    assert result["reboot_required"] is True
    mac = result["interfaces"][0]["mac"]
    assert len(result["reasons"]) == 2
    assert result["reasons"][0] == "interface %s: interface %s.model: virtio -> e1000" % (mac, mac)
    assert result["reasons"][1] == "memory: 256MiB -> 512MiB"


def test_derived_macs_avoid_the_macs_of_the_host_s_other_guests(conn):
    name = guest_name()
    wanted = derive_mac(name, 0, set())
    host = HostContext(guest_macs={"someone-else": [wanted]})  # what gather_host read, once
    result = converge(conn, True, host=host, name=name, interfaces=[{"network": "default"}])
    assert result["interfaces"][0]["mac"] == derive_mac(name, 0, {wanted}) != wanted
    # and the guest's own MACs are its own: a re-run keeps them
    made = converge(conn, name=name, interfaces=[{"network": "default"}])
    host = HostContext(guest_macs={name: [made["interfaces"][0]["mac"]]})
    assert converge(conn, host=host, name=name, interfaces=[{"network": "default"}])["changed"] is False


class CountingConnection:
    """A connection that counts how often each guest's XML is read."""

    def __init__(self, conn):
        self._conn, self.reads = conn, 0

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def listAllDomains(self, flags=0):  # noqa: N802  (libvirt's name)
        return [CountingDomain(d, self) for d in self._conn.listAllDomains(flags)]

    def lookupByName(self, name):  # noqa: N802
        return CountingDomain(self._conn.lookupByName(name), self)


class CountingDomain:
    def __init__(self, dom, counter):
        self._dom, self._counter = dom, counter

    def __getattr__(self, name):
        return getattr(self._dom, name)

    def XMLDesc(self, flags=0):  # noqa: N802
        self._counter.reads += 1
        return self._dom.XMLDesc(flags)


def test_converging_n_guests_reads_each_guest_a_bounded_number_of_times(conn):
    names = [guest_name() for _number in range(6)]
    for name in names:
        converge(conn, name=name, memory="128MiB", interfaces=[{"network": "default"}])
    counting = CountingConnection(conn)
    host = gather_host(counting)  # every guest's XML, once
    for name in names:
        result = converge(counting, host=host, name=name, memory="128MiB", interfaces=[{"network": "default"}])
        assert not result["changed"]
    guests = len(conn.listAllDomains(0))
    assert counting.reads <= guests + 2 * len(names), "reads grow with N x N: %d for %d guests" % (
        counting.reads, guests)


def test_a_shrink_is_refused_before_anything_changes(conn):
    name = guest_name()
    converge(conn, name=name, disks=[{"pool": POOL, "volume": name + ".qcow2", "size": "64MiB"}])
    before = config(conn, name)
    for check in (True, False):
        with pytest.raises(SpecError) as info:
            converge(conn, check, name=name, memory="512MiB",
                     disks=[{"pool": POOL, "volume": name + ".qcow2", "size": "16MiB"}])
        assert info.value.option == "disks[0].size" and "shrinking a disk is refused" in str(info.value)
    assert config(conn, name) == before
    assert conn.storagePoolLookupByName(POOL).storageVolLookupByName(name + ".qcow2").info()[1] == 64 * 2 ** 20


def test_a_document_the_schema_refuses_is_never_defined(conn):
    name = guest_name()
    for check in (True, False):
        with pytest.raises(SchemaError, match="domain.rng"):
            converge(conn, check, name=name, memory="128MiB",
                     xml_edits=[{"xpath": "/domain/devices", "fragment": "<disk type='file'/>"}])
    assert name not in [d.name() for d in conn.listAllDomains(0)]


def test_absent_removes_the_guest_and_keeps_its_disks(conn):
    name = guest_name()
    converge(conn, name=name, disks=[{"pool": POOL, "volume": name + ".qcow2", "size": "8MiB"}])
    predicted = converge(conn, True, name=name, state="absent")
    assert predicted["changed"] and predicted["removed_volumes"] == []
    assert name in [d.name() for d in conn.listAllDomains(0)]


def test_a_guest_run_reads_the_other_guests_only_when_it_derives_a_mac(conn):
    """The domain module's host context reads the other guests' MACs lazily: a no-op never lists them,
    and a derived MAC still avoids them."""
    others = [guest_name() for _number in range(3)]
    for name in others:
        converge(conn, name=name, memory="128MiB", interfaces=[{"network": "default"}])
    name = guest_name()
    converge(conn, name=name, memory="128MiB", interfaces=[{"network": "default"}])
    counting = CountingConnection(conn)
    assert not converge(counting, host=gather_host(counting, read_guests=False), name=name, memory="128MiB",
                        interfaces=[{"network": "default"}])["changed"]
    assert counting.reads == 1, "a no-op read %d guests' XML" % counting.reads  # its own, once
    # a second NIC needs a derived MAC: now the others are read, and their MACs avoided
    taken = {derive_mac(other, 0, set()) for other in others}
    counting = CountingConnection(conn)
    host = gather_host(counting, read_guests=False)
    host.remember_macs("someone-else", [derive_mac(name, 1, set())])  # the MAC it would derive is taken
    result = converge(counting, True, host=host, name=name, memory="128MiB",
                      interfaces=[{"network": "default"}, {"network": "default"}])
    assert counting.reads > len(others)
    second = result["interfaces"][1]["mac"]
    assert second != derive_mac(name, 1, set()) and second not in taken


def test_a_change_another_writer_made_during_the_run_is_never_overwritten(conn):
    """The plan is made against the definition read at the start of the run (a fleet reads every guest once); when
    someone else defines the guest in between, the define is refused, naming the guest, and their change stays."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
    name = guest_name()
    converge(conn, name=name, memory="256MiB", title="old")
    host = gather_host(conn)  # what this run read at its start
    conn.defineXML(config(conn, name).replace("<title>old</title>", "<title>theirs</title>"))
    theirs = config(conn, name)
    with pytest.raises(UserError) as refused:
        converge(conn, host=host, name=name, memory="512MiB", title="old")
    assert refused.value.code == "conflict" and "guest %s was changed by another writer" % name in str(refused.value)
    assert config(conn, name) == theirs, "the other writer's change was overwritten"
    # the next run plans from what is there now, and converges
    assert converge(conn, name=name, memory="512MiB", title="old")["changed"]
    assert "<title>old</title>" in config(conn, name)
