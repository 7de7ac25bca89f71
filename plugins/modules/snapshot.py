#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot
short_description: A guest's snapshot - taken, reverted to, deleted, and a rolling set kept
version_added: 0.1.0
description:
  - Takes a snapshot of a guest by name (O(state=present)); an existing snapshot of that name is left as it is and
    reported unchanged. What the task asks for that it differs in (description, memory, location) is reported as a
    warning and in RV(differences), never silently ignored - a snapshot's content cannot be edited.
  - Reverts the guest to a snapshot (O(state=current)) and says what that does to the running state
    (RV(running_state)). A revert happens when the snapshot is not the current one, or when the guest's disks were
    written after the snapshot was taken or last reverted to (the disk files' modification times against a time the
    module records in the guest's metadata), or when the guest is not in the state the revert leaves it in; so a
    rollback task reverts once and a second run changes nothing. On a remote URI (the files cannot be read) it always
    reverts.
  - Deletes a snapshot (O(state=absent)); one with descendants is refused unless O(children=true) (the subtree) or
    O(children_only=true). Deleting never removes the guest's base disk; an external snapshot is merged back into its
    disks (block commit) or the deletion is refused with the reason, and the module checks afterwards that the guest
    points at no missing file.
  - O(keep) with O(prefix) - a rolling set - deletes the oldest snapshots whose names start with O(prefix) beyond
    O(keep), after taking this one.
  - Every snapshot document validates against libvirt's C(domainsnapshot.rng) before libvirt sees it.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Says what would be taken, reverted to or deleted (RV(actions), RV(deleted)) and changes nothing.
  diff_mode:
    support: full
    details:
      - The guest's snapshot names before and after.
options:
  guest:
    description: The guest's name.
    type: str
    required: true
  name:
    description:
      - The snapshot's name. Required, except with O(keep) alone (then the task only deletes the oldest).
    type: str
  state:
    description:
      - V(present) takes it if there is none of that name; V(absent) deletes it; V(current) reverts the guest to it.
    type: str
    choices: [present, absent, current]
    default: present
  description:
    description: A description stored with a new snapshot.
    type: str
  memory:
    description:
      - Include the running state (an internal snapshot of a running guest always does). V(null) - with the memory of
        a running guest, without for a shut-off one. V(true) on a shut-off guest is refused.
    type: bool
  disk_only:
    description: Only the disks, not the memory (with O(location=external), always).
    type: bool
    default: false
  location:
    description:
      - V(internal) - inside each qcow2 disk (a raw disk is refused, naming it); V(external) - an overlay file per disk
        next to it, named C(<disk stem>.<snapshot>.qcow2), that the guest writes to from then on (disk only).
      - V(null) - internal for a new snapshot; an existing snapshot is compared with it only when given.
    type: str
    choices: [internal, external]
  quiesce:
    description: Freeze the guest's file systems through the guest agent while the snapshot is taken; fails clearly when
      the agent does not answer.
    type: bool
    default: false
  atomic:
    description: All disks or none (libvirt's atomic flag).
    type: bool
    default: false
  after_revert:
    description: With O(state=current), leave the guest V(running) or V(paused) after the revert, whatever the
      snapshot's own state.
    type: str
    choices: [running, paused]
  children:
    description: With O(state=absent), delete the snapshot's descendants too.
    type: bool
    default: false
  children_only:
    description: With O(state=absent), delete only the snapshot's descendants and keep it.
    type: bool
    default: false
  keep:
    description: Keep this many snapshots whose names start with O(prefix) - the oldest beyond it are deleted (after this
      one is taken). External ones are left, with a warning.
    type: int
  prefix:
    description: The name prefix O(keep) counts; O(name) must start with it.
    type: str
notes:
  - libvirt 9.0 cannot revert external snapshots; the module refuses that before libvirt is asked.
seealso:
  - module: kvmfleet.libvirt.snapshot_info
"""

EXAMPLES = r"""
- name: A rolling pre-upgrade snapshot - take today's, keep the last three
  kvmfleet.libvirt.snapshot:
    guest: db01
    name: "pre-upgrade-{{ now(utc=true, fmt='%Y%m%d') }}"
    prefix: pre-upgrade-
    keep: 3
    description: before the database upgrade

- name: The upgrade went wrong - back to the snapshot, running
  kvmfleet.libvirt.snapshot:
    guest: db01
    name: pre-upgrade-20261202
    state: current
    after_revert: running

- name: An external disk-only snapshot (an overlay per disk), file systems frozen through the agent
  kvmfleet.libvirt.snapshot:
    guest: web01
    name: backup
    location: external
    quiesce: true

- name: Merge it back and delete it
  kvmfleet.libvirt.snapshot:
    guest: web01
    name: backup
    state: absent
"""

RETURN = r"""
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ["take internal disk-only snapshot pre-upgrade-20261202", "delete snapshot pre-upgrade-20261120 (keep 3 with prefix pre-upgrade-)"]
snapshot:
  description: The snapshot as M(kvmfleet.libvirt.snapshot_info) reports it (absent in check mode for a new one).
  returned: when it exists
  type: dict
  sample: {"name": "pre-upgrade-20261202", "description": null, "parent": null, "creation_time": 1796288367,
          "state": "shutoff", "memory": false, "location": "internal", "current": true,
          "disks": [{"dev": "vda", "snapshot": "internal", "file": null}]}
deleted:
  description: The snapshots deleted (or that would be).
  returned: always
  type: list
  elements: str
  sample: ["pre-upgrade-20261120"]
differences:
  description: What the task asked for that the existing snapshot of that name differs in.
  returned: always
  type: list
  elements: str
  sample: ["memory: false (asked: true)"]
running_state:
  description: With O(state=current), what the revert does to the running state.
  returned: when a revert is (or would be) made
  type: str
  sample: "the snapshot has no memory state: the guest (now running) is shut off with the snapshot's disks"
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.apply import SnapshotRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.model import normalize_snapshot
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._snapshot.spec import argument_spec


def main():
    module_main(argument_spec(), SnapshotRunner, lambda params: "guest %s" % params["guest"], precheck=normalize_snapshot)


if __name__ == "__main__":
    main()
