# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``network`` argument spec, derived from the table (table.py); shared with the
``networks`` role's checks."""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import argument_spec_of
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import DEFAULT_URI
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.table import (
    BANDWIDTH_FIELDS,
    DNS_HOSTS,
    DNS_SRV,
    DNS_TXT,
    FORWARD_INTERFACES,
    FORWARD_OPTIONS,
    IP_FIELDS,
    NETWORK_FIELDS,
    PORTGROUPS,
    ROUTES,
)


def network_options():
    options = {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "default": "active", "choices": ["present", "active", "inactive", "absent"]},
        "ipv4": {"type": "dict", "options": argument_spec_of(IP_FIELDS)},
        "ipv6": {"type": "dict", "options": argument_spec_of(IP_FIELDS)},
        "addresses": {"type": "list", "elements": "dict", "options": argument_spec_of(IP_FIELDS)},
        "autostart": {"type": "bool"},
        "restart": {"type": "str", "default": "never", "choices": ["never", "if_needed"]},
        "force": {"type": "bool", "default": False},
    }
    lists = (FORWARD_INTERFACES, DNS_HOSTS, DNS_SRV, DNS_TXT, ROUTES, PORTGROUPS)
    options.update(argument_spec_of(NETWORK_FIELDS + FORWARD_OPTIONS + lists + BANDWIDTH_FIELDS))
    return options


def argument_spec():
    spec = {"uri": {"type": "str", "default": DEFAULT_URI}}
    spec.update(network_options())
    return spec
