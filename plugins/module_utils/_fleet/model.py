# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: a fleet of guests on one hypervisor, as pure functions of (the guests listed, the host's facts).

``normalize_fleet`` checks every guest before any is changed and reports all errors at once, each
naming the guest and the option; ``prune_candidates`` says which guests ``prune`` removes (only those
the collection marked as managed); ``summarize`` counts what happened.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import read_tags, tags_match
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.normalize import normalize_guest
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.plan import nic_macs
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.origin import read_origin
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml


def _label(index, raw):
    name = raw.get("name") if isinstance(raw, dict) else None
    return "guests[%d]%s" % (index, " (%s)" % name if name else "")


def normalize_fleet(raw_guests, host):
    """(specs, errors): every listed guest normalised; errors name the guest and the option.

    Also refused, before anything changes: a guest listed twice, and two listed guests that would get
    the same MAC (given, or derived from their names: one of them needs an explicit ``mac``).
    """
    specs, errors, seen = [], [], {}
    for index, raw in enumerate(raw_guests):
        label = _label(index, raw)
        try:
            spec = normalize_guest(raw, host)
        except UserError as exc:
            errors.append("%s: %s" % (label, exc))
            continue
        if spec["name"] in seen:
            errors.append("%s: the guest is listed twice (also guests[%d]); list each guest once"
                          % (label, seen[spec["name"]]))
            continue
        if spec.get("uuid") and spec["uuid"] in seen:
            errors.append("%s: its uuid %s is also guests[%d]'s; a UUID names one guest"
                          % (label, spec["uuid"], seen[spec["uuid"]]))
            continue
        seen[spec["name"]] = index
        if spec.get("uuid"):
            seen[spec["uuid"]] = index
        specs.append((index, spec))
    if not errors:
        errors.extend(mac_collisions(specs, host))
    return [spec for _index, spec in specs], errors


def listed_guest_macs(spec, host):
    """The MACs a listed guest's NICs will have: kept, declared or derived (as plan_domain derives them)."""
    if spec["state"] == "absent":
        return []
    current = host.current_xml(spec["name"])
    if spec.get("interfaces") is None:
        return [] if current is None else [m.get("address", "").lower()
                                           for m in parse_xml(current).iterfind("devices/interface/mac")]
    return nic_macs(current, spec, host)


def mac_collisions(indexed_specs, host):
    """Errors for MACs two listed guests would both use (the host's other guests are avoided already),
    and for a guest whose plan itself is refused (an escape-hatch edit that matches nothing, say)."""
    owner, errors = {}, []
    for index, spec in indexed_specs:
        try:
            macs = listed_guest_macs(spec, host)
        except UserError as exc:
            errors.append("guests[%d] (%s): %s" % (index, spec["name"], exc))
            continue
        for mac in macs:
            if mac in owner and owner[mac][1] != spec["name"]:
                other_index, other = owner[mac]
                errors.append("guests[%d] (%s): its NIC would have MAC %s, as guests[%d] (%s) does; give one of them "
                              "an explicit interfaces[].mac" % (index, spec["name"], mac, other_index, other))
            owner.setdefault(mac, (index, spec["name"]))
    return errors


def prune_candidates(host, listed, selector=None, declared=None, listed_uuids=()):
    """Names of guests ``prune`` removes: marked as managed by this collection, carrying every tag of
    ``selector`` (when given), and not listed. A guest without the marker is never a candidate.

    ``declared`` ({"names", "uuids"}: every guest the cluster's description declares, on any hypervisor) makes
    prune know the whole description: a guest declared anywhere is kept, wherever it is. Without it, a guest
    carrying a recorded origin (evacuated here from its home, listed there) is kept. A guest whose UUID a listed guest
    declares (``listed_uuids``) is that guest under its old name - being renamed - and is kept too."""
    names = []
    for name in sorted(host.guest_xml):
        if name in listed:
            continue
        root = parse_xml(host.current_xml(name))
        tags = read_tags(root)
        if tags is None:  # not ours
            continue
        if (root.findtext("uuid") or "").lower() in listed_uuids:
            continue
        if declared is not None:
            if name in declared["names"] or (root.findtext("uuid") or "").lower() in declared["uuids"]:
                continue
        elif read_origin(root) is not None:  # evacuated here from its home: listed there, not here
            continue
        if selector and not tags_match(tags, selector):
            continue
        names.append(name)
    return names


def outcome(result):
    """created, removed, updated, unchanged, held or failed, for one guest's result."""
    if result.get("error"):
        return "failed"
    if result.get("removed"):
        return "removed"
    if result.get("created"):
        return "created"
    if result.get("held") and not result.get("changed"):
        return "held"
    return "updated" if result.get("changed") else "unchanged"


def summarize(results):
    counts = dict.fromkeys(("created", "updated", "unchanged", "removed", "held", "failed"), 0)
    for result in results:
        counts[outcome(result)] += 1
    counts["total"] = len(results)
    return counts
