#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: libvirtd_config
short_description: Settings of libvirtd and QEMU (libvirtd.conf, qemu.conf) and libvirt's TLS files
version_added: 0.1.0
description:
  - Sets the keys it is given in C(libvirtd.conf) and C(qemu.conf), in place; every other line and comment stays as it
    is, and values are compared as libvirt reads them (V(false) is C(0)). The file says at its top that Ansible
    manages the keys it sets.
  - Installs the CA certificate, the server certificate and key (and a client pair, for peer-to-peer migration over
    TLS) where libvirt reads them, with the modes libvirt needs (keys C(0600)), after checking that each certificate
    belongs to its key and is signed by the CA. Nothing is written when a check fails.
  - Installs the same files where QEMU reads them for a migration stream over TLS (C(qemu/ca-cert.pem),
    C(qemu/server-cert.pem), C(qemu/server-key.pem), C(qemu/client-cert.pem), C(qemu/client-key.pem) under O(pki_dir),
    qemu.conf's C(default_tls_x509_cert_dir)), so that M(kvmfleet.libvirt.migrate) with O(kvmfleet.libvirt.migrate#module:tls=true)
    works between hosts set up by this module.
  - Refuses C(listen_tcp) (plain TCP, unencrypted) unless O(allow_insecure_tcp=true), and C(listen_tls) without
    certificates.
  - Does not restart the daemon; RV(restart_required) says when it needs one (the C(hypervisor) role restarts it
    when no guest has a job in progress).
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
      - Configuration files before and after; keys and certificates are never shown.
options:
  libvirtd:
    description:
      - Keys of C(libvirtd.conf) (for example C(host_uuid), C(listen_tls), C(unix_sock_group), C(max_clients)) and
        their values - integers, booleans (written as C(1)/C(0)), strings or lists of strings.
    type: dict
    default: {}
  qemu:
    description:
      - Keys of C(qemu.conf) (for example C(migration_address), C(migration_port_min), C(migration_port_max)).
    type: dict
    default: {}
  lockd:
    description:
      - Keys of C(qemu-lockd.conf), the lock manager's settings for QEMU guests (for example C(file_lockspace_dir), a
        directory on the shared storage, or C(auto_disk_leases)). The lock manager itself is the O(qemu) key
        C(lock_manager) (V(lockd)), run by C(virtlockd).
    type: dict
    default: {}
  tls:
    description: The TLS files, as PEM text (for example from a vault through P(ansible.builtin.file#lookup)).
    type: dict
    suboptions:
      ca_cert:
        description: The CA certificate, installed as C(CA/cacert.pem) under O(pki_dir).
        type: str
        required: true
      server_cert:
        description: The server certificate, C(libvirt/servercert.pem).
        type: str
        required: true
      server_key:
        description: The server certificate's private key, C(libvirt/private/serverkey.pem), mode C(0600).
        type: str
        required: true
      client_cert:
        description: A client certificate for this host's own outgoing connections (peer-to-peer migration).
        type: str
      client_key:
        description: Its private key, C(libvirt/private/clientkey.pem), mode C(0600).
        type: str
  allow_insecure_tcp:
    description: Allow C(listen_tcp) (plain, unencrypted TCP). Only for isolated test networks.
    type: bool
    default: false
  daemon_conf:
    description:
      - The daemon's file that O(libvirtd) goes to - C(libvirtd.conf) for the monolithic daemon; with the modular daemons,
        C(virtproxyd.conf) for the listening and TLS keys, C(virtqemud.conf) for the others.
    type: str
    default: libvirtd.conf
  config_dir:
    description: Where C(libvirtd.conf) and C(qemu.conf) are.
    type: path
    default: /etc/libvirt
  pki_dir:
    description: The root of libvirt's TLS files.
    type: path
    default: /etc/pki
requirements:
  - cryptography (Python; ansible-core's own dependency) on the hypervisor, when O(tls) is given
  - lxml >= 4.9 on the hypervisor
seealso:
  - module: kvmfleet.libvirt.host_tuning
  - name: libvirtd TLS setup
    description: Where libvirt reads its certificates.
    link: https://libvirt.org/kbase/tlscerts.html
"""

EXAMPLES = r"""
- name: A fleet's libvirtd - its own host UUID, a socket group, migration over TLS
  kvmfleet.libvirt.libvirtd_config:
    libvirtd:
      host_uuid: 6f3c1c4e-6d0a-4e0e-9d8e-1a2b3c4d5e6f
      unix_sock_group: libvirt
      listen_tls: true
    qemu:
      migration_address: 10.0.0.11
      migration_port_min: 49152
      migration_port_max: 49215
    tls:
      ca_cert: "{{ lookup('ansible.builtin.file', 'pki/ca.pem') }}"
      server_cert: "{{ lookup('ansible.builtin.file', 'pki/hv01.pem') }}"
      server_key: "{{ lookup('ansible.builtin.file', 'pki/hv01-key.pem') }}"
  register: libvirtd
"""

RETURN = r"""
restart_required:
  description: Whether libvirtd must restart to read what was written.
  returned: always
  type: bool
  sample: true
files:
  description: The files written (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: ["/etc/libvirt/libvirtd.conf"]
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.daemon import DaemonConfigRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.spec import daemon_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(daemon_argument_spec(), DaemonConfigRunner, lambda params: "libvirtd's configuration", connect=False)


if __name__ == "__main__":
    main()
