# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the network model. Pure functions of (network XML, spec); no libvirt calls.

``normalize_spec`` checks the parameters (addresses inside their network, ranges that do not
overlap, one identity per DHCP host) and normalises them by the table; ``plan_network`` applies
them through the table; :func:`live_updates` turns the difference between the running network and
its new persistent config into virNetworkUpdate commands for the lists dnsmasq takes live, and names
every other difference as a reason the network needs a restart.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import NETWORK_NAME, Mac
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import (
    Change,
    parse_fields,
    reconcile_fields,
    show_fields,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.table import (
    BANDWIDTH_FIELDS,
    DHCP_HOSTS,
    DHCP_RANGES,
    DNS_HOSTS,
    FORWARD_KINDS,
    DNS_SRV,
    DNS_TXT,
    FORWARD,
    FORWARD_INTERFACES,
    IP_FIELDS,
    LIVE_DNS,
    LIVE_LISTS,
    NETWORK_FIELDS,
    PORTGROUPS,
    ROUTED,
    ROUTES,
    IPCodec,
    dhcp_block,
    ip_block,
    ip_elements,
    read_forward,
    read_interface,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree, parse_xml, to_string


# ---- reading the current network ------------------------------------------------------------------------

def read_spec(xml):
    """The friendly spec of a network, as a user would write it (for read-back and diffs)."""
    root = parse_xml(xml) if isinstance(xml, (str, bytes)) else xml
    kind, macvtap_mode = read_forward(root)
    spec = {"name": root.findtext("name"), "uuid": root.findtext("uuid"), "forward": kind}
    if macvtap_mode:
        spec["macvtap_mode"] = macvtap_mode
        spec["interfaces"] = FORWARD_INTERFACES.show(FORWARD_INTERFACES.read(root))
    for field in NETWORK_FIELDS:
        value = field.read(root)
        if value is not None:
            spec[field.key] = value
    if kind not in ("nat", "route"):
        spec.pop("forward_dev", None)  # libvirt fills it in from the first macvtap interface
    if any(len(ip_elements(root, family)) > 1 for family in ("ipv4", "ipv6")):
        spec["addresses"] = [read_ip(ip) for ip in root.iterfind("ip")]  # more than one block of a family
    else:
        for family in ("ipv4", "ipv6"):
            ip = ip_block(root, family)
            if ip is not None:
                spec[family] = read_ip(ip)
    for field in LISTS:
        items = field.read(root)
        if items:
            spec[field.key] = field.show(items)
    spec.update(show_fields(BANDWIDTH_FIELDS, {f.key: f.read(root) for f in BANDWIDTH_FIELDS}))
    return spec


# The network's lists of its own element (besides each address block's): whole lists, items compared as sets.
LISTS = (DNS_HOSTS, DNS_SRV, DNS_TXT, ROUTES, PORTGROUPS)


def managed_spec(xml):
    """read_spec for a network of a kind this module manages (FORWARD_KINDS); None for another (hostdev)."""
    spec = read_spec(xml)
    return spec if spec["forward"] in FORWARD_KINDS else None


def read_ip(ip):
    result = {"address": str(read_interface(ip)) if ip.get("address") else None}
    if ip.find("dhcp") is not None:
        result["dhcp"] = {"ranges": DHCP_RANGES.show(DHCP_RANGES.read(ip)),
                          "hosts": DHCP_HOSTS.show(DHCP_HOSTS.read(ip))}
    return result


# ---- the spec --------------------------------------------------------------------------------------

def _parse_range(raw, option, network):
    if not isinstance(raw, dict) or set(raw) != {"start", "end"}:
        raise SpecError(option, raw, "expected a dict with start and end")
    start = ipaddress.ip_address(IPCodec(network.version).parse(raw["start"], option + ".start"))
    end = ipaddress.ip_address(IPCodec(network.version).parse(raw["end"], option + ".end"))
    for key, address in (("start", start), ("end", end)):
        if address not in network:
            raise SpecError(option + "." + key, str(address), "expected an address inside %s" % network)
    if start > end:
        raise SpecError(option, raw, "start must not come after end")
    return start, end


def normalize_ip(raw, family, option):
    """Check one family's block ({address, dhcp: {ranges, hosts}}) and return it normalised, by the keys
    of IP_FIELDS.

    Every address must be inside the network, ranges must not overlap, and no MAC, DUID, name or
    address may be given to two DHCP hosts: libvirt would accept some of these and dnsmasq would
    then hand out addresses nobody meant.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"address", "dhcp"}:
        raise SpecError(option, raw, "expected a dict with address and dhcp (ranges, hosts)")
    version = 4 if family == "ipv4" else 6
    address = raw.get("address")
    try:
        interface = ipaddress.ip_interface(str(address))
    except ValueError:
        interface = None
    if interface is None or interface.version != version or "/" not in str(address):
        raise SpecError(option + ".address", address, "expected the host's IPv%d address on the network with its "
                                                      "prefix length, such as %s" % (
                                                          version, "192.168.100.1/24" if version == 4 else
                                                          "fd00:100::1/64"))
    network = interface.network
    if interface.ip in (network.network_address, network.broadcast_address) and network.num_addresses > 2:
        raise SpecError(option + ".address", address, "expected a host address, not the network's own "
                                                      "network or broadcast address")
    result = {"address": interface}
    dhcp = raw.get("dhcp")
    if dhcp is None:
        return result
    if not isinstance(dhcp, dict) or set(dhcp) - {"ranges", "hosts"}:
        raise SpecError(option + ".dhcp", dhcp, "expected a dict with ranges and hosts")
    spans = []
    for index, item in enumerate(dhcp.get("ranges") or []):
        where = "%s.dhcp.ranges[%d]" % (option, index)
        start, end = _parse_range(item, where, network)
        for other_index, (other_start, other_end) in enumerate(spans):
            if start <= other_end and other_start <= end:
                raise SpecError(where, item, "ranges must not overlap; it overlaps %s.dhcp.ranges[%d] (%s - %s)"
                                % (option, other_index, other_start, other_end))
        spans.append((start, end))
    seen = {}
    for index, host in enumerate(dhcp.get("hosts") or []):
        where = "%s.dhcp.hosts[%d]" % (option, index)
        if not isinstance(host, dict) or set(host) - {"mac", "id", "name", "ip"}:
            identity = "mac" if version == 4 else "id"
            raise SpecError(where, host, "expected a dict with ip and %s and/or name" % identity)
        if not host.get("ip") or not (host.get("mac") or host.get("name") or host.get("id")):
            raise SpecError(where, host, "expected ip and at least one of mac, name" + ("" if version == 4
                                                                                        else ", id"))
        if version == 4 and host.get("id"):
            raise SpecError(where + ".id", host["id"], "a DUID (id) is for IPv6 hosts; IPv4 hosts use mac")
        if version == 6 and host.get("mac"):
            raise SpecError(where + ".mac", host["mac"], "IPv6 DHCP hosts are identified by id (DUID) or name, "
                                                         "not by MAC")
        ip = ipaddress.ip_address(IPCodec(version).parse(host["ip"], where + ".ip"))
        if ip not in network or ip == interface.ip:
            raise SpecError(where + ".ip", str(ip), "expected a free address inside %s (not the network's own %s)"
                            % (network, interface.ip))
        identity = {"mac": Mac().parse(host.get("mac"), where + ".mac"), "id": host.get("id"),
                    "name": host.get("name"), "ip": str(ip)}
        for key, value in identity.items():
            if value is None:
                continue
            if (key, value) in seen:
                raise SpecError(where + "." + key, value, "each DHCP host needs its own %s; %s.dhcp.hosts[%d] has it "
                                "too" % (key, option, seen[(key, value)]))
            seen[(key, value)] = index
    result["dhcp"] = True
    result["dhcp.ranges"] = DHCP_RANGES.parse(dhcp.get("ranges"), option + ".dhcp.ranges")
    result["dhcp.hosts"] = DHCP_HOSTS.parse(dhcp.get("hosts"), option + ".dhcp.hosts")
    return result


def normalize_spec(params):
    """The user's parameters checked and normalised. Raises SpecError before anything changes."""
    spec = {"name": NETWORK_NAME.parse(params["name"], "name"), "forward": params.get("forward"),
            "macvtap_mode": params.get("macvtap_mode")}
    for field in NETWORK_FIELDS:
        spec[field.key] = field.parse(params.get(field.key), field.key)
    spec["interfaces"] = FORWARD_INTERFACES.parse(params.get("interfaces"), "interfaces")
    spec["ipv4"] = normalize_ip(params.get("ipv4"), "ipv4", "ipv4")
    spec["ipv6"] = normalize_ip(params.get("ipv6"), "ipv6", "ipv6")
    spec["addresses"] = normalize_blocks(params.get("addresses"), spec)
    for field in LISTS:
        spec[field.key] = field.parse(params.get(field.key), field.key)
    spec["routes"] = _check_routes(spec["routes"])
    spec.update(parse_fields(BANDWIDTH_FIELDS, params))
    _check_kind(spec)
    return spec


def _family_of(raw):
    try:
        return "ipv6" if ipaddress.ip_interface(str((raw or {}).get("address"))).version == 6 else "ipv4"
    except ValueError:
        return "ipv4"  # normalize_ip says what is wrong with it


def normalize_blocks(raw_blocks, spec):
    """``addresses``: every address block of the network, the whole list ([(family, block)]); each checked as an
    ``ipv4``/``ipv6`` block is. Not with ``ipv4``/``ipv6``; no network twice; DHCP on one block per family at most
    (dnsmasq serves one)."""
    if raw_blocks is None:
        return None
    if spec.get("ipv4") is not None or spec.get("ipv6") is not None:
        raise SpecError("addresses", [b.get("address") if isinstance(b, dict) else b for b in raw_blocks],
                        "give addresses (every block), or ipv4 and ipv6 (one block each), not both")
    blocks, networks, dhcp = [], {}, {}
    for index, raw in enumerate(raw_blocks):
        option = "addresses[%d]" % index
        family = _family_of(raw)
        block = normalize_ip(raw, family, option)
        network = block["address"].network
        if network in networks:
            raise SpecError(option + ".address", str(block["address"]), "each network once; addresses[%d] is in %s too"
                            % (networks[network], network))
        networks[network] = index
        if block.get("dhcp"):
            if family in dhcp:
                raise SpecError(option + ".dhcp", "(set)", "DHCP on one %s block at most (addresses[%d] has it)"
                                % (family, dhcp[family]))
            dhcp[family] = index
        blocks.append((family, block))
    return blocks


def _reconcile_blocks(root, blocks):
    """The <ip> elements made to be ``blocks``: a block keeps the element of its network (its address may change, and
    what the table does not manage stays); a new one is added after the others; an element no block names goes."""
    changes = []
    existing = list(root.iterfind("ip"))
    by_network = {}
    for ip in existing:
        interface = read_interface(ip)
        if interface is not None:
            by_network.setdefault(interface.network, ip)
    kept = set()
    for family, block in blocks:
        ip = by_network.get(block["address"].network)
        label = "addresses[%s]." % block["address"].network
        if ip is None:
            ip = etree.Element("ip")
            if family == "ipv6":
                ip.set("family", "ipv6")
            last = root.findall("ip")
            if last:
                last[-1].addnext(ip)
            else:
                root.append(ip)
            changes.append(Change("address block %s" % block["address"], None, "present"))
            reconcile_fields(ip, IP_FIELDS, block)
        else:
            changes.extend(reconcile_fields(ip, IP_FIELDS, block, label))
        kept.add(id(ip))
    for ip in existing:
        if id(ip) not in kept:
            changes.append(Change("address block %s" % read_interface(ip), "present", None))
            root.remove(ip)
    return changes


def _check_routes(routes):
    """A route's prefix (or IPv4 netmask) fits its address, and its family is the addresses': said for IPv6 (libvirt
    needs family='ipv6' there), checked when given."""
    if routes is None:
        return None
    checked = []
    for index, item in enumerate(routes):
        values = dict(item)
        option = "routes[%d]" % index
        address = ipaddress.ip_address(values["address"])
        gateway = ipaddress.ip_address(values["gateway"])
        if address.version != gateway.version:
            raise SpecError(option + ".gateway", values["gateway"], "expected an IPv%d gateway for %s"
                            % (address.version, address))
        family = "ipv6" if address.version == 6 else "ipv4"
        if values.get("family", family) != family:
            raise SpecError(option + ".family", values["family"], "the route's addresses are %s" % family)
        if "prefix" in values and "netmask" in values:
            raise SpecError(option + ".netmask", values["netmask"], "give prefix or netmask, not both")
        if "prefix" in values and int(values["prefix"]) > address.max_prefixlen:
            raise SpecError(option + ".prefix", values["prefix"],
                            "at most %d for %s" % (address.max_prefixlen, address))
        if address.version == 6 and "family" not in values:
            values["family"] = "ipv6"
        checked.append(tuple(sorted(values.items())))
    return tuple(sorted(checked))


_ADDRESSED = ("ipv4", "ipv6", "addresses", "dns_hosts", "dns_srv", "dns_txt", "routes", "domain", "domain_local_only", "mtu", "stp",
              "bridge_delay", "mac")


def _check_kind(spec, kind=None):
    """Options that make no sense for the forward kind are refused, not ignored."""
    kind = kind or spec["forward"]
    if kind is None:
        return
    if kind in ("bridge", "macvtap"):
        declared = [key for key in _ADDRESSED if spec.get(key) is not None]
        if kind == "bridge":
            declared = [key for key in declared if key not in ("mtu",)]
        if declared:
            raise SpecError(declared[0], spec[declared[0]] if not hasattr(spec[declared[0]], "get") else "(set)",
                            "forward: %s networks take no addresses, DHCP, DNS or bridge settings of their own "
                            "(the host's bridge or NICs carry the traffic); remove it or use forward: nat, route, "
                            "open or isolated" % kind)
    if kind == "macvtap" and spec.get("bridge") is not None:
        raise SpecError("bridge", spec["bridge"], "forward: macvtap uses host NICs (interfaces), not a bridge")
    if kind == "bridge" and spec.get("bridge") is None and spec.get("_existing_bridge") is None:
        raise SpecError("bridge", None, "forward: bridge needs the name of an existing host bridge in bridge")
    if kind == "macvtap" and not spec.get("interfaces") and spec.get("_existing_interfaces") is None:
        raise SpecError("interfaces", None, "forward: macvtap needs the host NICs to use, e.g. interfaces: [eth1]")
    if kind not in ("nat", "route") and spec.get("forward_dev") is not None:
        raise SpecError("forward_dev", spec["forward_dev"], "only forward: nat and route send traffic out of a "
                                                            "chosen host device")
    if kind != "macvtap" and (spec.get("interfaces") or spec.get("macvtap_mode")):
        raise SpecError("interfaces" if spec.get("interfaces") else "macvtap_mode",
                        spec.get("interfaces") or spec.get("macvtap_mode"), "only forward: macvtap takes these")


# ---- planning ------------------------------------------------------------------------------------------

def skeleton(name):
    root = etree.Element("network")
    etree.SubElement(root, "name").text = name
    return root


def _wanted_forward(root, spec, new):
    """The forward value the spec asks for: (kind, macvtap mode), the current one where not declared.
    A network's kind changes only among the routed kinds; anything else is a different network."""
    current_kind, current_mode = read_forward(root)
    kind = spec["forward"] or current_kind
    mode = (spec["macvtap_mode"] or current_mode or "bridge") if kind == "macvtap" else None
    if not new and kind != current_kind and not (kind in ROUTED and current_kind in ROUTED):
        raise SpecError("forward", kind, "the network is forward: %s; changing it to %s changes what the network "
                                         "is: remove it (state: absent) and define it again"
                        % (current_kind, kind))
    return kind, mode


def plan_network(current_xml, spec):
    """The plan (_plan.Plan): the network's persistent XML with the spec applied, and the Changes (none: leave
    it alone).

    ``current_xml`` is None for a network that does not exist yet. Only declared fields are written;
    everything else (uuid, the bridge name and MAC libvirt generated, other elements) is kept.
    """
    root = parse_xml(current_xml) if current_xml else skeleton(spec["name"])
    if current_xml is None and spec["forward"] is None:
        spec = dict(spec, forward="isolated")
    if current_xml is not None:
        kind, _mode = read_forward(root)
        _check_kind(dict(spec, _existing_bridge=root.find("bridge"),
                         _existing_interfaces=root.find("forward/interface")), spec["forward"] or kind)
    forward = _wanted_forward(root, spec, new=current_xml is None)
    changes = reconcile_fields(root, (FORWARD,), {"forward": forward})
    changes.extend(reconcile_fields(root, NETWORK_FIELDS, spec))
    if forward[0] == "macvtap":
        changes.extend(reconcile_fields(root, (FORWARD_INTERFACES,), spec))
    for family in ("ipv4", "ipv6"):
        if spec[family] is not None:
            changes.extend(reconcile_fields(ip_block(root, family, create=True), IP_FIELDS, spec[family], family + "."))
    if spec.get("addresses") is not None:
        changes.extend(_reconcile_blocks(root, spec["addresses"]))
    changes.extend(reconcile_fields(root, LISTS + BANDWIDTH_FIELDS, spec))
    if current_xml is None:
        changes.insert(0, Change("network", None, "defined"))
    header = "network %s (persistent config)" % spec["name"]
    if not changes:
        return Plan(header, current_xml, current_xml)
    return Plan(header, current_xml or "", to_string(root), changes, created=current_xml is None)


# ---- a running network: what can change live ---------------------------------------------------------

class LiveUpdate:
    """One virNetworkUpdate call: ``command`` is 'add' or 'delete', ``section`` a libvirt section name."""

    def __init__(self, command, section, xml, what):
        self.command, self.section, self.xml, self.what = command, section, xml, what

    def __repr__(self):
        return "LiveUpdate(%s %s %s)" % (self.command, self.section, self.xml)


def _list_updates(section, field, label, describe, live_parent, config_parent):
    now = set(field.read(live_parent)) if live_parent is not None else set()
    wanted = set(field.read(config_parent)) if config_parent is not None else set()
    updates = [LiveUpdate("delete", section, to_string(field.element_of(item)), "remove %s %s" % (label, describe(item)))
               for item in sorted(now - wanted)]
    updates += [LiveUpdate("add", section, to_string(field.element_of(item)), "add %s %s" % (label, describe(item)))
                for item in sorted(wanted - now)]
    return updates


def live_updates(live_xml, config_xml):
    """(updates, reasons): virNetworkUpdate calls that bring the running network's DHCP hosts, DHCP
    ranges and DNS hosts to the new config, and the other differences, which need a restart."""
    live, config = parse_xml(live_xml), parse_xml(config_xml)
    updates = []
    for family in ("ipv4", "ipv6"):
        for section, field, label, describe in LIVE_LISTS:
            updates += _list_updates(section, field, label, describe, dhcp_block(live, family),
                                     dhcp_block(config, family))
    for section, field, label, describe in LIVE_DNS:
        updates += _list_updates(section, field, label, describe, live, config)
    return updates, restart_reasons(live, config)


def restart_reasons(live, config):
    """Differences between the running network and its config other than the live-updatable ones."""
    before, after = read_spec(live), read_spec(config)
    for spec in (before, after):
        for key in ("dns_hosts", "dns_srv", "dns_txt"):
            spec.pop(key, None)
        for block in [spec.get("ipv4"), spec.get("ipv6")] + list(spec.get("addresses") or []):
            if block is not None and "dhcp" in block:
                block["dhcp"] = {"enabled": True}
    return ["%s: %s -> %s (applies when the network restarts)" % (key, _short(before.get(key)), _short(after.get(key)))
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def _short(value):
    return "(none)" if value is None else value


# ---- guests on a network ------------------------------------------------------------------------------

def guest_uses_network(domain_xml, network, bridge=None):
    """Whether a guest's (live) XML has a NIC on the network (by name, or on its bridge)."""
    root = parse_xml(domain_xml)
    for nic in root.iterfind("devices/interface"):
        source = nic.find("source")
        if source is None:
            continue
        on_bridge = bool(bridge) and nic.get("type") == "bridge" and source.get("bridge") == bridge
        if source.get("network") == network or on_bridge:
            return True
    return False
