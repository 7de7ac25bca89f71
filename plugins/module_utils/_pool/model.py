# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the storage pool model. Pure functions of (current XML, spec); no libvirt calls.

``normalize_pool_spec`` turns module parameters into normalised values (or raises SpecError);
``plan_pool`` applies them to the pool's current persistent XML through table.POOL_FIELDS and says
what changed. Only declared values are compared, after normalisation, and only differing ones are
written: UUID, permissions and elements nobody declared stay as libvirt wrote them.
"""

from __future__ import annotations

import copy

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Choice
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import ensure_path, read_fields, reconcile_fields
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.table import (
    AUTH_TYPES,
    BY_KEY,
    IQN_RE,
    POOL_FIELDS,
    POOL_FORMATS,
    POOL_RULES,
    POOL_SINGLE,
    POOL_TYPES,
    RUNTIME,
    AbsPath,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import PERMISSION_CODECS, PERMISSION_KEYS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string


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
        spec[key] = BY_KEY[key].codec.parse(value, key) if key in BY_KEY else value
    for key in PERMISSION_KEYS:
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
        if pool_type == "iscsi" and not IQN_RE.match(path):
            raise SpecError(option, path, "an iscsi pool's device is the target's IQN, such as "
                                          "iqn.2013-06.com.example:storage")
        if pool_type != "iscsi" and not path.startswith("/"):
            raise SpecError(option, path, "expected the absolute path of a block device, such as /dev/sdb")
    initiator = spec.get("source.initiator")
    if initiator is not None and not IQN_RE.match(initiator):
        raise SpecError("source.initiator", initiator, "expected an IQN such as iqn.2013-06.com.example:host1")


def _show(value):
    """A normalised value back in the words of the spec (for messages)."""
    if isinstance(value, tuple):
        return [dict(item) for item in value]
    return value


# ---- plan ----------------------------------------------------------------------------------------------

def strip_runtime(root):
    """Drop capacity/allocation/available: libvirt computes them; they are not configuration."""
    for tag in RUNTIME:
        for elem in root.findall(tag):
            root.remove(elem)
    return root


def new_pool_root(name, pool_type):
    root = etree.Element("pool", type=pool_type)
    etree.SubElement(root, "name").text = name
    return root


def plan_pool(current_xml, spec, name):
    """Apply ``spec`` to the pool's current persistent XML (None: a new pool); the plan (_plan.Plan), with the
    pool's ``type``."""
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
        value = BY_KEY[key].read(root)
        if value is None or value == ():
            raise SpecError(key, None, "a %s pool needs it" % pool_type)
    return Plan("pool (persistent config)", before, to_string(root), changes, created, type=pool_type)


def read_pool_spec(xml):
    """A pool's friendly spec as the pool module takes it (its name, type and the keys its type takes), read through
    the same table that writes it; applying it to the same pool changes nothing. None for a type the module does not
    manage."""
    root = strip_runtime(parse_xml(xml) if isinstance(xml, (str, bytes)) else copy.deepcopy(xml))
    pool_type = root.get("type")
    if pool_type not in POOL_RULES:
        return None  # a type the module does not manage (gluster, zfs, ...)
    allowed = POOL_RULES[pool_type][0]
    spec = {"name": root.findtext("name"), "type": pool_type}
    spec.update(read_fields(root, [field for field in POOL_FIELDS if field.key in allowed]))
    return spec


def with_permissions(xml, permissions):
    """The pool XML with its target permissions set to ``permissions`` ({'mode', 'owner', 'group'}, as
    normalised values): what libvirt reports once it has refreshed the pool from its directory."""
    root = parse_xml(xml)
    for key in PERMISSION_KEYS:
        if permissions.get(key) is not None:
            BY_KEY[key].write(root, permissions[key])
    return to_string(root)


def pool_target_path(xml):
    """The target path of a pool XML (None for pools without one, such as rbd)."""
    return AbsPath().load(parse_xml(xml).findtext("target/path"))


def pool_source_devices(xml):
    return [d.get("path") for d in parse_xml(xml).iterfind("source/device")]
