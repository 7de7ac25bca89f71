# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the storage pool model. Pure functions of (current XML, spec); no libvirt calls.

``normalize_pool_spec`` turns module parameters into normalised values (or raises SpecError);
``plan_pool`` applies them to the pool's current persistent XML through ``POOL_FIELDS`` and says
what changed. Only declared values are compared, after normalisation, and only differing ones are
written: UUID, permissions and elements nobody declared stay as libvirt wrote them.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    Choice,
    Codec,
    ElementList,
    Field,
    Int,
    SpecError,
    ensure_path,
    find_path,
    reconcile_fields,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import PERMISSION_CODECS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string

POOL_TYPES = ("dir", "fs", "netfs", "logical", "disk", "iscsi", "rbd")
_PERMS = ("mode", "owner", "group")
_AUTH = ("source.auth.username", "source.auth.secret")

# Per pool type: the spec keys it takes, and those its definition must end up with.
POOL_RULES = {
    "dir": (("path",) + _PERMS, ("path",)),
    "fs": (("path", "source.devices", "source.format") + _PERMS, ("path", "source.devices")),
    "netfs": (("path", "source.hosts", "source.dir", "source.format") + _PERMS, ("path", "source.hosts", "source.dir")),
    "logical": (("path", "source.name", "source.devices", "source.format") + _PERMS, ("source.name",)),
    "disk": (("path", "source.devices", "source.format") + _PERMS, ("path", "source.devices")),
    "iscsi": (("path", "source.hosts", "source.devices", "source.initiator") + _AUTH + _PERMS,
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
_RUNTIME = ("capacity", "allocation", "available")
_IQN_RE = re.compile(r"^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-zA-Z0-9.\-]+(:.+)?$")
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
        super().__init__("source.auth.secret", "source/auth/secret", "uuid", SecretName())

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
    Field("source.auth.type", "source/auth", "type"),
    Field("source.auth.username", "source/auth", "username"),
    SecretRef(),
)
_BY_KEY = {f.key: f for f in POOL_FIELDS}


# ---- spec --------------------------------------------------------------------------------------------

def normalize_pool_spec(params):
    """Module parameters -> {spec key: normalised value} (None where not declared). Raises SpecError."""
    source = params.get("source") or {}
    auth = source.get("auth") or {}
    raw = {
        "path": params.get("path"),
        "source.name": source.get("name"),
        "source.dir": source.get("dir"),
        "source.format": source.get("format"),
        "source.initiator": source.get("initiator"),
        "source.devices": source.get("devices"),
        "source.hosts": source.get("hosts"),
        "source.auth.username": auth.get("username"),
        "source.auth.secret": auth.get("secret"),
    }
    spec = {"type": Choice(*POOL_TYPES).parse(params.get("type"), "type")}
    for key, value in raw.items():
        if isinstance(value, str) and not value.strip():
            raise SpecError(key, value, "expected a non-empty value (or leave the option out)")
        if isinstance(value, list) and not value:
            raise SpecError(key, value, "expected at least one item (or leave the option out)")
        spec[key] = _BY_KEY[key].codec.parse(value, key) if key in _BY_KEY else value
    for key in _PERMS:
        spec[key] = PERMISSION_CODECS[key].parse(params.get(key), key)
    return spec


def _device_paths(value):
    return [dict(item)["path"] for item in value or ()]


def check_spec_for_type(spec, pool_type):
    """Refuse keys the pool type does not take, formats it does not know, and malformed devices."""
    allowed, _required = POOL_RULES[pool_type]
    for key in sorted(k for k, v in spec.items() if v is not None and k != "type"):
        if key not in allowed:
            takes = [k for k, (keys, _r) in POOL_RULES.items() if key in keys]
            raise SpecError(key, _show(spec[key]), "a %s pool does not take it (it takes: %s); %s" % (
                pool_type, ", ".join(allowed), "pool types that do: %s" % ", ".join(takes) if takes else
                "no pool type does"))
    for key in POOL_SINGLE.get(pool_type, ()):
        if spec.get(key) is not None and len(spec[key]) != 1:
            raise SpecError(key, _show(spec[key]), "a %s pool takes exactly one" % pool_type)
    fmt = spec.get("source.format")
    if fmt is not None and fmt not in POOL_FORMATS.get(pool_type, ()):
        raise SpecError("source.format", fmt, "a %s pool takes one of: %s" % (pool_type, ", ".join(POOL_FORMATS[pool_type])))
    for index, path in enumerate(_device_paths(spec.get("source.devices"))):
        option = "source.devices[%d]" % index
        if pool_type == "iscsi" and not _IQN_RE.match(path):
            raise SpecError(option, path, "an iscsi pool's device is the target's IQN, such as "
                                          "iqn.2013-06.com.example:storage")
        if pool_type != "iscsi" and not path.startswith("/"):
            raise SpecError(option, path, "expected the absolute path of a block device, such as /dev/sdb")
    initiator = spec.get("source.initiator")
    if initiator is not None and not _IQN_RE.match(initiator):
        raise SpecError("source.initiator", initiator, "expected an IQN such as iqn.2013-06.com.example:host1")


def _show(value):
    """A normalised value back in the words of the spec (for messages)."""
    if isinstance(value, tuple):
        return [dict(item) for item in value]
    return value


# ---- plan ----------------------------------------------------------------------------------------------

class PoolPlan:
    def __init__(self, before, root, changes, created, pool_type):
        self.before = before
        self.root = root
        self.after = to_string(copy.deepcopy(root))
        self.changes = changes
        self.created = created
        self.type = pool_type

    @property
    def changed(self):
        return self.created or bool(self.changes)

    def describe_changes(self):
        """Each change as 'field: before -> after', values as a user would write them."""
        def show(key, value):
            field = _BY_KEY.get(key)
            return "(none)" if value is None else (field.codec.show(value) if field else value)
        return ["%s: %s -> %s" % (c.what, show(c.what, c.before), show(c.what, c.after)) for c in self.changes]

    def diff(self):
        """before/after pool XML for --diff (runtime sizes left out), only when something changes."""
        if not self.changed:
            return {}
        return {"before": self.before, "after": self.after,
                "before_header": "pool (persistent config)", "after_header": "pool (persistent config)"}


def strip_runtime(root):
    """Drop capacity/allocation/available: libvirt computes them; they are not configuration."""
    for tag in _RUNTIME:
        for elem in root.findall(tag):
            root.remove(elem)
    return root


def new_pool_root(name, pool_type):
    root = etree.Element("pool", type=pool_type)
    etree.SubElement(root, "name").text = name
    return root


def plan_pool(current_xml, spec, name):
    """Apply ``spec`` to the pool's current persistent XML (None: a new pool); return a PoolPlan."""
    created = current_xml is None
    if created:
        if spec.get("type") is None:
            raise SpecError("type", None, "pool %s does not exist, so its type is needed to define it; one of: %s"
                            % (name, ", ".join(POOL_TYPES)))
        pool_type = spec["type"]
        root = new_pool_root(name, pool_type)
        before = ""
    else:
        root = strip_runtime(parse_xml(current_xml))
        pool_type = root.get("type")
        before = to_string(copy.deepcopy(root))
        if spec.get("type") is not None and spec["type"] != pool_type:
            raise SpecError("type", spec["type"], "pool %s is a %s pool and a pool's type cannot change; remove it "
                                                  "(state: absent) and define it again" % (name, pool_type))
    if pool_type not in POOL_RULES:
        raise SpecError("type", pool_type, "this module manages pools of type: %s" % ", ".join(POOL_TYPES))
    check_spec_for_type(spec, pool_type)
    wanted = dict(spec)
    if spec.get("source.auth.username") is not None:
        wanted["source.auth.type"] = AUTH_TYPES[pool_type]
    changes = reconcile_fields(root, POOL_FIELDS, wanted)
    if created and pool_type == "logical":
        ensure_path(root, "target")  # the schema wants one; libvirt fills in /dev/<volume group>
    for key in POOL_RULES[pool_type][1]:
        value = _BY_KEY[key].read(root)
        if value is None or value == ():
            raise SpecError(key, None, "a %s pool needs it" % pool_type)
    return PoolPlan(before, root, changes, created, pool_type)


def with_permissions(xml, permissions):
    """The pool XML with its target permissions set to ``permissions`` ({'mode', 'owner', 'group'}, as
    normalised values): what libvirt reports once it has refreshed the pool from its directory."""
    root = parse_xml(xml)
    for key in _PERMS:
        if permissions.get(key) is not None:
            _BY_KEY[key].write(root, permissions[key])
    return to_string(root)


def pool_target_path(xml):
    """The target path of a pool XML (None for pools without one, such as rbd)."""
    return AbsPath().load(parse_xml(xml).findtext("target/path"))


def pool_source_devices(xml):
    return [d.get("path") for d in parse_xml(xml).iterfind("source/device")]
