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
    seed_files,
    short_hash,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import define, libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import Filling, find_pool, find_volume, half_made
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._storage import lookup_pool
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
    if vol is not None and half_made(pool, seed["volume"]):
        return SeedTask(seed, pool, vol)  # a write of ours that was stopped part way: written again
    if vol is not None and current_hash == seed["hash"]:
        return None
    if vol is not None:
        refuse_other_data(conn, vol, seed["options"]["volume"], "it is never overwritten, name another volume")
    return SeedTask(seed, pool, vol)


def refuse_other_data(conn, vol, option, what_to_do):
    """The volume's ISO header (label, content hash prefix); SpecError naming ``option`` when the volume holds
    something other than a cloud-init seed (a typo in its name): it is never overwritten or deleted."""
    label, stored = read_iso_header(conn, vol)
    if label != CIDATA_LABEL:
        raise SpecError(option, vol.name(), "volume %s exists and is not a cloud-init seed (no ISO labelled %s in it); "
                                            "%s" % (vol.path(), CIDATA_LABEL, what_to_do))
    return label, stored


def write_seed(conn, task, instance_id, undo):
    """Build the ISO and stream it into the volume (created when missing); returns the volume.

    How to take it back is registered with ``undo`` (the run's _libvirt.Undo): a created volume is deleted,
    an existing seed gets its previous bytes back.
    """
    data = build_seed_iso(seed_files(task.seed, instance_id), task.seed["hash"])
    vol = task.vol
    filling = Filling(task.pool, task.seed["volume"])  # a run stopped before the last byte leaves the volume marked
    if vol is not None and not half_made(task.pool, task.seed["volume"]):
        previous = read_volume(conn, vol, 0, vol.info()[1])
        undo.add("the previous content of seed volume %s" % vol.path(), lambda: _put_back(conn, vol, previous))
    filling.begin()
    undo.add("the marker of seed volume %s" % task.seed["volume"], filling.failed)  # after the volume's own undo
    if vol is None:
        vol = define("volume", task.pool.createXML, volume_xml(task.seed["volume"], len(data), "raw"))
        undo.add("seed volume %s" % vol.path(), lambda: vol.delete(0))
    else:
        _resize_to(vol, len(data))
    upload_data(conn, vol, data)
    filling.done()
    return vol


def _resize_to(vol, length):
    if vol.info()[1] != length:
        vol.resize(length, libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if length < vol.info()[1] else 0)


def _put_back(conn, vol, data):
    _resize_to(vol, len(data))
    upload_data(conn, vol, data)


# ---- the cloud_init module: a seed volume on its own ---------------------------------------------------

# The cloud_init module's options are top-level, and its volume is ``name``.
MODULE_OPTIONS = {key: key for key in ("pool", "meta_data", "user_data", "network_config", "vendor_data", "target")}
MODULE_OPTIONS["volume"] = "name"


def default_instance_id(pool, name):
    """Without a guest UUID: stable for the volume (its pool and name)."""
    return "iid-" + hashlib.sha256(("%s/%s" % (pool, name)).encode("utf-8")).hexdigest()[:16]


class SeedVolumeRunner(Runner):
    """A cloud-init seed volume on its own (``params``: the cloud_init module's)."""

    def _pool(self):
        pool = lookup_pool(self.conn, self.params["pool"])
        if not pool.isActive():
            raise SpecError("pool", self.params["pool"], "the pool is not active; start it first")
        return pool

    def run(self):
        return self.finish(self.present() if self.params["state"] == "present" else self.absent())

    def present(self):
        params = self.params
        seed = normalize_cloud_init({"pool": params["pool"], "volume": params["name"],
                                     "user_data": params["user_data"], "meta_data": params["meta_data"],
                                     "network_config": params["network_config"],
                                     "vendor_data": params["vendor_data"]}, option_names=MODULE_OPTIONS)
        pool = self._pool()
        vol = find_volume(pool, params["name"])
        stored = None
        if vol is not None and not half_made(pool, params["name"]):  # a write of ours stopped part way is redone
            _label, stored = refuse_other_data(self.conn, vol, "name", "it is never overwritten")
        result = {"changed": False, "created": False, "actions": [], "hash": short_hash(seed["hash"]),
                  "volume_path": None if vol is None else vol.path()}
        if vol is not None and same_seed_hash(stored, seed["hash"]):
            return result
        task = SeedTask(seed, pool, vol)
        plan = Plan("seed volume %s" % params["name"],
                    "" if vol is None else "content: %s...\n" % (stored or "(not by kvmfleet)")[:19],
                    "content: %s...\n" % short_hash(seed["hash"]), created=vol is None, text=True)
        result.update(changed=True, created=vol is None, actions=[task.describe()], diff=plan.diff())
        if not self.check:
            instance_id = default_instance_id(params["pool"], params["name"]) if seed["derive_instance_id"] else None
            with self.undo.guard("writing seed volume %s" % params["name"]):
                result["volume_path"] = write_seed(self.conn, task, instance_id, self.undo).path()
        return result

    def absent(self):
        pool = self._pool()
        vol = find_volume(pool, self.params["name"])
        result = {"changed": vol is not None, "created": False, "actions": [], "hash": None, "volume_path": None}
        if vol is None:
            return result
        half = half_made(pool, self.params["name"])
        if not half:
            refuse_other_data(self.conn, vol, "name", "this module deletes only seeds (use kvmfleet.libvirt.volume)")
        result["actions"] = ["delete cloud-init seed volume %s/%s" % (self.params["pool"], self.params["name"])]
        result["volume_path"] = vol.path()
        result["diff"] = Plan("seed volume %s" % self.params["name"], "present\n", "absent\n", text=True).diff()
        if not self.check:
            vol.delete(0)
            if half:
                Filling(pool, self.params["name"]).done()
        return result
