"""Publishing to NATS: the ANALYTICS stream and the `analytics-config` KV bucket.

Gateways, aggregators and, through them, SDKs watch the bucket and hot-reload what lands
here. A value is written only when it differs, so a resync does not wake every watcher.
Stream and bucket settings come from `runtime.jetstream`, the one definition of both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import nats
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError

from gameplay_analytics.operator.models import NatsSpec
from gameplay_analytics.runtime import jetstream

__all__ = ["NatsError", "ensure_stream", "publish_config", "read_config"]

CONNECT_TIMEOUT_S = 5.0
CALL_TIMEOUT_S = 10.0


class NatsError(Exception):
    """NATS could not be reached or refused a call; the message says which and where."""


async def ensure_stream(spec: NatsSpec, *, creds: str | None = None) -> None:
    """Create or update the ANALYTICS stream with the pipeline's limits, and the bucket."""
    settings = jetstream.StreamSettings(
        replicas=spec.stream_replicas,
        duplicate_window_s=float(spec.duplicate_window_seconds),
        max_age_s=spec.max_age_hours * 3600.0,
        max_bytes=spec.max_bytes,
    )
    async with _connected(spec.url, creds) as nc:
        js = nc.jetstream()
        await jetstream.ensure_stream(js, settings)
        await jetstream.ensure_config_bucket(js, replicas=spec.stream_replicas)


async def publish_config(
    url: str, values: Mapping[str, str], *, creds: str | None = None
) -> list[str]:
    """Put each changed value under its key; returns the keys that were written."""
    written = []
    async with _connected(url, creds) as nc:
        kv = await jetstream.ensure_config_bucket(nc.jetstream())
        for key, value in values.items():
            try:
                current = (await kv.get(key)).value
            except KeyNotFoundError:
                current = None
            if current != value.encode():
                await kv.put(key, value.encode())
                written.append(key)
    return written


async def read_config(url: str, key: str, *, creds: str | None = None) -> bytes | None:
    async with _connected(url, creds) as nc:
        kv = await jetstream.ensure_config_bucket(nc.jetstream())
        try:
            return (await kv.get(key)).value
        except KeyNotFoundError:
            return None


@contextlib.asynccontextmanager
async def _connected(url: str, creds: str | None) -> AsyncIterator[Client]:
    """A short-lived connection with every call under one deadline; errors become NatsError."""
    options: dict[str, Any] = {
        "name": "gameplay-analytics-operator",
        "connect_timeout": CONNECT_TIMEOUT_S,
        "allow_reconnect": False,
        "max_reconnect_attempts": 0,
    }
    if creds:
        options["user_credentials"] = creds
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
            nc = await nats.connect(url, **options)
    except Exception as exc:
        raise NatsError(f"cannot connect to NATS at {url}: {exc or type(exc).__name__}") from None
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            yield nc
    except NatsError:
        raise
    except (Exception, TimeoutError) as exc:
        raise NatsError(f"NATS at {url}: {exc or type(exc).__name__}") from exc
    finally:
        await nc.close()
