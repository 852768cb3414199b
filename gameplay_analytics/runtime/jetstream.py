"""Connecting to NATS, and the pipeline's stream and config bucket: who creates, who verifies.

One owner each: in a cluster the operator creates and updates the stream and the bucket
(`ensure_stream`, `ensure_config_bucket`), on a laptop `up` does (`provision`). Gateways and
aggregators only `verify` that they exist and refuse to start otherwise, so a pod start never
resets the stream's limits. An existing stream is updated to the wanted limits, never recreated
(that would lose data). `NatsSettings` is the connection and naming part every process's
settings model shares; `connect` is the one way a process opens its connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any, Self

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gameplay_analytics.contract import natsnames, natsperms
from gameplay_analytics.contract.messages import SESSIONS_BUCKET
from gameplay_analytics.contract.natsnames import ENV_PREFIX, PipelineNames

__all__ = [
    "MissingInfrastructure",
    "NatsSettings",
    "StreamSettings",
    "connect",
    "connect_once",
    "ensure_config_bucket",
    "ensure_sessions_bucket",
    "ensure_stream",
    "one_line_error",
    "provision",
    "servers",
    "verify",
]

log = logging.getLogger(__name__)

_LOCAL = PipelineNames()
_PROVISION_TIMEOUT_S = 10.0
_ONCE_RETRY_S = 0.2  # connect_once: the pause before its second try of a server
_VERIFY_TIMEOUT_S = 5.0
_SESSIONS_KEEP_S = 8 * 24 * 3600.0


class StreamSettings(BaseModel):
    """Limits of the pipeline's stream (the AnalyticsPipeline's `nats` section)."""

    replicas: int = Field(
        default=natsnames.DEFAULT_REPLICAS, ge=1, le=5, description="R3 in a cluster, R1 locally"
    )
    duplicate_window_s: float = Field(
        default=float(natsnames.DEFAULT_DUPLICATE_WINDOW_S), gt=0, description="dedup window"
    )
    max_age_s: float = Field(
        default=float(natsnames.DEFAULT_MAX_AGE_S), gt=0, description="how long messages are kept"
    )
    max_bytes: int = Field(default=natsnames.DEFAULT_MAX_BYTES, description="-1: unlimited")


class NatsSettings(BaseSettings):
    """Where NATS is, how to log in, and which stream, subjects and bucket are this pipeline's.

    Shared by the gateway's and the aggregator's settings models (one field each, one env var
    each). Credentials: a `.creds` file (JWT + nkey, a mounted Secret) or user and password;
    none for an unauthenticated server.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server URL(s), comma-separated for a cluster",
    )
    nats_creds: Path | None = Field(
        default=None,
        description="a NATS .creds file (user JWT and nkey seed), e.g. a mounted Secret",
    )
    nats_user: str | None = Field(default=None, description="NATS user name (with `nats_password`)")
    nats_password: SecretStr | None = Field(
        default=None, description="NATS password (with `nats_user`)"
    )
    nats_tls_ca: Path | None = Field(
        default=None,
        description="CA bundle (PEM) that signed the NATS servers' certificates; set, the "
        "connection uses TLS and trusts only this CA (tls:// URLs without it: the system's)",
    )
    nats_tls_cert: Path | None = Field(
        default=None, description="client certificate (PEM) for NATS servers that verify clients"
    )
    nats_tls_key: Path | None = Field(
        default=None, description="private key (PEM) of `nats_tls_cert`"
    )
    stream: str = Field(default=_LOCAL.stream, description="the pipeline's JetStream stream")
    events_subject: str = Field(
        default=_LOCAL.events_subject, description="subject of event batches"
    )
    dlq_subject: str = Field(default=_LOCAL.dlq_subject, description="subject of dead letters")
    config_bucket: str = Field(
        default=_LOCAL.config_bucket, description="KV bucket of the hot-reloaded rules and schemas"
    )
    sessions_bucket: str = Field(
        default=_LOCAL.sessions_bucket,
        description="KV bucket of the gateways' authenticated sessions (the nightly check)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.nats_user is None) != (self.nats_password is None):
            raise ValueError("set both nats_user and nats_password, or neither")
        if self.nats_creds is not None and self.nats_user is not None:
            raise ValueError("set nats_creds or nats_user/nats_password, not both")
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            raise ValueError("set both nats_tls_cert and nats_tls_key, or neither")
        self.names()  # refuses names NATS would refuse, with the field named
        return self

    def names(self) -> PipelineNames:
        return PipelineNames(
            stream=self.stream,
            events_subject=self.events_subject,
            dlq_subject=self.dlq_subject,
            config_bucket=self.config_bucket,
            sessions_bucket=self.sessions_bucket,
        )


class MissingInfrastructure(RuntimeError):
    """The pipeline's stream or bucket is not there: its owner has not created it (yet)."""


def servers(nats_url: str) -> list[str]:
    """The server URLs of a NATS URL setting (comma-separated for a cluster), as nats.py
    wants them: it refuses the comma-separated string itself ("invalid connect url")."""
    return [url.strip() for url in nats_url.split(",") if url.strip()]


async def connect(settings: NatsSettings, *, name: str, connect_timeout_s: float = 5.0) -> Client:
    """A NATS connection with the settings' credentials that keeps reconnecting forever (the
    process reports not-ready meanwhile) and bounds every connect attempt."""
    options: dict[str, Any] = {
        "name": name,
        "connect_timeout": connect_timeout_s,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "allow_reconnect": True,
    }
    options.update(_connect_options(settings))
    return await nats.connect(servers(settings.nats_url), **options)


async def connect_once(
    where: NatsSettings | str, *, name: str | None = None, timeout_s: float = 5.0
) -> Client:
    """A one-shot tool's connection (replay, privacy, quality, provisioning) to `where`: a
    settings model (its URL and login) or a NATS URL (with its login, if any). Every server of
    the URL is tried twice at the most, each try bounded by `timeout_s`, and there is no
    reconnect once connected. A server that cannot be reached or refuses the login raises
    `ConnectionError` (an OSError, what the commands report as an unreachable store).

    Not nats.py's `max_reconnect_attempts=0`, nor `connect`'s reconnect-forever: with either, a
    server refused at the first connect is retried forever, so a tool (a CronJob) against a
    stopped NATS would never return.

    A URL's connection takes its TLS options (CA, client certificate) from the environment's
    `GAMEPLAY_ANALYTICS_NATS_TLS_*`, as a component's settings would: a tool run as a Job with
    the pipeline's NATS CA mounted connects as the pipeline's processes do."""
    url, options = (
        (where, _tls(NatsSettings(nats_url=where)))
        if isinstance(where, str)
        else (where.nats_url, _connect_options(where))
    )
    options.setdefault("inbox_prefix", natsperms.inbox_prefix(natsperms.login_user(url)))
    try:
        return await nats.connect(
            servers(url), name=name, connect_timeout=timeout_s, allow_reconnect=False,
            max_reconnect_attempts=1, reconnect_time_wait=_ONCE_RETRY_S,
            error_cb=one_line_error,  # not nats.py's traceback per refused try
            **options,
        )  # fmt: skip
    except nats.errors.Error as err:  # NoServersError, or the login refused
        raise ConnectionError(f"NATS: {type(err).__name__}") from None


async def one_line_error(err: Exception) -> None:
    """nats.py's `error_cb` for short-lived connections: one debug line, not a traceback per
    refused try."""
    log.debug("NATS: %s", type(err).__name__)


async def verify(js: JetStreamContext, names: PipelineNames, *, url: str) -> None:
    """Check that the stream (with both subjects) and the config bucket exist; raise
    MissingInfrastructure saying who should have created them otherwise."""
    owner = "the operator creates it from the AnalyticsPipeline (`gameplay-analytics up` locally)"
    try:
        async with asyncio.timeout(_VERIFY_TIMEOUT_S):
            info = await js.stream_info(names.stream)
    except NotFoundError:
        raise MissingInfrastructure(
            f"stream {names.stream} does not exist on {url}: {owner}; refusing to start"
        ) from None
    missing = sorted(set(names.subjects()) - set(info.config.subjects or []))
    if missing:
        raise MissingInfrastructure(
            f"stream {names.stream} on {url} does not carry subjects {missing}: {owner}"
        )
    try:
        await js.key_value(names.config_bucket)
    except BucketNotFoundError:
        raise MissingInfrastructure(
            f"KV bucket {names.config_bucket} does not exist on {url}: {owner}; refusing to start"
        ) from None


async def ensure_stream(
    js: JetStreamContext,
    settings: StreamSettings,
    *,
    names: PipelineNames = _LOCAL,
    description: str | None = None,
) -> None:
    """Create or update the pipeline's stream: file storage, both subjects, dedup window.
    `description` is the operator's owner mark (see operator.natsclaims)."""
    config = StreamConfig(
        name=names.stream,
        description=description,
        subjects=names.subjects(),
        storage=StorageType.FILE,
        num_replicas=settings.replicas,
        duplicate_window=settings.duplicate_window_s,
        max_age=settings.max_age_s,
        max_bytes=settings.max_bytes,
        discard=DiscardPolicy.OLD,
    )
    try:
        await js.stream_info(names.stream)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", names.stream)
    else:
        await js.update_stream(config)


async def ensure_config_bucket(
    js: JetStreamContext,
    *,
    replicas: int = 1,
    bucket: str = _LOCAL.config_bucket,
    description: str | None = None,
) -> KeyValue:
    """The KV bucket for hot-reloaded rules, breaker and accepted schema versions."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=bucket, description=description, history=5, replicas=replicas)
        )


async def ensure_sessions_bucket(
    js: JetStreamContext, *, bucket: str = SESSIONS_BUCKET, replicas: int = 1
) -> KeyValue:
    """The gateways' ledger of authenticated sessions (`runtime/gateway/ledger.py`), one key
    a session, kept 8 days: a week of nightly checks and a day's grace."""
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=bucket, history=1, ttl=_SESSIONS_KEEP_S, replicas=replicas)
        )


async def provision(settings: NatsSettings, *, limits: StreamSettings | None = None) -> None:
    """What the operator does in a cluster, for the local stack and tests: create or update
    the stream and the bucket named by `settings`."""
    limits = limits or StreamSettings()
    nc = await connect_once(settings, timeout_s=_PROVISION_TIMEOUT_S)
    try:
        async with asyncio.timeout(_PROVISION_TIMEOUT_S):
            js = nc.jetstream()
            names = settings.names()
            await ensure_stream(js, limits, names=names)
            await ensure_config_bucket(js, replicas=limits.replicas, bucket=names.config_bucket)
            await ensure_sessions_bucket(js, bucket=names.sessions_bucket, replicas=limits.replicas)
    finally:
        await nc.close()


def _connect_options(settings: NatsSettings) -> dict[str, Any]:
    """Login and TLS options of every connection a process opens."""
    return {**_credentials(settings), **_tls(settings)}


def _credentials(settings: NatsSettings) -> dict[str, Any]:
    """Login options, with the user's own inbox prefix: a least-privilege user may subscribe
    to its own inboxes only (`contract.natsperms`)."""
    if settings.nats_creds is not None:
        return {"user_credentials": str(settings.nats_creds)}
    if settings.nats_user is not None and settings.nats_password is not None:
        return {
            "user": settings.nats_user,
            "password": settings.nats_password.get_secret_value(),
            "inbox_prefix": natsperms.inbox_prefix(settings.nats_user),
        }
    return {"inbox_prefix": natsperms.inbox_prefix(natsperms.login_user(settings.nats_url))}


def _tls(settings: NatsSettings) -> dict[str, Any]:
    """A TLS context trusting the settings' CA (and presenting the client certificate), when
    any is set; tls:// URLs without one get nats.py's default (the system's trust store)."""
    if settings.nats_tls_ca is None and settings.nats_tls_cert is None:
        return {}
    context = ssl.create_default_context(
        cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None
    )
    if settings.nats_tls_cert is not None and settings.nats_tls_key is not None:
        context.load_cert_chain(str(settings.nats_tls_cert), str(settings.nats_tls_key))
    return {"tls": context}
