# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: how a libvirt URI reaches its daemon, and why it did not.

libvirt's own errors for a remote URI that fails say little: a host that drops packets costs the kernel's TCP retries
(over two minutes) before "Connection timed out", a TLS server that wants a client certificate says "Unable to read
TLS confirmation", a certificate for another name "Failed to verify peer's certificate", and an ssh transport without
``no_tty`` may prompt on the controller's terminal. ``Transport`` reads a URI (pure), ``for_libvirt`` adds what makes
the ssh transport non-interactive, and ``diagnose`` turns a failure into its cause: the port that refused or did not
answer, the certificate file that is missing, the names the server's certificate holds.
"""

from __future__ import annotations

import os
import socket
import ssl
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DEFAULT_CONNECT_TIMEOUT = 30
PORTS = {"tcp": 16509, "tls": 16514, "ssh": 22, "libssh": 22, "libssh2": 22}
SSH_TRANSPORTS = ("ssh", "libssh", "libssh2")
# Where libvirt's client looks for its TLS files when the URI gives no pkipath (root; a user's are under ~/.pki/libvirt).
SYSTEM_PKI = {"ca": "/etc/pki/CA/cacert.pem", "cert": "/etc/pki/libvirt/clientcert.pem",
              "key": "/etc/pki/libvirt/private/clientkey.pem"}
PKIPATH_FILES = {"ca": "cacert.pem", "cert": "clientcert.pem", "key": "clientkey.pem"}


class Transport:
    """A URI's transport: ``kind`` (None for a local socket, else tcp, tls, ssh, libssh, libssh2, ext, unix), ``host``,
    ``port`` (the transport's default when the URI names none), ``params`` (the query, a dict)."""

    def __init__(self, uri):
        parts = urlsplit(uri or "")
        self.uri = uri
        self.parts = parts
        scheme = parts.scheme
        self.kind = scheme.split("+", 1)[1] if "+" in scheme else ("tls" if parts.hostname else None)
        self.host = parts.hostname
        try:
            self.port = parts.port or PORTS.get(self.kind)
        except ValueError:
            self.port = PORTS.get(self.kind)
        self.params = dict(parse_qsl(parts.query, keep_blank_values=True))

    @property
    def remote(self):
        """Whether the URI goes over the network (a connect can hang, keepalive matters)."""
        return self.host is not None and self.kind in PORTS

    def tls_files(self):
        """{'ca'|'cert'|'key': path} the libvirt client reads for this URI."""
        pkipath = self.params.get("pkipath")
        if pkipath:
            return {role: os.path.join(pkipath, name) for role, name in PKIPATH_FILES.items()}
        if os.geteuid() != 0:
            user = os.path.expanduser("~/.pki/libvirt")
            if os.path.isdir(user):
                return {"ca": os.path.join(user, "cacert.pem"), "cert": os.path.join(user, "clientcert.pem"),
                        "key": os.path.join(user, "clientkey.pem")}
        return dict(SYSTEM_PKI)


def for_libvirt(uri):
    """The URI handed to libvirt: an ssh transport gets ``no_tty=1`` (ssh's BatchMode: it fails instead of asking for a
    password or to accept an unknown host key on the controller's terminal) unless the URI sets no_tty itself."""
    transport = Transport(uri)
    if transport.kind not in SSH_TRANSPORTS or "no_tty" in transport.params:
        return uri
    query = urlencode(list(parse_qsl(transport.parts.query, keep_blank_values=True)) + [("no_tty", "1")])
    return urlunsplit(transport.parts._replace(query=query))


def probe(host, port, timeout):
    """'answers', 'refused', 'no answer' (packets dropped, host down: nothing within ``timeout``) or 'unknown host'."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "answers"
    except ConnectionRefusedError:
        return "refused"
    except socket.gaierror:
        return "unknown host"
    except (socket.timeout, OSError):
        return "no answer"


def port_words(transport, state, timeout):
    """A sentence for a probe's outcome."""
    where = "%s port %s" % (transport.host, transport.port)
    listener = "libvirtd (listen_%s)" % transport.kind
    if transport.kind in SSH_TRANSPORTS:
        listener = "sshd"
        if transport.parts.port is None:
            where += " (ssh's default; an ssh config may name another)"
    return {
        "refused": "%s refused the connection: nothing listens there (is %s running?)" % (where, listener),
        "no answer": "%s did not answer (a probe of %s s too): the host is down or a firewall drops the packets"
                     % (where, timeout),
        "unknown host": "the host name %s does not resolve" % transport.host,
    }.get(state)


def tls_diagnosis(transport, timeout):
    """Why a TLS connection failed, when it can be told from here: a client file that is missing, or the verification
    error Python's TLS reports for the server's certificate against the same CA (it names the hostname it did not
    match). None when nothing more is found."""
    files = transport.tls_files()
    missing = ["%s (%s)" % (path, {"ca": "the CA certificate", "cert": "the client certificate",
                                   "key": "the client key"}[role])
               for role, path in sorted(files.items()) if not os.path.exists(path)]
    if missing:
        return "missing on the controller: %s; libvirt's TLS transport needs all three (the URI's pkipath=DIR names " \
               "another directory of cacert.pem, clientcert.pem, clientkey.pem)" % ", ".join(missing)
    verify = transport.params.get("no_verify") not in ("1",)
    context = ssl.create_default_context(cafile=files["ca"])
    context.check_hostname = verify
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    try:
        context.load_cert_chain(files["cert"], files["key"])
    except (ssl.SSLError, OSError) as exc:
        return "the client certificate %s or its key %s cannot be used: %s" % (files["cert"], files["key"], exc)
    try:
        with socket.create_connection((transport.host, transport.port), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=transport.host):
                return None
    except ssl.SSLCertVerificationError as exc:
        return "the server's certificate does not verify against %s: %s" % (files["ca"], exc.verify_message)
    except (ssl.SSLError, OSError):
        return None


def diagnose(uri, error, timeout):
    """A sentence on why opening ``uri`` failed with libvirt's ``error`` (text), or None when nothing is added; each
    probe it makes waits at most ``timeout`` seconds."""
    transport = Transport(uri)
    if not transport.remote:
        return None
    state = probe(transport.host, transport.port, timeout)
    if state != "answers":
        return port_words(transport, state, timeout)
    text = str(error)
    if transport.kind == "tls" and ("TLS" in text or "certificate" in text):
        return tls_diagnosis(transport, timeout)
    if transport.kind in SSH_TRANSPORTS:
        if "Host key verification failed" in text:
            return "the controller does not know %s's ssh host key: add it to known_hosts (ssh-keyscan), or set " \
                   "the URI's no_verify=1 only where you trust the network" % transport.host
        if "Permission denied" in text:
            return "ssh refused the login and never prompts here: give a key (the URI's keyfile=PATH, or an ssh " \
                   "agent) that %s accepts" % transport.host
    return None
