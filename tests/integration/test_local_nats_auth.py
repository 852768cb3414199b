"""`up` runs nats-server with auth on: each part logs in as its own least-privilege user, an
anonymous client is refused, and the tools acting on the stack (`--endpoints`) log in as
their role from the users file kept in the data dir."""

from __future__ import annotations

import datetime as dt
import json
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from gameplay_analytics import cli
from gameplay_analytics.contract import natsperms
from gameplay_analytics.contract.natsperms import Role
from gameplay_analytics.local import natsauth
from gameplay_analytics.local.stack import LocalStack, StackConfig

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root = Path(tmp_path_factory.mktemp("authstack"))
    with LocalStack(StackConfig(data_dir=root, jwt_secret="test-secret")) as running:
        yield running


def _connections(stack: LocalStack) -> dict[str, str]:
    """Client name -> the NATS user it logged in as (the server's own view)."""
    url = f"http://127.0.0.1:{stack.nats.monitor_port}/connz?auth=true"
    with urllib.request.urlopen(url, timeout=5) as reply:
        conns = json.loads(reply.read())["connections"] or []
    return {c.get("name", ""): c.get("authorized_user", "") for c in conns}


def test_each_part_logs_in_as_its_own_user(stack: LocalStack) -> None:
    users = _connections(stack)
    assert sorted(set(users.values())) == ["aggregator", "gateway"], users
    kept = stack.nats_users.path
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE((stack.nats.data_dir / "nats.conf").stat().st_mode) == 0o600
    endpoints = json.loads(stack.endpoints_path.read_text())
    assert endpoints["nats_users"] == str(kept)
    # PROTOCOL.md §4's nats_url works as given: the local admin's login, in an owner-only file
    assert endpoints["nats_url"] == stack.nats_url_as("admin")
    assert stat.S_IMODE(stack.endpoints_path.stat().st_mode) == 0o600


async def test_anonymous_and_other_roles_are_refused(stack: LocalStack) -> None:
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(stack.nats.url, connect_timeout=5, allow_reconnect=False)
    errors: list[str] = []

    async def collect(err: Exception) -> None:
        errors.append(str(err).lower())

    nc = await nats.connect(stack.nats_url_as(Role.REPLAY), error_cb=collect)
    try:
        await nc.publish("analytics.events", b"{}")  # replay may read events, never write
        await nc.flush()
        for _ in range(100):
            if errors:
                break
            await nc.flush()
    finally:
        await nc.close()
    assert any("permissions violation" in e and "analytics.events" in e for e in errors)


def test_tools_log_in_as_their_role_from_endpoints(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = str(stack.endpoints_path)
    refused_before = stack.nats.log_path.read_text().count("Violation")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rc = cli.main(["quality", "sessions", "--endpoints", endpoints, "--day", today])
    _, err = capsys.readouterr()
    assert rc in (0, 1) and "NATS at" not in err, err  # counted (0 sessions), not refused
    assert cli.main(["replay", "--from-stream", "--endpoints", endpoints]) == 0, (
        capsys.readouterr().err
    )
    player = "0f8fad5b-d9cb-469f-a165-70867728950e"
    erase = ["privacy", "erase", "--player", player, "--endpoints", endpoints]
    assert cli.main(erase) == 0, capsys.readouterr().err  # reads and erases the DLQ as privacy
    assert cli.main(["privacy", "scan", "--endpoints", endpoints]) == 0, capsys.readouterr()
    assert stack.nats.log_path.read_text().count("Violation") == refused_before


def test_users_file_keeps_passwords_across_restarts(tmp_path: Path) -> None:
    first = natsauth.LocalNatsUsers.load_or_create(tmp_path / natsauth.FILE_NAME)
    again = natsauth.LocalNatsUsers.load_or_create(tmp_path / natsauth.FILE_NAME)
    assert first.passwords == again.passwords
    assert set(first.passwords) == {natsauth.ADMIN, *(r.value for r in Role)}
    assert len(set(first.passwords.values())) == len(first.passwords)
    assert natsauth.password_of(first.path, "gateway") == first.passwords["gateway"]
    url = first.url("nats://127.0.0.1:4222,nats://127.0.0.1:4223", "replay")
    assert url.count("replay:") == 2
    assert natsperms.without_login(url) == "nats://127.0.0.1:4222,nats://127.0.0.1:4223"
