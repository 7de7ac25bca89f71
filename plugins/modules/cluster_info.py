#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: The cluster view - every guest on every hypervisor of a group, read once, in parallel
version_added: 0.1.0
requirements:
  - libvirt-python >= 9.0 on the managed host
  - lxml >= 4.9 on the managed host
description:
  - Reads every hypervisor in O(hypervisors) at once (one read-only connection each, up to O(parallel) at a time) -
    whether it answers, its host UUID, whether it is cordoned, and its guests - name, UUID, whether each runs, is
    persistent and autostarts, carries the collection's managed marker, and its recorded origin (where it was moved
    from, when and by what).
  - The C(kvmfleet.libvirt.guests) role reads it once per run, before any hypervisor's
    M(kvmfleet.libvirt.fleet) task, so that every guest is converged where it is and never created a second time
    (the C(kvmfleet.libvirt.fleet_assignment) filter).
  - A hypervisor that does not answer is in the view as unreachable, with the error; the module does not fail for
    it. Its guests are unknown.
  - Read-only; never changes a host.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.attributes
  - kvmfleet.libvirt.attributes.INFO_MODULE
options:
  hypervisors:
    description:
      - The hypervisors of the group, each by its inventory name and its libvirt URI (reachable from where the
        module runs).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The hypervisor's name (its inventory name).
        type: str
        required: true
      uri:
        description: Its libvirt URI.
        type: str
        required: true
  parallel:
    description: How many hypervisors are read at once.
    type: int
    default: 16
"""

EXAMPLES = r"""
- name: Read the cluster once
  kvmfleet.libvirt.cluster_info:
    hypervisors: "{{ hostvars | kvmfleet.libvirt.hypervisor_uris(groups['hypervisors']) }}"
  run_once: true
  register: cluster

- name: Read two hypervisors
  kvmfleet.libvirt.cluster_info:
    hypervisors:
      - {name: hv1, uri: "qemu+tls://hv1.example.com/system"}
      - {name: hv2, uri: "qemu+tls://hv2.example.com/system"}
  register: cluster

- name: Where does web1 run?
  ansible.builtin.debug:
    msg: "{{ cluster.cluster.guests | selectattr('name', 'eq', 'web1') | selectattr('active')
      | map(attribute='hypervisor') | list }}"
"""

RETURN = r"""
cluster:
  description: The cluster view.
  returned: success
  type: dict
  sample: {"hypervisors": [{"name": "hv1", "uri": "qemu+tls://hv1.example.com/system", "reachable": true,
          "error": null, "host_uuid": "6b4ff789-c4dc-4405-80fc-70d3957eaeab", "cordoned": false}],
          "guests": [{"name": "web1", "uuid": "6799c32a-781c-4cdf-94ac-4be95963fc49", "hypervisor": "hv1",
                      "active": true, "persistent": true, "autostart": true, "managed": true, "origin": null}]}
  contains:
    hypervisors:
      description:
        - Each hypervisor in the order given - C(name), C(uri), C(reachable), C(error) (why it could not be read),
          C(host_uuid), C(cordoned).
      type: list
      elements: dict
      sample: [{"name": "hv1", "uri": "qemu+tcp://192.168.250.11/system", "reachable": true, "error": null,
                "host_uuid": "5ca1ab1e-0000-4000-8000-000000000001", "cordoned": false}]
    guests:
      description:
        - Every guest of the reachable hypervisors - C(name), C(uuid), C(hypervisor), C(active), C(persistent),
          C(autostart), C(managed) (it carries the collection's marker), C(origin) (where it was moved from, or
          null).
      type: list
      elements: dict
      sample: [{"name": "web1", "uuid": "0b6f3c52-0e0c-4d3e-9a8f-3c3f6a3a1f00", "hypervisor": "hv2", "active": true,
                "persistent": true, "autostart": false, "managed": true,
                "origin": {"host": "hv1", "uri": "qemu+tcp://192.168.250.11/system", "since": "2026-12-02T10:00:00Z",
                           "uuid": "5ca1ab1e-0000-4000-8000-000000000001", "by": "rebalance"}}]
silent:
  description: The hypervisors that did not answer (C(unreachable) is Ansible's own word for the host a task runs on).
  returned: success
  type: list
  elements: str
  sample: []
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.spec import cluster_info_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fleet.view import read_cluster, check_hypervisors
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def cluster_view(_conn, params, _check):
    view = read_cluster(params["hypervisors"], max(1, params["parallel"]))
    return {"changed": False, "cluster": view,
            "silent": [h["name"] for h in view["hypervisors"] if not h["reachable"]]}


def main():
    module_main(cluster_info_argument_spec(), cluster_view, lambda params: "the cluster", connect=False,
                precheck=lambda params: check_hypervisors(params["hypervisors"]))


if __name__ == "__main__":
    main()
