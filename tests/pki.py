"""A throwaway PKI for TLS tests (a CA, a server and a client certificate, made with
`cryptography`), and the nats-server `tls` block that requires both."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["make_pki", "nats_tls_block"]

_DAY = dt.timedelta(days=1)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(
    folder: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _issue(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: x509.Name | None = None,
    signer: ec.EllipticCurvePrivateKey | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + _DAY)
    )
    if usage is None:  # the CA
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
    return builder.sign(signer or key, hashes.SHA256())


def make_pki(folder: Path) -> Path:
    """ca.crt, server.crt/key and client.crt/key in `folder`: a CA and two certificates
    it signed (for 127.0.0.1 and localhost)."""
    ca_key = _key()
    ca = _issue("analytics test CA", ca_key)
    _write(folder, "ca", ca, ca_key)
    for name, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = _key()
        cert = _issue(name, key, issuer=ca.subject, signer=ca_key, usage=usage)
        _write(folder, name, cert, key)
    return folder


def nats_tls_block(folder: Path) -> str:
    """nats.conf text: TLS only, client certificates verified against the CA."""
    return (
        "tls {\n"
        f'  cert_file: "{folder / "server.crt"}"\n  key_file: "{folder / "server.key"}"\n'
        f'  ca_file: "{folder / "ca.crt"}"\n  verify: true\n  timeout: 2\n'
        "}\n"
    )
