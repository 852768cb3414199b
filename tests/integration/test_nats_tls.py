"""TLS to NATS: a real nats-server that requires TLS and client certificates (a CA and
certificates made here with `cryptography`); the components' one way to connect
(`jetstream.connect` / `provision`, from `NatsSettings`) gets in with the CA and its client
certificate, and is refused without the CA or without the certificate."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gameplay_analytics.local.services import NatsServer
from gameplay_analytics.runtime import jetstream

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


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, server.crt/key and client.crt/key: a CA and two certificates it signed."""
    folder = tmp_path_factory.mktemp("pki")
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


@pytest.fixture(scope="module")
def tls_nats(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server that speaks only TLS and verifies client certificates."""
    block = (
        "tls {\n"
        f'  cert_file: "{pki / "server.crt"}"\n  key_file: "{pki / "server.key"}"\n'
        f'  ca_file: "{pki / "ca.crt"}"\n  verify: true\n  timeout: 2\n'
        "}\n"
    )
    server = NatsServer(tmp_path_factory.mktemp("tls-nats"), auth_config=block)
    server.start()
    yield f"tls://127.0.0.1:{server.port}"
    server.stop()


def _settings(url: str, pki: Path, **overrides: object) -> jetstream.NatsSettings:
    fields: dict[str, object] = {
        "nats_url": url,
        "nats_tls_ca": pki / "ca.crt",
        "nats_tls_cert": pki / "client.crt",
        "nats_tls_key": pki / "client.key",
        **overrides,
    }
    return jetstream.NatsSettings.model_validate(fields)


async def test_a_component_connects_over_tls_with_the_ca_and_its_certificate(
    tls_nats: str, pki: Path
) -> None:
    settings = _settings(tls_nats, pki)
    await jetstream.provision(settings)  # the stream and buckets, as `up` makes them
    nc = await jetstream.connect(settings, name="tls-test")
    try:
        assert nc.is_connected and nc.connected_url is not None
        assert nc.connected_url.scheme == "tls"
        js = nc.jetstream()
        ack = await js.publish(settings.events_subject, b"{}", timeout=5)
        assert ack.stream == settings.stream
        await jetstream.verify(js, settings.names(), url=tls_nats)
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        # The system's trust store does not know our CA: we refuse the server.
        ({"nats_tls_ca": None}, ssl.SSLCertVerificationError),
        # The server wants a client certificate: it drops us during the handshake.
        ({"nats_tls_cert": None, "nats_tls_key": None}, (OSError, nats.errors.Error)),
    ],
    ids=["without-the-ca", "without-a-client-certificate"],
)
async def test_it_is_refused_without_the_ca_or_its_certificate(
    tls_nats: str, pki: Path, overrides: dict[str, object], refusal: type[BaseException]
) -> None:
    settings = _settings(tls_nats, pki, **overrides)
    with pytest.raises(refusal):
        await asyncio.wait_for(jetstream.provision(settings), timeout=20)


def test_a_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="nats_tls_cert and nats_tls_key"):
        jetstream.NatsSettings(nats_tls_cert=Path("client.crt"))
