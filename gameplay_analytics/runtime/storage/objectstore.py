"""The warm store's filesystem: a local folder or an S3/MinIO prefix, through pyarrow.

Credentials for S3 come from the standard AWS environment variables (or the instance's
role); only the endpoint (MinIO, moto) and the region are configuration of ours.
"""

from __future__ import annotations

import dataclasses
import os
from urllib.parse import urlparse

from pyarrow import fs as pafs

__all__ = ["ObjectRoot", "open_root"]

# Bounds on every S3 call, so an unreachable endpoint fails a check instead of hanging it.
S3_CONNECT_TIMEOUT_S = 5.0
S3_REQUEST_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectRoot:
    """A filesystem and the base path inside it (`bucket/prefix` on S3, absolute locally)."""

    filesystem: pafs.FileSystem
    base: str
    uri: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])


def open_root(root: str, *, endpoint: str | None = None, region: str | None = None) -> ObjectRoot:
    """Open `root`: a local path, `file://…`, or `s3://bucket/prefix`.

    `endpoint` (`http://127.0.0.1:9000`) points S3 at MinIO or moto; an `http://` endpoint
    turns TLS off, as those usually run without it.
    """
    parsed = urlparse(root)
    if parsed.scheme == "s3":
        options: dict[str, object] = {
            "region": region or "us-east-1",
            "connect_timeout": S3_CONNECT_TIMEOUT_S,
            "request_timeout": S3_REQUEST_TIMEOUT_S,
        }
        if endpoint:
            ep = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
            options["endpoint_override"] = ep.netloc
            options["scheme"] = ep.scheme or "https"
        s3 = pafs.S3FileSystem(allow_bucket_creation=True, **options)
        base = f"{parsed.netloc}{parsed.path}".rstrip("/")
        return ObjectRoot(s3, base, root)
    if parsed.scheme in ("", "file"):
        path = os.path.abspath(parsed.path if parsed.scheme == "file" else root)
        return ObjectRoot(pafs.LocalFileSystem(), path, root)
    raise ValueError(f"warehouse root {root!r}: use a local path or s3://bucket/prefix")
