"""What a pipeline's pods trust, and how they prove who they are: the gateways' token keys
(JWKS URL or PEM public keys from a Secret; required `iss` and `aud`), the proxies whose
client-address headers (or PROXY protocol header) count, and TLS to NATS and Postgres (CA,
client certificate). Pure: environment entries, volumes and mounts, and the Secrets read
(their digest rolls the pods).

Every `GAMEPLAY_ANALYTICS_*` variable here is a field of the gateway's or aggregator's
settings (tests/cluster/test_settings_contract.py). Postgres TLS uses libpq's own `PGSSLMODE`
and `PGSSLROOTCERT`, which asyncpg reads for every connection a process opens (aggregator,
nightly check, privacy Job alike); an `sslmode` in the DSN itself wins over them.
"""

from __future__ import annotations

from typing import Any

from gameplay_analytics.contract.natsnames import ENV_PREFIX
from gameplay_analytics.operator.naming import Pipeline

__all__ = [
    "JWT_KEYS_MOUNT",
    "NATS_TLS_MOUNT",
    "POSTGRES_TLS_MOUNT",
    "gateway_auth_env",
    "secret_refs",
    "tls_env",
    "volumes",
]

JWT_KEYS_MOUNT = "/var/run/secrets/jwt-keys"
NATS_TLS_MOUNT = "/var/run/secrets/nats-tls"
POSTGRES_TLS_MOUNT = "/var/run/secrets/postgres-tls"
_USES_NATS = ("gateway", "aggregator", "quality")
_USES_POSTGRES = ("aggregator", "quality", "daily-insights")


def _value(key: str, value: str) -> dict[str, Any]:
    return {"name": f"{ENV_PREFIX}{key}", "value": value}


def gateway_auth_env(pipeline: Pipeline) -> list[dict[str, Any]]:
    """How the gateways verify tokens. With `auth.jwksUrl` or `auth.publicKeysSecretRef` the
    HS256 secret is not given at all: a gateway holding both would accept both."""
    gateway = pipeline.spec.gateway
    auth = gateway.auth
    env: list[dict[str, Any]] = []
    if auth.jwks_url is not None:
        env.append(_value("JWT_JWKS_URL", auth.jwks_url))
    elif auth.public_keys_secret_ref is not None:
        path = f"{JWT_KEYS_MOUNT}/{auth.public_keys_secret_ref.key}"
        env.append(_value("JWT_PUBLIC_KEYS_FILE", path))
    else:
        ref = gateway.jwt_secret_ref
        secret = {"secretKeyRef": {"name": ref.name, "key": ref.key}}
        env.append({"name": f"{ENV_PREFIX}JWT_SECRET", "valueFrom": secret})
    if auth.issuer is not None:
        env.append(_value("JWT_ISSUER", auth.issuer))
    if auth.audience is not None:
        env.append(_value("JWT_AUDIENCE", auth.audience))
    if gateway.trusted_proxies:
        env.append(_value("TRUSTED_PROXIES", ",".join(gateway.trusted_proxies)))
    if gateway.proxy_protocol:
        env.append(_value("PROXY_PROTOCOL", "true"))
    return env


def tls_env(pipeline: Pipeline, component: str) -> list[dict[str, Any]]:
    """NATS TLS for the components that use NATS, Postgres TLS for those that use Postgres."""
    spec = pipeline.spec
    env: list[dict[str, Any]] = []
    nats = spec.nats.tls
    if nats is not None and component in _USES_NATS:
        env.append(_value("NATS_TLS_CA", f"{NATS_TLS_MOUNT}/{nats.ca_key}"))
        if nats.cert_key is not None and nats.key_key is not None:
            env.append(_value("NATS_TLS_CERT", f"{NATS_TLS_MOUNT}/{nats.cert_key}"))
            env.append(_value("NATS_TLS_KEY", f"{NATS_TLS_MOUNT}/{nats.key_key}"))
    postgres = spec.postgres.tls
    if postgres is not None and component in _USES_POSTGRES:
        env.append({"name": "PGSSLMODE", "value": postgres.sslmode})
        if postgres.ca_secret_ref is not None:
            root = f"{POSTGRES_TLS_MOUNT}/{postgres.ca_secret_ref.key}"
            env.append({"name": "PGSSLROOTCERT", "value": root})
    return env


def volumes(pipeline: Pipeline, component: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(volumeMount, volume) pairs: the Secrets above, mounted read-only."""
    spec = pipeline.spec
    mounted: list[tuple[str, str, str]] = []  # (volume name, Secret, mount path)
    keys = spec.gateway.auth.public_keys_secret_ref
    if component == "gateway" and keys is not None:
        mounted.append(("jwt-keys", keys.name, JWT_KEYS_MOUNT))
    if spec.nats.tls is not None and component in _USES_NATS:
        mounted.append(("nats-tls", spec.nats.tls.secret_name, NATS_TLS_MOUNT))
    ca = spec.postgres.tls.ca_secret_ref if spec.postgres.tls is not None else None
    if ca is not None and component in _USES_POSTGRES:
        mounted.append(("postgres-tls", ca.name, POSTGRES_TLS_MOUNT))
    return [
        (
            {"name": name, "mountPath": path, "readOnly": True},
            {"name": name, "secret": {"secretName": secret}},
        )
        for name, secret, path in mounted
    ]


def secret_refs(pipeline: Pipeline, component: str) -> list[str]:
    """The Secrets of `volumes` and `gateway_auth_env` a component reads."""
    names = [v["secret"]["secretName"] for _, v in volumes(pipeline, component)]
    if component == "gateway" and not pipeline.spec.gateway.auth.asymmetric:
        names.append(pipeline.spec.gateway.jwt_secret_ref.name)
    return names
