#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gitops_export
short_description: Write the guests, networks and pools of running hypervisors into a GitOps inventory
version_added: 0.1.0
requirements:
  - lxml >= 4.9 and PyYAML on the host the module runs on
description:
  - Writes C(host_vars/<hypervisor>.yml) in the inventory directory O(dest) for each hypervisor in O(hypervisors), with
    its guests as the C(kvmfleet.libvirt.guests) role's C(guests_list) - each guest's friendly spec as
    M(kvmfleet.libvirt.domain_info) reads it back, with its name and UUID - and its networks and pools as the
    C(networks_list) and C(storage_pools) of the networks and storage roles (their specs as
    M(kvmfleet.libvirt.host_info) reads them back, with state and autostart). Used by C(playbooks/export.yml),
    which reads each hypervisor and runs this module once, where the playbook runs.
  - Converging the exported inventory against the same hypervisors changes nothing in any guest's definition; guests
    the collection did not manage are adopted (their marker added, metadata only), and a second run changes nothing.
    What the friendly spec cannot express (a NIC of type vhostuser, an unknown element) is left out and kept as it
    is on the host.
  - A guest defined on several hypervisors is listed once, where it runs (else by the first hypervisor of the list);
    a note in the file names the other copies.
  - Secrets are never written - a note in the file names each secret option that is set on the host (left out, the
    host's value stays) and how to declare it from a vault.
  - Writes only C(host_vars/<name>.yml) inside O(dest), never through a symbolic link, each file atomically (a
    temporary file renamed into place). A file the export did not write is overwritten only with O(force); anything
    refused is refused before any file is written.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode reports which files would be created or changed, and writes none.
  diff_mode:
    support: full
    details:
      - The diff is each file's text before and after.
options:
  dest:
    description: The inventory directory (an absolute path that exists); the files go into its C(host_vars/).
    type: path
    required: true
  hypervisors:
    description:
      - The hypervisors to export, each by its inventory name (the file's name, so a plain file name) with its guests
        as M(kvmfleet.libvirt.domain_info) returns them (its C(guests)).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The hypervisor's inventory name.
        type: str
        required: true
      uri:
        description: Its libvirt URI (named in the file's header).
        type: str
      guests:
        description: Its guests, as M(kvmfleet.libvirt.domain_info) returns them.
        type: list
        elements: dict
        required: true
      networks:
        description:
          - Its networks, as M(kvmfleet.libvirt.host_info) returns them; each one's C(spec), with its state and
            autostart, goes into the file's C(networks_list) (for the C(kvmfleet.libvirt.networks) role). Left out,
            the file has no C(networks_list).
        type: list
        elements: dict
      pools:
        description:
          - Its storage pools, as M(kvmfleet.libvirt.host_info) returns them; into the file's C(storage_pools) (for
            the C(kvmfleet.libvirt.storage) role). Left out, the file has no C(storage_pools).
        type: list
        elements: dict
  force:
    description: Overwrite files the export did not write (their first lines do not say so).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read the guests of each hypervisor
  kvmfleet.libvirt.domain_info:
    uri: "{{ kvmfleet_uri }}"
  register: export_read

- name: Write them into the inventory
  kvmfleet.libvirt.gitops_export:
    dest: "{{ inventory_dir }}"
    hypervisors: "{{ ansible_play_hosts | map('extract', hostvars) | map(attribute='export_part') }}"
  run_once: true
"""

RETURN = r"""
files:
  description: Each file, with its state (V(created), V(changed) or V(unchanged)), how many guests it lists and its notes.
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/srv/gitops/inventory/host_vars/hv1.yml", "hypervisor": "hv1", "state": "created", "guests": 2,
            "notes": ["web1: graphics[0].password is set on the host and not written here. ..."]}]
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._export import export_argument_spec, run_export
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(export_argument_spec(), run_export, lambda params: "the export", connect=False)


if __name__ == "__main__":
    main()
