"""The hypervisor role's refusals, through real playbooks on this machine (issue 12).

Each bad setting fails before anything changes: libvirtd keeps its pid (not restarted), its files and
the kernel's KSM and hugepages values are as they were. The role's successful run (KSM, hugepages, a
daemon setting, a real restart, idempotence, cleanup) is its molecule scenario.
"""

from __future__ import annotations

from pathlib import Path

import pytest

WATCHED = ["/etc/libvirt/libvirtd.conf", "/etc/libvirt/qemu.conf", "/run/libvirtd.pid", "/sys/kernel/mm/ksm/run",
           "/sys/kernel/mm/ksm/pages_to_scan", "/proc/sys/vm/nr_hugepages"]


def host_state():
    return {path: Path(path).read_text() for path in WATCHED} | {
        path: Path(path).exists() for path in ("/etc/tmpfiles.d/kvmfleet-ksm.conf", "/etc/pki/libvirt/servercert.pem")}


def kvm_usable(ansible):
    """What the role's own check (host_tuning) says of this machine."""
    run = ansible.run([{"name": "kvm", "kvmfleet.libvirt.host_tuning": {"require_kvm": False}, "register": "kvm"}],
                      check=True)
    return run.result("kvm")["kvm"]["usable"]


def role_task(**role_vars):
    # A setting that would change the host if the role went on: KSM's scan rate and a daemon setting.
    role_vars.setdefault("hypervisor_ksm", {"pages_to_scan": 123})
    role_vars.setdefault("hypervisor_libvirtd_settings", {"keepalive_interval": 7})
    role_vars.setdefault("hypervisor_allow_emulation", True)
    return {"name": "hypervisor", "ansible.builtin.include_role": {"name": "kvmfleet.libvirt.hypervisor"},
            "vars": role_vars}


@pytest.mark.parametrize("role_vars, words", [
    # the distribution in brackets is this machine's, whatever it is
    ({"hypervisor_os_family": "Gentoo"}, ("OS family Gentoo (", ") is not supported; supported: Debian")),
    ({"hypervisor_allow_emulation": False}, "KVM is not usable here: the CPU reports neither vmx (Intel VT-x) nor svm"),
    ({"hypervisor_listen_tls": True}, "option libvirtd.listen_tls"),
    ({"hypervisor_listen_tls": True, "hypervisor_tls": {"ca_cert": "junk", "server_cert": "junk",
                                                        "server_key": "secret-key-text"}},
     "option tls.ca_cert: got '(PEM)'; not a PEM certificate"),
    ({"hypervisor_listen_tcp": True}, "plain TCP carries guest memory and credentials unencrypted"),
], ids=["unknown-os-family", "no-kvm", "tls-without-files", "tls-bad-files", "plain-tcp"])
def test_a_bad_setting_fails_first_and_changes_nothing(ansible, role_vars, words):
    if role_vars == {"hypervisor_allow_emulation": False} and kvm_usable(ansible):
        # On a host with KVM the role gets past the check instead (in check mode: nothing changes here).
        run = ansible.run([role_task(**role_vars)], check=True)
        assert "KVM is not usable" not in run.output
        return
    before = host_state()
    for check in (True, False):
        run = ansible.run([role_task(**role_vars)], check=check, expect_rc=2)
        assert all(part in run.output for part in ((words,) if isinstance(words, str) else words)), run.output[-3000:]
        assert "secret-key-text" not in run.output
        assert run.changed == 0
    assert host_state() == before, "a refused run changed the host"


def test_plain_tcp_is_accepted_when_allowed_in_check_mode(ansible):
    """Allowed explicitly, plain TCP passes the checks (check mode: this machine's daemon is left alone)."""
    run = ansible.run([role_task(hypervisor_listen_tcp=True, hypervisor_allow_insecure_tcp=True)], check=True)
    config = [t["result"] for t in run.tasks if t["task"].endswith("The daemon's and QEMU's settings and the TLS files")][-1]
    assert config["changed"] and config["restart_required"]
    assert any("listen_tcp = 1" in d["after"] for d in config["diff"])


def test_the_lock_manager_is_planned_in_check_mode(ansible, tmp_path):
    """hypervisor_lock_manager: lockd sets qemu.conf's lock_manager and qemu-lockd.conf's lockspace (check mode: this
    machine's daemon and files are left alone; the test bed runs virtlockd itself)."""
    before = host_state()
    run = ansible.run([role_task(hypervisor_lock_manager="lockd",
                                 hypervisor_lockspace_dir=str(tmp_path / "lockspace"))], check=True)
    config = [t["result"] for t in run.tasks if t["task"].endswith("The daemon's and QEMU's settings and the TLS files")][-1]
    after = {d["after_header"]: d["after"] for d in config["diff"]}
    assert 'lock_manager = "lockd"' in after["/etc/libvirt/qemu.conf"]
    assert 'file_lockspace_dir = "%s"' % (tmp_path / "lockspace") in after["/etc/libvirt/qemu-lockd.conf"]
    assert host_state() == before and not (tmp_path / "lockspace").exists()
