# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what converging guests needs to know about their host, read once by the caller.

``gather_host`` reads the capabilities (machine aliases, arch) and, when asked, every guest's
persistent XML once: the MACs the host's guests use (a derived MAC must not collide with them) and
the current XML of each guest, so converging N guests reads N documents, not N x N. A HostContext is
data: planning reads it and never libvirt. When it was gathered without the guests, their MACs are read
(``read_guest_macs``) only when a plan derives a MAC (plan.derives_mac), by the caller, before planning.
"""

from __future__ import annotations

import threading

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.arch import parse_domain_caps, parse_guest_arches
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._domain.plan import caps_key, derives_mac
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host.maintenance import read_maintenance
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import each_domain, libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml


def config_xml_flags():
    """The persistent config, with secrets (graphics passwords are compared, never shown)."""
    return libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


class HostContext:
    """The host's facts for the guest model: machine aliases ({'pc': 'pc-i440fx-7.2'}), the host's
    arch, each guest's MACs and (when read) its persistent XML. Pure data: tests build it by hand.

    ``macs_complete``: whether every guest's MACs are in it (gather_host without the guests leaves them out,
    and ``load_macs`` puts them in when a MAC is to be derived). ``arches``: every architecture the hypervisor
    runs (arch.parse_guest_arches: machines and their aliases per arch); ``machine_aliases`` are the host arch's
    when ``arches`` does not give them. ``domain_caps``: {(arch, machine, virt_type): arch.parse_domain_caps or
    None}, read before planning (read_domain_caps_for) and only looked up by the plan.
    """

    def __init__(self, machine_aliases=None, guest_macs=None, host_arch="x86_64", guest_xml=None, macs_complete=True,
                 arches=None, domain_caps=None):
        self.machine_aliases = dict(machine_aliases or {})
        self.host_arch = host_arch
        self.arches = dict(arches or {})
        self.domain_caps = dict(domain_caps or {})
        self.guest_macs = {name: {m.lower() for m in macs} for name, macs in (guest_macs or {}).items()}
        self.guest_xml = dict(guest_xml or {})
        self.macs_complete = macs_complete
        # name -> XML whose MACs are not parsed yet (parsed when a derived MAC must avoid them)
        self._unread = {name: xml for name, xml in self.guest_xml.items() if name not in self.guest_macs}
        self.domains = {}  # name -> virDomain of ``conn``, as listed once (gather_host)
        self.conn = None
        self.references = set()  # (kind, name) of networks and pools seen to exist
        self._lock = threading.RLock()  # guests converged in parallel share one context
        self.serial = threading.RLock()  # held while a guest is planned and written (apply.py)
        self._maintenance = None

    def canonical_machine(self, arch, machine):
        """The machine type libvirt stores for ``machine`` of a guest of ``arch`` (None: the host's arch):
        'pseries' of a ppc64le guest comes back as 'pseries-7.2'."""
        arch = arch or self.host_arch
        if arch in self.arches:
            return self.arches[arch]["machine_aliases"].get(machine, machine)
        return self.machine_aliases.get(machine, machine) if arch == self.host_arch else machine

    def caps_for(self, key):
        """The domain capabilities read for ``key`` (plan.caps_key), None when unknown."""
        with self._lock:
            return self.domain_caps.get(key)

    def caps_known(self, key):
        with self._lock:
            return key in self.domain_caps

    def remember_caps(self, key, caps):
        with self._lock:
            self.domain_caps[key] = caps

    def load_macs(self, macs):
        """Every guest's MACs ({name: MACs}, read_guest_macs), read when a MAC is to be derived."""
        with self._lock:
            for guest, found in macs.items():
                self.guest_macs.setdefault(guest, {m.lower() for m in found})
            self.macs_complete = True

    def maintenance(self, conn):
        """The host's maintenance mark (_host/maintenance.py), read once."""
        with self._lock:
            if self._maintenance is None:
                self._maintenance = read_maintenance(conn)
            return self._maintenance

    def macs_except(self, name):
        """The MACs of every guest but ``name`` (a guest may keep its own), as a container that looks
        them up when asked (building the set for each of N guests would cost N x N)."""
        return _OtherGuestsMacs(self, name)

    def mac_taken(self, mac, by_other_than):
        with self._lock:
            if not self.macs_complete:
                raise RuntimeError("a MAC was derived without the host's MACs: the caller reads them first "
                                   "(plan.derives_mac, HostContext.load_macs)")
            for guest, xml in self._unread.items():
                self.guest_macs[guest] = set(macs_of(xml))
            self._unread.clear()
            return any(mac in macs for guest, macs in self.guest_macs.items() if guest != by_other_than)

    def remember(self, name, xml):
        """A guest's new persistent XML (after this run changed it): later guests see its MACs."""
        with self._lock:
            self.guest_xml[name] = xml
            self._unread[name] = xml
            self.guest_macs.pop(name, None)

    def remember_macs(self, name, macs):
        """The MACs a guest will have (check mode's plan): later guests are predicted around them."""
        with self._lock:
            self._unread.pop(name, None)
            self.guest_macs[name] = set(macs)

    def forget(self, name):
        with self._lock:
            self.guest_xml.pop(name, None)
            self._unread.pop(name, None)
            self.guest_macs.pop(name, None)
            self.domains.pop(name, None)

    def renamed(self, old, new, xml):
        """A guest renamed from ``old`` to ``new`` (virDomainRename; or, in check mode, predicted to be), ``xml``
        its document under the new name: the old name is forgotten (no guest has it now), the new one known."""
        with self._lock:
            self.forget(old)
            self.remember(new, xml)

    def current_xml(self, name):
        with self._lock:
            return self.guest_xml.get(name)

    def domain(self, conn, name):
        """The guest's handle as listed by gather_host when ``conn`` is the connection that listed it;
        None when it was not listed (then look it up)."""
        if conn is not self.conn:
            return None
        with self._lock:
            return self.domains.get(name)


class _OtherGuestsMacs:
    def __init__(self, host, name):
        self.host, self.name = host, name

    def __contains__(self, mac):
        return self.host.mac_taken(mac, self.name)


def macs_of(xml):
    return [mac.get("address", "").lower() for mac in parse_xml(xml).iterfind("devices/interface/mac")]


def read_guest_macs(conn):
    """Every guest's MACs ({name: MACs}): the persistent config's, or the live XML's for a transient guest."""
    macs = dict(each_domain(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT,
                            lambda dom: (dom.name(), set(macs_of(dom.XMLDesc(config_xml_flags()))))))
    macs.update(each_domain(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT,
                            lambda dom: (dom.name(), set(macs_of(dom.XMLDesc(0))))))
    return macs


def gather_host(conn, read_guests=True):
    """The HostContext of ``conn``'s host: capabilities always; every guest's persistent XML (and so
    their MACs) when ``read_guests``; without it, the caller reads the guests' MACs (read_guest_macs) only
    when a plan derives a MAC."""
    caps = parse_xml(conn.getCapabilities())
    host_arch = caps.findtext("host/cpu/arch") or "x86_64"
    arches = parse_guest_arches(caps)
    aliases = arches.get(host_arch, {}).get("machine_aliases", {})
    host = HostContext(aliases, host_arch=host_arch, macs_complete=read_guests, arches=arches)
    if read_guests:
        host.conn = conn
        for dom, xml in each_domain(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT,
                                    lambda dom: (dom, dom.XMLDesc(config_xml_flags()))):
            host.domains[dom.name()] = dom
            host.remember(dom.name(), xml)
        for dom, xml in each_domain(conn, libvirt.VIR_CONNECT_LIST_DOMAINS_TRANSIENT, lambda dom: (dom, dom.XMLDesc(0))):
            host.domains[dom.name()] = dom
            host.guest_macs[dom.name()] = set(macs_of(xml))
    return host


def read_domain_caps_for(conn, host, current_xml, spec):
    """Before a guest is planned: read the domain capabilities of its (arch, machine, virt type) into ``host``,
    once per key for every guest of the run. Where libvirt cannot answer (no emulator for that arch, KVM asked on a
    host without it) the key holds None: the plan falls back to the architecture's rules and libvirt judges at
    define."""
    key = caps_key(current_xml, spec, host)
    if host.caps_known(key):
        return
    try:
        caps = parse_domain_caps(conn.getDomainCapabilities(None, key[0], key[1], key[2], 0))
    except libvirt.libvirtError:
        caps = None
    host.remember_caps(key, caps)


def read_facts_for(conn, host, current_xml, spec):
    """Everything planning a guest reads from libvirt, read into ``host`` first: its arch's domain capabilities
    and, when a MAC is derived, every guest's MACs."""
    read_domain_caps_for(conn, host, current_xml, spec)
    read_macs_for(conn, host, current_xml, spec)


def read_macs_for(conn, host, current_xml, spec):
    """Before a guest is planned: read every guest's MACs into ``host`` when the plan will derive a MAC and the
    host's facts lack them (the one libvirt read planning may need, made here, so plan_domain reads nothing)."""
    if not host.macs_complete and derives_mac(current_xml, spec):
        host.load_macs(read_guest_macs(conn))
