"""The Python client SDK: `track()` events, batch them into `analytics` envelopes, resend what
the gateway did not acknowledge. Depends on the pure cores only, never on the runtime.
"""

from gameplay_analytics.sdk.buffer import DEFAULT_CAP_BYTES, PriorityBuffer
from gameplay_analytics.sdk.client import AnalyticsClient
from gameplay_analytics.sdk.connector import WebSocketConnector
from gameplay_analytics.sdk.state import SeqCounter, load_or_create_client_guid
from gameplay_analytics.sdk.stats import Acked, ClientStats

__all__ = [
    "DEFAULT_CAP_BYTES",
    "Acked",
    "AnalyticsClient",
    "ClientStats",
    "PriorityBuffer",
    "SeqCounter",
    "WebSocketConnector",
    "load_or_create_client_guid",
]
