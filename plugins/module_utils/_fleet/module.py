# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``fleet`` module's entry."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.apply import converge_fleet
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import run_guarded
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError


def run_module(module):
    """Entry point for plugins/modules/fleet.py."""
    params = module.params
    if params["parallel"] < 1:
        module.fail_json(msg=str(SpecError("parallel", params["parallel"], "expected a whole number of at least 1")))

    def run(conn):
        result = converge_fleet(conn, params, module.check_mode)
        for guest in result["guests"]:
            for warning in guest.pop("warnings", None) or []:
                module.warn("guest %s: %s" % (guest["name"], warning))
        return result

    run_guarded(module, run, "the fleet on %s" % params["uri"])
