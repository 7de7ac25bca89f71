# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the cluster view, read once for a run: every hypervisor of a group read in parallel (one
read-only connection each, one listing of its guests and one XML read per guest, as the inventory plugin
reads), shaped as data for ``cluster.assign``.

A hypervisor that does not answer is in the view with ``reachable: false`` and its error: its guests are
unknown, and ``assign`` holds back whatever could be a second copy of one of them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.maintenance import read_maintenance
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt, open_connection
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import GUEST, ORIGIN
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml


def guest_entry(hypervisor, xml, active, persistent, autostart):
    """One guest of the view, from its XML and the listings it is in."""
    root = parse_xml(xml)
    return {"name": root.findtext("name"), "uuid": (root.findtext("uuid") or "").lower(), "hypervisor": hypervisor,
            "active": active, "persistent": persistent, "autostart": autostart,
            "managed": GUEST.find(root) is not None, "origin": ORIGIN.read(root)}


def _uuids(conn, flag):
    return {dom.UUIDString() for dom in conn.listAllDomains(flag)}


def read_hypervisor(name, uri):
    """(hypervisor entry, guests) of one hypervisor; unreachable (with the error) when it does not answer or
    fails part way."""
    entry = {"name": name, "uri": uri, "reachable": False, "error": None, "host_uuid": None, "cordoned": False}
    try:
        conn = open_connection(uri, readonly=True)
    except UserError as exc:
        entry["error"] = str(exc)
        return entry, []
    try:
        caps = parse_xml(conn.getCapabilities())
        entry["host_uuid"] = (caps.findtext("host/uuid") or "").lower() or None
        entry["cordoned"] = read_maintenance(conn)["cordoned"]
        active = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        persistent = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)
        autostart = _uuids(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_AUTOSTART)
        guests = []
        for dom in conn.listAllDomains(0):
            uuid = dom.UUIDString()
            try:
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError:  # gone between the listing and the read
                continue
            guests.append(guest_entry(name, xml, uuid in active, uuid in persistent, uuid in autostart))
        entry["reachable"] = True
        return entry, guests
    except libvirt.libvirtError as exc:
        entry["error"] = "reading %s failed: %s" % (uri, exc)
        return entry, []
    finally:
        conn.close()


def check_hypervisors(hypervisors):
    seen = set()
    for index, item in enumerate(hypervisors):
        if item["name"] in seen:
            raise SpecError("hypervisors[%d].name" % index, item["name"], "each hypervisor is listed once")
        seen.add(item["name"])


def read_cluster(hypervisors, parallel=16):
    """The cluster view of ``hypervisors`` ([{"name", "uri"}]): {"hypervisors": [...], "guests": [...]}, the
    guests of the reachable ones, each naming its hypervisor."""
    check_hypervisors(hypervisors)
    if not hypervisors:
        return {"hypervisors": [], "guests": []}
    workers = max(1, min(parallel, len(hypervisors)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        read = list(pool.map(lambda h: read_hypervisor(h["name"], h["uri"]), hypervisors))
    return {"hypervisors": [entry for entry, _guests in read],
            "guests": [guest for _entry, guests in read for guest in guests]}
