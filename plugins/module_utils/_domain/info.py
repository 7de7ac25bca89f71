# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``domain_info`` module. Guests, their friendly spec, tags, stats and addresses.

Runtime stats come from one bulk ``virConnectGetAllDomainStats``/``virDomainListGetStats`` call;
``shape_stats`` turns libvirt's flat keys into nested dicts (pure, unit-tested). A guest's ``state`` is the
power state the domain module converges (running, paused, shutoff) and ``libvirt_state`` libvirt's own name
for it (blocked, crashed, pmsuspended, ...): one table, _libvirt.DOMAIN_STATES. Each disk's capacity and
allocation (``disks``) come from the same stats for a running guest, from virDomainGetBlockInfo otherwise:
what placement needs to price a move that copies storage.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.devices import DEVICE_KINDS
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.disks import guest_disks
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.metadata import tags_match
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.readback import read_spec, secret_options
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    libvirt,
    libvirt_state_name,
    lookup_or_none,
    power_state,
    xml_with,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate.origin import read_last_move, read_origin
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml


def shape_stats(flat):
    """libvirt's flat stats ('block.0.rd.bytes': n, ...) as {cpu_time_ns, vcpus, memory, disks, nics}."""
    def indexed(prefix, fields):
        items = []
        for index in range(flat.get(prefix + ".count", 0)):
            base = "%s.%d." % (prefix, index)
            items.append({out: flat.get(base + key) for out, key in fields})
        return items
    return {
        "cpu_time_ns": flat.get("cpu.time"),
        "vcpus": flat.get("vcpu.current"),
        "memory": {
            "current_kib": flat.get("balloon.current"),
            "maximum_kib": flat.get("balloon.maximum"),
            "rss_kib": flat.get("balloon.rss"),
            "available_kib": flat.get("balloon.available"),
            "unused_kib": flat.get("balloon.unused"),
        },
        "disks": indexed("block", [("dev", "name"), ("path", "path"), ("read_bytes", "rd.bytes"),
                                   ("write_bytes", "wr.bytes"), ("read_requests", "rd.reqs"),
                                   ("write_requests", "wr.reqs"), ("capacity_bytes", "capacity"),
                                   ("allocation_bytes", "allocation")]),
        "nics": indexed("net", [("dev", "name"), ("rx_bytes", "rx.bytes"), ("tx_bytes", "tx.bytes"),
                                ("rx_packets", "rx.pkts"), ("tx_packets", "tx.pkts"),
                                ("rx_drops", "rx.drop"), ("tx_drops", "tx.drop")]),
    }


def _addresses(dom, agent_dom=None):
    """IP addresses per MAC, from DHCP leases and, where it answers, the guest agent (asked through ``agent_dom``, the
    guest on a read-write connection, when ``dom``'s is read-only: libvirt does not ask an agent read-only)."""
    result = {}
    sources = (("lease", libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, dom),
               ("agent", libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, agent_dom or dom))
    for source, flag, asked in sources:
        try:
            found = asked.interfaceAddresses(flag, 0) or {}
        except libvirt.libvirtError:
            continue  # no agent in the guest, or no lease source for this NIC type
        for nic in found.values():
            mac = (nic.get("hwaddr") or "").lower()
            if not mac:
                continue
            for addr in nic.get("addrs") or []:
                entry = {"address": addr["addr"], "prefix": addr["prefix"], "source": source,
                         "family": "ipv6" if addr["type"] == libvirt.VIR_IP_ADDR_TYPE_IPV6 else "ipv4"}
                if entry not in result.setdefault(mac, []):
                    result[mac].append(entry)
    return result


def disk_sizes(root, flat, block_info=None):
    """Each disk of the guest with its size: [{"dev", "device", "path", "pool", "volume", "readonly",
    "shareable", "capacity_bytes", "allocation_bytes"}], in document order (the one disk reader, disks.py).
    ``allocation_bytes`` is the space the image takes on the host - what a storage copy moves. A running guest's
    come from its block stats (``flat``, matched by target dev: libvirt's ``physical`` there, as its
    ``allocation`` is only the highest offset written since it started), a shut-off guest's from
    ``block_info(disk)`` -> (capacity, allocation) (its facts: disk_facts); None where libvirt cannot say."""
    by_dev = {}
    for index in range(flat.get("block.count", 0)):
        base = "block.%d." % index
        if flat.get(base + "capacity") is None:
            continue  # a shut-off guest's stats name its disks without their sizes
        used = flat.get(base + "physical")
        by_dev[flat.get(base + "name")] = (flat.get(base + "capacity"),
                                           used if used is not None else flat.get(base + "allocation"))
    result = []
    for disk in guest_disks(root):
        sizes = by_dev.get(disk["dev"])
        if sizes is None and block_info is not None and not disk["empty"]:
            sizes = block_info(disk)
        capacity, allocation = (sizes or (None, None))[:2]
        result.append({"dev": disk["dev"], "device": disk["device"] or "disk", "path": disk["path"], "pool": disk["pool"],
                       "volume": disk["volume"], "readonly": not disk["writable"], "shareable": bool(disk["shareable"]),
                       "capacity_bytes": capacity, "allocation_bytes": allocation})
    return result


def _block_info(conn, dom):
    """(capacity, allocation) of a shut-off guest's disk: virDomainGetBlockInfo, or, for a disk libvirt cannot
    open so (a disk declared by pool and volume), its volume's; None for a network disk or a missing image."""
    def info(disk):
        try:
            if disk["type"] == "volume":
                vol = conn.storagePoolLookupByName(disk["pool"]).storageVolLookupByName(disk["volume"])
                return tuple(vol.info()[1:3])
            return tuple(dom.blockInfo(disk["dev"], 0)[:2])
        except libvirt.libvirtError:
            return None
    return info


STATS = ("VIR_DOMAIN_STATS_STATE", "VIR_DOMAIN_STATS_CPU_TOTAL", "VIR_DOMAIN_STATS_BALLOON",
         "VIR_DOMAIN_STATS_VCPU", "VIR_DOMAIN_STATS_INTERFACE", "VIR_DOMAIN_STATS_BLOCK")


def _listed(conn, flag):
    """The UUIDs of the host's guests of one kind (one listing call)."""
    return {dom.UUIDString() for dom in conn.listAllDomains(getattr(libvirt, flag))}


AGENT_CHANNEL = "devices/channel/target[@name='org.qemu.guest_agent.0']"


def _may_hold_secrets(root):
    """Whether the guest has a device of a kind with a secret field (graphics): only then is its secure XML read."""
    devices = root.find("devices")
    return devices is not None and any(kind.select(devices) for kind in DEVICE_KINDS
                                       if any(field.secret for field in kind.fields))


def _secure(dom, writable):
    """The guest on the read-write connection ``writable()`` opens (None where there is none, or it is gone)."""
    rw = writable()
    return None if rw is None else lookup_or_none(rw.lookupByUUIDString, dom.UUIDString(), "VIR_ERR_NO_DOMAIN")


def _guest_root(dom, writable):
    """(the guest's inactive XML, parsed; the secure one's root for its secrets, or None when they are unknown)."""
    if writable is None:  # with its secrets where the connection may read them, so that "secrets" can name them
        root = parse_xml(xml_with(dom, ["VIR_DOMAIN_XML_INACTIVE", "VIR_DOMAIN_XML_SECURE"],
                                  ["VIR_DOMAIN_XML_INACTIVE"]))
        return root, root
    root = parse_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    if not _may_hold_secrets(root):
        return root, root
    secure = _secure(dom, writable)
    if secure is None:
        return root, None
    return root, parse_xml(secure.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))


def gather(conn, name=None, tags=None, managed_only=False, want_stats=True, want_addresses=True, writable=None):
    """Every selected guest, sorted by name.

    Bulk reads: the host's guests are listed once per kind (all, running, persistent, autostart) and
    their states and stats come in one stats call; per guest only its XML is read (and, for a running
    guest, its addresses).

    ``conn`` may be read-only. Two reads need a read-write connection then: a guest's secure XML (which of its
    options hold a secret: ``secrets``) and its guest agent's addresses. ``writable()`` returns one (opened once, on
    the first guest that has a graphics device or an agent channel), or None where the user may only read: their
    ``secrets`` are None (unknown) and only leases give addresses. Without ``writable``, ``conn`` reads them where it
    may.
    """
    if name:
        dom = lookup_or_none(conn.lookupByName, name, "VIR_ERR_NO_DOMAIN")
        domains = [dom] if dom is not None else []
    else:
        domains = conn.listAllDomains(0)
    if not domains:
        return []
    active = _listed(conn, "VIR_CONNECT_LIST_DOMAINS_ACTIVE")
    persistent = _listed(conn, "VIR_CONNECT_LIST_DOMAINS_PERSISTENT")
    autostart = _listed(conn, "VIR_CONNECT_LIST_DOMAINS_AUTOSTART")
    flags = libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BLOCK  # the disks' sizes
    if want_stats:
        for name_ in STATS:
            flags |= getattr(libvirt, name_)
    stats = {dom.UUIDString(): flat for dom, flat in _stats(conn, domains, flags, name is None)}
    guests = []
    for dom in domains:
        try:
            guest = _guest(conn, dom, stats, (active, persistent, autostart), (managed_only, tags),
                           (want_stats, want_addresses), writable)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
            continue  # it vanished after the listing (another run removed it): guests come and go while we read
        if guest is not None:
            guests.append(guest)
    return sorted(guests, key=lambda g: g["name"])


def _stats(conn, domains, flags, every):
    """The bulk stats of ``domains``: of every guest in one call that lists them itself (``every``), so a guest that
    vanished after our listing cannot fail it; for one named guest, nothing once it is gone."""
    try:
        return conn.getAllDomainStats(flags, 0) if every else conn.domainListGetStats(domains, flags, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
        return []


def _guest(conn, dom, stats, lists, selector, wants, writable):
    """One guest's entry, or None when the selector leaves it out."""
    active, persistent, autostart = lists
    managed_only, tags = selector
    want_stats, want_addresses = wants
    root, secure_root = _guest_root(dom, writable)
    spec = read_spec(root)  # never a secret's value: their options are listed in "secrets"
    managed = spec.pop("managed")
    if managed_only and not managed:
        return None
    if not tags_match(spec["tags"] if managed else None, tags):
        return None
    uuid = dom.UUIDString()
    flat = stats.get(uuid, {})
    guest = {
        "name": dom.name(),
        "uuid": uuid,
        "state": power_state(flat.get("state.state")),
        "libvirt_state": libvirt_state_name(flat.get("state.state")),
        "active": uuid in active,
        "persistent": uuid in persistent,
        "autostart": uuid in autostart,
        "managed": managed,
        "tags": spec["tags"],
        "spec": spec,
        "secrets": None if secure_root is None else secret_options(secure_root),
        "origin": read_origin(root),
        "last_move": read_last_move(root),
        "disks": disk_sizes(root, flat, None if uuid in active else _block_info(conn, dom)),
    }
    if want_stats:
        guest["stats"] = shape_stats(flat) if guest["active"] else None
    if want_addresses:
        agent = writable is not None and root.find(AGENT_CHANNEL) is not None
        guest["addresses"] = _addresses(dom, _secure(dom, writable) if agent else None) if guest["active"] else {}
    return guest
