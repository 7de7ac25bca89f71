# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a running guest taking changes without a restart. ``split_live`` sorts a plan's changes into
what the guest takes now (each through its live kind: table.py, devices.py) and what waits for its next
boot; ``LiveGuest`` has the calls the live kinds make."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KIND, find_device
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.host import config_xml_flags
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import CONFIG_ONLY, LIVE_VCPUS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string


class LiveGuest:
    """The calls the live kinds make on a running guest (see table.py and devices.py)."""

    def __init__(self, conn, name, seed_dev=None):
        self.conn, self.name, self.seed_dev = conn, name, seed_dev
        self.dom = conn.lookupByName(name)

    def config_device(self, kind, key):
        """A device element from the new persistent config (with the address libvirt gave it)."""
        return find_device(parse_xml(self.dom.XMLDesc(config_xml_flags())), kind, key)

    def detach(self, op):
        elem = find_device(parse_xml(self.dom.XMLDesc(0)), op.kind, op.key)
        if elem is not None:
            self.dom.detachDeviceFlags(to_string(elem), libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def update(self, op):
        elem = self.config_device(op.kind, op.key)
        _drop_address(elem)
        self.dom.updateDeviceFlags(to_string(elem), libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def attach(self, op):
        elem = self.config_device(op.kind, op.key)
        try:
            self.dom.attachDeviceFlags(to_string(elem), libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except libvirt.libvirtError:
            # The config's address may be taken in the running guest: let libvirt pick one live.
            if elem.find("address") is None:
                raise
            _drop_address(elem)
            self.dom.attachDeviceFlags(to_string(elem), libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def refresh_seed_media(self):
        """New bytes in the same seed volume: eject and insert it again (same target, same address), so the
        guest sees a media change and reads the new content; libvirt skips a change to the same source."""
        elem = self.config_device("disks", self.seed_dev)
        _drop_address(elem)
        empty = etree.fromstring(to_string(elem))
        empty.set("type", "file")
        for source in empty.findall("source"):
            empty.remove(source)
        self.dom.updateDeviceFlags(to_string(empty), libvirt.VIR_DOMAIN_AFFECT_LIVE
                                   | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE)
        self.dom.updateDeviceFlags(to_string(elem), libvirt.VIR_DOMAIN_AFFECT_LIVE)


def _drop_address(elem):
    address = elem.find("address")
    if address is not None:
        elem.remove(address)


def split_live(plan, running):
    """(live, later): what a running guest takes now (Changes and DeviceOps with a live kind), and
    (what, reason) pairs for what waits for the next boot."""
    live, later = [], []
    if not running or plan.created:
        return live, later
    device_whats = set()
    for op in plan.device_ops:
        device_whats.update(c.what for c in op.changes)
        device_whats.add(DEVICE_KIND[op.kind].label(op.key))
        if op.live is not None:
            live.append(op)
        else:
            what = "; ".join(c.describe() for c in op.changes) or {"add": "added", "remove": "removed"}.get(op.op, op.op)
            later.append((op.label, "%s: %s" % (op.label, what)))
    # The running guest's vCPU maximum is fixed until it boots again: more vCPUs than it wait for the next boot.
    running_max = next((c.before for c in plan.changes if c.what == "max_vcpus" and c.before), None)
    for change in plan.changes:
        if change.what in device_whats or change.live is CONFIG_ONLY:
            continue
        if change.live is LIVE_VCPUS and running_max is not None and change.after and change.after > running_max:
            later.append((change.what, "%s (more than the running guest's maximum of %d vCPUs, which changes at "
                                       "its next boot)" % (change.describe(), running_max)))
        elif change.live is not None:
            live.append(change)
        else:
            later.append((change.what, change.describe()))
    return live, later


def live_label(item):
    """How a live change is listed in applied_live (the same words in check mode)."""
    return item.live.label(item)
