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
