#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network
short_description: Declare one libvirt virtual network and converge it idempotently, live where possible
version_added: 0.1.0
description:
  - Reads the network's persistent XML, applies the declared fields and defines it again only when
    something differs. A second run with the same input changes nothing.
  - Only what is declared is managed. The UUID, and the bridge name and MAC address libvirt generates
    for a new network, are kept across runs, as are elements the module does not know.
  - On a running network, DHCP hosts, DHCP ranges and DNS host records are changed live through
    libvirt's network update API (dnsmasq is told, the network is not restarted and attached guests keep
    their link). Other changes go to the persistent config; the result says RV(restart_required) with the
    reasons, and O(restart=if_needed) restarts the network to apply them.
  - Stopping, restarting or removing a network that running guests use is refused unless O(force=true).
author:
  - kvmfleet maintainers (@kvmfleet)
extends_documentation_fragment:
  - kvmfleet.libvirt.connection
  - kvmfleet.libvirt.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode computes the same plan as a real run and reports the same C(changed), diff and live updates.
  diff_mode:
    support: full
    details:
      - The diff is the network's persistent XML before and after.
options:
  name:
    description: Name of the network.
    type: str
    required: true
  state:
    description:
      - V(active) defines the network and starts it. V(inactive) defines it and stops it.
      - V(present) defines it and leaves it running or stopped as it is.
      - V(absent) stops and undefines it.
    type: str
    choices: [present, active, inactive, absent]
    default: active
  forward:
    description:
      - How guest traffic leaves the network. V(isolated) has no C(<forward>) (guests reach each other and
        the host only). V(nat), V(route), V(open) forward through the host from a libvirt-made bridge.
        V(bridge) uses an existing host bridge named in O(bridge). V(macvtap) gives guests macvtap
        (direct) links to the host NICs in O(interfaces).
      - A new network defaults to V(isolated); an existing one keeps its mode when this is not given.
        Moving between the first four is an in-place change; moving to or from V(bridge) or V(macvtap) is
        refused (remove the network and define it again).
    type: str
    choices: [isolated, nat, route, open, bridge, macvtap]
  macvtap_mode:
    description: The macvtap mode of a O(forward=macvtap) network. Defaults to V(bridge) for a new one.
    type: str
    choices: [bridge, private, vepa, passthrough]
  interfaces:
    description: Host NICs a O(forward=macvtap) network hands out, as a list of device names.
    type: list
    elements: str
  forward_dev:
    description: For O(forward=nat) and O(forward=route), the host device traffic must leave through.
    type: str
  bridge:
    description:
      - The bridge device name. For routed kinds it names the bridge libvirt makes (a new network without it
        gets a generated C(virbrN) name, kept on later runs). For O(forward=bridge) it names the existing
        host bridge.
    type: str
  stp:
    description: Spanning tree protocol on the libvirt-made bridge.
    type: bool
  bridge_delay:
    description: Bridge forward delay in seconds.
    type: int
  mtu:
    description: MTU of the network's bridge (68 to 65535).
    type: int
  mac:
    description: MAC address of the bridge. A new network gets a generated one, kept on later runs.
    type: str
  domain:
    description: DNS domain of the network's dnsmasq; guests' DHCP names resolve inside it.
    type: str
  domain_local_only:
    description: Answer queries for O(domain) locally only, never forwarding them upstream.
    type: bool
  ipv4:
    description:
      - The host's IPv4 address on the network, and its DHCP service.
      - Left as it is when not given. Every address must lie inside the network, and DHCP ranges must
        not overlap.
    type: dict
    suboptions:
      address:
        description: The host's address with its prefix length, such as V(192.168.100.1/24).
        type: str
        required: true
      dhcp:
        description:
          - The DHCP service. Ranges and hosts given here are the whole list (others are removed);
            an empty dict enables DHCP with static hosts only. Left as it is when not given.
        type: dict
        suboptions:
          ranges:
            description: Dynamic address ranges.
            type: list
            elements: dict
            suboptions:
              start:
                description: First address handed out.
                type: str
                required: true
              end:
                description: Last address handed out.
                type: str
                required: true
          hosts:
            description: Static leases. Each needs O(ipv4.dhcp.hosts[].ip) and a C(mac) or C(name).
            type: list
            elements: dict
            suboptions:
              mac:
                description: The guest NIC's MAC address.
                type: str
              id:
                description: A DHCPv6 client DUID (IPv6 only).
                type: str
              name:
                description: The host name handed out with the lease (and resolvable in the network's DNS).
                type: str
              ip:
                description: The address leased.
                type: str
                required: true
  ipv6:
    description: The host's IPv6 address on the network and its DHCPv6 service; the same keys as O(ipv4).
    type: dict
    suboptions:
      address:
        description: The host's address with its prefix length, such as V(fd00:100::1/64).
        type: str
        required: true
      dhcp:
        description: The DHCPv6 service, as for O(ipv4.dhcp). Hosts are matched by C(id) (DUID) or C(name).
        type: dict
        suboptions:
          ranges:
            description: Dynamic address ranges.
            type: list
            elements: dict
            suboptions:
              start:
                description: First address handed out.
                type: str
                required: true
              end:
                description: Last address handed out.
                type: str
                required: true
          hosts:
            description: Static leases.
            type: list
            elements: dict
            suboptions:
              mac:
                description: Not accepted for IPv6 (refused with a message).
                type: str
              id:
                description: The client's DUID.
                type: str
              name:
                description: The client's host name.
                type: str
              ip:
                description: The address leased.
                type: str
                required: true
  addresses:
    description:
      - Every address block of the network, IPv4 and IPv6 (each block's family is its address's), for a network with
        more than one block of a family. The whole list - a block not in it is removed, with its DHCP service.
      - A block keeps the element of its network, so its address may change and what is not declared stays. Not with
        O(ipv4) or O(ipv6); each network once; DHCP on one block of each family at most (dnsmasq serves one).
      - Left as it is when not given. A change applies when the network restarts.
    type: list
    elements: dict
    suboptions:
      address:
        description: The host's address with its prefix length, such as V(192.168.100.1/24).
        type: str
        required: true
      dhcp:
        description:
          - The DHCP service. Ranges and hosts given here are the whole list (others are removed);
            an empty dict enables DHCP with static hosts only. Left as it is when not given.
        type: dict
        suboptions:
          ranges:
            description: Dynamic address ranges.
            type: list
            elements: dict
            suboptions:
              start:
                description: First address handed out.
                type: str
                required: true
              end:
                description: Last address handed out.
                type: str
                required: true
          hosts:
            description: Static leases. Each needs O(addresses[].dhcp.hosts[].ip) and a C(mac) or C(name).
            type: list
            elements: dict
            suboptions:
              mac:
                description: The guest NIC's MAC address.
                type: str
              id:
                description: A DHCPv6 client DUID (IPv6 only).
                type: str
              name:
                description: The host name handed out with the lease (and resolvable in the network's DNS).
                type: str
              ip:
                description: The address leased.
                type: str
                required: true
  dns_hosts:
    description:
      - DNS host records served by the network's dnsmasq. The whole list (others are removed); left as it
        is when not given.
    type: list
    elements: dict
    suboptions:
      ip:
        description: The address the names resolve to.
        type: str
        required: true
      hostnames:
        description: The names.
        type: list
        elements: str
        required: true
  dns_srv:
    description:
      - DNS SRV records served by the network's dnsmasq; changed live on a running network. The whole list (others
        are removed); left as it is when not given.
    type: list
    elements: dict
    suboptions:
      service:
        description: The service name (without the leading underscore), for example V(ldap).
        type: str
        required: true
      protocol:
        description: The protocol.
        type: str
        required: true
        choices: [tcp, udp]
      domain:
        description: The domain the record is for.
        type: str
      target:
        description: The host that provides the service.
        type: str
      port:
        description: The port of the service.
        type: int
      priority:
        description: The record's priority.
        type: int
      weight:
        description: The record's weight.
        type: int
  dns_txt:
    description:
      - DNS TXT records served by the network's dnsmasq; changed live on a running network. The whole list; left
        as it is when not given.
    type: list
    elements: dict
    suboptions:
      name:
        description: The record's name.
        type: str
        required: true
      value:
        description: The record's text.
        type: str
        required: true
  routes:
    description:
      - Static routes the host adds while the network runs - to a subnet behind a gateway on the network. The whole
        list; left as it is when not given. A change applies when the network restarts.
    type: list
    elements: dict
    suboptions:
      address:
        description: The destination network's address.
        type: str
        required: true
      prefix:
        description: Its prefix length.
        type: int
      netmask:
        description: Its IPv4 netmask (instead of O(routes[].prefix)).
        type: str
      gateway:
        description: The gateway, an address on this network.
        type: str
        required: true
      metric:
        description: The route's metric.
        type: int
      family:
        description: The addresses' family; V(ipv6) is filled in for IPv6 addresses.
        type: str
        choices: [ipv4, ipv6]
  portgroups:
    description:
      - Port groups - named sets of settings a guest's NIC picks with its C(portgroup). The whole list; left as it is
        when not given. A port group's VLAN, bandwidth and virtual port settings are not options; those of an
        existing port group are kept as they are when its options change.
    type: list
    elements: dict
    suboptions:
      name:
        description: The port group's name.
        type: str
        required: true
      default:
        description: Whether a NIC without a port group gets this one.
        type: bool
      trust_guest_rx_filters:
        description: Whether the host trusts the receive filters a guest sets on its NIC.
        type: bool
  bandwidth:
    description:
      - Quality of service of the whole network - each direction's rates in KiB/s (C(average), C(peak), C(floor)) and
        C(burst) in KiB. Only the values given are managed. A change applies when the network restarts.
    type: dict
    suboptions:
      inbound:
        description: Traffic into the network.
        type: dict
        suboptions:
          average: {description: Average rate in KiB/s., type: int}
          peak: {description: Peak rate in KiB/s., type: int}
          burst: {description: Burst size in KiB., type: int}
          floor: {description: "Rate guaranteed to NICs that ask for one, in KiB/s.", type: int}
      outbound:
        description: Traffic out of the network.
        type: dict
        suboptions:
          average: {description: Average rate in KiB/s., type: int}
          peak: {description: Peak rate in KiB/s., type: int}
          burst: {description: Burst size in KiB., type: int}
          floor: {description: "Rate guaranteed to NICs that ask for one, in KiB/s.", type: int}
  autostart:
    description: Start the network when libvirtd starts. Left as it is when not given.
    type: bool
  restart:
    description:
      - V(if_needed) restarts a running network when changes that cannot be applied live are pending.
        V(never) only reports them in RV(reasons).
    type: str
    choices: [never, if_needed]
    default: never
  force:
    description: Allow stopping, restarting or removing a network that running guests use (they lose their link).
    type: bool
    default: false
seealso:
  - name: libvirt network XML format
    description: The format this module writes.
    link: https://libvirt.org/formatnetwork.html
  - module: kvmfleet.libvirt.domain
"""

EXAMPLES = r"""
- name: An isolated lab network with DHCP and a static lease
  kvmfleet.libvirt.network:
    name: lab
    ipv4:
      address: 192.168.100.1/24
      dhcp:
        ranges:
          - {start: 192.168.100.100, end: 192.168.100.199}
        hosts:
          - {mac: "52:54:00:10:00:01", name: web1, ip: 192.168.100.11}
    dns_hosts:
      - {ip: 192.168.100.5, hostnames: [storage, nfs]}
    autostart: true

- name: A NAT network with its own DNS domain, restarted if a change needs it
  kvmfleet.libvirt.network:
    name: outside
    forward: nat
    domain: lab.example
    mtu: 1450
    ipv4:
      address: 10.10.0.1/24
      dhcp:
        ranges: [{start: 10.10.0.50, end: 10.10.0.250}]
    restart: if_needed

- name: Guests on the host bridge br0
  kvmfleet.libvirt.network:
    name: lan
    forward: bridge
    bridge: br0

- name: A macvtap pool of two host NICs
  kvmfleet.libvirt.network:
    name: direct
    forward: macvtap
    macvtap_mode: bridge
    interfaces: [eth1, eth2]

- name: Remove a network even though guests still use it
  kvmfleet.libvirt.network:
    name: old
    state: absent
    force: true
"""

RETURN = r"""
state:
  description: The network's state after the task (V(active), V(inactive) or V(absent)).
  returned: always
  type: str
  sample: active
uuid:
  description: The network's UUID.
  returned: when the network exists after a real (not check mode) run
  type: str
  sample: 0f2b2b3e-1f0e-4c6a-9d0e-2b6f8f1d4c11
bridge:
  description: The bridge device name (generated by libvirt when not declared).
  returned: when the network exists after a real run and has a bridge
  type: str
  sample: virbr1
actions:
  description: What the task did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [define, start, autostart on]
applied_live:
  description: Changes made to the running network without a restart.
  returned: when the network is not removed
  type: list
  elements: str
  sample: ["add DHCP host ip=192.168.100.12 mac=52:54:00:10:00:02 name=web2"]
restart_required:
  description: Whether the running network differs from its persistent config in ways only a restart applies.
  returned: when the network is not removed
  type: bool
  sample: false
reasons:
  description: The differences that need a restart.
  returned: when the network is not removed
  type: list
  elements: str
  sample: ["mtu: 1500 -> 9000 (applies when the network restarts)"]
network:
  description: The network as a spec (the keys of this module's options), read back from its XML.
  returned: when the network is not removed
  type: dict
  sample: {name: lab, forward: isolated, bridge: virbr1, ipv4: {address: 192.168.100.1/24}}
"""

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.apply import NetworkRunner
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.model import normalize_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.spec import argument_spec
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import module_main


def main():
    module_main(argument_spec(), NetworkRunner, lambda params: "network %s" % params["name"], precheck=normalize_spec)


if __name__ == "__main__":
    main()
