# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``pool`` module's runner. The only code that calls libvirt for a storage pool.

Order of work, so that bad input never leaves anything half-made: validate (spec, schema, local
paths) -> define (only when a declared value differs) -> build (when asked, for a pool this task
defines or starts) -> start or stop -> autostart -> refresh. A new pool that cannot be built or
started is undefined again (its directory removed when the build made it): the run's Undo.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import POOL_NAME
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    check_document,
    converge_autostart,
    define,
    libvirt,
    libvirt_error_code,
    start,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.model import (
    with_permissions,
    normalize_pool_spec,
    plan_pool,
    pool_source_devices,
    pool_target_path,
    strip_runtime,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import (
    PERMISSION_CODECS,
    PERMISSION_KEYS,
    find_pool,
    is_local_uri,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml, to_string

# Pool types whose target path is a directory on the host (the mount point for fs and netfs).
DIRECTORY_TYPES = ("dir", "fs", "netfs")
# Pool types whose build formats a device: never over existing data (VIR_STORAGE_POOL_BUILD_NO_OVERWRITE).
FORMATTING_TYPES = ("fs", "disk", "logical")
# Pool types whose source devices are local block devices.
LOCAL_DEVICE_TYPES = ("fs", "disk", "logical")


def config_xml(pool):
    """The pool's persistent definition (drivers without VIR_STORAGE_XML_INACTIVE give their one XML)."""
    try:
        return pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE)
    except libvirt.libvirtError as exc:
        if libvirt_error_code(exc) not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
            raise
        return pool.XMLDesc(0)


def effective_state(wanted, active):
    """The state a task converges a pool to: ``wanted``, or for V(present) the one it is in (a new pool: inactive)."""
    if wanted == "present":
        return "active" if active else "inactive"
    return wanted


class PoolRunner(Runner):
    """Converge one storage pool (``params``: the pool module's) on ``conn``."""

    def __init__(self, conn, params, check, tmpdir=None):
        super().__init__(conn, params, check, tmpdir)
        self.local = is_local_uri(conn.getURI())

    # -- validation against the host (local URIs only: a remote host's files are not ours to look at) ----

    def declares_permissions(self):
        return any(self.params.get(key) is not None for key in PERMISSION_KEYS)

    def check_host_paths(self, plan, will_build, will_start):
        if not self.local:
            return
        path = pool_target_path(plan.after)
        if plan.type in DIRECTORY_TYPES and path:
            if os.path.islink(path) and (will_build or self.declares_permissions()):
                raise SpecError("path", path, "it is a symlink (to %s); the owner and mode of what it points to are not "
                                              "this pool's to change. Give the real directory's path" % os.readlink(path))
            if os.path.exists(path) and not os.path.isdir(path):
                raise SpecError("path", path, "it exists and is not a directory; a %s pool's target path must be a "
                                              "directory (or not exist yet, with build: true)" % plan.type)
            if will_start and not will_build and not os.path.exists(path):
                raise SpecError("path", path, "the directory does not exist; set build: true to create it, or "
                                              "create it first")
        if plan.type in LOCAL_DEVICE_TYPES and (will_start or will_build):
            for index, device in enumerate(pool_source_devices(plan.after)):
                if not os.path.exists(device):
                    raise SpecError("source.devices[%d]" % index, device, "no such device on the managed host")

    # -- present: active / inactive / present ------------------------------------------------------------

    def present(self, pool):
        name = self.params["name"]
        active = pool is not None and bool(pool.isActive())
        # present: defined, and left running or stopped as it is (community.libvirt's virt_pool); a new pool is
        # defined only. From here it is the state the pool is in.
        state = effective_state(self.params["state"], active)
        spec = normalize_pool_spec(self.params)
        current_xml = config_xml(pool) if pool is not None else None
        plan = plan_pool(current_xml, spec, name)
        path = pool_target_path(plan.after)
        directory = self.directory_permissions(plan.type, path) if state == "active" else None
        if directory is not None and current_xml is not None:
            # libvirt rewrites a started pool's definition from its directory at every start and refresh:
            # compare the declared owner and mode with the directory itself, as libvirt will report them.
            plan = plan_pool(with_permissions(current_xml, directory), spec, name)
        if plan.changed:
            check_document("pool", plan.after)
        will_start = state == "active" and not active
        will_build = self.params["build"] and (plan.created or will_start)
        self.check_host_paths(plan, will_build, will_start)
        path_existed = bool(path) and os.path.exists(path)
        to_set = {key: spec[key] for key in PERMISSION_KEYS
                  if directory is not None and spec.get(key) is not None and spec[key] != directory[key]}

        if plan.changed:
            self.actions.append("define" if plan.created else "redefine")
            if not self.check:
                pool = define("pool", self.conn.storagePoolDefineXML, plan.after)
                if plan.created:
                    made_directory = will_build and self.local and not path_existed
                    self.undo.add("pool %s" % name, lambda: self._undefine(pool, made_directory))
        if to_set:
            self._set_directory_permissions(path, to_set)
        doing = "built or started" if will_build else "started"
        try:
            if will_build:
                self._build(pool, plan.type)
            if will_start:
                self.actions.append("start")
                if not self.check and not start(pool, lambda: pool.create(0)):
                    self.actions[-1] = "start (already started by another writer)"
        except libvirt.libvirtError as exc:
            if len(self.undo):
                failed = self.undo.rollback()
                raise UserError("pool %s was defined but could not be %s, so its definition was removed again: %s%s"
                                % (name, doing, exc, "; " + self.undo.describe_failure(failed) if failed else ""),
                                code="rolled_back", cause=exc) from None
            raise UserError("pool %s could not be %s: %s" % (name, doing, exc), code="libvirt_error",
                            cause=exc) from None
        if state == "inactive" and active:
            self.actions.append("stop")
            if not self.check:
                pool.destroy()
        autostart = self._autostart(pool, plan.created)
        refreshed = False
        if (self.params["refresh"] or to_set and active) and state == "active" and not will_start and not self.check:
            pool.refresh(0)  # rescans the volumes (and the directory's owner and mode); the configuration stays
            refreshed = True
        restart_required = active and state == "active" and any(c.what not in PERMISSION_KEYS for c in plan.changes)
        return {
            "changed": plan.changed or bool(self.actions),
            "diff": plan.diff(),
            "created": plan.created,
            "changes": plan.describe(),
            "actions": self.actions,
            "restart_required": restart_required,
            "refreshed": refreshed,
            "state": state,
            "autostart": autostart,
            "type": plan.type,
            "target_path": path,
            "uuid": None if pool is None or self.check and plan.created else pool.UUIDString(),
        }

    def directory_permissions(self, pool_type, path):
        """{'mode', 'owner', 'group'} of the pool's target directory when it exists on this host, else None."""
        if not self.local or pool_type not in DIRECTORY_TYPES or not path:
            return None
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(info.st_mode):
            return None
        return {"mode": stat.S_IMODE(info.st_mode), "owner": info.st_uid, "group": info.st_gid}

    def _set_directory_permissions(self, path, to_set):
        """Give the existing target directory the declared owner/group/mode, through a descriptor opened
        without following a symlink (libvirt's build would chmod it too, following links)."""
        for key, value in to_set.items():
            shown = PERMISSION_CODECS[key].show(value) if key == "mode" else value
            self.actions.append("set %s of %s to %s" % (key, path, shown))
        if self.check:
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            if "owner" in to_set or "group" in to_set:
                os.fchown(fd, to_set.get("owner", -1), to_set.get("group", -1))
            if "mode" in to_set:
                os.fchmod(fd, to_set["mode"])
        finally:
            os.close(fd)

    def _build(self, pool, pool_type):
        self.actions.append("build")
        if self.check:
            return
        flags = libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE if pool_type in FORMATTING_TYPES else 0
        try:
            pool.build(flags)
        except libvirt.libvirtError as exc:
            if libvirt_error_code(exc) == libvirt.VIR_ERR_OPERATION_INVALID and pool.isActive():
                self.actions[-1] = "build (already built and started by another writer)"
                return
            if libvirt_error_code(exc) != libvirt.VIR_ERR_STORAGE_POOL_BUILT:
                raise
            self.actions[-1] = "build (already built: %s)" % str(exc).split(": ", 1)[-1]

    @staticmethod
    def _undefine(pool, remove_built_directory):
        """Take back a pool this run defined: no half-made objects."""
        if pool.isActive():
            pool.destroy()
        if remove_built_directory:
            try:
                pool.delete(0)  # the directory build made (empty: nothing was put in it)
            except libvirt.libvirtError:
                pass
        pool.undefine()

    def _autostart(self, pool, created):
        """The pool's autostart after this task (set when declared)."""
        exists = pool is not None and not (created and self.check)
        action = converge_autostart(pool, self.params["autostart"], self.check, exists)
        if action:
            self.actions.append(action)
        if self.params["autostart"] is not None:
            return self.params["autostart"]
        return bool(pool.autostart()) if exists else False

    # -- absent ------------------------------------------------------------------------------------------

    def absent(self, pool):
        result = {"changed": pool is not None, "state": "absent", "removed_volumes": [], "removed_target": None,
                  "actions": self.actions}
        if pool is None:
            return result
        persistent = bool(pool.isPersistent())
        root = strip_runtime(parse_xml(config_xml(pool) if persistent else pool.XMLDesc(0)))
        result["diff"] = Plan("pool (persistent config)", to_string(root), "").diff()
        active = bool(pool.isActive())
        volumes = []
        if self.params["remove_storage"]:
            volumes = self._volumes_to_remove(pool, active)
            result["removed_volumes"] = sorted(v.path() for v in volumes)
            result["removed_target"] = self._target_description(root)
        if self.check:
            if self.params["remove_storage"] and not active:
                self.warn("check mode does not start inactive pool %s, so it cannot list the volumes that "
                          "remove_storage would delete" % pool.name())
            self.actions.extend(self._absent_actions(active, persistent))
            return result
        deleted = []
        for vol in volumes:
            path = vol.path()
            vol.delete(0)
            deleted.append(path)
        if pool.isActive():
            self.actions.append("stop")
            pool.destroy()
        if self.params["remove_storage"]:
            result["removed_target"] = self._delete_target(pool, root, deleted)
            self.actions.append("delete storage")
        if persistent:
            self.actions.append("undefine")
            pool.undefine()
        return result

    def _absent_actions(self, active, persistent):
        actions = ["stop"] if active or self.params["remove_storage"] else []
        if self.params["remove_storage"]:
            actions.append("delete storage")
        if persistent:
            actions.append("undefine")
        return actions

    def _volumes_to_remove(self, pool, active):
        if not active:
            if self.check:
                return []
            pool.create(0)  # to list (and delete) its volumes
        elif not self.check:
            pool.refresh(0)
        return pool.listAllVolumes(0) or []

    @staticmethod
    def _target_description(root):
        if root.get("type") == "logical":
            return "volume group %s" % (root.findtext("source/name") or root.findtext("name"))
        return pool_target_path(to_string(root))

    def _delete_target(self, pool, root, deleted):
        """pool.delete: the directory (dir, fs, netfs mount point), or the volume group (logical)."""
        try:
            pool.delete(0)
        except libvirt.libvirtError as exc:
            if libvirt_error_code(exc) == libvirt.VIR_ERR_NO_SUPPORT:
                self.warn("libvirt cannot delete the storage of a %s pool; only its volumes were deleted"
                          % root.get("type"))
                return None
            raise UserError("pool %s: deleted its volumes (%s) but not its storage, so the pool is still defined "
                            "(inactive): %s" % (pool.name(), ", ".join(deleted) or "none", exc), code="libvirt_error",
                            cause=exc) from None
        return self._target_description(root)

    def run(self):
        pool = find_pool(self.conn, POOL_NAME.parse(self.params["name"], "name"))
        if self.params["state"] == "absent":
            return self.finish(self.absent(pool))
        return self.finish(self.present(pool))
