"""How a command acting on a pipeline's stores logs in to NATS (`commands.stores.nats_login`):
as its role from `up`'s users file, else from `…_NATS_USER`/`…_NATS_PASSWORD` (a Job's Secret),
else anonymously."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gameplay_analytics.commands import stores

URL = "nats://127.0.0.1:4222"


def test_the_local_stack_users_file_gives_the_roles_password(tmp_path: Path) -> None:
    users = tmp_path / "nats-users.json"
    users.write_text(json.dumps({"replay": "r-pw", "privacy": "p-pw"}))
    found = {"nats_url": URL, "nats_users": str(users)}
    assert stores.nats_login(URL, found, "replay") == "nats://replay:r-pw@127.0.0.1:4222"
    with pytest.raises(stores.Refused, match="no NATS user 'quality'"):
        stores.nats_login(URL, found, "quality")


def test_a_jobs_env_gives_its_user_else_the_url_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAMEPLAY_ANALYTICS_NATS_USER", raising=False)
    monkeypatch.delenv("GAMEPLAY_ANALYTICS_NATS_PASSWORD", raising=False)
    assert stores.nats_login(URL, {}, "privacy") == URL
    assert stores.nats_login(None, {}, "privacy") is None
    monkeypatch.setenv("GAMEPLAY_ANALYTICS_NATS_USER", "games-p-privacy")
    monkeypatch.setenv("GAMEPLAY_ANALYTICS_NATS_PASSWORD", "pw")
    login = stores.nats_login(f"{URL},nats://127.0.0.1:4223", {}, "privacy")
    assert (
        login == "nats://games-p-privacy:pw@127.0.0.1:4222,nats://games-p-privacy:pw@127.0.0.1:4223"
    )
