# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``pool`` argument spec, derived from the table (the docs in plugins/modules/pool.py
describe it)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import argument_spec_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.table import POOL_FIELDS, POOL_TYPES


def argument_spec():
    spec = {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "name": {"type": "str", "required": True},
        "type": {"type": "str", "choices": list(POOL_TYPES)},
        "state": {"type": "str", "default": "active", "choices": ["active", "inactive", "present", "absent"]},
        "autostart": {"type": "bool"},
        "build": {"type": "bool", "default": False},
        "refresh": {"type": "bool", "default": False},
        "remove_storage": {"type": "bool", "default": False},
    }
    spec.update(argument_spec_of(POOL_FIELDS))
    return spec
