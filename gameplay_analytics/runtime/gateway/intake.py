"""Intake: one `analytics` frame in, what to store and what to answer out. Pure.

`intake()` validates the events with the frame's schema version, applies the session's
sampling guard, and returns the JetStream messages to publish (the kept events as one batch,
each rejected event as a DLQ entry), the `ack` to send once they are stored, and the counts the
metrics need. It touches no socket, queue or clock: the caller passes the time. What it
publishes has passed the session's edge step (`privacy/edge.py`): pseudonyms, profile key and
location in place of the player's UUID and the client's IP, which never reach the broker.
"""

from __future__ import annotations

import uuid

import msgspec

from gameplay_analytics.contract import frames, messages, taxonomy
from gameplay_analytics.contract.errors import DropReason, ErrorCode, ProtocolError
from gameplay_analytics.privacy.edge import PlayerEdge
from gameplay_analytics.privacy.edge import month_of_ms as edge_month
from gameplay_analytics.runtime.config import LiveConfig
from gameplay_analytics.runtime.gateway.guard import SamplingGuard
from gameplay_analytics.runtime.gateway.handshake import SessionContext
from gameplay_analytics.runtime.gateway.ingest import Outbound

__all__ = ["Intake", "event_batch", "intake", "version_detail"]


class Intake(msgspec.Struct, frozen=True):
    """The outcome of one valid-schema `analytics` frame. (A struct: one per frame, and a
    frozen dataclass' `__init__` costs ten times as much.)"""

    ack: frames.Ack
    outbound: list[Outbound]  # empty when nothing is to be stored
    weight: int  # events the ingest queue holds for it: kept + rejected
    valid: int  # events that passed validation (before sampling)
    drops: dict[DropReason, int]
    categories: dict[taxonomy.Category | None, int]
    rejected: list[frames.Rejection]
    combat: bool  # the frame carried a combat event


def intake(
    frame: frames.AnalyticsFrame,
    ctx: SessionContext,
    guard: SamplingGuard,
    live: LiveConfig,
    *,
    now: float,
    received_at: int,
    latency: str | None,
    edge: PlayerEdge,
) -> Intake:
    """Validate, sample and package one frame. Raises `ProtocolError` (with the frame's id)
    for a refused schema version or a malformed `events` array.

    `now` is the monotonic time the guard's grace period runs on, `received_at` the epoch ms
    stamped on the batch, `latency` its RTT bucket; `edge` the session's edge step.
    """
    validator = live.registry.validator(frame.schema)
    if validator is None:
        raise ProtocolError(
            ErrorCode.ANALYTICS_VERSION, version_detail(frame.schema, live), frame_id=frame.id
        )
    try:
        result = validator.validate(frame.events)
    except ProtocolError as err:
        err.frame_id = frame.id
        raise
    kept: list[messages.PublishedEvent] = []
    drops: dict[DropReason, int] = {}
    categories: dict[taxonomy.Category | None, int] = {}
    seqs: list[int] = []
    # A frame repeats a few names (and tiers) many times: each is looked up and decided once.
    names: dict[str, tuple[taxonomy.Category | None, bool]] = {}
    decided: dict[tuple[str, object], tuple[DropReason | None, float, str]] = {}
    for event in result.accepted:
        name = event.event_name
        seqs.append(event.seq)
        known = names.get(name)
        if known is None:
            spec = taxonomy.EVENTS.get(name)
            known = names[name] = (spec.category, spec.tiered) if spec else (None, False)
        category, tiered = known
        categories[category] = categories.get(category, 0) + 1
        tier = None
        if tiered:  # (inline: this loop runs for every event)
            props = event.props
            if type(props) is dict:
                tier = props.get("tier")
            elif not isinstance(tier := getattr(props, "tier", None), str):
                tier = None
        key = (name, tier)
        decision = decided.get(key)
        if decision is None:
            reason, rate = guard.decide(name, key[1], now)
            decision = decided[key] = (reason, rate, guard.cohort(name))
        reason, rate, cohort = decision
        if reason is None:
            # props stays the validator's struct: msgspec encodes it as the JSON object it was
            # decoded from, without a round trip through a dict. (Positional: seq, name, ts,
            # props, sample_rate, cohort; cheaper than keywords.)
            kept.append(
                messages.PublishedEvent(event.seq, name, event.ts, event.props, rate, cohort)
            )
        else:
            drops[reason] = drops.get(reason, 0) + 1
    rejected = result.rejected
    seqs.extend(r.seq for r in rejected if r.seq is not None)
    outbound: list[Outbound] = []
    if not guard.opted_out:  # nothing from an opted-out session is stored, not even in the DLQ
        if kept:
            batch = event_batch(
                ctx,
                kept,
                edge=edge,
                client_guid=ctx.client_guid,
                schema_version=frame.schema,
                received_at=received_at,
                latency=latency,
                envelope_id=frame.id,
            )
            ident = messages.msg_id(edge.profile_key, ctx.client_guid, min(seqs), max(seqs))
            payload = edge.scrub(messages.encode_batch(batch))
            outbound.append(Outbound(ctx.events_subject, payload, ident))
        if rejected:
            outbound.extend(_dlq(ctx, r, frame.schema, received_at, edge) for r in rejected)
    return Intake(
        ack=frames.Ack(
            id=frame.id, accepted=len(kept), rejected=rejected, dropped=sum(drops.values())
        ),
        outbound=outbound,
        weight=len(kept) + len(rejected),
        valid=len(result.accepted),
        drops=drops,
        categories=categories,
        rejected=rejected,
        combat=taxonomy.Category.COMBAT in categories,
    )


def event_batch(
    ctx: SessionContext,
    events: list[messages.PublishedEvent],
    *,
    edge: PlayerEdge,
    client_guid: str,
    schema_version: str,
    received_at: int,
    latency: str | None,
    envelope_id: int | None = None,
) -> messages.EventBatch:
    """One batch: `events` plus what the gateway knows of the session, pseudonymous: the
    player's id of each month the events and the receipt fall in, the profile key (a
    player's client only), the client's location."""
    location = edge.location
    return messages.EventBatch(
        session_id=ctx.session_id,
        player_ids=edge.player_ids([e.ts for e in events], received_at=received_at),
        profile_key=edge.profile_key if ctx.source == messages.SOURCE_CLIENT else None,
        country=location.country,
        geo_region=location.region,
        client_guid=client_guid,
        schema_version=schema_version,
        received_at=received_at,
        events=events,
        shard=ctx.shard,
        region=ctx.region,
        build=ctx.build,
        platform=ctx.platform,
        latency_bucket=latency,
        consent_social=ctx.consent.social,
        envelope_id=envelope_id,
        source=ctx.source,
    )


def version_detail(version: str, live: LiveConfig) -> str:
    return f"schema: {version!r} is not accepted (accepted: {', '.join(live.registry.versions)})"


def _dlq(
    ctx: SessionContext, rejection: frames.Rejection, schema: str, at: int, edge: PlayerEdge
) -> Outbound:
    guid, seq = ctx.client_guid, rejection.seq
    month = edge_month(at)
    entry = messages.DlqEntry(
        source="gateway",
        reason=str(rejection.code),
        detail=rejection.detail,
        at=at,
        analytics_player_id=edge.player_id(month) if month is not None else None,
        client_guid=guid,
        schema_version=schema,
        event={"seq": seq} if seq is not None else None,
    )
    ident = (
        "dlq-" + messages.msg_id(edge.profile_key, guid, seq, seq)
        if seq is not None
        else uuid.uuid4().hex
    )
    return Outbound(ctx.dlq_subject, msgspec.json.encode(entry), ident)
