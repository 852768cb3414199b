"""The gateway's configuration: one pydantic-settings model, every field an environment variable.

The operator renders exactly these names (`GAMEPLAY_ANALYTICS_<FIELD>`, upper case), so each
field's description is the documentation of its variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from gameplay_analytics.contract import limits
from gameplay_analytics.contract.natsnames import ENV_PREFIX
from gameplay_analytics.privacy.edge import EdgeKeys, load_edge_keys
from gameplay_analytics.runtime.gateway.clientaddr import Network, parse_networks
from gameplay_analytics.runtime.jetstream import NatsSettings
from gameplay_analytics.sampling.breaker import BreakerConfig

__all__ = ["ENV_PREFIX", "GatewaySettings"]


class GatewaySettings(NatsSettings):
    """Settings of one gateway process; `GAMEPLAY_ANALYTICS_WS_PORT=9000` sets `ws_port`.

    NATS URL, credentials and the pipeline's stream, subjects and bucket: `NatsSettings`.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # -- connections ----------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        None,
        min_length=1,
        description="HS256 secret that signs the players' session tokens (development; "
        "production: jwt_public_keys_file or jwt_jwks_url). One of the three is required",
    )
    jwt_public_keys_file: Path | None = Field(
        None,
        description="PEM file of the login service's public keys (RS256 / ES256); several "
        "`PUBLIC KEY` blocks while keys rotate",
    )
    jwt_jwks_url: str | None = Field(
        None, description="JWKS URL of the login service's public keys (RS256 / ES256)"
    )
    jwt_jwks_refresh_s: float = Field(
        300.0,
        gt=0,
        description="how long fetched JWKS keys are kept; a token naming an unknown `kid` "
        "fetches it again sooner (at most every 10 s)",
    )
    jwt_issuer: str | None = Field(None, description="required `iss` of tokens, when set")
    jwt_audience: str | None = Field(None, description="required `aud` of tokens, when set")
    jwt_leeway_s: float = Field(
        0.0, ge=0, description="clock skew tolerated on a token's `exp`, in seconds"
    )
    ws_host: str = Field("0.0.0.0", description="address the WebSocket server binds")
    trusted_proxies: str = Field(
        "",
        description="comma-separated CIDRs of the load balancers / proxies whose "
        "`Forwarded` / `X-Forwarded-For` headers name the client's address; other peers' "
        "headers are ignored (empty: the socket peer is the client)",
    )
    proxy_protocol: bool = Field(
        False,
        description="connections from `trusted_proxies` start with a PROXY protocol v1/v2 "
        "header naming the client (required from them; a connection without one is "
        "dropped); other peers are read as plain WebSocket",
    )
    ws_port: int = Field(8765, ge=0, le=65535, description="WebSocket port (0: any free port)")
    reuse_port: bool = Field(
        False,
        description="bind the WebSocket port with SO_REUSEPORT, so that several gateway "
        "processes share it (`gateway --workers N` sets it)",
    )
    metrics_port: int = Field(
        9100, ge=0, le=65535, description="/metrics, /healthz, /readyz port (0: any free port)"
    )
    metrics_host: str = Field("0.0.0.0", description="address the probe server binds")
    shard: str | None = Field(
        None, description="shard name stamped on batches whose token carries no `shard` claim"
    )
    relay_secret: SecretStr | None = Field(
        None,
        description="HS256 secret of the game servers' service tokens for `/relay` "
        "(docs/relay.md); the relay endpoint is off while unset",
    )
    # -- the edge step (privacy/edge.py): nothing raw leaves the gateway ------------------
    salt_secret: SecretStr | None = Field(
        None,
        description="master secret the monthly salts derive from: every published batch and "
        "DLQ entry names its player by analytics_player_id (a public development secret is "
        "used when unset, and said so)",
    )
    salt_secret_file: Path | None = Field(
        None, description="a file holding the salt master secret (a mounted Secret); wins"
    )
    profile_secret: SecretStr | None = Field(
        None,
        description="key of the onboarding profile's hash (PROTOCOL.md §6), its own secret; "
        "unset, derived from the salt master secret (privacy/profile.py)",
    )
    geoip_db: Path | None = Field(
        None,
        description="MaxMind .mmdb: country and region of the client's address, published "
        "instead of the address; unset or missing means no country",
    )

    # -- protocol limits (PROTOCOL.md §1) -------------------------------------------------
    max_frame_bytes: int = Field(
        limits.MAX_FRAME_BYTES,
        ge=1024,
        description="largest frame accepted; bigger closes with 1009",
    )
    max_events_per_envelope: int = Field(
        limits.MAX_EVENTS_PER_ENVELOPE,
        ge=1,
        description="events per `analytics` frame; more is `bad_request`",
    )
    max_rate_hz: int = Field(
        limits.MAX_RATE_HZ,
        ge=1,
        description="`analytics` frames per second per connection (`rate_limited`)",
    )
    max_player_rate_hz: int | None = Field(
        None,
        ge=1,
        description="`analytics` frames per second per player, over all the player's "
        "connections to this gateway (`rate_limited`); unset: max_rate_hz",
    )
    telemetry_max_hz: float = Field(
        limits.TELEMETRY_MAX_HZ,
        gt=0,
        description="`telemetry` frames per second per connection; extra ones ignored",
    )
    hello_timeout_s: float = Field(5.0, gt=0, description="time allowed for the `hello` frame")

    # -- ingest queue and publisher -------------------------------------------------------
    queue_capacity: int = Field(
        5000,
        ge=1,
        description="events queued or awaiting a JetStream ack; beyond it, `backpressure`",
    )
    publish_timeout_s: float = Field(
        5.0, gt=0, description="JetStream ack wait per envelope before refusing it"
    )
    publish_max_inflight: int = Field(
        4000, ge=1, description="JetStream messages in flight on the connection (pipelining)"
    )
    group_window_s: float = Field(
        0.002,
        ge=0,
        le=0.1,
        description="group commit: envelopes queued within this window share one JetStream "
        "write (one fsync); 0 still groups whatever is queued at once",
    )
    group_max_bytes: int = Field(
        512 * 1024,
        ge=1024,
        description="group commit: most payload bytes in one JetStream write (keep under the "
        "NATS server's max_payload, 1 MiB by default)",
    )
    group_max_writes: int = Field(
        4,
        ge=1,
        le=64,
        description="group commit: JetStream writes awaiting their acknowledgement at once; "
        "envelopes arriving meanwhile join the next write",
    )
    queue_delay_target_s: float = Field(
        0.25,
        ge=0,
        le=10,
        description="admission by queueing delay: while the oldest envelope waiting for its "
        "JetStream write has waited longer, new ones are refused with `backpressure` "
        "(0: room in the queue alone decides)",
    )
    admission_wait_s: float = Field(
        0.0,
        ge=0,
        le=10,
        description="with the queue full, how long a session waits for room (not reading "
        "its socket) before refusing the envelope with `backpressure`; the wait adds to the "
        "latency of what is then taken",
    )
    retry_after_ms: int = Field(
        1000,
        ge=1,
        description="the longest `retry_after_ms` sent with `backpressure`; a full or standing "
        "queue sends about the time it needs to drain (at least 100 ms)",
    )
    drain_timeout_s: float = Field(
        15.0, gt=0, description="on SIGTERM, how long pending envelopes may take to be stored"
    )

    # -- circuit breaker (queue fill → client sampling multiplier) -------------------------
    breaker_threshold: float = Field(
        0.8, gt=0, le=1, description="queue fill above which the breaker starts counting"
    )
    breaker_hold_s: float = Field(30.0, ge=0, description="seconds over the threshold to trip")
    breaker_recover_below: float = Field(
        0.5, ge=0, le=1, description="queue fill below which the breaker recovers"
    )
    breaker_recover_hold_s: float = Field(
        10.0, ge=0, description="seconds under `breaker_recover_below` per recovery step"
    )
    breaker_step: float = Field(
        0.5, gt=0, lt=1, description="factor applied to the multiplier per trip"
    )
    breaker_floor: float = Field(
        0.125, gt=0, le=1, description="lowest multiplier the breaker pushes"
    )
    rules_grace_s: float = Field(
        5.0,
        ge=0,
        description="after a rules or multiplier change, how long the server-side guard also "
        "applies the previous rates (clients apply the change only when it reaches them)",
    )
    breaker_interval_s: float = Field(
        1.0, gt=0, description="how often the breaker reads the queue fill"
    )
    max_outbox_frames: int = Field(
        1024,
        ge=16,
        description="replies queued for a client that does not read them before its "
        "connection is aborted (bounds memory per connection)",
    )
    combat_window_s: float = Field(
        10.0,
        gt=0,
        description="a session sent a combat event this recently counts in "
        "analytics_players_in_combat (the operator's combat-load signal)",
    )

    # -- misc ------------------------------------------------------------------------------
    schemas_dir: Path | None = Field(
        None, description="folder holding the shipped schemas (default: beside the package)"
    )
    sampling_file: Path | None = Field(
        None, description="cold-start copy of the KV `sampling` value (the operator's ConfigMap)"
    )
    schemas_file: Path | None = Field(
        None, description="cold-start copy of the KV `schemas` value (the operator's ConfigMap)"
    )
    breaker_file: Path | None = Field(
        None,
        description="cold-start copy of the KV `breaker` value (SamplingPolicy.spec.breaker); "
        "it and the KV value override the breaker_* fields",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        parse_networks(value)
        return value

    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @model_validator(mode="after")
    def _proxy_protocol(self) -> GatewaySettings:
        if self.proxy_protocol and not self.trusted_networks():
            raise ValueError("proxy_protocol needs trusted_proxies (whose headers are read)")
        return self

    @model_validator(mode="after")
    def _token_keys(self) -> GatewaySettings:
        if self.jwt_secret is None and not self.jwt_public_keys_file and not self.jwt_jwks_url:
            raise ValueError(
                "jwt_secret, jwt_public_keys_file or jwt_jwks_url is required "
                "(how players' tokens are verified)"
            )
        return self

    def edge_keys(self) -> tuple[EdgeKeys, list[str]]:
        """The edge step's keys, and what to warn about (development secrets)."""
        return load_edge_keys(
            salt_secret=self.salt_secret.get_secret_value() if self.salt_secret else None,
            salt_secret_file=self.salt_secret_file,
            profile_secret=self.profile_secret.get_secret_value() if self.profile_secret else None,
            geoip_db=self.geoip_db,
        )

    def player_rate_hz(self) -> int:
        return self.max_player_rate_hz or self.max_rate_hz

    def breaker(self) -> BreakerConfig:
        return BreakerConfig(
            threshold=self.breaker_threshold,
            hold_s=self.breaker_hold_s,
            recover_below=min(self.breaker_recover_below, self.breaker_threshold),
            recover_hold_s=self.breaker_recover_hold_s,
            step=self.breaker_step,
            floor=self.breaker_floor,
        )
