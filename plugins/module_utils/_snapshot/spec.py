# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``snapshot`` and ``snapshot_info`` argument specs (the docs in plugins/modules/ describe them)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def argument_spec():
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "guest": {"type": "str", "required": True},
        "name": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent", "current"]},
        "description": {"type": "str"},
        "memory": {"type": "bool"},
        "disk_only": {"type": "bool", "default": False},
        "location": {"type": "str", "choices": ["internal", "external"]},
        "quiesce": {"type": "bool", "default": False},
        "atomic": {"type": "bool", "default": False},
        "after_revert": {"type": "str", "choices": ["running", "paused"]},
        "children": {"type": "bool", "default": False},
        "children_only": {"type": "bool", "default": False},
        "keep": {"type": "int"},
        "prefix": {"type": "str"},
    }


def info_argument_spec():
    """``name`` names the guest, as in every module whose object is a guest; ``guest`` (its name before 0.3) stays an
    alias. (The snapshot module keeps ``guest``: its ``name`` is the snapshot's.)"""
    return {"uri": {"type": "str", "default": DEFAULT_URI},
            "name": {"type": "str", "required": True, "aliases": ["guest"]}}
