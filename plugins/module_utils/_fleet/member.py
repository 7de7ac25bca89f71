# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: one hypervisor's fleet task as a member of the cluster (the fleet module's ``cluster`` option,
computed by ``cluster.assign``): what it adds to converging its list.

- Every guest it converges has libvirt's autostart off: in a cluster, guests are started by the fleet (a
  guest's ``state: running``), never by a hypervisor's libvirtd when it comes back - it may come back with the
  definitions of guests that were recovered elsewhere while it was away (docs/migration.md).
- Prune keeps every guest the description declares on any hypervisor.
- Stale copies (a guest that is current on another hypervisor) are undefined here, their disks and UEFI
  variables kept; a copy that runs again by now is not touched and fails the task.
- Guests held back (a hypervisor did not answer) and guests refused (runs twice, current copy unknown) are
  entries of the result, with their ``code`` and ``reason``.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import parse_uuid
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt, libvirt_error_code, lookup_or_none

AUTOSTART_OFF = ("autostart: true is not applied: in a cluster, libvirt never starts a guest by itself (a hypervisor that "
                 "comes back could start a stale copy); the fleet starts it (state: running)")


def _entry(name, **fields):
    entry = {"name": name, "error": None, "removed": False, "changed": False}
    entry.update(fields)
    return entry


class Member:
    """The ``cluster`` option (None: the fleet is not run as part of a cluster, and nothing here applies)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.asked_autostart = set()
        if cluster is None:
            self.declared, self.retiring, self.placement, self.held = None, set(), {}, {}
            return
        self.declared = {"names": {d["name"] for d in cluster["declared"]},
                         "uuids": {parse_uuid(d["uuid"], "cluster.declared.uuid") for d in cluster["declared"]
                                   if d.get("uuid")}}
        self.retiring = {item["name"] for item in cluster["retire"]}
        self.placement = {item["name"]: item for item in cluster["placement"]}
        self.held = {item["name"]: item for item in cluster["hold"]}

    def guests(self, raw_guests):
        """The listed guests as this member converges them: libvirt's autostart off."""
        if self.cluster is None:
            return raw_guests
        result = []
        for raw in raw_guests:
            if isinstance(raw, dict):
                if raw.get("autostart"):
                    self.asked_autostart.add(raw.get("name"))
                raw = dict(raw, autostart=False)
            result.append(raw)
        return result

    def annotate(self, name, result):
        if name in self.asked_autostart:
            result.setdefault("warnings", []).append(AUTOSTART_OFF)
        held = self.held.get(name)
        if held is not None:
            result.setdefault("warnings", []).append(held["reason"])

    def fields(self, name):
        """What a converged guest's entry says of its place in the cluster: ``home``, ``runs_on``, ``why`` (and
        ``held``, with its ``code`` and ``reason``, when it was not started)."""
        fields = {}
        place = self.placement.get(name)
        if place is not None:
            fields.update(home=place["home"], runs_on=place["runs_on"], why=place["why"], placement=place["code"])
        held = self.held.get(name)
        if held is not None:
            fields.update(held=True, code=held["code"], reason=held["reason"])
        return fields

    def settle(self, conn, host, check):
        """The entries of what this member does besides converging its list: stale copies retired, guests held
        back, guests refused."""
        if self.cluster is None:
            return []
        entries = [self._retire(conn, host, item, check) for item in self.cluster["retire"]]
        converged = set(self.placement)
        entries += [_entry(item["name"], held=True, code=item["code"], reason=item["reason"])
                    for item in self.cluster["hold"] if item["name"] not in converged]
        entries += [_entry(item["name"], error=item["reason"], code=item["code"]) for item in self.cluster["conflicts"]]
        return entries

    def _retire(self, conn, host, item, check):
        """Undefine a stale copy, keeping its disks and UEFI variables; refuse a copy that runs now."""
        name = item["name"]
        dom = lookup_or_none(conn.lookupByUUIDString, item["uuid"], "VIR_ERR_NO_DOMAIN") if item.get("uuid") \
            else lookup_or_none(conn.lookupByName, name, "VIR_ERR_NO_DOMAIN")
        if dom is None:
            return _entry(name, code=item["code"], reason="%s; it is gone already" % item["reason"])
        if dom.isActive():
            return _entry(name, code="runs_twice", error="%s - but this copy runs now: it was not removed. The guest "
                                                         "runs twice: stop the copy that should not run" % item["reason"])
        if dom.snapshotNum(0):
            return _entry(name, code="refused", error="%s - but this copy has snapshots (%s): it was not removed; "
                                                      "delete them first" % (item["reason"], ", ".join(dom.snapshotListNames(0))))
        entry = _entry(name, removed=True, retired=True, changed=True, code=item["code"], reason=item["reason"],
                       actions=["undefine the stale copy (its disks and UEFI variables kept)"])
        if not check:
            try:
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
            except libvirt.libvirtError as exc:
                if libvirt_error_code(exc) not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
                    raise
                dom.undefineFlags(0)
            host.forget(dom.name())
        return entry
