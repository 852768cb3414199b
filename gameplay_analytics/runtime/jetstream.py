"""Connecting to NATS and ensuring the `ANALYTICS` stream and the `analytics-config` bucket.

In a cluster the operator owns both; the processes' own ensure keeps the local stack simple.
An existing stream is updated to the wanted limits, never recreated (that would lose data).
"""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field

from gameplay_analytics.contract import natsnames

__all__ = ["StreamSettings", "connect", "ensure_config_bucket", "ensure_stream"]

log = logging.getLogger(__name__)

_LOCAL = natsnames.PipelineNames()


class StreamSettings(BaseModel):
    """Limits of the ANALYTICS stream (the AnalyticsPipeline's `nats` section)."""

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


async def connect(url: str, *, name: str, connect_timeout_s: float = 5.0) -> Client:
    """A NATS connection that keeps reconnecting forever (the process reports not-ready
    meanwhile) and bounds every connect attempt."""
    return await nats.connect(
        url,
        name=name,
        connect_timeout=connect_timeout_s,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
    )


async def ensure_stream(
    js: JetStreamContext,
    settings: StreamSettings,
    *,
    names: natsnames.PipelineNames = _LOCAL,
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
