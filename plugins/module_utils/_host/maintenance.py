# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a hypervisor's maintenance mark (cordon), kept in the hypervisor's own libvirt.

libvirt has no host-level metadata, so the mark is a persistent network named ``kvmfleet-maintenance``
that is never started, carrying the reason and the time in its ``<metadata>`` (_metadata.MAINTENANCE). It is
readable over every URI that can list networks (no SSH to the host needed), survives a libvirtd restart and a
lost controller, and shows in ``virsh net-list --all``. While it exists no placement puts guests on the host,
and the domain and fleet modules create no guest there (an evacuated guest runs elsewhere).

``plan_maintenance`` is pure over (the mark now, what is wanted); ``MaintenanceRunner`` reads and writes it.
"""

from __future__ import annotations

import datetime

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import define, lookup_or_none
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._metadata import MAINTENANCE
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string

NAME = "kvmfleet-maintenance"
NS = MAINTENANCE.namespace
IN_SERVICE = {"cordoned": False, "reason": None, "since": None}


def parse_mark(xml):
    """{"cordoned": True, "reason", "since"} from the mark network's XML."""
    values = MAINTENANCE.read(parse_xml(xml)) or {"reason": None, "since": None}
    return {"cordoned": True, "reason": values["reason"], "since": values["since"]}


def network_xml(reason, since, uuid=None):
    """The mark network's definition: a network that is never started, with the mark in its metadata."""
    root = etree.Element("network")
    etree.SubElement(root, "name").text = NAME
    if uuid:  # an update of the mark keeps its network's UUID (libvirt refuses another)
        etree.SubElement(root, "uuid").text = uuid
    MAINTENANCE.write(root, {"reason": reason, "since": since})
    return to_string(root)


def read_maintenance(conn):
    """{"cordoned": bool, "reason", "since"} of the host behind ``conn``."""
    net = lookup_or_none(conn.networkLookupByName, NAME, "VIR_ERR_NO_NETWORK")
    if net is None:
        return dict(IN_SERVICE)
    return parse_mark(net.XMLDesc(0))


def plan_maintenance(current, state, reason, now):
    """The mark wanted, as a view plan over the mark now (``current``, read_maintenance's). ``now``: the time
    a new cordon records."""
    if state == "absent":
        return Plan("maintenance", current, dict(IN_SERVICE))
    if current["cordoned"] and (reason is None or current["reason"] == reason):
        return Plan("maintenance", current, current)
    since = current["since"] or now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Plan("maintenance", current, {"cordoned": True, "since": since,
                                         "reason": reason if reason is not None else current["reason"]})


class MaintenanceRunner(Runner):
    """Cordon (``state: present``) or uncordon (``absent``) the host behind the connection."""

    def __init__(self, conn, params, check, tmpdir=None, now=None):
        super().__init__(conn, params, check, tmpdir)
        self.now = now

    def run(self):
        now = self.now or datetime.datetime.now(datetime.timezone.utc)
        plan = plan_maintenance(read_maintenance(self.conn), self.params["state"], self.params.get("reason"), now)
        result = {"changed": plan.changed, "maintenance": plan.after}
        if plan.changed and not self.check:
            net = lookup_or_none(self.conn.networkLookupByName, NAME, "VIR_ERR_NO_NETWORK")
            if not plan.after["cordoned"]:
                if net.isActive():
                    net.destroy()
                net.undefine()
            else:
                define("network", self.conn.networkDefineXMLFlags,
                       network_xml(plan.after["reason"], plan.after["since"], None if net is None else net.UUIDString()))
        return self.finish(result)
