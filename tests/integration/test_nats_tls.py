"""TLS to NATS: a real nats-server that requires TLS and client certificates (a CA and
certificates made here with `cryptography`); the components' one way to connect
(`jetstream.connect` / `provision`, from `NatsSettings`) gets in with the CA and its client
certificate, and is refused without the CA or without the certificate; so does the
operator's own connection with `spec.nats.tls`."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest

from gameplay_analytics.local.services import NatsServer
from gameplay_analytics.operator import natsconfig, reconcile
from gameplay_analytics.operator.models import AnalyticsPipelineSpec
from gameplay_analytics.operator.naming import Pipeline, nats_names
from gameplay_analytics.runtime import jetstream
from tests.pki import make_pki, nats_tls_block


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_nats(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server that speaks only TLS and verifies client certificates."""
    server = NatsServer(tmp_path_factory.mktemp("tls-nats"), auth_config=nats_tls_block(pki))
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


async def test_a_one_shot_tool_given_a_url_takes_tls_from_the_environment(
    tls_nats: str, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """replay, privacy and the scan connect from a URL; in a Job with the CA mounted and
    `GAMEPLAY_ANALYTICS_NATS_TLS_*` set they get in, and without them they are refused."""
    with pytest.raises(OSError):  # the server's certificate is not trusted (an SSLError)
        await jetstream.connect_once(tls_nats, name="tool", timeout_s=5)
    for var, file in (("CA", "ca.crt"), ("CERT", "client.crt"), ("KEY", "client.key")):
        monkeypatch.setenv(f"GAMEPLAY_ANALYTICS_NATS_TLS_{var}", str(pki / file))
    nc = await jetstream.connect_once(tls_nats, name="tool", timeout_s=5)
    try:
        assert nc.is_connected and nc.connected_url is not None
        assert nc.connected_url.scheme == "tls"
    finally:
        await nc.close()


def test_a_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="nats_tls_cert and nats_tls_key"):
        jetstream.NatsSettings(nats_tls_cert=Path("client.crt"))


async def test_the_operator_provisions_over_tls_with_the_secrets_pem(
    tls_nats: str, pki: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """spec.nats.tls for the operator's own connection: the CA and client certificate come
    from the Secret's keys (read through the API; here the Secret's values directly)."""
    spec = {
        "nats": {
            "url": tls_nats,
            "tls": {"secretName": "nats-tls", "certKey": "tls.crt", "keyKey": "tls.key"},
        }
    }
    pipeline = Pipeline("tls", "games", AnalyticsPipelineSpec.model_validate(spec))
    pem = {
        "ca.crt": (pki / "ca.crt").read_text(),
        "tls.crt": (pki / "client.crt").read_text(),
        "tls.key": (pki / "client.key").read_text(),
    }

    async def secret_values(namespace: str, name: str, *keys: str) -> dict[str, str]:
        assert (namespace, name) == ("games", "nats-tls")
        return {key: pem[key] for key in keys}

    monkeypatch.setattr(reconcile, "_secret_values", secret_values)
    login = await reconcile._nats_login(pipeline)
    assert login is not None and login.tls is not None
    names = nats_names(pipeline)
    await natsconfig.ensure_pipeline(pipeline.spec.nats, names, owner="games/tls", login=login)
    settings = _settings(tls_nats, pki, stream=names.stream, config_bucket=names.config_bucket)
    nc = await jetstream.connect(settings, name="tls-check")
    try:
        info = await nc.jetstream().stream_info(names.stream)
        assert info.config.description == "games/tls"
    finally:
        await nc.close()
    with pytest.raises(natsconfig.NatsError, match="cannot connect"):
        await natsconfig.ensure_pipeline(pipeline.spec.nats, names, owner="games/tls")
