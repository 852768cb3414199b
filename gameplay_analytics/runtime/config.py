"""Hot-reloaded configuration shared by gateways and aggregators: the sampling rules, the
gateways' circuit breaker and the schema versions from the pipeline's NATS KV bucket
(`analytics-config` by default).

`LiveConfig` is immutable and swapped whole, so a frame is handled under one consistent set of
rules, breaker and registry. Until the bucket is read, the cold-start files (the operator's
ConfigMap, `cold_start`) apply; a missing or broken KV key falls back to them, and they to the
shipped defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from gameplay_analytics import sampling
from gameplay_analytics.contract.natsnames import (
    KV_BREAKER_KEY,
    KV_SAMPLING_KEY,
    KV_SCHEMAS_KEY,
    PipelineNames,
)
from gameplay_analytics.contract.registry import SchemaRegistry, released_schemas
from gameplay_analytics.sampling.breaker import BreakerConfig

__all__ = [
    "ConfigWatcher",
    "LiveConfig",
    "cold_start",
    "default_config",
    "default_rules",
    "parse_breaker",
    "parse_sampling",
    "parse_schemas",
]

log = logging.getLogger(__name__)

_POLL_S = 1.0  # how often the watcher looks for a NATS reconnect while idle
_RETRY_S = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class LiveConfig:
    """The rules, breaker and schema registry one frame is handled with. `breaker` is None
    when no SamplingPolicy set one: the gateway's own `breaker_*` settings apply."""

    rules: sampling.CompiledRules
    registry: SchemaRegistry
    wire: dict[str, Any]
    breaker: BreakerConfig | None = None

    @classmethod
    def of(
        cls,
        rules: sampling.CompiledRules,
        registry: SchemaRegistry,
        breaker: BreakerConfig | None = None,
    ) -> LiveConfig:
        return cls(rules=rules, registry=registry, wire=rules.to_wire(), breaker=breaker)


def default_rules() -> sampling.CompiledRules:
    """The shipped rules (`schemas/sampling.yml`), compiled."""
    return sampling.compile(sampling.load_default_rules())


def default_config(*, schemas_root: Path | None = None, max_events: int = 500) -> LiveConfig:
    """The shipped rules and every released schema version."""
    registry = SchemaRegistry.from_released(schemas_root, max_events=max_events)
    return LiveConfig.of(default_rules(), registry)


def parse_sampling(value: bytes) -> sampling.CompiledRules:
    """The KV `sampling` value: the compiled wire form (extra keys such as the heartbeat rate
    are ignored). Raises ValueError for anything else."""
    return sampling.CompiledRules.from_wire(json.loads(value))


# BreakerSpec's camelCase keys (as the operator publishes them) -> BreakerConfig's fields
_BREAKER_KEYS = {
    "threshold": "threshold",
    "holdSeconds": "hold_s",
    "recoverBelow": "recover_below",
    "recoverHoldSeconds": "recover_hold_s",
    "step": "step",
    "floor": "floor",
}


def parse_breaker(value: bytes) -> BreakerConfig:
    """The KV `breaker` value: SamplingPolicy.spec.breaker as JSON (camelCase, as the
    operator writes it; BreakerConfig's own field names are accepted too). Raises ValueError
    for anything else, including an unknown key."""
    data = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("breaker: not an object")
    fields = {f.name for f in dataclasses.fields(BreakerConfig)}
    config: dict[str, float] = {}
    for key, raw in data.items():
        name = _BREAKER_KEYS.get(key, key)
        if name not in fields or isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"breaker.{key}: unknown key or not a number")
        config[name] = float(raw)
    return BreakerConfig(**config)


def cold_start(
    initial: LiveConfig,
    *,
    sampling_file: Path | None = None,
    schemas_file: Path | None = None,
    breaker_file: Path | None = None,
    schemas_root: Path | None = None,
    max_events: int = 500,
    narrow: bool = True,
) -> LiveConfig:
    """`initial` with what the cold-start files hold (the operator mounts its ConfigMap copy of
    the KV values), so a process that starts while NATS KV is slow serves the pipeline's rules,
    not the shipped ones. A missing or invalid file is logged and leaves that part as it was."""
    rules, registry, breaker = initial.rules, initial.registry, initial.breaker
    for path, what in (
        (sampling_file, "sampling"),
        (schemas_file, "schemas"),
        (breaker_file, "breaker"),
    ):
        if path is None:
            continue
        try:
            raw = path.read_bytes()
            if what == "sampling":
                rules = parse_sampling(raw)
            elif what == "schemas":
                registry = parse_schemas(
                    raw, base=released_schemas(schemas_root), max_events=max_events, narrow=narrow
                )
            else:
                breaker = parse_breaker(raw)
        except (OSError, ValueError, TypeError) as err:
            log.error("ignoring cold-start %s file %s: %s", what, path, err)
    return LiveConfig.of(rules, registry, breaker)


def parse_schemas(
    value: bytes,
    *,
    base: Mapping[str, Mapping[str, Any]],
    max_events: int,
    narrow: bool = True,
) -> SchemaRegistry:
    """The KV `schemas` value, `{"accepted": [...], "documents": {version: schema}}`.

    Documents from KV add to the released ones shipped with the process; `accepted` narrows
    the set (omitted: every known version) where `narrow` is set — the gateways' intake. The
    aggregators pass `narrow=False`: an event accepted under a version since retired is still
    stored, not dead-lettered. An accepted version nobody has a document for is refused
    loudly, since clients on it would all get `analytics_version`.
    """
    data = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("schemas: not an object")
    documents = dict(base)
    extra = data.get("documents") or {}
    if not isinstance(extra, dict):
        raise ValueError("schemas.documents: not an object")
    documents.update({str(v): d for v, d in extra.items() if isinstance(d, dict)})
    accepted = data.get("accepted")
    if accepted is None or not narrow:
        return SchemaRegistry(documents, max_events=max_events)
    if not isinstance(accepted, list) or not all(isinstance(v, str) for v in accepted):
        raise ValueError("schemas.accepted: not a list of versions")
    unknown = sorted(set(accepted) - set(documents))
    if unknown:
        raise ValueError(f"schemas.accepted names versions without a document: {unknown}")
    return SchemaRegistry(documents, max_events=max_events).restricted_to(accepted)


class ConfigWatcher:
    """Follows the pipeline's config bucket and calls `on_change` with each new LiveConfig.

    Re-subscribes after a NATS reconnect: the KV watcher is an ephemeral ordered consumer,
    which a restarted server no longer has. A bucket that does not exist yet (the operator
    creates it) is looked up again every second; meanwhile the shipped defaults apply.
    """

    def __init__(
        self,
        *,
        nc: Client,
        js: JetStreamContext,
        initial: LiveConfig,
        on_change: Callable[[LiveConfig], None],
        schemas_root: Path | None = None,
        max_events: int = 500,
        narrow_to_accepted: bool = True,
        bucket: str = PipelineNames().config_bucket,
    ) -> None:
        self._nc, self._js = nc, js
        self._bucket = bucket
        self._narrow = narrow_to_accepted
        self._defaults = initial
        self.current = initial
        self._on_change = on_change
        self._base = released_schemas(schemas_root)
        self._max_events = max_events
        self._values: dict[str, bytes | None] = dict.fromkeys(
            (KV_SAMPLING_KEY, KV_SCHEMAS_KEY, KV_BREAKER_KEY)
        )
        self.loaded = asyncio.Event()

    async def run(self) -> None:
        """Watch until cancelled; every failure is logged and retried after a pause. A bucket
        that does not exist yet is a normal state (the operator or a gateway creates it):
        said once, not every second."""
        announced_missing = False
        while True:
            try:
                await self._watch_once()
            except asyncio.CancelledError:
                raise
            except nats.js.errors.BucketNotFoundError:
                if not announced_missing:
                    log.info("no %s bucket yet: the cold-start config applies", self._bucket)
                    announced_missing = True
            except Exception as err:  # a KV hiccup must never stop hot reload for good
                log.warning("config watch interrupted (%s); retrying", type(err).__name__)
            await asyncio.sleep(_RETRY_S)

    async def _watch_once(self) -> None:
        reconnects = self._nc.stats["reconnects"]
        kv = await self._js.key_value(self._bucket)  # absent until someone creates it: retried
        watcher = await kv.watchall()
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=_POLL_S)  # type: ignore[no-untyped-call]
                except nats.errors.TimeoutError:
                    # Python 3.11's wait_for (inside nats.py) can swallow a cancel that races
                    # its timeout: the task is then cancelling, and looping on would never end
                    # it (seen: an aggregator's close() waiting forever on this watcher).
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise asyncio.CancelledError from None
                    if self._nc.stats["reconnects"] != reconnects:
                        return  # the ordered consumer died with the old connection
                    continue
                if entry is None:  # initial values delivered
                    self.loaded.set()
                    continue
                if entry.key not in self._values:
                    continue
                deleted = entry.operation in ("DEL", "PURGE")
                self._values[entry.key] = None if deleted else entry.value
                self._apply()
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _apply(self) -> None:
        rules, registry = self._defaults.rules, self._defaults.registry
        breaker = self._defaults.breaker
        raw_rules, raw_schemas = self._values[KV_SAMPLING_KEY], self._values[KV_SCHEMAS_KEY]
        raw_breaker = self._values[KV_BREAKER_KEY]
        try:
            if raw_rules:
                rules = parse_sampling(raw_rules)
            if raw_schemas:
                registry = parse_schemas(
                    raw_schemas, base=self._base, max_events=self._max_events, narrow=self._narrow
                )
            if raw_breaker:
                breaker = parse_breaker(raw_breaker)
        except (ValueError, TypeError) as err:
            log.error("ignoring invalid %s value: %s", self._bucket, err)
            return
        current = self.current
        if (
            rules == current.rules
            and registry.versions == current.registry.versions
            and breaker == current.breaker
        ):
            return
        self.current = LiveConfig.of(rules, registry, breaker)
        log.info(
            "config reloaded: sampling %s, schemas %s", rules.version, ",".join(registry.versions)
        )
        self._on_change(self.current)
