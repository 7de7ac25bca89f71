#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: domain_info
short_description: Read guests back as friendly specs, with tags, runtime stats and IP addresses
version_added: 0.1.0
description:
  - Lists all guests of a hypervisor, or one, or those carrying given tags, in one call.
  - Each guest's C(spec) is read through the same field tables the M(kvmfleet.libvirt.domain) module writes
    with, so it is valid input for that module; applying it to the same guest changes nothing in its definition
    (a guest another tool made is adopted then - its marker added with C(virDomainSetMetadata), reported as a
    change). Values and devices the module's options cannot express are left out, and kept as they are.
  - Runtime stats of all running guests come from one bulk libvirt stats call.
  - Reads through a read-only libvirt connection (the daemon refuses any change on it, and a user allowed only to
    read can run the module); see RV(guests[].secrets) for the two reads that need more.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
  - kvmfleet.libvirt.attributes.INFO_MODULE
options:
  name:
    description: Only this guest. An unknown name gives an empty list.
    type: str
  tags:
    description:
      - Only guests carrying all these tags, as a list of names or a dict of name to value
        (a null value matches any value). Unmanaged guests have no tags.
    type: raw
  managed_only:
    description: Only guests that carry the kvmfleet marker.
    type: bool
    default: false
  stats:
    description: Include runtime stats of running guests.
    type: bool
    default: true
  addresses:
    description: Include IP addresses of running guests, from DHCP leases and (when it answers) the guest agent.
    type: bool
    default: true
seealso:
  - module: kvmfleet.libvirt.domain
"""

EXAMPLES = r"""
- name: All guests
  kvmfleet.libvirt.domain_info:
  register: all_guests

- name: The web tier
  kvmfleet.libvirt.domain_info:
    tags: {role: web}
  register: web

- name: Copy an existing guest into YAML
  kvmfleet.libvirt.domain_info:
    name: legacy01
    stats: false
    addresses: false
  register: legacy

- name: Print it as a domain task would take it
  ansible.builtin.debug:
    msg: "{{ legacy.guests[0].spec | to_nice_yaml }}"
"""

RETURN = r"""
guests:
  description: The selected guests, sorted by name.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "web01", "uuid": "6799c32a-781c-4cdf-94ac-4be95963fc49", "state": "running",
          "libvirt_state": "running", "active": true, "persistent": true, "autostart": false, "managed": true,
          "tags": {"role": "web"}, "secrets": [], "origin": null, "last_move": null}]
  contains:
    name:
      description: Guest name.
      type: str
      sample: web01
    uuid:
      description: Guest UUID.
      type: str
      sample: 6799c32a-781c-4cdf-94ac-4be95963fc49
    state:
      description: The power state, as M(kvmfleet.libvirt.domain) names it - V(running) (libvirt's running, blocked
        and shutting down), V(paused) (paused, pmsuspended) or V(shutoff) (shut off, crashed).
      type: str
      sample: running
    libvirt_state:
      description: libvirt's own name for the state, as C(virsh domstate) gives it (V(running), V(blocked),
        V(paused), V(shutdown), V(shutoff), V(crashed), V(pmsuspended), V(nostate)).
      type: str
      sample: running
    active:
      description: Whether the guest is running or paused.
      type: bool
      sample: true
    persistent:
      description: Whether the guest has a persistent definition.
      type: bool
      sample: true
    autostart:
      description: Whether the guest starts with the host.
      type: bool
      sample: false
    managed:
      description: Whether the guest carries the kvmfleet marker.
      type: bool
      sample: true
    tags:
      description: The guest's kvmfleet tags.
      type: dict
      sample: {"role": "web", "env": "prod"}
    origin:
      description: The guest's recorded home while it is away from it (evacuated with M(kvmfleet.libvirt.migrate)
        O(kvmfleet.libvirt.migrate#module:record_origin=true)), or V(null).
      type: dict
      sample: {"uuid": "5ca1ab1e-0000-4000-8000-000000000001", "uri": "qemu+tcp://192.168.250.11/system", "host": "hv1",
               "since": "2026-12-02T04:00:00Z"}
    last_move:
      description: When the guest last moved with M(kvmfleet.libvirt.migrate) (UTC), by what (C(evacuate),
        C(rebalance), C(consolidate), C(migrate)...) and from which host, or V(null). The cooldown of the placement
        playbooks reads it.
      type: dict
      sample: {"at": "2026-12-03T10:00:00Z", "by": "rebalance", "from": "hv1"}
    disks:
      description: Each disk of the persistent definition with its size - C(capacity_bytes), the disk's size as the
        guest sees it, and C(allocation_bytes), the space its image takes on the host (what a move that copies
        storage moves) - from the running guest's block stats, or read from the image of a guest that is not
        running; V(null) where libvirt cannot say (a network disk, a missing image).
      type: list
      elements: dict
      sample: [{"dev": "vda", "device": "disk", "path": "/var/lib/libvirt/images/web01.qcow2", "pool": null,
                "volume": null, "readonly": false, "shareable": false, "capacity_bytes": 21474836480,
                "allocation_bytes": 1815478272}]
    spec:
      description: The friendly spec read back from the persistent XML (valid input for M(kvmfleet.libvirt.domain)).
      type: dict
      sample: {"name": "web01", "memory": "2GiB", "vcpus": 2,
               "disks": [{"dev": "vda", "pool": "default", "volume": "web01.qcow2", "bus": "virtio", "format": "qcow2"}],
               "interfaces": [{"mac": "52:54:00:3f:a2:19", "network": "default", "model": "virtio"}]}
    secrets:
      description:
        - The options of the guest's secrets that are set, by their place in RV(guests[].spec), which never holds
          their values. libvirt shows secrets only to a read-write connection - the module reads through a
          read-only one and opens a read-write one for this only when a guest has a graphics device (and for the guest
          agent's addresses); V(null) (unknown) where the user may only read.
      type: list
      elements: str
      sample: ["graphics[0].password"]
    stats:
      description: Runtime stats (null for a guest that is not running).
      type: dict
      returned: when O(stats=true)
      sample: {"cpu_time_ns": 1845000000, "vcpus": 2,
               "memory": {"current_kib": 2097152, "maximum_kib": 2097152, "rss_kib": 301234},
               "disks": [{"dev": "vda", "read_bytes": 1, "write_bytes": 2, "capacity_bytes": 3}],
               "nics": [{"dev": "vnet0", "rx_bytes": 1, "tx_bytes": 2}]}
    addresses:
      description: IP addresses per MAC of a running guest.
      type: dict
      returned: when O(addresses=true)
      sample: {"52:54:00:3f:a2:19": [{"address": "192.168.122.10", "prefix": 24, "family": "ipv4", "source": "lease"}]}
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.info import gather
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.spec import info_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import writable_on_demand
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def list_guests(conn, params, _check):
    with writable_on_demand(params["uri"], params.get("connect_timeout")) as writable:
        return {"changed": False, "guests": gather(conn, params["name"], params["tags"], params["managed_only"],
                                                   params["stats"], params["addresses"], writable=writable)}


def main():
    module_main(info_argument_spec(), list_guests, lambda params: "the guests of %s" % params["uri"], readonly=True)


if __name__ == "__main__":
    main()
