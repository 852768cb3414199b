"""AnalyticsPipeline: how the gateways verify players' tokens and whose client-address headers
they trust (`gateway.auth`, `gateway.trustedProxies`), and TLS to NATS and Postgres
(`nats.tls`, `postgres.tls`). Each field maps to one gateway/aggregator setting."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from gameplay_analytics.operator.models.base import Spec, cel_rules
from gameplay_analytics.operator.models.refs import SecretKeyRef

__all__ = ["GatewayAuthSpec", "NatsTLSSpec", "PostgresTLSSpec"]


class GatewayAuthSpec(Spec):
    """Production token verification: RS256/ES256 from a JWKS URL or PEM public keys. With
    either set, the HS256 `jwtSecretRef` is no longer given to the gateways (it is for
    development only, and a gateway given both would accept both)."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!(has(self.jwksUrl) && has(self.publicKeysSecretRef))",
                "set jwksUrl or publicKeysSecretRef, not both",
            )
        )
    )

    jwks_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        max_length=2048,
        description="JWKS URL of the login service's public keys (RS256/ES256)",
    )
    public_keys_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="or a Secret key holding PEM public keys (several while keys rotate)",
    )
    issuer: str | None = Field(
        default=None, min_length=1, max_length=512, description="required `iss` claim"
    )
    audience: str | None = Field(
        default=None, min_length=1, max_length=512, description="required `aud` claim"
    )

    @property
    def asymmetric(self) -> bool:
        return self.jwks_url is not None or self.public_keys_secret_ref is not None


class NatsTLSSpec(Spec):
    """TLS to NATS (use a tls:// URL): the CA that signed the server's certificate, and a
    client certificate when the server verifies clients. One Secret, mounted read-only."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            ("has(self.certKey) == has(self.keyKey)", "set certKey and keyKey together")
        )
    )

    secret_name: str = Field(
        min_length=1, max_length=253, description="Secret with the CA (and client cert/key)"
    )
    ca_key: str = Field(default="ca.crt", min_length=1, description="key of the CA bundle")
    cert_key: str | None = Field(
        default=None, min_length=1, description="key of the client certificate (mutual TLS)"
    )
    key_key: str | None = Field(
        default=None, min_length=1, description="key of the client private key (mutual TLS)"
    )


class PostgresTLSSpec(Spec):
    """TLS to Postgres: libpq's sslmode, and the CA to verify the server with."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "!(self.sslmode in ['verify-ca', 'verify-full']) || has(self.caSecretRef)",
                "sslmode verify-ca and verify-full need caSecretRef",
            )
        )
    )

    sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = Field(
        default="verify-full", description="libpq sslmode"
    )
    ca_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the CA bundle (sslrootcert)"
    )
