"""The operator on NATS: each pipeline's stream and config bucket (it is their one owner in a
cluster), the values in the bucket, and their removal with `deletionPolicy: Delete`.

Gateways, aggregators and, through them, SDKs watch the bucket and hot-reload what lands
here. A value is written only when it differs, so a resync does not wake every watcher.
Stream and bucket settings come from `runtime.jetstream`, the one definition of both; the
owner marks and the collision decision from `natsclaims`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError, BucketNotFoundError, KeyNotFoundError, NotFoundError

from gameplay_analytics.contract import natsperms
from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.operator import natsclaims
from gameplay_analytics.operator.models import NatsSpec
from gameplay_analytics.runtime import jetstream

__all__ = [
    "NamesInUse",
    "NatsError",
    "NatsLogin",
    "delete_pipeline",
    "ensure_pipeline",
    "publish_config",
    "read_config",
    "tls_context",
]

CONNECT_TIMEOUT_S = 5.0
CALL_TIMEOUT_S = 10.0
_SUBJECTS_OVERLAP = 10065  # JetStream: "subjects overlap with an existing stream"


@dataclasses.dataclass(frozen=True, slots=True)
class NatsLogin:
    """How the operator logs in for one pipeline: a `.creds` file, or its own user."""

    creds_file: str | None = None
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    tls: ssl.SSLContext | None = dataclasses.field(default=None, repr=False)  # spec.nats.tls

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"tls": self.tls} if self.tls is not None else {}
        if self.creds_file:
            return {**options, "user_credentials": self.creds_file}
        if self.user is not None:
            return {**options, "user": self.user, "password": self.password or ""}
        return options


def tls_context(
    ca_pem: str, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """The operator's TLS context for a pipeline's NATS (`spec.nats.tls`): trusts only that
    CA, and presents the client certificate when the Secret holds one."""
    context = ssl.create_default_context(cadata=ca_pem)
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


class NatsError(Exception):
    """NATS could not be reached or refused a call; the message says which and where."""


class NamesInUse(NatsError):
    """The pipeline's stream, bucket or subjects belong to another pipeline."""


async def ensure_pipeline(
    spec: NatsSpec, names: PipelineNames, *, owner: str, login: NatsLogin | None = None
) -> None:
    """Create or update the pipeline's stream (its limits from the spec) and config bucket,
    marked as `owner`'s; raise NamesInUse, touching nothing, when another pipeline has them."""
    settings = jetstream.StreamSettings(
        replicas=spec.stream_replicas,
        duplicate_window_s=float(spec.duplicate_window_seconds),
        max_age_s=spec.max_age_hours * 3600.0,
        max_bytes=spec.max_bytes,
    )
    async with _connected(spec.url, login) as nc:
        js = nc.jetstream()
        problems = natsclaims.claim_problems(names, owner, await _marks(js, names))
        if problems:
            raise NamesInUse("; ".join(problems))
        try:
            await jetstream.ensure_stream(js, settings, names=names, description=owner)
        except APIError as exc:
            if exc.err_code == _SUBJECTS_OVERLAP:
                raise NamesInUse(
                    f"subjects {names.subjects()} overlap another stream on {spec.url}: "
                    "set spec.nats.eventsSubject and dlqSubject to free subjects"
                ) from None
            raise
        await jetstream.ensure_config_bucket(
            js, replicas=spec.stream_replicas, bucket=names.config_bucket, description=owner
        )
        await jetstream.ensure_sessions_bucket(
            js, bucket=names.sessions_bucket, replicas=spec.stream_replicas
        )


async def publish_config(
    url: str, values: Mapping[str, str], *, bucket: str, login: NatsLogin | None = None
) -> list[str]:
    """Put each changed value under its key of `bucket`; returns the keys that were written."""
    written = []
    async with _connected(url, login) as nc:
        kv = await nc.jetstream().key_value(bucket)
        for key, value in values.items():
            try:
                current = (await kv.get(key)).value
            except KeyNotFoundError:
                current = None
            if current != value.encode():
                await kv.put(key, value.encode())
                written.append(key)
    return written


async def read_config(
    url: str, key: str, *, bucket: str, login: NatsLogin | None = None
) -> bytes | None:
    async with _connected(url, login) as nc:
        try:
            kv = await nc.jetstream().key_value(bucket)
            return (await kv.get(key)).value
        except (BucketNotFoundError, KeyNotFoundError):
            return None


async def delete_pipeline(
    url: str, names: PipelineNames, *, owner: str, login: NatsLogin | None = None
) -> list[str]:
    """Delete the pipeline's stream (its durable consumer goes with it) and config bucket,
    each only when it carries `owner`'s mark. Returns what was deleted."""
    deleted = []
    async with _connected(url, login) as nc:
        js = nc.jetstream()
        marks = await _marks(js, names)
        if "stream" in marks and marks["stream"] == owner:
            await js.delete_stream(names.stream)
            deleted.append(f"stream {names.stream}")
        if "bucket" in marks and marks["bucket"] == owner:
            await js.delete_key_value(names.config_bucket)
            deleted.append(f"bucket {names.config_bucket}")
            # The sessions ledger's name follows the pipeline (never overridden): it goes too.
            with contextlib.suppress(BucketNotFoundError, NotFoundError):
                await js.delete_key_value(names.sessions_bucket)
                deleted.append(f"bucket {names.sessions_bucket}")
    return deleted


async def _marks(js: JetStreamContext, names: PipelineNames) -> dict[str, str | None]:
    """The descriptions of the pipeline's stream and bucket, for those that exist."""
    found: dict[str, str | None] = {}
    for what, stream in (("stream", names.stream), ("bucket", f"KV_{names.config_bucket}")):
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            continue
        found[what] = info.config.description
    return found


@contextlib.asynccontextmanager
async def _connected(url: str, login: NatsLogin | None) -> AsyncIterator[Client]:
    """A short-lived connection with every call under one deadline; errors become NatsError."""
    options: dict[str, Any] = {
        "name": "gameplay-analytics-operator",
        "connect_timeout": CONNECT_TIMEOUT_S,
        "allow_reconnect": False,
        # one more try, then NoServersError (0 would retry a refused first connect forever)
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0.2,
        "error_cb": jetstream.one_line_error,
    }
    options.update(login.options() if login else {})
    user = login.user if login and login.user else natsperms.login_user(url)
    options["inbox_prefix"] = natsperms.inbox_prefix(user)  # its own inboxes only
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
            nc = await nats.connect(jetstream.servers(url), **options)
    except Exception as exc:
        shown = natsperms.without_login(url)
        raise NatsError(f"cannot connect to NATS at {shown}: {exc or type(exc).__name__}") from None
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            yield nc
    except NatsError:
        raise
    except (Exception, TimeoutError) as exc:
        shown = natsperms.without_login(url)
        raise NatsError(f"NATS at {shown}: {exc or type(exc).__name__}") from exc
    finally:
        await nc.close()
