"""The kvmfleet.libvirt.guests inventory plugin against the real libvirtd, through ansible-inventory.

Guests made by the fleet module are listed with their tags as groups; a booted guest's ansible_host
is the address it really holds (its DHCP lease, which the guest also prints on its console); an
unreachable hypervisor is a warning naming it, or an error with strict.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import harness
from harness import guest, report_where

pytestmark = pytest.mark.slow
BAD_URI = "qemu+unix:///system?socket=/nonexistent/kvmfleet.sock"


def inventory(tmp_path, config, expect_rc=0):
    path = tmp_path / "inventory.kvmfleet.yml"
    path.write_text(yaml.safe_dump(dict({"plugin": "kvmfleet.libvirt.guests"}, **config)))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(path), "--list"],
                          env=harness.Ansible(tmp_path)._env(tmp_path / "unused.json"), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == expect_rc, proc.stdout[-3000:] + proc.stderr[-3000:]
    return (harness.unwrap_unsafe(json.loads(proc.stdout)) if proc.returncode == 0 else None), proc.stderr


def test_guests_grouped_by_hypervisor_state_and_tag_with_their_real_address(conn, prefix, ansible, image, lab, tmp_path):
    subnet = "10.251.%d" % int(prefix[-3:-1], 16)
    net = prefix + "dhcp"
    ansible.run([{"name": "net", "kvmfleet.libvirt.network": {
        "name": net, "bridge": "kvi" + prefix[-7:-1],
        "ipv4": {"address": subnet + ".1/24", "dhcp": {"ranges": [{"start": subnet + ".100", "end": subnet + ".150"}]}}}}])
    web, db = prefix + "web", prefix + "db"
    cmdline = image["cmdline"] + " kvmfleet.dhcp=1"
    up = guest(web, image, lab, tags={"role": "web", "inv": prefix}, interfaces=[{"network": net}],
               boot={"kernel": image["kernel"], "initrd": image["initrd"], "cmdline": cmdline})
    down_args = {"name": db, "virt_type": "qemu", "memory": 128, "tags": {"role": "db", "inv": prefix}}
    down = {"name": "db", "kvmfleet.libvirt.domain": down_args}
    ansible.run([up, down])
    mac = conn.lookupByName(web).XMLDesc(0).split("<mac address='")[1][:17]
    report = report_where(web, lambda r: (r["nics"].get(mac) or {}).get("ipv4"), "its DHCP lease", timeout=120)
    leased = report["nics"][mac]["ipv4"]
    assert leased.startswith(subnet + ".")

    listed, errors = inventory(tmp_path, {"uris": ["qemu:///system", BAD_URI], "filters": {"tags": {"inv": prefix}},
                                          "keyed_groups": [{"key": "kvmfleet_tags.role", "prefix": "role"}]})
    assert "hypervisor %s is left out" % BAD_URI in errors
    hostvars = listed["_meta"]["hostvars"]
    assert sorted(hostvars) == sorted([web, db])
    assert hostvars[web]["ansible_host"] == leased, "ansible_host is the address the guest holds"
    assert hostvars[web]["kvmfleet_state"] == "running" and hostvars[db]["kvmfleet_state"] == "shutoff"
    assert hostvars[web]["kvmfleet_uuid"] == conn.lookupByName(web).UUIDString()
    assert hostvars[web]["kvmfleet_tags"] == {"role": "web", "inv": prefix}
    assert hostvars[db]["kvmfleet_spec"]["memory"] == "128MiB"
    assert set(listed["hypervisor_localhost"]["hosts"]) == {web, db}
    assert listed["tag_role_web"]["hosts"] == [web] and listed["role_db"]["hosts"] == [db]
    assert set(listed["state_running"]["hosts"]) == {web}

    running, _errors = inventory(tmp_path, {"uris": ["qemu:///system"], "filters": {
        "tags": {"inv": prefix}, "state": ["running"]}})
    assert sorted(running["_meta"]["hostvars"]) == [web]

    # strict: the source fails (ansible-inventory goes on without it, or stops with any_unparsed_is_failed)
    nothing, errors = inventory(tmp_path, {"uris": [BAD_URI], "strict": True})
    assert "Failed to parse inventory" in errors and BAD_URI in errors and nothing["_meta"]["hostvars"] == {}
    harness.sweep(conn, prefix)


def test_the_inventory_cache_serves_the_listing_until_it_is_flushed(conn, prefix, ansible, tmp_path):
    """cache: true keeps the listing (the jsonfile plugin here): a guest made after it is not listed from the
    cache, and is listed once the cache is flushed (cache: false for one run reads the hypervisor again)."""
    first, second = prefix + "c1", prefix + "c2"
    ansible.run([{"name": "one", "kvmfleet.libvirt.domain": {
        "name": first, "virt_type": "qemu", "memory": 128, "tags": {"inv": prefix}}}])
    cache_dir = tmp_path / "cache"
    cached = {"uris": ["qemu:///system"], "filters": {"tags": {"inv": prefix}}, "cache": True,
              "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(cache_dir), "cache_timeout": 3600}
    listed, _errors = inventory(tmp_path, cached)
    assert sorted(listed["_meta"]["hostvars"]) == [first]
    assert list(cache_dir.iterdir()), "no cache file was written"
    ansible.run([{"name": "two", "kvmfleet.libvirt.domain": {
        "name": second, "virt_type": "qemu", "memory": 128, "tags": {"inv": prefix}}}])
    from_cache, _errors = inventory(tmp_path, cached)
    assert sorted(from_cache["_meta"]["hostvars"]) == [first], "the second listing did not come from the cache"
    fresh, _errors = inventory(tmp_path, dict(cached, cache=False))
    assert sorted(fresh["_meta"]["hostvars"]) == [first, second]
    for path in cache_dir.iterdir():
        path.unlink()  # flushed: the next cached listing reads the hypervisor
    refilled, _errors = inventory(tmp_path, cached)
    assert sorted(refilled["_meta"]["hostvars"]) == [first, second]
    harness.sweep(conn, prefix)
