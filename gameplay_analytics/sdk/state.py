"""The installation's persistent state: its `client_guid` and its `seq` counter.

Seqs must rise strictly across the installation's life (PROTOCOL.md §1), restarts included.
The counter reserves blocks: the file holds the first seq not yet handed out by *any* run, so a
crash skips at most one block and never repeats a seq, at one atomic write per block.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

__all__ = ["SeqCounter", "atomic_write", "load_or_create_client_guid"]

DEFAULT_BLOCK = 1024


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file, never half.

    `durable=False` skips the fsync: the file still survives the process being killed (the
    kernel holds it), only not a power cut, at a fraction of the cost.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_or_create_client_guid(state_dir: Path) -> uuid.UUID:
    """The installation's `client_guid`, created on first use and kept in `state_dir`."""
    path = state_dir / "client_guid"
    with contextlib.suppress(OSError, ValueError):
        return uuid.UUID(path.read_text().strip())
    guid = uuid.uuid4()
    atomic_write(path, str(guid).encode())
    return guid


class SeqCounter:
    """Hands out strictly increasing seqs for one `client_guid`.

    With `state_dir`, the counter lives in `seq-<client_guid>.json` there. Without one (bots,
    load tests) it starts from the wall clock in microseconds, which rises across restarts as
    long as fewer than a million events a second are tracked.
    """

    __slots__ = ("_block", "_limit", "_next", "_path")

    def __init__(
        self, client_guid: uuid.UUID | str, *, state_dir: Path | None, block: int = DEFAULT_BLOCK
    ) -> None:
        self._block = block
        self._path = state_dir / f"seq-{client_guid}.json" if state_dir is not None else None
        if self._path is None:
            self._next = self._limit = time.time_ns() // 1000
            self._limit += 1 << 62  # nothing to persist
            return
        self._next = self._read()
        self._limit = self._next
        self._reserve()

    @property
    def path(self) -> Path | None:
        return self._path

    def next(self) -> int:
        value = self._next
        if value >= self._limit:
            self._reserve()
        self._next = value + 1
        return value

    def _read(self) -> int:
        assert self._path is not None
        try:
            data = json.loads(self._path.read_text())
            return max(0, int(data["next"]))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged file must not restart the sequence at 0: jump past anything plausible.
            return time.time_ns() // 1000

    def _reserve(self) -> None:
        self._limit = self._next + self._block
        if self._path is not None:
            atomic_write(self._path, json.dumps({"next": self._limit}).encode())
