"""Public keys of the players' tokens: PEM keys and a JWKS URL (cached, refreshed, rotated).

A game's login service signs tokens with its private key and publishes the public half, as a
PEM file handed to the SRE or as a JWKS document at a URL. The JWKS is fetched at the first
token, kept `refresh_s`, and fetched again early (at most every `min_refetch_s`) when a token
names a `kid` it does not hold: a new key published next to the old one (rotation with
overlap) is taken up at its first token, and the old one keeps working while it is published.
A failed fetch keeps the keys already held.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

__all__ = ["ASYMMETRIC_ALGORITHMS", "KeyRing", "PublicKey", "load_pem_keys"]

log = logging.getLogger(__name__)

PublicKey = RSAPublicKey | EllipticCurvePublicKey

ASYMMETRIC_ALGORITHMS: dict[str, type[RSAPublicKey] | type[EllipticCurvePublicKey]] = {
    "RS256": RSAPublicKey,
    "ES256": EllipticCurvePublicKey,
}
"""The signature algorithms accepted with a public key, and the key type each needs."""

_PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)
_FETCH_TIMEOUT_S = 5.0


def load_pem_keys(path: Path) -> list[PublicKey]:
    """Every `PUBLIC KEY` block of a PEM file (several: rotation with overlap); ValueError for
    a file holding none or a key that is neither RSA nor EC."""
    keys: list[PublicKey] = []
    for block in _PEM_BLOCK.findall(path.read_bytes()):
        key = load_pem_public_key(block)
        if not isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
            raise ValueError(f"{path}: only RSA and EC public keys are accepted")
        keys.append(key)
    if not keys:
        raise ValueError(f"{path}: no `-----BEGIN PUBLIC KEY-----` block")
    return keys


class KeyRing:
    """The public keys a token may be verified with: fixed PEM keys plus a JWKS URL's keys."""

    def __init__(
        self,
        pem_keys: Sequence[PublicKey] = (),
        *,
        jwks_url: str | None = None,
        refresh_s: float = 300.0,
        min_refetch_s: float = 10.0,
    ) -> None:
        self._pem = list(pem_keys)
        self._url = jwks_url
        self._refresh_s = refresh_s
        self._min_refetch_s = min_refetch_s
        self._jwks: dict[str, tuple[str | None, PublicKey]] = {}  # kid -> (alg, key)
        self._fetched_at: float | None = None  # monotonic, last attempt
        self._lock = asyncio.Lock()

    async def candidates(self, algorithm: str, kid: str | None) -> list[PublicKey]:
        """Keys of `algorithm`'s type that may have signed a token naming `kid`."""
        wanted = ASYMMETRIC_ALGORITHMS.get(algorithm)
        if wanted is None:
            return []
        if self._url is not None:
            age = None if self._fetched_at is None else time.monotonic() - self._fetched_at
            unknown = kid is not None and kid not in self._jwks
            if age is None or age >= self._refresh_s or (unknown and age >= self._min_refetch_s):
                await self._refresh()
        found: list[PublicKey] = []
        for key_id, (alg, key) in self._jwks.items():
            if (kid is None or key_id == kid) and alg in (None, algorithm):
                found.append(key)
        found.extend(self._pem)
        return [key for key in found if isinstance(key, wanted)]

    async def _refresh(self) -> None:
        async with self._lock:
            started = time.monotonic()
            if self._fetched_at is not None and started - self._fetched_at < self._min_refetch_s:
                return  # another token refreshed it meanwhile
            self._fetched_at = started
            assert self._url is not None
            try:
                timeout = aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_S)
                async with (
                    aiohttp.ClientSession(timeout=timeout) as http,
                    http.get(self._url) as response,
                ):
                    response.raise_for_status()
                    document = await response.json(content_type=None)
                self._jwks = _parse_jwks(document)
            except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as err:
                log.warning("JWKS %s not refreshed (keeping %d keys): %s",
                            self._url, len(self._jwks), err)  # fmt: skip


def _parse_jwks(document: object) -> dict[str, tuple[str | None, PublicKey]]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no `keys` list)")
    keys: dict[str, tuple[str | None, PublicKey]] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            jwk = jwt.PyJWK.from_dict(entry)
        except jwt.PyJWTError:
            continue  # a key type or curve this gateway does not verify with
        key = jwk.key
        if isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
            alg = entry.get("alg")
            keys[str(entry.get("kid", len(keys)))] = (alg if isinstance(alg, str) else None, key)
    return keys
