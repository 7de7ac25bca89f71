# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``network`` argument spec, shared with the ``networks`` role's checks."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI


def _ip_options(family_hosts_keys):
    return {
        "address": {"type": "str", "required": True},
        "dhcp": {"type": "dict", "options": {
            "ranges": {"type": "list", "elements": "dict", "options": {
                "start": {"type": "str", "required": True},
                "end": {"type": "str", "required": True},
            }},
            "hosts": {"type": "list", "elements": "dict", "options": family_hosts_keys},
        }},
    }


def network_options():
    hosts = {"mac": {"type": "str"}, "id": {"type": "str"}, "name": {"type": "str"},
             "ip": {"type": "str", "required": True}}
    return {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "active", "choices": ["present", "active", "inactive", "absent"]},
        "forward": {"type": "str", "choices": ["isolated", "nat", "route", "open", "bridge", "macvtap"]},
        "macvtap_mode": {"type": "str", "choices": ["bridge", "private", "vepa", "passthrough"]},
        "interfaces": {"type": "list", "elements": "str"},
        "forward_dev": {"type": "str"},
        "bridge": {"type": "str"},
        "stp": {"type": "bool"},
        "bridge_delay": {"type": "int"},
        "mtu": {"type": "int"},
        "mac": {"type": "str"},
        "domain": {"type": "str"},
        "domain_local_only": {"type": "bool"},
        "ipv4": {"type": "dict", "options": _ip_options(hosts)},
        "ipv6": {"type": "dict", "options": _ip_options(hosts)},
        "dns_hosts": {"type": "list", "elements": "dict", "options": {
            "ip": {"type": "str", "required": True},
            "hostnames": {"type": "list", "elements": "str", "required": True},
        }},
        "autostart": {"type": "bool"},
        "restart": {"type": "str", "default": "never", "choices": ["never", "if_needed"]},
        "force": {"type": "bool", "default": False},
    }


def argument_spec():
    spec = {"uri": {"type": "str", "default": DEFAULT_URI}}
    spec.update(network_options())
    return spec
