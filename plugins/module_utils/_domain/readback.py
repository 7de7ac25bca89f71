# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a guest read back as a spec, through the same tables that write it (``domain_info``'s
``spec``: valid input for the domain module, so an existing guest can be copied into YAML)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KIND, DISK_HOSTS, DISK_SOURCE
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import read_tags
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import DOMAIN_FIELDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import read_fields
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml

NIC_SOURCE = DEVICE_KIND["interfaces"].fields[0]


def read_spec(xml):
    """The friendly spec of a guest, read through the same tables that write it.

    The result is valid input for the domain module: applying it to the same guest changes nothing,
    so an existing guest can be copied into YAML.
    """
    root = parse_xml(xml)
    spec = {"name": root.findtext("name")}
    spec.update(read_fields(root, DOMAIN_FIELDS))
    devices = root.find("devices")
    if devices is None:
        devices = etree.Element("devices")
    spec["disks"] = [_read_disk(elem) for elem in DEVICE_KIND["disks"].select(devices)]
    spec["interfaces"] = [_read_interface(elem) for elem in DEVICE_KIND["interfaces"].select(devices)]
    for name in ("serials", "consoles"):
        spec[name] = [read_fields(elem, DEVICE_KIND[name].fields) for elem in DEVICE_KIND[name].select(devices)]
    spec["graphics"] = []
    for elem in DEVICE_KIND["graphics"].select(devices):
        item = {"type": elem.get("type")}
        item.update(read_fields(elem, DEVICE_KIND["graphics"].fields))
        spec["graphics"].append(item)
    spec["hostdevs"] = []
    for elem in DEVICE_KIND["hostdevs"].select(devices):
        kind, _sep, address = (DEVICE_KIND["hostdevs"].key_of(elem) or ":").partition(":")
        spec["hostdevs"].append(dict({kind: address}, **read_fields(elem, DEVICE_KIND["hostdevs"].fields)))
    tags = read_tags(root)
    spec["tags"] = tags if tags is not None else {}
    spec["managed"] = tags is not None
    return spec


def _read_disk(elem):
    disk = {"dev": DEVICE_KIND["disks"].key_of(elem)}
    disk.update(read_fields(elem, DEVICE_KIND["disks"].fields))
    kind, attrs = DISK_SOURCE.read(elem)
    attrs = dict(attrs)
    if kind == "file" and attrs.get("file"):
        disk["path"] = attrs["file"]
    elif kind == "volume":
        disk.update(pool=attrs.get("pool"), volume=attrs.get("volume"))
    elif kind == "block":
        disk["block"] = attrs.get("dev")
    elif kind == "network":
        disk["network"] = dict(attrs, hosts=DISK_HOSTS.show(DISK_HOSTS.read(elem)))
    return disk


def _read_interface(elem):
    nic = read_fields(elem, DEVICE_KIND["interfaces"].fields)
    kind, attrs = NIC_SOURCE.read(elem)
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


def interfaces_of(xml):
    """The guest's NICs as results show them: MAC, type, source, model (``xml``: text or a parsed root)."""
    root = parse_xml(xml) if isinstance(xml, (str, bytes)) else xml
    result = []
    for elem in root.iterfind("devices/interface"):
        source = elem.find("source")
        model = elem.find("model")
        result.append({
            "mac": DEVICE_KIND["interfaces"].key_of(elem),
            "type": elem.get("type"),
            "source": None if source is None else (source.get("network") or source.get("bridge") or source.get("dev")),
            "model": None if model is None else model.get("type"),
        })
    return result
