# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: cloud-init seed volumes in libvirt storage - for the ``domain`` and ``cloud_init`` modules.

The ISO is built by the pure ``_cloudinit`` module; here it is streamed into its volume, and a
volume's ISO header (label, content hash) is read back through a libvirt stream.
"""

from __future__ import annotations

import hashlib

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.model import (
    CIDATA_LABEL,
    PVD_LENGTH,
    PVD_OFFSET,
    build_seed_iso,
    parse_pvd,
    normalize_cloud_init,
    same_seed_hash,
    seed_content_options,
    seed_files,
    short_hash,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError, diff
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI, libvirt, run_guarded
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import find_pool, find_volume, lookup_pool
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import read_volume, upload_data, volume_xml


def read_iso_header(conn, vol):
    """(label, content hash prefix) of the ISO in a volume, read through a libvirt stream (2 KiB)."""
    if vol.info()[1] < PVD_OFFSET + PVD_LENGTH:
        return None, None
    return parse_pvd(read_volume(conn, vol, PVD_OFFSET, PVD_LENGTH))


class SeedTask:
    """Build the seed ISO and write it into its volume (created when missing)."""

    def __init__(self, seed, pool, vol):
        self.seed, self.pool, self.vol = seed, pool, vol

    def describe(self):
        where = "%s/%s" % (self.seed["pool"], self.seed["volume"])
        if self.vol is None:
            return "create cloud-init seed volume %s" % where
        return "write new cloud-init seed content into volume %s" % where


def plan_seed(conn, seed, current_hash, check=False):
    """The seed volume work a run needs: None when the volume exists and the stored hash is the wanted one.

    An existing volume is written into only when it already holds a cidata ISO: a volume of the same
    name with other data (a typo in ``volume``) is refused, never overwritten.
    """
    pool = find_pool(conn, seed["pool"])
    if pool is None or not pool.isActive():  # check mode: an earlier task makes the pool
        return SeedTask(seed, pool, None)
    vol = find_volume(pool, seed["volume"])
    if vol is not None and current_hash == seed["hash"]:
        return None
    if vol is not None:
        label, _stored = read_iso_header(conn, vol)
        if label != CIDATA_LABEL:
            raise SpecError("cloud_init.volume", seed["volume"],
                            "volume %s exists and is not a cloud-init seed (no ISO labelled %s in it); it is never "
                            "overwritten, name another volume" % (vol.path(), CIDATA_LABEL))
    return SeedTask(seed, pool, vol)


def write_seed(conn, task, instance_id, undo=None):
    """Build the ISO and stream it into the volume (created when missing); returns a volume this created.

    With ``undo`` (an _libvirt.Undo), how to take it back is registered: a created volume is deleted,
    an existing seed gets its previous bytes back.
    """
    data = build_seed_iso(seed_files(task.seed, instance_id), task.seed["hash"])
    created = None
    vol = task.vol
    if vol is None:
        vol = created = task.pool.createXML(volume_xml(task.seed["volume"], len(data), "raw"), 0)
        if undo is not None:
            undo.add("seed volume %s" % vol.path(), lambda: vol.delete(0))
    else:
        if undo is not None:
            previous = read_volume(conn, vol, 0, vol.info()[1])
            undo.add("the previous content of seed volume %s" % vol.path(), lambda: _put_back(conn, vol, previous))
        _resize_to(vol, len(data))
    try:
        upload_data(conn, vol, data)
    except libvirt.libvirtError:
        if created is not None and undo is None:
            created.delete(0)
        raise
    return created


def _resize_to(vol, length):
    if vol.info()[1] != length:
        vol.resize(length, libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if length < vol.info()[1] else 0)


def _put_back(conn, vol, data):
    _resize_to(vol, len(data))
    upload_data(conn, vol, data)


# ---- the cloud_init module: a seed volume on its own ---------------------------------------------------

def argument_spec():
    spec = seed_content_options()
    spec.update(
        pool={"type": "str", "required": True},
        name={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        uri={"type": "str", "default": DEFAULT_URI},
    )
    return spec


def default_instance_id(pool, name):
    """Without a guest UUID: stable for the volume (its pool and name)."""
    return "iid-" + hashlib.sha256(("%s/%s" % (pool, name)).encode("utf-8")).hexdigest()[:16]


class SeedVolumeRunner:
    def __init__(self, module, conn):
        self.module, self.conn, self.params, self.check = module, conn, module.params, module.check_mode

    def _pool(self):
        pool = lookup_pool(self.conn, self.params["pool"])
        if not pool.isActive():
            raise SpecError("pool", self.params["pool"], "the pool is not active; start it first")
        return pool

    def present(self):
        params = self.params
        seed = normalize_cloud_init({"pool": params["pool"], "volume": params["name"],
                                     "user_data": params["user_data"], "meta_data": params["meta_data"],
                                     "network_config": params["network_config"],
                                     "vendor_data": params["vendor_data"]}, option="cloud_init")
        pool = self._pool()
        vol = find_volume(pool, params["name"])
        stored = None
        if vol is not None:
            label, stored = read_iso_header(self.conn, vol)
            if label != CIDATA_LABEL:
                raise SpecError("name", params["name"], "volume %s exists and is not a cloud-init seed (no ISO "
                                                        "labelled %s in it); it is never overwritten" % (vol.path(),
                                                                                                         CIDATA_LABEL))
        result = {"changed": False, "created": False, "actions": [], "hash": short_hash(seed["hash"]),
                  "volume_path": None if vol is None else vol.path()}
        if vol is not None and same_seed_hash(stored, seed["hash"]):
            return result
        task = SeedTask(seed, pool, vol)
        result.update(changed=True, created=vol is None, actions=[task.describe()])
        result["diff"] = diff("" if vol is None else "content: %s...\n" % (stored or "(not by kvmfleet)")[:19],
                              "content: %s...\n" % short_hash(seed["hash"]), "seed volume %s" % params["name"])
        if not self.check:
            instance_id = default_instance_id(params["pool"], params["name"]) if seed["derive_instance_id"] else None
            created = write_seed(self.conn, task, instance_id)
            result["volume_path"] = (created or vol).path()
        return result

    def absent(self):
        pool = self._pool()
        vol = find_volume(pool, self.params["name"])
        result = {"changed": vol is not None, "created": False, "actions": [], "hash": None, "volume_path": None}
        if vol is None:
            return result
        label, _stored = read_iso_header(self.conn, vol)
        if label != CIDATA_LABEL:
            raise SpecError("name", self.params["name"], "volume %s is not a cloud-init seed; this module deletes "
                                                         "only seeds (use kvmfleet.libvirt.volume)" % vol.path())
        result["actions"] = ["delete cloud-init seed volume %s/%s" % (self.params["pool"], self.params["name"])]
        result["volume_path"] = vol.path()
        result["diff"] = diff("present\n", "absent\n", "seed volume %s" % self.params["name"])
        if not self.check:
            vol.delete(0)
        return result


def run_module(module):
    """Entry point for plugins/modules/cloud_init.py."""
    def run(conn):
        runner = SeedVolumeRunner(module, conn)
        try:
            return runner.present() if module.params["state"] == "present" else runner.absent()
        except SpecError as exc:
            message = str(exc).replace("option cloud_init.volume:", "option name:", 1)
            raise UserError(message.replace("option cloud_init.", "option ", 1)) from None
    run_guarded(module, run, "seed volume %s" % module.params["name"])
