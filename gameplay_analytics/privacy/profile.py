"""The onboarding profile's key (PROTOCOL.md §6): a keyed hash of the player, stable across
salt months, with a secret of its own.

Only the hot store's restricted `analytics_player_profile` table holds it (and the JetStream
message carries it, in place of the UUID): no event row, Parquet file or log does. Whoever
knows the raw UUID computes the key here, in one place: the gateway's edge step
(privacy/edge.py), and the privacy requests.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Final

from gameplay_analytics.privacy.pseudonym import SaltBook

__all__ = [
    "DEVELOPMENT_PROFILE_SECRET",
    "PROFILE_RETENTION_DAYS",
    "PROFILE_SECRET_LABEL",
    "profile_key",
    "profile_secret",
]

PROFILE_RETENTION_DAYS: Final = 37
"""How long a profile is kept after activation: D30 retention plus a week of late events."""

DEVELOPMENT_PROFILE_SECRET: Final = "gameplay-analytics-development-profile-secret-do-not-use"

PROFILE_SECRET_LABEL: Final = "onboarding-profile"
"""What the profile secret is derived under from the salt master secret when none is given
(HMAC, like the monthly salts are derived under "YYYY-MM": a label no month can equal)."""


def profile_secret(explicit: str | None, salts: SaltBook) -> str | None:
    """The profile's key secret: the one given, else derived from the pipeline's salt master
    secret (so a cluster that brings a salt Secret never falls back to the public one), else
    None: the caller announces and uses `DEVELOPMENT_PROFILE_SECRET`."""
    if explicit:
        return explicit
    return salts.derived_secret(PROFILE_SECRET_LABEL)


def profile_key(player_uuid: str | uuid.UUID, secret: str | bytes) -> str:
    """HMAC-SHA256(secret, lowercase UUID) as hex: the profile's only player identifier.

    A different secret from the monthly salts, so a profile key cannot be matched with an
    `analytics_player_id`, and without the secret it cannot be recomputed from a UUID.
    """
    if not secret:
        raise ValueError("the profile secret must not be empty")
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    canonical = str(player_uuid) if isinstance(player_uuid, uuid.UUID) else player_uuid.lower()
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()
