# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a hypervisor's maintenance mark (cordon), kept in the hypervisor's own libvirt.

libvirt has no host-level metadata, so the mark is a persistent network named ``kvmfleet-maintenance``
that is never started, carrying the reason and the time in its ``<metadata>``. It is readable over
every URI that can list networks (no SSH to the host needed), survives a libvirtd restart and a lost
controller, and shows in ``virsh net-list --all``. While it exists no placement puts guests on the host,
and the domain and fleet modules create no guest there (an evacuated guest runs elsewhere).
"""

from __future__ import annotations

import datetime

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import lookup_or_none
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string

NAME = "kvmfleet-maintenance"
NS = "https://kvmfleet.dev/xmlns/libvirt/maintenance/1"


def parse_mark(xml):
    """{"cordoned": True, "reason", "since"} from the mark network's XML."""
    node = parse_xml(xml).find("metadata/{%s}maintenance" % NS)
    if node is None:
        return {"cordoned": True, "reason": None, "since": None}
    return {"cordoned": True, "reason": node.get("reason"), "since": node.get("since")}


def mark_xml(reason, since, uuid=None):
    root = etree.Element("network")
    etree.SubElement(root, "name").text = NAME
    if uuid:  # an update of the mark keeps its network's UUID (libvirt refuses another)
        etree.SubElement(root, "uuid").text = uuid
    metadata = etree.SubElement(root, "metadata")
    node = etree.SubElement(metadata, "{%s}maintenance" % NS, nsmap={"kvmfleet": NS})
    node.set("since", since)
    if reason:
        node.set("reason", reason)
    return to_string(root)


def read_maintenance(conn):
    """{"cordoned": bool, "reason", "since"} of the host behind ``conn``."""
    net = lookup_or_none(conn.networkLookupByName, NAME, "VIR_ERR_NO_NETWORK")
    if net is None:
        return {"cordoned": False, "reason": None, "since": None}
    return parse_mark(net.XMLDesc(0))


def set_maintenance(conn, state, reason, check, now=None):
    """Cordon (``state='present'``) or uncordon (``'absent'``) the host; the module's result."""
    before = read_maintenance(conn)
    result = {"changed": False, "maintenance": before}
    if state == "absent":
        if before["cordoned"]:
            result.update(changed=True, maintenance={"cordoned": False, "reason": None, "since": None})
            if not check:
                net = conn.networkLookupByName(NAME)
                if net.isActive():
                    net.destroy()
                net.undefine()
        return result
    if before["cordoned"] and (reason is None or before["reason"] == reason):
        return result
    since = before["since"] or (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = {"cordoned": True, "reason": reason if reason is not None else before["reason"], "since": since}
    result.update(changed=True, maintenance=after)
    if not check:
        net = lookup_or_none(conn.networkLookupByName, NAME, "VIR_ERR_NO_NETWORK")
        conn.networkDefineXML(mark_xml(after["reason"], since, None if net is None else net.UUIDString()))
    return result
