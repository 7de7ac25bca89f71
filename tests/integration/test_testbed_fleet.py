"""A fleet on three hypervisors: the example inventory (playbooks/inventories/example) on the test bed.

site.yml converges networks, pools and guests on hv1..hv3 (check mode first, then the real run, a second
run that changes nothing, check mode after it); the booted guests print their MAC and DHCP lease on
their consoles; plan.yml after a one-line edit names exactly that guest, and the real run changes
exactly it; prune removes only marked guests; the inventory plugin lists the guests grouped by
hypervisor and tag, with the address a guest really holds; an unreachable hypervisor is a warning.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest
import yaml
from lxml import etree

import harness
import testguest

pytestmark = pytest.mark.slow
EXAMPLE = harness.REPO / "playbooks" / "inventories" / "example"
SITE = harness.REPO / "playbooks" / "site.yml"
PLAN = harness.REPO / "playbooks" / "plan.yml"
FLEET_TASK = "kvmfleet.libvirt.guests : Converge the guests of this hypervisor"
PLAN_TASK = "kvmfleet.libvirt.guests : The plan (or what was done)"
LISTED = {1: ["web1", "db1", "arm1"], 2: ["web2", "cache1"], 3: ["web3", "batch1", "batch2"]}


TESTBED = harness.REPO / "tests" / "testbed" / "testbed.sh"
MAINTENANCE = "kvmfleet-maintenance"  # the cordon (plugins/module_utils/_host/maintenance.py)


def clear(testbed):
    """The test bed as every test starts from it, whatever an earlier test (or its failure) left: each
    hypervisor answers (one killed or isolated boots again: testbed.sh reboot), runs and defines no guest, and
    is in service (no cordon)."""
    for n, uri in enumerate(testbed["uris"], start=1):
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError:
            proc = subprocess.run(["bash", str(TESTBED), "reboot", str(n)], capture_output=True, text=True,
                                  check=False)
            assert proc.returncode == 0, "hv%d did not boot again:\n%s%s" % (n, proc.stdout, proc.stderr)
            conn = libvirt.open(uri)
        for dom in conn.listAllDomains(0):
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        if MAINTENANCE in conn.listDefinedNetworks():
            conn.networkLookupByName(MAINTENANCE).undefine()
        conn.close()


def report(testbed, hv, name, predicate, what, timeout=120):
    log = testbed["root"] / ("hv%d" % hv) / "log" / "qemu" / ("%s-serial.log" % name)

    def check():
        found = testguest.last_report(log.read_text(errors="replace")) if log.exists() else None
        return found if found and predicate(found) else None
    return harness.wait_for(check, timeout=timeout, what="%s on hv%d to report %s" % (name, hv, what))


def plan_lines(run):
    lines = []
    for task in run.tasks:
        if task["task"] == PLAN_TASK:
            lines.extend(task["result"]["msg"])
    return sorted(lines)


def test_a_fleet_on_three_hypervisors(testbed, example, ansible, tmp_path):
    uris = testbed["uris"]
    first = ansible.converge(None, playbook=SITE, inventory=example)
    for hv, names in LISTED.items():
        result = first.result(FLEET_TASK, host="hv%d" % hv)
        assert [g["name"] for g in result["guests"]] == names
        assert result["summary"]["created"] == len(names) and result["summary"]["failed"] == 0
    states = {}
    for hv in LISTED:
        conn = libvirt.open(uris[hv - 1])
        states[hv] = {d.name(): bool(d.isActive()) for d in conn.listAllDomains(0)}
        assert conn.getHostname() == "hv%d" % hv
        conn.close()
    assert states == {1: {"web1": True, "db1": False, "arm1": False}, 2: {"web2": True, "cache1": False},
                      3: {"web3": True, "batch1": False, "batch2": False}}
    # the aarch64 guest of the `arm` profile, defined through hv1's own libvirtd: its arch's machine (virt: no machine
    # declared), UEFI, ACPI and a 64-bit CPU, no x86 features
    conn = libvirt.open(uris[0])
    arm = etree.fromstring(conn.lookupByName("arm1").XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
    conn.close()
    assert (arm.find("os/type").get("arch"), arm.find("os/type").get("machine")) == ("aarch64", "virt-7.2")
    assert arm.find("os").get("firmware") == "efi" and arm.findtext("cpu/model") == "cortex-a57"
    features = [f.tag for f in arm.find("features")]
    assert "acpi" in features and "apic" not in features, features  # libvirt adds the ARM GIC itself

    # Each booted guest sees the MAC its hypervisor's fleet task reported, and holds a DHCP lease.
    leases = {}
    for hv in LISTED:
        result = first.result(FLEET_TASK, host="hv%d" % hv)
        mac = next(g for g in result["guests"] if g["name"] == "web%d" % hv)["interfaces"][0]["mac"]
        seen = report(testbed, hv, "web%d" % hv, lambda r, mac=mac: (r["nics"].get(mac) or {}).get("ipv4"), "its lease")
        assert list(seen["nics"]) == [mac]
        leases["web%d" % hv] = seen["nics"][mac]["ipv4"]
        assert leases["web%d" % hv].startswith("10.77.0.")

    # A one-line edit: the plan names exactly that guest, and the real run changes exactly it.
    hv2 = example / "host_vars" / "hv2.yml"
    hv2.write_text(hv2.read_text().replace("{name: cache1, profile: tiny, vcpus: 1}",
                                           "{name: cache1, profile: tiny, vcpus: 2}"))
    plan = ansible.run(None, playbook=PLAN, inventory=example, check=True)
    assert plan.changed == 1
    assert [line for line in plan_lines(plan) if " to create, " not in line] == ["hv2: ~ cache1: vcpus: 1 -> 2"]
    real = ansible.run(None, playbook=SITE, inventory=example)
    changed = [(t["host"], t["task"]) for t in real.tasks if t["result"].get("changed")]
    assert changed == [("hv2", FLEET_TASK)]
    assert [g["name"] for g in real.result(FLEET_TASK, host="hv2")["guests"]
            if g["changed"]] == ["cache1"]

    # Prune: a guest taken out of hv3's list goes; a guest without the collection's marker stays.
    conn = libvirt.open(uris[2])
    conn.defineXML("<domain type='qemu'><name>unmarked</name><memory unit='MiB'>64</memory>"
                   "<os><type arch='x86_64'>hvm</type></os></domain>")
    hv3 = example / "host_vars" / "hv3.yml"
    hv3.write_text(hv3.read_text().replace("  - {name: batch2, profile: tiny}\n", ""))
    pruned = ansible.converge(None, playbook=SITE, inventory=example).result(
        FLEET_TASK, host="hv3")
    expected = [("web3", False), ("batch1", False), ("batch2", True)]
    assert [(g["name"], g["removed"]) for g in pruned["guests"]] == expected
    assert sorted(d.name() for d in conn.listAllDomains(0)) == ["batch1", "unmarked", "web3"]
    conn.close()

    # The inventory plugin: every hypervisor's guests, grouped, with the address each booted guest holds.
    bad = "qemu+tcp://192.168.250.19/system"
    config = tmp_path / "fleet.kvmfleet.yml"
    config.write_text(yaml.safe_dump({"plugin": "kvmfleet.libvirt.guests", "uris": uris + [bad],
                                      "filters": {"managed_only": True},
                                      "keyed_groups": [{"key": "kvmfleet_tags.role", "prefix": "role"}]}))
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(config), "--list"],
                          env=ansible._env(tmp_path / "unused.json"), capture_output=True, text=True, check=True)
    listed_in = time.monotonic() - started
    inventory = harness.unwrap_unsafe(json.loads(proc.stdout))
    assert "hypervisor %s is left out" % bad in proc.stderr
    hostvars = inventory["_meta"]["hostvars"]
    assert sorted(hostvars) == ["arm1", "batch1", "cache1", "db1", "web1", "web2", "web3"]
    for hv, names in LISTED.items():
        group = "hypervisor_192_168_250_1%d" % hv
        assert sorted(inventory[group]["hosts"]) == sorted(n for n in names if n != "batch2")
    assert sorted(inventory["role_web"]["hosts"]) == ["web1", "web2", "web3"]
    assert sorted(inventory["tag_role_db"]["hosts"]) == ["db1"]
    for name, address in leases.items():
        assert hostvars[name]["ansible_host"] == address, "ansible_host is the lease %s holds" % name
    assert listed_in < 30, "the inventory took %.1f s" % listed_in


def test_one_bad_guest_among_good_ones_on_three_hypervisors(testbed, ansible, tmp_path):
    """One fleet task per hypervisor, all three at once. A spec error in hv2's list changes nothing on hv2 (and
    hv1 and hv3 converge); a guest libvirt refuses on hv3 fails alone (its neighbours converge, it is named)."""
    uris = testbed["uris"]
    clear(testbed)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {
        "hosts": {"hv%d" % (n + 1): {"kvmfleet_uri": uri} for n, uri in enumerate(uris)},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}))
    good = {"virt_type": "qemu", "memory": "64MiB", "tags": {"bad": "guest"}}
    refused = dict(good, name="refused", xml_edits=[  # two disks on vda: libvirt's own check refuses it at define
        {"xpath": "/domain/devices", "fragment": "<disk type='file' device='disk'><source file='/var/lib/libvirt/"
                                                 "images/%s.img'/><target dev='vda' bus='virtio'/></disk>" % image}
        for image in ("x", "y")])
    lists = {
        "hv1": [dict(good, name="ok1"), dict(good, name="ok2")],
        "hv2": [dict(good, name="ok1"), dict(good, name="bad", memory="lots")],
        "hv3": [dict(good, name="ok1"), refused, dict(good, name="ok2")],
    }
    play = tmp_path / "bad.yml"
    play.write_text(yaml.safe_dump([{"name": "bad guests", "hosts": "hypervisors", "gather_facts": False,
                                     "vars": {"lists": lists}, "tasks": [{
                                         "name": "fleet", "kvmfleet.libvirt.fleet": {
                                             "uri": "{{ kvmfleet_uri }}", "guests": "{{ lists[inventory_hostname] }}"},
                                         "register": "result", "ignore_errors": True}]}]))
    run = ansible.run(None, playbook=play, inventory=inventory)
    assert "guests[1] (bad): option memory: got 'lots'" in run.result("fleet", host="hv2")["msg"]
    hv3 = run.result("fleet", host="hv3")
    assert hv3["msg"].startswith("1 of 3 guests failed: refused: ")
    assert hv3["summary"]["created"] == 2 and hv3["summary"]["failed"] == 1
    assert run.result("fleet", host="hv1")["summary"]["created"] == 2
    defined = {}
    for n, uri in enumerate(uris):
        conn = libvirt.open(uri)
        defined["hv%d" % (n + 1)] = sorted(d.name() for d in conn.listAllDomains(0))
        conn.close()
    clear(testbed)
    assert defined == {"hv1": ["ok1", "ok2"], "hv2": [], "hv3": ["ok1", "ok2"]}


def test_a_guest_moves_between_hypervisors_live_and_offline(testbed, ansible, tmp_path):
    """kvmfleet.libvirt.migrate on the test bed (issue 14): pre-flight refusals that leave the guest running where
    it is, a live migration predicted by check mode, made once, then no change; the guest runs on exactly one
    hypervisor and keeps running there (its vCPU time grows); then an offline move back."""
    uris = testbed["uris"]
    clear(testbed)
    for uri in uris[:2]:  # the guest's network exists on hv1 and hv2 only
        conn = libvirt.open(uri)
        conn.networkCreateXML("<network><name>mig</name><bridge name='kvfmig0'/></network>")
        conn.close()
    name = "mover"
    guest = {"name": "boot", "kvmfleet.libvirt.domain": {
        "uri": uris[0], "name": name, "virt_type": "qemu", "machine": "pc", "memory": "128MiB", "vcpus": 1,
        "boot": {"kernel": "/var/lib/libvirt/images/kvmfleet-test/vmlinuz",
                 "initrd": "/var/lib/libvirt/images/kvmfleet-test/initrd.img", "cmdline": "console=ttyS0 panic=-1"},
        "interfaces": [{"network": "mig"}], "serials": [{"type": "pty", "log": "/var/log/libvirt/qemu/%s-serial.log" % name}],
        "state": "running"}}
    ansible.run([guest])
    report(testbed, 1, name, lambda r: r["nics"], "its NIC")

    def move(destination, title="migrate", **extra):
        return {"name": title, "kvmfleet.libvirt.migrate": dict(
            {"uri": uris[0], "name": name, "destination_uri": destination}, **extra), "register": "result"}

    def where():
        found = {}
        for n, uri in enumerate(uris):
            conn = libvirt.open(uri)
            found.update({"hv%d" % (n + 1): ("running" if d.isActive() else "shutoff")
                          for d in conn.listAllDomains(0) if d.name() == name})
            conn.close()
        return found

    # pre-flight: hv3 lacks the network; hv1 by another spelling of its URI is the source itself
    for destination, words in ((uris[2], "network mig: the destination has no network of that name"),
                               (uris[0].replace("/system", ":16509/system"), "the destination is the source")):
        for check in (True, False):
            run = ansible.run([move(destination)], check=check, expect_rc=2)
            message = run.result("migrate")["msg"]
            assert words in message and ("it stays running on hv1" in message or "stays where it is" in message), \
                message
    assert where() == {"hv1": "running"}

    # a migration that cannot finish in time (1 MiB/s, 2 s) is aborted: the guest runs on, on hv1 only
    run = ansible.run([move(uris[1], bandwidth=1, timeout=2)], expect_rc=2)
    assert "aborted after the timeout of 2 s. It stays running on hv1" in run.result("migrate")["msg"]
    assert where() == {"hv1": "running"}

    moved = ansible.converge([move(uris[1], bandwidth=200, timeout=120)])
    result = moved.result("migrate")
    assert result["actions"] == ["live migration of %s from hv1 to hv2" % name]
    assert result["source_state"] == "absent" and result["destination_state"] == "running"
    assert result["progress"]["data_total_bytes"] > 0 and result["progress"]["downtime_ms"] is not None
    assert where() == {"hv2": "running"}
    conn = libvirt.open(uris[1])
    dom = conn.lookupByName(name)
    cpu_before = dom.info()[4]
    time.sleep(3)
    assert dom.isActive() and dom.info()[4] > cpu_before, "the migrated guest does not run on hv2"

    # offline, back to hv1: the definition moves, the guest stays shut off
    dom.destroy()
    conn.close()
    back = {"name": "back", "kvmfleet.libvirt.migrate": {"uri": uris[1], "name": name, "destination_uri": uris[0]},
            "register": "result"}
    result = ansible.converge([back]).result("back")
    assert result["actions"] == ["offline migration of %s from hv2 to hv1" % name]
    assert where() == {"hv1": "shutoff"}
    clear(testbed)
    for uri in uris[:2]:
        conn = libvirt.open(uri)
        conn.networkLookupByName("mig").destroy()
        conn.close()
