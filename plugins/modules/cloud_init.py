#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloud_init
short_description: Build a cloud-init NoCloud seed ISO as a libvirt storage volume
version_added: 0.1.0
description:
  - Renders user-data, meta-data, network-config and vendor-data, packs them into a NoCloud seed ISO (volume label
    C(cidata)) in Python with pycdlib - no shell tools - and streams it into a volume of a storage pool. Attach the
    volume to a guest as a cdrom yourself, or use the C(cloud_init) option of M(kvmfleet.libvirt.domain), which
    does both.
  - The ISO is the same bytes for the same content (fixed timestamps). Its application identifier carries a content
    hash, read back through a libvirt stream (2 KiB), so the volume is rewritten only when the content changes.
  - An existing volume of the same name that does not hold a C(cidata) ISO is refused, never overwritten.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode reads the volume's ISO header and reports the same C(changed) and diff as a real run; it builds no
        ISO and writes nothing.
  diff_mode:
    support: full
    details:
      - The diff shows a prefix of the content hash before and after, never the content.
options:
  pool:
    description: Name of the storage pool (active).
    type: str
    required: true
  name:
    description: Name of the seed volume, for example C(web01-cidata.iso).
    type: str
    required: true
  state:
    description:
      - V(present) creates or rewrites the seed volume. V(absent) deletes it (only when it holds a C(cidata) ISO).
    type: str
    choices: [present, absent]
    default: present
  user_data:
    description:
      - User data. A dict is rendered as a C(#cloud-config) document; a string is used as it is and must start
        with C(#cloud-config) (then it must be a YAML mapping), C(#!), C(#include), C(#cloud-boothook),
        C(#part-handler), C(## template) or be a MIME multi-part document.
      - C(no_log) - Ansible masks its values wherever they appear in the output.
    type: raw
  meta_data:
    description:
      - Meta data, for example C(local-hostname). C(instance-id) defaults to one derived from O(pool) and O(name)
        (the C(domain) module derives it from the guest's UUID).
    type: dict
  network_config:
    description: Network configuration version 2 (netplan style), a dict or a YAML string with C(version) 2.
    type: raw
  vendor_data:
    description: Vendor data, in the same forms as O(user_data). C(no_log).
    type: raw
requirements:
  - pycdlib
  - PyYAML
notes:
  - Secrets in O(user_data) and O(vendor_data) never appear in results or diffs.
seealso:
  - module: kvmfleet.libvirt.domain
  - module: kvmfleet.libvirt.volume
"""

EXAMPLES = r"""
- name: A seed volume for a guest defined elsewhere
  kvmfleet.libvirt.cloud_init:
    pool: default
    name: web01-cidata.iso
    meta_data:
      local-hostname: web01
    user_data:
      users:
        - name: admin
          ssh_authorized_keys: ["ssh-ed25519 AAAA... admin@example"]
    network_config:
      version: 2
      ethernets:
        eth0: {dhcp4: true}
"""

RETURN = r"""
changed:
  description: Whether the seed volume was (or would be, in check mode) created, rewritten or deleted.
  returned: always
  type: bool
  sample: true
created:
  description: Whether the volume was created by this task.
  returned: always
  type: bool
  sample: true
actions:
  description: What the task did (or would do).
  returned: always
  type: list
  elements: str
  sample: ["create cloud-init seed volume default/web01-cidata.iso"]
hash:
  description: Prefix of the content hash (C(sha256:) and 12 hex digits).
  returned: when state is present
  type: str
  sample: "sha256:3b1f0c9a7d2e"
volume_path:
  description: Path of the seed volume (null in check mode for a volume still to be created).
  returned: always
  type: str
  sample: /var/lib/libvirt/images/web01-cidata.iso
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.apply import SeedVolumeRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._cloudinit.spec import argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(argument_spec(), SeedVolumeRunner, lambda params: "seed volume %s" % params["name"])


if __name__ == "__main__":
    main()
