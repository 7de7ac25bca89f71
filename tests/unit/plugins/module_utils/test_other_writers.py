"""Another writer starts the network or pool this run is making, between this run's define and its start: the run
ends with the object there and running, says so, and takes nothing back (taking it back would remove the other
writer's object). A race the fault suite met on the test bed, made certain here with libvirt's test driver."""

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import start
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.apply import NetworkRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.spec import argument_spec as network_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.apply import PoolRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.spec import argument_spec as pool_spec

from testdriver import module_params


class OvertakenConnection:
    """The test driver's connection, where every define is followed at once by another writer's start."""

    def __init__(self, conn):
        self.conn = conn

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def storagePoolDefineXML(self, xml, flags=0):  # noqa: N802 (libvirt's name)
        pool = self.conn.storagePoolDefineXML(xml, flags)
        pool.create(0)
        return pool

    def networkDefineXMLFlags(self, xml, flags=0):  # noqa: N802
        net = self.conn.networkDefineXMLFlags(xml, flags)
        net.create()
        return net


def test_a_pool_another_writer_started_meanwhile_is_kept(conn, tmp_path):
    params = module_params(pool_spec(), name="overtaken", type="dir", path=str(tmp_path / "p"), build=True,
                           state="active")
    try:
        result = PoolRunner(OvertakenConnection(conn), params, False).run()
        pool = conn.storagePoolLookupByName("overtaken")
        assert pool.isActive() and pool.isPersistent()
        assert result["state"] == "active" and result["created"]
        assert "start (already started by another writer)" in result["actions"], result["actions"]
    finally:
        for name in conn.listAllStoragePools():
            if name.name() == "overtaken":
                if name.isActive():
                    name.destroy()
                name.undefine()


def test_a_network_another_writer_started_meanwhile_is_kept(conn):
    params = module_params(network_spec(), name="overtaken", bridge="overtaken0", state="active")
    try:
        result = NetworkRunner(OvertakenConnection(conn), params, False).run()
        net = conn.networkLookupByName("overtaken")
        assert net.isActive() and net.isPersistent()
        assert "start (already started by another writer)" in result["actions"], result["actions"]
    finally:
        for net in conn.listAllNetworks():
            if net.name() == "overtaken":
                if net.isActive():
                    net.destroy()
                net.undefine()


def test_start_says_whether_this_call_started_it_and_raises_every_other_failure(conn):
    net = conn.networkDefineXML("<network><name>started</name><bridge name='started0'/></network>")
    try:
        assert start(net, net.create) is True
        assert start(net, net.create) is False  # already active: another writer's start
        net.destroy()
        with pytest.raises(libvirt.libvirtError):
            start(net, lambda: conn.networkLookupByName("no-such-network").create())
    finally:
        if net.isActive():
            net.destroy()
        net.undefine()
