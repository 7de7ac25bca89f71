# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``volume`` module's runner: it gathers the facts (model.py plans over them), then
makes the changes with one libvirt call each: createXML (empty or thin overlay), createXMLFrom
(clone), createXML + a streamed upload (import from a local file or a downloaded URL), resize (grow).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tempfile
import time

from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import format_size
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import check_document, define, libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError, assumed
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import (
    CHUNK,
    FILE_POOL_TYPES,
    PERMISSION_CODECS,
    PERMISSION_KEYS,
    file_digest,
    find_pool,
    guests_using_volume,
    is_local_uri,
    lookup_pool,
    pool_type,
    sniff_image,
    upload_file,
    Filling,
    half_made,
    volume_by_reference,
    volume_document,
    volume_xml,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.model import (
    GROW_IF_SMALLER,
    VolumePlan,
    check_image_format,
    describe,
    normalize_volume_spec,
    plan_volume,
    refuse_smaller,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.table import volume_facts
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml


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

class VolumeRunner(Runner):
    """Converge one volume (``params``: the volume module's) on ``conn``."""

    def __init__(self, conn, params, check, tmpdir=None):
        super().__init__(conn, params, check, tmpdir)
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
        self.warn(assumed(option, reference))
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
        half = None
        if vol is not None and half_made(pool, spec["name"]):
            half, vol = vol, None  # ours, never finished: made again from its source
        current = volume_facts(volume_document(vol)) if vol is not None else None
        source = None
        if current is None:
            source = self.source_facts(spec, pool)
        elif spec["backing"] is not None:
            spec["backing_path"] = self._volume_by_reference(pool, spec["backing"], "backing").path()
        plan = plan_volume(current, spec, source, kind)
        if half is not None:
            plan.actions.insert(0, "delete the half-made volume %s (a run was stopped while filling it)" % half.path())
        if plan.permissions:
            users = guests_using_volume(self.conn, current["path"], pool.name(), spec["name"], active_only=True)
            if users:
                self.warn("volume %s: owner/group/mode differ from the declared ones, but running guest(s) %s use "
                          "it and libvirt's dynamic ownership manages them while they run; left as they are"
                          % (current["path"], ", ".join(users)))
                plan.drop_permissions()
            else:
                self._check_permissions_possible(vol, current)
        if plan.create and plan.create != "import" and plan.capacity is not None:
            check_document("volume", self._create_xml(spec, plan))
        if not self.check:
            if half is not None:
                half.delete(0)  # holds nothing anyone wrote: a fill of ours that never finished
            with self.undo.guard("the change to volume %s" % spec["name"]):
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
        perms = {key: spec[key] for key in PERMISSION_KEYS}
        # Volumes of block pools (logical, disk, iscsi, rbd) take no image format: leave it to libvirt.
        fmt = (fmt or plan.format) if plan.pool_kind in FILE_POOL_TYPES else None
        return volume_xml(spec["name"], plan.capacity if capacity is None else capacity, fmt, plan.backing, perms)

    def _apply(self, spec, pool, vol, plan, source):
        """The writes; each creation registers its deletion with the run's Undo (a failure later in the run
        takes it back)."""
        if plan.create:
            vol = self._create(spec, pool, plan, source)
            try:
                if plan.grow_to:
                    vol.resize(plan.grow_to, 0)
            except libvirt.libvirtError as exc:
                self.undo.rollback()
                raise UserError("volume %s was created but could not be grown to %s, so it was deleted again: %s"
                                % (spec["name"], format_size(plan.grow_to), exc), code="rolled_back",
                                cause=exc) from None
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
        if plan.create not in ("clone", "import"):
            return self._made(define("volume", pool.createXML, self._create_xml(spec, plan)))
        filling = Filling(pool, spec["name"])  # a run stopped before the last byte leaves the volume marked
        filling.begin()
        self.undo.add("the marker of volume %s" % spec["name"], filling.failed)  # after the volume's own undo
        vol = self._fill(spec, pool, plan, source)
        filling.done()
        return vol

    def _fill(self, spec, pool, plan, source):
        if plan.create == "clone":
            return self._made(define("volume", lambda xml, flags: pool.createXMLFrom(xml, self.clone_source, flags),
                                     self._create_xml(spec, plan)))
        if spec["url"] is None:
            return self._import(spec, pool, plan, source["file"])
        path = self._download(spec)
        try:
            fmt, capacity = sniff_image(path)
            plan.format = check_image_format(spec["format"], fmt, "url")
            refuse_smaller(spec["size"], capacity, "the image %s" % spec["url"])
            plan.capacity = capacity
            if spec["size"] is not None:
                plan.actions.remove(GROW_IF_SMALLER % (spec["name"], format_size(spec["size"])))
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
        vol = self._made(define("volume", pool.createXML, xml))
        try:
            upload_file(self.conn, vol, path)
            refresh_after_upload(pool)
        except BaseException as exc:
            self.undo.rollback()
            raise UserError("volume %s: the upload of %s failed, so the volume was deleted again: %s"
                            % (spec["name"], spec["src"] or spec["url"], exc), code="rolled_back") from None
        return pool.storageVolLookupByName(spec["name"])

    def _made(self, vol):
        """A volume this run created: a failure later in the run deletes it again."""
        self.undo.add("volume %s" % vol.path(), lambda: vol.delete(0))
        return vol

    def _download(self, spec):
        """Fetch the URL into a temporary file, hashing as it streams; verify the checksum. Returns the path."""
        algorithm, digest = spec["checksum"]
        try:
            response = open_url(spec["url"], timeout=self.params["timeout"],
                                validate_certs=self.params["validate_certs"], http_agent="kvmfleet.libvirt")
        except HTTPError as exc:
            raise UserError("option url: cannot download %s: HTTP %s %s" % (spec["url"], exc.code, exc.code),
                            result={"option": "url"}) from None
        except (URLError, OSError, ValueError) as exc:
            raise UserError("option url: cannot download %s: %s" % (spec["url"], getattr(exc, "reason", exc)),
                            result={"option": "url"}) from None
        hasher = hashlib.new(algorithm)
        handle, path = tempfile.mkstemp(prefix="kvmfleet-volume-", dir=self.tmpdir)
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
                      diff=Plan("volume %s" % facts["name"], describe(facts), {"state": "absent"}).diff())
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
        self.warn("%s; volume %s would be created" % (
            assumed("pool", spec["pool"], "does not exist or is not active yet"), spec["name"]))
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
        return self.finish(self._run())

    def _run(self):
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


def refresh_after_upload(pool, timeout=60.0, sleep=time.sleep, clock=time.monotonic):
    """Wait until libvirt has probed what an upload wrote, then refresh the pool once more: libvirt probes the new
    content (a qcow2 image's format and virtual size) in a thread of its own after the stream ends, and until then
    the volume is still the raw one it was made as. A grow right after the upload resized it as raw (truncating a
    qcow2 image's file to the new size: found as a flaky test). While that thread runs the pool refuses a refresh
    ("has asynchronous jobs running"), so the refresh is retried until it is taken."""
    deadline = clock() + timeout
    while True:
        try:
            pool.refresh(0)
            return
        except libvirt.libvirtError as exc:
            if "asynchronous jobs" not in str(exc) or clock() > deadline:
                raise
        sleep(0.05)
