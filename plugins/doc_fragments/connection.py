# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The libvirt connection option shared by every module."""

    DOCUMENTATION = r"""
options:
  uri:
    description:
      - libvirt connection URI of the hypervisor, as seen from the managed host.
      - The module runs on the managed host and opens this URI there with libvirt-python.
    type: str
    default: qemu:///system
  connect_timeout:
    description:
      - Seconds to wait for the connection to O(uri) (and any other hypervisor the module opens) before failing with the
        reason; a port that refuses, a host that does not answer (packets dropped), a TLS certificate file that is
        missing or names another host, an ssh host key that is not known.
      - A remote connection also sends keepalives, so a hypervisor that vanishes during a long wait (a shutdown, a
        migration) fails the task within about 20 seconds.
      - An ssh transport never prompts (libvirt's C(no_tty=1) is added unless the URI sets C(no_tty)). Give it a key (the
        URI's C(keyfile=PATH) or an ssh agent) and a known host key.
    type: int
    default: 30
attributes:
  action_group:
    description: Use C(group/kvmfleet.libvirt.all) in C(module_defaults) to set O(uri) and O(connect_timeout) once.
    support: full
    membership:
      - kvmfleet.libvirt.all
requirements:
  - libvirt-python >= 9.0 on the managed host
  - lxml >= 4.9 on the managed host
  - a running libvirt daemon reachable at O(uri)
"""
