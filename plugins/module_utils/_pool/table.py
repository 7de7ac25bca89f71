# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the storage pool's options table (https://libvirt.org/formatstorage.html): one row per
field (spec key, XML place, codec), and the rules per pool type (which keys it takes and needs)."""

from __future__ import annotations

import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Codec, Int
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import ElementList, Field, find_path
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import PERMISSION_CODECS, PERMISSION_KEYS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree

POOL_TYPES = ("dir", "fs", "netfs", "logical", "disk", "iscsi", "rbd")
_AUTH = ("source.auth.username", "source.auth.secret")

# Per pool type: the spec keys it takes, and those its definition must end up with.
POOL_RULES = {
    "dir": (("path",) + PERMISSION_KEYS, ("path",)),
    "fs": (("path", "source.devices", "source.format") + PERMISSION_KEYS, ("path", "source.devices")),
    "netfs": (("path", "source.hosts", "source.dir", "source.format") + PERMISSION_KEYS, ("path", "source.hosts", "source.dir")),
    "logical": (("path", "source.name", "source.devices", "source.format") + PERMISSION_KEYS, ("source.name",)),
    "disk": (("path", "source.devices", "source.format") + PERMISSION_KEYS, ("path", "source.devices")),
    "iscsi": (("path", "source.hosts", "source.devices", "source.initiator") + _AUTH + PERMISSION_KEYS,
              ("path", "source.hosts", "source.devices")),
    "rbd": (("source.name", "source.hosts") + _AUTH, ("source.name", "source.hosts")),
}
# Keys that take exactly one item for a type (libvirt uses only the first).
POOL_SINGLE = {"fs": ("source.devices",), "disk": ("source.devices",), "netfs": ("source.hosts",),
               "iscsi": ("source.hosts", "source.devices")}
# source.format values per type (the schema's lists).
POOL_FORMATS = {
    "fs": ("auto", "ext2", "ext3", "ext4", "ufs", "iso9660", "udf", "gfs", "gfs2", "vfat", "hfs+", "xfs", "ocfs2",
           "vmfs"),
    "netfs": ("auto", "nfs", "cifs", "glusterfs"),
    "logical": ("lvm2",),
    "disk": ("dos", "dvh", "gpt", "mac", "bsd", "pc98", "sun", "lvm2"),
}
AUTH_TYPES = {"iscsi": "chap", "rbd": "ceph"}
RUNTIME = ("capacity", "allocation", "available")
IQN_RE = re.compile(r"^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-zA-Z0-9.\-]+(:.+)?$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class AbsPath(Codec):
    """An absolute path, compared the way libvirt stores it (no repeated or trailing slashes)."""

    def parse(self, value, option):
        if value is None:
            return None
        text = str(value).strip()
        if not text.startswith("/"):
            raise SpecError(option, value, "expected an absolute path")
        return self.load(text)

    def load(self, text):
        if text is None:
            return None
        text = re.sub("/+", "/", text)
        return text.rstrip("/") or "/"


class SecretName(Codec):
    """A secret's UUID (compared in lower case) or usage name (as it is)."""

    def parse(self, value, option):
        return None if value is None else self.load(str(value).strip())

    def load(self, text):
        if text is None:
            return None
        return text.lower() if _UUID_RE.match(text) else text


class SecretRef(Field):
    """``source.auth.secret``: a libvirt secret by UUID (``<secret uuid=>``) or usage name (``usage=``).

    One spec value for the two attributes, so switching from one to the other never leaves both.
    """

    def __init__(self):
        super().__init__("source.auth.secret", "source/auth/secret", "uuid", SecretName(),
                         option={"required": True, "no_log": False})  # names a libvirt secret, holds no key

    def read(self, elem):
        node = find_path(elem, self.path)
        if node is None:
            return None
        return self.codec.load(node.get("uuid") or node.get("usage"))

    def write(self, elem, value):
        node = find_path(elem, self.path)
        if node is None:
            node = etree.SubElement(find_path(elem, "source/auth"), "secret")
        for attr in ("uuid", "usage"):
            node.attrib.pop(attr, None)
        node.set("uuid" if _UUID_RE.match(value) else "usage", value)


AUTH_TYPE = Field("source.auth.type", "source/auth", "type")  # chap or ceph, from the pool's type
AUTH_TYPE.composite = True  # not an option: plan_pool writes it along with a username


def _hosts_field():
    return ElementList("source.hosts", "source", "host",
                       [("name", "name", Codec()), ("port", "port", Int(minimum=1, maximum=65535))],
                       ordered=True, shorthand="name")


POOL_FIELDS = (
    Field("path", "target/path", codec=AbsPath()),
    Field("mode", "target/permissions/mode", codec=PERMISSION_CODECS["mode"]),
    Field("owner", "target/permissions/owner", codec=PERMISSION_CODECS["owner"]),
    Field("group", "target/permissions/group", codec=PERMISSION_CODECS["group"]),
    Field("source.name", "source/name"),
    Field("source.dir", "source/dir", "path"),
    Field("source.format", "source/format", "type"),
    Field("source.initiator", "source/initiator/iqn", "name"),
    ElementList("source.devices", "source", "device", [("path", "path", Codec())], ordered=False, shorthand="path"),
    _hosts_field(),
    AUTH_TYPE,
    Field("source.auth.username", "source/auth", "username", option={"required": True}),
    SecretRef(),
)
BY_KEY = {f.key: f for f in POOL_FIELDS}
