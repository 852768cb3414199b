"""A cluster's NATS URL setting is comma-separated; nats.py wants a list (it refuses the
string with "invalid connect url option"), so every direct connect goes through servers()."""

from __future__ import annotations

from gameplay_analytics.runtime.jetstream import servers


def test_one_url() -> None:
    assert servers("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]


def test_a_cluster_list_with_spaces_and_a_trailing_comma() -> None:
    assert servers(" nats://a:4222, nats://u:p@b:4222 ,") == ["nats://a:4222", "nats://u:p@b:4222"]
