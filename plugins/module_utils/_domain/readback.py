# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a guest read back as a spec, through the same tables that write it (``domain_info``'s
``spec``: valid input for the domain module, so an existing guest can be copied into YAML)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KIND, DEVICE_KINDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import read_tags
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import DOMAIN_FIELDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import read_fields
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml


def read_spec(xml):
    """The friendly spec of a guest (``xml``: its text or parsed root), read through the same tables that write
    it: the guest's fields, then each device kind's list (its ``read_back``), then its tags.

    The result is valid input for the domain module: applying it to the same guest changes nothing,
    so an existing guest can be copied into YAML.
    """
    root = parse_xml(xml) if isinstance(xml, (str, bytes)) else xml
    spec = {"name": root.findtext("name")}
    spec.update(read_fields(root, DOMAIN_FIELDS))
    devices = root.find("devices")
    if devices is None:
        devices = etree.Element("devices")
    for kind in DEVICE_KINDS:
        spec[kind.name] = [kind.read_back(elem) for elem in kind.select(devices)]
    tags = read_tags(root)
    spec["tags"] = tags if tags is not None else {}
    spec["managed"] = tags is not None
    return spec


def secret_options(xml):
    """The options of a guest's secrets that are set ('graphics[0].password'), by their place in the read-back
    spec, which never holds their values (``xml``: text or a parsed root, read with VIR_DOMAIN_XML_SECURE)."""
    root = parse_xml(xml) if isinstance(xml, (str, bytes)) else xml
    devices = root.find("devices")
    found = []
    for kind in DEVICE_KINDS if devices is not None else ():
        secret = [field for field in kind.fields if field.secret]
        for index, elem in enumerate(kind.select(devices) if secret else ()):
            found.extend("%s[%d].%s" % (kind.name, index, field.key) for field in secret if field.read(elem) is not None)
    return found


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
            "source": None if source is None else (source.get("network") or source.get("bridge")
                                                   or source.get("dev") or source.get("path")),
            "model": None if model is None else model.get("type"),
        })
    return result
