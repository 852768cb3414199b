"""The ingest gateway: WebSocket sessions, validation, sampling guard, JetStream publisher.

Run one with `run_gateway(GatewaySettings())`, or in-process with `Gateway(...).start()`.
"""

from gameplay_analytics.runtime.gateway.app import WS_PATH, Gateway, run_gateway
from gameplay_analytics.runtime.gateway.auth import Principal, issue_token, verify_token
from gameplay_analytics.runtime.gateway.settings import GatewaySettings

__all__ = [
    "WS_PATH",
    "Gateway",
    "GatewaySettings",
    "Principal",
    "issue_token",
    "run_gateway",
    "verify_token",
]
