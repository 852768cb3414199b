"""Gateway pure parts: tokens, the sampling guard, settings names, KV value parsing."""

from __future__ import annotations

import json
import uuid

import pytest

from gameplay_analytics.contract.errors import ErrorCode, ProtocolError
from gameplay_analytics.contract.registry import released_schemas
from gameplay_analytics.privacy.consent import Consent
from gameplay_analytics.runtime.config import default_config, parse_sampling, parse_schemas
from gameplay_analytics.runtime.gateway import GatewaySettings, issue_token, verify_token
from gameplay_analytics.runtime.gateway.guard import SamplingGuard
from gameplay_analytics.runtime.gateway.telemetry import latency_bucket
from gameplay_analytics.sampling import hashing
from gameplay_analytics.sampling.compiled import CompiledRules

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
PLAYER = "5D3C2B1A-0F9E-4D8C-8B7A-6E5D4C3B2A10"


def test_token_round_trip_canonicalises_the_player() -> None:
    token = issue_token(PLAYER, secret=SECRET, shard="eu-1", region="eu")
    principal = verify_token(token, secret=SECRET)
    assert principal.player_uuid == PLAYER.lower()
    assert (principal.shard, principal.region) == ("eu-1", "eu")


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        (issue_token(PLAYER, secret=SECRET, ttl_s=-60), "token expired"),
        (issue_token(PLAYER, secret="another-secret-another-secret-another!"), "signature"),
        ("not.a.jwt", "invalid"),
    ],
)
def test_bad_tokens_are_unauthorized_without_echoing_the_player(token: str, detail: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        verify_token(token, secret=SECRET)
    assert caught.value.code is ErrorCode.UNAUTHORIZED
    assert detail in caught.value.detail and PLAYER.lower() not in caught.value.detail


def test_token_needs_exp_and_a_uuid_subject() -> None:
    import jwt

    no_exp = jwt.encode({"sub": PLAYER}, SECRET, algorithm="HS256")
    not_uuid = jwt.encode({"sub": "bob", "exp": 9_999_999_999}, SECRET, algorithm="HS256")
    for token in (no_exp, not_uuid):
        with pytest.raises(ProtocolError):
            verify_token(token, secret=SECRET)


def test_settings_read_the_documented_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "NATS_URL": "nats://n:4222", "JWT_SECRET": "s", "WS_HOST": "127.0.0.1", "WS_PORT": "9001",
        "METRICS_PORT": "9101", "QUEUE_CAPACITY": "42", "MAX_FRAME_BYTES": "4096",
        "MAX_EVENTS_PER_ENVELOPE": "50", "MAX_RATE_HZ": "5", "HELLO_TIMEOUT_S": "2",
        "SHARD": "eu-1", "SALT_SECRET": "pepper", "STREAM": "ANALYTICS_games_prod",
        "BREAKER_THRESHOLD": "0.9",
    }  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(f"GAMEPLAY_ANALYTICS_{key}", value)
    settings = GatewaySettings()
    assert settings.nats_url == "nats://n:4222" and settings.jwt_secret.get_secret_value() == "s"
    assert (settings.ws_port, settings.metrics_port, settings.queue_capacity) == (9001, 9101, 42)
    assert (settings.max_frame_bytes, settings.max_events_per_envelope) == (4096, 50)
    assert (settings.max_rate_hz, settings.hello_timeout_s, settings.shard) == (5, 2.0, "eu-1")
    assert settings.names().stream == "ANALYTICS_games_prod"
    assert settings.breaker().threshold == 0.9
    assert "pepper" not in repr(settings)


def test_settings_defaults_match_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEPLAY_ANALYTICS_JWT_SECRET", "s")
    settings = GatewaySettings()
    assert settings.ws_port == 8765 and settings.metrics_port == 9100
    assert settings.queue_capacity == 5000 and settings.max_frame_bytes == 256 * 1024
    assert settings.max_events_per_envelope == 500 and settings.max_rate_hz == 10
    assert settings.hello_timeout_s == 5.0


def guard(consent: Consent | None = None, multiplier: float = 1.0) -> SamplingGuard:
    return SamplingGuard(
        player_uuid=PLAYER, consent=consent or Consent(), rules=default_config().rules,
        multiplier=multiplier,
    )  # fmt: skip


def test_guard_matches_the_shared_hash() -> None:
    rules = default_config().rules
    for player in (str(uuid.uuid4()) for _ in range(50)):
        g = SamplingGuard(player_uuid=player, consent=Consent(), rules=rules, multiplier=1.0)
        reason, rate = g.decide("xp_gain", None, 0.0)
        assert rate == 0.3
        assert (reason is None) == hashing.keep(player, "commodity", rate=0.3)
        assert g.decide("loot_drop", None, 0.0) == (reason, rate)  # one cohort, one decision
        assert g.cohort("loot_drop") == "commodity"
        assert g.decide("engage_enemy", "boss", 0.0) == (None, 1.0)


def test_guard_opt_out_and_social_consent() -> None:
    assert guard(Consent(analytics=False)).decide("session_start", None, 0.0)[0] == "opt_out"
    no_social = guard(Consent(social=False))
    assert no_social.decide("chat_message", None, 0.0)[0] == "consent"
    assert no_social.decide("session_start", None, 0.0) == (None, 1.0)


def test_guard_uses_the_lower_rate_during_a_change() -> None:
    g = guard(multiplier=0.5)
    rules = default_config().rules
    assert g.decide("engage_enemy", "normal", 0.0)[1] == 0.25
    g.update(rules, 1.0, now=10.0, grace_s=5.0)
    assert g.decide("engage_enemy", "normal", 12.0)[1] == 0.25  # client may not have it yet
    assert g.decide("engage_enemy", "normal", 15.0)[1] == 0.5
    assert g.decide("engage_enemy", "boss", 12.0) == (None, 1.0)  # critical throughout
    assert g.decide("session_start", None, 12.0) == (None, 1.0)  # exempt throughout


def test_latency_buckets() -> None:
    assert latency_bucket(None) is None
    assert [latency_bucket(x) for x in (10, 60, 150, 300, 900)] == [
        "<50ms", "50-100ms", "100-200ms", "200-500ms", "500ms+",
    ]  # fmt: skip


def test_kv_values_parse() -> None:
    rules = default_config().rules
    wire = rules.to_wire()
    wire["heartbeat_rate"] = 0.2  # extra keys from the operator are ignored
    assert parse_sampling(json.dumps(wire).encode()) == rules
    base = released_schemas()
    registry = parse_schemas(b'{"accepted": ["1.0.0"]}', base=base, max_events=500)
    assert registry.versions == ["1.0.0"]
    assert parse_schemas(b'{"accepted": []}', base=base, max_events=500).validator("1.0.0") is None
    with pytest.raises(ValueError, match=r"9\.9\.9"):
        parse_schemas(b'{"accepted": ["9.9.9"]}', base=base, max_events=500)
    with pytest.raises(ValueError):
        parse_sampling(b'{"v": 2}')
    assert isinstance(rules, CompiledRules)
