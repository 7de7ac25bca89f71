# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the disk kind (``disks``), and ``disk_facts``, the one reader of a guest's disks: the read-back spec,
snapshots, the migration pre-flight, storage removal and domain_info all start there.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import (
    POOL_NAME,
    VOLUME_NAME,
    Choice,
    Int,
    Text,
    parse_disk_size,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.device_kind import LIVE_UPDATE, DeviceKind, Source
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import ABS_PATH, HOST_NAME
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    PRESENCE,
    ElementList,
    Field,
    Option,
    parse_fields,
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
            if spec["device"] == "cdrom" and not spec.get("bus"):
                spec["_default_bus"] = True  # SATA on x86; the plan puts it on the guest's arch's (arch.cdrom_bus)
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
DISKS = Disks()  # the kind, as DEVICE_KINDS lists it


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
    facts.update(dev=DISKS.key_of(elem), type=kind, path=attrs.get("file") or attrs.get("dev"),
                 pool=attrs.get("pool"), volume=attrs.get("volume"), protocol=attrs.get("protocol"),
                 name=attrs.get("name"), hosts=DISK_HOSTS.show(DISK_HOSTS.read(elem)), empty=not attrs)
    facts["writable"] = not (facts["empty"] or facts["readonly"] or facts["device"] in ("cdrom", "floppy"))
    return facts


def guest_disks(root):
    """disk_facts of each of a guest's disks, in document order (``root``: its parsed XML or the text)."""
    if isinstance(root, (str, bytes)):
        root = parse_xml(root)
    devices = root.find("devices")
    return [] if devices is None else [disk_facts(elem) for elem in DISKS.select(devices)]
