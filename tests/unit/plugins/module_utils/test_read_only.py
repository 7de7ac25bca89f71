"""The _info modules read through read-only connections, and on any libvirt driver (issue 24).

libvirt's test driver (test:///default, no daemon) supports fewer calls than QEMU's (no node memory stats, no
memory parameters, no job info, no domain capabilities): what it cannot say is reported as unknown (None), never a
failure. A read-only connection (VIR_CONNECT_RO) is refused every change by libvirt itself, on every driver.
"""

from __future__ import annotations

import importlib

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _libvirt, _runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.info import gather
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.view import read_cluster
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.info import gather_host_facts
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.apply import list_snapshots
from ansible_collections.kvmfleet.libvirt.plugins.modules.host_info import host_facts

from testdriver import Exited, ModuleDouble, TEST_URI

libvirt = pytest.importorskip("libvirt")

GUEST = """<domain type='test'><name>ro-vnc</name><uuid>6f0c7a0e-2b1d-4c55-9d0e-54a1d3c2b9f1</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='i686'>hvm</type></os>
<devices><graphics type='vnc' autoport='yes' passwd='s3cret-ro'/>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>"""
PLAIN = """<domain type='test'><name>ro-plain</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='i686'>hvm</type></os></domain>"""
NODE = "<node>%s%s</node>" % (GUEST, PLAIN)


def _denied(call):
    with pytest.raises(libvirt.libvirtError) as refused:
        call()
    return refused.value.get_error_code() == libvirt.VIR_ERR_OPERATION_DENIED


def test_a_read_only_connection_is_refused_every_change():
    conn = _libvirt.open_connection(TEST_URI, readonly=True)
    try:
        assert conn.listAllDomains(0)  # reads work
        assert _denied(lambda: conn.defineXML(GUEST))
        assert _denied(lambda: conn.lookupByName("test").suspend())
    finally:
        conn.close()
    writable = _libvirt.open_connection(TEST_URI)
    try:
        assert writable.lookupByName("test").isActive()  # the same call on a read-write connection is not refused
    finally:
        writable.close()


def test_a_read_only_open_asks_for_no_credential(monkeypatch):
    """Read-only opens go through openAuth with VIR_CONNECT_RO and an auth that can ask for nothing (never prompts,
    like the read-write open), with the URI the transport makes non-interactive (ssh: no_tty=1)."""
    seen = []
    monkeypatch.setattr(libvirt, "openAuth", lambda uri, auth, flags: seen.append((uri, auth, flags)) or "conn")
    assert _libvirt._open("qemu+ssh://root@hv1/system?no_tty=1", True) == "conn"
    assert seen == [("qemu+ssh://root@hv1/system?no_tty=1", [[], None, None], libvirt.VIR_CONNECT_RO)]


@pytest.mark.parametrize("name", ["host_info", "domain_info", "snapshot_info"])
def test_info_modules_open_read_only(name, monkeypatch):
    """Each _info module's main() asks run_guarded for a read-only connection; the modules that write do not."""
    module = importlib.import_module("ansible_collections.kvmfleet.libvirt.plugins.modules.%s" % name)
    asked = {}

    class Module:
        params = {"uri": TEST_URI, "name": "test"}
        check_mode = False
        tmpdir = None

        def __init__(self, **_kwargs):
            pass

    def record(_module, _run, _what, _connect=True, _precheck=None, readonly=False):
        asked["readonly"] = readonly
    monkeypatch.setattr(_runner, "AnsibleModule", Module)
    monkeypatch.setattr(_runner, "_raw_params", dict)
    monkeypatch.setattr(_runner, "run_guarded", record)
    module.main()
    assert asked == {"readonly": True}


def test_run_guarded_opens_what_it_is_asked(monkeypatch):
    opened = []
    real = _libvirt.open_connection

    def spy(uri, readonly=False, timeout=None):
        opened.append(readonly)
        return real(uri, readonly=readonly, timeout=timeout)
    monkeypatch.setattr(_runner, "open_connection", spy)
    for readonly in (True, False):
        module = ModuleDouble({"uri": TEST_URI, "connect_timeout": 5})
        with pytest.raises(Exited) as exited:
            _runner.run_guarded(module, lambda conn: {"changed": False, "guests": len(conn.listAllDomains(0))},
                                "the guests", readonly=readonly)
        assert not exited.value.failed, exited.value.result
    assert opened == [True, False]


@pytest.mark.parametrize("readonly", [True, False])
def test_host_info_works_on_the_test_driver(readonly):
    """The test driver has no node memory stats (virNodeGetMemoryStats), no memory parameters (KSM), no job info and,
    read-only, no domain capabilities: host_info reports them as unknown instead of failing."""
    conn = _libvirt.open_connection(TEST_URI, readonly=readonly)
    try:
        with pytest.raises(libvirt.libvirtError):
            conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)  # what made host_info fail before
        facts = host_facts(conn, {"sample_seconds": 0, "sample_interval": 2}, False)
    finally:
        conn.close()
    assert facts["hypervisor"] == "TEST" and facts["changed"] is False
    assert facts["memory"]["total_mib"] == conn_info_mib() and facts["memory"]["buffers_mib"] is None
    assert facts["memory"]["cached_mib"] is None
    assert facts["ksm"] is None  # no node memory parameters on this driver
    assert facts["kvm"]["usable"] is False and "test" in facts["kvm"]["reason"]  # it offers only 'test' guests
    assert facts["domains"]["total"] >= 1 and facts["guests_with_jobs"] == []
    assert [n["name"] for n in facts["networks"]] == ["default"] and [p["name"] for p in facts["pools"]] == ["default-pool"]


def conn_info_mib():
    conn = _libvirt.open_connection(TEST_URI, readonly=True)
    try:
        return conn.getInfo()[1]
    finally:
        conn.close()


def test_kvm_is_judged_from_the_capabilities_when_a_read_only_connection_may_not_ask():
    class ReadOnlyQemu:
        def getDomainCapabilities(self, *_args):
            raise _error(libvirt.VIR_ERR_OPERATION_DENIED, "read only access prevents virConnectGetDomainCapabilities")
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host import info
    assert info._domcaps_error(ReadOnlyQemu(), "x86_64") is None
    caps = {"guest_domain_types": {"x86_64": ["kvm", "qemu"]}}
    assert info.kvm_status(caps, "x86_64", info._domcaps_error(ReadOnlyQemu(), "x86_64")) == {"usable": True,
                                                                                              "reason": None}


def _error(code, text):
    exc = libvirt.libvirtError(text)
    exc.err = (code, 0, text, 0, None, None, None, 0, 0)
    return exc


def test_if_supported_turns_only_unsupported_into_unknown():
    def unsupported():
        raise _error(libvirt.VIR_ERR_NO_SUPPORT, "this function is not supported by the connection driver")

    def missing():
        raise _error(libvirt.VIR_ERR_NO_DOMAIN, "Domain not found")
    assert _libvirt.if_supported(unsupported) is None
    assert _libvirt.if_supported(unsupported, default={}) == {}
    assert _libvirt.if_supported(lambda a, b: a + b, 1, 2) == 3
    with pytest.raises(libvirt.libvirtError):
        _libvirt.if_supported(missing)


def test_domain_info_reads_secrets_only_through_a_writable_connection(test_host):
    """Read-only, a guest's secure XML cannot be read: domain_info names its secrets through a read-write connection
    opened on demand (only for a guest with a graphics device or an agent channel), and says None (unknown) where
    there is none."""
    writable = test_host(NODE)  # each open of a test driver file is a host of its own: the same guest, by UUID
    path = writable.getURI()
    readonly = _libvirt.open_connection(path, readonly=True)
    try:
        assert _denied(lambda: readonly.lookupByName("ro-vnc").XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
        opened = []

        def on_demand():
            opened.append(True)
            return writable
        [guest] = gather(readonly, "ro-vnc", writable=on_demand)
        assert guest["secrets"] == ["graphics[0].password"] and opened
        [unknown] = gather(readonly, "ro-vnc", writable=lambda: None)
        assert unknown["secrets"] is None
        assert "s3cret-ro" not in repr(guest) + repr(unknown)
        [plain] = gather(readonly, "ro-plain", writable=lambda: pytest.fail("no secret to read, no writable connection"))
        assert plain["secrets"] == []
    finally:
        readonly.close()


def test_writable_on_demand_opens_once_and_gives_none_when_refused():
    with _libvirt.writable_on_demand(TEST_URI) as writable:
        first = writable()
        assert first is writable() and first.isAlive()
    with pytest.raises(libvirt.libvirtError):  # closed at the end
        first.isAlive()
    with _libvirt.writable_on_demand("test:///no/such/file.xml", timeout=5) as writable:
        assert writable() is None


def test_snapshot_info_and_the_cluster_view_read_only():
    conn = _libvirt.open_connection(TEST_URI, readonly=True)
    try:
        listed = list_snapshots(conn, {"name": "test"})
        assert listed == {"changed": False, "guest": "test", "snapshots": [], "current": None}
        assert gather_host_facts(conn)["uri"] == TEST_URI
    finally:
        conn.close()
    view = read_cluster([{"name": "t", "uri": TEST_URI}])  # cluster_info: read-only connections of its own
    assert view["hypervisors"][0]["reachable"] and view["hypervisors"][0]["error"] is None
    assert "test" in [g["name"] for g in view["guests"]]
