# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Opening a remote URI: bounded in time, never a prompt, and a failure says why (against real sockets, real TLS)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.kvmfleet.libvirt.plugins.module_utils import _transport
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._libvirt import LibvirtConnectionError, open_connection


def test_a_uri_s_transport_host_and_port():
    tls = _transport.Transport("qemu+tls://hv1.example/system?pkipath=/pki")
    assert (tls.kind, tls.host, tls.port, tls.remote) == ("tls", "hv1.example", 16514, True)
    assert tls.tls_files() == {"ca": "/pki/cacert.pem", "cert": "/pki/clientcert.pem", "key": "/pki/clientkey.pem"}
    assert _transport.Transport("qemu://hv1/system").kind == "tls", "libvirt's default remote transport"
    assert _transport.Transport("qemu+ssh://root@hv1:2222/system").port == 2222
    assert not _transport.Transport("qemu:///system").remote
    assert not _transport.Transport("test:///default").remote
    assert not _transport.Transport("qemu+unix:///system?socket=/run/x").remote


def test_an_ssh_uri_never_prompts():
    assert _transport.for_libvirt("qemu+ssh://root@hv1/system?keyfile=/k") == \
        "qemu+ssh://root@hv1/system?keyfile=%2Fk&no_tty=1"
    assert _transport.for_libvirt("qemu+ssh://hv1/system?no_tty=0") == "qemu+ssh://hv1/system?no_tty=0", \
        "the user's own no_tty stays"
    assert _transport.for_libvirt("qemu+tcp://hv1/system") == "qemu+tcp://hv1/system"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_port_is_named():
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(LibvirtConnectionError) as refused:
        open_connection("qemu+tcp://127.0.0.1:%d/system" % port, timeout=10)
    assert time.monotonic() - started < 5
    assert "127.0.0.1 port %d refused the connection" % port in str(refused.value)
    assert refused.value.code == "unreachable" and refused.value.fields()["reason"]


def test_a_daemon_that_never_answers_costs_connect_timeout_not_more():
    """A listener that accepts and then says nothing (a stalled handshake): the connect is given up after
    connect_timeout, with the reason."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(LibvirtConnectionError) as silent:
            open_connection("qemu+tcp://127.0.0.1:%d/system" % port, timeout=4)
        took = time.monotonic() - started
    assert took < 5, took
    assert "no connection within connect_timeout=4s" in str(silent.value)
    assert "the host answered but the connection did not come up" in str(silent.value)


def test_missing_client_files_are_named(tmp_path):
    (tmp_path / "cacert.pem").write_text("x")
    why = _transport.tls_diagnosis(_transport.Transport("qemu+tls://127.0.0.1/system?pkipath=%s" % tmp_path), 2)
    assert "%s/clientcert.pem (the client certificate)" % tmp_path in why
    assert "%s/clientkey.pem (the client key)" % tmp_path in why
    assert "cacert.pem (" not in why


def _pem_cert(subject, issuer_key, key, issuer=None, ca=False, ips=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ips:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pki(directory, server_ips):
    """A CA, a server certificate for ``server_ips``, a client pair; returns the server's (cert, key) paths."""
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _key in range(3))
    ca = _pem_cert("test CA", ca_key, ca_key, ca=True)
    pem = serialization.Encoding.PEM
    raw = {"format": serialization.PrivateFormat.PKCS8, "encryption_algorithm": serialization.NoEncryption()}
    (directory / "cacert.pem").write_bytes(ca.public_bytes(pem))
    (directory / "clientcert.pem").write_bytes(_pem_cert("client", ca_key, client_key, ca.subject).public_bytes(pem))
    (directory / "clientkey.pem").write_bytes(client_key.private_bytes(pem, **raw))
    (directory / "server.pem").write_bytes(_pem_cert("hv9", ca_key, server_key, ca.subject, ips=server_ips)
                                           .public_bytes(pem))
    (directory / "server-key.pem").write_bytes(server_key.private_bytes(pem, **raw))
    return str(directory / "server.pem"), str(directory / "server-key.pem")


def test_a_certificate_for_another_name_is_said_with_the_name(tmp_path):
    """A real TLS server whose certificate is for 10.0.0.9, reached as 127.0.0.1: the reason names the address."""
    cert, key = _write_pki(tmp_path, ["10.0.0.9"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]

        def serve():
            try:
                conn = server.accept()[0]
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        why = _transport.tls_diagnosis(
            _transport.Transport("qemu+tls://127.0.0.1:%d/system?pkipath=%s" % (port, tmp_path)), 3)
        thread.join(3)
    assert "the server's certificate does not verify" in why
    assert "IP address mismatch, certificate is not valid for '127.0.0.1'" in why, why
