#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: migrate
short_description: Move a guest to another hypervisor - live when it runs, offline when it is shut off
version_added: 0.1.0
description:
  - Migrates guest O(name) from O(uri) to O(destination_uri). A running guest moves live (peer to peer by default);
    a shut-off guest moves offline (its definition). The guest is made persistent on the destination and undefined
    on the source by default.
  - Pre-flight first, and nothing moves while it finds a problem - each names what is missing. The destination must
    have every network and storage pool the guest uses (and active), its disks (shared storage) unless
    O(copy_storage) copies them, enough free memory, a CPU that can run the guest's CPU model (libvirt's comparison),
    and must not be the source (the same host UUID). Disks whose cache mode makes libvirt call a live migration unsafe
    are named; O(unsafe=true) is the user's explicit choice.
  - Idempotent - a guest already on the destination and absent from the source is no change. Check mode gives the
    pre-flight verdict and what would move.
  - A guest defined on both is refused, naming both - except a stale copy. A running guest migrates live over a shut-off
    definition on the destination that has its UUID, or that it records it was recovered from (that one, with another
    UUID, is undefined first, its disks kept), with a warning.
  - A migration that fails leaves the guest running on the source and no copy defined on the destination. After every
    migration the module checks that exactly one running copy exists.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  record_origin:
    description:
      - Record the source as the guest's home in the guest's own metadata on the destination (when it has no home
        recorded yet), so that C(playbooks/restore.yml) can bring it back. C(playbooks/evacuate.yml) sets it.
      - A guest that reaches its recorded home (by host UUID) loses the record, whatever this says.
    type: bool
    default: false
  moved_by:
    description:
      - What moved the guest, recorded with its origin when O(record_origin=true) records one (V(evacuate),
        V(rebalance); default V(migrate)). The fleet's plan says it ("moved from hv1 since ... by rebalance").
    type: str
  name:
    description: The guest.
    type: str
    required: true
  destination_uri:
    description: The destination hypervisor's libvirt URI (reachable from the source's libvirtd when O(peer2peer=true)).
    type: str
    required: true
  persistent:
    description: Define the guest on the destination (an offline migration always does).
    type: bool
    default: true
  undefine_source:
    description: Undefine the guest on the source once it runs on the destination.
    type: bool
    default: true
  peer2peer:
    description: The source's libvirtd drives the migration and connects to O(destination_uri) itself; V(false) - this
      module connects to both.
    type: bool
    default: true
  copy_storage:
    description:
      - Copy the disks while migrating (no shared storage) - V(all) every block, V(incremental) only what differs from a
        backing image the destination has. libvirt creates the destination volumes, in a pool of the same name.
    type: str
    choices: [all, incremental]
  migrate_uri:
    description: Where the destination's QEMU listens for the data (for example C(tcp://10.0.0.12:49152)).
    type: str
  bandwidth:
    description: Bandwidth limit, MiB/s.
    type: int
  auto_converge:
    description: Slow the guest's vCPUs down when its memory changes faster than it can be copied.
    type: bool
    default: false
  postcopy:
    description: Allow switching to post-copy (O(timeout_action=postcopy)).
    type: bool
    default: false
  compressed:
    description: Compress the memory pages sent.
    type: bool
    default: false
  max_downtime:
    description: The longest pause allowed at the switch-over, in milliseconds.
    type: int
  timeout:
    description: Seconds after which O(timeout_action) is taken.
    type: int
  timeout_action:
    description: What to do at O(timeout) - V(abort) (the guest stays on the source) or V(postcopy).
    type: str
    choices: [abort, postcopy]
    default: abort
  unsafe:
    description: Migrate although libvirt calls it unsafe (disks with a cache mode other than none).
    type: bool
    default: false
  tls:
    description:
      - Encrypt the migration stream itself (libvirt's C(VIR_MIGRATE_TLS)) - the guest's memory and, with
        O(copy_storage), its disks. Without it they cross in the clear even between hypervisors whose libvirt
        connections use TLS.
      - Both QEMUs need their TLS files (C(default_tls_x509_cert_dir), C(/etc/pki/qemu) - the
        M(kvmfleet.libvirt.libvirtd_config) module installs them from its O(kvmfleet.libvirt.libvirtd_config#module:tls)
        files); a live migration fails before the guest moves when they are missing.
    type: bool
    default: false
seealso:
  - module: kvmfleet.libvirt.host_info
"""

EXAMPLES = r"""
- name: Move web01 to hv02, live
  kvmfleet.libvirt.migrate:
    uri: qemu+tls://hv01.example.com/system
    name: web01
    destination_uri: qemu+tls://hv02.example.com/system
    bandwidth: 500
    auto_converge: true
    timeout: 300
  register: moved

- name: Without shared storage, copying the disks
  kvmfleet.libvirt.migrate:
    uri: qemu+ssh://root@hv01/system
    name: db01
    destination_uri: qemu+ssh://root@hv02/system
    copy_storage: all
"""

RETURN = r"""
actions:
  description: What was (or in check mode would be) moved.
  returned: always
  type: list
  elements: str
  sample: ["live migration of web01 from hv1 to hv2"]
preflight:
  description: The pre-flight verdict when it passed (its problems are the failure message otherwise).
  returned: always
  type: list
  elements: str
  sample: ["the destination has network default (active)", "the disks are on shared storage"]
progress:
  description: The completed migration's statistics (bytes total, processed, remaining; downtime and time in ms).
  returned: after a live migration
  type: dict
  sample: {"data_total_bytes": 270000000, "data_processed_bytes": 268000000, "data_remaining_bytes": 0,
           "memory_total_bytes": 268435456, "downtime_ms": 35, "time_elapsed_ms": 1850}
stage:
  description: On failure, where it failed - V(preflight) (nothing was tried; RV(problems) lists why) or V(migration)
    (tried and failed or timed out; the guest runs on, on the source).
  returned: failure
  type: str
  sample: preflight
code:
  description:
    - On failure, what failed, for playbooks to decide on (never the message) - V(preflight) (the pre-flight found
      problems; nothing moved), V(migration_failed) (the migration was tried and failed; the guest stays on the
      source), V(invalid_option), V(refused) (a copy on both hypervisors), V(unreachable), V(libvirt_error).
  returned: failure
  type: str
  sample: preflight
problems:
  description: The pre-flight's problems, one sentence each.
  returned: failure at the pre-flight
  type: list
  elements: str
  sample: ["network lab is not defined on qemu+tls://hv2.example.com/system"]
problem_kinds:
  description:
    - The kind of each of RV(problems), in the same order - V(same_host), V(network_missing), V(network_inactive),
      V(pool_missing), V(pool_inactive), V(disk_not_shared), V(disk_unsafe_cache), V(memory_short),
      V(cpu_incompatible), V(arch_missing) (no emulator for the guest's architecture there), V(kvm_missing) (a KVM
      guest, and no KVM for its architecture there).
  returned: failure at the pre-flight
  type: list
  elements: str
  sample: ["disk_not_shared"]
origin:
  description: The guest's recorded home afterwards (V(null) when it is home or has none).
  returned: success
  type: dict
  sample: {"uuid": "5ca1ab1e-0000-4000-8000-000000000001", "uri": "qemu+tcp://192.168.250.11/system", "host": "hv1",
           "since": "2026-12-02T04:00:00Z"}
source_state:
  description: The guest on the source afterwards (V(absent) once it has moved).
  returned: always
  type: str
  sample: absent
destination_state:
  description: The guest on the destination afterwards.
  returned: always
  type: str
  sample: running
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.apply import MigrateRunner, check_params
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.spec import migrate_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(migrate_argument_spec(), MigrateRunner, lambda params: "guest %s" % params["name"], precheck=check_params)


if __name__ == "__main__":
    main()
