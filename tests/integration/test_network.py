"""network against the real daemon: a guest gets its static lease, DHCP hosts change live, kinds define."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from lxml import etree

import harness
from harness import guest, report_where

pytestmark = pytest.mark.slow


def _subnet(prefix):
    """A /24 per test run, from the run's random hex, so parallel runs never share addresses."""
    return "10.252.%d" % int(prefix[-3:-1], 16)


def _net_task(name, subnet, hosts, **extra):
    args = {
        "name": name,
        "bridge": "kvn" + name[-8:-2],
        "ipv4": {"address": subnet + ".1/24",
                 "dhcp": {"ranges": [{"start": subnet + ".100", "end": subnet + ".150"}], "hosts": hosts}},
        "dns_hosts": [{"ip": subnet + ".5", "hostnames": ["storage"]}],
        "autostart": True,
    }
    args.update(extra)
    return {"name": "network " + name, "kvmfleet.libvirt.network": args, "register": "net"}


def _dnsmasq_pid(name):
    return int(Path("/run/libvirt/network/%s.pid" % name).read_text().strip())


def _bridge_ports(bridge):
    return sorted(p.name for p in Path("/sys/class/net/%s/brif" % bridge).iterdir())


def test_static_lease_and_live_dhcp_changes(conn, prefix, ansible, image, lab):
    name, subnet = prefix + "n", _subnet(prefix)
    vm = prefix + "vm"
    mac = "52:54:00:ab:%s:01" % prefix[-3:-1]
    hosts = [{"mac": mac, "name": "vm", "ip": subnet + ".11"}]

    first = ansible.converge([_net_task(name, subnet, hosts)])
    result = first.result("network " + name)
    assert result["actions"] == ["define", "start", "autostart on"]
    net = conn.networkLookupByName(name)
    assert net.isActive() and net.autostart()
    assert result["uuid"] == net.UUIDString() and result["bridge"] == net.bridgeName()
    assert "<host mac='%s' name='vm' ip='%s.11'/>" % (mac, subnet) in net.XMLDesc(0)

    # A guest on the network gets the static lease it was given.
    cmdline = image["cmdline"] + " kvmfleet.dhcp=1"
    ansible.run([guest(vm, image, lab, interfaces=[{"network": name, "mac": mac}],
                       boot={"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": cmdline})])
    report = report_where(vm, lambda r: r["nics"].get(mac, {}).get("ipv4"), "a DHCP lease", timeout=120)
    assert report["nics"][mac]["ipv4"] == subnet + ".11"

    # A second static host and a new DNS record go in live: same dnsmasq, the guest's port stays on the bridge.
    pid, ports = _dnsmasq_pid(name), _bridge_ports(net.bridgeName())
    assert len(ports) == 1, ports
    hosts2 = hosts + [{"mac": "52:54:00:ab:cd:02", "name": "other", "ip": subnet + ".12"}]
    dns2 = [{"ip": subnet + ".5", "hostnames": ["storage"]}, {"ip": subnet + ".6", "hostnames": ["backup"]}]
    live = ansible.converge([_net_task(name, subnet, hosts2, dns_hosts=dns2)])
    result = live.result("network " + name)
    assert result["applied_live"] == ["add DHCP host ip=%s.12 mac=52:54:00:ab:cd:02 name=other" % subnet,
                                      "add DNS host %s.6 (backup)" % subnet]
    assert result["restart_required"] is False and result["actions"] == ["update persistent config"]
    assert _dnsmasq_pid(name) == pid and _bridge_ports(net.bridgeName()) == ports, "the network was not restarted"
    hostsfile = Path("/var/lib/libvirt/dnsmasq/%s.hostsfile" % name).read_text()
    assert "52:54:00:ab:cd:02,%s.12,other" % subnet in hostsfile, hostsfile
    assert "backup" in Path("/var/lib/libvirt/dnsmasq/%s.addnhosts" % name).read_text()
    assert "52:54:00:ab:cd:02" in net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)

    # Removing it again is live too.
    back = ansible.converge([_net_task(name, subnet, hosts)])
    assert back.result("network " + name)["applied_live"] == [
        "remove DHCP host ip=%s.12 mac=52:54:00:ab:cd:02 name=other" % subnet, "remove DNS host %s.6 (backup)" % subnet]
    assert "52:54:00:ab:cd:02" not in Path("/var/lib/libvirt/dnsmasq/%s.hostsfile" % name).read_text()

    # A change that needs a restart is reported, not made; restarting under a running guest is refused.
    mtu = ansible.converge([_net_task(name, subnet, hosts, mtu=1400)])
    result = mtu.result("network " + name)
    assert result["restart_required"] is True and result["reasons"] == [
        "mtu: (none) -> 1400 (applies when the network restarts)"]
    assert _dnsmasq_pid(name) == pid
    refused = ansible.run([_net_task(name, subnet, hosts, mtu=1400, restart="if_needed")], expect_rc=2)
    message = refused.result("network " + name)["msg"]
    assert vm in message and "force: true" in message
    assert _dnsmasq_pid(name) == pid, "a refused restart touched nothing"

    gone = ansible.run([{"name": "remove", "kvmfleet.libvirt.network": {"name": name, "state": "absent"}}],
                       expect_rc=2)
    assert vm in gone.result("remove")["msg"] and conn.networkLookupByName(name).isActive()

    # force: true restarts it under the running guest (whose NIC then needs re-plugging) and applies the MTU.
    restarted = ansible.run([_net_task(name, subnet, hosts, mtu=1400, restart="if_needed", force=True)])
    assert restarted.result("network " + name)["actions"] == ["restart"]
    assert "<mtu size='1400'/>" in net.XMLDesc(0)
    assert restarted.result("network " + name)["restart_required"] is False
    assert _dnsmasq_pid(name) != pid, "a new dnsmasq: the network really restarted"
    assert harness.domain_state(conn, vm) == "running"

    # ... and removes it under the running guest.
    forced = ansible.run([{"name": "remove", "kvmfleet.libvirt.network": {"name": name, "state": "absent",
                                                                          "force": True}}])
    assert forced.result("remove")["changed"] and forced.result("remove")["actions"] == ["destroy", "undefine"]
    assert name not in [n.name() for n in conn.listAllNetworks(0)]


def test_network_kinds_define_and_converge(conn, prefix, ansible):
    sub = _subnet(prefix)
    nat = {"name": prefix + "nat", "forward": "nat", "bridge": "kvt" + prefix[-7:-1], "domain": "lab.test",
           "mtu": 1450, "ipv4": {"address": sub + ".1/24",
                                 "dhcp": {"ranges": [{"start": sub + ".20", "end": sub + ".30"}]}},
           "ipv6": {"address": "fd00:%s::1/64" % prefix[-5:-1], "dhcp": {
               "ranges": [{"start": "fd00:%s::100" % prefix[-5:-1], "end": "fd00:%s::1ff" % prefix[-5:-1]}]}}}
    bridged = {"name": prefix + "lan", "forward": "bridge", "bridge": "kvnobr0", "state": "inactive"}
    macvtap = {"name": prefix + "direct", "forward": "macvtap", "interfaces": ["kvnodev0", "kvnodev1"],
               "macvtap_mode": "vepa", "state": "inactive"}
    tasks = [{"name": n["name"], "kvmfleet.libvirt.network": n} for n in (nat, bridged, macvtap)]
    ansible.converge(tasks)
    assert conn.networkLookupByName(prefix + "nat").isActive(), "a NAT network starts (no guest sends on it)"
    direct = etree.fromstring(conn.networkLookupByName(prefix + "direct").XMLDesc(0))
    assert direct.find("forward").get("mode") == "vepa"
    assert [i.get("dev") for i in direct.iterfind("forward/interface")] == ["kvnodev0", "kvnodev1"]
    assert not conn.networkLookupByName(prefix + "lan").isActive()

    # Switching a routed network's kind happens in place; the generated MAC and the UUID stay.
    before = etree.fromstring(conn.networkLookupByName(prefix + "nat").XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE))
    ansible.converge([{"name": "iso", "kvmfleet.libvirt.network": dict(nat, forward="route", restart="if_needed")}])
    after = etree.fromstring(conn.networkLookupByName(prefix + "nat").XMLDesc(0))
    assert after.find("forward").get("mode") == "route"
    assert after.findtext("uuid") == before.findtext("uuid")
    assert after.find("mac").get("address") == before.find("mac").get("address")

    # A network declared without a bridge name keeps the one libvirt generated, through a restart too.
    auto = {"name": prefix + "auto"}
    ansible.converge([{"name": "auto", "kvmfleet.libvirt.network": auto}])
    generated = conn.networkLookupByName(prefix + "auto").bridgeName()
    assert generated.startswith("virbr")
    ansible.converge([{"name": "auto", "kvmfleet.libvirt.network": dict(auto, mtu=1400, restart="if_needed")}])
    assert conn.networkLookupByName(prefix + "auto").bridgeName() == generated


@pytest.mark.parametrize("args, fragment", [
    ({"forward": "vxlan"}, "forward"),
    ({"ipv4": {"address": "10.253.0.1/24",
               "dhcp": {"ranges": [{"start": "10.253.0.10", "end": "10.253.0.60"},
                                   {"start": "10.253.0.50", "end": "10.253.0.90"}]}}},
     "ipv4.dhcp.ranges[1]"),
    ({"ipv4": {"address": "10.253.0.1/24", "dhcp": {"hosts": [{"mac": "52:54:00:00:00:01", "ip": "10.9.9.9"}]}}},
     "ipv4.dhcp.hosts[0].ip"),
    ({"ipv4": {"address": "10.253.0.1"}}, "ipv4.address"),
])
def test_bad_network_input_changes_nothing(conn, prefix, ansible, args, fragment):
    name = prefix + "bad"
    task = {"name": "bad", "kvmfleet.libvirt.network": dict(args, name=name)}
    run = ansible.run([task], expect_rc=2)
    assert fragment in run.result("bad")["msg"]
    assert "Traceback" not in run.output
    assert name not in [n.name() for n in conn.listAllNetworks(0)]


def test_srv_txt_routes_portgroups_and_bandwidth_on_a_running_network(conn, prefix, ansible):
    """What real hosts declare (issue 21): defined, started and read back by libvirt; SRV and TXT records change live
    without a restart of the network, the read-back spec converges to no change."""
    name, subnet = prefix + "q", _subnet(prefix)
    extra = {
        "dns_srv": [{"service": "ldap", "protocol": "tcp", "target": "ldap1", "port": 389}],
        "dns_txt": [{"name": "info", "value": "v1"}],
        "routes": [{"address": "10.253.0.0", "prefix": 16, "gateway": subnet + ".2", "metric": 5}],
        "portgroups": [{"name": "web", "default": True}, {"name": "db"}],
    }
    # Bandwidth is defined only: this machine's kernel has no sfq qdisc, so libvirt cannot start a shaped network.
    shaped = {"bandwidth": {"inbound": {"average": 1000, "peak": 5000, "burst": 1024}, "outbound": {"average": 800}},
              "state": "present", "autostart": False}
    ansible.converge([_net_task(name, subnet, [], **extra),
                      _net_task(name + "s", subnet, [], **shaped)])  # never started: the same subnet is fine
    shaped_root = etree.fromstring(conn.networkLookupByName(name + "s").XMLDesc(0).encode())
    assert shaped_root.find("bandwidth/inbound").get("peak") == "5000"
    net = conn.networkLookupByName(name)
    root = etree.fromstring(net.XMLDesc(0).encode())
    assert root.find("dns/srv").get("service") == "ldap" and root.find("dns/txt").get("value") == "v1"
    assert root.find("route").get("gateway") == subnet + ".2"
    assert sorted(g.get("name") for g in root.findall("portgroup")) == ["db", "web"]
    extra["dns_txt"] = [{"name": "info", "value": "v2"}]
    changed = ansible.converge([_net_task(name, subnet, [], **extra)]).result("network " + name)
    assert changed["applied_live"] == ["remove DNS TXT record name=info value=v1", "add DNS TXT record name=info value=v2"]
    assert not changed["restart_required"] and net.isActive()  # (libvirt restarts dnsmasq for TXT and SRV records)
    assert etree.fromstring(net.XMLDesc(0).encode()).find("dns/txt").get("value") == "v2", "not in the running network"
    spec = dict(changed["network"])
    spec.pop("uuid")
    again = ansible.run([{"name": "read back", "kvmfleet.libvirt.network": spec}])
    assert again.changed == 0


def test_address_blocks_are_added_changed_and_removed(conn, prefix, ansible):
    """More than one address block per family (issue 21): libvirt takes them, a block not listed goes."""
    name, subnet = prefix + "m", _subnet(prefix)
    blocks = [{"address": subnet + ".1/24", "dhcp": {"ranges": [{"start": subnet + ".100", "end": subnet + ".150"}]}},
              {"address": "10.254.%d.1/24" % int(prefix[-3:-1], 16)},
              {"address": "fd00:%x::1/64" % int(prefix[-3:-1], 16)}]
    task = {"name": "blocks", "kvmfleet.libvirt.network": {"name": name, "bridge": "kvm" + name[-8:-2], "state": "present",
                                                           "addresses": blocks}}
    first = ansible.converge([task]).result("blocks")
    root = etree.fromstring(conn.networkLookupByName(name).XMLDesc(0).encode())
    assert [ip.get("address") for ip in root.findall("ip")] == [b["address"].split("/")[0] for b in blocks]
    assert [b["address"] for b in first["network"]["addresses"]] == [b["address"] for b in blocks]
    task["kvmfleet.libvirt.network"]["addresses"] = blocks[:1]
    changed = ansible.converge([task]).result("blocks")
    assert "addresses" not in changed["network"] and changed["network"]["ipv4"]["address"] == blocks[0]["address"]
    assert "ipv6" not in changed["network"]
    root = etree.fromstring(conn.networkLookupByName(name).XMLDesc(0).encode())
    assert [ip.get("address") for ip in root.findall("ip")] == [subnet + ".1"] and root.find("ip/dhcp") is not None
