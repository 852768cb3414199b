"""Privacy: pseudonymous player ids with monthly salts, consent gating, prop scrubbing and
GeoIP that keeps only country and region — pure logic, plus the two file readers noted.
"""

from gameplay_analytics.privacy.consent import Consent, allows
from gameplay_analytics.privacy.geoip import GeoIP, Location, RecordReader, open_geoip
from gameplay_analytics.privacy.pseudonym import (
    SALT_SECRET_ENV,
    Pseudonymiser,
    SaltBook,
    analytics_player_id,
    load_salt_book,
    month_of,
    months_between,
)
from gameplay_analytics.privacy.scrub import Scrubber, scrub_props

__all__ = [
    "SALT_SECRET_ENV",
    "Consent",
    "GeoIP",
    "Location",
    "Pseudonymiser",
    "RecordReader",
    "SaltBook",
    "Scrubber",
    "allows",
    "analytics_player_id",
    "load_salt_book",
    "month_of",
    "months_between",
    "open_geoip",
    "scrub_props",
]
