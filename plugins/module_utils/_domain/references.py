# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what a guest's spec names outside itself - networks and storage pools - checked to exist before
anything changes (in check mode, assumed to come from an earlier task), except what the guest names already."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KIND
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.disks import DISK_SOURCE
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import lookup_or_none
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, assumed
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml

NIC_SOURCE = DEVICE_KIND["interfaces"].fields[0]


def _storage():
    # pylint: disable=import-outside-toplevel  # only a guest with disks or a seed needs it (apply._lazy)
    from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _storage as module
    return module


def named_references(xml):
    """What a guest's definition (text, or None) names already: ({networks}, {(pool, volume)})."""
    networks, volumes = set(), set()
    devices = None if not xml else parse_xml(xml).find("devices")
    if devices is None:
        return networks, volumes
    for elem in devices.findall("interface"):
        kind, attrs = NIC_SOURCE.read(elem)
        if kind == "network":
            networks.add(dict(attrs).get("network"))
    for elem in devices.findall("disk"):
        kind, attrs = DISK_SOURCE.read(elem)
        if kind == "volume":
            volumes.add((dict(attrs).get("pool"), dict(attrs).get("volume")))
    return networks, volumes


def check_references(conn, spec, check=False, seen=None, named=(frozenset(), frozenset())):
    """Networks and pools named in the spec must exist: fail before any change if one does not.

    In check mode a missing one is assumed to come from an earlier task of the same play (which in
    check mode predicted it and made nothing); the returned warnings say so. ``seen`` (a set of
    (kind, name)) remembers what was found, so N guests on one network look it up once. What the guest names
    already (``named``: named_references of its definition) is not checked: converging a guest as it is must not
    fail for a network or pool it has been missing all along (libvirt checks them when the guest starts).
    """
    warnings = []
    seen = set() if seen is None else seen
    networks, volumes = named
    find_pool = _storage().find_pool if spec.get("disks") or spec.get("cloud_init") else None

    def exists(kind, name, lookup):
        if (kind, name) in seen:
            return True
        if lookup(name) is None:
            return False
        seen.add((kind, name))
        return True

    def missing(kind, name, option, existing):
        if check:
            warnings.append(assumed(kind, name))
            return
        raise SpecError(option, name, "no %s has that name; existing %ss: %s" % (
            "libvirt network" if kind == "network" else kind, "network" if kind == "network" else "pool",
            _storage().names_of(existing())))

    for index, nic in enumerate(spec.get("interfaces") or []):
        kind, attrs = nic["source"]
        if kind == "network" and dict(attrs)["network"] not in networks:
            name = dict(attrs)["network"]
            if not exists("network", name, lambda n: lookup_or_none(conn.networkLookupByName, n, "VIR_ERR_NO_NETWORK")):
                missing("network", name, "interfaces[%d].network" % index, lambda: conn.listAllNetworks(0))
    for index, disk in enumerate(spec.get("disks") or []):
        kind, attrs = disk["source"]
        if kind == "volume" and (dict(attrs)["pool"], dict(attrs)["volume"]) not in volumes:
            name = dict(attrs)["pool"]
            if not exists("pool", name, lambda n: find_pool(conn, n)):
                missing("storage pool", name, "disks[%d].pool" % index, lambda: conn.listAllStoragePools(0))
    seed = spec.get("cloud_init")
    if seed:
        pool = find_pool(conn, seed["pool"])
        if pool is None:
            missing("storage pool", seed["pool"], "cloud_init.pool", lambda: conn.listAllStoragePools(0))
        elif not pool.isActive() and not check:
            raise SpecError("cloud_init.pool", seed["pool"], "the pool is not active; start it first")
    return warnings
