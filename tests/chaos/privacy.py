"""Privacy scan: no raw player UUID, IP address, chat text or age-like field anywhere at rest.

Run after a suite against what it left behind: every Postgres table (all columns of every row,
as text), every Parquet file under the warm store, every `analytics.dlq` message read back from
JetStream, and the log files. What counts as a finding:

- a raw player UUID: any of `player_uuids` (with or without dashes, any case);
- an IP address: an IPv4 dotted quad or a full/`::ffff:`-mapped IPv6 address. In logs, the
  servers' own listen addresses (`ip:port` with a known server port, Postgres' `listening on`
  line) are allowed: they are infrastructure, not a person;
- chat text: any of `canaries` (strings a test planted as chat), and in stored `props`, any
  string holding whitespace: the schema restricts strings to identifiers, so whitespace means
  free text got through;
- an age-like field: a column, JSON key or Parquet field named age / birth… / dob / yob.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gameplay_analytics.contract.messages import DLQ_SUBJECT, STREAM

__all__ = ["Finding", "scan_all", "scan_dlq", "scan_logs", "scan_parquet", "scan_postgres"]

_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_IPV6 = re.compile(
    r"(?i)(?<![0-9a-f:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|::ffff:[0-9a-f.:]+|::1)(?![0-9a-f:])"
)
_UUID_LIKE = re.compile(
    r"(?<![0-9a-f])[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}(?![0-9a-f])"
)
_AGE_TOKENS = {"age", "ages", "birth", "birthday", "birthdate", "dob", "yob", "born"}
_TOKEN = re.compile(r"[a-z]+")


@dataclasses.dataclass(frozen=True)
class Finding:
    where: str  # e.g. "postgres:analytics_events", "dlq", "log:gateway.log"
    what: str  # "player_uuid" | "ip" | "chat_text" | "age_field"
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.excerpt[:160]!r}"


class _Needles:
    def __init__(self, player_uuids: Iterable[str], canaries: Iterable[str]) -> None:
        forms = set()
        for player in player_uuids:
            lower = player.lower()
            forms.update((lower, lower.replace("-", "")))
        self.uuid_forms = forms
        self.canaries = [c.lower() for c in canaries if c]

    def text(
        self, where: str, text: str, *, allowed_ips: re.Pattern[str] | None = None
    ) -> Iterator[Finding]:
        lower = text.lower()
        for match in _UUID_LIKE.finditer(lower):  # one pass, then a set lookup
            if match.group(0) in self.uuid_forms:
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


async def scan_postgres(dsn: str, needles: _Needles) -> list[Finding]:
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
            async with conn.transaction():
                async for row in conn.cursor(f"SELECT t::text AS line FROM {qualified} t"):
                    findings += needles.text(where, row["line"])
            if "props" in names:
                async with conn.transaction():
                    async for row in conn.cursor(f"SELECT props::text AS p FROM {qualified}"):
                        findings += _props_findings(where, row["p"])
    finally:
        await conn.close()
    return findings


def scan_parquet(root: Path, needles: _Needles) -> tuple[list[Finding], int]:
    """Findings, and how many Parquet files were read."""
    import pyarrow.parquet as pq

    findings: list[Finding] = []
    files = sorted(root.rglob("*.parquet"))
    for path in files:
        where = f"parquet:{path.relative_to(root)}"
        table = pq.read_table(path)
        findings += [
            Finding(where, "age_field", f"column {n}") for n in table.column_names if age_like(n)
        ]
        for row in table.to_pylist():
            findings += needles.text(where, json.dumps(row, default=str))
            if "props" in row:
                findings += _props_findings(where, row["props"])
    return findings, len(files)


async def scan_dlq(
    nats_url: str,
    needles: _Needles,
    *,
    start_seq: int = 1,
    only_guids: set[str] | None = None,
    skip_guids: frozenset[str] | set[str] = frozenset(),
) -> tuple[list[Finding], int]:
    """Findings, and how many DLQ messages were read (from stream sequence `start_seq`);
    `only_guids` / `skip_guids` select entries by their `client_guid` (a shared stream)."""
    findings: list[Finding] = []
    read = 0
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            DLQ_SUBJECT, stream=STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq),
                ack_policy=AckPolicy.NONE, inactive_threshold=10,
            ),
        )  # fmt: skip
        try:
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=0.5)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                for msg in msgs:
                    text = msg.data.decode(errors="replace")
                    try:
                        doc = json.loads(text)
                    except ValueError:
                        doc = {}
                    guid = doc.get("client_guid") if isinstance(doc, dict) else None
                    if (only_guids is not None and guid not in only_guids) or guid in skip_guids:
                        continue
                    read += 1
                    findings += needles.text("dlq", text)
                    findings += [
                        Finding("dlq", "age_field", f"key {k}") for k in _keys(doc) if age_like(k)
                    ]
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()
    return findings, read


def scan_logs(
    paths: Iterable[Path], needles: _Needles, *, server_ports: Iterable[int]
) -> list[Finding]:
    ports = "|".join(str(p) for p in sorted(set(server_ports))) or "0"
    ip = r"(?:\d{1,3}\.){3}\d{1,3}"
    # ip:port, Postgres' `"ip", port N` and Python's `('ip', N)`, for the servers' ports only.
    allowed = re.compile(rf"{ip}(?::|\", port |', )(?:{ports})(?!\d)")
    findings: list[Finding] = []
    for path in paths:
        where = f"log:{path.name}"
        for line in path.read_text(errors="replace").splitlines():
            findings += needles.text(where, line, allowed_ips=allowed)
    return findings


@dataclasses.dataclass
class ScanReport:
    findings: list[Finding]
    parquet_files: int
    dlq_messages: int
    log_files: int

    def line(self, suite: str) -> str:
        return (
            f"[privacy] {suite}: parquet_files={self.parquet_files} "
            f"dlq_messages={self.dlq_messages} "
            f"log_files={self.log_files} findings={len(self.findings)}"
        )


async def scan_all(
    *,
    dsn: str | None,
    warehouse_root: Path | None,
    nats_url: str | None,
    log_paths: Iterable[Path],
    player_uuids: Iterable[str],
    canaries: Iterable[str] = (),
    server_ports: Iterable[int] = (),
    dlq_start_seq: int = 1,
    dlq_only_guids: set[str] | None = None,
    dlq_skip_guids: frozenset[str] | set[str] = frozenset(),
) -> ScanReport:
    needles = _Needles(player_uuids, canaries)
    findings: list[Finding] = []
    if dsn is not None:
        findings += await scan_postgres(dsn, needles)
    parquet_files = dlq_messages = 0
    if warehouse_root is not None:
        found, parquet_files = scan_parquet(warehouse_root, needles)
        findings += found
    if nats_url is not None:
        found, dlq_messages = await scan_dlq(
            nats_url, needles, start_seq=dlq_start_seq, only_guids=dlq_only_guids,
            skip_guids=dlq_skip_guids,
        )  # fmt: skip
        findings += found
    logs = list(log_paths)
    findings += scan_logs(logs, needles, server_ports=server_ports)
    return ScanReport(findings, parquet_files, dlq_messages, len(logs))
