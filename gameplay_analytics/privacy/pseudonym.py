"""Pseudonymous player ids: sha256(uuid + monthly salt), as PROTOCOL.md §3 stores them.

Salts rotate per calendar month of the event's day; they and the master secret they derive
from never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "SALT_SECRET_ENV",
    "Pseudonymiser",
    "SaltBook",
    "analytics_player_id",
    "load_salt_book",
    "month_of",
    "months_between",
]

SALT_SECRET_ENV = "GAMEPLAY_ANALYTICS_SALT_SECRET"

# Public on purpose: a development stack must give stable ids across restarts, and anyone
# could read this value in the source. `SaltBook.development` flags it so callers warn loudly.
_DEVELOPMENT_SECRET = "gameplay-analytics-development-salt-secret-do-not-use-in-production"

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def analytics_player_id(player_uuid: str | uuid.UUID, salt: str) -> str:
    """sha256_hex(lowercase uuid + salt): the only player identifier storage ever sees."""
    # Same canonical form as the sampling hash (lowercase text), so str and UUID agree.
    canonical = str(player_uuid) if isinstance(player_uuid, uuid.UUID) else player_uuid.lower()
    return hashlib.sha256((canonical + salt).encode("utf-8")).hexdigest()


def month_of(day: datetime.date) -> str:
    """The salt period of a day, `YYYY-MM`."""
    return f"{day.year:04d}-{day.month:02d}"


def months_between(first: datetime.date, last: datetime.date) -> list[str]:
    """Every salt month from `first`'s to `last`'s, both included, oldest first."""
    year, month = first.year, first.month
    months: list[str] = []
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class SaltBook:
    """The salt of each month: listed explicitly, or derived from one master secret.

    An explicit salt wins over the derived one for its month, so a leaked month can be
    re-salted without rotating the secret. Derivation is HMAC-SHA256(secret, "YYYY-MM"), so
    every aggregator replica computes the same salt without sharing state.
    """

    __slots__ = ("_derived", "_salts", "_secret", "development")

    def __init__(
        self,
        *,
        salts: Mapping[str, str] | None = None,
        secret: str | bytes | None = None,
        development: bool = False,
    ) -> None:
        explicit = dict(salts or {})
        bad = sorted(month for month in explicit if not _MONTH.match(month))
        if bad:
            # Only the keys are named: the values are secrets.
            raise ValueError(f"salt months must be written YYYY-MM, got {', '.join(bad)}")
        if any(not salt for salt in explicit.values()):
            raise ValueError("a salt must not be empty")
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if secret is not None and not secret:
            raise ValueError("the salt secret must not be empty")
        if secret is None and not explicit:
            raise ValueError("a SaltBook needs explicit salts, a master secret, or both")
        self._salts = explicit
        self._secret = secret
        self._derived: dict[str, str] = {}
        self.development = development

    def __repr__(self) -> str:
        months = ", ".join(sorted(self._salts)) or "none"
        secret = "<hidden>" if self._secret is not None else "none"
        extra = ", development=True" if self.development else ""
        return f"SaltBook(explicit months: {months}; secret: {secret}{extra})"

    __str__ = __repr__

    def derived_secret(self, label: str) -> str | None:
        """HMAC-SHA256(master secret, label) as hex: a key of its own for another purpose (the
        onboarding profile), unlinkable to the monthly salts; None without a real master
        secret (explicit salts only, or the public development one)."""
        if self._secret is None or self.development:
            return None
        return hmac.new(self._secret, label.encode("ascii"), hashlib.sha256).hexdigest()

    def salt_for(self, month: str) -> str:
        """The salt of `YYYY-MM`; LookupError when that month has none and there is no secret."""
        explicit = self._salts.get(month)
        if explicit is not None:
            return explicit
        if not _MONTH.match(month):
            raise ValueError(f"a salt month is written YYYY-MM, got {month!r}")
        if self._secret is None:
            raise LookupError(f"no salt for {month} and no master secret to derive one")
        derived = self._derived.get(month)
        if derived is None:
            derived = hmac.new(self._secret, month.encode("ascii"), hashlib.sha256).hexdigest()
            self._derived[month] = derived
        return derived


class Pseudonymiser:
    """Maps a player UUID and an event day to that month's `analytics_player_id`.

    The month comes from the event's own day, not from the time of processing, so an event
    redelivered after midnight on the 1st still gets the id its first delivery got.
    """

    __slots__ = ("_salts",)

    def __init__(self, salts: SaltBook) -> None:
        self._salts = salts

    def __repr__(self) -> str:
        return f"Pseudonymiser({self._salts!r})"

    __str__ = __repr__

    @property
    def development(self) -> bool:
        return self._salts.development

    def player_id(self, player_uuid: str | uuid.UUID, *, day: datetime.date) -> str:
        return analytics_player_id(player_uuid, self._salts.salt_for(month_of(day)))

    def player_id_of_month(self, player_uuid: str | uuid.UUID, month: str) -> str:
        """The id under the salt of `YYYY-MM` (the edge step names months, not days)."""
        return analytics_player_id(player_uuid, self._salts.salt_for(month))

    def player_ids(self, player_uuid: str | uuid.UUID, *, months: list[str]) -> dict[str, str]:
        """{month: analytics_player_id} of one player: what a privacy request looks for."""
        return {m: analytics_player_id(player_uuid, self._salts.salt_for(m)) for m in months}


def load_salt_book(*, secret_file: Path | None, env: Mapping[str, str]) -> SaltBook:
    """The salt book from a secret file (a mounted Kubernetes Secret) or the environment.

    `secret_file` wins when given, since it is the deployment's explicit choice; a missing
    file is an error rather than a silent fallback. With neither, a fixed development secret
    is used and the book's `development` flag is set: callers must warn that ids are not
    protected.
    """
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the salt secret file {secret_file}: {exc}") from None
        if not secret:
            raise ValueError(f"the salt secret file {secret_file} is empty")
        return SaltBook(secret=secret)
    secret = env.get(SALT_SECRET_ENV, "").strip()
    if secret:
        return SaltBook(secret=secret)
    return SaltBook(secret=_DEVELOPMENT_SECRET, development=True)
