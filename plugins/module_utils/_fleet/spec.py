# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``fleet`` argument spec. Each item of ``guests`` takes exactly the options that describe a
guest in the domain module (the same spec, not a copy); the apply options are the domain module's too."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.spec import apply_options_spec, guest_options
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def argument_spec():
    spec = {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "guests": {"type": "list", "elements": "dict", "required": True, "options": guest_options()},
        "prune": {"type": "bool", "default": False},
        "prune_selector": {"type": "raw"},
        "parallel": {"type": "int", "default": 4},
        "fail_fast": {"type": "bool", "default": False},
    }
    spec.update(apply_options_spec())
    return spec
