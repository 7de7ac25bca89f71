"""The network model over plain XML: no daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network import model
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._network.spec import network_options
from testdriver import module_params

SCHEMA = etree.RelaxNG(file="/usr/share/libvirt/schemas/network.rng")
FIXTURE = "network-nat.xml"


def params(**given_params):
    """Module parameters as AnsibleModule hands them over: every option present, None when not given."""
    return module_params(network_options(), **given_params)


def plan(current, **kwargs):
    kwargs.setdefault("name", "outside")
    return model.plan_network(current, model.normalize_spec(params(**kwargs)))


def valid(xml):
    doc = etree.fromstring(xml.encode())
    assert SCHEMA.validate(doc), SCHEMA.error_log.last_error
    return doc


def same_element(one, other):
    assert one is not None and other is not None
    return etree.tostring(one, with_tail=False) == etree.tostring(other, with_tail=False)


def converges(current, **kwargs):
    """Plan, check the result validates, and check that planning again changes nothing."""
    first = plan(current, **kwargs)
    valid(first.after)
    again = plan(first.after, **kwargs)
    assert not again.changed, [c.describe() for c in again.changes]
    assert again.after == first.after
    return first


LAB = {"address": "192.168.100.1/24",
       "dhcp": {"ranges": [{"start": "192.168.100.100", "end": "192.168.100.199"}],
                "hosts": [{"mac": "52:54:00:10:00:01", "name": "web1", "ip": "192.168.100.11"}]}}


def test_new_isolated_network_has_no_forward_and_validates():
    result = converges(None, name="lab", ipv4=LAB, dns_hosts=[{"ip": "192.168.100.5", "hostnames": ["nfs"]}])
    doc = valid(result.after)
    assert doc.find("forward") is None
    assert doc.find("ip").attrib == {"address": "192.168.100.1", "prefix": "24"}
    assert doc.find("ip/dhcp/host").attrib == {"mac": "52:54:00:10:00:01", "name": "web1", "ip": "192.168.100.11"}
    assert doc.find("dns/host/hostname").text == "nfs"
    assert result.diff()["before"] == "" and result.diff()["after"].startswith("<network>")


def test_a_bare_new_network_is_a_change():
    result = converges(None, name="bare")
    assert result.changed and valid(result.after).findtext("name") == "bare"


def test_nat_network_with_everything_validates():
    result = converges(None, name="out", forward="nat", forward_dev="eth0", bridge="kvbr0", stp=False, mtu=9000,
                       domain="lab.example", domain_local_only=True, ipv4=LAB,
                       ipv6={"address": "fd00:100::1/64",
                             "dhcp": {"ranges": [{"start": "fd00:100::100", "end": "fd00:100::1ff"}],
                                      "hosts": [{"id": "0:3:0:1:52:54:0:1:2:3", "ip": "fd00:100::10"},
                                                {"name": "web2", "ip": "fd00:100::11"}]}})
    doc = valid(result.after)
    assert doc.find("forward").attrib == {"mode": "nat", "dev": "eth0"}
    assert [ip.get("family") for ip in doc.iterfind("ip")] == [None, "ipv6"]


def test_unchanged_spec_leaves_libvirts_document_untouched(fixture_text):
    current = fixture_text(FIXTURE)
    # the fixture writes a netmask; a prefix length meaning the same is no change
    same = plan(current, forward="nat", bridge="virbr7", domain="lab.example", domain_local_only=True, stp=True,
                ipv4={"address": "192.168.77.1/24",
                      "dhcp": {"ranges": [{"start": "192.168.77.100", "end": "192.168.77.199"}],
                               "hosts": [{"mac": "52:54:00:10:00:01", "name": "web1", "ip": "192.168.77.11"}]}},
                dns_hosts=[{"ip": "192.168.77.5", "hostnames": ["storage", "nfs"]}])
    assert not same.changed and same.after == current


def test_adding_a_dhcp_host_changes_only_that(fixture_text):
    current = fixture_text(FIXTURE)
    hosts = [{"mac": "52:54:00:10:00:01", "name": "web1", "ip": "192.168.77.11"},
             {"mac": "52:54:00:10:00:02", "name": "web2", "ip": "192.168.77.12"}]
    result = converges(current, ipv4={"address": "192.168.77.1/24", "dhcp": {"hosts": hosts}})
    assert [c.what for c in result.changes] == ["ipv4.dhcp.hosts"]
    before, after = etree.fromstring(current.encode()), valid(result.after)
    assert after.find("ip/dhcp/host/lease").get("expiry") == "30", "the kept host keeps its lease child"
    assert after.find("ip/dhcp/range/lease") is not None, "ranges were not declared: untouched"
    for path in ("uuid", "mac", "bridge", "portgroup", "forward", "ip/tftp", "ip/dhcp/bootp", "dns/forwarder",
                 "{http://libvirt.org/schemas/network/dnsmasq/1.0}options"):
        assert same_element(before.find(path), after.find(path)), path
    assert after.find("ip").get("netmask") == "255.255.255.0", "the address style libvirt wrote is kept"


def test_address_change_keeps_netmask_style(fixture_text):
    result = converges(fixture_text(FIXTURE), ipv4={"address": "192.168.77.1/16"})
    assert valid(result.after).find("ip").attrib == {"address": "192.168.77.1", "netmask": "255.255.0.0"}


def test_empty_lists_remove_and_omitted_lists_keep(fixture_text):
    current = fixture_text(FIXTURE)
    kept = plan(current, ipv4={"address": "192.168.77.1/24", "dhcp": {}})
    assert not kept.changed
    cleared = converges(current, ipv4={"address": "192.168.77.1/24", "dhcp": {"ranges": [], "hosts": []}},
                        dns_hosts=[])
    doc = valid(cleared.after)
    assert doc.find("ip/dhcp") is not None and doc.find("ip/dhcp/range") is None
    assert doc.find("ip/dhcp/bootp") is not None
    assert doc.find("dns/host") is None and doc.find("dns/forwarder") is not None
    assert sorted(c.what for c in cleared.changes) == ["dns_hosts", "ipv4.dhcp.hosts", "ipv4.dhcp.ranges"]


def test_forward_change_between_routed_kinds_is_in_place(fixture_text):
    result = converges(fixture_text(FIXTURE), forward="isolated")
    assert valid(result.after).find("forward") is None
    back = converges(result.after, forward="route")
    assert valid(back.after).find("forward").get("mode") == "route"


def test_bridge_and_macvtap_networks():
    bridged = converges(None, name="lan", forward="bridge", bridge="br0")
    assert valid(bridged.after).find("forward").get("mode") == "bridge"
    macvtap = converges(None, name="direct", forward="macvtap", interfaces=["eth1", "eth2"])
    doc = valid(macvtap.after)
    assert doc.find("forward").get("mode") == "bridge" and doc.find("bridge") is None
    assert sorted(i.get("dev") for i in doc.iterfind("forward/interface")) == ["eth1", "eth2"]
    assert model.read_spec(doc)["forward"] == "macvtap"
    vepa = converges(macvtap.after, name="direct", macvtap_mode="vepa")
    assert valid(vepa.after).find("forward").get("mode") == "vepa"
    assert not plan(vepa.after, name="direct", interfaces=["eth2", "eth1"]).changed, "interfaces are a set"


@pytest.mark.parametrize("kwargs, option, fragment", [
    ({"ipv4": {"address": "192.168.1.1"}}, "ipv4.address", "prefix length"),
    ({"ipv4": {"address": "192.168.1.0/24"}}, "ipv4.address", "not the network's own"),
    ({"ipv4": {"address": "fd00::1/64"}}, "ipv4.address", "IPv4"),
    ({"ipv4": {"address": "10.0.0.1/24",
               "dhcp": {"ranges": [{"start": "10.0.0.10", "end": "10.0.0.50"},
                                   {"start": "10.0.0.40", "end": "10.0.0.60"}]}}},
     "ipv4.dhcp.ranges[1]", "overlap"),
    ({"ipv4": {"address": "10.0.0.1/24", "dhcp": {"ranges": [{"start": "10.0.0.10", "end": "10.0.1.5"}]}}},
     "ipv4.dhcp.ranges[0].end", "inside 10.0.0.0/24"),
    ({"ipv4": {"address": "10.0.0.1/24", "dhcp": {"ranges": [{"start": "10.0.0.90", "end": "10.0.0.10"}]}}},
     "ipv4.dhcp.ranges[0]", "must not come after"),
    ({"ipv4": {"address": "10.0.0.1/24", "dhcp": {"hosts": [{"mac": "52:54:00:00:00:01", "ip": "10.9.0.5"}]}}},
     "ipv4.dhcp.hosts[0].ip", "inside 10.0.0.0/24"),
    ({"ipv4": {"address": "10.0.0.1/24",
               "dhcp": {"hosts": [{"mac": "52:54:00:00:00:01", "ip": "10.0.0.5"},
                                  {"mac": "52:54:00:00:00:01", "ip": "10.0.0.6"}]}}},
     "ipv4.dhcp.hosts[1].mac", "its own mac"),
    ({"ipv4": {"address": "10.0.0.1/24", "dhcp": {"hosts": [{"ip": "10.0.0.5"}]}}},
     "ipv4.dhcp.hosts[0]", "at least one of mac, name"),
    ({"ipv4": {"address": "10.0.0.1/24", "dhcp": {"hosts": [{"mac": "zz", "ip": "10.0.0.5"}]}}},
     "ipv4.dhcp.hosts[0].mac", "unicast MAC"),
    ({"ipv6": {"address": "fd00::1/64", "dhcp": {"hosts": [{"mac": "52:54:00:00:00:01", "ip": "fd00::5"}]}}},
     "ipv6.dhcp.hosts[0].mac", "DUID"),
    ({"bridge": "a-very-long-bridge-name"}, "bridge", "1 to 15 characters"),
    ({"mtu": 20}, "mtu", "from 68 to 65535"),
    ({"forward": "bridge"}, "bridge", "existing host bridge"),
    ({"forward": "bridge", "bridge": "br0", "ipv4": {"address": "10.0.0.1/24"}}, "ipv4", "take no addresses"),
    ({"forward": "macvtap"}, "interfaces", "host NICs"),
    ({"forward": "isolated", "forward_dev": "eth0"}, "forward_dev", "only forward: nat and route"),
    ({"forward": "nat", "interfaces": ["eth1"]}, "interfaces", "only forward: macvtap"),
    ({"dns_hosts": [{"ip": "10.0.0.5", "hostnames": ["a"]}, {"ip": "10.0.0.5", "hostnames": ["b"]}]},
     "dns_hosts[1].ip", "each address once"),
    ({"dns_hosts": [{"ip": "not-an-ip", "hostnames": ["a"]}]}, "dns_hosts[0].ip", "IPv4 or IPv6"),
])
def test_bad_input_names_the_option(kwargs, option, fragment):
    with pytest.raises(SpecError) as error:
        plan(None, name="bad", **kwargs)
    assert error.value.option == option
    assert fragment in str(error.value)


def test_changing_what_a_network_is_is_refused(fixture_text):
    with pytest.raises(SpecError, match="forward: nat; changing it to bridge"):
        plan(fixture_text(FIXTURE), forward="bridge", bridge="br0")
    bridged = plan(None, name="lan", forward="bridge", bridge="br0").after
    with pytest.raises(SpecError, match="take no addresses"):
        plan(bridged, name="lan", ipv4={"address": "10.0.0.1/24"})


def test_live_updates_cover_dhcp_and_dns_and_name_the_rest(fixture_text):
    live = fixture_text(FIXTURE)
    config = plan(live, mtu=9000, ipv4={"address": "192.168.77.1/24", "dhcp": {
        "ranges": [{"start": "192.168.77.100", "end": "192.168.77.149"}],
        "hosts": [{"mac": "52:54:00:10:00:02", "name": "web2", "ip": "192.168.77.12"}]}},
        dns_hosts=[{"ip": "192.168.77.5", "hostnames": ["nfs"]}]).after
    updates, reasons = model.live_updates(live, config)
    assert [(u.command, u.section) for u in updates] == [
        ("delete", "ip-dhcp-host"), ("add", "ip-dhcp-host"), ("delete", "ip-dhcp-range"), ("add", "ip-dhcp-range"),
        ("delete", "dns-host"), ("add", "dns-host")]
    assert updates[1].xml == '<host ip="192.168.77.12" mac="52:54:00:10:00:02" name="web2"/>'
    assert updates[3].xml == '<range end="192.168.77.149" start="192.168.77.100"/>'
    assert reasons == ["mtu: (none) -> 9000 (applies when the network restarts)"]
    assert model.live_updates(config, config) == ([], [])


def test_guest_on_network():
    xml = ("<domain><devices><interface type='network'><source network='lab' bridge='virbr3'/></interface>"
           "<interface type='bridge'><source bridge='br9'/></interface></devices></domain>")
    assert model.guest_uses_network(xml, "lab")
    assert model.guest_uses_network(xml, "lan", bridge="br9")
    assert not model.guest_uses_network(xml, "other", bridge="virbr0")


def test_read_spec_round_trips(fixture_text):
    spec = model.read_spec(fixture_text(FIXTURE))
    assert spec["forward"] == "nat" and spec["bridge"] == "virbr7"
    assert spec["ipv4"]["address"] == "192.168.77.1/24"
    assert spec["dns_hosts"] == [{"ip": "192.168.77.5", "hostnames": ["nfs", "storage"]}]
    copy = dict(spec)
    copy.pop("uuid")
    assert not plan(fixture_text(FIXTURE), **copy).changed, "a read-back spec describes the network exactly"


# ---- properties ----------------------------------------------------------------------------------

_hosts = st.lists(st.integers(2, 99), unique=True, max_size=6).map(
    lambda octets: [{"mac": "52:54:00:00:00:%02x" % o, "name": "h%d" % o, "ip": "10.20.0.%d" % o} for o in octets])
_ranges = st.lists(st.integers(0, 9), unique=True, max_size=4).map(
    lambda slots: [{"start": "10.20.0.%d" % (100 + 15 * s), "end": "10.20.0.%d" % (110 + 15 * s)} for s in slots])
_dns = st.lists(st.integers(2, 250), unique=True, max_size=4).map(
    lambda octets: [{"ip": "10.20.0.%d" % o, "hostnames": ["n%d" % o]} for o in octets])


@settings(max_examples=60, deadline=None)
@given(_hosts, _ranges, _dns, _hosts, _ranges, _dns)
def test_any_two_specs_converge_and_live_updates_are_exact(hosts_a, ranges_a, dns_a, hosts_b, ranges_b, dns_b):
    def spec(hosts, ranges, dns):
        return {"ipv4": {"address": "10.20.0.1/24", "dhcp": {"hosts": hosts, "ranges": ranges}}, "dns_hosts": dns}

    first = converges(None, name="p", **spec(hosts_a, ranges_a, dns_a))
    second = converges(first.after, name="p", **spec(hosts_b, ranges_b, dns_b))
    updates, reasons = model.live_updates(first.after, second.after)
    assert reasons == [], "DHCP and DNS differences never need a restart"
    adds = {u.xml for u in updates if u.command == "add"}
    deletes = {u.xml for u in updates if u.command == "delete"}
    assert not adds & deletes
    assert len(adds) == len({h["mac"] for h in hosts_b} - {h["mac"] for h in hosts_a}) + \
        len({(r["start"], r["end"]) for r in ranges_b} - {(r["start"], r["end"]) for r in ranges_a}) + \
        len({d["ip"] for d in dns_b} - {d["ip"] for d in dns_a})


@settings(max_examples=40, deadline=None)
@given(_hosts, _dns)
def test_unmanaged_parts_survive_any_spec(hosts, dns):
    current = (Path(__file__).parent / "fixtures" / FIXTURE).read_text()
    hosts = [dict(h, ip=h["ip"].replace("10.20.0.", "192.168.77."), name=h["name"] + "x") for h in hosts]
    dns = [dict(d, ip=d["ip"].replace("10.20.0.", "192.168.77.")) for d in dns]
    result = plan(current, ipv4={"address": "192.168.77.1/24", "dhcp": {"hosts": hosts}}, dns_hosts=dns)
    before, after = etree.fromstring(current.encode()), valid(result.after)
    for path in ("uuid", "mac", "bridge", "portgroup", "forward", "domain", "ip/dhcp/range", "dns/forwarder"):
        assert same_element(before.find(path), after.find(path)), path


def test_macvtap_read_back_as_libvirt_reports_it():
    """libvirt adds dev= (the first interface) to a macvtap network's <forward>; the read-back ignores it."""
    live = ("<network><name>direct</name><uuid>1c710e0e-fe9c-4353-93f8-0bcd35ed22b1</uuid>"
            "<forward dev='eth1' mode='vepa'><interface dev='eth1'/><interface dev='eth2'/></forward></network>")
    spec = model.read_spec(live)
    assert spec["forward"] == "macvtap" and spec["macvtap_mode"] == "vepa" and "forward_dev" not in spec
    spec.pop("uuid")
    assert not plan(live, **spec).changed


# ---- what real hosts declare (issue 21): SRV and TXT records, routes, port groups, bandwidth -----------------------

EVERYTHING = dict(
    name="lab", forward="route", ipv4={"address": "10.30.0.1/24"}, ipv6={"address": "fd00:30::1/64"},
    dns_srv=[{"service": "ldap", "protocol": "tcp", "domain": "lab.example", "target": "ldap1.lab.example",
              "port": 389, "priority": 10, "weight": 5}],
    dns_txt=[{"name": "info.lab.example", "value": "hello world"}],
    routes=[{"address": "10.31.0.0", "prefix": 16, "gateway": "10.30.0.2", "metric": 5},
            {"address": "fd00:31::", "prefix": 48, "gateway": "fd00:30::2"}],
    portgroups=[{"name": "web", "default": True}, {"name": "db", "trust_guest_rx_filters": False}],
    bandwidth={"inbound": {"average": 1000, "peak": 5000, "burst": 1024}, "outbound": {"average": 800}})


def test_srv_txt_routes_portgroups_and_bandwidth_converge_validate_and_read_back():
    first = converges(None, **EVERYTHING)
    doc = valid(first.after)
    assert doc.find("dns/srv").get("service") == "ldap" and doc.find("dns/txt").get("value") == "hello world"
    assert sorted(r.get("family") or "ipv4" for r in doc.findall("route")) == ["ipv4", "ipv6"]
    assert doc.find("bandwidth/inbound").get("peak") == "5000"
    spec = model.read_spec(first.after)
    assert spec["routes"][1] == {"address": "fd00:31::", "prefix": 48, "gateway": "fd00:30::2", "family": "ipv6"}
    assert spec["bandwidth"] == {"inbound": {"average": 1000, "peak": 5000, "burst": 1024}, "outbound": {"average": 800}}
    assert sorted(spec["portgroups"], key=lambda g: g["name"]) == [
        {"name": "db", "trust_guest_rx_filters": False}, {"name": "web", "default": True}]
    spec.pop("uuid")
    assert not plan(first.after, **spec).changed, "the read-back spec describes the network exactly"


def test_srv_and_txt_records_change_live_routes_need_a_restart():
    config = plan(None, **EVERYTHING).after
    changed = plan(config, name="lab", dns_txt=[{"name": "info.lab.example", "value": "bye"}], dns_srv=[],
                   routes=[{"address": "10.31.0.0", "prefix": 16, "gateway": "10.30.0.3"}]).after
    updates, reasons = model.live_updates(config, changed)
    assert [(u.command, u.section) for u in updates] == [("delete", "dns-srv"), ("delete", "dns-txt"),
                                                         ("add", "dns-txt")]
    assert len(reasons) == 1 and reasons[0].startswith("routes:")


def test_a_changed_port_group_keeps_its_vlan():
    xml = ("<network><name>lan</name><forward mode='bridge'/><bridge name='br0'/>"
           "<portgroup name='web' default='yes'><vlan><tag id='42'/></vlan></portgroup></network>")
    after = converges(xml, name="lan", portgroups=[{"name": "web", "default": False}]).after
    group = valid(after).find("portgroup")
    assert group.get("default") == "no" and group.find("vlan/tag").get("id") == "42"


@pytest.mark.parametrize("route, option, fragment", [
    ({"address": "10.31.0.0", "prefix": 16, "gateway": "fd00::2"}, "routes[0].gateway", "IPv4 gateway"),
    ({"address": "10.31.0.0", "prefix": 40, "gateway": "10.30.0.2"}, "routes[0].prefix", "at most 32"),
    ({"address": "fd00:31::", "prefix": 48, "gateway": "fd00:30::2", "family": "ipv4"}, "routes[0].family", "ipv6"),
    ({"address": "10.31.0.0", "prefix": 16, "netmask": "255.255.0.0", "gateway": "10.30.0.2"}, "routes[0].netmask",
     "not both"),
])
def test_bad_routes_name_the_option(route, option, fragment):
    with pytest.raises(SpecError) as info:
        plan(None, name="lab", ipv4={"address": "10.30.0.1/24"}, routes=[route])
    assert info.value.option == option and fragment in str(info.value)


# ---- more than one address block per family, and removing a block -----------------------------------------------

TWO_BLOCKS = "<network><name>multi</name><bridge name='mb0'/>" \
    "<ip address='10.40.0.1' prefix='24'><dhcp><range start='10.40.0.100' end='10.40.0.150'/></dhcp></ip>" \
    "<ip address='10.41.0.1' prefix='24'><tftp root='/srv/tftp'/></ip>" \
    "<ip family='ipv6' address='fd00:40::1' prefix='64'/></network>"


def test_address_blocks_read_back_converge_and_keep_what_they_do_not_manage():
    spec = model.read_spec(TWO_BLOCKS)
    assert "ipv4" not in spec and [b["address"] for b in spec["addresses"]] == [
        "10.40.0.1/24", "10.41.0.1/24", "fd00:40::1/64"]
    spec.pop("uuid")
    assert not plan(TWO_BLOCKS, **spec).changed, "the read-back describes the network exactly"
    moved = converges(TWO_BLOCKS, name="multi", addresses=[spec["addresses"][0], {"address": "10.41.0.254/24"},
                                                           {"address": "10.42.0.1/24"}])
    doc = valid(moved.after)
    assert [ip.get("address") for ip in doc.findall("ip")] == ["10.40.0.1", "10.41.0.254", "10.42.0.1"]
    assert doc.find("ip[2]/tftp").get("root") == "/srv/tftp", "a block keeps what the options do not manage"
    assert "address block fd00:40::1/64: present -> (none)" in [c.describe() for c in moved.changes]
    assert "address block 10.42.0.1/24: (none) -> present" in [c.describe() for c in moved.changes]


def test_removing_every_block_and_dhcp_on_the_other_block():
    gone = converges(TWO_BLOCKS, name="multi", addresses=[{"address": "10.41.0.1/24", "dhcp": {
        "ranges": [{"start": "10.41.0.10", "end": "10.41.0.20"}]}}])
    doc = valid(gone.after)
    assert [ip.get("address") for ip in doc.findall("ip")] == ["10.41.0.1"] and doc.find("ip/dhcp/range") is not None
    assert valid(converges(TWO_BLOCKS, name="multi", addresses=[]).after).find("ip") is None


@pytest.mark.parametrize("kwargs, option, fragment", [
    ({"addresses": [{"address": "10.40.0.1/24"}], "ipv4": {"address": "10.40.0.1/24"}}, "addresses", "not both"),
    ({"addresses": [{"address": "10.40.0.1/24"}, {"address": "10.40.0.9/24"}]}, "addresses[1].address",
     "each network once"),
    ({"addresses": [{"address": "10.40.0.1/24", "dhcp": {}}, {"address": "10.41.0.1/24", "dhcp": {}}]},
     "addresses[1].dhcp", "one ipv4 block"),
    ({"addresses": [{"address": "fd00::1"}]}, "addresses[0].address", "prefix length"),
])
def test_bad_address_blocks_name_the_option(kwargs, option, fragment):
    with pytest.raises(SpecError) as info:
        plan(TWO_BLOCKS, name="multi", **kwargs)
    assert info.value.option == option and fragment in str(info.value)


def test_dhcp_on_the_second_block_changes_live():
    base = TWO_BLOCKS.replace("<dhcp><range start='10.40.0.100' end='10.40.0.150'/></dhcp>", "")
    config = plan(base, name="multi", addresses=[
        {"address": "10.40.0.1/24"},
        {"address": "10.41.0.1/24", "dhcp": {"hosts": [{"mac": "52:54:00:40:00:01", "ip": "10.41.0.11"}]}}]).after
    live = plan(base, name="multi", addresses=[
        {"address": "10.40.0.1/24"}, {"address": "10.41.0.1/24", "dhcp": {}}]).after
    updates, _reasons = model.live_updates(live, config)
    assert [(u.command, u.section) for u in updates] == [("add", "ip-dhcp-host")]
