# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for fleets: guest profiles merged into guest descriptions, the cluster's description and each
hypervisor's part of it, and a fleet's plan as readable lines."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.plugin_utils._filters import as_lists_and_dicts, guarded
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.cluster import assign, assign_all, describe
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import apply_profiles, plan_lines
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError


@guarded
def guest_profiles(guests, profiles=None):
    return apply_profiles(as_lists_and_dicts(guests), as_lists_and_dicts(profiles))


@guarded
def fleet_description(hostvars, hypervisors):
    """Every hypervisor's ``guests_list`` (with its ``guests_profiles``) as one description; a guest two
    hypervisors list is an error naming both."""
    hosts = []
    for name in as_lists_and_dicts(hypervisors) or []:
        if name not in hostvars:
            raise UserError("fleet_description: %s is not an inventory host" % name)
        hv = hostvars[name]
        guests = as_lists_and_dicts(hv.get("guests_list")) or []
        profiles = as_lists_and_dicts(hv.get("guests_profiles")) or {}
        try:
            hosts.append((name, apply_profiles(guests, profiles)))
        except UserError as exc:
            raise UserError("%s: %s" % (name, exc), code="invalid_option") from None
    return describe(hosts)


@guarded
def hypervisor_uris(hostvars, hypervisors, default_uri="qemu:///system"):
    """[{"name", "uri"}] of the hypervisors named: each one's ``kvmfleet_uri`` (else ``default_uri``)."""
    result = []
    for name in as_lists_and_dicts(hypervisors) or []:
        if name not in hostvars:
            raise UserError("hypervisor_uris: %s is not an inventory host" % name)
        result.append({"name": name, "uri": hostvars[name].get("kvmfleet_uri") or default_uri})
    return result


@guarded
def fleet_assignment(view, description, hypervisor):
    """What ``hypervisor``'s fleet task converges ({"guests", "cluster"}), from the cluster view
    (kvmfleet.libvirt.cluster_info) and the description (fleet_description); for a list of hypervisors, a dict of
    each one's, every guest located once."""
    view = as_lists_and_dicts(view) or {}
    if "hypervisors" not in view or "guests" not in view:
        raise UserError("fleet_assignment: expected the cluster view kvmfleet.libvirt.cluster_info returns "
                        "(its 'cluster'), with hypervisors and guests")
    description = as_lists_and_dicts(description) or []
    if isinstance(hypervisor, str):
        return assign(view, description, hypervisor)
    return assign_all(view, description, as_lists_and_dicts(hypervisor) or [])


@guarded
def fleet_plan(result, hypervisor=None):
    return plan_lines(as_lists_and_dicts(result) or {}, hypervisor)


class FilterModule:
    def filters(self):
        return {"guest_profiles": guest_profiles, "fleet_plan": fleet_plan, "fleet_description": fleet_description,
                "fleet_assignment": fleet_assignment, "hypervisor_uris": hypervisor_uris}
