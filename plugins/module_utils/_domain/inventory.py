# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: guests as inventory hosts (the ``kvmfleet.libvirt.guests`` inventory plugin). Pure: the
plugin reads each hypervisor with ``info.gather`` and this turns what it read into hosts, their
variables and their groups."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def group_name(*parts):
    """A valid Ansible group name from its parts ('tag', 'role', 'web' -> 'tag_role_web')."""
    return _UNSAFE.sub("_", "_".join(str(p) for p in parts if p is not None and str(p) != ""))


def hypervisor_name(uri):
    """A short name for a hypervisor URI: its host ('hv1' for qemu+ssh://root@hv1/system), the socket's
    directory for a local socket URI, or 'localhost'."""
    parts = urlsplit(uri)
    if parts.hostname:
        return parts.hostname
    socket = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("socket")
    if socket:
        return socket.strip("/").split("/")[-3] if socket.count("/") >= 3 else socket
    return "localhost"


def first_address(addresses):
    """The guest's first IPv4 address (any NIC, lease before agent), else its first address, else None."""
    found = [entry for entries in addresses.values() for entry in entries]
    for family in ("ipv4", "ipv6"):
        for entry in found:
            if entry["family"] == family and not _local(entry["address"]):
                return entry["address"]
    return None


def _local(address):
    """Loopback and link-local addresses: no one else reaches the guest there."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    return parsed.is_loopback or parsed.is_link_local


def matches(guest, filters):
    """Whether a guest passes the plugin's ``filters``: ``state`` (a name or a list), ``managed_only``."""
    filters = filters or {}
    states = filters.get("state")
    if states:
        states = [states] if isinstance(states, str) else list(states)
        if guest["state"] not in states and not ("running" in states and guest["active"]):
            return False
    return not (filters.get("managed_only") and not guest["managed"])


def inventory_hosts(uri, guests, taken=(), name=None):
    """[(inventory hostname, host vars, groups)] for the guests one hypervisor has; ``name``: the hypervisor's name
    (the inventory's own, when it gives one), else one made from the URI (hypervisor_name).

    A guest is named as it is in libvirt; when another hypervisor already has a guest of that name
    (``taken``), it is named NAME@HYPERVISOR. Groups: the hypervisor's, the state's, and one per tag
    (``tag_NAME`` and, with a value, ``tag_NAME_VALUE``).
    """
    hypervisor = name or hypervisor_name(uri)
    hosts = []
    for guest in guests:
        hostname = guest["name"] if guest["name"] not in taken else "%s@%s" % (guest["name"], hypervisor)
        host_vars = {
            "kvmfleet_name": guest["name"],
            "kvmfleet_uuid": guest["uuid"],
            "kvmfleet_state": guest["state"],
            "kvmfleet_hypervisor": hypervisor,
            "kvmfleet_uri": uri,
            "kvmfleet_managed": guest["managed"],
            "kvmfleet_tags": guest["tags"],
            "kvmfleet_spec": guest["spec"],
            "kvmfleet_addresses": guest.get("addresses") or {},
        }
        address = first_address(guest.get("addresses") or {})
        if address:
            host_vars["ansible_host"] = address
        groups = [group_name("hypervisor", hypervisor), group_name("state", guest["state"])]
        for tag, value in sorted((guest["tags"] or {}).items()):
            groups.append(group_name("tag", tag))
            if value is not None:
                groups.append(group_name("tag", tag, value))
        hosts.append((hostname, host_vars, groups))
    return hosts
