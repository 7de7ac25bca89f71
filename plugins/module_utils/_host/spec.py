# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the argument specs of the modules about a hypervisor itself: host_info, host_maintenance,
host_tuning, libvirtd_config (the docs in plugins/modules/ describe them)."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def info_argument_spec():
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "sample_seconds": {"type": "int", "default": 0},
        "sample_interval": {"type": "int", "default": 2},
    }


def maintenance_argument_spec():
    return {
        "uri": {"type": "str", "default": DEFAULT_URI},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        "reason": {"type": "str"},
    }


def tuning_argument_spec():
    return {
        "require_kvm": {"type": "bool", "default": True},
        "nested": {"type": "bool"},
        "ksm": {"type": "dict", "options": {
            "enabled": {"type": "bool"},
            "pages_to_scan": {"type": "int"},
            "sleep_millisecs": {"type": "int"},
            "merge_across_nodes": {"type": "bool"},
        }},
        "hugepages": {"type": "dict", "options": {
            "count": {"type": "int"},
            "per_node": {"type": "dict"},
            "count_1g": {"type": "int"},
        }},
        "root": {"type": "path", "default": "/"},
    }


def daemon_argument_spec():
    return {
        "libvirtd": {"type": "dict", "default": {}},
        "qemu": {"type": "dict", "default": {}},
        "lockd": {"type": "dict", "default": {}},
        "tls": {"type": "dict", "options": {
            "ca_cert": {"type": "str", "required": True},
            "server_cert": {"type": "str", "required": True},
            "server_key": {"type": "str", "required": True, "no_log": True},
            "client_cert": {"type": "str"},
            "client_key": {"type": "str", "no_log": True},
        }},
        "allow_insecure_tcp": {"type": "bool", "default": False},
        "daemon_conf": {"type": "str", "default": "libvirtd.conf"},
        "config_dir": {"type": "path", "default": "/etc/libvirt"},
        "pki_dir": {"type": "path", "default": "/etc/pki"},
    }
