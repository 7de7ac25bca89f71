"""Placement policies on the test bed (issue 23): a negative rule keeps two guests apart through an evacuation that
would otherwise put them together, and a soft rule broken because nothing else fits is said; consolidation empties
hosts, keeps a spare, powers one off (testbed.sh poweroff: its daemons stop), and when demand rises powers it on
(testbed.sh poweron), puts it back in service and spreads the load onto it. Each playbook: check mode changes
nothing, the real run, and a further run that changes nothing.
"""

from __future__ import annotations

import libvirt
import pytest
import yaml

import harness
from test_testbed_fleet import TESTBED, clear
from test_testbed_maintenance import cordoned, lines, playbook

pytestmark = pytest.mark.slow
KERNEL = "/var/lib/libvirt/images/kvmfleet-test/"


def inventory(path, testbed, capacities, rules=(), power=False):
    hosts = {"hv%d" % (n + 1): {"kvmfleet_uri": uri} for n, uri in enumerate(testbed["uris"])}
    for name, capacity in capacities.items():
        hosts[name]["kvmfleet_guest_memory_mib"] = capacity
    if power:
        for n, name in enumerate(sorted(hosts), start=1):
            hosts[name]["kvmfleet_power"] = {"off": ["bash", str(TESTBED), "poweroff", str(n)],
                                             "on": ["bash", str(TESTBED), "poweron", str(n)]}
    group = {"hosts": hosts, "vars": {"ansible_connection": "local",
                                      "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}
    if rules:
        group["vars"]["kvmfleet_placement_rules"] = list(rules)
    path.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": group}}}))
    return path


def guest(name, memory, tags=None):
    return {"name": name, "virt_type": "qemu", "machine": "pc", "memory": "%dMiB" % memory, "vcpus": 1,
            "boot": {"kernel": KERNEL + "vmlinuz", "initrd": KERNEL + "initrd.img", "cmdline": "console=ttyS0 panic=-1"},
            "tags": tags or {}, "state": "running"}


def where(testbed, names=None):
    """{guest: hypervisor} of the running guests of the answering hypervisors; a guest on two is an error."""
    found = {}
    for n, uri in enumerate(testbed["uris"], start=1):
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError:
            continue  # powered off
        for dom in conn.listAllDomains(0):
            if names is None or dom.name() in names:
                assert dom.name() not in found, "%s is on two hypervisors" % dom.name()
                found[dom.name()] = "hv%d" % n if dom.isActive() else "hv%d (shut off)" % n
        conn.close()
    return found


def answers(uri):
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError:
        return False
    return True


def test_a_negative_rule_keeps_guests_apart_through_an_evacuation(testbed, ansible, tmp_path):
    clear(testbed)
    uris = testbed["uris"]
    guests = [guest("db1", 128, {"role": "db"}), guest("db2", 128, {"role": "db"}), guest("web1", 64, {"role": "web"})]
    ansible.run([{"name": "guests", "kvmfleet.libvirt.fleet": {"uri": uris[0], "guests": guests}}])
    home = {"db1": "hv1", "db2": "hv1", "web1": "hv1"}
    assert where(testbed) == home
    capacities = {"hv2": 1000, "hv3": 200}  # hv2 has the most room by far: both db guests would go there
    free = inventory(tmp_path / "free.yml", testbed, capacities)
    run = playbook(ansible, "evacuate.yml", free, check=True, host="hv1")
    plan = lines(run, "The plan")
    assert plan[:2] == ["db1: hv1 -> hv2 (128 MiB): most room (1000 MiB before it)",
                        "db2: hv1 -> hv2 (128 MiB): most room (872 MiB before it)"], plan
    rules = [{"name": "db-apart", "kind": "apart", "tags": {"role": "db"}},
             {"name": "web-elsewhere", "kind": "off_hosts", "guests": ["web1"], "hosts": ["hv2", "hv3"]}]
    ruled = inventory(tmp_path / "ruled.yml", testbed, capacities, rules)
    run = playbook(ansible, "evacuate.yml", ruled, check=True, host="hv1")
    plan = lines(run, "The plan")
    assert plan[:3] == [
        "db1: hv1 -> hv2 (128 MiB): most room (1000 MiB before it)",
        "db2: hv1 -> hv3 (128 MiB): most room (200 MiB before it)",
        "web1: hv1 -> hv2 (64 MiB): most room (872 MiB before it); no host with room keeps every soft rule; breaks soft "
        "rule web-elsewhere (never on hv2)"], plan
    assert "hv1: guests 3 -> 0, guest memory 320 -> 0 MiB (1% -> 0% of its capacity)" in plan
    assert where(testbed) == home and not cordoned(testbed, 1)
    print("evacuation plan with the rules:", plan)
    run = playbook(ansible, "evacuate.yml", ruled, host="hv1")
    assert where(testbed) == {"db1": "hv2", "db2": "hv3", "web1": "hv2"}
    again = playbook(ansible, "evacuate.yml", ruled, host="hv1")
    assert again.changed == 0 and lines(again, "The plan")[0] == "nothing to move"
    # restore: home, as the rules allow - db2 would meet db1 there, so it stays, and the restore says why
    run = playbook(ansible, "restore.yml", ruled, host="hv1")
    assert where(testbed) == {"db1": "hv1", "db2": "hv3", "web1": "hv1"} and not cordoned(testbed, 1)
    assert "db2 stays: going home to hv1 would break strict rule db-apart (apart from db1, which runs on hv1)" in \
        lines(run, "The plan"), lines(run, "The plan")
    # without the rules, db2 comes home too
    playbook(ansible, "restore.yml", free, host="hv1")
    assert where(testbed) == home
    # a rebalance repairs the broken strict rule first: one db guest leaves hv1
    even = inventory(tmp_path / "even.yml", testbed, {"hv1": 1024, "hv2": 1024, "hv3": 1024}, rules)
    run = playbook(ansible, "rebalance.yml", even, check=True, rebalance_tolerance=0.9)
    plan = lines(run, "The plan")
    assert plan[0].startswith("db1: hv1 -> hv2 (128 MiB): ends the broken rule db-apart (db1 and db2 on hv1)"), plan
    print("rebalance plan:", plan)
    clear(testbed)


def test_consolidation_powers_a_host_off_and_on_again_when_demand_rises(testbed, ansible, tmp_path):
    clear(testbed)
    uris = testbed["uris"]
    for uri, name, memory in zip(uris, ("c1", "c2", "c3"), (128, 128, 96)):
        ansible.run([{"name": name, "kvmfleet.libvirt.domain": dict(guest(name, memory), uri=uri)}])
    assert where(testbed) == {"c1": "hv1", "c2": "hv2", "c3": "hv3"}
    inv = inventory(tmp_path / "power.yml", testbed, {"hv1": 1024, "hv2": 1024, "hv3": 1024}, power=True)
    knobs = {"consolidate_low": 0.2, "consolidate_high": 0.8, "consolidate_reserve": 1}
    run = playbook(ansible, "consolidate.yml", inv, check=True, **knobs)
    plan = lines(run, "The consolidation plan")
    print("consolidation plan:", plan)
    assert plan[:2] == [
        "c3: hv3 -> hv1 (96 MiB): empties hv3 (9% < low 20%); the most loaded host that takes it: hv1, 22% after",
        "c2: hv2 -> hv1 (128 MiB): empties hv2 (12% < low 20%); the most loaded host that takes it: hv1, 34% after"]
    assert "hv3 powers off: empty after the moves; 1 spare(s) stay up (hv2); demand 17% of the hosts left in service" \
        in plan and "hv1: guests 1 -> 3, 12% -> 34% of its capacity used" in plan
    assert where(testbed) == {"c1": "hv1", "c2": "hv2", "c3": "hv3"} and all(answers(u) for u in uris)

    run = playbook(ansible, "consolidate.yml", inv, **knobs)
    assert where(testbed) == {"c1": "hv1", "c2": "hv1", "c3": "hv1"}
    assert not answers(uris[2]) and answers(uris[1]) and not cordoned(testbed, 2)
    print("consolidation:", lines(run, "What consolidation did"))
    assert lines(run, "What consolidation did") == ["mode: consolidate", "powered off: hv3"]
    read = ansible.run([{"kvmfleet.libvirt.domain_info": {"uri": uris[0], "name": "c3"}}]).tasks[-1]["result"]
    assert read["guests"][0]["last_move"]["by"] == "consolidate" and read["guests"][0]["last_move"]["from"] == "hv3"
    again = playbook(ansible, "consolidate.yml", inv, **knobs)
    assert again.changed == 0 and lines(again, "What consolidation did") == ["mode: steady"]

    # demand rises: 640 MiB more on hv1 and 704 MiB on the spare, 83 % of the hosts in service
    ansible.run([{"name": "d1", "kvmfleet.libvirt.domain": dict(guest("d1", 640), uri=uris[0])},
                 {"name": "d2", "kvmfleet.libvirt.domain": dict(guest("d2", 704), uri=uris[1])}])
    run = playbook(ansible, "consolidate.yml", inv, check=True, **knobs)
    plan = lines(run, "The consolidation plan")
    assert "hv3 powers on: demand 83% of the hosts in service is above the high watermark 80%; 55% with it" in plan, plan
    assert not answers(uris[2])
    run = playbook(ansible, "consolidate.yml", inv, **knobs)
    print("wake-up:", lines(run, "What consolidation did"), lines(run, "What moved, what stays"))
    assert answers(uris[2]) and not cordoned(testbed, 3)
    placed = where(testbed)
    assert sorted(placed) == ["c1", "c2", "c3", "d1", "d2"] and "hv3" in placed.values(), placed
    assert lines(run, "What consolidation did")[:3] == ["mode: wake", "powered on: hv3", "in service: hv3"]
    again = playbook(ansible, "consolidate.yml", inv, **knobs)
    assert again.changed == 0, lines(again, "The consolidation plan")
    harness.wait_for(lambda: all(answers(u) for u in uris), timeout=30, what="every hypervisor to answer")
    clear(testbed)
