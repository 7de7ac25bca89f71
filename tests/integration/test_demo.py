"""The README's demo playbook, as a scenario: it converges, and the guests it boots report in."""

from __future__ import annotations

import harness

DEMO = harness.REPO / "playbooks" / "demo.yml"


def test_demo_playbook_converges_and_boots_guests(conn, prefix, ansible):
    run = ansible.converge(None, {"demo_prefix": prefix}, playbook=DEMO)
    names = [prefix + n for n in ("web1", "web2", "db1")]
    assert [harness.domain_state(conn, n) for n in names] == ["running"] * 3
    shown = [item["msg"] for item in run.result("Show the guests")["results"]]
    assert len(shown) == 3
    assert "%sdb1 (db): 2 vCPU(s)" % prefix in shown[2]
    facts = run.result("Read the hypervisor")
    assert facts["libvirt_version"].count(".") == 2
