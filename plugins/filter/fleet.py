# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for fleets: guest profiles merged into guest descriptions, and a fleet's plan as readable lines."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.plugin_utils._filters import as_lists_and_dicts, guarded
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import apply_profiles, plan_lines


@guarded
def guest_profiles(guests, profiles=None):
    return apply_profiles(as_lists_and_dicts(guests), as_lists_and_dicts(profiles))


@guarded
def fleet_plan(result, hypervisor=None):
    return plan_lines(as_lists_and_dicts(result) or {}, hypervisor)


class FilterModule:
    def filters(self):
        return {"guest_profiles": guest_profiles, "fleet_plan": fleet_plan}
