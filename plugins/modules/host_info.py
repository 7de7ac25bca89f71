#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_info
short_description: Facts about a libvirt hypervisor in one call
version_added: 0.1.0
description:
  - Reads versions, CPU and NUMA topology, memory, hugepages, KVM usability, KSM, guest counts by
    state, networks and storage pools from a libvirt daemon.
  - Read-only; never changes the host. It reads through a read-only libvirt connection.
  - Works on every libvirt driver; what a driver cannot report (node memory stats, KSM, domain capabilities) is
    V(null) (unknown) instead of a failure.
author:
  - kvmfleet maintainers (@kvmfleet)
options:
  sample_seconds:
    description:
      - Also sample what the host and its running guests use over this many seconds (RV(load)), one bulk stats
        call every O(sample_interval) seconds, the way virt-manager graphs a guest. V(0) reads no samples.
      - The placement playbooks sample every hypervisor at once when they balance on measured use
        (C(rebalance_measure=used)).
    type: int
    default: 0
  sample_interval:
    description: Seconds between two samples (1 to O(sample_seconds)).
    type: int
    default: 2
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
  - kvmfleet.libvirt.attributes.INFO_MODULE
"""

EXAMPLES = r"""
- name: Read the hypervisor's facts
  kvmfleet.libvirt.host_info:
  register: host

- name: Refuse to go on without KVM
  ansible.builtin.assert:
    that: host.kvm.usable
    fail_msg: "KVM is not usable here: {{ host.kvm.reason }}"

- name: Read a remote hypervisor over SSH
  kvmfleet.libvirt.host_info:
    uri: qemu+ssh://root@hv01.example.com/system
"""

RETURN = r"""
hostname:
  description: Host name of the hypervisor.
  returned: success
  type: str
  sample: hv01
uri:
  description: The canonical URI of the connection.
  returned: success
  type: str
  sample: qemu:///system
libvirt_version:
  description: Version of the libvirt library the daemon runs.
  returned: success
  type: str
  sample: 9.0.0
hypervisor:
  description: Driver name of the hypervisor.
  returned: success
  type: str
  sample: QEMU
hypervisor_version:
  description: Version of the hypervisor (QEMU).
  returned: success
  type: str
  sample: 7.2.0
uuid:
  description: Host UUID as libvirt reports it.
  returned: success
  type: str
  sample: 6b4ff789-c4dc-4405-80fc-70d3957eaeab
cpu:
  description: Host CPU.
  returned: success
  type: dict
  sample: {"arch": "x86_64", "model": "EPYC-Rome", "vendor": "AMD", "sockets": 1, "dies": 1, "cores": 2, "threads": 1,
          "count": 2, "mhz": 2596, "numa_nodes": 1, "features": ["3dnowprefetch", "abm", "adx", "aes", "arat"]}
  contains:
    arch:
      description: Architecture.
      type: str
      sample: x86_64
    model:
      description: CPU model name libvirt matched.
      type: str
      sample: Skylake-Client-IBRS
    vendor:
      description: CPU vendor.
      type: str
      sample: AMD
    sockets:
      description: Sockets per NUMA node.
      type: int
      sample: 1
    dies:
      description: Dies per socket.
      type: int
      sample: 1
    cores:
      description: Cores per die.
      type: int
      sample: 2
    threads:
      description: Threads per core.
      type: int
      sample: 1
    count:
      description: Number of logical CPUs.
      type: int
      sample: 2
    mhz:
      description: Clock rate.
      type: int
      sample: 2596
    numa_nodes:
      description: Number of NUMA nodes.
      type: int
      sample: 1
    features:
      description: CPU feature flags.
      type: list
      elements: str
      sample: ["3dnowprefetch", "abm", "adx", "aes", "arat"]
numa_cells:
  description: NUMA cells with their memory, CPUs and hugepages (count per page size in KiB).
  returned: success
  type: list
  elements: dict
  sample: [{"id": 0, "memory_mib": 32000, "cpus": [0, 1], "hugepages": {"2048": 0, "1048576": 0}}]
memory:
  description:
    - Host memory in MiB. A value the driver cannot give is V(null) (libvirt's test driver has no node memory stats;
      the total then comes from the node's info).
  returned: success
  type: dict
  sample: {"total_mib": 24105, "free_mib": 23268, "buffers_mib": 14, "cached_mib": 615}
hugepages:
  description: Hugepages summed over NUMA cells, count per page size in KiB.
  returned: success
  type: dict
  sample: {"2048": 512, "1048576": 0}
iommu:
  description: Whether the host IOMMU is enabled (needed for PCI passthrough).
  returned: success
  type: bool
  sample: false
kvm:
  description: Whether KVM acceleration is usable, and if not, why.
  returned: success
  type: dict
  sample: {"usable": false, "reason": "libvirt offers only qemu guests for x86_64: /dev/kvm is missing or not usable"}
guest_domain_types:
  description: Domain types (kvm, qemu) libvirt offers per guest architecture.
  returned: success
  type: dict
  sample: {"x86_64": ["kvm", "qemu"], "i686": ["kvm", "qemu"]}
architectures:
  description:
    - Every guest architecture the hypervisor can run (from the capabilities' C(guest) entries), by name, and how.
    - C(acceleration) is C(kvm) when libvirt offers KVM guests of that architecture, C(emulation) when only QEMU's
      software emulation (TCG, domain type C(qemu)) runs them; C(domain_types) lists both as libvirt names them.
    - C(emulator) is the QEMU binary, C(wordsize) the bits of the architecture, C(machines) every machine type
      libvirt accepts for it (aliases and the versioned types), C(machine_aliases) each alias's canonical type
      (what libvirt stores in a guest that declares the alias).
  returned: success
  type: dict
  version_added: 0.2.0
  sample:
    x86_64:
      acceleration: kvm
      domain_types: [kvm, qemu]
      emulator: /usr/bin/qemu-system-x86_64
      wordsize: 64
      machines: [pc, pc-i440fx-7.2, pc-q35-7.2, q35]
      machine_aliases: {pc: pc-i440fx-7.2, q35: pc-q35-7.2}
    aarch64:
      acceleration: emulation
      domain_types: [qemu]
      emulator: /usr/bin/qemu-system-aarch64
      wordsize: 64
      machines: [virt, virt-7.2]
      machine_aliases: {virt: virt-7.2}
    s390x:
      acceleration: emulation
      domain_types: [qemu]
      emulator: /usr/bin/qemu-system-s390x
      wordsize: 64
      machines: [s390-ccw-virtio, s390-ccw-virtio-7.2]
      machine_aliases: {s390-ccw-virtio: s390-ccw-virtio-7.2}
ksm:
  description: Kernel samepage merging counters; null where libvirt cannot read them.
  returned: success
  type: dict
  sample: {"active": false, "pages_shared": 0, "pages_sharing": 0, "pages_to_scan": 100, "full_scans": 0, "merge_across_nodes": 1}
domains:
  description: Number of guests in total and by state.
  returned: success
  type: dict
  sample: {"total": 3, "running": 2, "shutoff": 1}
load:
  description:
    - What the host and its running guests used over the window of O(sample_seconds), one figure per interval,
      oldest first. A guest's C(cpu) is in CPUs' worth of time (1.0 is one host CPU busy for the whole interval),
      its C(memory_used_mib) the resident memory of its QEMU process; the host's C(cpu_use) is the share of all its
      CPUs that was busy, its C(memory_used_mib) its memory less free, buffers and cache.
    - A guest's C(disk_read_bytes_per_s), C(disk_write_bytes_per_s), C(net_rx_bytes_per_s) and C(net_tx_bytes_per_s)
      are the bytes all its disks read and wrote and all its interfaces received and sent, per second of the interval
      (from the same bulk stats call).
    - C(pressure) (the host's and each guest's) is the share of each interval in which some task stalled for C(cpu),
      C(memory) and C(io) (Linux pressure-stall information, the C(total) of the C(some) line), read from
      C(/proc/pressure) and the guest's cgroup (cgroup v2) only when the connection is local (a C(qemu:///) URI);
      V(null) where it is unknown (a remote connection, a kernel without PSI, cgroup v1).
    - C(hugepages_free) is the free hugepages per page size in KiB summed over NUMA cells (virNodeGetFreePages) at
      the end of the window, V(null) where libvirt cannot say.
  returned: when O(sample_seconds) is more than 0
  type: dict
  sample: {"samples": 2, "interval_s": 2.0,
           "host": {"cpu_use": [0.12, 0.10], "memory_used_mib": [3900, 3902],
                    "pressure": {"cpu": [0.05, 0.04], "memory": [0.0, 0.0], "io": [0.01, 0.0]}},
           "guests": {"web1": {"cpu": [0.51, 0.49], "memory_used_mib": [180, 180],
                               "disk_read_bytes_per_s": [0, 40960], "disk_write_bytes_per_s": [8192, 0],
                               "net_rx_bytes_per_s": [310, 120], "net_tx_bytes_per_s": [90, 42],
                               "pressure": null}},
           "hugepages_free": {"2048": 512, "1048576": 0}}
guests_with_jobs:
  description: Running guests with a job in progress (a migration, a save); a daemon restart now would break it.
  returned: success
  type: list
  elements: str
  sample: []
maintenance:
  description:
    - Whether the host is cordoned (in maintenance; M(kvmfleet.libvirt.host_maintenance)), since when and why. No
      placement puts guests on a cordoned host.
  returned: success
  type: dict
  sample: {"cordoned": true, "reason": "kernel update", "since": "2026-12-02T04:00:00Z"}
networks:
  description:
    - Virtual networks with their state (the maintenance mark is not one of them), and each one's C(spec) - its
      persistent definition read back as M(kvmfleet.libvirt.network) takes it (applying it changes nothing); null for
      a kind that module does not manage (C(forward mode='hostdev')).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "default", "active": true, "autostart": true, "persistent": true, "bridge": "virbr0",
            "spec": {"name": "default", "forward": "nat", "bridge": "virbr0",
                     "ipv4": {"address": "192.168.122.1/24", "dhcp": {"ranges": [{"start": "192.168.122.2",
                                                                                 "end": "192.168.122.254"}]}}}}]
pools:
  description:
    - Storage pools with their state and sizes, and each one's C(spec) - its persistent definition read back as
      M(kvmfleet.libvirt.pool) takes it (applying it changes nothing); null for a type that module does not manage.
  returned: success
  type: list
  elements: dict
  sample: [{"name": "default", "type": "dir", "state": "running", "active": true, "autostart": true,
            "path": "/var/lib/libvirt/images", "capacity_bytes": 1, "allocation_bytes": 1, "available_bytes": 0,
            "spec": {"name": "default", "type": "dir", "path": "/var/lib/libvirt/images", "mode": "0711"}}]
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.info import gather_host_facts
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.load import load_series, sample
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.spec import info_argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def host_facts(conn, params, _check):
    seconds, interval = params.get("sample_seconds") or 0, params.get("sample_interval")
    if seconds < 0 or seconds > 3600:
        raise SpecError("sample_seconds", seconds, "expected 0 (no sampling) to 3600 seconds")
    if seconds and not 1 <= interval <= seconds:
        raise SpecError("sample_interval", interval, "expected 1 second or more, at most sample_seconds (%d)" % seconds)
    facts = dict(gather_host_facts(conn), changed=False)
    if seconds:
        facts["load"] = load_series(sample(conn, seconds, interval, sorted(facts.get("hugepages") or {})))
    return facts


def main():
    module_main(info_argument_spec(), host_facts, lambda params: "host %s" % params["uri"], readonly=True)


if __name__ == "__main__":
    main()
