"""A test PKI made with the cryptography package: a CA, server certificates for given addresses, a client certificate,
as PEM text (what an operator keeps in a vault and hands to kvmfleet.libvirt.libvirtd_config)."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert(subject, key, issuer, issuer_key, ca=False, names=(), usages=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True).add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if names:
        alt = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def make_pki(servers):
    """{'ca_cert', 'client_cert', 'client_key', 'servers': {name: {'cert', 'key'}}} for ``servers``
    ({name: [addresses and DNS names its certificate holds]}). Every certificate is for servers and clients both
    (a hypervisor is a migration's client too)."""
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kvmfleet test CA")])
    both = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    pki = {"ca_cert": _cert("kvmfleet test CA", ca_key, ca_name, ca_key, ca=True), "servers": {}}
    client_key = _key()
    pki["client_cert"] = _cert("controller", client_key, ca_name, ca_key, usages=both)
    pki["client_key"] = _pem_key(client_key)
    for name, names in servers.items():
        key = _key()
        pki["servers"][name] = {"cert": _cert(name, key, ca_name, ca_key, names=names, usages=both),
                                "key": _pem_key(key)}
    return pki


def write_client_dir(directory, pki):
    """libvirt's pkipath layout for a client: cacert.pem, clientcert.pem, clientkey.pem (mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cacert.pem").write_text(pki["ca_cert"])
    (directory / "clientcert.pem").write_text(pki["client_cert"])
    key = directory / "clientkey.pem"
    key.write_text(pki["client_key"])
    key.chmod(0o600)
    return directory
