"""The protocol's limits and rates (PROTOCOL.md §1): one owner for the numbers both ends use.

The gateway's settings default to these and announce its live values in `welcome`; the SDK
starts from them until a `welcome` arrives.
"""

from __future__ import annotations

__all__ = [
    "FLUSH_HZ",
    "MAX_EVENTS_PER_ENVELOPE",
    "MAX_EVENT_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_RATE_HZ",
    "TELEMETRY_MAX_HZ",
]

MAX_FRAME_BYTES = 256 * 1024
"""Largest frame a gateway accepts; a bigger one closes the socket with 1009."""
MAX_EVENTS_PER_ENVELOPE = 500
"""Events in one `analytics` frame; more is `bad_request`."""
MAX_EVENT_BYTES = 16 * 1024
"""An event bigger than this is refused by the SDK at `track()`; real events are ~100 bytes."""
MAX_RATE_HZ = 10
"""`analytics` frames per second per connection; faster is `rate_limited`."""
FLUSH_HZ = 10
"""How often an SDK sends a new envelope (sooner when one is full): the seed's 10 Hz."""
TELEMETRY_MAX_HZ = 1.0
"""`telemetry` frames per second per connection; extra ones are ignored."""
