"""Privacy erasure in a stream written with group commit (contract.messages bundles)."""

from __future__ import annotations

import uuid

from nats.js import JetStreamContext

from gameplay_analytics.contract.messages import (
    EVENTS_SUBJECT,
    STREAM,
    decode_batches,
    encode_batch,
    encode_bundle,
)
from gameplay_analytics.runtime import stream_erasure
from tests.integration.support import batch, event
from tests.integration.test_privacy_requests import _ids, _stream_count


async def test_erasing_a_player_keeps_the_others_of_a_bundle(js: JetStreamContext) -> None:
    """Group commit puts several players' batches in one stream message: erasing one player
    deletes that message and publishes the others' batches again."""
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    parts = [
        encode_batch(batch(player, str(uuid.uuid4()), [event(1), event(2)]))
        for player in (erased, kept)
    ]
    await js.publish(EVENTS_SUBJECT, encode_bundle(parts), headers={"Nats-Msg-Id": "b-test"})
    match = stream_erasure.PlayerMatch(player_uuid=erased, player_ids=_ids(erased))
    hits = await stream_erasure.find_messages(
        js, stream=STREAM, subject=EVENTS_SUBJECT, match=match
    )
    assert len(hits) == 1 and [e["seq"] for e in hits[0][1]["events"]] == [1, 2]
    assert set(hits[0][1]["player_ids"].values()) <= set(_ids(erased))  # named by pseudonyms
    deleted = await stream_erasure.delete_messages(
        js, stream=STREAM, sequences=[seq for seq, _ in hits], match=match
    )
    assert deleted == 1
    assert await _stream_count(js, erased, _ids(erased)) == 0
    keep = stream_erasure.PlayerMatch(player_uuid=kept, player_ids=_ids(kept))
    [(seq, doc)] = await stream_erasure.find_messages(
        js, stream=STREAM, subject=EVENTS_SUBJECT, match=keep
    )
    assert set(doc["player_ids"].values()) <= set(_ids(kept)) and seq > hits[0][0]
    stored = await js.get_msg(STREAM, seq)
    [left] = decode_batches(stored.data or b"")
    assert set(left.player_ids.values()) <= set(_ids(kept))
