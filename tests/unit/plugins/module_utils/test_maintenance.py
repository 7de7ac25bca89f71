"""The maintenance mark (_host/maintenance.py) and a guest's recorded origin (_migrate/origin.py), against
libvirt's test driver and plain XML."""

from __future__ import annotations

import datetime

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.info import _networks
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.maintenance import (
    NAME,
    MaintenanceRunner,
    read_maintenance,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.origin import origin_after, read_origin, with_origin
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

NOW = datetime.datetime(2026, 12, 2, 4, 0, tzinfo=datetime.timezone.utc)


def set_maintenance(conn, state, reason, check, now=None):
    return MaintenanceRunner(conn, {"state": state, "reason": reason}, check, now=now).run()


def test_cordon_is_idempotent_honest_in_check_mode_and_reversible(conn):
    assert read_maintenance(conn) == {"cordoned": False, "reason": None, "since": None}
    predicted = set_maintenance(conn, "present", "kernel update", True, now=NOW)
    assert predicted["changed"] and predicted["maintenance"]["reason"] == "kernel update"
    assert not read_maintenance(conn)["cordoned"]  # check mode wrote nothing
    assert set_maintenance(conn, "present", "kernel update", False, now=NOW)["changed"]
    assert read_maintenance(conn) == {"cordoned": True, "reason": "kernel update", "since": "2026-12-02T04:00:00Z"}
    assert not set_maintenance(conn, "present", "kernel update", False)["changed"]
    assert not set_maintenance(conn, "present", None, False)["changed"]  # no reason given: the one it has stays
    later = datetime.datetime(2026, 12, 3, tzinfo=datetime.timezone.utc)
    assert set_maintenance(conn, "present", "disk swap", False, now=later)["changed"]
    assert read_maintenance(conn) == {"cordoned": True, "reason": "disk swap", "since": "2026-12-02T04:00:00Z"}
    mark = {}
    assert NAME not in [n["name"] for n in _networks(conn, mark)]  # host_info's networks; the mark on its own
    assert mark["cordoned"] and mark["reason"] == "disk swap"
    assert not conn.networkLookupByName(NAME).isActive()  # never started
    assert set_maintenance(conn, "absent", None, True)["changed"] and read_maintenance(conn)["cordoned"]
    assert set_maintenance(conn, "absent", None, False)["changed"]
    assert not set_maintenance(conn, "absent", None, False)["changed"]
    mark = {}
    _networks(conn, mark)
    assert mark == {}


DOMAIN = """<domain type='qemu'><name>g</name><memory>131072</memory><metadata>
<other:x xmlns:other="https://example.com/other"/></metadata><os><type>hvm</type></os></domain>"""


def test_origin_is_recorded_once_kept_on_the_way_and_cleared_at_home():
    home = {"uuid": "u1", "uri": "qemu+tcp://hv1/system", "host": "hv1", "since": "2026-12-02T04:00:00Z"}
    assert read_origin(parse_xml(DOMAIN)) is None
    away = with_origin(DOMAIN, home)
    assert read_origin(parse_xml(away)) == home
    assert parse_xml(away).find("metadata/{https://example.com/other}x") is not None  # others' metadata stays
    # recorded when asked and none is there; kept on a second move (hv2 -> hv3); cleared when it reaches hv1
    assert origin_after(None, True, home, "u2") == home
    assert origin_after(None, False, home, "u2") is None
    assert origin_after(home, True, {"uuid": "u2", "host": "hv2"}, "u3") == home
    assert origin_after(home, False, {"uuid": "u3"}, "u1") is None
    recovered = {"uri": "qemu+tcp://hv2/system", "host": "hv2"}  # no UUID: its home did not answer
    assert origin_after(recovered, False, {}, "u2", "qemu+tcp://hv2/system") is None
    assert origin_after(recovered, False, {}, "u3", "qemu+tcp://hv3/system") == recovered
    back = with_origin(away, None)
    assert read_origin(parse_xml(back)) is None
    assert parse_xml(back).find("metadata/{https://example.com/other}x") is not None
    bare = with_origin(with_origin(DOMAIN.replace("<metadata>\n<other:x xmlns:other=\"https://example.com/other\"/></metadata>", ""),
                                   home), None)
    assert parse_xml(bare).find("metadata") is None
