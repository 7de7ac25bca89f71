# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for fleets: guest profiles merged into guest descriptions, and a fleet's plan as readable lines."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.profiles import apply_profiles, plan_lines
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError


def guest_profiles(guests, profiles=None):
    try:
        return apply_profiles(guests, profiles)
    except UserError as exc:
        raise AnsibleFilterError(str(exc)) from None


def fleet_plan(result, hypervisor=None):
    return plan_lines(result or {}, hypervisor)


class FilterModule:
    def filters(self):
        return {"guest_profiles": guest_profiles, "fleet_plan": fleet_plan}
