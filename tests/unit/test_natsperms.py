"""The least-privilege lists, decided without a server: who may publish what, and the
rendered nats.conf block (the real server checks the same in tests/integration)."""

from __future__ import annotations

import pytest

from gameplay_analytics.contract import natsperms
from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.contract.natsperms import Role

NAMES = PipelineNames.for_pipeline("games", "ctf")
OTHER = PipelineNames.for_pipeline("games", "ctf2")
NEXT_DURABLE = f"$JS.API.CONSUMER.MSG.NEXT.{NAMES.stream}.{NAMES.consumer}"


def perms(role: Role) -> natsperms.Permissions:
    return natsperms.permissions(role, NAMES)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        ("a.*.c", "a.b.d", False),
        ("a.b", "a.b.c", False),
    ],
)
def test_subject_matching(pattern: str, subject: str, expected: bool) -> None:
    assert natsperms.matches(pattern, subject) is expected


def test_who_may_publish_events_and_dead_letters() -> None:
    events = {role for role in Role if perms(role).may_publish(NAMES.events_subject)}
    dlq = {role for role in Role if perms(role).may_publish(NAMES.dlq_subject)}
    # privacy publishes a shared bundle again without the erased player's events
    assert events == {Role.GATEWAY, Role.PRIVACY}
    # the gateway dead-letters the events it refuses, the aggregator the ones it cannot store
    assert dlq == {Role.GATEWAY, Role.AGGREGATOR, Role.PRIVACY}


def test_only_the_aggregator_pulls_from_or_redefines_its_durable_consumer() -> None:
    create = f"$JS.API.CONSUMER.CREATE.{NAMES.stream}.{NAMES.consumer}.{NAMES.events_subject}"
    assert {r for r in Role if perms(r).may_publish(NEXT_DURABLE)} == {Role.AGGREGATOR}
    assert {r for r in Role if perms(r).may_publish(create)} == {Role.AGGREGATOR}
    assert {
        r for r in Role if perms(r).may_publish(f"$JS.ACK.{NAMES.stream}.{NAMES.consumer}.1")
    } == {Role.AGGREGATOR}
    # the tools' own (randomly named) consumers, on their subjects only
    mine = f"$JS.API.CONSUMER.CREATE.{NAMES.stream}.Xy12.{NAMES.events_subject}"
    dlq = f"$JS.API.CONSUMER.CREATE.{NAMES.stream}.Xy12.{NAMES.dlq_subject}"
    assert perms(Role.REPLAY).may_publish(mine) and not perms(Role.REPLAY).may_publish(dlq)
    assert perms(Role.PRIVACY).may_publish(mine) and perms(Role.PRIVACY).may_publish(dlq)


def test_only_the_operator_changes_the_stream_and_the_rules() -> None:
    for subject in (
        f"$JS.API.STREAM.DELETE.{NAMES.stream}",
        f"$JS.API.STREAM.UPDATE.{NAMES.stream}",
        f"$KV.{NAMES.config_bucket}.sampling",
        f"$JS.API.STREAM.DELETE.KV_{NAMES.config_bucket}",
    ):
        assert {r for r in Role if perms(r).may_publish(subject)} == {Role.OPERATOR}, subject
    purge = f"$JS.API.STREAM.PURGE.{NAMES.stream}"
    assert not any(perms(r).may_publish(purge) for r in Role)


def test_no_role_reaches_another_pipeline_or_subscribes_outside_its_inbox() -> None:
    others = [
        OTHER.events_subject,
        OTHER.dlq_subject,
        f"$JS.API.STREAM.INFO.{OTHER.stream}",
        f"$JS.API.STREAM.DELETE.{OTHER.stream}",
        f"$JS.API.CONSUMER.MSG.NEXT.{OTHER.stream}.{OTHER.consumer}",
        f"$KV.{OTHER.config_bucket}.sampling",
        f"$KV.{OTHER.sessions_bucket}.x",
    ]
    for role in Role:
        assert not [s for s in others if perms(role).may_publish(s)], role
        assert perms(role).subscribe == (f"_INBOX_{role.value}.>",)
        assert not perms(role).may_subscribe(NAMES.events_subject)
        assert not perms(role).may_subscribe("_INBOX.x")  # nobody else's replies


def test_rendered_block_names_each_user_and_reads_passwords_from_variables() -> None:
    block = natsperms.authorization_block(
        NAMES,
        natsperms.password_variables("games-ctf"),
        users=natsperms.user_names("games-ctf"),
    )
    assert block.startswith("authorization {")
    for role in Role:
        assert f'user: "games-ctf-{role.value}"' in block
        assert f"password: $GAMES_CTF_{role.value.upper()}_PASSWORD," in block
    assert '"deny": ["$JS.API.CONSUMER.CREATE.' in block


def test_literal_passwords_are_quoted_and_the_admin_is_unrestricted() -> None:
    block = natsperms.authorization_block(
        NAMES, {Role.GATEWAY: 'p"w'}, extra_users={"admin": "s3cret"}
    )
    assert 'password: "p\\"w"' in block
    assert '{user: "admin", password: "s3cret"}' in block
    assert "aggregator" not in block


def test_each_user_has_its_own_inboxes() -> None:
    assert natsperms.inbox_prefix(None) == "_INBOX"
    assert natsperms.inbox_prefix("games-ctf-gateway") == "_INBOX_games-ctf-gateway"
    assert natsperms.inbox_prefix("a.b c>") == "_INBOX_a_b_c_"  # one subject token
    mine = natsperms.permissions(Role.GATEWAY, NAMES, user="games-ctf-gateway")
    assert mine.may_subscribe("_INBOX_games-ctf-gateway.abc.1")
    assert not mine.may_subscribe("_INBOX_games-ctf-aggregator.abc.1")
    assert natsperms.login_user("nats://replay:pw@127.0.0.1:4222,nats://x:y@h:1") == "replay"
    assert natsperms.login_user("nats://127.0.0.1:4222") is None
    assert natsperms.login_user("nats://s3cret-token@127.0.0.1:4222") is None
