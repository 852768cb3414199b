"""Least-privilege NATS users against a real nats-server: each role does its own job with the
permissions `contract.natsperms` gives it, and the server refuses it everything else."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from gameplay_analytics.contract import natsperms
from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.contract.natsperms import Role
from gameplay_analytics.local.services import NatsServer
from gameplay_analytics.operator import natsconfig
from gameplay_analytics.runtime import jetstream, replay, stream_erasure
from gameplay_analytics.runtime.gateway import ledger

pytestmark = pytest.mark.integration

NAMES = PipelineNames.for_pipeline("games", "perm")  # a cluster pipeline's names, not defaults
OTHER = PipelineNames.for_pipeline("games", "other")  # another pipeline on the same NATS
_ADMIN = "admin"
_REFUSAL_WAIT_S = 3.0


class Secured:
    def __init__(self, server: NatsServer, passwords: dict[Role, str], admin: str) -> None:
        self.server, self.passwords, self.admin = server, passwords, admin

    def url(self, role: Role) -> str:
        return f"nats://{role.value}:{self.passwords[role]}@127.0.0.1:{self.server.port}"

    def admin_url(self) -> str:
        return f"nats://{_ADMIN}:{self.admin}@127.0.0.1:{self.server.port}"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    passwords = {role: secrets.token_urlsafe(12) for role in natsperms.ROLES}
    admin = secrets.token_urlsafe(12)
    block = natsperms.authorization_block(NAMES, passwords, extra_users={_ADMIN: admin})
    server = NatsServer(Path(tmp_path_factory.mktemp("perms")) / "nats", auth_config=block)
    server.start()
    try:
        yield Secured(server, passwords, admin)
    finally:
        server.stop()


class Refusals:
    """The errors the server sent a connection (permission violations arrive as -ERR)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def callback(self, err: Exception) -> None:
        self.errors.append(str(err))

    async def wait_for(self, subject: str) -> str:
        deadline = asyncio.get_running_loop().time() + _REFUSAL_WAIT_S
        while asyncio.get_running_loop().time() < deadline:
            for error in self.errors:
                if "permissions violation" in error.lower() and subject.lower() in error.lower():
                    return error
            await asyncio.sleep(0.02)
        raise AssertionError(f"not refused: {subject} (errors: {self.errors})")


async def _connect(url: str, refusals: Refusals | None = None) -> Client:
    options = {"error_cb": refusals.callback} if refusals else {}
    inbox = natsperms.inbox_prefix(natsperms.login_user(url))  # as every client of ours does
    return await nats.connect(
        url, connect_timeout=5, allow_reconnect=False, inbox_prefix=inbox, **options
    )


async def _provision(secured: Secured) -> None:
    """What the operator does, as the operator user: stream, buckets, the rules."""
    url = secured.url(Role.OPERATOR)
    settings = jetstream.NatsSettings(
        nats_url=url, stream=NAMES.stream, events_subject=NAMES.events_subject,
        dlq_subject=NAMES.dlq_subject, config_bucket=NAMES.config_bucket,
        sessions_bucket=NAMES.sessions_bucket,
    )  # fmt: skip
    await jetstream.provision(settings)
    await natsconfig.publish_config(url, {"sampling": '{"v": 1}'}, bucket=NAMES.config_bucket)
    assert await natsconfig.read_config(url, "sampling", bucket=NAMES.config_bucket) == b'{"v": 1}'


@pytest.fixture
async def provisioned(secured: Secured) -> AsyncIterator[Secured]:
    await _provision(secured)
    yield secured
    deleted = await natsconfig.delete_pipeline(
        secured.url(Role.OPERATOR), NAMES, owner="never-the-owner"
    )
    assert deleted == []  # not its mark: nothing deleted; the admin cleans up
    nc = await _connect(secured.admin_url())
    try:
        js = nc.jetstream()
        for stream in (NAMES.stream, f"KV_{NAMES.config_bucket}", f"KV_{NAMES.sessions_bucket}"):
            await js.delete_stream(stream)
    finally:
        await nc.close()


async def test_each_role_does_its_own_job(provisioned: Secured) -> None:
    secured, refusals = provisioned, Refusals()
    # gateway: verify, publish with ack, watch the rules, record a session
    nc = await _connect(secured.url(Role.GATEWAY), refusals)
    js = nc.jetstream()
    await jetstream.verify(js, NAMES, url="test")
    ack = await js.publish(NAMES.events_subject, b'{"player_uuid": "p-1"}')
    assert ack.stream == NAMES.stream
    # the events it refuses go to the DLQ from the gateway itself (runtime/gateway/intake.py)
    await js.publish(NAMES.dlq_subject, b'{"source": "gateway", "reason": "invalid_event"}')
    watcher = await (await js.key_value(NAMES.config_bucket)).watchall()
    entry = await watcher.updates(timeout=5)
    assert entry is not None and entry.value == b'{"v": 1}'
    await watcher.stop()
    sessions = ledger.SessionLedger(NAMES.sessions_bucket)
    await sessions.attach(js)
    sessions.record("s-1", kept=True)
    await sessions.drain()
    await nc.close()

    # aggregator: its durable consumer, fetch + ack, lag, a dead letter, the rules
    nc = await _connect(secured.url(Role.AGGREGATOR), refusals)
    js = nc.jetstream()
    await jetstream.verify(js, NAMES, url="test")
    sub = await js.pull_subscribe(NAMES.events_subject, durable=NAMES.consumer, stream=NAMES.stream)
    [msg] = await sub.fetch(1, timeout=5)
    await msg.ack_sync()
    assert (await sub.consumer_info()).num_ack_pending == 0
    oldest = await js.get_msg(NAMES.stream, seq=1, subject=NAMES.events_subject, next=True)
    assert oldest.seq == 1
    await js.publish(NAMES.dlq_subject, b'{"player_uuid": "p-1", "reason": "test"}')
    watcher = await (await js.key_value(NAMES.config_bucket)).watchall()
    assert (await watcher.updates(timeout=5)) is not None
    await watcher.stop()
    await nc.close()

    # replay: reads the events through its own consumer
    read = [
        data
        async for _, data in replay.from_stream(
            secured.url(Role.REPLAY), stream=NAMES.stream, subject=NAMES.events_subject
        )
    ]
    assert read == [b'{"player_uuid": "p-1"}']

    # quality: counts the day's sessions in the gateways' ledger
    nc = await _connect(secured.url(Role.QUALITY), refusals)
    today = dt.datetime.now(dt.UTC).date()
    assert await ledger.count_sessions(nc.jetstream(), today, bucket=NAMES.sessions_bucket) == 1
    await nc.close()

    # privacy: finds the player's dead letter and erases it
    nc = await _connect(secured.url(Role.PRIVACY), refusals)
    js = nc.jetstream()
    match = stream_erasure.PlayerMatch(player_uuid="p-1", player_ids=[])
    hits = await stream_erasure.find_messages(
        js, stream=NAMES.stream, subject=NAMES.dlq_subject, match=match
    )
    assert len(hits) == 1
    sequences = [seq for seq, _ in hits]
    assert await stream_erasure.delete_messages(js, stream=NAMES.stream, sequences=sequences) == 1
    await nc.close()
    assert refusals.errors == []


# (role, "pub" or "sub", subject): each must be refused by the server
REFUSED = [
    (Role.GATEWAY, "sub", NAMES.events_subject),  # read the events it publishes
    (Role.GATEWAY, "pub", f"$KV.{NAMES.config_bucket}.sampling"),  # write the rules
    (Role.GATEWAY, "pub", f"$JS.API.STREAM.DELETE.{NAMES.stream}"),
    (Role.GATEWAY, "pub", f"$JS.API.STREAM.MSG.GET.{NAMES.stream}"),
    (Role.GATEWAY, "pub", f"$JS.API.CONSUMER.MSG.NEXT.{NAMES.stream}.{NAMES.consumer}"),
    (Role.GATEWAY, "pub", OTHER.events_subject),  # another pipeline's
    (Role.AGGREGATOR, "pub", NAMES.events_subject),  # forge events
    (Role.AGGREGATOR, "sub", NAMES.events_subject),
    (Role.AGGREGATOR, "pub", f"$JS.API.STREAM.DELETE.{NAMES.stream}"),
    (Role.AGGREGATOR, "pub", f"$JS.API.STREAM.PURGE.{NAMES.stream}"),
    (Role.AGGREGATOR, "pub", f"$KV.{NAMES.config_bucket}.sampling"),
    (Role.AGGREGATOR, "pub", f"$JS.API.CONSUMER.CREATE.{NAMES.stream}.x.{NAMES.dlq_subject}"),
    (Role.AGGREGATOR, "pub", f"$JS.API.CONSUMER.MSG.NEXT.{OTHER.stream}.{OTHER.consumer}"),
    (Role.OPERATOR, "pub", NAMES.events_subject),
    (Role.OPERATOR, "sub", NAMES.events_subject),
    (Role.OPERATOR, "pub", f"$JS.API.CONSUMER.MSG.NEXT.{NAMES.stream}.{NAMES.consumer}"),
    (Role.OPERATOR, "pub", f"$JS.API.STREAM.DELETE.{OTHER.stream}"),
    (Role.REPLAY, "pub", f"$JS.API.CONSUMER.MSG.NEXT.{NAMES.stream}.{NAMES.consumer}"),
    (Role.REPLAY, "pub", f"$JS.API.CONSUMER.CREATE.{NAMES.stream}.{NAMES.consumer}.x"),
    (Role.REPLAY, "pub", f"$JS.API.CONSUMER.CREATE.{NAMES.stream}.x.{NAMES.dlq_subject}"),
    (Role.REPLAY, "pub", f"$JS.API.STREAM.MSG.DELETE.{NAMES.stream}"),
    (Role.REPLAY, "pub", NAMES.events_subject),
    (Role.PRIVACY, "pub", f"$JS.API.CONSUMER.MSG.NEXT.{NAMES.stream}.{NAMES.consumer}"),
    (Role.PRIVACY, "pub", f"$JS.API.STREAM.DELETE.{NAMES.stream}"),
    (Role.PRIVACY, "pub", f"$JS.API.STREAM.PURGE.{NAMES.stream}"),
    (Role.PRIVACY, "pub", f"$KV.{NAMES.config_bucket}.sampling"),
    (Role.QUALITY, "pub", f"$KV.{NAMES.sessions_bucket}.x"),
    (Role.QUALITY, "pub", f"$JS.API.CONSUMER.CREATE.{NAMES.stream}.x.{NAMES.events_subject}"),
    (Role.QUALITY, "sub", ">"),
    (Role.GATEWAY, "sub", "_INBOX.>"),  # the shared inboxes: other clients' replies
    (Role.REPLAY, "sub", "_INBOX_privacy.>"),  # the DLQ a privacy run pulls
    (Role.GATEWAY, "sub", "_INBOX_aggregator.>"),
]


@pytest.mark.parametrize(
    ("role", "kind", "subject"), REFUSED, ids=[f"{r}-{k}-{s}" for r, k, s in REFUSED]
)
async def test_everything_else_is_refused(
    secured: Secured, role: Role, kind: str, subject: str
) -> None:
    refusals = Refusals()
    nc = await _connect(secured.url(role), refusals)
    try:
        if kind == "sub":
            await nc.subscribe(subject)
        else:
            await nc.publish(subject, b"{}")
        await nc.flush()
        error = await refusals.wait_for(subject)
        assert ("subscription" if kind == "sub" else "publish") in error.lower()
    finally:
        await nc.close()


async def test_refused_calls_change_nothing(provisioned: Secured) -> None:
    """The outcome a user cares about: the gateway cannot rewrite the rules, the aggregator
    cannot delete the stream; both still exist, unchanged."""
    secured = provisioned
    for role, subject in (
        (Role.GATEWAY, f"$KV.{NAMES.config_bucket}.sampling"),
        (Role.AGGREGATOR, f"$JS.API.STREAM.DELETE.{NAMES.stream}"),
    ):
        refusals = Refusals()
        nc = await _connect(secured.url(role), refusals)
        await nc.publish(subject, b'{"v": "forged"}')
        await nc.flush()
        await refusals.wait_for(subject)
        await nc.close()
    url = secured.url(Role.OPERATOR)
    assert await natsconfig.read_config(url, "sampling", bucket=NAMES.config_bucket) == b'{"v": 1}'
    nc = await _connect(url)
    try:
        assert (await nc.jetstream().stream_info(NAMES.stream)).config.name == NAMES.stream
    finally:
        await nc.close()


async def test_anonymous_and_wrong_password_are_refused(secured: Secured) -> None:
    for url in (
        secured.server.url,
        f"nats://gateway:wrong@127.0.0.1:{secured.server.port}",
    ):
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await _connect(url)


def test_the_rendered_snippet_is_a_valid_server_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nats-permissions --pipeline` output, pasted under a listen line, passes `nats-server -t`
    once the password variables are set (and names the missing one otherwise)."""
    import shutil
    import subprocess
    import sys

    from gameplay_analytics import cli

    example = Path(__file__).parents[2] / "examples" / "analyticspipeline-full.yaml"
    assert cli.main(["nats-permissions", "--pipeline", str(example)]) == 0
    conf = tmp_path / "nats.conf"
    conf.write_text('listen: "127.0.0.1:-1"\n' + capsys.readouterr().out)
    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or "nats-server"
    refused = subprocess.run([binary, "-c", str(conf), "-t"], capture_output=True, text=True)
    assert refused.returncode != 0 and "_GATEWAY_PASSWORD" in refused.stderr
    for variable in natsperms.password_variables("default-production").values():
        # a letter first, as the snippet's note says (digits alone read as a number or date)
        monkeypatch.setenv(variable.removeprefix("$"), "p" + secrets.token_urlsafe(8))
    valid = subprocess.run([binary, "-c", str(conf), "-t"], capture_output=True, text=True)
    assert valid.returncode == 0, valid.stderr
