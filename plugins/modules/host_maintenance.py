#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_maintenance
short_description: Cordon a hypervisor for maintenance, or put it back in service
version_added: 0.1.0
description:
  - O(state=present) cordons the hypervisor behind O(uri) - it is in maintenance. While it is, no placement puts
    guests on it (C(playbooks/evacuate.yml), C(playbooks/rebalance.yml) and the C(kvmfleet.libvirt.placement) filters),
    and M(kvmfleet.libvirt.domain) and M(kvmfleet.libvirt.fleet) create no guest there (a guest that is absent
    from a cordoned host may run elsewhere, evacuated; a second copy would share its disks). Guests that exist there
    are still converged.
  - O(state=absent) puts the host back in service.
  - The mark is kept in the hypervisor's own libvirt, so any controller sees it - libvirt has no host metadata, so it
    is a persistent network named C(kvmfleet-maintenance) that is never started, carrying the reason and the time.
    M(kvmfleet.libvirt.host_info) reports it as RV(maintenance).
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
  state:
    description: V(present) - cordoned (in maintenance); V(absent) - in service.
    type: str
    choices: [present, absent]
    default: present
  reason:
    description: Why, shown by M(kvmfleet.libvirt.host_info). A cordoned host keeps its reason when this is not given;
      another reason updates it (the time it was cordoned stays).
    type: str
"""

EXAMPLES = r"""
- name: Cordon hv01 before its kernel update
  kvmfleet.libvirt.host_maintenance:
    uri: qemu+tls://hv01.example.com/system
    reason: kernel update

- name: Back in service
  kvmfleet.libvirt.host_maintenance:
    uri: qemu+tls://hv01.example.com/system
    state: absent
"""

RETURN = r"""
maintenance:
  description: The host's mark afterwards (in check mode, what it would be).
  returned: success
  type: dict
  sample: {"cordoned": true, "reason": "kernel update", "since": "2026-12-02T04:00:00Z"}
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.maintenance import MaintenanceRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.spec import maintenance_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(maintenance_argument_spec(), MaintenanceRunner, lambda params: "host %s" % params["uri"])


if __name__ == "__main__":
    main()
