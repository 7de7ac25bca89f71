#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_tuning
short_description: The kernel settings of a KVM hypervisor - KVM usability, nested virtualization, KSM, hugepages
version_added: 0.1.0
requirements:
  - lxml >= 4.9 on the managed host
description:
  - Says whether KVM is usable on the host it runs on, and every reason it is not (the CPU's vmx/svm flag, the kvm
    modules, C(/dev/kvm)); with O(require_kvm=true) it fails with those reasons before changing anything.
  - Applies KSM (memory deduplication) and 2M hugepages now, through sysfs and procfs, and keeps them across reboots in
    files under C(/etc) (C(tmpfiles.d), C(sysctl.d)) that say at their top that Ansible manages them.
  - Writes the C(modprobe.d) option for nested virtualization and the kernel command line for 1G hugepages, and
    reports when a module reload or a reboot is needed for them, instead of doing either behind the user's back.
  - Runs on the hypervisor itself (it reads and writes the host's files, not libvirt).
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The files kept across reboots, before and after.
options:
  require_kvm:
    description:
      - Fail, before anything changes, when KVM is not usable; the message gives every reason.
      - Set to V(false) where guests run under software emulation (C(virt_type=qemu)).
    type: bool
    default: true
  nested:
    description:
      - Nested virtualization for the vendor's kvm module (kvm_intel or kvm_amd); V(null) leaves it alone.
      - Written to C(/etc/modprobe.d/kvmfleet-nested.conf). A loaded module keeps its value; RV(nested) (C(reload_required))
        and RV(reasons) say so.
    type: bool
  ksm:
    description: Kernel samepage merging; keys not given are left as they are.
    type: dict
    suboptions:
      enabled:
        description: Merge pages (V(true)) or stop merging (V(false)).
        type: bool
      pages_to_scan:
        description: Pages scanned per wake-up.
        type: int
      sleep_millisecs:
        description: Milliseconds between wake-ups.
        type: int
      merge_across_nodes:
        description:
          - Merge pages of different NUMA nodes. The kernel takes a change only while nothing is merged, so the module
            unmerges first (C(run=2)) when pages are shared.
        type: bool
  hugepages:
    description: Hugepages reserved for guests.
    type: dict
    suboptions:
      count:
        description: 2M pages in total, now (C(vm.nr_hugepages)) and at boot (C(/etc/sysctl.d)).
        type: int
      per_node:
        description:
          - 2M pages per NUMA node (node number -> count), now and at boot (C(/etc/tmpfiles.d)). Not with O(hugepages.count).
        type: dict
      count_1g:
        description:
          - 1G pages, through the kernel command line (C(/etc/default/grub.d)), the only reliable way; reported as
            needing a reboot until the kernel has them. The module does not regenerate the boot loader's configuration.
        type: int
  root:
    description:
      - The root directory of the host's files. V(/) on a hypervisor; another directory prepares a mounted image.
    type: path
    default: /
notes:
  - A reservation of hugepages the kernel cannot fully satisfy is reported in a warning with the number it got.
seealso:
  - module: kvmfleet.libvirt.host_info
  - module: kvmfleet.libvirt.libvirtd_config
"""

EXAMPLES = r"""
- name: Refuse a host without KVM, enable KSM and reserve 1 GiB of 2M hugepages
  kvmfleet.libvirt.host_tuning:
    ksm:
      enabled: true
      pages_to_scan: 200
      sleep_millisecs: 50
    hugepages:
      count: 512
  register: tuning

- name: A host that runs guests under emulation (no KVM)
  kvmfleet.libvirt.host_tuning:
    require_kvm: false
    nested: false

- name: Tell the user what waits for a reboot
  ansible.builtin.debug:
    msg: "{{ tuning.reasons }}"
  when: tuning.reboot_required or tuning.nested.reload_required
"""

RETURN = r"""
kvm:
  description: Whether KVM is usable, the CPU vendor (V(intel), V(amd) or V(null)) and every reason it is not.
  returned: always
  type: dict
  sample: {"usable": false, "vendor": null, "reasons": ["the CPU reports neither vmx (Intel VT-x) nor svm (AMD-V) ..."]}
nested:
  description: Nested virtualization as loaded (V(null) when no kvm vendor module is loaded), as wanted, and whether a
    module reload is needed.
  returned: always
  type: dict
  sample: {"enabled": false, "wanted": true, "reload_required": true, "modules": ["kvm_intel"]}
ksm:
  description: KSM as the kernel reports it after the run, with the memory it saves (C(pages_sharing) x page size).
  returned: when the kernel has KSM
  type: dict
  sample: {"enabled": true, "run": 1, "pages_to_scan": 200, "sleep_millisecs": 50, "merge_across_nodes": true,
           "pages_shared": 1200, "pages_sharing": 5400, "full_scans": 12, "saved_bytes": 22118400}
hugepages:
  description: The hugepages the kernel has reserved (2M in total and per node asked for, 1G), and the reservations
    that fell short.
  returned: always
  type: dict
  sample: {"reserved_2m": 512, "reserved_1g": 0, "per_node": {}, "short": []}
reboot_required:
  description: Whether a setting waits for a reboot (1G hugepages).
  returned: always
  type: bool
  sample: false
reasons:
  description: What waits for a reboot or a module reload, and what to do.
  returned: always
  type: list
  elements: str
  sample: ["nested virtualization: kvm_amd is loaded with nested=N; it takes the new value when reloaded with no guest
            running (modprobe -r, then modprobe), or at the next boot"]
actions:
  description: What was (or in check mode would be) written.
  returned: always
  type: list
  elements: str
  sample: ["ksm.run: 0 -> 1", "write /etc/tmpfiles.d/kvmfleet-ksm.conf"]
files:
  description: The files kept across reboots that were (or would be) written.
  returned: always
  type: list
  elements: str
  sample: ["/etc/modprobe.d/kvmfleet-nested.conf", "/etc/tmpfiles.d/kvmfleet-ksm.conf"]
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.spec import tuning_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.tuning import TuningRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(tuning_argument_spec(), TuningRunner, lambda params: "host %s" % params["root"], connect=False)


if __name__ == "__main__":
    main()
