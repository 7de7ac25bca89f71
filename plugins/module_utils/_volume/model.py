# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the volume model. Pure: no libvirt calls.

``normalize_volume_spec`` checks and normalises the parameters; ``plan_volume`` compares the spec
with what the volume is (facts read from its XML through table.VOLUME_FIELDS) and returns what to
do, refusing what cannot be done (a shrink, a format or backing change). The domain module plans the
volumes of a guest's disks with the same function.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import (
    POOL_NAME,
    VOLUME_NAME,
    Choice,
    format_size,
    parse_disk_size,
)

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import (
    FILE_POOL_TYPES,
    PERMISSION_CODECS,
    parse_checksum,
    parse_permissions,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.table import FORMATS

# Formats libvirt reports for raw data it recognises by content (an ISO image is raw data).
RAW_ALIASES = ("raw", "iso", "none", None)
SOURCES = ("backing", "clone", "src", "url")
_URL_SCHEMES = ("http://", "https://", "ftp://")
GROW_IF_SMALLER = "grow %s to %s if the image is smaller"


# ---- spec and plan (pure) ------------------------------------------------------------------------------

def normalize_volume_spec(params):
    """Module parameters -> normalised spec. Raises SpecError naming the option."""
    name = VOLUME_NAME.parse(params.get("name"), "name")
    spec = {"name": name, "pool": POOL_NAME.parse(params.get("pool"), "pool")}
    size = params.get("size")
    spec["size"] = None if size is None else parse_disk_size(size, "size")
    if spec["size"] == 0:
        raise SpecError("size", size, "expected a size above zero")
    spec["format"] = Choice(*FORMATS).parse(params.get("format"), "format")
    for key in ("backing", "clone", "clone_pool", "src", "url"):
        value = params.get(key)
        if value is not None and not str(value).strip():
            raise SpecError(key, value, "expected a non-empty value (or leave the option out)")
        spec[key] = value
    given = [key for key in SOURCES if spec[key] is not None]
    if len(given) > 1:
        accepted = "a volume is made from one of backing, clone, src or url; %s is given too" % given[0]
        raise SpecError(given[1], spec[given[1]], accepted)
    if spec["backing"] is not None and spec["format"] == "raw":
        raise SpecError("format", "raw", "a volume with a backing image is a qcow2 overlay; use format: qcow2")
    if spec["clone_pool"] is not None and spec["clone"] is None:
        raise SpecError("clone_pool", spec["clone_pool"], "it names the pool of clone; give clone too")
    if spec["src"] is not None and not spec["src"].startswith("/"):
        raise SpecError("src", spec["src"], "expected the absolute path of a file on the managed host")
    if spec["url"] is not None and not spec["url"].lower().startswith(_URL_SCHEMES):
        raise SpecError("url", spec["url"], "expected an http://, https:// or ftp:// URL")
    spec["checksum"] = parse_checksum(params.get("checksum"))
    if spec["url"] is not None and spec["checksum"] is None:
        raise SpecError("checksum", None, "a url import needs a checksum such as sha256:<64 hex digits>, so that a "
                                          "corrupt or tampered download is refused")
    if spec["checksum"] is not None and spec["src"] is None and spec["url"] is None:
        raise SpecError("checksum", params.get("checksum"), "it checks src or url; give one of them")
    spec.update(parse_permissions(params))
    return spec


def same_format(wanted, current):
    """Whether a declared format matches libvirt's (raw data libvirt labels iso, or none, is raw)."""
    if wanted == "raw":
        return current in RAW_ALIASES
    return wanted == current


def _size_text(nbytes):
    return "%s (%d bytes)" % (format_size(nbytes), nbytes)


class VolumePlan(Plan):
    """What to do for one volume: a view plan (``before``/``after`` hold the spec-level fields that differ), and
    what to make it from."""

    def __init__(self, name, pool_kind="dir"):
        super().__init__("volume %s" % name, {}, {})
        self.name = name
        self.pool_kind = pool_kind
        self.create = None  # None, or 'empty', 'overlay', 'clone', 'import'
        self.capacity = None  # capacity to create with (None: the imported image's own)
        self.format = None
        self.backing = None  # (path, format) of the base image of a new overlay
        self.grow_to = None
        self.permissions = {}  # key -> wanted value, for an existing volume that differs

    @property
    def created(self):
        return bool(self.create)

    def drop_permissions(self):
        """Leave the permissions alone (they are not this run's to change)."""
        for key in self.permissions:
            self.before.pop(key, None)
            self.after.pop(key, None)
        self.actions = [a for a in self.actions if not a.startswith("set ")]
        self.permissions = {}


def _perm_view(facts):
    return {key: PERMISSION_CODECS[key].show(facts.get(key)) if key == "mode" else facts.get(key)
            for key in ("owner", "group", "mode") if facts.get(key) is not None}  # in the order a diff reads best


def describe(facts):
    """The spec-level view of a volume (what --diff shows)."""
    view = {"state": "present",
            "capacity": facts["capacity"] if isinstance(facts["capacity"], str) else format_size(facts["capacity"]),
            "format": facts.get("format"), "backing": facts.get("backing")}
    view.update(_perm_view(facts))
    return view


def plan_volume(current, spec, source=None, pool_kind="dir", disk=False):
    """Compare the spec with the volume's facts (None: it does not exist) and plan.

    ``source`` describes what a new volume is made from (gathered by the runner): for an overlay the
    base image's facts, for a clone the source volume's, for an import the image's format and
    virtual size (None when it is a URL not downloaded yet). ``disk``: planned for a guest's disk
    (the domain module), which words a refusal as such.
    """
    plan = VolumePlan(spec["name"], pool_kind)
    if current is None:
        _plan_new(plan, spec, source or {}, pool_kind)
    else:
        _plan_existing(plan, spec, current, "a disk " if disk else "")
    return plan


def _plan_new(plan, spec, source, pool_kind):
    name, size, fmt = spec["name"], spec["size"], spec["format"]
    if spec["backing"] is not None:
        plan.create, base = "overlay", source
        plan.backing = (base["path"], _format_of(base))
        fmt = "qcow2"
        if base["capacity"] is not None:
            refuse_smaller(size, base["capacity"], "the backing image %s" % base["path"])
        plan.capacity = size if base["capacity"] is None else max(size or 0, base["capacity"])
        plan.actions.append("create %s as a qcow2 overlay on %s" % (name, base["path"]))
    elif spec["clone"] is not None:
        plan.create, origin = "clone", source
        fmt = fmt or (None if origin.get("assumed") else _format_of(origin))
        if origin["capacity"] is not None:
            refuse_smaller(size, origin["capacity"], "the volume it clones (%s)" % origin["path"])
        plan.capacity = origin["capacity"]
        plan.actions.append("clone %s from %s" % (name, origin["path"]))
    elif spec["src"] is not None or spec["url"] is not None:
        plan.create = "import"
        what = spec["src"] or spec["url"]
        fmt = check_image_format(fmt, source.get("format"), "src" if spec["src"] else "url")
        if source.get("capacity") is not None:
            refuse_smaller(size, source["capacity"], "the image %s" % what)
        plan.capacity = source.get("capacity")
        plan.actions.append("import %s from %s" % (name, what))
        if plan.capacity is None and size is not None:
            plan.actions.append(GROW_IF_SMALLER % (name, format_size(size)))
    else:
        if size is None:
            raise SpecError("size", None, "volume %s does not exist; give size to create it (or backing, clone, src "
                                          "or url)" % name)
        plan.create = "empty"
        plan.capacity = size
        fmt = fmt or ("qcow2" if pool_kind in FILE_POOL_TYPES else None)
        plan.actions.append("create %s (%s%s)" % (name, format_size(size), ", " + fmt if fmt else ""))
    if fmt == "qcow2" and pool_kind not in FILE_POOL_TYPES:
        raise SpecError("format", "qcow2", "volumes of a %s pool are block devices with raw data; qcow2 needs a dir, "
                                           "fs or netfs pool" % pool_kind)
    plan.format = fmt
    if size is not None and plan.capacity is not None and size > plan.capacity and plan.create != "empty":
        plan.grow_to = size
        plan.actions.append("grow %s to %s" % (name, format_size(size)))
    final = size if plan.capacity is None else max(size or 0, plan.capacity)
    plan.before = {"state": "absent"}
    plan.after = describe({"capacity": final if final else "(the origin's size)", "format": fmt or "(the origin's)",
                           "backing": plan.backing[0] if plan.backing else None,
                           "owner": spec["owner"], "group": spec["group"], "mode": spec["mode"]})


def _format_of(facts):
    return "raw" if facts.get("format") in RAW_ALIASES else facts.get("format")


def check_image_format(declared, detected, option):
    """The format of an imported image: what it is; a declared format must agree."""
    if detected is None:  # a URL before download: the declared format, or the image's own
        return declared
    if detected not in FORMATS:
        raise SpecError(option, detected, "the image is in %s format; only qcow2 and raw images are imported (convert "
                                          "it with qemu-img first)" % detected)
    if declared is not None and declared != detected:
        raise SpecError("format", declared, "the image from %s is %s, not %s" % (option, detected, declared))
    return detected


def refuse_smaller(size, capacity, what):
    if size is not None and size < capacity:
        raise SpecError("size", format_size(size), "%s is %s; a volume made from it cannot be smaller (requested %s)"
                        % (what, _size_text(capacity), _size_text(size)))


def _plan_existing(plan, spec, current, what=""):
    name = spec["name"]
    if spec["format"] is not None and not same_format(spec["format"], current["format"]):
        raise SpecError("format", spec["format"], "volume %s is %s; the format of an existing volume cannot change "
                                                  "(clone it into a new volume with the format instead)"
                        % (name, current["format"]))
    backing = spec.get("backing_path")
    if spec["backing"] is not None and backing != current["backing"]:
        raise SpecError("backing", spec["backing"], "volume %s has %s; the backing image of an existing volume cannot "
                                                    "change" % (name, "backing image %s" % current["backing"]
                                                                if current["backing"] else "no backing image"))
    size = spec["size"]
    if size is not None and size < current["capacity"]:
        raise SpecError("size", format_size(size), "volume %s is %s and the requested size is %s; shrinking %sis refused "
                                                   "(it would lose data)" % (name, _size_text(current["capacity"]),
                                                                             _size_text(size), what))
    before, after = {}, {}
    if size is not None and size > current["capacity"]:
        plan.grow_to = size
        plan.actions.append("grow %s from %s to %s" % (name, format_size(current["capacity"]), format_size(size)))
        before["capacity"], after["capacity"] = format_size(current["capacity"]), format_size(size)
    for key in ("owner", "group", "mode"):
        if spec[key] is not None and spec[key] != current.get(key):
            plan.permissions[key] = spec[key]
            show = PERMISSION_CODECS[key].show
            before[key] = None if current.get(key) is None else show(current[key])
            after[key] = show(spec[key])
            plan.actions.append("set %s of %s to %s" % (key, name, after[key]))
    plan.before, plan.after = before, after
