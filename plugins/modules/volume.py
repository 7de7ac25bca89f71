#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: Declare a libvirt storage volume - create, overlay, clone, import, grow, delete
version_added: 0.1.0
description:
  - Creates a volume in a storage pool, empty (O(size), O(format)), as a thin qcow2 overlay on a base image
    (O(backing)), as a full copy of another volume (O(clone)), or from an image file (O(src)) or URL (O(url) with
    O(checksum)).
  - An existing volume is grown to O(size) when it is smaller. A smaller O(size) is refused with the current and the
    requested sizes; volumes are never shrunk. Its format and backing image cannot change; asking for another one
    fails and says so.
  - O(clone), O(src) and O(url) are used only to create the volume; an existing volume is not compared with them (its
    content is not read again). O(backing) given for an existing volume must be the backing image it has.
  - Imports stream the image through libvirt's stream API a chunk at a time; a URL is downloaded to a temporary file
    on the managed host while it is hashed, and the volume is created only after the checksum matched.
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode makes the same checks and plan as a real run and reports the same C(changed) and diff; it writes
        nothing and does not download O(url) (a bad checksum of a URL shows only in a real run; one of O(src) shows in
        check mode too).
      - In check mode a pool that does not exist or is not active yet (an earlier task of the play makes it) is
        assumed; the volume is reported as to be created, with a warning, and the diff shows the declared size and
        format only. Likewise a O(backing) image or a O(clone) origin that does not exist yet.
  diff_mode:
    support: full
    details:
      - The diff is the volume at the spec level - state, capacity, format, backing, owner, group, mode - before and
        after.
options:
  pool:
    description: Name of the storage pool; it must be active.
    type: str
    required: true
  name:
    description: Name of the volume (the file name in a directory pool).
    type: str
    required: true
  state:
    description:
      - V(present) creates the volume if needed and grows it to O(size).
      - V(absent) deletes the volume and its data. A volume that is the backing image of another volume of the pool is
        refused. A volume that is a disk of a guest (defined or running) is refused, naming the guests, unless
        O(force=true). When the pool does not exist, there is nothing to delete.
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - Capacity, with its unit, for example V(20GiB) or V(512MiB). A bare number is refused (it meant MiB before
        version 0.2; every disk size in the collection now needs its unit).
      - Needed to create an empty volume. For an overlay, a clone or an import it defaults to the size of the base
        image, the volume cloned or the image, and may only be larger.
      - An existing volume smaller than O(size) is grown; a larger one is refused, never shrunk.
    type: raw
  format:
    description:
      - Image format. A new empty volume in a V(dir), V(fs) or V(netfs) pool defaults to V(qcow2); volumes of other
        pools are raw block devices. An overlay is always V(qcow2). A clone defaults to the format of the volume it
        copies (another format converts it). An import is what the image is; a declared format must agree.
      - libvirt labels raw data it recognises, such as an ISO image, by its content (C(iso)); V(raw) matches that.
    type: str
    choices: [qcow2, raw]
  backing:
    description:
      - Base image of a thin qcow2 overlay - the name of a volume in the same pool, or the absolute path of a volume of
        any pool. The base image is never written to.
    type: str
  clone:
    description: Create the volume as a full copy of this volume (its name in O(clone_pool), or an absolute path).
    type: str
  clone_pool:
    description: Pool of O(clone); defaults to O(pool).
    type: str
  src:
    description: Import this image file, a path on the managed host (qcow2 or raw).
    type: path
  url:
    description: Import the image at this http, https or ftp URL (qcow2 or raw). Needs O(checksum).
    type: str
  checksum:
    description:
      - Checksum of O(url) or O(src) as C(ALGORITHM:HEX), for example C(sha256:9f86d0...). A mismatch fails the task and
        creates nothing.
    type: str
  validate_certs:
    description: Verify the TLS certificate of an https O(url).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the O(url) server to respond.
    type: int
    default: 30
  mode:
    description:
      - Permissions of the volume file, in octal (V('0640'); quote it in YAML, or write C(0640) unquoted).
      - Set when the volume is created. libvirt cannot change the permissions of an existing volume; for a file volume
        on the host the module runs on (a local O(uri)) the module changes them itself, otherwise it fails and says so.
      - While a guest runs from the volume, libvirt's dynamic ownership gives it to the qemu user; the module then
        leaves O(owner), O(group) and O(mode) of that volume alone and warns.
      - A volume that is a symlink is refused (its owner and mode are those of what it points to); the module never
        follows a link when it changes owner or mode.
    type: raw
  owner:
    description: Owner of the volume file, a user name (resolved on the managed host) or a uid. See O(mode).
    type: raw
  group:
    description: Group of the volume file, a group name (resolved on the managed host) or a gid. See O(mode).
    type: raw
  force:
    description:
      - With O(state=absent), delete the volume even when guests still have it as a disk (they are then left pointing
        at a missing file).
    type: bool
    default: false
notes:
  - To grow the disk of a running guest, declare the size on the guest's disk (M(kvmfleet.libvirt.domain)
    C(disks[].size)); it is resized live there. A qcow2 image in use by a running guest cannot be resized here.
  - The temporary file of a URL import is in the module's remote temporary directory; it needs room for the image.
seealso:
  - module: kvmfleet.libvirt.pool
  - module: kvmfleet.libvirt.domain
"""

EXAMPLES = r"""
- name: An empty 20 GiB qcow2 volume
  kvmfleet.libvirt.volume:
    pool: images
    name: web01-data.qcow2
    size: 20GiB

- name: A base image from the distribution, checked
  kvmfleet.libvirt.volume:
    pool: images
    name: debian-12-base.qcow2
    url: https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2
    checksum: "sha512:{{ debian_image_sha512 }}"

- name: A guest's root disk as a thin overlay on the base image, larger than the base
  kvmfleet.libvirt.volume:
    pool: images
    name: web01-root.qcow2
    backing: debian-12-base.qcow2
    size: 40GiB

- name: A full copy of a golden image
  kvmfleet.libvirt.volume:
    pool: images
    name: db01-root.qcow2
    clone: golden.qcow2
    clone_pool: templates

- name: Import an ISO already on the host, readable by the qemu user
  kvmfleet.libvirt.volume:
    pool: isos
    name: installer.iso
    src: /root/installer.iso
    format: raw
    owner: libvirt-qemu
    mode: "0644"

- name: Grow a volume (shrinking is refused)
  kvmfleet.libvirt.volume:
    pool: images
    name: web01-data.qcow2
    size: 30GiB

- name: Delete a volume and its data
  kvmfleet.libvirt.volume:
    pool: images
    name: scratch.qcow2
    state: absent
"""

RETURN = r"""
changed:
  description: Whether anything changed (or would, in check mode).
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
  sample: ["create web01-root.qcow2 as a qcow2 overlay on /srv/images/debian-12-base.qcow2", "grow web01-root.qcow2 to 40GiB"]
volume_path:
  description: Path of the volume (predicted for a new file volume in check mode).
  returned: when state is present
  type: str
  sample: /srv/images/web01-root.qcow2
capacity:
  description: Capacity in bytes (null in check mode for a URL import without O(size)).
  returned: when state is present
  type: int
  sample: 42949672960
format:
  description: Format of the volume as libvirt reports it.
  returned: when state is present
  type: str
  sample: qcow2
backing:
  description: Path of the backing image, or null.
  returned: when state is present
  type: str
  sample: /var/lib/libvirt/images/debian-12-base.qcow2
removed:
  description: Path of the volume deleted with O(state=absent), or null when there was none.
  returned: when state is absent
  type: str
  sample: /var/lib/libvirt/images/scratch.qcow2
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.apply import VolumeRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._volume.spec import MUTUALLY_EXCLUSIVE, REQUIRED_BY, argument_spec


def main():
    module_main(argument_spec(), VolumeRunner, lambda params: "volume %s/%s" % (params["pool"], params["name"]),
                mutually_exclusive=MUTUALLY_EXCLUSIVE, required_by=REQUIRED_BY)


if __name__ == "__main__":
    main()
