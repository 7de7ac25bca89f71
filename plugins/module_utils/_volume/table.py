# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a volume is, read from its XML through one table (https://libvirt.org/formatstorage.html).

The volume module plans over these facts (model.plan_volume), and so does the domain module for the
volumes a guest's disks declare (_domain/storage.py).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import parse_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import TEXT, Field, find_path
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import PERMISSION_CODECS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

FORMATS = ("qcow2", "raw")


class Size(Field):
    """A size element (``<capacity unit='bytes'>n</capacity>``) in bytes, whatever unit libvirt wrote."""

    def read(self, elem):
        node = find_path(elem, self.path)
        if node is None or not (node.text or "").strip():
            return None
        return parse_size("%s%s" % (node.text.strip(), node.get("unit") or "bytes"), self.key)


VOLUME_FIELDS = (
    Field("name", "name"),
    Field("type", "", "type"),
    Field("path", "target/path"),
    Size("capacity", "capacity"),
    Field("format", "target/format", "type"),
    Field("backing", "backingStore/path"),
    Field("backing_format", "backingStore/format", "type"),
    Field("mode", "target/permissions/mode", TEXT, PERMISSION_CODECS["mode"]),
    Field("owner", "target/permissions/owner", TEXT, PERMISSION_CODECS["owner"]),
    Field("group", "target/permissions/group", TEXT, PERMISSION_CODECS["group"]),
)


def volume_facts(xml):
    """What a volume is, from its XML: name, type, path, capacity (bytes), format, backing path and
    format, permissions (normalised: mode as a number, owner and group as ids)."""
    root = parse_xml(xml)
    facts = {field.key: field.read(root) for field in VOLUME_FIELDS}
    facts["backing"] = facts["backing"] or None
    return facts
