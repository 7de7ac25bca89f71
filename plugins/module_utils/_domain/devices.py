# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: device lists (``disks``, ``interfaces``, ...). A device kind is one class here, and everything about
it lives in it: its tag, its identity (a disk by target dev, a NIC by MAC, a serial by position), its field
table, the options that make up a device's source, how a list of it is normalised from the user's options
(``normalize``) and read back into them (``read_back``), and which of its changes a running guest takes live.
The argument spec, the plan, the read-back spec and the diff's secret masking all go through DEVICE_KINDS.

Adding a device kind: a DeviceKind subclass here and its entry in DEVICE_KINDS; its options in the domain
module's DOCUMENTATION (and ``python tools/fleet_doc.py`` for the fleet module's copy); docs/domain.md.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import ABS_PATH, DEVICE_NAME, HOST_NAME
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import (
    NETWORK_NAME,
    POOL_NAME,
    VOLUME_NAME,
    Choice,
    Int,
    Mac,
    Text,
    YesNo,
    parse_disk_size,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    PRESENCE,
    ElementList,
    Field,
    LiveKind,
    Option,
    argument_spec_of,
    parse_fields,
    read_fields,
    show_fields,
)

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml

_DISK_TARGET = Text("diskTargetDev", accepted="expected a target device name such as vda, sdb or hdc")
_DISK_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd", "fdc": "fd"}


def host_path(value, option):
    """An absolute path on the host, as libvirt's schema takes it, and without '..' components (a
    disk's path is the user's choice; a path that climbs out of where it names is refused)."""
    path = ABS_PATH.parse(value, option)
    if "/../" in path + "/" or "/./" in path + "/":
        raise SpecError(option, value, "expected an absolute path without '.' or '..' components")
    return path


def disk_dev_name(prefix, number):
    """The ``number``-th target dev name of a bus prefix: vda, vdb, ..., vdz, vdaa."""
    name = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(ord("a") + rest) + name
    return prefix + name


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

    def normalize(self, raw_list):
        """Disks: one source each (path, pool and volume, block, or network), a size only with its unit, a base
        image only for a qcow2 volume, and a target dev of its own (the next free one for the bus when not given)."""
        disks, used = [], set()
        for index, raw in enumerate(raw_list):
            option = self.option(index)
            spec = parse_fields(self.fields, raw, option)
            spec["device"] = spec.get("device") or "disk"
            spec.setdefault("bus", "sata" if spec["device"] == "cdrom" else "virtio")
            spec["source"] = self._source(raw, spec, option)
            if raw.get("size") is not None:
                spec["size"] = parse_disk_size(raw["size"], option + "size")
            if raw.get("backing") is not None:
                self._backing(raw, spec, option)
            if spec["device"] == "cdrom":
                spec["readonly"] = True
            dev = _DISK_TARGET.parse(raw.get("dev"), option + "dev")
            if dev is None:
                prefix = _DISK_PREFIX[spec["bus"]]
                number = 0
                while disk_dev_name(prefix, number) in used or any(
                        r.get("dev") == disk_dev_name(prefix, number) for r in raw_list):
                    number += 1
                dev = disk_dev_name(prefix, number)
            if dev in used:
                raise SpecError(option + "dev", dev, "each disk needs its own target dev; %s is used twice" % dev)
            used.add(dev)
            spec["_key"] = dev
            spec["dev"] = dev
            disks.append(spec)
        return disks

    @staticmethod
    def _source(raw, spec, option):
        sources = [k for k in ("path", "volume", "block", "network") if raw.get(k) is not None]
        if len(sources) > 1:
            raise SpecError(option + "path", raw.get("path"),
                            "give one of path, volume (with pool), block or network, not %s" % " and ".join(sources))
        if raw.get("volume") is not None:
            if not raw.get("pool"):
                raise SpecError(option + "pool", raw.get("pool"), "a pool name is needed with volume")
            pool = POOL_NAME.parse(raw["pool"], option + "pool")
            volume = VOLUME_NAME.parse(raw["volume"], option + "volume")
            return ("volume", tuple(sorted({"pool": pool, "volume": volume}.items())))
        if raw.get("block") is not None:
            return ("block", (("dev", host_path(raw["block"], option + "block")),))
        if raw.get("network") is not None:
            net = raw["network"]
            if not isinstance(net, dict) or not net.get("protocol") or not net.get("name"):
                raise SpecError(option + "network", net, "expected a dict with protocol, name and hosts")
            protocol = Choice("rbd", "iscsi", "nbd", "gluster", "http", "https", "ftp", "ssh").parse(
                net["protocol"], option + "network.protocol")
            hosts = DISK_HOSTS.parse(net.get("hosts") or [], option + "network.hosts")
            if hosts:
                spec["hosts"] = hosts
            return ("network", tuple(sorted({"protocol": protocol, "name": net["name"]}.items())))
        if raw.get("path") is not None:
            return ("file", (("file", host_path(raw["path"], option + "path")),))
        if spec["device"] in ("cdrom", "floppy"):
            return ("file", ())  # an empty drive
        raise SpecError(option + "path", None, "a disk needs path, volume (with pool), block or network")

    @staticmethod
    def _backing(raw, spec, option):
        if spec["source"][0] not in ("volume", "file") or not dict(spec["source"][1]).get(
                "volume", dict(spec["source"][1]).get("file")) or spec["device"] != "disk":
            raise SpecError(option + "backing", raw["backing"],
                            "a base image is for a disk (device: disk) made as a volume (pool and volume, or a "
                            "path in a pool's directory)")
        if spec.get("format") not in (None, "qcow2"):
            raise SpecError(option + "format", spec["format"], "a disk with a backing image is a qcow2 overlay; "
                                                               "use format: qcow2 or leave format out")
        spec["backing"] = str(raw["backing"])

    def read_back(self, elem):
        facts = disk_facts(elem)
        disk = {"dev": facts["dev"]}
        disk.update(show_fields(self.fields, facts))
        if facts["type"] == "file" and facts["path"]:
            disk["path"] = facts["path"]
        elif facts["type"] == "volume":
            disk.update(pool=facts["pool"], volume=facts["volume"])
        elif facts["type"] == "block":
            disk["block"] = facts["path"]
        elif facts["type"] == "network":
            disk["network"] = {"protocol": facts["protocol"], "name": facts["name"], "hosts": facts["hosts"]}
            disk["network"] = {key: value for key, value in disk["network"].items() if value is not None}
        return disk


DISK_HOSTS = next(f for f in Disks.fields if f.key == "hosts")
DISK_HOSTS.composite = True  # part of the disk's network option
DISK_SOURCE = Disks.fields[1]


def disk_facts(elem):
    """What one disk is, read through the disk kind's table: the one reader of a guest's disks (the read-back
    spec, snapshots, the migration pre-flight, storage removal and domain_info all start here).

    {"dev", "device", "bus", "format", "cache", "readonly", "shareable", ... (every field of the table as it reads
    it), "type" (file, block, volume, network), "path" (the host file or block device), "pool", "volume",
    "protocol", "name" (a network disk's), "hosts" (its hosts, as a user writes them), "empty" (a drive without
    media), "writable" (the guest writes to it: a disk with media, not read-only, not a cdrom or floppy)}.
    """
    facts = {field.key: field.read(elem) for field in Disks.fields if not field.composite}
    kind, attrs = DISK_SOURCE.read(elem)
    attrs = dict(attrs)
    facts.update(dev=DEVICE_KIND["disks"].key_of(elem), type=kind, path=attrs.get("file") or attrs.get("dev"),
                 pool=attrs.get("pool"), volume=attrs.get("volume"), protocol=attrs.get("protocol"),
                 name=attrs.get("name"), hosts=DISK_HOSTS.show(DISK_HOSTS.read(elem)), empty=not attrs)
    facts["writable"] = not (facts["empty"] or facts["readonly"] or facts["device"] in ("cdrom", "floppy"))
    return facts


def guest_disks(root):
    """disk_facts of each of a guest's disks, in document order (``root``: its parsed XML or the text)."""
    if isinstance(root, (str, bytes)):
        root = parse_xml(root)
    devices = root.find("devices")
    return [] if devices is None else [disk_facts(elem) for elem in DEVICE_KIND["disks"].select(devices)]


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
        free = self._free(elems, claimed)
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

    def normalize(self, raw_list):
        """NICs: exactly one of network, bridge or direct each, and no MAC twice."""
        nics, macs = [], set()
        for index, raw in enumerate(raw_list):
            option = self.option(index)
            spec = parse_fields(self.fields, raw, option)
            kinds = [k for k in ("network", "bridge", "direct") if raw.get(k)]
            if len(kinds) != 1:
                raise SpecError(option + "network", raw.get("network"),
                                "give exactly one of network, bridge or direct (a host interface)")
            kind = kinds[0]
            if kind == "network":
                attrs = {"network": NETWORK_NAME.parse(raw["network"], option + "network")}
                if raw.get("portgroup"):
                    attrs["portgroup"] = DEVICE_NAME.parse(raw["portgroup"], option + "portgroup")
            elif kind == "bridge":
                attrs = {"bridge": DEVICE_NAME.parse(raw["bridge"], option + "bridge")}
            else:
                attrs = {"dev": DEVICE_NAME.parse(raw["direct"], option + "direct"),
                         "mode": raw.get("direct_mode") or "bridge"}
            spec["source"] = (kind, tuple(sorted(attrs.items())))
            spec.setdefault("model", "virtio")
            if spec.get("mac"):
                if spec["mac"] in macs:
                    raise SpecError(option + "mac", spec["mac"], "each interface needs its own MAC")
                macs.add(spec["mac"])
            nics.append(spec)
        return nics

    def read_back(self, elem):
        nic = read_fields(elem, self.fields)
        kind, attrs = self.fields[0].read(elem)
        attrs = dict(attrs)
        if kind == "network":
            nic["network"] = attrs.get("network")
            if attrs.get("portgroup"):
                nic["portgroup"] = attrs["portgroup"]
        elif kind == "bridge":
            nic["bridge"] = attrs.get("bridge")
        elif kind == "direct":
            nic.update(direct=attrs.get("dev"), direct_mode=attrs.get("mode"))
        else:
            nic["type"] = kind  # not expressible in the friendly spec (user, vhostuser, ...)
        return nic

    def _free(self, elems, claimed):
        """The guest's NICs no declared MAC claims, in order: those the NICs declared without a MAC take."""
        return [e for e in elems if self.key_of(e) not in claimed]

    def derives_mac(self, elems, specs):
        """Whether ``match`` will derive a MAC (more NICs declared without a MAC than the guest has NICs for them):
        only then must the host's other guests' MACs be known."""
        claimed = {spec["mac"] for spec in specs if spec.get("mac")}
        return sum(1 for spec in specs if not spec.get("mac")) > len(self._free(elems, claimed))


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

    def build(self, spec):
        return etree.Element(self.tag, type=spec.get("type") or "pty")


class Consoles(Serials):
    """Consoles, by position (a serial's or a virtio console's target type)."""

    name = "consoles"
    tag = "console"
    fields = (
        Field("type", "", "type", Choice("pty", "file", "unix", "null", "stdio"), option={"default": "pty"}),
        Field("target", "target", "type", Choice("serial", "virtio")),
    )


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

    def normalize(self, raw_list):
        """One display of each type at most; a VNC password of at most 8 characters; a fixed port turns
        autoport off."""
        seen, result = set(), []
        for index, raw in enumerate(raw_list):
            option = self.option(index)
            kind = Choice("vnc", "spice").parse(raw.get("type") or "vnc", option + "type")
            if kind in seen:
                raise SpecError(option + "type", kind, "one %s display at most" % kind)
            seen.add(kind)
            spec = parse_fields(self.fields, raw, option)
            if kind == "vnc" and len(spec.get("password") or "") > 8:
                raise SpecError(option + "password", "(hidden, %d characters)" % len(spec["password"]),
                                "VNC passwords are at most 8 characters")
            if spec.get("port") not in (None, -1) and spec.get("autoport") is None:
                spec["autoport"] = False
            spec["_key"] = kind
            result.append(spec)
        return result

    def read_back(self, elem):
        return dict({"type": elem.get("type")}, **read_fields(elem, self.fields))


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

    def normalize(self, raw_list):
        result = super().normalize(raw_list)
        keys = [h["_key"] for h in result]
        if len(set(keys)) != len(keys):
            raise SpecError("hostdevs", raw_list, "each host device at most once")
        return result

    def key_of_raw(self, raw, index):
        return self.parse_key(raw, self.option(index))

    def read_back(self, elem):
        kind, _sep, address = (self.key_of(elem) or ":").partition(":")
        return dict({kind: address}, **read_fields(elem, self.fields))

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
