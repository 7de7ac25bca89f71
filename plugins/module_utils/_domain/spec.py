# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``domain`` argument spec, derived from the tables (table.py, devices.py), so a field's
type and choices are declared once. Shared with modules that take guest descriptions (``fleet``).
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.model import seed_content_options
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.apply import APPLY_OPTIONS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KINDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.table import DOMAIN_FIELDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import argument_spec_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def cloud_init_option():
    options = seed_content_options()
    options.update(pool={"type": "str", "required": True}, volume={"type": "str"}, target={"type": "str"})
    return {"type": "dict", "options": options}


def guest_options():
    """The options that describe one guest: the tables' fields and devices, and what is not a field."""
    options = {
        "name": {"type": "str", "required": True},
        "uuid": {"type": "str"},
        "state": {"type": "str", "default": "present",
                  "choices": ["present", "running", "shutoff", "paused", "absent"]},
        "cloud_init": cloud_init_option(),
        "ignition": {"type": "raw", "no_log": True},
        "autostart": {"type": "bool"},
        "tags": {"type": "raw"},
        "xml_edits": {"type": "list", "elements": "dict", "options": {
            "xpath": {"type": "str", "required": True},
            "value": {"type": "str"},
            "attributes": {"type": "dict"},
            "fragment": {"type": "str"},
            "absent": {"type": "bool"},
        }},
        "xml": {"type": "str"},
    }
    options.update(argument_spec_of(DOMAIN_FIELDS))
    for kind in DEVICE_KINDS:
        options[kind.name] = kind.argspec()
    return options


def apply_options_spec():
    """How to converge (not what): one set can serve a list of guests."""
    return {
        "restart": {"type": "str", "default": APPLY_OPTIONS["restart"], "choices": ["never", "if_needed"]},
        "shutdown_timeout": {"type": "int", "default": APPLY_OPTIONS["shutdown_timeout"]},
        "force_off": {"type": "bool", "default": APPLY_OPTIONS["force_off"]},
        "remove_storage": {"type": "bool", "default": APPLY_OPTIONS["remove_storage"]},
        "remove_shared_storage": {"type": "bool", "default": APPLY_OPTIONS["remove_shared_storage"]},
    }


def argument_spec():
    spec = guest_options()
    spec.update(apply_options_spec())
    spec["uri"] = {"type": "str", "default": DEFAULT_URI}
    return spec


def info_argument_spec():
    """The ``domain_info`` argument spec."""
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "name": {"type": "str"},
        "tags": {"type": "raw"},
        "managed_only": {"type": "bool", "default": False},
        "stats": {"type": "bool", "default": True},
        "addresses": {"type": "bool", "default": True},
    }
