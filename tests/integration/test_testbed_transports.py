"""Hypervisors reached as an estate reaches them (issue 22): over ssh and over TLS, never over plain TCP.

Two hypervisors of the test bed's own, hv4 and hv5, beyond the three the other tests share. hv4 runs an sshd (key
authentication only, its host key in root's known_hosts, written here); both listen on TLS only, with a CA and
certificates made here (tests/integration/pki.py) and installed by kvmfleet.libvirt.libvirtd_config, the module behind
the hypervisor role's TLS settings. Then, with hv4 reached as qemu+ssh:// and hv5 as qemu+tls://:

- site.yml converges a fleet on both (the converge contract: check, run, again, check);
- the inventory plugin lists both hypervisors' guests, grouped by the names the inventory gives the hypervisors;
- evacuate.yml moves hv4's running guest to hv5 with the migration stream itself encrypted (migrate tls: QEMU's own
  TLS, seen on the destination QEMU's command line), and restore.yml brings it back over ssh;
- a module runs on hv4 itself, reached by Ansible over ssh (ansible_connection: ssh), talking to its local socket;
- every way a URI fails - a refused port, a host that drops packets, a certificate for another name, a missing client
  certificate, an unknown ssh host key, a login that would need a password - fails within its bound, naming why.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest
import yaml

import harness
import pki
from test_testbed_fleet import EXAMPLE, TESTBED, report

pytestmark = pytest.mark.slow
SITE = harness.REPO / "playbooks" / "site.yml"
EVACUATE = harness.REPO / "playbooks" / "evacuate.yml"
RESTORE = harness.REPO / "playbooks" / "restore.yml"
FLEET_TASK = "kvmfleet.libvirt.guests : Converge the guests of this hypervisor"
SNIFF = harness.REPO / "tests" / "testbed" / "sniff.py"
KNOWN_HOSTS = Path.home() / ".ssh" / "known_hosts"
NET = "192.168.250"
OTHER_ADDRESS = NET + ".24"  # a second address of hv4: in no certificate and in no known_hosts


def bed(*argv):
    proc = subprocess.run(["bash", str(TESTBED)] + [str(a) for a in argv], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "testbed.sh %s: %s%s" % (" ".join(map(str, argv)), proc.stdout, proc.stderr)
    return proc.stdout


def local_uri(testbed, n):
    return "qemu+unix:///system?socket=%s/hv%d/run/libvirt-sock" % (testbed["root"], n)


def tls_settings(root, n):
    """The libvirtd_config task that makes hvN a TLS-only hypervisor (its files in the test bed's directories)."""
    pki_dir = "%s/hv%d/pki" % (root, n)
    args = {
        "config_dir": "%s/hv%d/etc" % (root, n), "pki_dir": pki_dir,
        "libvirtd": {"listen_tls": True, "listen_tcp": False, "listen_addr": "0.0.0.0",
                     "ca_file": pki_dir + "/CA/cacert.pem", "cert_file": pki_dir + "/libvirt/servercert.pem",
                     "key_file": pki_dir + "/libvirt/private/serverkey.pem"},
        "qemu": {"default_tls_x509_cert_dir": pki_dir + "/qemu"},
        "tls": {"ca_cert": "{{ pki.ca_cert }}", "server_cert": "{{ pki.servers.hv%d.cert }}" % n,
                "server_key": "{{ pki.servers.hv%d.key }}" % n, "client_cert": "{{ pki.client_cert }}",
                "client_key": "{{ pki.client_key }}"}}
    return {"name": "hv%d listens on TLS only" % n, "kvmfleet.libvirt.libvirtd_config": args, "no_log": True}


@pytest.fixture(scope="module")
def remote(testbed, tmp_path_factory):
    """hv4 over ssh, hv5 over TLS (both TLS-only daemons); torn down afterwards, root's known_hosts as it was."""
    root = testbed["root"]
    work = tmp_path_factory.mktemp("transports")
    known_before = KNOWN_HOSTS.read_text() if KNOWN_HOSTS.exists() else None
    try:
        for n in (4, 5):
            bed("up-one", n)
        known = bed("sshd", 4).strip()
        KNOWN_HOSTS.parent.mkdir(mode=0o700, exist_ok=True)
        with KNOWN_HOSTS.open("a") as handle:
            handle.write(known + "\n")
        secrets = pki.make_pki({"hv4": [NET + ".14", "hv4"], "hv5": [NET + ".15", "hv5"]})
        client = pki.write_client_dir(work / "client-pki", secrets)
        ansible = harness.Ansible(work / "setup")
        keys = work / "pki.yml"  # the keys go by a vars file, never on a command line
        keys.write_text(yaml.safe_dump({"pki": secrets}))
        keys.chmod(0o600)
        play = work / "tls.yml"
        play.write_text(yaml.safe_dump([{"name": "TLS-only hypervisors", "hosts": "localhost", "gather_facts": False,
                                         "vars_files": [str(keys)], "tasks": [tls_settings(root, n) for n in (4, 5)]}]))
        ansible.converge(None, playbook=play)
        for n in (4, 5):
            bed("restart", n)
        bed("exec", 4, "ip", "addr", "add", OTHER_ADDRESS + "/24", "dev", "eth0")
        key = root / "ssh" / "id_ed25519"
        yield {
            "work": work, "root": root, "secrets": secrets, "client": client, "key": key,
            "hv4": "qemu+ssh://root@%s.14/system?keyfile=%s" % (NET, key),
            "hv5": "qemu+tls://%s.15/system?pkipath=%s" % (NET, client),
            "local": {n: local_uri(testbed, n) for n in (4, 5)},
        }
    finally:
        for n in (4, 5):
            subprocess.run(["bash", str(TESTBED), "down-one", str(n)], capture_output=True, check=False)
        if known_before is None:
            KNOWN_HOSTS.unlink(missing_ok=True)
        else:
            KNOWN_HOSTS.write_text(known_before)


def inventory(remote, path):
    """The example fleet's group_vars, with hv4 reached over ssh and hv5 over TLS."""
    group_vars = {}
    for part in sorted((EXAMPLE / "group_vars" / "hypervisors").glob("*.yml")):
        group_vars.update(yaml.safe_load(part.read_text()) or {})
    hosts = {
        "hv4": {"kvmfleet_uri": remote["hv4"], "guests_list": [{
            "name": "t1", "profiles": ["tiny", "web"],
            "serials": [{"type": "pty", "log": "/var/log/libvirt/qemu/t1-serial.log"}]}]},
        "hv5": {"kvmfleet_uri": remote["hv5"], "guests_list": [{"name": "t2", "profile": "tiny"}]},
    }
    for host in hosts.values():
        host["kvmfleet_guest_memory_mib"] = 2048
    group_vars.update({"ansible_connection": "local", "ansible_python_interpreter": sys.executable})
    path.write_text(yaml.safe_dump({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": group_vars}}}}))
    return path


@contextlib.contextmanager
def sniffing(remote, n, out):
    """What crosses hvN's wire to QEMU's migration ports (49152-49215) while the block runs (tests/testbed/sniff.py):
    yields a dict filled in when the block ends."""
    stop, summary = Path(str(out) + ".stop"), {}
    proc = subprocess.Popen(["bash", str(TESTBED), "exec", str(n), "python3", str(SNIFF), "49152", "49215", "300",
                             str(out), str(stop)])
    harness.wait_for(lambda: Path(str(out) + ".ready").exists(), timeout=30, what="the sniffer on hv%d" % n)
    try:
        yield summary
    finally:
        stop.touch()
        proc.wait(timeout=30)
    summary.update(json.loads(out.read_text()))


def migrating(remote, name):
    """Whether the guest has a job (its migration) on hv4."""
    conn = libvirt.open(remote["local"][4])
    try:
        return conn.lookupByName(name).jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()


def running_on(remote, n):
    conn = libvirt.open(remote["local"][n])
    try:
        return sorted(d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))
    finally:
        conn.close()


def test_a_fleet_over_ssh_and_tls(remote, testbed, ansible, tmp_path):
    inv = inventory(remote, tmp_path / "hosts.yml")
    for n in (4, 5):  # TLS only: plain TCP is refused
        with pytest.raises(libvirt.libvirtError, match="Connection refused"):
            libvirt.open("qemu+tcp://%s.1%d/system" % (NET, n))
    first = ansible.converge(None, playbook=SITE, inventory=inv)
    assert [g["name"] for g in first.result(FLEET_TASK, host="hv4")["guests"]] == ["t1"]
    assert [g["name"] for g in first.result(FLEET_TASK, host="hv5")["guests"]] == ["t2"]
    for n, uri in ((4, remote["hv4"]), (5, remote["hv5"])):
        conn = libvirt.open(uri)
        assert conn.getHostname() == "hv%d" % n
        conn.close()
    mac = first.result(FLEET_TASK, host="hv4")["guests"][0]["interfaces"][0]["mac"]
    report({"root": remote["root"]}, 4, "t1", lambda r: mac in r["nics"], "its NIC")

    # The inventory plugin over both transports: groups named as the inventory names the hypervisors.
    config = tmp_path / "fleet.kvmfleet.yml"
    config.write_text(yaml.safe_dump({"plugin": "kvmfleet.libvirt.guests", "addresses": False,
                                      "hypervisors": {"hv4": remote["hv4"], "hv5": remote["hv5"]}}))
    listed = harness.unwrap_unsafe(yaml.safe_load(subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(config), "--list"],
        env=ansible._env(tmp_path / "unused.json"), capture_output=True, text=True, check=True).stdout))
    assert listed["hypervisor_hv4"]["hosts"] == ["t1"] and listed["hypervisor_hv5"]["hosts"] == ["t2"]
    assert listed["_meta"]["hostvars"]["t1"]["kvmfleet_hypervisor"] == "hv4"

    # Evacuate hv4 with the migration stream encrypted: t1 runs on hv5, and what crossed hv5's wire to QEMU's migration
    # ports was TLS records, never QEMU's plain stream. Back home without tls, the same sniffer sees the plain stream.
    with sniffing(remote, 5, tmp_path / "to-hv5") as wire:
        evacuated = ansible.run(None, playbook=EVACUATE, inventory=inv, extra_vars={"host": "hv4", "migration_tls": True})
    assert evacuated.changed and running_on(remote, 5) == ["t1"]
    assert wire["bytes"] > 100000 and wire["tls_record"] and not wire["qemu_magic"], wire
    with sniffing(remote, 4, tmp_path / "to-hv4") as wire:
        restored = ansible.run(None, playbook=RESTORE, inventory=inv, extra_vars={"host": "hv4"})
    assert restored.changed and running_on(remote, 4) == ["t1"]
    assert wire["qemu_magic"] and not wire["tls_record"], wire
    again = ansible.run(None, playbook=SITE, inventory=inv)
    assert again.changed == 0

    # hv4's libvirtd restarts while the migration runs (its job seen on hv4): t1 runs exactly once, wherever the
    # migration got to, and evacuate then restore converge from there.
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inv), str(EVACUATE), "-e",
            json.dumps({"host": "hv4", "migration_tls": True})]
    proc = subprocess.Popen(argv, env=ansible._env(tmp_path / "interrupted.json"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    harness.wait_for(lambda: migrating(remote, "t1") or proc.poll() is not None, timeout=120,
                     what="t1's migration to start")
    bed("restart", 4)
    output = proc.communicate(timeout=300)[0]
    where = running_on(remote, 4) + running_on(remote, 5)
    print("hv4's libvirtd restarted during t1's migration: evacuate rc %d; t1 runs %d time(s)" % (
        proc.returncode, where.count("t1")))
    assert where.count("t1") == 1, (where, output[-3000:])
    ansible.run(None, playbook=EVACUATE, inventory=inv, extra_vars={"host": "hv4", "migration_tls": True})
    assert running_on(remote, 5) == ["t1"] and running_on(remote, 4) == []
    ansible.run(None, playbook=RESTORE, inventory=inv, extra_vars={"host": "hv4"})
    assert running_on(remote, 4) == ["t1"]
    assert ansible.run(None, playbook=SITE, inventory=inv).changed == 0


def test_a_module_on_the_hypervisor_itself_over_ssh(remote, ansible, tmp_path):
    """Ansible's own way: an ssh connection to hv4, the module there talking to qemu:///system (hv4's socket)."""
    inv = tmp_path / "ssh.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"hv4": {
        "ansible_host": NET + ".14", "ansible_user": "root", "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(remote["key"]), "ansible_python_interpreter": sys.executable}}}}))
    play = tmp_path / "on-hv4.yml"
    play.write_text(yaml.safe_dump([{"hosts": "hv4", "gather_facts": False, "tasks": [
        {"name": "host", "kvmfleet.libvirt.host_info": {}, "register": "host"},
        {"name": "guest", "kvmfleet.libvirt.domain": {"name": "over-ssh", "virt_type": "qemu", "memory": "64MiB",
                                                      "state": "present"}}]}]))
    first = ansible.converge(None, playbook=play, inventory=inv)
    assert first.result("host")["hostname"] == "hv4"
    conn = libvirt.open(remote["local"][4])
    dom = conn.lookupByName("over-ssh")
    dom.undefine()
    conn.close()


def failure(run, task):
    result = run.result(task)
    assert run.status(task) == "ignored", (task, result)
    return result["msg"], run._task(task)["seconds"]


def test_every_way_a_uri_fails_is_bounded_and_says_why(remote, ansible, tmp_path):
    bed("drop", 5)
    missing = tmp_path / "only-ca"
    missing.mkdir()
    (missing / "cacert.pem").write_text(remote["secrets"]["ca_cert"])
    cases = {
        "refused": ("qemu+tcp://%s.14/system" % NET, "%s.14 port 16509 refused the connection" % NET),
        "dropped": ("qemu+tls://%s.15/system?pkipath=%s" % (NET, remote["client"]),
                    "%s.15 port 16514 did not answer" % NET),
        "another name": ("qemu+tls://%s/system?pkipath=%s" % (OTHER_ADDRESS, remote["client"]),
                         "IP address mismatch, certificate is not valid for '%s'" % OTHER_ADDRESS),
        "no client certificate": ("qemu+tls://%s.14/system?pkipath=%s" % (NET, missing),
                                  "%s/clientcert.pem (the client certificate)" % missing),
        "unknown host key": ("qemu+ssh://root@%s/system?keyfile=%s" % (OTHER_ADDRESS, remote["key"]),
                             "does not know %s's ssh host key" % OTHER_ADDRESS),
        "password": ("qemu+ssh://root@%s.14/system?keyfile=%s" % (NET, tmp_path / "no-such-key"),
                     "ssh refused the login and never prompts here"),
    }
    tasks = [{"name": name, "kvmfleet.libvirt.host_info": {"uri": uri, "connect_timeout": 10}, "ignore_errors": True}
             for name, (uri, _words) in cases.items()]
    play = tmp_path / "unreachable.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    started = time.monotonic()
    run = ansible.run(None, playbook=play, diff=False)
    took = time.monotonic() - started
    bed("undrop", 5)
    seen = {}
    for name, (_uri, words) in cases.items():
        message, seconds = failure(run, name)
        assert words in message, (name, message)
        assert seconds < 12, "%s took %.1f s" % (name, seconds)
        seen[name] = seconds
    print("unreachable kinds, seconds each: %s (all: %.1f s)" % (seen, took))
    assert seen["dropped"] >= 9, "a dropped-packet host is given connect_timeout, not less"
    assert remote["secrets"]["client_key"] not in run.output

    # With a terminal of its own (script(1)), where an ssh that may prompt would wait for a password: none is asked.
    password = tmp_path / "password.yml"
    password.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "password", "kvmfleet.libvirt.host_info": {"uri": cases["password"][0]}}]}]))
    command = "%s -i %s %s" % (Path(sys.executable).parent / "ansible-playbook", harness.INVENTORY, password)
    started = time.monotonic()
    proc = subprocess.run(["script", "-qec", command, "/dev/null"], env=ansible._env(tmp_path / "tty.json"),
                          capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    took = time.monotonic() - started
    assert proc.returncode != 0 and "never prompts here" in proc.stdout, proc.stdout[-3000:]
    assert "password:" not in proc.stdout.lower() and took < 20, took
