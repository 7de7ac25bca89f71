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
requirements:
  - libvirt-python >= 9.0 on the managed host
  - a running libvirt daemon reachable at O(uri)
"""
