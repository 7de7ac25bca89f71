# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: what converging guests needs to know about their host, read once by the caller.

``gather_host`` reads the capabilities (machine aliases, arch) and, when asked, every guest's
persistent XML once: the MACs the host's guests use (a derived MAC must not collide with them) and
the current XML of each guest, so converging N guests reads N documents, not N x N.
"""

from __future__ import annotations

import threading

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import libvirt
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._xml import parse_xml


def config_xml_flags():
    """The persistent config, with secrets (graphics passwords are compared, never shown)."""
    return libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


class HostContext:
    """The host's facts for the guest model: machine aliases ({'pc': 'pc-i440fx-7.2'}), the host's
    arch, each guest's MACs and (when read) its persistent XML. Pure data: tests build it by hand."""

    def __init__(self, machine_aliases=None, guest_macs=None, host_arch="x86_64", guest_xml=None):
        self.machine_aliases = dict(machine_aliases or {})
        self.host_arch = host_arch
        self.guest_macs = {name: {m.lower() for m in macs} for name, macs in (guest_macs or {}).items()}
        self.guest_xml = dict(guest_xml or {})
        self._lock = threading.Lock()  # guests converged in parallel share one context
        self.serial = threading.RLock()  # held while a guest is planned and written (apply.py)

    def macs_except(self, name):
        """The MACs of every guest but ``name`` (a guest may keep its own)."""
        taken = set()
        with self._lock:
            for guest, macs in self.guest_macs.items():
                if guest != name:
                    taken |= macs
        return taken

    def remember(self, name, xml):
        """A guest's new persistent XML (after this run changed it): later guests see its MACs."""
        with self._lock:
            self.guest_xml[name] = xml
            self.guest_macs[name] = set(macs_of(xml))

    def remember_macs(self, name, macs):
        """The MACs a guest will have (check mode's plan): later guests are predicted around them."""
        with self._lock:
            self.guest_macs[name] = set(macs)

    def forget(self, name):
        with self._lock:
            self.guest_xml.pop(name, None)
            self.guest_macs.pop(name, None)

    def current_xml(self, name):
        with self._lock:
            return self.guest_xml.get(name)


def macs_of(xml):
    return [mac.get("address", "").lower() for mac in parse_xml(xml).iterfind("devices/interface/mac")]


def gather_host(conn, read_guests=True):
    """The HostContext of ``conn``'s host: capabilities always; every guest's persistent XML (and so
    their MACs) when ``read_guests`` (a caller that derives no MAC can skip it)."""
    caps = parse_xml(conn.getCapabilities())
    host_arch = caps.findtext("host/cpu/arch") or "x86_64"
    aliases = {}
    for machine in caps.iterfind("guest/arch[@name='%s']/machine" % host_arch):
        if machine.get("canonical"):
            aliases[machine.text] = machine.get("canonical")
    host = HostContext(aliases, host_arch=host_arch)
    if read_guests:
        for dom in conn.listAllDomains(0):
            if dom.isPersistent():
                host.remember(dom.name(), dom.XMLDesc(config_xml_flags()))
            else:
                host.guest_macs[dom.name()] = set(macs_of(dom.XMLDesc(0)))
    return host
