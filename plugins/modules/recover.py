#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: recover
short_description: Restart a guest of a lost hypervisor on this one, once the evidence says it is safe
version_added: 0.1.0
description:
  - Defines and starts O(guest) - the fleet's own description of it, never a definition read from the lost host - on
    the hypervisor behind O(uri), after checking, and reporting as RV(evidence), that
  - the lost hypervisor (O(lost_uri)) does not answer;
  - it cannot still run the guest - it was fenced (O(fenced=true), the user confirmed it is off or a fence command
    succeeded) or the survivors use libvirt's lock manager (O(lock_manager=true), virtlockd with a lockspace on the
    shared storage, so a disk still held by a live QEMU cannot be opened by a second one);
  - the guest runs on no hypervisor of O(reachable_uris) (one that does is left alone - no change - so each guest
    starts exactly once);
  - every disk is already on this hypervisor (shared storage - none would be created empty), with every network and
    pool the guest uses, and there is room (free memory less O(headroom_mib));
  - the disk locks are taken when it starts - a start the lock manager refuses leaves no definition behind.
  - The restarted guest records the lost hypervisor as its origin (M(kvmfleet.libvirt.domain_info) RV(kvmfleet.libvirt.domain_info#module:guests[].origin)),
    so C(playbooks/restore.yml) can bring it home once that host is back and its stale definitions are gone.
  - C(playbooks/recover.yml) places the guests of a lost hypervisor and runs this for each; see C(docs/migration.md).
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details: Gathers and reports the evidence; starts nothing.
  diff_mode:
    support: none
options:
  guest:
    description: The guest as M(kvmfleet.libvirt.fleet) lists it (the options of M(kvmfleet.libvirt.domain) that
      describe a guest, profiles already applied). Its O(kvmfleet.libvirt.domain#module:state) is taken as V(running).
    type: dict
    required: true
  lost_uri:
    description: The lost hypervisor's libvirt URI.
    type: str
    required: true
  lost_host:
    description: The lost hypervisor's name, for the messages and the origin record (default - O(lost_uri)).
    type: str
  reachable_uris:
    description: The URIs of the other hypervisors that answer, where the guest must not be running already.
    type: list
    elements: str
    default: []
  fenced:
    description: The lost hypervisor is known to be off (the user confirmed it, or a fence command succeeded).
    type: bool
    default: false
  fence_evidence:
    description: How it is known (shown in RV(evidence)).
    type: str
  lock_manager:
    description: The hypervisors use libvirt's lock manager with a lockspace on the shared storage; a guest whose
      disks a live QEMU still holds is refused at start. Without it, O(fenced=true) is required.
    type: bool
    default: false
  headroom_mib:
    description: Memory this hypervisor keeps free after the guest starts.
    type: int
    default: 256
"""

EXAMPLES = r"""
- name: Restart web02 of the lost hv02 on hv01 (hv02 is powered off)
  kvmfleet.libvirt.recover:
    uri: qemu+tls://hv01.example.com/system
    guest: "{{ hostvars['hv02'].guests_list | kvmfleet.libvirt.guest_profiles(hostvars['hv02'].guests_profiles)
              | selectattr('name', 'eq', 'web02') | first }}"
    lost_uri: qemu+tls://hv02.example.com/system
    lost_host: hv02
    reachable_uris: [qemu+tls://hv01.example.com/system, qemu+tls://hv03.example.com/system]
    fenced: true
    fence_evidence: powered off through its BMC
"""

RETURN = r"""
evidence:
  description:
    - Each check made, in order, whether it passed, and what was found - C(code) (V(lost_host_silent),
      V(cannot_run_it), V(runs_nowhere), V(fits_here), V(disk_locks)), C(check) (the same in words), C(ok),
      C(detail). Checks stop at the first that decides.
    - Returned with the failure too when the guest is refused.
  returned: always
  type: list
  elements: dict
  sample: [{"code": "lost_host_silent", "check": "lost host does not answer", "ok": true,
            "detail": "unable to connect to server at '192.168.250.12:16509': No route to host"}]
outcome:
  description: V(started) (or, in check mode, would be), V(left_alone) (it already runs on a reachable hypervisor),
    or V(not_recovered) (with the failure; RV(failed_check) says which check refused it).
  returned: always
  type: str
  sample: started
action:
  description: "The outcome in words - V(started on HOST), V(left alone: runs here), V(left alone: runs on URI), or
    V(refused)."
  returned: always
  type: str
  sample: "started on hv2"
runs_on:
  description: Where the guest already runs, when it is left alone.
  returned: when left alone
  type: str
  sample: qemu+tls://hv1.example.com/system
failed_check:
  description: The C(code) of the check that refused the guest.
  returned: failure
  type: str
  sample: fits_here
problem_kinds:
  description: What this hypervisor lacks for the guest, when that refused it (V(disk_would_be_created),
    V(disk_not_shared), V(network_missing), V(pool_missing), V(memory_short), ...).
  returned: failure at the check V(fits_here)
  type: list
  elements: str
  sample: ["network_missing"]
code:
  description: On failure, V(not_recovered) (the evidence says why), V(invalid_option), V(unreachable) or
    V(libvirt_error).
  returned: failure
  type: str
  sample: not_recovered
state:
  description: The guest's state after it was started.
  returned: when started
  type: str
  sample: running
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.recover import RecoverRunner, check_request
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.spec import recover_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(recover_argument_spec(), RecoverRunner, lambda params: "guest %s" % params["guest"].get("name"),
                precheck=check_request)


if __name__ == "__main__":
    main()
