"""domain_info against the real daemon: specs that round-trip, tag filters, bulk stats, DHCP leases."""

from __future__ import annotations

import pytest

import harness
from harness import guest, report_where

pytestmark = pytest.mark.slow


@pytest.fixture
def dhcp_net(conn, prefix):
    """An isolated network (no <forward>) with DHCP: the guest's lease stays on this machine."""
    name = prefix + "dhcp"
    net = conn.networkDefineXML(
        "<network><name>%s</name><bridge name='kvfd%s'/>"
        "<ip address='10.251.%d.1' netmask='255.255.255.0'><dhcp><range start='10.251.%d.10' end='10.251.%d.50'/>"
        "</dhcp></ip></network>" % (name, prefix[-7:-1], int(prefix[-3:-1], 16), int(prefix[-3:-1], 16),
                                    int(prefix[-3:-1], 16)))
    net.create()
    return name


def test_domain_info_reads_specs_stats_and_leases(conn, prefix, ansible, image, lab, dhcp_net):
    web = prefix + "web"
    db = prefix + "db"
    cmdline = image["cmdline"] + " kvmfleet.dhcp=1"
    ansible.run([
        # The run's own tag value: guests of other runs (or the README's demo) also carry role: web.
        guest(web, image, lab, tags={"role": "web", "run": prefix}, interfaces=[{"network": dhcp_net}],
              boot={"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": cmdline}),
        guest(db, image, lab, tags={"role": "db", "run": prefix}, state="shutoff"),
    ])
    conn.defineXML("<domain type='qemu'><name>%sother</name><memory unit='MiB'>64</memory>"
                   "<os><type arch='x86_64'>hvm</type></os></domain>" % prefix)
    report = report_where(web, lambda r: any(n["ipv4"] for n in r["nics"].values()), "a DHCP lease", timeout=120)
    mac, nic = next(iter(report["nics"].items()))

    task = {"name": "info", "kvmfleet.libvirt.domain_info": {"tags": {"role": "web", "run": prefix}},
            "register": "info"}
    run = ansible.converge([task], expect_change=False)
    guests = run.result("info")["guests"]
    assert [g["name"] for g in guests] == [web]
    info = guests[0]
    assert info["state"] == "running" and info["managed"] is True and info["tags"] == {"role": "web", "run": prefix}
    assert info["uuid"] == conn.lookupByName(web).UUIDString()
    assert info["stats"]["cpu_time_ns"] > 0
    assert info["stats"]["disks"][0]["dev"] == "vda"
    assert info["stats"]["disks"][0]["capacity_bytes"] == 64 * 1024 * 1024
    assert info["stats"]["memory"]["maximum_kib"] == 256 * 1024
    leased = [a["address"] for a in info["addresses"][mac] if a["source"] == "lease"]
    assert leased == [nic["ipv4"]], "the lease libvirt reports is the address the guest configured"

    everything = ansible.run([{"name": "all", "kvmfleet.libvirt.domain_info": {}, "register": "all"}])
    by_name = {g["name"]: g for g in everything.result("all")["guests"]}
    assert by_name[db]["state"] == "shutoff" and by_name[db]["stats"] is None
    assert by_name[prefix + "other"]["managed"] is False and by_name[prefix + "other"]["tags"] == {}
    managed = ansible.run([{"name": "m", "kvmfleet.libvirt.domain_info": {"managed_only": True}, "register": "m"}])
    assert prefix + "other" not in {g["name"] for g in managed.result("m")["guests"]}

    # The read-back spec is valid domain input and changes nothing when applied to the same guest.
    spec = dict(info["spec"])
    spec.update(state="running")
    again = ansible.run([{"name": "apply", "kvmfleet.libvirt.domain": spec}])
    assert again.changed == 0, again.result("apply").get("changes")
    assert harness.domain_state(conn, web) == "running"
