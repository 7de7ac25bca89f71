# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the guest model. Pure functions of (current XML, spec, host context); no libvirt calls.

``normalize_spec`` turns module parameters into normalised values (or raises SpecError);
``plan_domain`` applies them to the current XML and says what changed and how each change can be
applied to a running guest. The tables below are the whole mapping from spec keys to XML.
"""

from __future__ import annotations

import copy
import hashlib
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    PRESENCE,
    Change,
    Choice,
    ElementList,
    GUEST_NAME,
    NETWORK_NAME,
    POOL_NAME,
    TEXT,
    VOLUME_NAME,
    Field,
    Int,
    KiB,
    Mac,
    SpecError,
    Text,
    Toggle,
    YesNo,
    confined_path,
    ensure_path,
    find_path,
    parse_disk_size,
    prune_empty,
    reconcile_fields,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit import (
    IGNITION_FWCFG,
    normalize_cloud_init,
    normalize_ignition,
    short_hash,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import XMLInputError, etree, parse_xml, to_string

METADATA_NS = "https://kvmfleet.dev/xmlns/libvirt/guest/1"
METADATA_PREFIX = "kvmfleet"
SECRET_MASK = "********"  # a secret's place in a --diff: never its value, old or new

# Live kinds: how a running guest takes a change without a restart.
LIVE_MEMORY = "memory"
LIVE_VCPUS = "vcpus"
LIVE_SEED = "seed-media"  # new cloud-init seed content: eject and re-insert the same volume

# Ignition configs are files QEMU reads through fw_cfg; qemu must be able to read them.
IGNITION_DIR = "/var/lib/libvirt/kvmfleet/ignition"


class Context:
    """What the model needs to know about the host, gathered by the caller from libvirt."""

    def __init__(self, machine_aliases=None, used_macs=(), host_arch="x86_64"):
        self.machine_aliases = dict(machine_aliases or {})  # e.g. {'pc': 'pc-i440fx-7.2'}
        self.used_macs = {m.lower() for m in used_macs}  # MACs of the host's other guests
        self.host_arch = host_arch


# ---- the domain-level table ------------------------------------------------------------------------

class VcpuCurrent(Field):
    """``vcpus``: the vcpu element's ``current`` attribute, which libvirt omits when it equals the maximum."""

    def __init__(self):
        super().__init__("vcpus", "vcpu", "current", Int(minimum=1), live=LIVE_VCPUS)

    def read(self, elem):
        node = find_path(elem, "vcpu")
        if node is None:
            return None
        return int(node.get("current") or node.text)

    def write(self, elem, value):
        node = ensure_path(elem, "vcpu")
        if not (node.text or "").strip() or int(node.text) < value:
            node.text = str(value)
        if int(node.text) == value:
            node.attrib.pop("current", None)
        else:
            node.set("current", str(value))


class Firmware(Field):
    """``firmware``: bios or efi. libvirt's firmware autoselection (``<os firmware='efi'>``); a guest
    configured by hand with a pflash loader reads as efi, one with neither as bios."""

    def __init__(self):
        super().__init__("firmware", "os", "firmware", Choice("bios", "efi"))

    def read(self, elem):
        os_elem = elem.find("os")
        if os_elem is None:
            return "bios"
        if os_elem.get("firmware"):
            return os_elem.get("firmware")
        loader = os_elem.find("loader")
        return "efi" if loader is not None and loader.get("type") == "pflash" else "bios"

    def write(self, elem, value):
        os_elem = ensure_path(elem, "os")
        if value == "bios":
            os_elem.attrib.pop("firmware", None)
            for loader in os_elem.findall("loader") + os_elem.findall("nvram") + os_elem.findall("firmware"):
                os_elem.remove(loader)
        else:
            os_elem.set("firmware", value)


class SecureBoot(Field):
    """``secure_boot``: the firmware features secure-boot and enrolled-keys, and SMM, which they need."""

    def __init__(self):
        super().__init__("secure_boot", "os/firmware", PRESENCE, YesNo())

    def read(self, elem):
        feature = elem.find("os/firmware/feature[@name='secure-boot']")
        if feature is not None:
            return feature.get("enabled") == "yes"
        loader = elem.find("os/loader")
        return loader is not None and loader.get("secure") == "yes"

    def write(self, elem, value):
        firmware = ensure_path(elem, "os/firmware")
        for name in ("enrolled-keys", "secure-boot"):
            feature = firmware.find("feature[@name='%s']" % name)
            if feature is None:
                feature = etree.SubElement(firmware, "feature", enabled="no", name=name)
            feature.set("enabled", "yes" if value else "no")
        if value:
            ensure_path(elem, "features/smm").set("state", "on")


_POLICIES = Choice("force", "require", "optional", "disable", "forbid")
# Free text that libvirt's schema restricts (domaincommon.rng): checked value by value, naming the option.
_ABS_PATH = Text("absFilePath")
_CPUSET = Text("cpuset")
_DEVICE_NAME = Text("deviceName")
_HOST_NAME = Text("addrIPorName")
MAX_VCPUS = 4096
_AGENT = "org.qemu.guest_agent.0"

DOMAIN_FIELDS = [
    Field("virt_type", "", "type", Choice("kvm", "qemu")),
    Field("title", "title", codec=Text("objectNameWithSlash")),
    Field("description", "description"),
    Field("memory", "memory", codec=KiB(minimum=1024), fixed={"unit": "KiB"}),
    Field("current_memory", "currentMemory", codec=KiB(minimum=1024), fixed={"unit": "KiB"}, live=LIVE_MEMORY),
    Field("max_vcpus", "vcpu", codec=Int(minimum=1, maximum=MAX_VCPUS)),
    VcpuCurrent(),
    Field("arch", "os/type", "arch"),
    # machine is compared through ctx.machine_aliases (normalize_spec); its pattern is the schema's, inline there
    Field("machine", "os/type", "machine", Text(pattern=r"[a-zA-Z0-9_\.\-]+")),
    Field("boot.kernel", "os/kernel", codec=_ABS_PATH),
    Field("boot.initrd", "os/initrd", codec=_ABS_PATH),
    Field("boot.cmdline", "os/cmdline"),
    Field("cpu.mode", "cpu", "mode", Choice("host-passthrough", "host-model", "custom", "maximum")),
    Field("cpu.model", "cpu/model"),
    Field("cpu.sockets", "cpu/topology", "sockets", Int(minimum=1)),
    Field("cpu.dies", "cpu/topology", "dies", Int(minimum=1)),
    Field("cpu.cores", "cpu/topology", "cores", Int(minimum=1)),
    Field("cpu.threads", "cpu/topology", "threads", Int(minimum=1)),
    Field("on_poweroff", "on_poweroff", codec=Choice("destroy", "restart", "preserve", "rename-restart")),
    Field("on_reboot", "on_reboot", codec=Choice("destroy", "restart", "preserve", "rename-restart")),
    Field("on_crash", "on_crash", codec=Choice("destroy", "restart", "preserve", "rename-restart",
                                               "coredump-destroy", "coredump-restart")),
    Firmware(),
    SecureBoot(),
    Field("max_memory", "maxMemory", codec=KiB(minimum=1024), fixed={"unit": "KiB"}),
    Field("max_memory_slots", "maxMemory", "slots", Int(minimum=1, maximum=255)),
    ElementList("boot.devices", "os", "boot", [("dev", "dev", Choice("hd", "cdrom", "network", "fd"))],
                shorthand="dev"),
    ElementList("cpu.features", "cpu", "feature", [("name", "name", Text("featureName")), ("policy", "policy", _POLICIES)],
                ordered=False, shorthand="name", defaults={"policy": "require"}),
    ElementList("cpu.numa", "cpu/numa", "cell", [("cpus", "cpus", _CPUSET), ("memory", "memory", KiB(minimum=1024))],
                fixed={"unit": "KiB"}, index="id"),
    ElementList("cputune.vcpupin", "cputune", "vcpupin",
                [("vcpu", "vcpu", Int(minimum=0, maximum=MAX_VCPUS - 1)), ("cpuset", "cpuset", _CPUSET)],
                ordered=False),
    Toggle("hugepages", "memoryBacking/hugepages", "memoryBacking", "<hugepages/>"),
    Toggle("tpm", "devices/tpm", "devices",
           "<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>"),
    Toggle("rng", "devices/rng", "devices",
           "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"),
    Toggle("guest_agent", "devices/channel[target/@name='%s']" % _AGENT, "devices",
           "<channel type='unix'><target type='virtio' name='%s'/></channel>" % _AGENT),
    Field("video", "devices/video/model", "type", Choice("virtio", "qxl", "vga", "cirrus", "bochs", "ramfb", "none")),
    Field("watchdog.model", "devices/watchdog", "model", Choice("i6300esb", "ib700", "diag288", "itco")),
    Field("watchdog.action", "devices/watchdog", "action",
          Choice("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")),
]


# ---- devices ---------------------------------------------------------------------------------------

class Source(Field):
    """A device's backend as one value: (type attribute, {source attributes}).

    Changing it rewrites the ``type`` attribute and the ``<source>`` element together.
    """

    def __init__(self, attrs_by_type, live=None):
        super().__init__("source", "source", "type", live=live)
        self.attrs_by_type = attrs_by_type

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
    """A list of devices in the spec (``disks``, ``interfaces``, ...) and how each maps to XML."""

    name = ""
    tag = ""
    fields = ()

    def select(self, devices):
        return devices.findall(self.tag)

    def key_of(self, elem):
        raise NotImplementedError

    def label(self, key):
        return "%s %s" % (self.tag, key)

    def build(self, spec):
        """A new, empty element for ``spec``; reconcile fills it in."""
        return etree.Element(self.tag)

    def live_keys(self, elem, spec):
        """Field keys whose change a running guest can take through virDomainUpdateDeviceFlags."""
        return set()

    def match(self, elems, specs, ctx):
        """Pair specs with current elements by identity: [(spec, elem or None)], unmatched elems."""
        by_key = {self.key_of(e): e for e in elems}
        pairs = [(spec, by_key.pop(spec["_key"], None)) for spec in specs]
        return pairs, list(by_key.values())


class Disks(DeviceKind):
    name = "disks"
    tag = "disk"
    fields = (
        Field("device", "", "device", Choice("disk", "cdrom", "floppy", "lun")),
        Source({"file": ("file",), "block": ("dev",), "volume": ("pool", "volume"),
                "network": ("protocol", "name")}),
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
        ElementList("hosts", "source", "host", [("name", "name", _HOST_NAME), ("port", "port", Int(1, 65535)),
                                                ("transport", "transport", Choice("tcp", "rdma", "unix"))]),
    )

    def key_of(self, elem):
        target = elem.find("target")
        return None if target is None else target.get("dev")

    def build(self, spec):
        elem = etree.Element("disk", type=spec["source"][0], device=spec.get("device") or "disk")
        etree.SubElement(elem, "driver", name="qemu")
        etree.SubElement(elem, "target", dev=spec["_key"])
        return elem

    def live_keys(self, elem, spec):
        # Media change: a cdrom or floppy can swap (or eject) its image while the guest runs.
        return {"source"} if elem.get("device") in ("cdrom", "floppy") else set()


DISK_HOSTS = next(f for f in Disks.fields if f.key == "hosts")


class Interfaces(DeviceKind):
    name = "interfaces"
    tag = "interface"
    fields = (
        Source({"network": ("network", "portgroup"), "bridge": ("bridge",), "direct": ("dev", "mode")}),
        Field("mac", "mac", "address", Mac()),
        Field("model", "model", "type", Text(pattern=r"[a-zA-Z0-9\-_]+")),  # the schema's inline pattern
        Field("link_state", "link", "state", Choice("up", "down")),
        Field("mtu", "mtu", "size", Int(minimum=68, maximum=65535)),
        Field("vlan", "vlan/tag", "id", Int(minimum=0, maximum=4095)),
        Field("boot_order", "boot", "order", Int(minimum=1)),
    )

    def key_of(self, elem):
        mac = elem.find("mac")
        return None if mac is None else mac.get("address", "").lower()

    def label(self, key):
        return "interface %s" % key

    def build(self, spec):
        return etree.Element("interface", type=spec["source"][0])

    def live_keys(self, elem, spec):
        return {"link_state"}

    def match(self, elems, specs, ctx):
        """By MAC when the spec gives one; otherwise by order among the NICs no declared MAC claims.

        The k-th spec NIC without a MAC is the k-th such NIC of the guest and keeps its MAC, so
        re-running never changes a MAC. A new one gets the MAC derived from the guest name and its
        position in the list.
        """
        claimed = {spec["mac"] for spec in specs if spec.get("mac")}
        remaining = list(elems)
        free = [e for e in elems if self.key_of(e) not in claimed]
        pairs = []
        for index, spec in enumerate(specs):
            if spec.get("mac"):
                elem = next((e for e in remaining if self.key_of(e) == spec["mac"]), None)
            elif free:
                elem = free.pop(0)
                spec["mac"] = self.key_of(elem)
            else:
                elem = None
                spec["mac"] = derive_mac(ctx.guest_name, index, ctx.used_macs | claimed)
            claimed.add(spec["mac"])
            spec["_key"] = spec["mac"]
            if elem is not None:
                remaining.remove(elem)
            pairs.append((spec, elem))
        return pairs, remaining


class Serials(DeviceKind):
    """Serial ports, by position; ``log`` keeps a file copy of the output (virtlogd)."""

    name = "serials"
    tag = "serial"
    fields = (
        Field("type", "", "type", Choice("pty", "file", "unix", "null", "stdio")),
        Field("path", "source", "path", _ABS_PATH),
        Field("log", "log", "file", _ABS_PATH),
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
        Field("type", "", "type", Choice("pty", "file", "unix", "null", "stdio")),
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
        Field("listen", "listen", "address", _HOST_NAME, fixed={"type": "address"}),
        Field("autoport", "", "autoport", YesNo("yes", "no")),
        Field("port", "", "port", Int(minimum=-1, maximum=65535)),
        Field("password", "", "passwd", secret=True),
    )

    def key_of(self, elem):
        return elem.get("type")

    def build(self, spec):
        return etree.Element("graphics", type=spec["_key"])


class Hostdevs(DeviceKind):
    """Host PCI and USB devices passed through, identified by host address ('pci:0000:03:00.0',
    'usb:1d6b:0002')."""

    name = "hostdevs"
    tag = "hostdev"
    fields = (Field("managed", "", "managed", YesNo("yes", "no")),)
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


# ---- MACs ------------------------------------------------------------------------------------------

FIELD = {field.key: field for field in DOMAIN_FIELDS}


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


# ---- spec normalisation ----------------------------------------------------------------------------

def _parse_fields(fields, raw, option_prefix):
    """Normalise the declared values of a raw spec dict through a field table."""
    result = {}
    for field in fields:
        if field.key == "source":
            continue
        value = _lookup(raw, field.key)
        if value is not None:
            result[field.key] = field.codec.parse(value, option_prefix + field.key)
    return result


def _lookup(raw, dotted):
    for part in dotted.split("."):
        if not isinstance(raw, dict):
            return None
        raw = raw.get(part)
    return raw


_DISK_TARGET = Text("diskTargetDev", accepted="expected a target device name such as vda, sdb or hdc")


def host_path(value, option):
    """An absolute path on the host, as libvirt's schema takes it, and without '..' components (a
    disk's path is the user's choice; a path that climbs out of where it names is refused)."""
    path = _ABS_PATH.parse(value, option)
    if "/../" in path + "/" or "/./" in path + "/":
        raise SpecError(option, value, "expected an absolute path without '.' or '..' components")
    return path


_DISK_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd", "fdc": "fd"}


def _disk_dev_name(prefix, number):
    name = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(ord("a") + rest) + name
    return prefix + name


def _normalize_disks(raw_disks):
    disks = []
    used = set()
    for index, raw in enumerate(raw_disks):
        option = "disks[%d]." % index
        spec = _parse_fields(Disks.fields, raw, option)
        spec["device"] = spec.get("device") or "disk"
        spec.setdefault("bus", "sata" if spec["device"] == "cdrom" else "virtio")
        sources = [k for k in ("path", "volume", "block", "network") if raw.get(k) is not None]
        if len(sources) > 1:
            raise SpecError(option + "path", raw.get("path"),
                            "give one of path, volume (with pool), block or network, not %s" % " and ".join(sources))
        if raw.get("volume") is not None:
            if not raw.get("pool"):
                raise SpecError(option + "pool", raw.get("pool"), "a pool name is needed with volume")
            pool = POOL_NAME.parse(raw["pool"], option + "pool")
            volume = VOLUME_NAME.parse(raw["volume"], option + "volume")
            spec["source"] = ("volume", tuple(sorted({"pool": pool, "volume": volume}.items())))
        elif raw.get("block") is not None:
            spec["source"] = ("block", (("dev", host_path(raw["block"], option + "block")),))
        elif raw.get("network") is not None:
            net = raw["network"]
            if not isinstance(net, dict) or not net.get("protocol") or not net.get("name"):
                raise SpecError(option + "network", net, "expected a dict with protocol, name and hosts")
            protocol = Choice("rbd", "iscsi", "nbd", "gluster", "http", "https", "ftp", "ssh").parse(
                net["protocol"], option + "network.protocol")
            spec["source"] = ("network", tuple(sorted({"protocol": protocol, "name": net["name"]}.items())))
            hosts = DISK_HOSTS.parse(net.get("hosts") or [], option + "network.hosts")
            if hosts:
                spec["hosts"] = hosts
        elif raw.get("path") is not None:
            spec["source"] = ("file", (("file", host_path(raw["path"], option + "path")),))
        elif spec["device"] in ("cdrom", "floppy"):
            spec["source"] = ("file", ())  # an empty drive
        else:
            raise SpecError(option + "path", None, "a disk needs path, volume (with pool), block or network")
        if raw.get("size") is not None:
            spec["size"] = parse_disk_size(raw["size"], option + "size")
        if raw.get("backing") is not None:
            if spec["source"][0] not in ("volume", "file") or not dict(spec["source"][1]).get(
                    "volume", dict(spec["source"][1]).get("file")) or spec["device"] != "disk":
                raise SpecError(option + "backing", raw["backing"],
                                "a base image is for a disk (device: disk) made as a volume (pool and volume, or a "
                                "path in a pool's directory)")
            if spec.get("format") not in (None, "qcow2"):
                raise SpecError(option + "format", spec["format"], "a disk with a backing image is a qcow2 overlay; "
                                                                   "use format: qcow2 or leave format out")
            spec["backing"] = str(raw["backing"])
        if spec["device"] == "cdrom":
            spec["readonly"] = True
        dev = _DISK_TARGET.parse(raw.get("dev"), option + "dev")
        if dev is None:
            prefix = _DISK_PREFIX[spec["bus"]]
            number = 0
            while _disk_dev_name(prefix, number) in used or any(
                    r.get("dev") == _disk_dev_name(prefix, number) for r in raw_disks):
                number += 1
            dev = _disk_dev_name(prefix, number)
        if dev in used:
            raise SpecError(option + "dev", dev, "each disk needs its own target dev; %s is used twice" % dev)
        used.add(dev)
        spec["_key"] = dev
        spec["dev"] = dev
        disks.append(spec)
    return disks


def _normalize_interfaces(raw_nics):
    nics = []
    macs = set()
    for index, raw in enumerate(raw_nics):
        option = "interfaces[%d]." % index
        spec = _parse_fields(Interfaces.fields, raw, option)
        kinds = [k for k in ("network", "bridge", "direct") if raw.get(k)]
        if len(kinds) != 1:
            raise SpecError(option + "network", raw.get("network"),
                            "give exactly one of network, bridge or direct (a host interface)")
        kind = kinds[0]
        if kind == "network":
            attrs = {"network": NETWORK_NAME.parse(raw["network"], option + "network")}
            if raw.get("portgroup"):
                attrs["portgroup"] = _DEVICE_NAME.parse(raw["portgroup"], option + "portgroup")
        elif kind == "bridge":
            attrs = {"bridge": _DEVICE_NAME.parse(raw["bridge"], option + "bridge")}
        else:
            attrs = {"dev": _DEVICE_NAME.parse(raw["direct"], option + "direct"), "mode": raw.get("direct_mode") or "bridge"}
        spec["source"] = (kind, tuple(sorted(attrs.items())))
        spec.setdefault("model", "virtio")
        if spec.get("mac"):
            if spec["mac"] in macs:
                raise SpecError(option + "mac", spec["mac"], "each interface needs its own MAC")
            macs.add(spec["mac"])
        nics.append(spec)
    return nics


def _normalize_simple(kind, raw_list, key_of=None):
    result = []
    for index, raw in enumerate(raw_list):
        spec = _parse_fields(kind.fields, raw, "%s[%d]." % (kind.name, index))
        spec["_key"] = key_of(raw, index) if key_of else index
        result.append(spec)
    return result


def _normalize_graphics(raw_list):
    seen = set()
    result = []
    for index, raw in enumerate(raw_list):
        option = "graphics[%d]." % index
        kind = Choice("vnc", "spice").parse(raw.get("type") or "vnc", option + "type")
        if kind in seen:
            raise SpecError(option + "type", kind, "one %s display at most" % kind)
        seen.add(kind)
        spec = _parse_fields(Graphics.fields, raw, option)
        if kind == "vnc" and len(spec.get("password") or "") > 8:
            raise SpecError(option + "password", "(hidden, %d characters)" % len(spec["password"]),
                            "VNC passwords are at most 8 characters")
        if spec.get("port") not in (None, -1) and spec.get("autoport") is None:
            spec["autoport"] = False
        spec["_key"] = kind
        result.append(spec)
    return result


def _normalize_tags(tags):
    if tags is None:
        return None
    if isinstance(tags, dict):
        return {str(k): (None if v is None else str(v)) for k, v in tags.items()}
    if isinstance(tags, (list, tuple)):
        return {str(t): None for t in tags}
    raise SpecError("tags", tags, "expected a list of names or a dict of name: value")


def normalize_spec(params, ctx):
    """Module parameters -> normalised spec. Raises SpecError, naming the option, on bad input."""
    spec = {"name": GUEST_NAME.parse(params["name"], "name")}
    spec.update(_parse_fields(DOMAIN_FIELDS, params, ""))
    if spec.get("machine"):
        # libvirt stores the canonical machine type: 'pc' comes back as 'pc-i440fx-7.2'.
        spec["machine"] = ctx.machine_aliases.get(spec["machine"], spec["machine"])
    if spec.get("memory") is not None and spec.get("current_memory") is None:
        spec["current_memory"] = spec["memory"]
    if spec.get("current_memory") is not None and spec.get("memory") is not None \
            and spec["current_memory"] > spec["memory"]:
        raise SpecError("current_memory", params.get("current_memory"),
                        "it must not exceed memory (%s)" % params.get("memory"))
    if spec.get("vcpus") is not None and spec["vcpus"] > MAX_VCPUS:
        raise SpecError("vcpus", params.get("vcpus"), "expected a whole number from 1 to %d" % MAX_VCPUS)
    if spec.get("vcpus") is not None and spec.get("max_vcpus") is not None and spec["vcpus"] > spec["max_vcpus"]:
        raise SpecError("vcpus", params.get("vcpus"), "it must not exceed max_vcpus (%s)" % params.get("max_vcpus"))
    if spec.get("secure_boot") and spec.get("firmware", "efi") != "efi":
        raise SpecError("secure_boot", True, "secure boot needs firmware: efi")
    if spec.get("secure_boot") and spec.get("firmware") is None:
        spec["firmware"] = "efi"
    if spec.get("max_memory") is not None and spec.get("max_memory_slots") is None:
        spec["max_memory_slots"] = 16
    if spec.get("watchdog.action") is not None and spec.get("watchdog.model") is None:
        spec["watchdog.model"] = "i6300esb"
    if params.get("disks") is not None:
        spec["disks"] = _normalize_disks(params["disks"])
    if params.get("interfaces") is not None:
        spec["interfaces"] = _normalize_interfaces(params["interfaces"])
    if params.get("serials") is not None:
        spec["serials"] = _normalize_simple(DEVICE_KIND["serials"], params["serials"])
    if params.get("consoles") is not None:
        spec["consoles"] = _normalize_simple(DEVICE_KIND["consoles"], params["consoles"])
    if params.get("graphics") is not None:
        spec["graphics"] = _normalize_graphics(params["graphics"])
    if params.get("hostdevs") is not None:
        kind = DEVICE_KIND["hostdevs"]
        spec["hostdevs"] = _normalize_simple(kind, params["hostdevs"],
                                             lambda raw, i: kind.parse_key(raw, "hostdevs[%d]." % i))
        keys = [h["_key"] for h in spec["hostdevs"]]
        if len(set(keys)) != len(keys):
            raise SpecError("hostdevs", params["hostdevs"], "each host device at most once")
    if params.get("cloud_init") is not None:
        spec["cloud_init"] = _normalize_seed(params["cloud_init"], spec)
    if params.get("ignition") is not None:
        config, digest = normalize_ignition(params["ignition"])
        spec["ignition"] = {"config": config, "hash": digest, "path": ignition_path(spec["name"])}
    spec["tags"] = _normalize_tags(params.get("tags"))
    spec["xml_edits"] = _normalize_xml_edits(params.get("xml_edits") or [])
    spec["xml"] = params.get("xml")
    if spec["xml"] is not None:
        try:
            parse_xml(spec["xml"])
        except XMLInputError as exc:
            raise SpecError("xml", "(document)", "expected a libvirt domain XML document: %s" % exc) from None
    return spec


# ---- cloud-init seed and Ignition ----------------------------------------------------------------

def _normalize_seed(raw, spec):
    seed = normalize_cloud_init(raw, "cloud_init", spec["name"])
    seed["source"] = ("volume", tuple(sorted({"pool": seed["pool"], "volume": seed["volume"]}.items())))
    for index, disk in enumerate(spec.get("disks") or []):
        if seed["target"] and disk["_key"] == seed["target"]:
            raise SpecError("cloud_init.target", seed["target"],
                            "disks[%d] has that target dev; give the seed cdrom a target of its own" % index)
        if disk["source"] == seed["source"]:
            raise SpecError("cloud_init.volume", seed["volume"],
                            "disks[%d] is that volume; the seed volume is attached by cloud_init itself" % index)
    return seed


def ignition_path(guest_name, option="name"):
    """The guest's Ignition file, confined to IGNITION_DIR (the guest name is checked before this)."""
    return confined_path(IGNITION_DIR, "%s.ign" % guest_name, option)


def _seed_target(devices, spec):
    """The seed cdrom's target dev: declared, or the one the seed volume is attached at, or the next
    free sdX (the same on every run: the attached seed is found by its volume)."""
    seed = spec["cloud_init"]
    if seed["target"]:
        return seed["target"]
    kind = DEVICE_KIND["disks"]
    source_field = Disks.fields[1]
    for elem in kind.select(devices):
        if elem.get("device") == "cdrom" and source_field.read(elem) == seed["source"]:
            return kind.key_of(elem)
    used = {kind.key_of(e) for e in kind.select(devices)} | {d["_key"] for d in spec.get("disks") or []}
    number = 0
    while _disk_dev_name("sd", number) in used:
        number += 1
    return _disk_dev_name("sd", number)


class _OneDisk(Disks):
    """The disk list narrowed to one target dev: the seed cdrom when ``disks`` is not managed."""

    def __init__(self, dev):
        self.dev = dev

    def select(self, devices):
        return [e for e in devices.findall(self.tag) if self.key_of(e) == self.dev]


def _seed_disk_spec(spec, dev):
    return {"device": "cdrom", "bus": "sata", "source": spec["cloud_init"]["source"], "format": "raw",
            "readonly": True, "_key": dev, "dev": dev, "_seed": True}


def _content_node(root, tag):
    return root.find("metadata/%s/%s" % (_q("guest"), _q(tag)))


def stored_hash(root, tag):
    """The content hash kept in our metadata for 'cloud-init' or 'ignition', or None."""
    node = _content_node(root, tag)
    return None if node is None else node.get("hash")


def reconcile_content_hash(root, tag, what, wanted, live=None):
    """Keep ``wanted`` (a content hash) in ``<kvmfleet:TAG hash=.../>``; a Change naming only hash prefixes."""
    current = stored_hash(root, tag)
    if current == wanted:
        return []
    node = _content_node(root, tag)
    if node is None:
        node = etree.SubElement(root.find("metadata/" + _q("guest")), _q(tag))
    node.set("hash", wanted)
    return [Change(what, "content " + short_hash(current) if current else None,
                   "content " + short_hash(wanted), live)]


def reconcile_ignition(root, ignition):
    """The fw_cfg entry CoreOS-family guests read their Ignition config from, plus its content hash."""
    changes = []
    sysinfo = root.find("sysinfo[@type='fwcfg']")
    if sysinfo is None:
        sysinfo = etree.SubElement(root, "sysinfo", type="fwcfg")
    entry = sysinfo.find("entry[@name='%s']" % IGNITION_FWCFG)
    if entry is None:
        entry = etree.SubElement(sysinfo, "entry", name=IGNITION_FWCFG)
    if entry.get("file") != ignition["path"] or entry.text:
        changes.append(Change("ignition.file", entry.get("file"), ignition["path"]))
        entry.text = None
        entry.set("file", ignition["path"])
    return changes


# ---- new guests -----------------------------------------------------------------------------------

def new_domain(spec, ctx):
    """The document a new guest starts from: the user's ``xml``, or sane defaults (virt-install's)."""
    if spec.get("xml"):
        root = parse_xml(spec["xml"])
        if root.tag != "domain":
            raise SpecError("xml", root.tag, "expected a <domain> document")
        ensure_path(root, "name").text = spec["name"]
        return root
    virt_type = spec.get("virt_type") or "kvm"
    root = etree.Element("domain", type=virt_type)
    etree.SubElement(root, "name").text = spec["name"]
    etree.SubElement(root, "memory", unit="KiB").text = str(1024 * 1024)
    etree.SubElement(root, "vcpu", placement="static").text = "1"
    os_elem = etree.SubElement(root, "os")
    etree.SubElement(os_elem, "type", arch=spec.get("arch") or ctx.host_arch).text = "hvm"
    features = etree.SubElement(root, "features")
    etree.SubElement(features, "acpi")
    etree.SubElement(features, "apic")
    if virt_type == "kvm":
        etree.SubElement(root, "cpu", mode="host-model")
    etree.SubElement(root, "clock", offset="utc")
    devices = etree.SubElement(root, "devices")
    if spec.get("serials") is None:
        etree.SubElement(devices, "serial", type="pty")
    if spec.get("consoles") is None:
        etree.SubElement(devices, "console", type="pty")
    for toggle in ("guest_agent", "rng"):  # virt-install's defaults, unless declared off
        if spec.get(toggle) is None:
            FIELD[toggle].write(root, True)
    return root


# ---- metadata and tags -----------------------------------------------------------------------------

def _q(tag):
    return "{%s}%s" % (METADATA_NS, tag)


def read_tags(root):
    """The tags stored in our metadata namespace, or None when the guest is not marked as ours."""
    node = root.find("metadata/" + _q("guest"))
    if node is None:
        return None
    return {t.get("name"): t.get("value") for t in node.iterfind(_q("tag"))}


def is_managed(root):
    return root.find("metadata/" + _q("guest")) is not None


def reconcile_metadata(root, tags):
    """Mark the guest as managed by kvmfleet and store its tags; other tools' metadata stays as it is."""
    changes = []
    metadata = ensure_path(root, "metadata")
    node = metadata.find(_q("guest"))
    if node is None:
        node = etree.SubElement(metadata, _q("guest"), nsmap={METADATA_PREFIX: METADATA_NS})
        node.set("managed", "true")
        changes.append(Change("metadata.managed", None, True))
    current = {t.get("name"): t.get("value") for t in node.iterfind(_q("tag"))}
    if tags is not None and current != tags:
        for old in node.findall(_q("tag")):
            node.remove(old)
        for name in sorted(tags):
            tag = etree.SubElement(node, _q("tag"), name=name)
            if tags[name] is not None:
                tag.set("value", tags[name])
        changes.append(Change("tags", current, tags))
    return changes


def mark_nvram_reset(root, pending):
    """Whether the guest's UEFI variable store must be re-created from its template at the next start.

    A firmware or secure boot change needs it (the old store keeps its enrolled keys); it is done
    only on a start this collection makes, and the mark keeps it pending until then.
    """
    node = root.find("metadata/" + _q("guest"))
    if node is None:
        return
    if pending:
        node.set("nvram-reset", "pending")
    else:
        node.attrib.pop("nvram-reset", None)


def nvram_reset_pending(root):
    node = root.find("metadata/" + _q("guest"))
    return node is not None and node.get("nvram-reset") == "pending"


# ---- xml_edits: the escape hatch -------------------------------------------------------------------

def _normalize_xml_edits(edits):
    result = []
    for index, edit in enumerate(edits):
        option = "xml_edits[%d]" % index
        if not isinstance(edit, dict) or not edit.get("xpath"):
            raise SpecError(option + ".xpath", edit, "each edit needs an xpath")
        actions = [k for k in ("value", "attributes", "fragment", "absent") if edit.get(k) not in (None, False)]
        if len(actions) != 1:
            raise SpecError(option, edit, "give exactly one of value, attributes, fragment or absent: true")
        try:
            etree.XPath(edit["xpath"])
        except etree.XPathSyntaxError as exc:
            raise SpecError(option + ".xpath", edit["xpath"], "expected a valid XPath (%s)" % exc) from None
        fragment = None
        if actions[0] == "fragment":
            try:
                fragment = parse_xml(edit["fragment"])
            except XMLInputError as exc:
                raise SpecError(option + ".fragment", edit["fragment"], "expected one XML element (%s)" % exc) from None
        if actions[0] == "attributes" and not isinstance(edit["attributes"], dict):
            raise SpecError(option + ".attributes", edit["attributes"], "expected a dict of attribute: value")
        result.append({"option": option, "xpath": edit["xpath"], "action": actions[0],
                       "value": edit.get(actions[0]), "fragment": fragment})
    return result


def _same_tree(a, b):
    return etree.tostring(a, method="c14n") == etree.tostring(b, method="c14n")


def apply_xml_edits(root, edits):
    """Apply the escape-hatch edits; each is idempotent (it writes only what is not there yet)."""
    changes = []
    secret = secret_attributes()
    for edit in edits:
        xpath, action = edit["xpath"], edit["action"]
        path, attr = xpath, None
        parent, _sep, last = xpath.rpartition("/")
        if action == "value" and last.startswith("@"):
            path, attr = parent, last[1:]  # '.../@name': set that attribute
        nodes = [n for n in root.xpath(path) if isinstance(n, etree._Element)]
        if action == "absent":
            for node in nodes:
                node.getparent().remove(node)
                changes.append(Change("xml_edits: remove %s" % xpath, "present", None))
            continue
        if not nodes:
            raise SpecError(edit["option"] + ".xpath", xpath, "it matches no element in the guest's XML")
        for node in nodes:
            if action == "value":
                value = str(edit["value"])
                current = node.get(attr) if attr else (node.text or "")
                if current != value:
                    if attr:
                        node.set(attr, value)
                    else:
                        node.text = value
                    changes.append(Change("xml_edits: %s" % xpath, current, value, secret=attr in secret))
            elif action == "attributes":
                for name, value in edit["value"].items():
                    if value is None:
                        if name in node.attrib:
                            changes.append(Change("xml_edits: %s/@%s" % (xpath, name), node.get(name), None,
                                                  secret=name in secret))
                            node.attrib.pop(name)
                    elif node.get(name) != str(value):
                        changes.append(Change("xml_edits: %s/@%s" % (xpath, name), node.get(name), str(value),
                                              secret=name in secret))
                        node.set(name, str(value))
            else:
                fragment = edit["fragment"]
                if not any(_same_tree(child, fragment) for child in node):
                    node.append(copy.deepcopy(fragment))
                    changes.append(Change("xml_edits: %s" % xpath, None, fragment.tag))
    return changes


# ---- the plan --------------------------------------------------------------------------------------

class DeviceOp:
    """A device to attach, detach or update on a running guest (the config is always redefined)."""

    def __init__(self, op, kind, key, label, changes=()):
        self.op, self.kind, self.key, self.label, self.changes = op, kind, key, label, list(changes)

    def __repr__(self):
        return "DeviceOp(%s %s)" % (self.op, self.label)


class Plan:
    def __init__(self, before, root, changes, device_ops, created):
        self.before = before
        self.root = root
        self.after = to_string(copy.deepcopy(root))
        self.changes = changes
        self.device_ops = device_ops
        self.created = created

    @property
    def changed(self):
        return self.created or self.after != self.before

    def diff(self):
        """before/after XML for --diff, with secrets masked."""
        if not self.changed:
            return {}
        return {"before": mask_secrets(self.before), "after": mask_secrets(self.after, self.before),
                "before_header": "domain (persistent config)", "after_header": "domain (persistent config)"}


def _secret_fields(kind):
    return [field for field in kind.fields if field.secret]


def mask_secrets(xml, compare_to=None):
    """The XML with every secret field (as the tables declare them) replaced by a mask; one that
    differs from ``compare_to`` (the before side of a diff) shows as changed, never in clear."""
    if not xml:
        return xml
    root = parse_xml(xml)
    old_root = parse_xml(compare_to) if compare_to else None
    for kind in DEVICE_KINDS:
        secret = _secret_fields(kind)
        devices = root.find("devices")
        if not secret or devices is None:
            continue
        old = {}
        if old_root is not None and old_root.find("devices") is not None:
            old = {kind.key_of(e): e for e in kind.select(old_root.find("devices"))}
        for elem in kind.select(devices):
            before = old.get(kind.key_of(elem))
            for field in secret:
                value = field.read(elem)
                if value is None:
                    continue
                changed = old_root is not None and (before is None or field.read(before) != value)
                field.write(elem, SECRET_MASK + (" (changed)" if changed else ""))
    for tag in ("cloud-init", "ignition"):  # hashes of content that may hold secrets: a prefix shows a change
        node = _content_node(root, tag)
        if node is not None and node.get("hash"):
            node.set("hash", short_hash(node.get("hash")) + "...")
    return to_string(root)


def secret_attributes():
    """XML attribute names the tables declare secret (an escape-hatch edit of one is masked too)."""
    return {field.where for kind in DEVICE_KINDS for field in _secret_fields(kind) if field.where != TEXT}


def _reconcile_device_list(devices, kind, specs, ctx):
    changes, ops = [], []
    pairs, removed = kind.match(kind.select(devices), specs, ctx)
    for elem in removed:
        key = kind.key_of(elem)
        devices.remove(elem)
        changes.append(Change(kind.label(key), "present", None))
        ops.append(DeviceOp("detach", kind.name, key, kind.label(key)))
    for spec, elem in pairs:
        key = spec["_key"]
        if elem is None:
            elem = kind.build(spec)
            _append_device(devices, elem, kind)
            reconcile_fields(elem, kind.fields, spec)
            changes.append(Change(kind.label(key), None, "present"))
            ops.append(DeviceOp("attach", kind.name, key, kind.label(key)))
            continue
        dev_changes = reconcile_fields(elem, kind.fields, spec, kind.label(key) + ".")
        for field in kind.fields:
            if field.path and field.where != PRESENCE:
                prune_empty(elem, field.path)
        if dev_changes:
            changes.extend(dev_changes)
            live = kind.live_keys(elem, spec)
            changed_keys = {c.what.rsplit(".", 1)[-1] for c in dev_changes}
            ops.append(DeviceOp("update" if changed_keys <= live else "modify", kind.name, key,
                                kind.label(key), dev_changes))
    return changes, ops


def _clamp_current_vcpus(root):
    """A lowered max_vcpus takes the current count down with it (libvirt refuses current > maximum)."""
    vcpu = root.find("vcpu")
    if vcpu is not None and vcpu.get("current") and int(vcpu.get("current")) >= int(vcpu.text):
        vcpu.attrib.pop("current")


def _complete_topology(root):
    """libvirt needs sockets, cores and threads together: one declared alone brings the others as 1."""
    topology = root.find("cpu/topology")
    if topology is not None:
        for name in ("sockets", "cores", "threads"):
            if topology.get(name) is None:
                topology.set(name, "1")


def _append_device(devices, elem, kind):
    """Place a new device after the last one of its kind (libvirt sorts them anyway; diffs read better)."""
    same = devices.findall(kind.tag)
    if same:
        same[-1].addnext(elem)
    else:
        devices.append(elem)


def plan_domain(current_xml, spec, ctx):
    """Apply ``spec`` to ``current_xml`` (None: a new guest). Pure: returns a Plan, touches nothing."""
    ctx.guest_name = spec["name"]
    created = current_xml is None
    root = new_domain(spec, ctx) if created else parse_xml(current_xml)
    before = "" if created else to_string(copy.deepcopy(root))
    changes = reconcile_fields(root, DOMAIN_FIELDS, spec)
    _clamp_current_vcpus(root)
    _complete_topology(root)
    devices = ensure_path(root, "devices")
    device_ops = []
    seed_disk = None
    if spec.get("cloud_init"):
        seed_disk = _seed_disk_spec(spec, _seed_target(devices, spec))
        spec["cloud_init"]["dev"] = seed_disk["_key"]
    for kind in DEVICE_KINDS:
        specs = spec.get(kind.name)
        if kind.name == "disks" and seed_disk is not None:
            specs, kind = (specs + [seed_disk], kind) if specs is not None else ([seed_disk], _OneDisk(seed_disk["_key"]))
        if specs is not None:
            kind_changes, kind_ops = _reconcile_device_list(devices, kind, specs, ctx)
            changes.extend(kind_changes)
            device_ops.extend(kind_ops)
    changes.extend(reconcile_metadata(root, spec.get("tags")))
    if seed_disk is not None:
        attached = any(op.key == seed_disk["_key"] and op.kind == "disks" for op in device_ops)
        changes.extend(reconcile_content_hash(root, "cloud-init", "cloud_init", spec["cloud_init"]["hash"],
                                              None if attached else LIVE_SEED))
    if spec.get("ignition"):
        changes.extend(reconcile_ignition(root, spec["ignition"]))
        changes.extend(reconcile_content_hash(root, "ignition", "ignition", spec["ignition"]["hash"]))
    if not created and any(c.what in ("firmware", "secure_boot") for c in changes):
        mark_nvram_reset(root, True)
    changes.extend(apply_xml_edits(root, spec.get("xml_edits") or []))
    if created:  # a new guest has no "before": list what it is made with
        changes = [Change(c.what, None, c.after, c.live, c.secret) for c in changes]
    return Plan(before, root, changes, device_ops, created)


def interfaces_of(xml):
    """The guest's NICs as results show them: MAC, type, source, model."""
    root = parse_xml(xml)
    result = []
    for elem in root.iterfind("devices/interface"):
        source = elem.find("source")
        model = elem.find("model")
        result.append({
            "mac": Interfaces().key_of(elem),
            "type": elem.get("type"),
            "source": None if source is None else (source.get("network") or source.get("bridge") or source.get("dev")),
            "model": None if model is None else model.get("type"),
        })
    return result


# ---- reading a guest back as a spec ----------------------------------------------------------------

def _set_dotted(target, dotted, value):
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _read_fields(elem, fields):
    spec = {}
    for field in fields:
        if field.key == "source" or field.secret:
            continue
        value = field.read(elem)
        if isinstance(field, ElementList):
            value = field.show(value) or None
        elif value is not None:
            value = field.codec.show(value)
        if value is not None and not (value is False and field.where == PRESENCE):
            _set_dotted(spec, field.key, value)
    return spec


def read_spec(xml):
    """The friendly spec of a guest, read through the same tables that write it.

    The result is valid input for the domain module: applying it to the same guest changes nothing,
    so an existing guest can be copied into YAML.
    """
    root = parse_xml(xml)
    spec = {"name": root.findtext("name")}
    spec.update(_read_fields(root, DOMAIN_FIELDS))
    devices = root.find("devices")
    if devices is None:
        devices = etree.Element("devices")
    spec["disks"] = [_read_disk(elem) for elem in DEVICE_KIND["disks"].select(devices)]
    spec["interfaces"] = [_read_interface(elem) for elem in DEVICE_KIND["interfaces"].select(devices)]
    for name in ("serials", "consoles"):
        spec[name] = [_read_fields(elem, DEVICE_KIND[name].fields) for elem in DEVICE_KIND[name].select(devices)]
    spec["graphics"] = []
    for elem in DEVICE_KIND["graphics"].select(devices):
        item = {"type": elem.get("type")}
        item.update(_read_fields(elem, Graphics.fields))
        spec["graphics"].append(item)
    spec["hostdevs"] = []
    for elem in DEVICE_KIND["hostdevs"].select(devices):
        kind, _sep, address = (DEVICE_KIND["hostdevs"].key_of(elem) or ":").partition(":")
        spec["hostdevs"].append(dict({kind: address}, **_read_fields(elem, Hostdevs.fields)))
    tags = read_tags(root)
    spec["tags"] = tags if tags is not None else {}
    spec["managed"] = tags is not None
    return spec


def _read_disk(elem):
    disk = {"dev": Disks().key_of(elem)}
    disk.update(_read_fields(elem, Disks.fields))
    kind, attrs = Disks.fields[1].read(elem)
    attrs = dict(attrs)
    if kind == "file" and attrs.get("file"):
        disk["path"] = attrs["file"]
    elif kind == "volume":
        disk.update(pool=attrs.get("pool"), volume=attrs.get("volume"))
    elif kind == "block":
        disk["block"] = attrs.get("dev")
    elif kind == "network":
        disk["network"] = dict(attrs, hosts=disk.pop("hosts", []))
    return disk


def _read_interface(elem):
    nic = _read_fields(elem, Interfaces.fields)
    kind, attrs = Interfaces.fields[0].read(elem)
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
