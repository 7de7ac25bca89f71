from __future__ import annotations

import pytest

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.info import shape_stats
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import tags_match


def test_shape_stats_nests_libvirt_flat_keys():
    flat = {"cpu.time": 123, "vcpu.current": 2, "balloon.current": 1024, "balloon.maximum": 2048, "balloon.rss": 900,
            "block.count": 2, "block.0.name": "vda", "block.0.rd.bytes": 10, "block.0.wr.bytes": 20,
            "block.0.capacity": 64, "block.1.name": "sda",
            "net.count": 1, "net.0.name": "vnet0", "net.0.rx.bytes": 5, "net.0.tx.bytes": 6}
    stats = shape_stats(flat)
    assert stats["cpu_time_ns"] == 123 and stats["vcpus"] == 2
    assert stats["memory"]["current_kib"] == 1024 and stats["memory"]["rss_kib"] == 900
    assert [d["dev"] for d in stats["disks"]] == ["vda", "sda"]
    assert stats["disks"][0]["read_bytes"] == 10 and stats["disks"][0]["capacity_bytes"] == 64
    assert stats["disks"][1]["read_bytes"] is None
    assert stats["nics"] == [{"dev": "vnet0", "rx_bytes": 5, "tx_bytes": 6, "rx_packets": None,
                              "tx_packets": None, "rx_drops": None, "tx_drops": None}]
    assert shape_stats({})["disks"] == []


@pytest.mark.parametrize("tags, wanted, expected", [
    ({"role": "web", "env": "prod"}, None, True),
    ({"role": "web", "env": "prod"}, ["role"], True),
    ({"role": "web"}, ["role", "env"], False),
    ({"role": "web"}, {"role": "web"}, True),
    ({"role": "web"}, {"role": "db"}, False),
    ({"role": "web"}, {"role": None}, True),
    (None, ["role"], False),
    (None, [], True),
])
def test_tags_match(tags, wanted, expected):
    assert tags_match(tags, wanted) is expected


def test_gather_reads_states_in_bulk(conn):
    """domain_info's (and the inventory's) read of a host on the test driver: states, kinds, addresses."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.info import gather
    dom = conn.defineXML("<domain type='test'><name>gather-off</name><memory>131072</memory>"
                         "<os><type>hvm</type></os></domain>")
    dom.setAutostart(1)
    try:
        guests = {g["name"]: g for g in gather(conn)}
        assert (guests["test"]["state"], guests["test"]["active"], guests["test"]["persistent"]) == ("running", True, True)
        assert set(guests["test"]["stats"]) >= {"cpu_time_ns", "memory", "disks", "nics"}
        assert guests["test"]["addresses"]["aa:bb:cc:dd:ee:ff"][0]["address"] == "192.168.122.3"
        off = guests["gather-off"]
        assert (off["state"], off["active"], off["autostart"], off["stats"], off["addresses"]) == (
            "shutoff", False, True, None, {})
        assert [g["name"] for g in gather(conn, name="gather-off")] == ["gather-off"]
        assert gather(conn, name="no-such-guest") == []
    finally:
        dom.undefine()


def test_a_guest_that_vanishes_while_it_is_read_is_left_out(conn):
    """Guests come and go while a run reads them: one undefined between the listing and its read is not an error
    (it failed the whole read before)."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain import info
    conn.defineXML("<domain type='test'><name>vanishing</name><memory>131072</memory><os><type>hvm</type></os></domain>")
    listed = conn.listAllDomains(0)

    class Listing:  # the listing is taken, then another writer undefines the guest
        def __getattr__(self, attr):
            return getattr(conn, attr)

        def listAllDomains(self, flags=0):
            if flags == 0:  # the first listing, of every guest
                conn.lookupByName("vanishing").undefine()
                return listed
            return conn.listAllDomains(flags)

    assert "vanishing" in [d.name() for d in listed]
    assert [g["name"] for g in info.gather(Listing())] == ["test"]


DISKS = """<domain type='kvm'><name>g</name><devices>
  <disk type='volume' device='disk'><source pool='p' volume='g.raw'/><target dev='vda'/></disk>
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/g2.qcow2'/><target dev='vdb'/>
    <shareable/></disk>
  <disk type='file' device='cdrom'><target dev='sda'/><readonly/></disk>
</devices></domain>"""


def test_disk_sizes_are_the_space_each_image_takes():
    """A running guest's from its block stats (libvirt's 'physical': its 'allocation' is only the highest offset
    written since start); a shut-off guest's from block_info; an empty cdrom is asked nothing."""
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.info import disk_sizes
    flat = {"block.count": 2, "block.0.name": "vda", "block.0.capacity": 100, "block.0.allocation": 0,
            "block.0.physical": 60, "block.1.name": "vdb", "block.1.capacity": 1000, "block.1.allocation": 5}
    running = disk_sizes(DISKS, flat)
    assert [(d["dev"], d["capacity_bytes"], d["allocation_bytes"]) for d in running] == [
        ("vda", 100, 60), ("vdb", 1000, 5), ("sda", None, None)]
    assert [(d["readonly"], d["shareable"], d["pool"], d["volume"], d["path"]) for d in running] == [
        (False, False, "p", "g.raw", None), (False, True, None, None, "/i/g2.qcow2"), (True, False, None, None, None)]
    asked = []
    named = {"block.count": 1, "block.0.name": "vda", "block.0.path": "/p/g.raw"}  # what a shut-off guest's stats say
    stopped = disk_sizes(DISKS, named, lambda disk: asked.append(disk["dev"]) or (7, 3))
    assert asked == ["vda", "vdb"]
    assert [(d["capacity_bytes"], d["allocation_bytes"]) for d in stopped] == [(7, 3), (7, 3), (None, None)]
