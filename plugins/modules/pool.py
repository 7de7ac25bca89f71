#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pool
short_description: Declare a libvirt storage pool and converge it idempotently
version_added: 0.1.0
description:
  - Defines, builds, starts, stops and removes libvirt storage pools of type V(dir), V(fs), V(netfs), V(logical),
    V(disk), V(iscsi) and V(rbd).
  - Reads the pool's persistent XML, applies the declared options to it and redefines the pool only when a declared
    value differs (values are compared after normalisation, never as XML text). UUID, permissions and elements that
    were not declared are kept.
  - A new definition of an active pool applies when the pool is next started; the result says
    RV(restart_required).
  - O(state=absent) stops and undefines the pool and leaves its contents on disk. Deleting the volumes and the
    pool's storage needs O(remove_storage=true); the result names what was deleted.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode computes the same plan as a real run and reports the same C(changed) and diff; it calls nothing
        that writes. It does not start an inactive pool to list the volumes O(remove_storage) would delete.
  diff_mode:
    support: full
    details:
      - The diff is the pool's persistent XML before and after (without the runtime sizes).
options:
  name:
    description: Name of the pool.
    type: str
    required: true
  type:
    description:
      - Pool type. Needed to define a new pool; an existing pool's type cannot change (the task fails and says so).
      - Which options each type takes, and needs for a new pool (in brackets, optional), -
        V(dir) C(path);
        V(fs) C(path), C(source.devices) (one block device), [C(source.format)];
        V(netfs) C(path), C(source.hosts) (one), C(source.dir), [C(source.format)];
        V(logical) C(source.name) (the volume group), [C(source.devices), C(path), C(source.format)];
        V(disk) C(path), C(source.devices) (one), [C(source.format)];
        V(iscsi) C(path), C(source.hosts) (one portal), C(source.devices) (one target IQN),
        [C(source.initiator), C(source.auth)];
        V(rbd) C(source.name) (the Ceph pool), C(source.hosts) (monitors), [C(source.auth)].
        Every type but V(rbd) also takes O(mode), O(owner), O(group).
    type: str
    choices: [dir, fs, netfs, logical, disk, iscsi, rbd]
  path:
    description:
      - Target path. For V(dir) the directory of the volumes, for V(fs) and V(netfs) the mount point, for V(logical)
        the volume group's C(/dev) directory, for V(disk) and V(iscsi) where libvirt looks for the devices (for example
        V(/dev) or V(/dev/disk/by-path)).
      - With a local O(uri), a path that exists and is not a directory is refused for V(dir), V(fs) and V(netfs).
    type: str
  source:
    description: Where the pool's storage comes from.
    type: dict
    suboptions:
      devices:
        description:
          - Block devices (V(fs), V(disk), V(logical)) or the target IQN (V(iscsi)). Compared as a set.
        type: list
        elements: str
      hosts:
        description:
          - Servers (V(netfs)), the iSCSI portal (V(iscsi)) or the Ceph monitors (V(rbd)), in order. Each item is a
            host name or a dict with C(name) and C(port).
        type: list
        elements: raw
      dir:
        description: Exported directory of a V(netfs) pool.
        type: str
      name:
        description: Volume group name (V(logical)) or Ceph pool name (V(rbd)).
        type: str
      format:
        description:
          - Source format. V(fs) - a file system type such as V(ext4) or V(xfs) (what O(build) makes);
            V(netfs) - V(nfs), V(cifs), V(glusterfs) or V(auto); V(logical) - V(lvm2);
            V(disk) - a partition table type such as V(gpt) or V(dos).
        type: str
      initiator:
        description: Initiator IQN of an V(iscsi) pool.
        type: str
      auth:
        description: CHAP (V(iscsi)) or cephx (V(rbd)) authentication; the key is in a libvirt secret.
        type: dict
        suboptions:
          username:
            description: User name.
            type: str
            required: true
          secret:
            description: The libvirt secret holding the key, by UUID or by usage name.
            type: str
            required: true
  mode:
    description:
      - Permissions of the target directory, in octal (V('0755'); quote it in YAML, or write C(0755) unquoted).
      - The target directory's own mode. libvirt rewrites a started pool's definition from its directory at every start
        and refresh, so for a pool of type V(dir), V(fs) or V(netfs) on the host the module runs on (a local O(uri)),
        O(mode), O(owner) and O(group) are converged on the directory itself, an existing one too, whenever the pool is
        (or becomes) active. The change shows in the diff (the definition's C(<permissions>)), in RV(changes) and in
        RV(actions) (C(set mode of DIR to 0750)), in check mode alike. A symlinked target path is refused; the
        directory is changed through a descriptor that never follows a link.
      - For an inactive pool (O(state=inactive)) only the definition holds them.
    type: raw
  owner:
    description: Owner of the target directory, a user name (resolved on the managed host) or a uid.
    type: raw
  group:
    description: Group of the target directory, a group name (resolved on the managed host) or a gid.
    type: raw
  state:
    description:
      - V(active) defines the pool and starts it. V(inactive) defines it and stops it if it runs.
      - V(present) defines it (or converges its definition) and leaves it running or stopped as it is; a new pool is
        defined, not started (as C(community.libvirt.virt_pool) does with V(present)). RV(state) says which it is.
      - V(absent) stops and undefines it. Volumes and data stay on disk unless O(remove_storage=true).
    type: str
    choices: [active, inactive, present, absent]
    default: active
  autostart:
    description: Start the pool when libvirt starts. Left as it is when not given.
    type: bool
  build:
    description:
      - Build the pool's storage when this task defines or starts the pool - create the directory (V(dir), and the
        mount point of V(fs) and V(netfs)), make the file system (V(fs)), write a partition table (V(disk)), or create
        the volume group (V(logical)).
      - Never overwrites. A device that already holds a file system, partition table or volume group is left as it is
        (libvirt's C(VIR_STORAGE_POOL_BUILD_NO_OVERWRITE)), and the pool is started on it.
      - Build does not only create a missing directory; on an existing one it sets the declared O(mode), O(owner) and
        O(group) too (see O(mode)). A target path that is a symlink is refused, since build would change what it
        points to.
    type: bool
    default: false
  refresh:
    description:
      - Rescan the volumes of an active pool (after files were added behind libvirt's back). This changes libvirt's
        view, not the configuration, so it does not count as a change; it is skipped in check mode.
    type: bool
    default: false
  remove_storage:
    description:
      - With O(state=absent), also delete every volume of the pool and the pool's storage (the target directory, or
        the volume group of a V(logical) pool). An inactive pool is started to list its volumes.
      - The result lists what was deleted in RV(removed_volumes) and RV(removed_target).
    type: bool
    default: false
notes:
  - Checks of the host's paths (a target path that is a file, a missing directory without O(build), a missing device)
    are made only when O(uri) names this host; libvirt checks them for remote hosts.
  - This libvirt may lack backends for some types (for example V(rbd)); defining such a pool fails with libvirt's message.
seealso:
  - module: kvmfleet.libvirt.volume
  - module: kvmfleet.libvirt.host_info
"""

EXAMPLES = r"""
- name: A directory pool, created with its directory, started at boot
  kvmfleet.libvirt.pool:
    name: images
    type: dir
    path: /srv/images
    mode: "0711"
    build: true
    autostart: true

- name: A pool on a file system of its own (made by build only when the device is empty)
  kvmfleet.libvirt.pool:
    name: fast
    type: fs
    path: /srv/fast
    source:
      devices: [/dev/nvme1n1]
      format: xfs
    build: true

- name: An NFS export
  kvmfleet.libvirt.pool:
    name: shared
    type: netfs
    path: /srv/shared
    source:
      hosts: [nas.example.com]
      dir: /export/vms
      format: nfs
    build: true

- name: An LVM volume group
  kvmfleet.libvirt.pool:
    name: vg-guests
    type: logical
    source:
      name: vg_guests

- name: A Ceph RBD pool
  kvmfleet.libvirt.pool:
    name: ceph
    type: rbd
    source:
      name: libvirt-pool
      hosts:
        - {name: mon1.example.com, port: 6789}
        - mon2.example.com
      auth:
        username: libvirt
        secret: client.libvirt secret

- name: Rescan after copying images into the directory
  kvmfleet.libvirt.pool:
    name: images
    refresh: true

- name: Remove the pool, keep its volumes on disk
  kvmfleet.libvirt.pool:
    name: images
    state: absent

- name: Remove the pool and everything in it
  kvmfleet.libvirt.pool:
    name: scratch
    state: absent
    remove_storage: true
  register: removed
"""

RETURN = r"""
changed:
  description: Whether anything changed (or would, in check mode).
  returned: always
  type: bool
  sample: true
created:
  description: Whether the pool was defined by this task.
  returned: unless state is absent
  type: bool
  sample: true
changes:
  description: Each definition change, as C(field - before -> after).
  returned: unless state is absent
  type: list
  elements: str
  sample: ["mode: 493 -> 457"]
actions:
  description: What the task did (or would do) - define, redefine, build, start, stop, autostart, delete storage, undefine.
  returned: always
  type: list
  elements: str
  sample: ["define", "build", "start", "autostart on"]
restart_required:
  description: Whether the active pool runs with an older definition; the new one applies when it is next started.
  returned: unless state is absent
  type: bool
  sample: false
refreshed:
  description: Whether the pool's volumes were rescanned (O(refresh)).
  returned: unless state is absent
  type: bool
  sample: false
state:
  description: State of the pool after the task (V(active), V(inactive) or V(absent); with O(state=present), the one it is in).
  returned: always
  type: str
  sample: active
autostart:
  description: Whether the pool starts with libvirt.
  returned: unless state is absent
  type: bool
  sample: true
type:
  description: Pool type.
  returned: unless state is absent
  type: str
  sample: dir
target_path:
  description: Target path (null for pools without one, such as rbd).
  returned: unless state is absent
  type: str
  sample: /srv/images
uuid:
  description: UUID of the pool (null for a pool that check mode would define).
  returned: unless state is absent
  type: str
  sample: 192b3773-940e-4a5d-86c1-4bd2a9e0c6f1
removed_volumes:
  description: Paths of the volumes deleted with O(remove_storage=true).
  returned: when state is absent
  type: list
  elements: str
  sample: ["/srv/scratch/a.qcow2"]
removed_target:
  description: The storage deleted with O(remove_storage=true) - the target directory, or C(volume group NAME).
  returned: when state is absent
  type: str
  sample: /srv/scratch
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.apply import PoolRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._pool.spec import argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(argument_spec(), PoolRunner, lambda params: "pool %s" % params["name"])


if __name__ == "__main__":
    main()
