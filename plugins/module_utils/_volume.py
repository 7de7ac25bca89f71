# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``volume`` module: a pure plan over volume facts, and the runner that calls libvirt.

``normalize_volume_spec`` checks and normalises the parameters; ``plan_volume`` compares the spec
with what the volume is (facts read from its XML, see ``_storage.volume_facts``) and returns what to
do, refusing what cannot be done (a shrink, a format or backing change). The runner gathers the facts,
then makes the changes with one libvirt call each: createXML (empty or thin overlay), createXMLFrom
(clone), createXML + a streamed upload (import from a local file or a downloaded URL), resize (grow).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tempfile

from ansible.module_utils.urls import fetch_url

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    POOL_NAME,
    VOLUME_NAME,
    Choice,
    SpecError,
    format_size,
    parse_disk_size,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI, libvirt, run_guarded
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import (
    CHUNK,
    FILE_POOL_TYPES,
    PERMISSION_CODECS,
    VOLUME_SCHEMA,
    file_digest,
    find_pool,
    is_local_uri,
    lookup_pool,
    parse_checksum,
    parse_permissions,
    pool_type,
    guests_using_volume,
    sniff_image,
    upload_file,
    volume_by_reference,
    volume_facts,
    volume_xml,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml, validate_schema

FORMATS = ("qcow2", "raw")
# Formats libvirt reports for raw data it recognises by content (an ISO image is raw data).
RAW_ALIASES = ("raw", "iso", "none", None)
_SOURCES = ("backing", "clone", "src", "url")
_URL_SCHEMES = ("http://", "https://", "ftp://")
_GROW_IF_SMALLER = "grow %s to %s if the image is smaller"


def argument_spec():
    """The module's options (the docs in plugins/modules/volume.py describe them)."""
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "pool": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "size": {"type": "raw"},
        "format": {"type": "str", "choices": list(FORMATS)},
        "backing": {"type": "str"},
        "clone": {"type": "str"},
        "clone_pool": {"type": "str"},
        "src": {"type": "path"},
        "url": {"type": "str"},
        "checksum": {"type": "str"},
        "validate_certs": {"type": "bool", "default": True},
        "timeout": {"type": "int", "default": 30},
        "mode": {"type": "raw"},
        "owner": {"type": "raw"},
        "group": {"type": "raw"},
        "force": {"type": "bool", "default": False},
    }


MUTUALLY_EXCLUSIVE = [list(_SOURCES)]
REQUIRED_BY = {"url": "checksum", "clone_pool": "clone"}


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
    given = [key for key in _SOURCES if spec[key] is not None]
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


class VolumePlan:
    """What to do for one volume. ``before``/``after`` are the spec-level views for --diff."""

    def __init__(self, name, pool_kind="dir"):
        self.name = name
        self.pool_kind = pool_kind
        self.create = None  # None, or 'empty', 'overlay', 'clone', 'import'
        self.capacity = None  # capacity to create with (None: the imported image's own)
        self.format = None
        self.backing = None  # (path, format) of the base image of a new overlay
        self.grow_to = None
        self.permissions = {}  # key -> wanted value, for an existing volume that differs
        self.before = {}
        self.after = {}
        self.actions = []

    @property
    def changed(self):
        return bool(self.create or self.grow_to or self.permissions)

    def drop_permissions(self):
        """Leave the permissions alone (they are not this run's to change)."""
        for key in self.permissions:
            self.before.pop(key, None)
            self.after.pop(key, None)
        self.actions = [a for a in self.actions if not a.startswith("set ")]
        self.permissions = {}

    def diff(self):
        if not self.changed:
            return {}
        return {"before": self.before, "after": self.after,
                "before_header": "volume %s" % self.name, "after_header": "volume %s" % self.name}


def _perm_view(facts):
    return {key: PERMISSION_CODECS[key].show(facts.get(key)) if key == "mode" else facts.get(key)
            for key in ("owner", "group", "mode") if facts.get(key) is not None}


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
            _refuse_smaller(size, base["capacity"], "the backing image %s" % base["path"])
        plan.capacity = size if base["capacity"] is None else max(size or 0, base["capacity"])
        plan.actions.append("create %s as a qcow2 overlay on %s" % (name, base["path"]))
    elif spec["clone"] is not None:
        plan.create, origin = "clone", source
        fmt = fmt or (None if origin.get("assumed") else _format_of(origin))
        if origin["capacity"] is not None:
            _refuse_smaller(size, origin["capacity"], "the volume it clones (%s)" % origin["path"])
        plan.capacity = origin["capacity"]
        plan.actions.append("clone %s from %s" % (name, origin["path"]))
    elif spec["src"] is not None or spec["url"] is not None:
        plan.create = "import"
        what = spec["src"] or spec["url"]
        fmt = check_image_format(fmt, source.get("format"), "src" if spec["src"] else "url")
        if source.get("capacity") is not None:
            _refuse_smaller(size, source["capacity"], "the image %s" % what)
        plan.capacity = source.get("capacity")
        plan.actions.append("import %s from %s" % (name, what))
        if plan.capacity is None and size is not None:
            plan.actions.append(_GROW_IF_SMALLER % (name, format_size(size)))
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


def _refuse_smaller(size, capacity, what):
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


def set_permissions(path, permissions):
    """chown/chmod a volume file without following a symlink: the file is opened with O_NOFOLLOW and
    changed through its descriptor, so a link swapped in meanwhile is refused, not followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UserError("volume %s: cannot change its owner/group/mode: %s (a symlink is refused)"
                        % (path, exc.strerror)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError("volume %s is not a regular file; its owner/group/mode are left as they are" % path)
        os.fchown(fd, permissions.get("owner", -1), permissions.get("group", -1))
        if "mode" in permissions:
            os.fchmod(fd, permissions["mode"])
    finally:
        os.close(fd)


# ---- the runner ----------------------------------------------------------------------------------------

class VolumeRunner:
    def __init__(self, module, conn):
        self.module = module
        self.conn = conn
        self.params = module.params
        self.check = module.check_mode
        self.local = is_local_uri(conn.getURI())
        self.clone_source = None

    # -- facts about what a new volume is made from ------------------------------------------------------

    def _volume_by_reference(self, pool, reference, option):
        return volume_by_reference(self.conn, pool, reference, option)

    def source_facts(self, spec, pool):
        if spec["backing"] is not None:
            try:
                return volume_facts(self._volume_by_reference(pool, spec["backing"], "backing").XMLDesc(0))
            except SpecError:
                if not self.check:
                    raise
                return self._assumed_origin(pool, spec["backing"], "backing", "qcow2")
        if spec["clone"] is not None:
            try:
                origin_pool = pool if spec["clone_pool"] is None else lookup_pool(self.conn, spec["clone_pool"],
                                                                                  "clone_pool")
                if not origin_pool.isActive():
                    raise SpecError("clone_pool", origin_pool.name(), "the pool is not active; start it first")
                self.clone_source = self._volume_by_reference(origin_pool, spec["clone"], "clone")
            except SpecError:
                if not self.check:
                    raise
                return self._assumed_origin(pool if spec["clone_pool"] is None else None, spec["clone"], "clone", None)
            return volume_facts(self.clone_source.XMLDesc(0))
        if spec["src"] is not None:
            return self.local_image_facts(spec)
        return {}

    def _assumed_origin(self, pool, reference, option, fmt):
        """Check mode, before the base image or the volume to clone exists: an earlier task of the play makes it."""
        self.module.warn("check mode: %s %s does not exist yet; assuming an earlier task makes it (a real run fails "
                         "here if it does not)" % (option, reference))
        path = reference
        if pool is not None and not reference.startswith("/") and pool_type(pool) in FILE_POOL_TYPES:
            path = posixpath.join(parse_xml(pool.XMLDesc(0)).findtext("target/path"), reference)
        return {"path": path, "capacity": None, "format": fmt, "assumed": True}

    def local_image_facts(self, spec):
        path = spec["src"]
        if not os.path.exists(path):
            raise SpecError("src", path, "no such file on the managed host (the module runs there; copy the image there "
                                         "first, or give url)")
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SpecError("src", path, "expected a regular file")
        if spec["checksum"] is not None:
            algorithm, digest = spec["checksum"]
            actual = file_digest(path, algorithm)
            if actual != digest:
                raise SpecError("checksum", "%s:%s" % (algorithm, digest), "src %s has %s:%s" % (path, algorithm, actual))
        fmt, capacity = sniff_image(path)
        return {"format": fmt, "capacity": capacity, "file": path}

    # -- present -------------------------------------------------------------------------------------------

    def present(self, spec, pool, vol):
        kind = pool_type(pool)
        current = volume_facts(vol.XMLDesc(0)) if vol is not None else None
        source = None
        if current is None:
            source = self.source_facts(spec, pool)
        elif spec["backing"] is not None:
            spec["backing_path"] = self._volume_by_reference(pool, spec["backing"], "backing").path()
        plan = plan_volume(current, spec, source, kind)
        if plan.permissions:
            users = guests_using_volume(self.conn, current["path"], pool.name(), spec["name"], active_only=True)
            if users:
                self.module.warn("volume %s: owner/group/mode differ from the declared ones, but running guest(s) %s use "
                                 "it and libvirt's dynamic ownership manages them while they run; left as they are"
                                 % (current["path"], ", ".join(users)))
                plan.drop_permissions()
            else:
                self._check_permissions_possible(vol, current)
        if plan.create and plan.create != "import" and plan.capacity is not None:
            validate_schema(self._create_xml(spec, plan), VOLUME_SCHEMA, "volume")
        if not self.check:
            vol = self._apply(spec, pool, vol, plan, source)
        facts = volume_facts(vol.XMLDesc(0)) if vol is not None else None
        return {
            "changed": plan.changed,
            "diff": plan.diff(),
            "created": bool(plan.create),
            "actions": plan.actions,
            "volume_path": facts["path"] if facts else self._predicted_path(pool, spec["name"], kind),
            "capacity": facts["capacity"] if facts else (plan.grow_to or plan.capacity),
            "format": facts["format"] if facts else plan.format,
            "backing": facts["backing"] if facts else (plan.backing[0] if plan.backing else None),
        }

    @staticmethod
    def _predicted_path(pool, name, kind):
        if kind not in FILE_POOL_TYPES:
            return None
        return posixpath.join(parse_xml(pool.XMLDesc(0)).findtext("target/path"), name)

    def _check_permissions_possible(self, vol, current):
        """libvirt has no call that changes an existing volume's permissions. For a file volume on this host
        the module sets them itself (set_permissions); anything else is refused before any change. A volume
        that is a symlink is refused: its owner and mode are those of whatever it points to."""
        if self.local and os.path.islink(vol.path()):
            raise UserError("option owner/group/mode: volume %s is a symlink (to %s); the owner and mode of what it "
                            "points to are not this volume's to change, so nothing was changed. Replace the link "
                            "with the image itself, or leave owner/group/mode out"
                            % (vol.path(), os.readlink(vol.path())))
        if self.local and current.get("type") == "file" and os.path.isfile(vol.path()):
            return
        raise UserError("option owner/group/mode: volume %s has owner %s, group %s, mode %s; libvirt cannot change "
                        "the permissions of an existing volume, and this module changes them itself only for a "
                        "file volume on the host it runs on (uri %s). Set them when the volume is created, or change "
                        "them on the host" % (current["path"], current.get("owner"), current.get("group"),
                                              PERMISSION_CODECS["mode"].show(current.get("mode")), self.params["uri"]))

    def _create_xml(self, spec, plan, capacity=None, fmt=None):
        perms = {key: spec[key] for key in ("owner", "group", "mode")}
        # Volumes of block pools (logical, disk, iscsi, rbd) take no image format: leave it to libvirt.
        fmt = (fmt or plan.format) if plan.pool_kind in FILE_POOL_TYPES else None
        return volume_xml(spec["name"], plan.capacity if capacity is None else capacity, fmt, plan.backing, perms)

    def _apply(self, spec, pool, vol, plan, source):
        if plan.create:
            vol = self._create(spec, pool, plan, source)
            try:
                if plan.grow_to:
                    vol.resize(plan.grow_to, 0)
            except libvirt.libvirtError as exc:
                vol.delete(0)
                raise UserError("volume %s was created but could not be grown to %s, so it was deleted again: %s"
                                % (spec["name"], format_size(plan.grow_to), exc)) from None
            return vol
        if plan.grow_to:
            try:
                vol.resize(plan.grow_to, 0)
            except libvirt.libvirtError as exc:
                raise UserError("volume %s could not be grown to %s: %s (a disk of a running guest is grown through "
                                "kvmfleet.libvirt.domain, disks[].size, which resizes it live)"
                                % (vol.path(), format_size(plan.grow_to), exc)) from None
        if plan.permissions:
            set_permissions(vol.path(), plan.permissions)
        return vol

    def _create(self, spec, pool, plan, source):
        if plan.create == "clone":
            return pool.createXMLFrom(self._create_xml(spec, plan), self.clone_source, 0)
        if plan.create != "import":
            return pool.createXML(self._create_xml(spec, plan), 0)
        if spec["url"] is None:
            return self._import(spec, pool, plan, source["file"])
        path = self._download(spec)
        try:
            fmt, capacity = sniff_image(path)
            plan.format = check_image_format(spec["format"], fmt, "url")
            _refuse_smaller(spec["size"], capacity, "the image %s" % spec["url"])
            plan.capacity = capacity
            if spec["size"] is not None:
                plan.actions.remove(_GROW_IF_SMALLER % (spec["name"], format_size(spec["size"])))
                if spec["size"] > capacity:
                    plan.grow_to = spec["size"]
                    plan.actions.append("grow %s to %s" % (spec["name"], format_size(spec["size"])))
            return self._import(spec, pool, plan, path)
        finally:
            os.unlink(path)

    def _import(self, spec, pool, plan, path):
        """Create a volume the size of the file and stream the file into it; libvirt then sees its format."""
        # Created as raw bytes of the file's length: after the upload libvirt probes the content (a qcow2
        # image reports its own format and virtual size).
        xml = self._create_xml(spec, plan, capacity=os.path.getsize(path), fmt="raw")
        validate_schema(xml, VOLUME_SCHEMA, "volume")
        vol = pool.createXML(xml, 0)
        try:
            upload_file(self.conn, vol, path)
        except BaseException as exc:
            vol.delete(0)
            raise UserError("volume %s: the upload of %s failed, so the volume was deleted again: %s"
                            % (spec["name"], spec["src"] or spec["url"], exc)) from None
        return pool.storageVolLookupByName(spec["name"])

    def _download(self, spec):
        """Fetch the URL into a temporary file, hashing as it streams; verify the checksum. Returns the path."""
        algorithm, digest = spec["checksum"]
        response, info = fetch_url(self.module, spec["url"], timeout=self.params["timeout"])
        status = info.get("status")
        if response is None or status != 200:
            why = "HTTP %s %s" % (status, info.get("msg")) if isinstance(status, int) and status > 0 else info.get("msg")
            raise UserError("option url: cannot download %s: %s" % (spec["url"], why))
        hasher = hashlib.new(algorithm)
        handle, path = tempfile.mkstemp(prefix="kvmfleet-volume-", dir=self.module.tmpdir)
        try:
            with os.fdopen(handle, "wb") as out:
                for block in iter(lambda: response.read(CHUNK), b""):
                    hasher.update(block)
                    out.write(block)
        except BaseException:
            os.unlink(path)
            raise
        if hasher.hexdigest() != digest:
            os.unlink(path)
            raise SpecError("checksum", "%s:%s" % (algorithm, digest), "the download of %s has %s:%s; nothing was "
                                                                       "created" % (spec["url"], algorithm, hasher.hexdigest()))
        return path

    # -- absent ----------------------------------------------------------------------------------------------

    def absent(self, pool, vol):
        result = {"changed": vol is not None, "created": False, "actions": [], "removed": None}
        if vol is None:
            return result
        facts = volume_facts(vol.XMLDesc(0))
        dependents = self._overlays_of(pool, facts["path"])
        if dependents:
            raise UserError("volume %s is the backing image of %s; delete those first (deleting it would break them)"
                            % (facts["path"], ", ".join(dependents)))
        users = guests_using_volume(self.conn, facts["path"], pool.name(), facts["name"])
        if users and not self.params["force"]:
            raise UserError("volume %s is a disk of guest(s) %s; deleting it would leave them pointing at a missing "
                            "file, so nothing was changed. Detach it from them first (or remove them), or set "
                            "force: true" % (facts["path"], ", ".join(users)))
        result.update(removed=facts["path"], actions=["delete %s" % facts["path"]],
                      diff={"before": describe(facts), "after": {"state": "absent"},
                            "before_header": "volume %s" % facts["name"], "after_header": "volume %s" % facts["name"]})
        if not self.check:
            vol.delete(0)
        return result

    @staticmethod
    def _overlays_of(pool, path):
        """Volumes of the same pool whose backing image is ``path``."""
        names = []
        for other in pool.listAllVolumes(0) or []:
            if other.path() != path and volume_facts(other.XMLDesc(0))["backing"] == path:
                names.append(other.path())
        return sorted(names)

    def predict_without_pool(self, spec):
        """Check mode, before the pool exists or runs: the volume would be created (by the numbers declared)."""
        self.module.warn("check mode: pool %s does not exist or is not active yet; assuming an earlier task makes it, "
                         "volume %s would be created" % (spec["pool"], spec["name"]))
        plan = VolumePlan(spec["name"])
        plan.create = "unknown"
        plan.before = {"state": "absent"}
        plan.after = {"state": "present"}
        if spec["size"] is not None:
            plan.after["capacity"] = format_size(spec["size"])
        if spec["format"] is not None:
            plan.after["format"] = spec["format"]
        plan.actions.append("create %s in pool %s" % (spec["name"], spec["pool"]))
        return {"changed": True, "diff": plan.diff(), "created": True, "actions": plan.actions, "volume_path": None,
                "capacity": spec["size"], "format": spec["format"], "backing": None}

    def run(self):
        spec = normalize_volume_spec(self.params)
        pool = find_pool(self.conn, spec["pool"])
        if pool is None and self.params["state"] == "absent":
            return {"changed": False, "created": False, "actions": [], "removed": None}  # no pool, no volume
        if (pool is None or not pool.isActive()) and self.check and self.params["state"] == "present":
            return self.predict_without_pool(spec)
        pool = pool or lookup_pool(self.conn, spec["pool"])
        if not pool.isActive():
            raise SpecError("pool", spec["pool"], "the pool is not active; start it first (kvmfleet.libvirt.pool with "
                                                  "state: active)")
        try:
            vol = pool.storageVolLookupByName(spec["name"])
        except libvirt.libvirtError:
            vol = None
        if self.params["state"] == "absent":
            return self.absent(pool, vol)
        return self.present(spec, pool, vol)


def run_module(module):
    """Entry point for plugins/modules/volume.py."""
    run_guarded(module, lambda conn: VolumeRunner(module, conn).run(),
                "volume %s/%s" % (module.params["pool"], module.params["name"]))
