"""Privacy scan (PROTOCOL.md §7): no raw player UUID, IP, free text or age-like field at rest.

`gameplay-analytics privacy scan` runs it against a deployment (the quarterly audit), and the
chaos, fuzz and load suites against what they left behind: every Postgres table (every row as
JSON), every Parquet file under the warm store (local or S3), every message of the JetStream
stream read back (the gateway's batches on `analytics.events`, whose raw ids the edge step
must have replaced, and the `analytics.dlq` entries), and the log files. What counts as a finding:

- a raw player UUID: any of `player_uuids` (with or without dashes, any case); without such a
  list, any dashed UUID in a store outside the columns that hold random ids by design
  (`client_guid`, `session_id`, `request_id`, a database `epoch`: `ID_COLUMNS`); logs are
  then searched for IPs only, since request and installation ids appear there legitimately;
- an IP address: an IPv4 dotted quad or a full/`::ffff:`-mapped IPv6 address. In logs, the
  servers' own listen addresses (`ip:port` with a known server port, Postgres' `listening on`
  line) are allowed: they are infrastructure, not a person;
- chat text: any of `canaries` (strings a test planted as chat), and in stored `props`, any
  string holding whitespace: the schema restricts strings to identifiers, so whitespace means
  free text got through;
- an age-like field: a column, JSON key or Parquet field named age / birth… / dob / yob.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import asyncpg
import nats
import nats.errors
import nats.js.errors
import pyarrow.parquet as pq
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pyarrow import fs as pafs

from gameplay_analytics.contract.messages import DLQ_SUBJECT, EVENTS_SUBJECT, STREAM, split_events
from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.storage.objectstore import ObjectRoot, open_root

__all__ = [
    "ID_COLUMNS",
    "Finding",
    "Needles",
    "ScanReport",
    "age_like",
    "scan_all",
    "scan_logs",
    "scan_parquet",
    "scan_postgres",
    "scan_stream",
]

ID_COLUMNS: Final = ("client_guid", "session_id", "request_id", "epoch")
"""Columns and keys that hold random UUIDs by design, never a player's."""

_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_IPV6 = re.compile(
    r"(?i)(?<![0-9a-f:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|::ffff:[0-9a-f.:]+|::1)(?![0-9a-f:])"
)
_UUID_DASHED = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])"
)
_UUID_LIKE = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}(?![0-9a-f])"
)
_UUID_ANY_CASE = re.compile(_UUID_LIKE.pattern, re.IGNORECASE)
_AGE_TOKENS = {"age", "ages", "birth", "birthday", "birthdate", "dob", "yob", "born"}
_TOKEN = re.compile(r"[a-z]+")


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    where: str  # e.g. "postgres:analytics_events", "dlq", "log:gateway.log"
    what: str  # "player_uuid" | "ip" | "chat_text" | "age_field"
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.excerpt[:160]!r}"

    def redacted(self) -> str:
        """The finding without the identifiers it found: what a report may show."""
        excerpt = _UUID_ANY_CASE.sub("<uuid>", self.excerpt)
        excerpt = _IPV6.sub("<ip>", _IPV4.sub("<ip>", excerpt))
        return f"{self.where}: {self.what}: {excerpt[:160]!r}"


class Needles:
    """What to look for: the given players' UUIDs (None: any dashed UUID) and canaries."""

    def __init__(self, player_uuids: Iterable[str] | None, canaries: Iterable[str] = ()) -> None:
        forms: set[str] | None = None
        if player_uuids is not None:
            forms = set()
            for player in player_uuids:
                lower = player.lower()
                forms.update((lower, lower.replace("-", "")))
        self.uuid_forms = forms
        self.canaries = [c.lower() for c in canaries if c]

    def text(
        self,
        where: str,
        text: str,
        *,
        allowed_ips: re.Pattern[str] | None = None,
        any_uuid: bool = True,
    ) -> Iterator[Finding]:
        lower = text.lower()
        if self.uuid_forms is not None:
            for match in _UUID_LIKE.finditer(lower):  # one pass, then a set lookup
                if match.group(0) in self.uuid_forms:
                    yield Finding(where, "player_uuid", _around(text, match.start()))
        elif any_uuid:
            for match in _UUID_DASHED.finditer(lower):
                yield Finding(where, "player_uuid", _around(text, match.start()))
        for canary in self.canaries:
            if canary in lower:
                yield Finding(where, "chat_text", _around(text, lower.index(canary)))
        for pattern in (_IPV4, _IPV6):
            for match in pattern.finditer(text):
                if allowed_ips is not None and allowed_ips.match(text, match.start()):
                    continue
                yield Finding(where, "ip", _around(text, match.start()))


def _around(text: str, at: int) -> str:
    return text[max(0, at - 40) : at + 80]


def age_like(key: str) -> bool:
    return bool(_AGE_TOKENS & set(_TOKEN.findall(key.lower()))) or "birth" in key.lower()


def _keys(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item, path)


def _free_text(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if any(ch.isspace() for ch in value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _free_text(item)
    elif isinstance(value, list):
        for item in value:
            yield from _free_text(item)


def _props_findings(where: str, props: Any) -> Iterator[Finding]:
    if isinstance(props, str):
        try:
            props = json.loads(props)
        except ValueError:
            return
    for key in _keys(props):
        if age_like(key):
            yield Finding(where, "age_field", f"props key {key!r}")
    for text in _free_text(props):
        yield Finding(where, "chat_text", f"free text in props: {text}")


async def scan_postgres(dsn: str, needles: Needles) -> list[Finding]:
    findings: list[Finding] = []
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND c.relpersistence <> 't' "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%'"
        )
        for table in tables:
            qualified = f'"{table["schema"]}"."{table["name"]}"'
            where = f"postgres:{table['name']}"
            columns = await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                "AND NOT attisdropped",
                qualified,
            )
            names = [c["attname"] for c in columns]
            findings += [Finding(where, "age_field", f"column {n}") for n in names if age_like(n)]
            query = f"SELECT (to_jsonb(t) - $1::text[])::text AS line FROM {qualified} t"
            async with conn.transaction():
                async for row in conn.cursor(query, list(ID_COLUMNS)):
                    findings += needles.text(where, row["line"])
            if "props" in names:
                async with conn.transaction():
                    async for row in conn.cursor(f"SELECT props::text AS p FROM {qualified}"):
                        findings += _props_findings(where, row["p"])
    finally:
        await conn.close()
    return findings


def scan_parquet(root: str | Path | ObjectRoot, needles: Needles) -> tuple[list[Finding], int]:
    """Findings, and how many Parquet files were read, anywhere under the warm store's root
    (a local folder or an S3 prefix). Blocking."""
    if not isinstance(root, ObjectRoot):
        root = open_root(str(root))
    fs = root.filesystem
    selector = pafs.FileSelector(root.base, allow_not_found=True, recursive=True)
    files = sorted(
        i.path for i in fs.get_file_info(selector) if i.is_file and i.path.endswith(".parquet")
    )
    findings: list[Finding] = []
    for path in files:
        where = f"parquet:{path.removeprefix(root.base).lstrip('/')}"
        table = pq.read_table(path, filesystem=fs)
        findings += [
            Finding(where, "age_field", f"column {n}") for n in table.column_names if age_like(n)
        ]
        for row in table.to_pylist():
            findings += needles.text(where, json.dumps(_without_ids(row), default=str))
            if "props" in row:
                findings += _props_findings(where, row["props"])
    return findings, len(files)


def _without_ids(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ID_COLUMNS}


async def scan_stream(
    nats_url: str,
    needles: Needles,
    *,
    start_seq: int = 1,
    only_guids: set[str] | None = None,
    skip_guids: frozenset[str] | set[str] = frozenset(),
    stream: str = STREAM,
    subjects: tuple[str, ...] = (EVENTS_SUBJECT, DLQ_SUBJECT),
) -> tuple[list[Finding], dict[str, int]]:
    """Findings in every message of the stream's subjects (the gateway's batches on
    `analytics.events`, bundles split, and the DLQ entries) from stream sequence `start_seq`,
    and how many batches or entries each subject had; `only_guids` / `skip_guids` select
    them by `client_guid` (a shared stream). Payloads only: headers hold hashes. The scan
    stops at the stream's last message as of its start: a live pipeline keeps publishing."""
    findings: list[Finding] = []
    read = dict.fromkeys(subjects, 0)
    nc = await jetstream.connect_once(nats_url, name="privacy-scan")
    try:
        js = nc.jetstream()
        end = int((await js.stream_info(stream)).state.last_seq)
        for subject in subjects:
            where = "dlq" if subject == DLQ_SUBJECT else "stream:events"
            async for data in _messages(js, stream, subject, start_seq, end):
                for part in split_events(data):
                    text = part.decode(errors="replace")
                    try:
                        doc = json.loads(text)
                    except ValueError:
                        doc = {}
                    guid = doc.get("client_guid") if isinstance(doc, dict) else None
                    if (only_guids is not None and guid not in only_guids) or guid in skip_guids:
                        continue
                    read[subject] += 1
                    scanned = json.dumps(_without_ids(doc)) if isinstance(doc, dict) else text
                    findings += needles.text(where, scanned)
                    findings += [
                        Finding(where, "age_field", f"key {k}") for k in _keys(doc) if age_like(k)
                    ]
    finally:
        await nc.close()
    return findings, read


_UNAVAILABLE_RETRIES: Final = 50
_UNAVAILABLE_PAUSE_S: Final = 0.2


async def _messages(
    js: JetStreamContext, stream: str, subject: str, start_seq: int, end_seq: int
) -> AsyncIterator[bytes]:
    """Every message of `subject` from `start_seq` to `end_seq`: an ephemeral consumer that
    acks nothing."""
    if start_seq > end_seq:
        return
    sub = await js.pull_subscribe(
        subject, stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq),
            ack_policy=AckPolicy.NONE, inactive_threshold=10,
        ),
    )  # fmt: skip
    unavailable = 0
    try:
        while True:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                return
            except nats.js.errors.ServiceUnavailableError:
                # A clustered stream: the new consumer's leader is not elected yet. Bounded.
                unavailable += 1
                if unavailable > _UNAVAILABLE_RETRIES:
                    raise
                await asyncio.sleep(_UNAVAILABLE_PAUSE_S)
                continue
            for msg in msgs:
                if msg.metadata.sequence.stream > end_seq:
                    return
                yield msg.data
            if msgs and msgs[-1].metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()


def scan_logs(
    paths: Iterable[Path], needles: Needles, *, server_ports: Iterable[int]
) -> list[Finding]:
    ports = "|".join(str(p) for p in sorted(set(server_ports))) or "0"
    ip = r"(?:\d{1,3}\.){3}\d{1,3}"
    # ip:port, Postgres' `"ip", port N` and Python's `('ip', N)`, for the servers' ports only.
    allowed = re.compile(rf"{ip}(?::|\", port |', )(?:{ports})(?!\d)")
    findings: list[Finding] = []
    for path in paths:
        where = f"log:{path.name}"
        for line in path.read_text(errors="replace").splitlines():
            # A server announcing its own listener (nats-server's monitor, Postgres): its
            # address is infrastructure whatever the port, not a person's.
            ips = _ANY_IP if _LISTENER.search(line) else allowed
            findings += needles.text(where, line, allowed_ips=ips, any_uuid=False)
    return findings


_LISTENER = re.compile(r"(?i)\b(?:listening|starting [a-z ]*(?:monitor|listener|server))\b.* on ")
_ANY_IP = re.compile("")


@dataclasses.dataclass(slots=True)
class ScanReport:
    """What a scan found, and how much it read (a scan that read nothing proves nothing)."""

    findings: list[Finding]
    parquet_files: int
    dlq_messages: int
    log_files: int
    event_batches: int = 0  # batches on analytics.events (a bundle counts each of its own)

    def line(self, suite: str) -> str:
        return (
            f"[privacy] {suite}: parquet_files={self.parquet_files} "
            f"event_batches={self.event_batches} dlq_messages={self.dlq_messages} "
            f"log_files={self.log_files} findings={len(self.findings)}"
        )


async def scan_all(
    *,
    dsn: str | None,
    warehouse_root: str | Path | ObjectRoot | None,
    nats_url: str | None,
    log_paths: Iterable[Path],
    player_uuids: Iterable[str] | None,
    canaries: Iterable[str] = (),
    server_ports: Iterable[int] = (),
    stream_start_seq: int = 1,
    only_guids: set[str] | None = None,
    skip_guids: frozenset[str] | set[str] = frozenset(),
) -> ScanReport:
    """Every store: Postgres, the warm store, the JetStream stream (events and DLQ, from
    `stream_start_seq`, selected by `only_guids` / `skip_guids`) and the log files."""
    needles = Needles(player_uuids, canaries)
    findings: list[Finding] = []
    if dsn is not None:
        findings += await scan_postgres(dsn, needles)
    parquet_files = 0
    read: dict[str, int] = {}
    if warehouse_root is not None:
        found, parquet_files = await asyncio.to_thread(scan_parquet, warehouse_root, needles)
        findings += found
    if nats_url is not None:
        found, read = await scan_stream(
            nats_url, needles, start_seq=stream_start_seq, only_guids=only_guids,
            skip_guids=skip_guids,
        )  # fmt: skip
        findings += found
    logs = list(log_paths)
    findings += scan_logs(logs, needles, server_ports=server_ports)
    return ScanReport(
        findings, parquet_files, read.get(DLQ_SUBJECT, 0), len(logs),
        event_batches=read.get(EVENTS_SUBJECT, 0),
    )  # fmt: skip
