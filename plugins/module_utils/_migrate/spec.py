# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``migrate`` and ``recover`` argument specs (the docs in plugins/modules/ describe them); a
recovered guest's description takes the domain module's guest options (_domain/spec.guest_options)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def migrate_argument_spec():
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "name": {"type": "str", "required": True},
        "destination_uri": {"type": "str", "required": True},
        "persistent": {"type": "bool", "default": True},
        "undefine_source": {"type": "bool", "default": True},
        "peer2peer": {"type": "bool", "default": True},
        "copy_storage": {"type": "str", "choices": ["all", "incremental"]},
        "migrate_uri": {"type": "str"},
        "bandwidth": {"type": "int"},
        "auto_converge": {"type": "bool", "default": False},
        "postcopy": {"type": "bool", "default": False},
        "compressed": {"type": "bool", "default": False},
        "max_downtime": {"type": "int"},
        "timeout": {"type": "int"},
        "timeout_action": {"type": "str", "default": "abort", "choices": ["abort", "postcopy"]},
        "unsafe": {"type": "bool", "default": False},
        "tls": {"type": "bool", "default": False},
        "record_origin": {"type": "bool", "default": False},
        "moved_by": {"type": "str"},
    }


def recover_argument_spec():
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "guest": {"type": "dict", "required": True},
        "lost_uri": {"type": "str", "required": True},
        "lost_host": {"type": "str"},
        "reachable_uris": {"type": "list", "elements": "str", "default": []},
        "fenced": {"type": "bool", "default": False},
        "fence_evidence": {"type": "str"},
        "lock_manager": {"type": "bool", "default": False},
        "headroom_mib": {"type": "int", "default": 256},
    }
