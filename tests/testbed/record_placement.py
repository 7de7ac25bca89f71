"""Record what host_info and domain_info really return on the test bed, for the placement unit tests.

    bash tests/testbed/testbed.sh up 3     # or let this script bring it up (and down again)
    .venv/bin/python tests/testbed/record_placement.py

Three hypervisors, guests made by the collection's own modules: on hv1 a guest with a disk in a private pool
(16 MiB of data: what a move must copy when storage is not shared), a second running one and a shut-off one; on hv2 a running
guest; hv3 empty but for a guest evacuated there from hv2 (migrate with record_origin: its origin is hv2), and
hv3 cordoned. Then the same reads playbooks/tasks/read_fleet.yml makes (a host_info loop and a domain_info loop
over the hypervisors), and their registered results are written, as Ansible registered them, to
tests/unit/plugins/module_utils/fixtures/placement/fleet.json. The guests, the pool and the cordon are removed at
the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "tests" / "testbed" / "testbed.sh"
OUTPUT = REPO / "tests" / "unit" / "plugins" / "module_utils" / "fixtures" / "placement" / "fleet.json"
KERNEL = "/var/lib/libvirt/images/kvmfleet-test/"


def guest(name, memory, vcpus=1, state="running", disks=None):
    return {"name": name, "virt_type": "qemu", "machine": "pc", "memory": memory, "vcpus": vcpus, "state": state,
            "boot": {"kernel": KERNEL + "vmlinuz", "initrd": KERNEL + "initrd.img", "cmdline": "console=ttyS0 panic=-1"},
            "disks": disks or [], "tags": {"recorded": "placement"}}


def playbooks(uris, output, image):
    setup = [{"name": "The recorded fleet", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "hv1's private pool", "kvmfleet.libvirt.pool": {
            "uri": uris[0], "name": "priv", "type": "dir", "path": "/var/lib/libvirt/images/priv", "build": True}},
        {"name": "p-web's disk, 16 MiB of data", "kvmfleet.libvirt.volume": {
            "uri": uris[0], "pool": "priv", "name": "p-web.raw", "src": str(image)}},
        {"name": "hv1's guests", "kvmfleet.libvirt.fleet": {"uri": uris[0], "guests": [
            guest("p-web", "160MiB", 2, disks=[{"dev": "vda", "pool": "priv", "volume": "p-web.raw", "format": "raw"}]),
            guest("p-db", "192MiB", 1), guest("p-off", "256MiB", 1, state="shutoff")]}},
        {"name": "hv2's guests", "kvmfleet.libvirt.fleet": {"uri": uris[1], "guests": [
            guest("p-cache", "128MiB", 1), guest("p-away", "96MiB", 1)]}},
        {"name": "p-away is evacuated to hv3", "kvmfleet.libvirt.migrate": {
            "uri": uris[1], "name": "p-away", "destination_uri": uris[2], "record_origin": True}},
        {"name": "hv3 is cordoned", "kvmfleet.libvirt.host_maintenance": {"uri": uris[2], "reason": "recorded"}},
    ]}]
    read = [{"name": "Read the fleet as the placement playbooks do", "hosts": "localhost", "gather_facts": False,
             "vars": {"mover_group": "hypervisors"}, "tasks": [
                 {"name": "Read", "ansible.builtin.include_tasks": str(REPO / "playbooks" / "tasks" / "read_fleet.yml"),
                  "vars": {"mover_capacities": {}, "mover_copy_storage": None}},
                 {"name": "Write what was registered", "ansible.builtin.copy": {
                     "dest": str(output), "mode": "0644",
                     "content": "{{ {'hosts': mover_hosts_read.results, 'guests': mover_guests_read.results}"
                                " | to_nice_json(sort_keys=true) }}\n"}}]}]
    teardown = [{"name": "Clean up", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Uncordon hv3", "kvmfleet.libvirt.host_maintenance": {"uri": uris[2], "state": "absent"}},
        {"name": "Remove the guests", "kvmfleet.libvirt.domain": {
            "uri": "{{ item.0 }}", "name": "{{ item.1 }}", "state": "absent", "remove_storage": True},
         "loop": [[uris[0], "p-web"], [uris[0], "p-db"], [uris[0], "p-off"], [uris[1], "p-cache"], [uris[2], "p-away"]]},
        {"name": "Remove the pool", "kvmfleet.libvirt.pool": {
            "uri": uris[0], "name": "priv", "state": "absent", "remove_storage": True}},
    ]}]
    return setup, read, teardown


def ansible_playbook(work, name, plays, inventory):
    path = work / (name + ".yml")
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".venv" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1")
    subprocess.run([str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), str(path)], env=env,
                   check=True)


def main():
    status = subprocess.run(["bash", str(TESTBED), "status", "3"], capture_output=True, text=True, check=True)
    started = " down" in status.stdout
    if started:
        subprocess.run(["bash", str(TESTBED), "up", "3"], check=True, capture_output=True)
    uris = subprocess.run(["bash", str(TESTBED), "uris", "3"], capture_output=True, text=True, check=True).stdout.split()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            inventory = work / "hosts.yml"
            hosts = {"hv%d" % (n + 1): {"kvmfleet_uri": uri} for n, uri in enumerate(uris)}
            inventory.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": {
                "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}))
            image = work / "p-web.raw"
            image.write_bytes(os.urandom(16 * 1024 * 1024))
            setup, read, teardown = playbooks(uris, OUTPUT, image)
            OUTPUT.parent.mkdir(parents=True, exist_ok=True)
            try:
                ansible_playbook(work, "setup", setup, inventory)
                ansible_playbook(work, "read", read, inventory)
            finally:
                ansible_playbook(work, "teardown", teardown, inventory)
    finally:
        if started:
            subprocess.run(["bash", str(TESTBED), "down", "3"], check=False, capture_output=True)
    recorded = json.loads(OUTPUT.read_text())
    print("recorded %d hosts and %d guest lists in %s" % (len(recorded["hosts"]), len(recorded["guests"]), OUTPUT))


if __name__ == "__main__":
    main()
