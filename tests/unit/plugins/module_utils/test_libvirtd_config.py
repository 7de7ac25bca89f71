# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirtd.conf / qemu.conf keys set in place, and the TLS files checked before they are installed."""

from __future__ import annotations

import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._host import daemon
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError

STOCK = """# Master libvirt daemon configuration file
#
#listen_tls = 0
#listen_tcp = 1
#unix_sock_group = "libvirt"
max_clients = 5000 # a trailing comment
"""


def configure(params, check):
    """The libvirtd_config module's run."""
    return daemon.DaemonConfigRunner(None, params, check).run()


def test_keys_are_set_in_place_and_everything_else_stays():
    text, changed = daemon.set_keys(STOCK, {"max_clients": 20, "unix_sock_group": "libvirt", "listen_tls": False})
    assert changed == ["listen_tls", "max_clients", "unix_sock_group"]
    lines = text.splitlines()
    assert lines[0] == daemon.HEADER.strip()
    assert "#listen_tcp = 1" in lines and "#unix_sock_group = \"libvirt\"" in lines  # comments kept
    assert "max_clients = 20" in lines and "max_clients = 5000 # a trailing comment" not in lines
    assert lines[-2:] == ["listen_tls = 0", 'unix_sock_group = "libvirt"']
    assert daemon.current_settings(text) == {"max_clients": 20, "listen_tls": 0, "unix_sock_group": "libvirt"}
    assert daemon.set_keys(text, {"max_clients": 20, "unix_sock_group": "libvirt", "listen_tls": False}) == (text, [])


def test_a_later_duplicate_is_commented_out_and_values_compare_parsed():
    text, changed = daemon.set_keys('listen_addr = "a"\nlisten_addr = "b"\n', {"listen_addr": "c"})
    assert changed == ["listen_addr"] and daemon.current_settings(text) == {"listen_addr": "c"}
    assert '# listen_addr = "b"' in text
    assert daemon.set_keys('access_drivers = [ "polkit" ]\nlisten_tls = 1\n',
                           {"access_drivers": ["polkit"], "listen_tls": True})[1] == []
    quoted, _changed = daemon.set_keys("", {"x": 'a "b" \\c'})
    assert daemon.current_settings(quoted) == {"x": 'a "b" \\c'}


@pytest.mark.parametrize("settings, option", [
    ({"Bad-Key": 1}, "libvirtd"),
    ({"max_clients": 1.5}, "libvirtd.max_clients"),
    ({"host_uuid": "a\nb"}, "libvirtd.host_uuid"),
    ({"access_drivers": [1]}, "libvirtd.access_drivers"),
])
def test_bad_keys_and_values_name_the_option(settings, option):
    with pytest.raises(SpecError) as info:
        daemon.check_keys("libvirtd", settings)
    assert info.value.option == option


def test_plain_tcp_is_refused_unless_allowed_and_tls_needs_its_files(tmp_path):
    base = {"config_dir": str(tmp_path / "etc"), "pki_dir": str(tmp_path / "pki"), "tls": None, "qemu": {}}
    with pytest.raises(SpecError) as info:
        configure(dict(base, libvirtd={"listen_tcp": True}, allow_insecure_tcp=False), check=False)
    assert info.value.option == "libvirtd.listen_tcp" and "unencrypted" in str(info.value)
    with pytest.raises(SpecError) as info:
        configure(dict(base, libvirtd={"listen_tls": True}, allow_insecure_tcp=False), check=False)
    assert info.value.option == "libvirtd.listen_tls" and "tls.ca_cert" in str(info.value)
    assert not (tmp_path / "etc").exists(), "a refused run wrote a file"
    result = configure(dict(base, libvirtd={"listen_tcp": True}, allow_insecure_tcp=True), check=False)
    assert result["changed"] and result["restart_required"]


def _name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(subject, key, issuer, issuer_key, ca=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def pki():
    ca_key, key, other = (ec.generate_private_key(ec.SECP256R1()) for _number in range(3))
    return {
        "ca_cert": _cert("kvmfleet test CA", ca_key, "kvmfleet test CA", ca_key, ca=True),
        "server_cert": _cert("hv1", key, "kvmfleet test CA", ca_key),
        "server_key": _key_pem(key),
        "other_key": _key_pem(other),
        "self_signed": _cert("hv1", key, "hv1", key),
    }


def test_tls_files_are_checked_then_installed_with_libvirt_s_modes(tmp_path, pki):
    base = {"config_dir": str(tmp_path / "etc"), "pki_dir": str(tmp_path / "pki"), "qemu": {},
            "allow_insecure_tcp": False, "libvirtd": {"listen_tls": True}}
    tls = {"ca_cert": pki["ca_cert"], "server_cert": pki["server_cert"], "server_key": pki["server_key"]}
    for bad, option, words in (({"server_key": pki["other_key"]}, "tls.server_key", "does not belong"),
                               ({"server_cert": pki["self_signed"]}, "tls.server_cert", "not signed by tls.ca_cert"),
                               ({"ca_cert": "junk"}, "tls.ca_cert", "not a PEM certificate")):
        with pytest.raises(SpecError) as info:
            configure(dict(base, tls=dict(tls, **bad)), check=False)
        assert info.value.option == option and words in str(info.value)
        assert pki["server_key"] not in str(info.value)
    assert not (tmp_path / "pki").exists() and not (tmp_path / "etc").exists()
    predicted = configure(dict(base, tls=tls), check=True)
    assert not (tmp_path / "pki").exists()
    result = configure(dict(base, tls=tls), check=False)
    assert result["files"] == predicted["files"] and len(result["files"]) == 7  # libvirtd.conf, libvirt's 3, QEMU's 3
    key_path = tmp_path / "pki" / "libvirt" / "private" / "serverkey.pem"
    assert key_path.read_text() == pki["server_key"] and os.stat(key_path).st_mode & 0o777 == 0o600
    assert (tmp_path / "pki" / "qemu" / "server-key.pem").read_text() == pki["server_key"]  # a migration stream over TLS
    assert os.stat(tmp_path / "pki" / "CA" / "cacert.pem").st_mode & 0o777 == 0o644
    assert all(pki["server_key"] not in str(d) for d in result["diff"])
    again = configure(dict(base, tls=tls), check=False)
    assert not again["changed"] and not again["restart_required"]
    # listen_tls with the files already in place needs no tls option
    assert not configure(dict(base, tls=None), check=False)["changed"]


def test_the_lock_manager_goes_to_qemu_conf_and_its_lockspace_to_qemu_lockd_conf(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    base = {"config_dir": str(etc), "pki_dir": str(tmp_path / "pki"), "tls": None, "libvirtd": {}}
    params = dict(base, qemu={"lock_manager": "lockd"}, lockd={"file_lockspace_dir": "/srv/shared/lockspace"})
    predicted = configure(params, check=True)
    assert predicted["files"] == [str(etc / "qemu.conf"), str(etc / "qemu-lockd.conf")] and not list(etc.iterdir())
    configure(params, check=False)
    assert 'lock_manager = "lockd"' in (etc / "qemu.conf").read_text()
    assert 'file_lockspace_dir = "/srv/shared/lockspace"' in (etc / "qemu-lockd.conf").read_text()
    assert not configure(params, check=False)["changed"]
    with pytest.raises(SpecError) as info:
        configure(dict(base, lockd={"file lockspace": 1}), check=True)
    assert info.value.option.startswith("lockd")
