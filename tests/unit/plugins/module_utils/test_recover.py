"""RecoverRunner (module_utils/_migrate/recover.py) against libvirt's test driver: the evidence, refusals, a start,
and no change the second time."""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.spec import guest_options
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import LibvirtConnectionError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.origin import read_origin
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import recover
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.recover import RecoverRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml
from testdriver import module_params

NODE = """<node>
  <network><name>default</name><bridge name='virbr0'/><ip address='192.168.122.1' netmask='255.255.255.0'/></network>
  <pool type='dir'><name>shared</name><target><path>/shared</path></target>
    <volume><name>r1.raw</name><capacity unit='MiB'>8</capacity><target><path>/shared/r1.raw</path></target></volume>
  </pool>
</node>"""


@pytest.fixture
def conn(test_host, monkeypatch):
    facts = recover.host_facts
    monkeypatch.setattr(recover, "host_facts", lambda c, needs: dict(facts(c, needs), free_mib=4096))  # the test driver
    # reports no free memory
    return test_host(NODE)


def recover_guest(conn, params, check, open_conn):
    runner = RecoverRunner(conn, params, check)
    runner.open_conn = open_conn
    return runner.run()


def guest(name, volume):
    return module_params(guest_options(), name=name, virt_type="qemu", memory="128MiB",
                         interfaces=[{"network": "default"}],
                         disks=[{"dev": "vda", "pool": "shared", "volume": volume, "size": "8MiB", "format": "raw"}])


def lost(_uri):
    raise LibvirtConnectionError("qemu+tcp://hv2/system", "no route to host")


def params(conn, spec, **extra):
    return dict({"uri": conn.getURI(), "guest": spec, "lost_uri": "qemu+tcp://hv2/system", "lost_host": "hv2",
                 "reachable_uris": [conn.getURI()], "fenced": False, "fence_evidence": None, "lock_manager": True,
                 "headroom_mib": 0}, **extra)


def test_a_guest_restarts_once_with_its_evidence_and_its_origin(conn):
    with pytest.raises(SpecError, match="fenced"):
        recover_guest(conn, params(conn, guest("r1", "r1.raw"), lock_manager=False), True, open_conn=lost)
    predicted = recover_guest(conn, params(conn, guest("r1", "r1.raw")), True, open_conn=lost)
    assert predicted["changed"] and [e["check"] for e in predicted["evidence"]] == [
        "lost host does not answer", "cannot still run it", "runs on no reachable host",
        "disks on shared storage, networks, room", "disk locks"]
    assert all(e["ok"] for e in predicted["evidence"]) and "no route to host" in predicted["evidence"][0]["detail"]
    assert conn.listAllDomains(0) == []  # check mode started nothing
    started = recover_guest(conn, params(conn, guest("r1", "r1.raw")), False, open_conn=lost)
    dom = conn.lookupByName("r1")
    assert started["state"] == "running" and dom.isActive()
    origin = read_origin(parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
    assert origin["host"] == "hv2" and origin["uri"] == "qemu+tcp://hv2/system"
    again = recover_guest(conn, params(conn, guest("r1", "r1.raw")), False, open_conn=lost)
    assert not again["changed"] and again["action"] == "left alone: runs here"


def test_a_guest_whose_disk_is_not_here_or_whose_host_answers_is_refused(conn):
    with pytest.raises(UserError) as refused:
        recover_guest(conn, params(conn, guest("r3", "r3.raw")), False, open_conn=lost)
    assert "volume shared/r3.raw is not on this hypervisor (it would be created empty)" in str(refused.value)
    assert refused.value.result["action"] == "refused" and conn.listAllDomains(0) == []
    with pytest.raises(UserError) as refused:
        recover_guest(conn, params(conn, guest("r1", "r1.raw")), False, open_conn=lambda uri: libvirt.open(conn.getURI()))
    assert "the lost host answers" in str(refused.value) and conn.listAllDomains(0) == []
