#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot_info
short_description: Every snapshot of a guest
version_added: 0.1.0
description:
  - Lists a guest's snapshots, oldest first, each with its parent, creation time, state, whether it holds memory, its
    location (internal, external or mixed), whether it is the current one, and its disks (with the overlay files of an
    external one).
  - Reads through a read-only libvirt connection.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
  - kvmfleet.libvirt.attributes.INFO_MODULE
options:
  name:
    description: The guest's name.
    type: str
    required: true
    aliases:
      - guest
seealso:
  - module: kvmfleet.libvirt.snapshot
"""

EXAMPLES = r"""
- name: The snapshots of db01
  kvmfleet.libvirt.snapshot_info:
    name: db01
  register: db01_snapshots

- name: The names of its pre-upgrade snapshots
  ansible.builtin.debug:
    msg: "{{ db01_snapshots.snapshots | map(attribute='name') | select('match', 'pre-upgrade-') | list }}"
"""

RETURN = r"""
current:
  description: The name of the current snapshot (V(null) when there is none).
  returned: always
  type: str
  sample: pre-upgrade-20261202
snapshots:
  description: The snapshots, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - name: pre-upgrade-20261202
      description: before the database upgrade
      parent: null
      creation_time: 1796172000
      state: shutoff
      memory: false
      location: internal
      current: true
      disks: [{"dev": "vda", "snapshot": "internal", "file": null}]
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.apply import list_snapshots
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.spec import info_argument_spec


def main():
    module_main(info_argument_spec(), list_snapshots, lambda params: "guest %s" % params["name"], readonly=True)


if __name__ == "__main__":
    main()
