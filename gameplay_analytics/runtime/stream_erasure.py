"""Privacy requests in JetStream: find or delete one player's messages, DLQ and events.

DLQ entries name the player by `analytics_player_id`; event messages (gateway → aggregator)
by their `player_ids` (one `analytics_player_id` per salt month, format 2), or by the raw
`player_uuid` in a legacy format-1 message still in the stream.
A subject is read once with an ephemeral consumer that acks nothing (it never disturbs the
aggregator's durable one), each message is matched on its bytes first and decoded only on a
hit, and a match is removed with `delete_msg` by its stream sequence: the other players'
messages stay where they are.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gameplay_analytics.contract import messages

__all__ = ["PlayerMatch", "delete_messages", "find_messages"]

_FETCH: Final = 2000
_FETCH_TIMEOUT_S: Final = 1.0
_INACTIVE_S: Final = 30.0


class PlayerMatch:
    """Whether a message is one player's: by raw UUID (lowercase) or by any pseudonym."""

    __slots__ = ("_ids", "_needles", "_uuid")

    def __init__(self, *, player_uuid: str, player_ids: Collection[str]) -> None:
        self._uuid = player_uuid.lower()
        self._ids = frozenset(player_ids)
        self._needles = [self._uuid.encode(), *(i.encode() for i in self._ids)]

    def __repr__(self) -> str:
        return f"PlayerMatch({len(self._ids)} pseudonyms)"  # never the UUID

    def __call__(self, data: bytes) -> dict[str, Any] | None:
        lower = data.lower()
        if not any(needle in lower for needle in self._needles):
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        if isinstance(doc, list):  # a group-committed bundle of batches (contract.messages)
            mine = [part for part in doc if isinstance(part, dict) and self._is_mine(part)]
            if not mine:
                return None
            merged = dict(mine[0])
            merged["events"] = [e for part in mine for e in part.get("events") or []]
            return merged
        if not isinstance(doc, dict):
            return None
        return doc if self._is_mine(doc) else None

    def _is_mine(self, doc: dict[str, Any]) -> bool:
        raw = doc.get("player_uuid")
        if isinstance(raw, str) and raw.lower() == self._uuid:
            return True
        months = doc.get("player_ids")
        if isinstance(months, dict) and not self._ids.isdisjoint(months.values()):
            return True
        return doc.get("analytics_player_id") in self._ids


async def find_messages(
    js: JetStreamContext, *, stream: str, subject: str, match: PlayerMatch
) -> list[tuple[int, dict[str, Any]]]:
    """(stream sequence, decoded message) of every message on `subject` that `match`es."""
    found: list[tuple[int, dict[str, Any]]] = []
    info = await js.stream_info(stream)
    if not info.state.messages:
        return found
    sub = await js.pull_subscribe(
        subject, stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
            inactive_threshold=_INACTIVE_S,
        ),
    )  # fmt: skip
    try:
        while True:
            try:
                msgs = await sub.fetch(_FETCH, timeout=_FETCH_TIMEOUT_S)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            for msg in msgs:
                doc = match(msg.data)
                if doc is not None:
                    found.append((msg.metadata.sequence.stream, doc))
            if msgs and msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


async def delete_messages(
    js: JetStreamContext, *, stream: str, sequences: list[int], match: PlayerMatch | None = None
) -> int:
    """Delete each sequence; one already gone (age, an earlier run) is not an error.

    With `match`, a group-committed bundle (`contract.messages`) that also carries other
    players' batches is first published again without the player's, so that erasing one
    player never takes the others' events out of the stream (the hot store's unique key keeps
    them once, if the aggregator had already stored them).
    """
    deleted = 0
    for seq in sequences:
        try:
            if match is not None:
                await _republish_others(js, stream, seq, match)
            if await js.delete_msg(stream, seq):
                deleted += 1
        except nats.js.errors.NotFoundError:
            continue
    return deleted


async def _republish_others(
    js: JetStreamContext, stream: str, seq: int, match: PlayerMatch
) -> None:
    found = await js.get_msg(stream, seq)
    data = found.data or b""
    parts = messages.split_events(data)
    if len(parts) < 2 or found.subject is None:
        return
    others = [part for part in parts if match(part) is None]
    if others:
        await js.publish(
            found.subject, messages.encode_bundle(others),
            headers={"Nats-Msg-Id": f"erasure-rest-{seq}"},
        )  # fmt: skip
