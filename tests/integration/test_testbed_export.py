"""From a running estate to a GitOps inventory and back (issue 21), on the three-hypervisor test bed.

Guests other tools made (hand-written and libvirt-written definitions, one running, one with a VNC password), a
running network with DNS records, a route and a port group, and a stopped pool are exported with playbooks/export.yml
into a copy of the example inventory: refused over the hand-written host_vars
without force; with force, check mode, the run, a second run and check mode again. Converging the exported
inventory with site.yml leaves the network and the pool as they are, adopts every guest (its marker, metadata only) and a second run changes nothing; every
definition stays byte for byte what it was outside the collection's metadata, and the running guest runs on.
"""

from __future__ import annotations

import libvirt
import pytest
import yaml

import corpus
import harness
from test_adopt_corpus import MARKER, outside_ours
from test_testbed_fleet import FLEET_TASK

pytestmark = pytest.mark.slow
PLAYBOOKS = harness.REPO / "playbooks"
KERNEL = "/var/lib/libvirt/images/kvmfleet-test/"
RUNNING = """<domain type='qemu'><name>ex-run</name><memory unit='MiB'>96</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%svmlinuz</kernel><initrd>%sinitrd.img</initrd>
  <cmdline>console=ttyS0 panic=-1</cmdline></os>
  <devices><serial type='pty'/><console type='pty'/><graphics type='vnc' autoport='yes' passwd='s3cret'/></devices>
</domain>""" % (KERNEL, KERNEL)
NETWORK = """<network><name>ex-net</name><bridge name='exnet0'/><domain name='ex.lan'/>
  <dns><txt name='info' value='exported'/><srv service='ldap' protocol='tcp' target='ldap1' port='389'/>
    <host ip='10.78.0.5'><hostname>nfs</hostname></host></dns>
  <ip address='10.78.0.1' netmask='255.255.255.0'><dhcp><range start='10.78.0.100' end='10.78.0.150'/></dhcp></ip>
  <route address='10.79.0.0' prefix='16' gateway='10.78.0.2'/><portgroup name='web' default='yes'/>
</network>"""
POOL = """<pool type='dir'><name>ex-pool</name><target><path>/var/lib/libvirt/images/ex-pool</path></target></pool>"""
SHUT_OFF = {1: [("hand", "tuning", "ex-tuning"), ("fixture", "domain-virt-install", "ex-vi")],
            2: [("hand", "odd-devices", "ex-odd"), ("fixture", "domain-virt-manager-uefi", "ex-uefi")]}


def definition(kind, stem, name):
    if kind == "hand":
        return corpus._hand(stem, (corpus.HAND / (stem + ".xml")).read_text(), name, "/var/lib/libvirt/images")[2]
    return corpus._fixture(stem, corpus.FIXTURES / (stem + ".xml"), name)[2]


def test_export_a_running_estate_and_converge_it_back(testbed, example, ansible):
    uris = testbed["uris"]
    before = {}
    for n, uri in enumerate(uris, start=1):
        conn = libvirt.open(uri)
        for kind, stem, name in SHUT_OFF.get(n, []):
            conn.defineXML(definition(kind, stem, name))
        if n == 3:
            conn.defineXML(RUNNING).create()
        if n == 1:  # a network with what real hosts declare, running; a pool, defined and stopped
            conn.networkDefineXML(NETWORK).create()
            conn.storagePoolDefineXML(POOL)
        for dom in conn.listAllDomains(0):
            before[dom.name()] = ("hv%d" % n, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        conn.close()
    assert sorted(before) == ["ex-odd", "ex-run", "ex-tuning", "ex-uefi", "ex-vi"]
    try:
        hand_written = (example / "host_vars" / "hv1.yml").read_text()

        refused = ansible.run(None, playbook=PLAYBOOKS / "export.yml", inventory=example, expect_rc=2)
        assert "was not written by the export" in refused.output and "force: true" in refused.output
        assert (example / "host_vars" / "hv1.yml").read_text() == hand_written

        ansible.converge(None, playbook=PLAYBOOKS / "export.yml", inventory=example, extra_vars={"export_force": True})
        listed = {}
        for n in (1, 2, 3):
            text = (example / "host_vars" / ("hv%d.yml" % n)).read_text()
            assert "s3cret" not in text
            for entry in yaml.safe_load(text)["guests_list"]:
                listed[entry["name"]] = ("hv%d" % n, entry)
        assert {name: where for name, (where, _entry) in listed.items()} == {name: b[0] for name, b in before.items()}
        assert "ex-run: graphics[0].password is set on the host and not written here" in \
            (example / "host_vars" / "hv3.yml").read_text()
        assert all(entry["uuid"] for _where, entry in listed.values())

        exported = yaml.safe_load((example / "host_vars" / "hv1.yml").read_text())
        network = next(n for n in exported["networks_list"] if n["name"] == "ex-net")
        assert (network["state"], network["autostart"]) == ("active", False)
        assert network["dns_srv"] == [{"service": "ldap", "protocol": "tcp", "target": "ldap1", "port": 389}]
        assert [p["state"] for p in exported["storage_pools"] if p["name"] == "ex-pool"] == ["inactive"]
        net_before = libvirt.open(uris[0]).networkLookupByName("ex-net").XMLDesc(0)

        first = ansible.converge(None, playbook=PLAYBOOKS / "site.yml", inventory=example)
        adopted = {}
        for n in (1, 2, 3):
            for entry in first.result(FLEET_TASK, host="hv%d" % n)["guests"]:
                adopted[entry["name"]] = (entry.get("adopted"), entry.get("changes"), entry.get("actions"))
        assert adopted == {name: (True, MARKER, []) for name in before}, adopted
        for n, uri in enumerate(uris, start=1):
            conn = libvirt.open(uri)
            for dom in conn.listAllDomains(0):
                now = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
                assert outside_ours(now) == outside_ours(before[dom.name()][1]), dom.name()
            if n == 3:
                assert conn.lookupByName("ex-run").isActive(), "the running guest was stopped"
            if n == 1:
                assert conn.networkLookupByName("ex-net").XMLDesc(0) == net_before
                assert not conn.storagePoolLookupByName("ex-pool").isActive()
            conn.close()
    finally:
        conn = libvirt.open(uris[0])
        for obj in (conn.networkLookupByName("ex-net"), conn.storagePoolLookupByName("ex-pool")):
            if obj.isActive():
                obj.destroy()
            obj.undefine()
        conn.close()
