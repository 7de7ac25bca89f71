"""Secrets never shown, and generated bad input refused whole, through real ansible-playbook (issue 22).

The secrets a play hands the collection - VNC and SPICE passwords, a cloud-init password and a private key in its
user data, a TLS server key - appear in none of its outputs: the results, --diff, -vvv, warnings and failures (a
failing task next to them), the inventory plugin's host variables, the files gitops_export writes.

A sample of the generated cases of tests/unit/.../test_generated_input.py runs here against the real daemon: each
fails naming its option, and every guest, network, pool and volume of the host is byte for byte as it was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import libvirt
import pytest
import yaml

import pki

pytestmark = pytest.mark.slow
VNC, SPICE = "Vn3-x9q", "sp1ce-S3cret-9f2"
CLOUD_PASSWORD = "ci-S3cret-pw-77"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nkvmfleetSecretKeyMaterial0123456789\n-----END OPENSSH PRIVATE KEY-----"


def host_state(conn):
    """Every guest, network, pool and volume of the host, as libvirt writes them."""
    state = {"guests": {d.name(): d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
                        for d in conn.listAllDomains(0)},
             "networks": {n.name(): n.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) for n in conn.listAllNetworks(0)},
             "pools": {}}
    for pool in conn.listAllStoragePools(0):
        volumes = {v.name(): v.XMLDesc(0) for v in pool.listAllVolumes(0)} if pool.isActive() else {}
        state["pools"][pool.name()] = (pool.XMLDesc(libvirt.VIR_STORAGE_XML_INACTIVE), volumes)
    return state


def test_no_secret_appears_in_any_output(conn, prefix, ansible, lab, tmp_path):
    name = prefix + "sec"
    tls = pki.make_pki({"hv": ["127.0.0.1"]})
    server_key = tls["servers"]["hv"]["key"]
    secrets = {"vnc": VNC, "spice": SPICE, "cloud-init password": CLOUD_PASSWORD,
               "private key": "kvmfleetSecretKeyMaterial0123456789",
               "TLS key": server_key.splitlines()[1]}
    guest = {"name": name, "virt_type": "qemu", "memory": "64MiB", "tags": {"suite": "secrets"},
             "graphics": [{"type": "vnc", "password": VNC}, {"type": "spice", "password": SPICE}],
             "cloud_init": {"pool": lab["pool"], "user_data": {
                 "password": CLOUD_PASSWORD, "chpasswd": {"expire": False},
                 "write_files": [{"path": "/root/.ssh/id_ed25519", "content": PRIVATE_KEY, "permissions": "0600"}]}},
             "disks": [{"pool": lab["pool"], "volume": name + ".qcow2", "size": "16MiB"}]}
    pki_dir, config_dir = tmp_path / "pki", tmp_path / "etc"
    config_dir.mkdir()
    outputs = []

    def keep(run):
        outputs.append(run.output)
        outputs.append(json.dumps(run.tasks))
        return run

    tasks = [{"name": "guest", "kvmfleet.libvirt.domain": guest},
             {"name": "read back", "kvmfleet.libvirt.domain_info": {"name": name}, "register": "info"},
             {"name": "tls", "kvmfleet.libvirt.libvirtd_config": {
                 "config_dir": str(config_dir), "pki_dir": str(pki_dir), "libvirtd": {"listen_tls": True},
                 "tls": {"ca_cert": tls["ca_cert"], "server_cert": tls["servers"]["hv"]["cert"],
                         "server_key": server_key}}}]
    keep(ansible.run(tasks, check=True, verbose=True))
    keep(ansible.run(tasks, verbose=True))
    keep(ansible.run(tasks, verbose=True))
    # a password change (in --diff) and a failing task next to the secrets
    changed = dict(guest, graphics=[{"type": "vnc", "password": "Nw-9x2z"}, {"type": "spice", "password": SPICE}])
    secrets["new vnc"] = "Nw-9x2z"
    keep(ansible.run([{"name": "change", "kvmfleet.libvirt.domain": changed}], verbose=True))
    failing = keep(ansible.run([{"name": "bad", "kvmfleet.libvirt.domain": dict(changed, memory="lots")}],
                               verbose=True, expect_rc=2))
    assert "option memory" in failing.output
    info = keep(ansible.run([{"name": "read", "kvmfleet.libvirt.domain_info": {"name": name}}]))
    assert sorted(info.result("read")["guests"][0]["secrets"]) == ["graphics[0].password", "graphics[1].password"]

    # the inventory plugin's host variables
    config = tmp_path / "secrets.kvmfleet.yml"
    config.write_text(yaml.safe_dump({"plugin": "kvmfleet.libvirt.guests", "uris": ["qemu:///system"],
                                      "addresses": False}))
    listed = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(config), "--list",
                             "-vvv"], env=ansible._env(tmp_path / "inv.json"), capture_output=True, text=True,
                            check=True)
    assert name in listed.stdout
    outputs += [listed.stdout, listed.stderr]

    # the files gitops_export writes
    (tmp_path / "inventory").mkdir()
    export = keep(ansible.run([
        {"name": "read", "kvmfleet.libvirt.domain_info": {"name": name}, "register": "read"},
        {"name": "export", "kvmfleet.libvirt.gitops_export": {
            "dest": str(tmp_path / "inventory"),
            "hypervisors": [{"name": "this", "uri": "qemu:///system", "guests": "{{ read.guests }}"}]}}],
        verbose=True))
    assert export.result("export")["changed"]
    outputs += [p.read_text() for p in (tmp_path / "inventory").rglob("*") if p.is_file()]

    seen = {what: [n for n, text in enumerate(outputs) if secret in text] for what, secret in secrets.items()}
    assert all(not found for found in seen.values()), "secrets shown: %s" % {k: v for k, v in seen.items() if v}
    print("secrets checked: %d, in %d outputs (%d characters): none shown" % (
        len(secrets), len(outputs), sum(len(t) for t in outputs)))
    # they are where they belong: in the guest's definition (read with the secure flag) and the key file
    assert "passwd='Nw-9x2z'" in conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    assert (pki_dir / "libvirt" / "private" / "serverkey.pem").read_text().strip() == server_key.strip()
    ansible.run([{"kvmfleet.libvirt.domain": {"name": name, "state": "absent", "remove_storage": True}}])


BAD = [
    ("domain", {"name": "{p}nul", "virt_type": "qemu", "memory": "64MiB",
                "graphics": [{"type": "vnc", "password": "a\x00b"}]}, "graphics[0].password"),
    ("network", {"name": "{p}net", "ipv4": 5}, "ipv4"),
    ("network", {"name": "{p}net", "ipv4": {"address": "10.98.0.1/24", "dhcp": {"ranges": ["x"]}}}, "ipv4.dhcp.ranges[0]"),
    ("domain", {"name": "{p}vol", "virt_type": "qemu", "memory": "64MiB",
                "disks": [{"pool": "{pool}", "volume": "../../etc/x.qcow2", "size": "1MiB"}]}, "volume"),
    ("fleet", {"guests": [{"name": "{p}twin", "virt_type": "qemu", "memory": "64MiB"},
                          {"name": "{p}twin", "virt_type": "qemu", "memory": "64MiB"}]}, "guests[1]"),
    ("pool", {"name": "{p}a/b", "type": "dir", "path": "/var/lib/libvirt/images/{p}x"}, "name"),
    ("volume", {"pool": "{pool}", "name": "{p}v.qcow2", "size": "-1GiB"}, "size"),
    ("domain", {"name": "{p}big", "virt_type": "qemu", "memory": "64MiB",
                "interfaces": [{"network": "{net}", "mac": "52:54:00:12:34:56"}] * 2, "title": "<b>&'\""},
     "interfaces"),
    ("cloud_init", {"pool": "{pool}", "name": "{p}seed.iso", "user_data": 5}, "user_data"),
    ("snapshot", {"guest": "{p}none", "name": "<x>"}, "guest"),
]


def test_generated_bad_input_changes_nothing_on_the_host(conn, prefix, ansible, lab):
    before = host_state(conn)
    refused = 0
    for module, args, option in BAD:
        args = json.loads(json.dumps(args).replace("{p}", prefix).replace("{pool}", lab["pool"])
                          .replace("{net}", lab["network"]))
        run = ansible.run([{"name": "bad", "kvmfleet.libvirt.%s" % module: args, "ignore_errors": True}], diff=True)
        result = run.result("bad")
        assert run.status("bad") == "ignored", (module, result)
        assert option in result["msg"], (module, option, result["msg"])
        assert "Traceback" not in run.output and "MODULE FAILURE" not in run.output
        refused += 1
    assert host_state(conn) == before, "a refused task changed the host"
    print("generated bad input through ansible-playbook: %d refused, the host unchanged" % refused)
