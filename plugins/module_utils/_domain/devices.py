# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: device lists (``disks``, ``interfaces``, ...). Each kind is its tag, its identity (a disk
by target dev, a NIC by MAC, a serial by position), its field table, the options that make up a
device's source, and which of its changes a running guest takes live.

Adding a device kind: a DeviceKind subclass here, its rows, an entry in DEVICE_KINDS, and the docs.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import HOST_NAME, ABS_PATH
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Choice, Int, Mac, Text, YesNo
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    PRESENCE,
    ElementList,
    Field,
    LiveKind,
    Option,
    argument_spec_of,
)

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
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

    def argspec(self):
        return {"type": "list", "elements": "dict", "options": argument_spec_of(tuple(self.fields) + tuple(self.options))}

    def select(self, devices):
        return devices.findall(self.tag)

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


class Disks(DeviceKind):
    name = "disks"
    tag = "disk"
    fields = (
        Field("device", "", "device", Choice("disk", "cdrom", "floppy", "lun"), option={"default": "disk"}),
        # A cdrom or floppy swaps (or ejects) its media live; see live_keys.
        Source({"file": ("file",), "block": ("dev",), "volume": ("pool", "volume"), "network": ("protocol", "name")},
               live=LIVE_UPDATE),
        Field("bus", "target", "bus", Choice("virtio", "sata", "scsi", "ide", "usb", "fdc")),
        Field("format", "driver", "type", Choice("raw", "qcow2", "vmdk", "vdi", "vpc", "qed", "iso")),
        Field("cache", "driver", "cache", Choice("default", "none", "writethrough", "writeback", "directsync",
                                                 "unsafe")),
        Field("io", "driver", "io", Choice("threads", "native", "io_uring")),
        Field("discard", "driver", "discard", Choice("unmap", "ignore")),
        Field("readonly", "readonly", PRESENCE),
        Field("shareable", "shareable", PRESENCE),
        Field("serial", "serial", codec=Text("diskSerial")),
        Field("boot_order", "boot", "order", Int(minimum=1)),
        ElementList("hosts", "source", "host", [("name", "name", HOST_NAME), ("port", "port", Int(1, 65535)),
                                                ("transport", "transport", Choice("tcp", "rdma", "unix"))]),
    )
    options = (
        Option("dev", {"type": "str"}),
        Option("path", {"type": "str"}),
        Option("pool", {"type": "str"}),
        Option("volume", {"type": "str"}),
        Option("block", {"type": "str"}),
        Option("network", {"type": "dict"}),  # protocol, name, hosts (checked by normalize)
        Option("size", {"type": "raw"}),
        Option("backing", {"type": "str"}),
    )

    def key_of(self, elem):
        target = elem.find("target")
        return None if target is None else target.get("dev")

    def build(self, spec):
        elem = etree.Element("disk", type=spec["source"][0], device=spec.get("device") or "disk")
        etree.SubElement(elem, "driver", name="qemu")
        etree.SubElement(elem, "target", dev=spec["_key"])
        return elem

    def live_keys(self, elem):
        # Media change: a cdrom or floppy can swap (or eject) its image while the guest runs.
        return super().live_keys(elem) if elem.get("device") in ("cdrom", "floppy") else set()


DISK_HOSTS = next(f for f in Disks.fields if f.key == "hosts")
DISK_HOSTS.composite = True  # part of the disk's network option
DISK_SOURCE = Disks.fields[1]


class Interfaces(DeviceKind):
    name = "interfaces"
    tag = "interface"
    fields = (
        Source({"network": ("network", "portgroup"), "bridge": ("bridge",), "direct": ("dev", "mode")}),
        Field("mac", "mac", "address", Mac()),
        Field("model", "model", "type", Text(pattern=r"[a-zA-Z0-9\-_]+"),  # the schema's inline pattern
              option={"default": "virtio"}),
        Field("link_state", "link", "state", Choice("up", "down"), live=LIVE_UPDATE),
        Field("mtu", "mtu", "size", Int(minimum=68, maximum=65535)),
        Field("vlan", "vlan/tag", "id", Int(minimum=0, maximum=4095)),
        Field("boot_order", "boot", "order", Int(minimum=1)),
    )
    options = (
        Option("network", {"type": "str"}),
        Option("portgroup", {"type": "str"}),
        Option("bridge", {"type": "str"}),
        Option("direct", {"type": "str"}),
        Option("direct_mode", {"type": "str", "default": "bridge", "choices": ["vepa", "bridge", "private", "passthrough"]}),
    )

    def key_of(self, elem):
        mac = elem.find("mac")
        return None if mac is None else mac.get("address", "").lower()

    def label(self, key):
        return "interface %s" % key

    def build(self, spec):
        return etree.Element("interface", type=spec["source"][0])

    def match(self, elems, specs, guest_name, taken_macs):
        """By MAC when the spec gives one; otherwise by order among the NICs no declared MAC claims.

        The k-th spec NIC without a MAC is the k-th such NIC of the guest and keeps its MAC, so
        re-running never changes a MAC. A new one gets the MAC derived from the guest name and its
        position in the list. The specs are not changed: each pair holds a copy with its MAC.
        """
        claimed = {spec["mac"] for spec in specs if spec.get("mac")}
        remaining = list(elems)
        free = [e for e in elems if self.key_of(e) not in claimed]
        pairs = []
        for index, spec in enumerate(specs):
            if spec.get("mac"):
                mac = spec["mac"]
                elem = next((e for e in remaining if self.key_of(e) == mac), None)
            elif free:
                elem = free.pop(0)
                mac = self.key_of(elem)
            else:
                elem = None
                mac = derive_mac(guest_name, index, _AnyOf(claimed, taken_macs))
            claimed.add(mac)
            if elem is not None:
                remaining.remove(elem)
            pairs.append((dict(spec, mac=mac, _key=mac), elem))
        return pairs, remaining


class Serials(DeviceKind):
    """Serial ports, by position; ``log`` keeps a file copy of the output (virtlogd)."""

    name = "serials"
    tag = "serial"
    fields = (
        Field("type", "", "type", Choice("pty", "file", "unix", "null", "stdio"), option={"default": "pty"}),
        Field("path", "source", "path", ABS_PATH),
        Field("log", "log", "file", ABS_PATH),
        Field("log_append", "log", "append", YesNo()),
    )

    def key_of(self, elem):
        return elem.getparent().findall(self.tag).index(elem)

    def label(self, key):
        return "serial %s" % key

    def build(self, spec):
        return etree.Element("serial", type=spec.get("type") or "pty")


class Consoles(Serials):
    name = "consoles"
    tag = "console"
    fields = (
        Field("type", "", "type", Choice("pty", "file", "unix", "null", "stdio"), option={"default": "pty"}),
        Field("target", "target", "type", Choice("serial", "virtio")),
    )

    def label(self, key):
        return "console %s" % key

    def build(self, spec):
        return etree.Element("console", type=spec.get("type") or "pty")


class Graphics(DeviceKind):
    """VNC or SPICE, one of each at most, identified by type. The password never leaves the module."""

    name = "graphics"
    tag = "graphics"
    fields = (
        Field("listen", "listen", "address", HOST_NAME, fixed={"type": "address"}),
        Field("autoport", "", "autoport", YesNo("yes", "no")),
        Field("port", "", "port", Int(minimum=-1, maximum=65535)),
        Field("password", "", "passwd", secret=True),
    )
    options = (Option("type", {"type": "str", "default": "vnc", "choices": ["vnc", "spice"]}),)

    def key_of(self, elem):
        return elem.get("type")

    def build(self, spec):
        return etree.Element("graphics", type=spec["_key"])


class Hostdevs(DeviceKind):
    """Host PCI and USB devices passed through, identified by host address ('pci:0000:03:00.0',
    'usb:1d6b:0002')."""

    name = "hostdevs"
    tag = "hostdev"
    fields = (Field("managed", "", "managed", YesNo("yes", "no"), option={"default": True}),)
    options = (Option("pci", {"type": "str"}), Option("usb", {"type": "str"}))
    _PCI = re.compile(r"^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")
    _USB = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")

    def select(self, devices):
        return [e for e in devices.findall("hostdev") if e.get("mode", "subsystem") == "subsystem"
                and e.get("type") in ("pci", "usb")]

    def key_of(self, elem):
        source = elem.find("source")
        if source is None:
            return None
        if elem.get("type") == "pci":
            addr = source.find("address")
            if addr is None:
                return None
            parts = [int(addr.get(n, "0"), 16) for n in ("domain", "bus", "slot", "function")]
            return "pci:%04x:%02x:%02x.%x" % tuple(parts)
        vendor, product = source.find("vendor"), source.find("product")
        if vendor is None or product is None:
            return None
        return "usb:%04x:%04x" % (int(vendor.get("id"), 16), int(product.get("id"), 16))

    def parse_key(self, raw, option):
        if raw.get("pci") and not raw.get("usb"):
            match = self._PCI.match(str(raw["pci"]))
            if match:
                domain, bus, slot, function = match.groups()
                return "pci:%04x:%02x:%02x.%x" % (int(domain or "0", 16), int(bus, 16), int(slot, 16),
                                                  int(function, 16))
            raise SpecError(option + "pci", raw["pci"], "expected a PCI address such as 0000:03:00.0")
        if raw.get("usb") and not raw.get("pci"):
            match = self._USB.match(str(raw["usb"]))
            if match:
                return "usb:%s:%s" % (match.group(1).lower(), match.group(2).lower())
            raise SpecError(option + "usb", raw["usb"], "expected vendor:product such as 1d6b:0002")
        raise SpecError(option + "pci", raw.get("pci"), "give exactly one of pci (an address) or usb (vendor:product)")

    def label(self, key):
        return "hostdev %s" % key

    def build(self, spec):
        kind, _sep, address = spec["_key"].partition(":")
        elem = etree.Element("hostdev", mode="subsystem", type=kind, managed="yes")
        source = etree.SubElement(elem, "source")
        if kind == "pci":
            domain, bus, rest = address.split(":")
            slot, function = rest.split(".")
            etree.SubElement(source, "address", domain="0x" + domain, bus="0x" + bus, slot="0x" + slot,
                             function="0x" + function)
        else:
            vendor, product = address.split(":")
            etree.SubElement(source, "vendor", id="0x" + vendor)
            etree.SubElement(source, "product", id="0x" + product)
        return elem


DEVICE_KINDS = (Disks(), Interfaces(), Serials(), Consoles(), Graphics(), Hostdevs())
DEVICE_KIND = {kind.name: kind for kind in DEVICE_KINDS}


class _AnyOf:
    """In any of the containers (checked in order, each only when asked)."""

    def __init__(self, *containers):
        self.containers = containers

    def __contains__(self, item):
        return any(item in container for container in self.containers)


def derive_mac(guest_name, index, taken):
    """52:54:00:xx:xx:xx from a hash of (guest name, NIC position), skipping MACs already taken.

    The same YAML gives the same MACs when a guest is rebuilt, so DHCP leases survive.
    """
    attempt = 0
    while True:
        seed = "%s/%d" % (guest_name, index) + ("/%d" % attempt if attempt else "")
        digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()
        mac = "52:54:00:%s:%s:%s" % (digest[0:2], digest[2:4], digest[4:6])
        if mac not in taken:
            return mac
        attempt += 1


def find_device(root, kind, key):
    """The device element of ``kind`` ('disks', ...) with identity ``key`` in a domain document, without
    its runtime alias (so it can be given to attach/update), or None."""
    model = DEVICE_KIND[kind]
    devices = root.find("devices")
    for elem in model.select(devices) if devices is not None else ():
        if model.key_of(elem) == key:
            for alias in elem.findall("alias"):
                elem.remove(alias)
            return elem
    return None
