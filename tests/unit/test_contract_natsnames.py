"""The NATS names of a pipeline: today's names by default, distinct names per pipeline."""

from __future__ import annotations

import itertools

import pytest

from gameplay_analytics.contract import messages, natsnames
from gameplay_analytics.contract.natsnames import PipelineNames


def test_defaults_are_the_local_stacks_names() -> None:
    names = PipelineNames()
    assert (names.stream, names.events_subject, names.dlq_subject) == (
        "ANALYTICS",
        "analytics.events",
        "analytics.dlq",
    )
    assert (names.config_bucket, names.consumer) == ("analytics-config", "aggregator")
    assert (names.stream, names.config_bucket) == (messages.STREAM, messages.KV_BUCKET)


def test_pipelines_never_share_a_name() -> None:
    # namespaces and names chosen to trip a naive separator ("a-b"/"c" vs "a"/"b-c"), dots too
    pairs = [("a-b", "c"), ("a", "b-c"), ("a", "b.c"), ("a", "b"), ("ab", "c"), ("a", "bc")]
    derived = [PipelineNames.for_pipeline(ns, name) for ns, name in pairs]
    for one, other in itertools.combinations(derived, 2):
        assert one.stream != other.stream
        assert one.config_bucket != other.config_bucket
        assert one.sessions_bucket != other.sessions_bucket  # the nightly check's ledger too
        assert not set(one.subjects()) & set(other.subjects())
    assert all(d.stream != PipelineNames().stream for d in derived)
    assert all(d.sessions_bucket != messages.SESSIONS_BUCKET for d in derived)


def test_env_carries_every_name_and_the_gateway_has_no_consumer() -> None:
    names = PipelineNames.for_pipeline("games", "prod")
    env = names.env()
    assert set(env) == set(natsnames.ENV_VARS.values())
    assert env["STREAM"] == "ANALYTICS_games_prod"
    assert env["SESSIONS_BUCKET"] == "analytics-sessions_games_prod"
    assert "CONSUMER_NAME" not in names.env(with_consumer=False)


@pytest.mark.parametrize(
    "override",
    [
        {"stream": "has.dot"},
        {"stream": "has space"},
        {"config_bucket": "a*"},
        {"events_subject": "analytics.>"},
        {"dlq_subject": "analytics.events"},
        {"consumer": ""},
    ],
)
def test_bad_names_are_refused_with_the_field_named(override: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(override)).split("_")[0]):
        PipelineNames(**override)
