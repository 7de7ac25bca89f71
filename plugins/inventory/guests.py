# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: guests
short_description: The libvirt guests of one or many hypervisors as inventory hosts
version_added: 0.1.0
requirements:
  - libvirt-python >= 9.0 on the controller
  - lxml >= 4.9 on the controller
description:
  - Lists the guests of every hypervisor in O(hypervisors) or O(uris), read in parallel, and makes each an inventory
    host, grouped by hypervisor (C(hypervisor_HV), HV the hypervisor's name in O(hypervisors), else the URI's host),
    by state (C(state_running)) and by the tags the collection stores (C(tag_role) and C(tag_role_web)).
  - Host variables - C(kvmfleet_name), C(kvmfleet_uuid), C(kvmfleet_state), C(kvmfleet_hypervisor),
    C(kvmfleet_uri), C(kvmfleet_managed), C(kvmfleet_tags), C(kvmfleet_spec) (the guest as
    M(kvmfleet.libvirt.domain_info) reads it back), C(kvmfleet_addresses) and C(ansible_host), the guest's first
    address (from its DHCP lease, or from the guest agent).
  - A guest whose name another hypervisor already has is named C(NAME@HYPERVISOR).
  - An unreachable hypervisor is a warning naming it (the others still list), or an error with O(strict=true).
  - The inventory runs on the controller, which needs libvirt-python and lxml and must reach the URIs
    (C(qemu+ssh://), C(qemu+tls://), or a local socket).
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [kvmfleet.libvirt.guests]
  uris:
    description: The hypervisors, as libvirt URIs; each is named after its URI's host. Ignored when O(hypervisors) is
      given.
    type: list
    elements: str
    default: [qemu:///system]
  hypervisors:
    description:
      - The hypervisors by name, each with its libvirt URI - the names the fleet's own inventory gives them, so that
        the groups (C(hypervisor_hv1)) and C(kvmfleet_hypervisor) use them. See the example.
    type: dict
  connect_timeout:
    description: Seconds to wait for each hypervisor's connection before it is left out with the reason.
    type: int
    default: 30
  filters:
    description: Which guests become hosts.
    type: dict
    default: {}
    suboptions:
      state:
        description: Only guests in these states (V(running) also matches paused and blocked guests).
        type: list
        elements: str
      tags:
        description: Only guests with these tags, a list of names or a dict of name and value (null - any value).
        type: raw
      managed_only:
        description: Only guests the collection manages (with its marker).
        type: bool
        default: false
  addresses:
    description: Read the guests' addresses (DHCP leases, guest agent) for C(ansible_host).
    type: bool
    default: true
  parallel:
    description: How many hypervisors are read at once.
    type: int
    default: 8
"""

EXAMPLES = r"""
# guests.kvmfleet.yml: every guest of three hypervisors, grouped by hypervisor, state and tag
plugin: kvmfleet.libvirt.guests
hypervisors:
  hv1: qemu+ssh://root@10.0.0.11/system
  hv2: qemu+ssh://root@10.0.0.12/system
  hv3: qemu+tls://hv3.example.net/system
filters:
  managed_only: true
keyed_groups:
  - key: kvmfleet_tags.env | default('none')
    prefix: env
compose:
  ansible_user: "'debian'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: /tmp/kvmfleet-inventory
"""

from concurrent.futures import ThreadPoolExecutor

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.info import gather
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.inventory import inventory_hosts, matches
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import LIBVIRT_IMPORT_ERROR, open_connection
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError


def read_hypervisor(uri, filters, addresses, timeout=None):
    """(uri, guests, error): every selected guest of one hypervisor, or why it could not be read."""
    try:
        conn = open_connection(uri, readonly=True, timeout=timeout)
    except UserError as exc:
        return uri, [], str(exc)
    try:
        guests = gather(conn, tags=filters.get("tags"), managed_only=bool(filters.get("managed_only")),
                        want_stats=False, want_addresses=addresses)
        return uri, [g for g in guests if matches(g, filters)], None
    except Exception as exc:  # pylint: disable=broad-except  # one hypervisor's failure is a warning
        return uri, [], "reading the guests of %s failed: %s" % (uri, exc)
    finally:
        conn.close()


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "kvmfleet.libvirt.guests"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("guests.yml", "guests.yaml", "kvmfleet.yml",
                                                            "kvmfleet.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        if LIBVIRT_IMPORT_ERROR:
            raise AnsibleParserError("the kvmfleet.libvirt.guests inventory needs libvirt-python on the controller")
        self._read_config_data(path)
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache") and cache
        data = None
        if use_cache:
            try:
                data = self._cache[cache_key]
            except KeyError:
                data = None
        if data is None:
            named = self.get_option("hypervisors")
            if named:
                if not isinstance(named, dict) or not all(isinstance(u, str) for u in named.values()):
                    raise AnsibleParserError("kvmfleet.libvirt.guests: option hypervisors: expected a dict of "
                                             "hypervisor name and URI, got %r" % (named,))
                hypervisors = [(str(name), uri) for name, uri in named.items()]
            else:
                hypervisors = [(None, uri) for uri in self.get_option("uris")]
            data = self._read(hypervisors, self.get_option("filters") or {})
            if self.get_option("cache"):
                self._cache[cache_key] = data
        self._populate(data)

    def _read(self, hypervisors, filters):
        parallel = max(1, min(self.get_option("parallel"), len(hypervisors) or 1))
        timeout = self.get_option("connect_timeout")
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            read = list(pool.map(lambda hv: read_hypervisor(hv[1], filters, self.get_option("addresses"), timeout),
                                 hypervisors))
        data = []
        for (name, _uri), (uri, guests, error) in zip(hypervisors, read):
            if error:
                if self.get_option("strict"):
                    raise AnsibleParserError("kvmfleet.libvirt.guests: %s" % error)
                self.display.warning("kvmfleet.libvirt.guests: hypervisor %s is left out: %s"
                                     % ("%s (%s)" % (name, uri) if name else uri, error))
            data.append({"uri": uri, "name": name, "guests": guests})
        return data

    def _populate(self, data):
        strict = self.get_option("strict")
        taken = set()
        for hypervisor in data:
            for hostname, host_vars, groups in inventory_hosts(hypervisor["uri"], hypervisor["guests"], taken,
                                                               hypervisor.get("name")):
                taken.add(host_vars["kvmfleet_name"])
                self.inventory.add_host(hostname)
                for name, value in host_vars.items():
                    self.inventory.set_variable(hostname, name, value)
                for group in groups:
                    self.inventory.add_group(group)
                    self.inventory.add_child(group, hostname)
                self._set_composite_vars(self.get_option("compose"), host_vars, hostname, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), host_vars, hostname, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, hostname, strict=strict)
