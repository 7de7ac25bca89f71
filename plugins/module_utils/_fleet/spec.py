# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``fleet`` argument spec. Each item of ``guests`` takes exactly the options that describe a
guest in the domain module (the same spec, not a copy); the apply options are the domain module's too."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.spec import apply_options_spec, guest_options
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def _entries(**fields):
    options = {"name": {"type": "str", "required": True}}
    options.update((field, {"type": "str"}) for field in fields)
    return {"type": "list", "elements": "dict", "default": [], "options": options}


def cluster_option():
    """What this hypervisor's task does in the cluster: ``_fleet/cluster.assign``'s ``cluster``, computed by the
    guests role from the cluster view and every hypervisor's list (the kvmfleet.libvirt.fleet_assignment filter)."""
    return {"type": "dict", "options": {
        "hypervisor": {"type": "str", "required": True},
        "declared": _entries(uuid=True),
        "retire": _entries(uuid=True, code=True, reason=True),
        "hold": _entries(code=True, reason=True),
        "conflicts": _entries(code=True, reason=True),
        "placement": _entries(home=True, runs_on=True, why=True, code=True, was_named=True),
    }}


def argument_spec():
    spec = {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "guests": {"type": "list", "elements": "dict", "required": True, "options": guest_options()},
        "prune": {"type": "bool", "default": False},
        "prune_selector": {"type": "raw"},
        "parallel": {"type": "int", "default": 4},
        "fail_fast": {"type": "bool", "default": False},
        "cluster": cluster_option(),
    }
    spec.update(apply_options_spec())
    return spec


def cluster_info_argument_spec():
    return {
        "hypervisors": {"type": "list", "elements": "dict", "required": True, "options": {
            "name": {"type": "str", "required": True},
            "uri": {"type": "str", "required": True},
        }},
        "parallel": {"type": "int", "default": 16},
    }
