# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a guest's description (module parameters) checked and normalised into a spec.

``normalize_guest`` is pure and raises SpecError, naming the option, on bad input: before anything
is written, in check mode as in a real run. The spec it returns is never changed afterwards (the
plan derives MACs, the seed's target and disk formats into its own result).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.model import normalize_cloud_init, normalize_ignition
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KIND, DISK_HOSTS, Disks, Interfaces
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import (
    ABS_PATH,
    DEVICE_NAME,
    DOMAIN_FIELDS,
    IGNITION_DIR,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import (
    GUEST_NAME,
    NETWORK_NAME,
    POOL_NAME,
    VOLUME_NAME,
    Choice,
    Text,
    confined_path,
    parse_disk_size,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import parse_fields

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import XMLInputError, etree, parse_xml, to_string

_DISK_TARGET = Text("diskTargetDev", accepted="expected a target device name such as vda, sdb or hdc")


def host_path(value, option):
    """An absolute path on the host, as libvirt's schema takes it, and without '..' components (a
    disk's path is the user's choice; a path that climbs out of where it names is refused)."""
    path = ABS_PATH.parse(value, option)
    if "/../" in path + "/" or "/./" in path + "/":
        raise SpecError(option, value, "expected an absolute path without '.' or '..' components")
    return path


_DISK_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd", "fdc": "fd"}


def disk_dev_name(prefix, number):
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
        spec = parse_fields(Disks.fields, raw, option)
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
            while disk_dev_name(prefix, number) in used or any(
                    r.get("dev") == disk_dev_name(prefix, number) for r in raw_disks):
                number += 1
            dev = disk_dev_name(prefix, number)
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
        spec = parse_fields(Interfaces.fields, raw, option)
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
            attrs = {"dev": DEVICE_NAME.parse(raw["direct"], option + "direct"), "mode": raw.get("direct_mode") or "bridge"}
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
        spec = parse_fields(kind.fields, raw, "%s[%d]." % (kind.name, index))
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
        spec = parse_fields(DEVICE_KIND["graphics"].fields, raw, option)
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


def normalize_guest(params, host):
    """A guest's description -> its normalised spec. ``host`` gives the machine aliases (HostContext).
    For ``state: absent`` only the name matters (and is checked)."""
    spec = {"name": GUEST_NAME.parse(params["name"], "name"), "state": params.get("state") or "present",
            "autostart": params.get("autostart")}
    if spec["state"] == "absent":
        return spec
    spec.update(parse_fields(DOMAIN_FIELDS, params))
    if spec.get("machine"):
        # libvirt stores the canonical machine type: 'pc' comes back as 'pc-i440fx-7.2'.
        spec["machine"] = host.machine_aliases.get(spec["machine"], spec["machine"])
    if spec.get("memory") is not None and spec.get("current_memory") is None:
        spec["current_memory"] = spec["memory"]
    if spec.get("current_memory") is not None and spec.get("memory") is not None \
            and spec["current_memory"] > spec["memory"]:
        raise SpecError("current_memory", params.get("current_memory"),
                        "it must not exceed memory (%s)" % params.get("memory"))
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
                       "value": edit.get(actions[0]), "fragment": None if fragment is None else to_string(fragment)})
    return result


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
