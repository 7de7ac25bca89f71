"""host_info against the real daemon: what it reports must be what libvirt itself says."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import libvirt
import yaml
from lxml import etree

import harness

TASK = {"name": "facts", "kvmfleet.libvirt.host_info": {}, "register": "host"}


def test_host_info_matches_libvirt(conn, prefix, ansible, tmp_path):
    # An isolated network and a dir pool of our own, one active and one not, to find in the facts.
    net = conn.networkDefineXML(
        "<network><name>%snet</name><bridge name='kvmft%s'/></network>" % (prefix, prefix[-7:-1]))
    net.create()
    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    conn.storagePoolDefineXML(
        "<pool type='dir'><name>%spool</name><target><path>%s</path></target></pool>" % (prefix, pool_dir))

    run = ansible.converge([TASK], expect_change=False)
    facts = run.result("facts")

    assert facts["changed"] is False
    assert facts["libvirt_version"] == version_of(conn.getLibVersion())
    assert facts["hypervisor_version"] == version_of(conn.getVersion())
    assert facts["hostname"] == conn.getHostname()
    assert facts["cpu"]["count"] == conn.getInfo()[2]
    assert facts["memory"]["total_mib"] == conn.getMemoryStats(-1, 0)["total"] // 1024
    assert 0 < facts["memory"]["free_mib"] <= facts["memory"]["total_mib"]
    assert facts["domains"]["total"] == len(conn.listAllDomains(0))

    # Each fact against what libvirt and the kernel say directly, not only its type.
    caps = etree.fromstring(conn.getCapabilities().encode())
    arch = os.uname().machine
    assert facts["uuid"] == caps.findtext("host/uuid")
    assert facts["cpu"]["arch"] == arch == caps.findtext("host/cpu/arch")
    assert facts["cpu"]["model"] == caps.findtext("host/cpu/model")
    assert len(facts["numa_cells"]) == len(caps.findall("host/topology/cells/cell"))
    types = sorted({d.get("type") for d in caps.iterfind("guest/arch[@name='%s']/domain" % arch)})
    assert facts["guest_domain_types"][arch] == types and "qemu" in types
    try:
        conn.getDomainCapabilities(None, arch, None, "kvm", 0)
        kvm_answers = True
    except libvirt.libvirtError:
        kvm_answers = False
    expected = "kvm" in types and kvm_answers
    assert facts["kvm"]["usable"] is expected, facts["kvm"]
    assert (facts["kvm"]["reason"] is None) is expected
    if Path("/dev/kvm").exists() and "kvm" in types:
        assert facts["kvm"]["usable"], "this host has /dev/kvm and libvirt offers kvm guests"
    ksm = Path("/sys/kernel/mm/ksm")
    if ksm.is_dir() and facts["ksm"] is not None:
        assert facts["ksm"]["pages_to_scan"] == int((ksm / "pages_to_scan").read_text())
        assert facts["ksm"]["merge_across_nodes"] == int((ksm / "merge_across_nodes").read_text())

    nets = {n["name"]: n for n in facts["networks"]}
    spec = nets[prefix + "net"].pop("spec")
    assert nets[prefix + "net"] == {"name": prefix + "net", "active": True, "autostart": False,
                                    "persistent": True, "bridge": "kvmft" + prefix[-7:-1]}
    assert spec["name"] == prefix + "net" and spec["forward"] == "isolated" and spec["bridge"] == "kvmft" + prefix[-7:-1]
    assert facts["pools"] and all(p["spec"]["name"] == p["name"] for p in facts["pools"] if p["spec"] is not None)
    pools = {p["name"]: p for p in facts["pools"]}
    assert pools[prefix + "pool"]["active"] is False
    assert pools[prefix + "pool"]["state"] == "inactive"
    assert pools[prefix + "pool"]["type"] == "dir"
    assert pools[prefix + "pool"]["path"] == str(pool_dir)


def test_host_info_counts_guests_by_state(conn, prefix, ansible):
    xml = ("<domain type='qemu'><name>%s%s</name><memory unit='MiB'>64</memory>"
           "<os><type arch='x86_64'>hvm</type></os></domain>")
    conn.defineXML(xml % (prefix, "a"))
    conn.defineXML(xml % (prefix, "b"))
    before = ansible.run([TASK]).result("facts")["domains"]
    conn.lookupByName(prefix + "b").undefine()
    after = ansible.run([TASK]).result("facts")["domains"]
    assert after["total"] == before["total"] - 1
    assert after.get("shutoff", 0) == before.get("shutoff", 0) - 1


def test_host_info_bad_uri_names_it(ansible):
    run = ansible.run([{"name": "facts", "kvmfleet.libvirt.host_info": {"uri": "qemu+unix:///system?socket=/nonexistent.sock"}}],
                      expect_rc=2)
    result = run.result("facts")
    assert run.status("facts") == "failed"
    assert "qemu+unix:///system?socket=/nonexistent.sock" in result["msg"]
    assert "libvirt daemon" in result["msg"]
    assert "Traceback" not in run.output


def test_host_info_samples_what_guests_use_and_the_balance_reads_it(conn, prefix, ansible, image, tmp_path):
    """Two guests of 128 MiB: one spins (a kernel without its initrd panics, and panic=0 loops in a busy wait), one
    sits idle. host_info's samples say which is which; the placement view and a rebalance on measured use read them
    through playbooks/tasks/read_fleet.yml, every hypervisor of a group sampled at once."""
    base = {"virt_type": "qemu", "machine": "pc", "memory": "128MiB", "vcpus": 1, "state": "running"}
    busy = dict(base, name=prefix + "busy", boot={"kernel": image["kernel"], "cmdline": "console=ttyS0 panic=0"},
                serials=[{"type": "pty", "log": str(harness.serial_log(prefix + "busy"))}])
    idle = dict(base, name=prefix + "idle", boot={"kernel": image["kernel"], "initrd": image["initrd"],
                                                  "cmdline": image["cmdline"]},
                serials=[{"type": "pty", "log": str(harness.serial_log(prefix + "idle"))}])
    ansible.run([{"kvmfleet.libvirt.domain": busy}, {"kvmfleet.libvirt.domain": idle}])
    # both booted: one panicked (and spins), the other reported what it sees (and waits)
    harness.wait_for(lambda: "Kernel panic" in harness.serial_log(prefix + "busy").read_text(errors="replace"),
                     timeout=120, what="the spinning guest to panic")
    harness.report_where(prefix + "idle", lambda report: True, "what it sees", timeout=120)
    time.sleep(2)
    facts = ansible.run([{"name": "facts", "kvmfleet.libvirt.host_info": {"sample_seconds": 6, "sample_interval": 2}}]
                        ).result("facts")
    load = facts["load"]
    assert load["samples"] == 3 and 1.8 < load["interval_s"] < 3.0, load
    spinning, waiting = load["guests"][prefix + "busy"], load["guests"][prefix + "idle"]
    print("busy:", spinning, "idle:", waiting, "host:", load["host"])
    # (a spinning vCPU takes a whole host CPU when it has one; this machine's two are shared with the other tests)
    assert min(spinning["cpu"]) > max(waiting["cpu"]) + 0.2, (spinning, waiting)
    assert all(m and m > 8 for m in spinning["memory_used_mib"] + waiting["memory_used_mib"])
    assert all(0 <= c <= 1 for c in load["host"]["cpu_use"]) and all(m > 0 for m in load["host"]["memory_used_mib"])
    # the same, as the placement playbooks read it: a group of one, sampled (async) and planned on measured use
    inventory = tmp_path / "one.yml"
    group = {"hosts": {"here": {"kvmfleet_uri": "qemu:///system"}},
             "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}
    inventory.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": group}}}))
    out = tmp_path / "plan.json"
    play = [{"hosts": "localhost", "gather_facts": False, "vars": {
        "mover_group": "hypervisors", "mover_capacities": {}, "mover_copy_storage": None, "mover_sample_seconds": 4,
        "mover_sample_interval": 2}, "tasks": [
            {"name": "read", "ansible.builtin.include_tasks": str(harness.REPO / "playbooks" / "tasks" / "read_fleet.yml")},
            {"name": "keep it", "ansible.builtin.copy": {"dest": str(out), "mode": "0644", "content": (
                "{{ {'view': mover_view, 'plan': mover_view | kvmfleet.libvirt.rebalance_plan(measure='used', hold=2)}"
                " | to_json }}")}}]}]
    playbook = tmp_path / "read.yml"
    playbook.write_text(yaml.safe_dump(play))
    ansible.run(None, playbook=playbook, inventory=inventory)
    read = json.loads(out.read_text())
    guests = {g["name"]: g for g in read["view"]["guests"]}
    assert min(guests[prefix + "busy"]["cpu_samples"]) > max(guests[prefix + "idle"]["cpu_samples"]) + 0.2
    assert len(read["plan"]["samples"]) == 2 and read["plan"]["measure"] == "used"
    assert read["plan"]["before"]["hosts"]["here"]["cpu_use"] > 0.2 / facts["cpu"]["count"]


def version_of(number):
    return "%d.%d.%d" % (number // 1000000, (number // 1000) % 1000, number % 1000)
