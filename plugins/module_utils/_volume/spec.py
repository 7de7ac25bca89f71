# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``volume`` argument spec (the docs in plugins/modules/volume.py describe it)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.model import SOURCES
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.table import FORMATS


def argument_spec():
    """The module's options (the docs in plugins/modules/volume.py describe them)."""
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "pool": {"type": "str", "required": True},
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "size": {"type": "raw"},
        "format": {"type": "str", "choices": list(FORMATS)},
        "backing": {"type": "str"},
        "clone": {"type": "str"},
        "clone_pool": {"type": "str"},
        "src": {"type": "path"},
        "url": {"type": "str"},
        "checksum": {"type": "str"},
        "validate_certs": {"type": "bool", "default": True},
        "timeout": {"type": "int", "default": 30},
        "mode": {"type": "raw"},
        "owner": {"type": "raw"},
        "group": {"type": "raw"},
        "force": {"type": "bool", "default": False},
    }


MUTUALLY_EXCLUSIVE = [list(SOURCES)]
REQUIRED_BY = {"url": "checksum", "clone_pool": "clone"}
