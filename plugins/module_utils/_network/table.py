# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the network's options table (https://libvirt.org/formatnetwork.html).

One row per field: the network's own (bridge, mtu, domain, ...), the forward kind, the forward
interfaces of a macvtap network, each address family's block (address, DHCP ranges, DHCP hosts) and
the DNS hosts, all through the shared field kinds of _fields (Field, ElementList). What a running
network takes live is what virNetworkUpdate changes in dnsmasq: the lists with a ``section`` below.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._codecs import Choice, Codec, Int, Mac, Text, YesNo
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._fields import ElementList, Field, Option

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import etree

FORWARD_KINDS = ("isolated", "nat", "route", "open", "bridge", "macvtap")
MACVTAP_MODES = ("bridge", "private", "vepa", "passthrough")
ROUTED = ("isolated", "nat", "route", "open")  # networks with a libvirt-made bridge, addresses and dnsmasq
_BRIDGE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")


class IPCodec(Codec):
    """An IP address, compared in its canonical form (so fd00::01 equals fd00::1)."""

    def __init__(self, version=None):
        self.version = version

    def parse(self, value, option):
        if value is None:
            return None
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            address = None
        if address is None or (self.version and address.version != self.version):
            raise SpecError(option, value, "expected an IPv%s address" % (self.version or "4 or IPv6"))
        return str(address)

    def load(self, text):
        try:
            return None if text is None else str(ipaddress.ip_address(text))
        except ValueError:
            return text


class BridgeName(Codec):
    def parse(self, value, option):
        if value is None:
            return None
        if not _BRIDGE_NAME.match(str(value)):
            raise SpecError(option, value, "expected a Linux interface name: 1 to 15 characters from "
                                           "letters, digits, '_', '.', ':' and '-'")
        return str(value)


DNS_NAME = Text("dnsName", schema_file="network.rng", accepted="expected a DNS name: letters, digits, '.' and '-'")
DEVICE_NAME = Text("deviceName", schema_file="network.rng")


# ---- the forward kind -------------------------------------------------------------------------------------

def read_forward(root):
    """(kind, macvtap mode): kind is one of FORWARD_KINDS, or libvirt's raw mode for others (hostdev)."""
    forward = root.find("forward")
    if forward is None:
        return "isolated", None
    mode = forward.get("mode") or "nat"
    if mode in ("nat", "route", "open"):
        return mode, None
    if mode == "bridge" and root.find("bridge") is not None:
        return "bridge", None
    if mode in MACVTAP_MODES:
        return "macvtap", mode
    return mode, None


class Forward(Field):
    """``forward`` and ``macvtap_mode`` as one value: (kind, macvtap mode or None), in ``<forward mode>``."""

    composite = True  # its options are forward and macvtap_mode (FORWARD_OPTIONS)

    def __init__(self):
        super().__init__("forward", "forward", "mode")
        self.codec = self

    def show(self, value):
        kind, mode = value
        return kind if kind != "macvtap" else "macvtap/" + mode

    def read(self, elem):
        return read_forward(elem)

    def write(self, elem, value):
        kind, mode = value
        forward = elem.find("forward")
        if kind == "isolated":
            if forward is not None:
                elem.remove(forward)
            return
        if forward is None:
            forward = etree.SubElement(elem, "forward")
        forward.set("mode", mode if kind == "macvtap" else kind)


FORWARD = Forward()
FORWARD_OPTIONS = (
    Option("forward", {"type": "str", "choices": list(FORWARD_KINDS)}),
    Option("macvtap_mode", {"type": "str", "choices": list(MACVTAP_MODES)}),
)

NETWORK_FIELDS = (
    Field("bridge", "bridge", "name", BridgeName()),
    Field("stp", "bridge", "stp", YesNo()),
    Field("bridge_delay", "bridge", "delay", Int(0)),
    Field("mtu", "mtu", "size", Int(68, 65535)),
    Field("mac", "mac", "address", Mac()),
    Field("domain", "domain", "name", DNS_NAME),
    Field("domain_local_only", "domain", "localOnly", YesNo("yes", "no")),
    Field("forward_dev", "forward", "dev", DEVICE_NAME),
)

# Forward interfaces of a macvtap network: a pool of host NICs (<forward><interface dev=.../>).
FORWARD_INTERFACES = ElementList("interfaces", "forward", "interface", [("dev", "dev", DEVICE_NAME)],
                                 ordered=False, shorthand="dev")


# ---- an address family's block: <ip family=...> -------------------------------------------------------------

def ip_elements(root, family):
    """The <ip> elements of one family ('ipv4' also matches a missing family attribute)."""
    return [ip for ip in root.iterfind("ip") if (ip.get("family") or "ipv4") == family]


def read_interface(ip):
    """An <ip> element's address as an ipaddress interface (address/prefix), or None."""
    address = ip.get("address")
    if address is None:
        return None
    prefix = ip.get("prefix")
    if prefix is None and ip.get("netmask"):
        prefix = ipaddress.ip_network("0.0.0.0/%s" % ip.get("netmask")).prefixlen
    if prefix is None:  # libvirt's default: the address class's natural prefix
        prefix = 64 if ":" in address else {0: 8, 1: 16, 2: 24}.get(int(address.split(".")[0]) >> 6, 24)
    return ipaddress.ip_interface("%s/%s" % (address, prefix))


class Address(Field):
    """The host's address on the network with its prefix: ``address`` and ``prefix`` (or ``netmask``,
    kept when the network was defined with one) of the <ip> element, as one ipaddress interface."""

    def __init__(self):
        super().__init__("address", "", "address")
        self.codec = self

    def argspec(self):
        return {"type": "str", "required": True}

    def show(self, value):
        return str(value)

    def read(self, elem):
        return read_interface(elem)

    def write(self, elem, value):
        elem.set("address", str(value.ip))
        if elem.get("netmask") is not None and value.version == 4:
            elem.set("netmask", str(value.netmask))
        else:
            elem.set("prefix", str(value.network.prefixlen))


class DhcpEnabled(Field):
    """A declared ``dhcp`` block turns DHCP on, even with no ranges and no hosts (``<dhcp/>``). Last in
    IP_FIELDS: lists written first make the element, and then there is nothing more to say."""

    composite = True  # the dhcp option is the dict of the lists

    def __init__(self):
        super().__init__("dhcp", "dhcp", "presence")
        self.codec = self

    def show(self, value):
        return "enabled" if value else None

    def read(self, elem):
        return True if elem.find("dhcp") is not None else None

    def write(self, elem, value):
        if value and elem.find("dhcp") is None:
            etree.SubElement(elem, "dhcp")


# Inside one <ip> element. Items of unordered lists compare as sets. ``section`` is virNetworkUpdate's.
# (A declared dhcp block stays when its lists are emptied: prune=False.)
DHCP_RANGES = ElementList("dhcp.ranges", "dhcp", "range", [("start", "start", IPCodec()), ("end", "end", IPCodec())],
                          ordered=False, required=("start", "end"), prune=False)
DHCP_HOSTS = ElementList("dhcp.hosts", "dhcp", "host",
                         [("mac", "mac", Mac()), ("id", "id", Codec()), ("name", "name", Codec()),
                          ("ip", "ip", IPCodec())], ordered=False, required=("ip",), prune=False)
IP_FIELDS = (Address(), DHCP_RANGES, DHCP_HOSTS, DhcpEnabled())

DNS_HOSTS = ElementList("dns_hosts", "dns", "host", [("ip", "ip", IPCodec()), ("hostnames", "<hostname>", DNS_NAME)],
                        ordered=False, required=("ip", "hostnames"),
                        unique={"ip": "each address once (it is also {other}); list all its names in hostnames"})


# DNS SRV and TXT records (dnsmasq serves them; changed live, virNetworkUpdate's dns-srv and dns-txt sections).
DNS_SRV = ElementList("dns_srv", "dns", "srv", [
    ("service", "service", Text(pattern=r"[A-Za-z0-9_\-]{1,15}")), ("protocol", "protocol", Choice("tcp", "udp")),
    ("domain", "domain", DNS_NAME), ("target", "target", DNS_NAME), ("port", "port", Int(0, 65535)),
    ("priority", "priority", Int(0, 65535)), ("weight", "weight", Int(0, 65535))],
    ordered=False, required=("service", "protocol"))
DNS_TXT = ElementList("dns_txt", "dns", "txt", [("name", "name", DNS_NAME), ("value", "value", Codec())],
                      ordered=False, required=("name", "value"),
                      unique={"name": "each name once (it is also {other})"})

# Static routes of the host, through a gateway on the network (a route network's guests reach other subnets).
ROUTES = ElementList("routes", "", "route", [
    ("address", "address", IPCodec()), ("prefix", "prefix", Int(0, 128)), ("netmask", "netmask", IPCodec(4)),
    ("gateway", "gateway", IPCodec()), ("metric", "metric", Int(1)), ("family", "family", Choice("ipv4", "ipv6"))],
    ordered=False, required=("address", "gateway"))

# Port groups: named sets of NIC settings a guest's NIC picks (interfaces[].portgroup); ``default`` is the one a
# NIC without a portgroup gets. Their VLAN, bandwidth and virtualport settings are kept as they are.
PORTGROUPS = ElementList("portgroups", "", "portgroup", [
    ("name", "name", DEVICE_NAME), ("default", "default", YesNo("yes", "no")),
    ("trust_guest_rx_filters", "trustGuestRxFilters", YesNo("yes", "no"))],
    ordered=False, required=("name",), unique={"name": "each port group once (it is also {other})"}, identity="name")

# Quality of service of the whole network (<bandwidth>): average and peak rates in KiB/s, burst in KiB, floor
# (guaranteed to NICs that ask for it) in KiB/s.
BANDWIDTH_FIELDS = tuple(
    Field("bandwidth.%s.%s" % (direction, attr), "bandwidth/" + direction, attr, Int(1))
    for direction in ("inbound", "outbound") for attr in ("average", "peak", "burst", "floor"))


def _pairs(item):
    return " ".join("%s=%s" % pair for pair in item)


def _dns_host(item):
    values = dict(item)
    return "%s (%s)" % (values["ip"], ", ".join(values["<hostname>"]))


# The lists a running network takes live: (virNetworkUpdate section, field, its words, how an item reads).
LIVE_LISTS = (("ip-dhcp-host", DHCP_HOSTS, "DHCP host", _pairs), ("ip-dhcp-range", DHCP_RANGES, "DHCP range", _pairs))
# The lists of the network's own element a running network takes live.
LIVE_DNS = (("dns-host", DNS_HOSTS, "DNS host", _dns_host), ("dns-srv", DNS_SRV, "DNS SRV record", _pairs),
            ("dns-txt", DNS_TXT, "DNS TXT record", _pairs))


def dhcp_block(root, family):
    """The <ip> element of a family that serves DHCP (the first one when none does), or None: where virNetworkUpdate
    changes a running network's DHCP hosts and ranges."""
    ips = ip_elements(root, family)
    return next((ip for ip in ips if ip.find("dhcp") is not None), ips[0] if ips else None)


def ip_block(root, family, create=False):
    """The first <ip> element of a family (made when ``create``), or None."""
    ips = ip_elements(root, family)
    if ips or not create:
        return ips[0] if ips else None
    ip = etree.SubElement(root, "ip")
    if family == "ipv6":
        ip.set("family", "ipv6")
    return ip
