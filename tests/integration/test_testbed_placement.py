"""Placement reads what host_info and domain_info really return (issue 19): the reads of playbooks/tasks/read_fleet.yml
on the test bed have the shape of the outputs the placement unit tests were recorded from
(tests/unit/plugins/module_utils/fixtures/placement/fleet.json, tests/testbed/record_placement.py), and the view
built from them prices a move that copies a private disk by the space its image takes.
"""

from __future__ import annotations

import json

import libvirt
import pytest
import yaml

import harness
from test_testbed_fleet import clear
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._migrate import placement

pytestmark = pytest.mark.slow
RECORDED = harness.REPO / "tests" / "unit" / "plugins" / "module_utils" / "fixtures" / "placement" / "fleet.json"
IMAGE_MIB = 8


def shape(value, depth=2):
    """The keys of a dict, with the keys of the dicts and of the first dict of the lists in it, ``depth`` deep."""
    if not isinstance(value, dict) or depth == 0:
        return type(value).__name__
    result = {}
    for key, item in value.items():
        if isinstance(item, list) and item and isinstance(item[0], dict):
            result[key] = [shape(item[0], depth - 1)]
        elif isinstance(item, dict):
            result[key] = shape(item, depth - 1)
        else:
            result[key] = "value"
    return result


def test_placement_inputs_are_what_the_modules_return(testbed, ansible, tmp_path):
    clear(testbed)
    uris = testbed["uris"]
    hosts = {"hv%d" % (n + 1): {"kvmfleet_uri": uri} for n, uri in enumerate(uris)}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}}))
    image = tmp_path / "priced.raw"
    image.write_bytes(b"\x5a" * (IMAGE_MIB * 1024 * 1024))
    out = tmp_path / "read.json"
    setup = [
        {"name": "private pool", "kvmfleet.libvirt.pool": {
            "uri": uris[0], "name": "priced", "type": "dir", "path": "/var/lib/libvirt/images/priced", "build": True}},
        {"name": "its disk", "kvmfleet.libvirt.volume": {
            "uri": uris[0], "pool": "priced", "name": "priced.raw", "src": str(image)}},
        {"name": "a shut-off guest on it", "kvmfleet.libvirt.domain": {
            "uri": uris[0], "name": "priced", "virt_type": "qemu", "memory": "96MiB", "state": "shutoff",
            "disks": [{"dev": "vda", "pool": "priced", "volume": "priced.raw", "format": "raw"}]}},
    ]
    read = [{"name": "read the fleet", "hosts": "localhost", "gather_facts": False,
             "vars": {"mover_group": "hypervisors", "mover_capacities": {}, "mover_copy_storage": None}, "tasks": [
                 {"name": "read", "ansible.builtin.include_tasks": str(harness.REPO / "playbooks" / "tasks" / "read_fleet.yml")},
                 {"name": "keep it", "ansible.builtin.copy": {"dest": str(out), "mode": "0644", "content":
                  "{{ {'hosts': mover_hosts_read.results, 'guests': mover_guests_read.results} | to_json }}"}}]}]
    playbook = tmp_path / "read.yml"
    playbook.write_text(yaml.safe_dump(read))
    try:
        ansible.run(setup)
        ansible.run(None, playbook=playbook, inventory=inventory)
        live, recorded = json.loads(out.read_text()), json.loads(RECORDED.read_text())
        # every key placement and the recorded tests read is still there, with the same nesting
        live_host, recorded_host = shape(live["hosts"][0]), shape(recorded["hosts"][0])
        assert set(recorded_host) <= set(live_host), set(recorded_host) - set(live_host)
        for key in ("memory", "cpu", "maintenance"):
            assert recorded_host[key] == live_host[key], key
        live_guest = next(g for r in live["guests"] for g in r["guests"] if g["name"] == "priced")
        recorded_guest = next(g for r in recorded["guests"] for g in r["guests"] if g["name"] == "p-web")
        assert set(shape(recorded_guest)) == set(shape(live_guest))
        assert shape(recorded_guest)["disks"] == shape(live_guest)["disks"]
        # and the view prices a move by the space the private disk takes
        view = placement.fleet_view(live["hosts"], live["guests"], shared_storage=False)
        priced = next(g for g in view["guests"] if g["name"] == "priced")
        assert priced["host"] == "hv1" and priced["memory_mib"] == 96 and not priced["running"]
        assert priced["copy_gib"] == pytest.approx(IMAGE_MIB / 1024.0, rel=0.05)
    finally:
        clear(testbed)
        conn = libvirt.open(uris[0])
        try:
            pool = conn.storagePoolLookupByName("priced")
            for volume in pool.listAllVolumes(0):
                volume.delete(0)
            pool.destroy()
            pool.delete(0)
            pool.undefine()
        except libvirt.libvirtError:
            pass
        conn.close()
