"""The local stack's NATS users: one per component (`contract.natsperms`) plus a local-only
`admin`, with passwords generated once and kept in the data dir (`nats-users.json`, 0600).

`up` writes them into its nats-server's `authorization` block, hands each process its own
user through `GAMEPLAY_ANALYTICS_NATS_USER`/`…_NATS_PASSWORD`, and lists the file in
endpoints.json (`nats_users`) so that the tools acting on a running stack (`replay`,
`privacy`, `quality` with `--endpoints`) log in as their role. The admin user may do anything:
it exists for tests and for a person poking at a laptop stack, never in a cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import urllib.parse
from pathlib import Path

from gameplay_analytics.contract import natsperms
from gameplay_analytics.contract.natsnames import ENV_PREFIX, PipelineNames
from gameplay_analytics.contract.natsperms import Role

__all__ = ["ADMIN", "FILE_NAME", "LocalNatsUsers", "login_url", "password_of"]

ADMIN = "admin"
FILE_NAME = "nats-users.json"
_PASSWORD_BYTES = 24


@dataclasses.dataclass(frozen=True, slots=True)
class LocalNatsUsers:
    """User name -> password, for every role and the admin."""

    path: Path
    passwords: dict[str, str]

    @classmethod
    def load_or_create(cls, path: Path) -> LocalNatsUsers:
        """The users kept at `path`; missing ones (a new role, a new data dir) are generated
        and the file rewritten, owner-only, so a restarted stack keeps its passwords."""
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError):
            kept = {}
        wanted = [ADMIN, *(role.value for role in natsperms.ROLES)]
        passwords = {
            user: kept[user]
            if isinstance(kept.get(user), str)
            else secrets.token_urlsafe(_PASSWORD_BYTES)
            for user in wanted
        }
        if passwords != kept:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(passwords, out, indent=2)
            path.chmod(0o600)
        return cls(path, passwords)

    def authorization(self, names: PipelineNames) -> str:
        """The nats.conf block: each role with its permissions on `names`, and the admin."""
        return natsperms.authorization_block(
            names,
            {role: self.passwords[role.value] for role in natsperms.ROLES},
            extra_users={ADMIN: self.passwords[ADMIN]},
        )

    def env(self, role: Role) -> dict[str, str]:
        """The settings that make a process log in as `role`."""
        return {
            f"{ENV_PREFIX}NATS_USER": role.value,
            f"{ENV_PREFIX}NATS_PASSWORD": self.passwords[role.value],
        }

    def url(self, server_url: str, user: str) -> str:
        """`server_url` with `user`'s credentials in it (what nats.py reads from a URL)."""
        return login_url(server_url, user, self.passwords[user])


def password_of(path: Path, user: str) -> str | None:
    """`user`'s password in a users file that `up` wrote; None when it has none."""
    try:
        found = json.loads(path.read_text()).get(user)
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def login_url(server_url: str, user: str, password: str) -> str:
    """`nats://user:password@host:port`, for each comma-separated server of `server_url`."""
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    servers = []
    for server in server_url.split(","):
        parts = urllib.parse.urlsplit(server.strip())
        host = parts.netloc.rsplit("@", 1)[-1]
        servers.append(urllib.parse.urlunsplit(parts._replace(netloc=f"{quoted}@{host}")))
    return ",".join(servers)
