"""Decentralised NATS auth for tests: an operator, an account with JetStream and a user, as
the JWTs and the `.creds` file `nsc` would make (NATS ADR-6/ADR-1 shapes, ed25519 nkeys)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time

import nkeys

__all__ = ["Credentials", "make_credentials"]


@dataclasses.dataclass(frozen=True)
class Credentials:
    server_config: str  # the nats.conf lines: operator, memory resolver, the account preloaded
    creds: str  # the user's .creds file


def make_credentials() -> Credentials:
    operator, account, system, user = (
        _keypair(nkeys.PREFIX_BYTE_OPERATOR),
        _keypair(nkeys.PREFIX_BYTE_ACCOUNT),
        _keypair(nkeys.PREFIX_BYTE_ACCOUNT),
        _keypair(nkeys.PREFIX_BYTE_USER),
    )
    unlimited = {"subs": -1, "data": -1, "payload": -1}
    operator_jwt = _jwt(operator, operator, "operator", {"type": "operator", "version": 2})
    account_jwt = _jwt(
        operator, account, "analytics", {
            "type": "account", "version": 2,
            "limits": {**unlimited, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
                       "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1,
                       "consumer": -1},
        },
    )  # fmt: skip
    system_jwt = _jwt(operator, system, "SYS", {"type": "account", "version": 2})
    user_jwt = _jwt(
        account, user, "pipeline", {"type": "user", "version": 2, "pub": {}, "sub": {}, **unlimited}
    )
    account_pub, system_pub = account.public_key.decode(), system.public_key.decode()
    config = (
        f"operator: {operator_jwt}\nsystem_account: {system_pub}\nresolver: MEMORY\n"
        f"resolver_preload: {{\n  {account_pub}: {account_jwt}\n  {system_pub}: {system_jwt}\n}}\n"
    )
    creds = (
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )
    return Credentials(server_config=config, creds=creds)


def _keypair(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(issuer: nkeys.KeyPair, subject: nkeys.KeyPair, name: str, nats: dict[str, object]) -> str:
    claims = {
        "jti": _b64(os.urandom(32)),
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject.public_key.decode(),
        "nats": nats,
    }
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = issuer.sign(f"{header}.{body}".encode())
    return f"{header}.{body}.{_b64(signature)}"
