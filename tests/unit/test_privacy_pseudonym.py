"""Pseudonymous player ids: stable within a month, new each month, secrets never shown."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gameplay_analytics import privacy
from gameplay_analytics.privacy import Pseudonymiser, SaltBook

PLAYER = "9B2F6A3E-1C4D-4F5A-8B7C-2D1E0F9A8B7C"
SECRET = "s3cr3t-master-key-value"


def test_player_id_is_sha256_of_lowercase_uuid_and_salt() -> None:
    expected = hashlib.sha256((PLAYER.lower() + "pepper").encode()).hexdigest()
    assert privacy.analytics_player_id(PLAYER, "pepper") == expected
    assert privacy.analytics_player_id(uuid.UUID(PLAYER), "pepper") == expected
    assert len(expected) == 64


def test_derived_salt_is_hmac_of_the_month() -> None:
    book = SaltBook(secret=SECRET)
    expected = hmac.new(SECRET.encode(), b"2025-10", hashlib.sha256).hexdigest()
    assert book.salt_for("2025-10") == expected


@given(st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2099, 12, 1)))
def test_same_month_same_id_next_month_new_id(day: datetime.date) -> None:
    ids = Pseudonymiser(SaltBook(secret=SECRET))
    first_of_month = day.replace(day=1)
    assert ids.player_id(PLAYER, day=day) == ids.player_id(PLAYER, day=first_of_month)
    next_month = (first_of_month + datetime.timedelta(days=32)).replace(day=1)
    assert ids.player_id(PLAYER, day=day) != ids.player_id(PLAYER, day=next_month)


def test_month_boundary() -> None:
    ids = Pseudonymiser(SaltBook(secret=SECRET))
    october_last = ids.player_id(PLAYER, day=datetime.date(2025, 10, 31))
    assert october_last == ids.player_id(PLAYER, day=datetime.date(2025, 10, 1))
    assert october_last != ids.player_id(PLAYER, day=datetime.date(2025, 11, 1))


def test_a_redelivered_event_keeps_its_id_whenever_it_is_processed() -> None:
    ids = Pseudonymiser(SaltBook(secret=SECRET))
    event_day = datetime.date(2025, 10, 31)
    # Processing happens later, but the id depends on the event's day only.
    first = ids.player_id(PLAYER, day=event_day)
    second = Pseudonymiser(SaltBook(secret=SECRET)).player_id(PLAYER.lower(), day=event_day)
    assert first == second


def test_different_secrets_and_players_give_different_ids() -> None:
    day = datetime.date(2025, 10, 3)
    one = Pseudonymiser(SaltBook(secret=SECRET)).player_id(PLAYER, day=day)
    other = Pseudonymiser(SaltBook(secret=SECRET + "x")).player_id(PLAYER, day=day)
    assert one != other
    assert one != Pseudonymiser(SaltBook(secret=SECRET)).player_id(str(uuid.uuid4()), day=day)


def test_explicit_salts_win_over_the_secret() -> None:
    book = SaltBook(salts={"2025-10": "re-salted"}, secret=SECRET)
    assert book.salt_for("2025-10") == "re-salted"
    assert book.salt_for("2025-11") == SaltBook(secret=SECRET).salt_for("2025-11")
    ids = Pseudonymiser(book)
    expected = privacy.analytics_player_id(PLAYER, "re-salted")
    assert ids.player_id(PLAYER, day=datetime.date(2025, 10, 9)) == expected


def test_explicit_salts_alone_cover_only_their_months() -> None:
    book = SaltBook(salts={"2025-10": "only-october"})
    assert book.salt_for("2025-10") == "only-october"
    with pytest.raises(LookupError, match="no salt for 2025-11") as info:
        book.salt_for("2025-11")
    assert "only-october" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs explicit salts, a master secret, or both"),
        ({"secret": ""}, "must not be empty"),
        ({"salts": {"2025-13": "x"}}, "YYYY-MM, got 2025-13"),
        ({"salts": {"October": "x"}}, "YYYY-MM"),
        ({"salts": {"2025-10": ""}}, "must not be empty"),
    ],
)
def test_salt_book_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SaltBook(**kwargs)  # type: ignore[arg-type]


def test_repr_and_str_hide_salts_and_secrets() -> None:
    book = SaltBook(salts={"2025-10": "pepper-value"}, secret=SECRET)
    book.salt_for("2025-11")  # a derived salt is cached inside; it must stay hidden too
    derived = book.salt_for("2025-11")
    ids = Pseudonymiser(book)
    for text in (repr(book), str(book), repr(ids), str(ids), f"{ids}", f"{book!r}"):
        assert SECRET not in text
        assert "pepper-value" not in text
        assert derived not in text
    assert "2025-10" in repr(book) and "<hidden>" in repr(book)


def test_load_from_environment() -> None:
    book = privacy.load_salt_book(secret_file=None, env={privacy.SALT_SECRET_ENV: SECRET})
    assert not book.development
    assert book.salt_for("2025-10") == SaltBook(secret=SECRET).salt_for("2025-10")


def test_load_from_a_file_wins_over_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "salt-secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    book = privacy.load_salt_book(secret_file=secret_file, env={privacy.SALT_SECRET_ENV: "other"})
    assert book.salt_for("2025-10") == SaltBook(secret=SECRET).salt_for("2025-10")


def test_a_missing_or_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the salt secret file"):
        privacy.load_salt_book(secret_file=tmp_path / "absent", env={})
    empty = tmp_path / "empty"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        privacy.load_salt_book(secret_file=empty, env={})


def test_without_a_secret_a_flagged_development_default() -> None:
    book = privacy.load_salt_book(secret_file=None, env={privacy.SALT_SECRET_ENV: " "})
    assert book.development
    assert Pseudonymiser(book).development
    again = privacy.load_salt_book(secret_file=None, env={})
    day = datetime.date(2025, 10, 1)
    # Stable across restarts, so a local stack's reports line up from run to run.
    assert Pseudonymiser(book).player_id(PLAYER, day=day) == Pseudonymiser(again).player_id(
        PLAYER, day=day
    )
    assert "development=True" in repr(book)


def test_months_between_spans_years_and_includes_both_ends() -> None:
    from gameplay_analytics.privacy.pseudonym import months_between

    assert months_between(datetime.date(2025, 11, 30), datetime.date(2026, 2, 1)) == [
        "2025-11", "2025-12", "2026-01", "2026-02",
    ]  # fmt: skip
    assert months_between(datetime.date(2026, 3, 1), datetime.date(2026, 3, 31)) == ["2026-03"]
    assert months_between(datetime.date(2026, 4, 1), datetime.date(2026, 3, 1)) == []


def test_player_ids_gives_one_pseudonym_per_month_matching_player_id() -> None:
    p = Pseudonymiser(SaltBook(secret="s"))
    player = "9b2f6f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    ids = p.player_ids(player, months=["2026-01", "2026-02"])
    assert ids["2026-02"] == p.player_id(player, day=datetime.date(2026, 2, 14))
    assert len(set(ids.values())) == 2


def test_request_months_cover_retention_and_every_stored_day() -> None:
    from gameplay_analytics.runtime.privacy_requests import request_months

    months = request_months(
        today=datetime.date(2026, 12, 4),
        warm_retention_days=183,
        stored_days={datetime.date(2027, 12, 1), datetime.date(2019, 1, 5)},
    )
    assert months[0] == "2019-01" and months[-1] == "2027-12"
    assert "2026-06" in months and "2026-12" in months and "2026-05" not in months


def test_the_profile_secret_is_given_or_derived_from_the_salt_secret_never_public() -> None:
    from gameplay_analytics.privacy import profile
    from gameplay_analytics.privacy.pseudonym import SaltBook

    book = SaltBook(secret="cluster-salt")
    derived = profile.profile_secret(None, book)
    assert derived is not None and len(derived) == 64
    assert derived == profile.profile_secret("", SaltBook(secret="cluster-salt"))  # stable
    assert derived != profile.profile_secret(None, SaltBook(secret="other-salt"))
    assert derived not in {book.salt_for("2026-12"), "cluster-salt"}  # its own key
    assert profile.profile_secret("given", book) == "given"
    # No real master secret (explicit salts only, or the public development one): the caller
    # falls back to the development profile secret and says so.
    assert profile.profile_secret(None, SaltBook(salts={"2026-12": "s"})) is None
    assert profile.profile_secret(None, SaltBook(secret="x", development=True)) is None
