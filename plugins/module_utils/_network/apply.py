# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: the ``network`` module's runner. The only code that calls libvirt for a network.

Order of work: validate the spec and the resulting XML -> refuse what would cut off running
guests (unless ``force``) -> one define of the persistent config -> live updates of a running
network (DHCP hosts, DHCP ranges, DNS hosts) -> restart when asked and needed -> active state ->
autostart. Check mode computes the same plan and stops before the first write.
"""

from __future__ import annotations

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import (
    check_document,
    converge_autostart,
    define,
    each_domain,
    libvirt,
    lookup_or_none,
    start,
    xml_with,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.model import (
    guest_uses_network,
    live_updates,
    normalize_spec,
    plan_network,
    read_spec,
)
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import Plan
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner


def _lookup(conn, name):
    return lookup_or_none(conn.networkLookupByName, name, "VIR_ERR_NO_NETWORK")


_COMMANDS = {"add": "VIR_NETWORK_UPDATE_COMMAND_ADD_LAST", "delete": "VIR_NETWORK_UPDATE_COMMAND_DELETE"}
_SECTIONS = {"ip-dhcp-host": "VIR_NETWORK_SECTION_IP_DHCP_HOST", "ip-dhcp-range": "VIR_NETWORK_SECTION_IP_DHCP_RANGE",
             "dns-host": "VIR_NETWORK_SECTION_DNS_HOST", "dns-srv": "VIR_NETWORK_SECTION_DNS_SRV",
             "dns-txt": "VIR_NETWORK_SECTION_DNS_TXT"}


class NetworkRunner(Runner):
    """Converge one network (``params``: the network module's) on ``conn``."""

    def __init__(self, conn, params, check, tmpdir=None):
        super().__init__(conn, params, check, tmpdir)
        self.applied_live, self.reasons = [], []

    def guests_on(self, net):
        """Names of running guests with a NIC on the network."""
        bridge = None
        try:
            bridge = net.bridgeName()
        except libvirt.libvirtError:
            pass
        return sorted(name for name in each_domain(
            self.conn, libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE,
            lambda dom: dom.name() if guest_uses_network(dom.XMLDesc(0), net.name(), bridge) else None) if name)

    def _refuse_if_in_use(self, net, doing):
        if not net.isActive() or self.params["force"]:
            return
        guests = self.guests_on(net)
        if guests:
            raise UserError("network %s is used by running guest(s) %s; %s would cut them off. Move or stop "
                            "them first, or set force: true" % (net.name(), ", ".join(guests), doing))

    # -- absent ------------------------------------------------------------------------------------

    def absent(self, net):
        if net is None:
            return {"changed": False, "state": "absent"}
        self._refuse_if_in_use(net, "removing it")
        plan = Plan("network %s (persistent config)" % net.name(), xml_with(net, ("VIR_NETWORK_XML_INACTIVE",)), "")
        result = {"changed": True, "state": "absent", "actions": ["destroy", "undefine"] if net.isActive()
                  else ["undefine"], "diff": plan.diff()}
        if not self.check:
            if net.isActive():
                net.destroy()
            if net.isPersistent():
                net.undefine()
        return result

    # -- present / active / inactive ------------------------------------------------------------------

    def run(self):
        name, state = self.params["name"], self.params["state"]
        spec = normalize_spec(self.params)
        net = _lookup(self.conn, name)
        if state == "absent":
            return self.finish(self.absent(net))
        current = xml_with(net, ("VIR_NETWORK_XML_INACTIVE",)) if net is not None else None
        plan = plan_network(current, spec)
        if plan.changed:
            check_document("network", plan.after)
        active = net is not None and net.isActive()
        updates = []
        if active and state != "inactive":
            updates, self.reasons = live_updates(net.XMLDesc(0), plan.after)
        restart = bool(self.reasons) and self.params["restart"] == "if_needed"
        if restart:
            self._refuse_if_in_use(net, "restarting it")
        if active and state == "inactive":
            self._refuse_if_in_use(net, "stopping it")

        if plan.changed:
            self.actions.append("define" if net is None else "update persistent config")
            if not self.check:
                net = define("network", self.conn.networkDefineXMLFlags, plan.after)
        if not restart:
            for update in updates:
                self._live(net, update)
        else:
            self.actions.append("restart")
            if not self.check:
                net.destroy()
                net.create()
            self.reasons = []
        self._converge_state(net, state, active)
        self._autostart(net)

        after = plan.after
        if net is not None and not self.check:
            after = xml_with(net, ("VIR_NETWORK_XML_INACTIVE",))
        changed = bool(plan.changed or self.applied_live or self.actions)
        result = {
            "changed": changed,
            "state": self._final_state(net, state, active),
            "actions": self.actions,
            "applied_live": list(self.applied_live),
            "restart_required": bool(self.reasons),
            "reasons": self.reasons,
            "network": read_spec(after),
        }
        if plan.changed:
            result["diff"] = plan.diff()
        if net is not None and not self.check:
            result["uuid"], result["bridge"] = net.UUIDString(), result["network"].get("bridge")
        return self.finish(result)

    def _live(self, net, update):
        if self.check or net is None:
            self.applied_live.append(update.what)
            return
        try:
            net.update(getattr(libvirt, _COMMANDS[update.command]), getattr(libvirt, _SECTIONS[update.section]),
                       -1, update.xml, libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE)
        except libvirt.libvirtError as exc:
            self.reasons.append("%s: could not be applied to the running network (%s); it applies when the "
                                "network restarts" % (update.what, exc))
            self.warn("network %s: %s could not be applied live: %s" % (net.name(), update.what, exc))
            return
        self.applied_live.append(update.what)

    def _converge_state(self, net, state, active):
        if state == "active" and not active:
            self.actions.append("start")
            if not self.check and not start(net, net.create):
                self.actions[-1] = "start (already started by another writer)"
        elif state == "inactive" and active:
            self.actions.append("stop")
            if not self.check:
                net.destroy()

    def _autostart(self, net):
        action = converge_autostart(net, self.params["autostart"], self.check)
        if action:
            self.actions.append(action)

    @staticmethod
    def _final_state(net, state, active):
        if state in ("active", "inactive"):
            return state
        return "active" if active else "inactive"
