# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: libvirtd's and QEMU's configuration files (libvirtd.conf, qemu.conf, qemu-lockd.conf) and the TLS files
libvirt reads, as pure functions over text.

libvirt's format is ``key = value`` lines, where a value is an integer, a "string" or a list of
strings ``[ "a", "b" ]``, and ``#`` starts a comment. ``set_keys`` changes only the keys it is given:
a key set on an active line is rewritten in place (later duplicates, which libvirt would read last,
are commented out), a key not set yet is appended; comments and every other line stay as they are.
Values are compared parsed, so ``listen_tls = 0`` is the same as ``false``.
"""

from __future__ import annotations

import grp
import os
import re

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._files import write_files
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._plan import FileWrite
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import SpecError, UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._runner import Runner

HEADER = "# Managed by Ansible (kvmfleet.libvirt.hypervisor): the keys it sets are rewritten on every run.\n"
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
SECRET_KEYS = ("password", "passwd", "secret")
QEMU_KEY = 0o640  # a key QEMU itself reads: root's, readable by the group QEMU runs as (0600 where QEMU runs as root)
# Where libvirt reads its TLS files (libvirtd.conf defaults), and where QEMU reads its own for a migration stream over
# TLS (qemu.conf default_tls_x509_cert_dir, /etc/pki/qemu: other names, one directory): (option, path, mode).
TLS_FILES = (
    ("ca_cert", "CA/cacert.pem", 0o644),
    ("server_cert", "libvirt/servercert.pem", 0o644),
    ("server_key", "libvirt/private/serverkey.pem", 0o600),
    ("client_cert", "libvirt/clientcert.pem", 0o644),
    ("client_key", "libvirt/private/clientkey.pem", 0o600),
    ("ca_cert", "qemu/ca-cert.pem", 0o644),
    ("server_cert", "qemu/server-cert.pem", 0o644),
    ("server_key", "qemu/server-key.pem", QEMU_KEY),
    ("client_cert", "qemu/client-cert.pem", 0o644),
    ("client_key", "qemu/client-key.pem", QEMU_KEY),
)
# The group QEMU runs as where qemu.conf does not say (group = ...): the distribution's default.
QEMU_GROUPS = ("libvirt-qemu", "qemu")


def render(option, value):
    """A value as libvirt's format writes it; SpecError naming the option for anything else."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "\n" in value:
            raise SpecError(option, value, "a string value must be one line")
        return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(value, (list, tuple)):
        if not all(isinstance(item, str) for item in value):
            raise SpecError(option, value, "a list value holds strings only")
        return "[ %s ]" % ", ".join(render(option, item) for item in value)
    raise SpecError(option, value, "expected an integer, a boolean, a string or a list of strings")


def parse_value(text):
    """The value of one line, as Python data (None if it is not libvirt's format)."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    string = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', text)
    if string:
        return re.sub(r"\\(.)", r"\1", string.group(1))
    if text.startswith("[") and text.endswith("]"):
        return [re.sub(r"\\(.)", r"\1", m) for m in re.findall(r'"((?:[^"\\]|\\.)*)"', text)]
    return None


def _strip_comment(value):
    """The value part of a line without a trailing comment (a # outside quotes)."""
    quoted = False
    for index, char in enumerate(value):
        if char == '"' and (index == 0 or value[index - 1] != "\\"):
            quoted = not quoted
        elif char == "#" and not quoted:
            return value[:index].rstrip()
    return value


def _normal(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def check_keys(option, settings):
    for key in settings:
        if not isinstance(key, str) or not _KEY.match(key):
            raise SpecError(option, key, "keys are libvirt setting names (lower case letters, digits and _)")
        render("%s.%s" % (option, key), settings[key])


def current_settings(text):
    """{key: value} of the active lines (the last one wins, as libvirt reads them)."""
    result = {}
    for line in (text or "").splitlines():
        match = _LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            result[match.group(1)] = parse_value(_strip_comment(match.group(2)))
    return result


def set_keys(text, settings):
    """(new text, [changed keys]) with ``settings`` applied to ``text`` (a file's content, or None)."""
    lines = (text or "").splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    current = current_settings(text)
    changed = [key for key in sorted(settings) if key not in current or current[key] != _normal(settings[key])]
    if not changed:
        return text or "", []
    done, out = set(), []
    for line in lines:
        match = _LINE.match(line)
        key = match.group(1) if match and not line.lstrip().startswith("#") else None
        if key in changed:
            if key in done:  # a later duplicate: libvirt would read it last
                out.append("# " + line)
                continue
            out.append("%s = %s\n" % (key, render(key, settings[key])))
            done.add(key)
        else:
            out.append(line)
    missing = [key for key in changed if key not in done]
    if missing:
        if out and out[-1].strip():
            out.append("\n")
        out.extend("%s = %s\n" % (key, render(key, settings[key])) for key in missing)
    if not out or out[0] != HEADER:
        out.insert(0, HEADER)
    return "".join(out), changed


def masked(text, keys=SECRET_KEYS):
    """The text with the values of secret-looking keys masked (for --diff)."""
    def mask(line):
        match = _LINE.match(line)
        if match and any(word in match.group(1) for word in keys):
            return "%s = ********\n" % match.group(1)
        return line
    return "".join(mask(line) for line in (text or "").splitlines(True))


# ---- refusals before anything changes ----------------------------------------------------------------

def check_transport(settings, allow_insecure_tcp, tls_present):
    """Plain TCP only when the user says so; TLS only with its certificate files."""
    if settings.get("listen_tcp") and not allow_insecure_tcp:
        raise SpecError("libvirtd.listen_tcp", settings["listen_tcp"],
                        "plain TCP carries guest memory and credentials unencrypted; use TLS (give tls and "
                        "listen_tls) or set allow_insecure_tcp: true")
    if settings.get("listen_tls") and not tls_present:
        raise SpecError("libvirtd.listen_tls", settings["listen_tls"],
                        "libvirtd needs a CA certificate, a server certificate and its key to listen on TLS: "
                        "give tls.ca_cert, tls.server_cert and tls.server_key (PEM)")


def check_tls(tls):
    """The PEM files parse, each certificate matches its key and is signed by the CA; UserError naming
    the option otherwise. Uses the cryptography library (ansible-core's own dependency)."""
    try:
        from cryptography import x509  # pylint: disable=import-outside-toplevel
        from cryptography.exceptions import InvalidSignature  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise UserError("checking the TLS files needs the Python library cryptography on the hypervisor",
                        code="missing_library") from None
    for required in ("ca_cert", "server_cert", "server_key"):
        if not tls.get(required):
            raise SpecError("tls." + required, None, "required with tls: the PEM text")
    if bool(tls.get("client_cert")) != bool(tls.get("client_key")):
        raise SpecError("tls.client_key" if tls.get("client_cert") else "tls.client_cert", None,
                        "give client_cert and client_key together")

    def cert(option):
        try:
            return x509.load_pem_x509_certificate(tls[option].encode("utf-8"))
        except ValueError as exc:
            raise SpecError("tls." + option, "(PEM)", "not a PEM certificate (%s)" % exc) from None

    def key(option):
        try:
            return serialization.load_pem_private_key(tls[option].encode("utf-8"), password=None)
        except (ValueError, TypeError) as exc:
            raise SpecError("tls." + option, "(hidden)", "not an unencrypted PEM private key (%s)" % exc) from None

    ca = cert("ca_cert")
    pairs = [("server_cert", "server_key")] + ([("client_cert", "client_key")] if tls.get("client_cert") else [])
    for cert_option, key_option in pairs:
        certificate, private = cert(cert_option), key(key_option)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if certificate.public_key().public_bytes(serialization.Encoding.DER, spki) != \
                private.public_key().public_bytes(serialization.Encoding.DER, spki):
            raise SpecError("tls." + key_option, "(hidden)", "this key does not belong to tls.%s" % cert_option)
        try:
            certificate.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise SpecError("tls." + cert_option, certificate.subject.rfc4514_string(),
                            "not signed by tls.ca_cert (%s): %s"
                            % (ca.subject.rfc4514_string(), exc.__class__.__name__)) from None


# ---- the module's run ---------------------------------------------------------------------------------

def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _mode(path):
    """(mode, gid) of a file, None when it does not exist."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_mode & 0o7777, info.st_gid


def qemu_gid(qemu, read, config_dir):
    """The gid of the group QEMU runs as: the ``qemu`` option's group, else qemu.conf's, else the distribution's
    default (QEMU_GROUPS); None when there is none (QEMU runs as root: its keys stay 0600 root)."""
    name = (qemu or {}).get("group") or current_settings(read(os.path.join(config_dir, "qemu.conf")) or "").get("group")
    for candidate in ([name] if name else list(QEMU_GROUPS)):
        candidate = str(candidate)
        if candidate.startswith("+") and candidate[1:].isdigit():
            return int(candidate[1:]) or None
        try:
            return grp.getgrnam(candidate).gr_gid
        except KeyError:
            continue
    return None


def plan_configuration(params, read=_read, mode_of=_mode, exists=os.path.exists):
    """The file plan (_plan.FileWrite each) for ``libvirtd``, ``qemu`` and ``lockd`` settings and the ``tls``
    files, over what the files hold (``read(path)``: text or None; ``mode_of(path)``). Every refusal comes here,
    before the first write."""
    libvirtd, qemu, tls = params.get("libvirtd") or {}, params.get("qemu") or {}, params.get("tls")
    lockd = params.get("lockd") or {}
    check_keys("libvirtd", libvirtd)
    check_keys("qemu", qemu)
    check_keys("lockd", lockd)
    pki = params.get("pki_dir") or "/etc/pki"
    tls_present = bool(tls) or all(exists(os.path.join(pki, rel)) for _name, rel, _mode in TLS_FILES[:3])
    check_transport(libvirtd, params.get("allow_insecure_tcp"), tls_present)
    if tls:
        check_tls(tls)
    writes = []
    daemon_conf = params.get("daemon_conf") or "libvirtd.conf"
    if "/" in daemon_conf or not daemon_conf.endswith(".conf"):
        raise SpecError("daemon_conf", daemon_conf, "a file name in config_dir that ends in .conf (libvirtd.conf, "
                                                    "virtproxyd.conf, virtqemud.conf)")
    for name, settings in ((daemon_conf, libvirtd), ("qemu.conf", qemu), ("qemu-lockd.conf", lockd)):
        if not settings:
            continue
        path = os.path.join(params.get("config_dir") or "/etc/libvirt", name)
        before = read(path)
        after, _keys = set_keys(before, settings)
        if after != (before or ""):
            writes.append(FileWrite(path, before, after, 0o644, mask=masked))
    gid = qemu_gid(qemu, read, params.get("config_dir") or "/etc/libvirt") if tls else None
    for name, rel, mode in TLS_FILES:
        if tls and tls.get(name):
            path = os.path.join(pki, rel)
            text = tls[name] if tls[name].endswith("\n") else tls[name] + "\n"
            group = 0
            if mode == QEMU_KEY:
                mode, group = (0o640, gid) if gid else (0o600, 0)
            before = read(path)
            now = None if before is None else mode_of(path)
            if before != text or now != (mode, group):
                writes.append(FileWrite(path, before, text, mode, secret=mode != 0o644, gid=group))
    return writes


class DaemonConfigRunner(Runner):
    """The libvirtd_config module's run over the host's files: plan, write (unless check mode, taken back if a
    write fails); the result dict. No libvirt connection."""

    def run(self):
        writes = plan_configuration(self.params)
        if not self.check:
            with self.undo.guard("writing libvirt's configuration"):
                write_files(writes, self.undo)
        return self.finish({
            "changed": bool(writes),
            "files": [w.path for w in writes],
            "restart_required": bool(writes),
            "diff": [w.diff() for w in writes],
        })
