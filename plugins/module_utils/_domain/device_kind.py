# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what every device kind shares (devices.py lists the kinds). A device kind is a DeviceKind subclass, and
everything about it lives in it: its tag, its identity (a disk by target dev, a NIC by MAC, a serial by position),
its field table, the options that make up a device's source (``Source``), how a list of it is normalised from the
user's options (``normalize``) and read back into them (``read_back``), and which of its changes a running guest
takes live (``LIVE_ATTACH``, ``LIVE_DETACH``, ``LIVE_UPDATE``).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    Field,
    LiveKind,
    argument_spec_of,
    parse_fields,
    read_fields,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree

# Device operations on a running guest (the persistent config is always redefined as well).
LIVE_ATTACH = LiveKind("attach", lambda op: "attach %s" % op.label, lambda guest, op: guest.attach(op))
LIVE_DETACH = LiveKind("detach", lambda op: "detach %s" % op.label, lambda guest, op: guest.detach(op))
LIVE_UPDATE = LiveKind("update", lambda op: "update %s" % op.label, lambda guest, op: guest.update(op))


class Source(Field):
    """A device's backend as one value: (type attribute, {source attributes}).

    Changing it rewrites the ``type`` attribute and the ``<source>`` element together. Its options
    (a disk's ``path`` or ``pool`` and ``volume``, a NIC's ``network``) are the kind's Options.
    """

    composite = True  # made up of other options: no argument spec entry, read back by the kind

    def __init__(self, attrs_by_type, live=None):
        super().__init__("source", "source", "type", live=live)
        self.attrs_by_type = attrs_by_type
        self.codec = self

    def argspec(self):
        return None

    # codec side: shown as the user wrote it
    def show(self, value):
        kind, attrs = value
        return "%s %s" % (kind, " ".join("%s=%s" % pair for pair in attrs)) if attrs else "%s (empty)" % kind

    def read(self, elem):
        kind = elem.get("type")
        node = elem.find("source")
        names = self.attrs_by_type.get(kind, ())
        attrs = {} if node is None else {n: node.get(n) for n in names if node.get(n) is not None}
        return (kind, tuple(sorted(attrs.items())))

    def write(self, elem, value):
        kind, attrs = value
        elem.set("type", kind)
        node = elem.find("source")
        if not attrs:
            if node is not None:
                elem.remove(node)
            return
        if node is None:
            node = etree.Element("source")
            elem.insert(_source_position(elem), node)
        for name in list(node.attrib):
            node.attrib.pop(name)
        for name, attr_value in attrs:
            node.set(name, attr_value)


def _source_position(elem):
    driver = elem.find("driver")
    return elem.index(driver) + 1 if driver is not None else 0


class DeviceKind:
    """A list of devices in the spec and how each maps to XML."""

    name = ""
    tag = ""
    fields = ()
    options = ()  # spec-only options (the source's parts), for the argument spec
    hotplug = True  # whether libvirt attaches and detaches one on a running guest (else: at its next boot)

    def argspec(self):
        return {"type": "list", "elements": "dict", "options": argument_spec_of(tuple(self.fields) + tuple(self.options))}

    def select(self, devices):
        """The devices of this kind in a ``<devices>`` element that its options can express (``expressible``)."""
        return [elem for elem in devices.findall(self.tag) if self.expressible(elem)]

    def expressible(self, elem):
        """Whether this kind's options can say what the device is: its read-back is valid input. One that is not (a
        NIC of type vhostuser, a graphics type the options do not offer, a disk with a relative path) is not this
        list's: it is kept as it is whatever the list says, left out of the read-back spec (which so never holds an
        option the module refuses), and changed only through ``xml_edits``."""
        try:
            self.normalize([self.read_back(elem)])
        except (UserError, ValueError, TypeError, KeyError, AttributeError):
            return False
        return True

    def kept(self, devices):
        """{identity: element} of the devices of this kind the options cannot express (kept as they are)."""
        return {self.key_of(elem): elem for elem in devices.findall(self.tag) if not self.expressible(elem)}

    def key_of(self, elem):
        raise NotImplementedError

    def label(self, key):
        return "%s %s" % (self.tag, key)

    def build(self, spec):
        """A new, empty element for ``spec``; reconcile fills it in."""
        return etree.Element(self.tag)

    def live_keys(self, elem):
        """Field keys whose change a running guest takes through virDomainUpdateDeviceFlags."""
        return {field.key for field in self.fields if field.live is LIVE_UPDATE}

    def match(self, elems, specs, guest_name, taken_macs):
        """Pair specs with current elements by identity: ([(spec, elem or None)], unmatched elems).
        The specs are returned as they are (kinds that resolve identities return new dicts)."""
        by_key = {self.key_of(e): e for e in elems}
        pairs = [(spec, by_key.pop(spec["_key"], None)) for spec in specs]
        return pairs, list(by_key.values())

    # -- the user's options, both ways ------------------------------------------------------------------

    def option(self, index):
        """The option prefix of the list's item ``index`` ('disks[0].')."""
        return "%s[%d]." % (self.name, index)

    def normalize(self, raw_list):
        """The user's list -> normalised specs (pure; SpecError naming the option). Each spec has its identity in
        ``_key``. By default: the fields through the table, identified by position."""
        return [dict(self.normalize_item(raw, self.option(index)), _key=self.key_of_raw(raw, index))
                for index, raw in enumerate(raw_list)]

    def normalize_item(self, raw, option):
        return parse_fields(self.fields, raw, option)

    def key_of_raw(self, raw, index):
        return index

    def read_back(self, elem):
        """One device as a user would declare it (valid input for ``normalize``): by default its fields."""
        return read_fields(elem, self.fields)
