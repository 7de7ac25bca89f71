# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the device kinds of a guest (``disks``, ``interfaces``, ``serials``, ``consoles``, ``graphics``,
``hostdevs``, ``filesystems``; the desktop's in desktop.py), listed once in DEVICE_KINDS: the argument spec, the
plan, the read-back spec and the diff's secret masking all go through it. The mechanism every kind shares is in
device_kind.py; the disk kind, with the one disk reader, in disks.py.

Adding a device kind: a DeviceKind subclass (here, or in a module of its own as disks.py) and its entry in
DEVICE_KINDS; its options in the domain module's DOCUMENTATION (and ``python tools/fleet_doc.py`` for the fleet
module's copy); docs/domain.md.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import NETWORK_NAME, Choice, Int, Mac, Text, YesNo
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.desktop import Audio, Inputs, Redirdevs, Smartcards, Sounds
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.device_kind import LIVE_UPDATE, DeviceKind, Source
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.disks import DISKS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import ABS_PATH, DEVICE_NAME, HOST_NAME
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import PRESENCE, Field, Option, parse_fields, read_fields
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree


_PCI_ADDRESS = re.compile(r"^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")


def pci_address(value, option):
    """A host PCI address ('03:10.1', '0000:03:10.1') in its canonical form ('0000:03:10.1')."""
    match = _PCI_ADDRESS.match(str(value))
    if not match:
        raise SpecError(option, value, "expected a PCI address such as 0000:03:10.1")
    domain, bus, slot, function = match.groups()
    return "%04x:%02x:%02x.%x" % (int(domain or "0", 16), int(bus, 16), int(slot, 16), int(function, 16))


class NicSource(Source):
    """A NIC's backend. A hostdev NIC names its host PCI device in a ``<source><address type='pci' .../>`` child
    (as the ``address`` value '0000:03:10.1') and is ``managed`` (libvirt unbinds it from the host's driver and
    back); the other types in ``<source>``'s attributes."""

    _PARTS = ("domain", "bus", "slot", "function")

    def read(self, elem):
        if elem.get("type") != "hostdev":
            return super().read(elem)
        node = elem.find("source/address[@type='pci']")
        if node is None:
            return ("hostdev", ())
        try:
            parts = [int(node.get(name, "0"), 16) for name in self._PARTS]
        except ValueError:
            return ("hostdev", ())
        return ("hostdev", (("address", "%04x:%02x:%02x.%x" % tuple(parts)),))

    def write(self, elem, value):
        kind, attrs = value
        for source in elem.findall("source") if elem.get("type") == "hostdev" or kind == "hostdev" else ():
            elem.remove(source)  # a hostdev's source is an address element, no other type's
        if kind != "hostdev":
            elem.attrib.pop("managed", None)
            super().write(elem, value)
            return
        elem.set("type", kind)
        elem.set("managed", "yes")
        for model in elem.findall("model"):  # the host's NIC has no emulated model
            elem.remove(model)
        domain, bus, rest = dict(attrs)["address"].split(":")
        slot, function = rest.split(".")
        source = etree.Element("source")
        elem.insert(0, source)
        etree.SubElement(source, "address", type="pci", domain="0x" + domain, bus="0x" + bus, slot="0x" + slot,
                         function="0x" + function)


class Interfaces(DeviceKind):
    name = "interfaces"
    tag = "interface"
    fields = (
        NicSource({"network": ("network", "portgroup"), "bridge": ("bridge",), "direct": ("dev", "mode"), "user": (),
                   # sharing with the host and devices: an SR-IOV VF (or other PCI NIC), vDPA, vhost-user
                   "hostdev": ("address",), "vdpa": ("dev",), "vhostuser": ("type", "path", "mode")}),
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
        Option("user", {"type": "bool"}),
        # sharing with the host and devices (NicSource)
        Option("hostdev", {"type": "str"}),
        Option("vdpa", {"type": "str"}),
        Option("vhostuser", {"type": "str"}),
        Option("vhostuser_mode", {"type": "str", "default": "client", "choices": ["client", "server"]}),
    )
    _KINDS = ("network", "bridge", "direct", "user", "hostdev", "vdpa", "vhostuser")

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
                mac = derive_mac(guest_name, index, AnyOf(claimed, taken_macs))
            claimed.add(mac)
            if elem is not None:
                remaining.remove(elem)
            pairs.append((dict(spec, mac=mac, _key=mac), elem))
        return pairs, remaining

    def normalize(self, raw_list):
        """NICs: exactly one of network, bridge, direct or user each, and no MAC twice."""
        nics, macs = [], set()
        for index, raw in enumerate(raw_list):
            option = self.option(index)
            spec = parse_fields(self.fields, raw, option)
            kinds = [k for k in self._KINDS if raw.get(k)]
            if len(kinds) != 1:
                raise SpecError(option + "network", raw.get("network"),
                                "give exactly one of network, bridge, direct (a host interface), user (user-mode "
                                "networking), hostdev (a host PCI NIC such as an SR-IOV VF), vdpa (a vhost-vdpa "
                                "device) or vhostuser (a vhost-user socket)")
            kind = kinds[0]
            if kind == "network":
                attrs = {"network": NETWORK_NAME.parse(raw["network"], option + "network")}
                if raw.get("portgroup"):
                    attrs["portgroup"] = DEVICE_NAME.parse(raw["portgroup"], option + "portgroup")
            elif kind == "bridge":
                attrs = {"bridge": DEVICE_NAME.parse(raw["bridge"], option + "bridge")}
            elif kind == "user":
                attrs = {}
            elif kind == "hostdev":
                attrs = {"address": pci_address(raw["hostdev"], option + "hostdev")}
            elif kind == "vdpa":
                attrs = {"dev": ABS_PATH.parse(raw["vdpa"], option + "vdpa")}
            elif kind == "vhostuser":
                attrs = {"type": "unix", "path": ABS_PATH.parse(raw["vhostuser"], option + "vhostuser"),
                         "mode": raw.get("vhostuser_mode") or "client"}
            else:
                attrs = {"dev": DEVICE_NAME.parse(raw["direct"], option + "direct"),
                         "mode": raw.get("direct_mode") or "bridge"}
            spec["source"] = (kind, tuple(sorted(attrs.items())))
            if kind == "hostdev":  # the host's NIC is the guest's: it has no emulated model
                if spec.get("model") not in (None, "virtio"):
                    raise SpecError(option + "model", spec["model"], "a hostdev NIC is the host's device itself: it "
                                                                     "has no model")
                spec.pop("model", None)
            else:
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
        elif kind == "user":
            nic["user"] = True
        elif kind in ("hostdev", "vdpa"):
            nic[kind] = attrs.get("address" if kind == "hostdev" else "dev")
        elif kind == "vhostuser":
            nic.update(vhostuser=attrs.get("path"), vhostuser_mode=attrs.get("mode"))
        # another type (ethernet, server, ...) has no option: the NIC is not expressible, kept as it is
        return nic

    def _free(self, elems, claimed):
        """The guest's NICs no declared MAC claims, in order: those the NICs declared without a MAC take."""
        return [e for e in elems if self.key_of(e) not in claimed]

    def derives_mac(self, elems, specs):
        """Whether ``match`` will derive a MAC (more NICs declared without a MAC than the guest has NICs for them):
        only then must the host's other guests' MACs be known."""
        claimed = {spec["mac"] for spec in specs if spec.get("mac")}
        return sum(1 for spec in specs if not spec.get("mac")) > len(self._free(elems, claimed))


class FsDriver(Field):
    """A share's driver: virtiofs, or one of 9p's (path, libvirt's default when the element has none, or handle)."""

    def read(self, elem):
        value = super().read(elem)
        return "path" if value is None else value

    def write(self, elem, value):
        """A share turned virtiofs drops what only 9p has (``<readonly/>``, an accessmode other than passthrough):
        kept, they would make a share the module itself refuses (and libvirt 9.0 does not start)."""
        super().write(elem, value)
        if value == "virtiofs":
            for node in elem.findall("readonly"):
                elem.remove(node)
            if elem.get("accessmode") not in (None, "passthrough"):
                del elem.attrib["accessmode"]


class Filesystems(DeviceKind):
    """Host directories shared with the guest (``<filesystem type='mount'>``), identified by the tag the guest
    mounts them by (``target``). virtiofs needs the guest's memory shared: requirements.py sets that up. A running
    guest takes a new share at its next boot (libvirt 9.0 plugs neither 9p nor, without shared memory at boot,
    virtiofs into a running guest)."""

    name = "filesystems"
    tag = "filesystem"
    hotplug = False
    fields = (
        Field("source", "source", "dir", Text("absDirPath")),
        FsDriver("driver", "driver", "type", Choice("virtiofs", "path", "handle"), option={"default": "virtiofs"}),
        Field("accessmode", "", "accessmode", Choice("passthrough", "mapped", "squash")),
        Field("readonly", "readonly", PRESENCE),
    )
    options = (Option("target", {"type": "str", "required": True}),)

    def expressible(self, elem):
        return elem.get("type", "mount") == "mount" and super().expressible(elem)

    def key_of(self, elem):
        target = elem.find("target")
        return None if target is None else target.get("dir")

    def label(self, key):
        return "filesystem %s" % key

    def build(self, spec):
        elem = etree.Element("filesystem", type="mount")
        etree.SubElement(elem, "target", dir=spec["_key"])
        return elem

    def normalize(self, raw_list):
        result = []
        for index, raw in enumerate(raw_list):
            option = self.option(index)
            spec = parse_fields(self.fields, raw, option)
            if spec.get("source") is None:
                raise SpecError(option + "source", None, "expected the host directory to share (an absolute path)")
            tag = FS_TAG.parse(raw.get("target"), option + "target")
            if tag is None:
                raise SpecError(option + "target", None, "expected the tag the guest mounts the share by")
            if any(other["_key"] == tag for other in result):
                raise SpecError(option + "target", tag, "each share needs its own tag")
            spec.setdefault("driver", "virtiofs")
            if spec["driver"] == "virtiofs" and spec.get("accessmode") not in (None, "passthrough"):
                raise SpecError(option + "accessmode", spec["accessmode"],
                                "virtiofs shares run as passthrough only (mapped and squash are 9p's: driver: path)")
            if spec["driver"] == "virtiofs" and spec.get("readonly"):
                raise SpecError(option + "readonly", True,
                                "libvirt 9.0 cannot share read-only through virtiofs (\"virtiofs does not yet support "
                                "read-only mode\"): use driver: path (9p), or mount the share read-only in the guest")
            result.append(dict(spec, _key=tag))
        return result

    def read_back(self, elem):
        return dict(read_fields(elem, self.fields), target=self.key_of(elem))


# the tag a guest mounts a share by (the schema's filesystem target: a relative path; virtio tags are 36 bytes)
FS_TAG = Text(pattern=r"[a-zA-Z0-9_.+\-]{1,36}", accepted="expected a tag of up to 36 letters, digits or _.+-")


# libvirt's character device backends (domaincommon.rng qemucdevSrcTypeChoice); a backend's settings other than a
# path (a tcp serial's host and port, say) are kept as they are.
CHARDEV_TYPES = ("pty", "file", "unix", "null", "stdio", "dev", "pipe", "tcp", "udp", "vc", "spicevmc", "spiceport",
                 "nmdm", "qemu-vdagent", "dbus")


class Serials(DeviceKind):
    """Serial ports, by position; ``log`` keeps a file copy of the output (virtlogd)."""

    name = "serials"
    tag = "serial"
    fields = (
        Field("type", "", "type", Choice(*CHARDEV_TYPES), option={"default": "pty"}),
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
        Field("type", "", "type", Choice(*CHARDEV_TYPES), option={"default": "pty"}),
        Field("target", "target", "type", Choice("serial", "virtio", "xen", "lxc", "openvz", "sclp", "sclplm")),
    )


GRAPHICS_TYPES = ("vnc", "spice", "rdp", "sdl", "egl-headless", "dbus", "desktop")
_NETWORK_DISPLAYS = ("vnc", "spice", "rdp")  # the types with a listen address, a port and a password
# The display options only some types have (domaincommon.rng): an option given for another type is refused.
_DISPLAY_OPTIONS = {"listen": _NETWORK_DISPLAYS, "autoport": _NETWORK_DISPLAYS, "port": _NETWORK_DISPLAYS,
                    "password": _NETWORK_DISPLAYS, "gl": ("spice", "sdl", "dbus"), "clipboard": ("spice",)}


class Graphics(DeviceKind):
    """Displays, one of each type at most, identified by type: the remote ones (vnc, spice, rdp) with listen
    address, port and password; the local ones (sdl, egl-headless, dbus, desktop) by type, their other settings
    kept as they are; OpenGL (``gl``: spice, sdl, dbus) and SPICE's clipboard sharing. The password never leaves the
    module; a running guest takes a new one live."""

    name = "graphics"
    tag = "graphics"
    fields = (
        Field("listen", "listen", "address", HOST_NAME, fixed={"type": "address"}),
        Field("autoport", "", "autoport", YesNo("yes", "no")),
        Field("port", "", "port", Int(minimum=-1, maximum=65535)),
        # a running guest takes a new password through virDomainUpdateDeviceFlags (the persistent config too)
        Field("password", "", "passwd", secret=True, live=LIVE_UPDATE),
        Field("gl", "gl", "enable", YesNo("yes", "no")),
        Field("clipboard", "clipboard", "copypaste", YesNo("yes", "no")),
    )
    hotplug = False  # libvirt attaches no display to a running guest: a new one waits for the next boot
    options = (Option("type", {"type": "str", "default": "vnc", "choices": list(GRAPHICS_TYPES)}),)

    def key_of(self, elem):
        return elem.get("type")

    def build(self, spec):
        return etree.Element("graphics", type=spec["_key"])

    def normalize(self, raw_list):
        """One display of each type at most; a VNC password of at most 8 characters; a fixed port turns
        autoport off, a listen address without a port turns it on."""
        seen, result = set(), []
        for index, raw in enumerate(raw_list):
            option = self.option(index)
            kind = Choice(*GRAPHICS_TYPES).parse(raw.get("type") or "vnc", option + "type")
            if kind in seen:
                raise SpecError(option + "type", kind, "one %s display at most" % kind)
            seen.add(kind)
            spec = parse_fields(self.fields, raw, option)
            for key, kinds in _DISPLAY_OPTIONS.items():
                if spec.get(key) is not None and kind not in kinds:
                    raise SpecError(option + key, "(hidden)" if key == "password" else spec[key],
                                    "a %s display has no %s (only %s have)" % (kind, key, ", ".join(kinds)))
            if kind == "vnc" and len(spec.get("password") or "") > 8:
                raise SpecError(option + "password", "(hidden, %d characters)" % len(spec["password"]),
                                "VNC passwords are at most 8 characters")
            if spec.get("port") not in (None, -1) and spec.get("autoport") is None:
                spec["autoport"] = False
            if spec.get("listen") and spec.get("port") is None and spec.get("autoport") is None:
                spec["autoport"] = True  # a SPICE display with neither is libvirt's listen type none: no address
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
    _USB = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")

    def expressible(self, elem):
        return elem.get("mode", "subsystem") == "subsystem" and elem.get("type") in ("pci", "usb") and \
            super().expressible(elem)

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
            return "pci:" + pci_address(raw["pci"], option + "pci")
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


DEVICE_KINDS = (DISKS, Interfaces(), Serials(), Consoles(), Graphics(), Hostdevs(), Filesystems())
DEVICE_KINDS += (Inputs(), Sounds(), Audio(), Redirdevs(), Smartcards())  # the desktop's
DEVICE_KIND = {kind.name: kind for kind in DEVICE_KINDS}


class AnyOf:
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
