"""The edge step (privacy/edge.py), pure: pseudonyms per salt month, the profile key, the
player's own UUID and IP scrubbed from props, keys that never show, and their loading."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import pytest

from gameplay_analytics.contract.messages import (
    EventBatch,
    PublishedEvent,
    RawEventBatch,
    decode_batch,
    encode_batch,
)
from gameplay_analytics.privacy import profile
from gameplay_analytics.privacy.edge import EdgeKeys, load_edge_keys, month_of_ms, seal
from gameplay_analytics.privacy.pseudonym import Pseudonymiser, SaltBook

PLAYER = "0F8FAD5B-D9CB-469F-A165-70867728950E"
SECRET = "edge-unit-secret"
KEYS = EdgeKeys(salts=SaltBook(secret=SECRET), profile_secret="edge-profile")


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)  # type: ignore[misc]


def test_months_of_epoch_milliseconds() -> None:
    assert month_of_ms(ms(2025, 10, 31, 23, 59, 59)) == "2025-10"
    assert month_of_ms(ms(2025, 11, 1)) == "2025-11"
    assert month_of_ms(0) == "1970-01"
    assert month_of_ms(-1) is None and month_of_ms(253_402_300_800_000) is None


def test_an_envelope_straddling_a_month_gets_each_months_pseudonym() -> None:
    edge = KEYS.player(PLAYER, None)
    october, november = ms(2025, 10, 31, 23, 59, 59), ms(2025, 11, 1, 0, 0, 1)
    ids = edge.player_ids([october, november, -5], received_at=november)
    salts = Pseudonymiser(SaltBook(secret=SECRET))
    assert ids == {
        "2025-10": salts.player_id(PLAYER.lower(), day=dt.date(2025, 10, 31)),
        "2025-11": salts.player_id(PLAYER.lower(), day=dt.date(2025, 11, 1)),
    }
    assert ids["2025-10"] != ids["2025-11"]
    # The receipt's month is always there (DLQ entries, sessions), even with no event in it.
    assert set(edge.player_ids([october], received_at=november)) == {"2025-10", "2025-11"}
    assert edge.profile_key == profile.profile_key(PLAYER, "edge-profile")


def test_the_remembered_month_answers_only_inside_its_bounds() -> None:
    """`player_ids` remembers the last events' month and receipt month; a time just outside
    either is looked up again."""
    edge, fresh = KEYS.player(PLAYER, None), KEYS.player(PLAYER, None)
    first, last = ms(2025, 11, 1), ms(2025, 11, 30, 23, 59, 59) + 999
    cases = [
        ([first, last], first), ([first], last), ([last + 1], last), ([first - 1], first),
        ([first, last], last + 1), ([first], first - 1), ([], first), ([-5, first], first),
        ([first], first), ([first], ms(2026, 1, 5)), ([last], ms(2026, 1, 5)),
        ([first - 1], ms(2026, 1, 5)), ([first], ms(2026, 2, 1)), ([first], first),
    ]  # fmt: skip
    for times, received in cases:
        expected = {m: fresh.player_id(m) for m in sorted(
            {month_of_ms(t) for t in [*times, received]} - {None}  # type: ignore[misc]
        )}  # fmt: skip
        assert edge.player_ids(times, received_at=received) == expected, (times, received)


def test_the_players_own_uuid_and_ip_are_scrubbed_from_props_only() -> None:
    edge = KEYS.player(PLAYER, "81.2.69.142")
    raw = RawEventBatch(
        session_id="s", player_uuid=PLAYER, client_guid="9b2f5c1e-0000-4000-8000-00000000abcd",
        schema_version="1.0.0", received_at=ms(2025, 10, 1), build="81.2.69.142",
        events=[
            PublishedEvent(seq=1, name="engage_enemy", ts=1, props={"enemy_id": PLAYER.lower()}),
            PublishedEvent(seq=2, name="loot_drop", ts=1,
                           props={"item_id": PLAYER.replace("-", ""), "n": ["81.2.69.142"]}),
            PublishedEvent(seq=3, name="loot_drop", ts=1, props={"item_id": "181.2.69.1429"}),
        ],
    )  # fmt: skip
    payload = edge.scrub(encode_batch(seal(raw, KEYS)))
    batch = decode_batch(payload)
    assert [e.props for e in batch.events] == [
        {"enemy_id": "redacted"}, {"item_id": "redacted", "n": ["redacted"]},
        {"item_id": "181.2.69.1429"},  # not the address: a longer token that contains it
    ]  # fmt: skip
    assert batch.build == "81.2.69.142"  # not a prop: the client's own build string stays
    orc = [PublishedEvent(seq=4, name="loot_drop", ts=1, props={"item_id": "orc_7"})]
    clean = encode_batch(seal(msgspec.structs.replace(raw, events=orc, build="b"), KEYS))
    assert edge.scrub(clean) is clean  # nothing to scrub: the payload comes back unparsed
    assert edge.scrub_props(b'{"a":"x"}') == b'{"a":"x"}'
    assert edge.scrub_props(PLAYER.encode().join([b'{"a":"', b'"}'])) == b'{"a":"redacted"}'


def test_a_sealed_batch_holds_no_raw_identifier() -> None:
    raw = RawEventBatch(
        session_id="s", player_uuid=PLAYER, client_guid="g", schema_version="1.0.0",
        received_at=ms(2025, 10, 1), client_ip="81.2.69.142",
        events=[PublishedEvent(seq=1, name="xp_gain", ts=ms(2025, 9, 30), props={})],
    )  # fmt: skip
    sealed = seal(raw, KEYS)
    assert isinstance(sealed, EventBatch) and set(sealed.player_ids) == {"2025-09", "2025-10"}
    text = encode_batch(sealed).decode().lower()
    assert PLAYER.lower() not in text and "81.2.69.142" not in text
    assert "player_uuid" not in text and "client_ip" not in text
    server = seal(msgspec.structs.replace(raw, source="server"), KEYS)
    assert server.profile_key is None  # the profile follows the player's own client only


def test_keys_and_edges_never_show_their_secrets() -> None:
    edge = KEYS.player(PLAYER, "81.2.69.142")
    edge.player_id("2025-10")
    shown = f"{KEYS!r} {KEYS} {edge!r} {edge}"
    assert SECRET not in shown and "edge-profile" not in shown
    assert PLAYER.lower() not in shown.lower() and "81.2.69.142" not in shown


def test_loading_the_keys(tmp_path: Path) -> None:
    keys, warnings = load_edge_keys(
        salt_secret=None, salt_secret_file=None, profile_secret=None, geoip_db=None
    )
    assert keys.development and len(warnings) == 2  # the public salt and profile secret
    secret_file = tmp_path / "salt"
    secret_file.write_text(SECRET + "\n")
    keys, warnings = load_edge_keys(
        salt_secret="ignored", salt_secret_file=secret_file, profile_secret=None,
        geoip_db=tmp_path / "absent.mmdb",
    )  # fmt: skip
    assert warnings == [] and not keys.development  # the profile secret derives from the salt
    assert keys.player(PLAYER, None).player_id("2025-10") == KEYS.player(PLAYER, None).player_id(
        "2025-10"
    )
    derived = profile.profile_secret(None, SaltBook(secret=SECRET))
    assert derived is not None
    assert keys.player(PLAYER, None).profile_key == profile.profile_key(PLAYER, derived)
    (tmp_path / "bad.mmdb").write_text("not a database")
    with pytest.raises(ValueError, match="not a readable MaxMind database"):
        load_edge_keys(salt_secret=SECRET, salt_secret_file=None, profile_secret="p",
                       geoip_db=tmp_path / "bad.mmdb")  # fmt: skip
