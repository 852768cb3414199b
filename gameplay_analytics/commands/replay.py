"""`gameplay-analytics replay`: rebuild warm-store days (and today's hot rows) from the stream,
JSONL captures of its messages, or simulation snapshots (`runtime/replay.py`).

Progress goes to stderr while it runs; the final counts (read, stored, deduplicated,
dead-lettered) to stdout. Replaying the same input twice stores nothing the second time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gameplay_analytics.commands import stores

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "replay", help="rebuild warm days from the stream, JSONL captures or snapshots"
    )
    source = cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-stream", action="store_true", help="the JetStream stream")
    source.add_argument("--from-jsonl", nargs="+", type=Path, help="captured messages, one a line")
    source.add_argument("--from-snapshots", nargs="+", type=Path, help="snapshot files or folders")
    cmd.add_argument("--adapter", default="tick", help="snapshot format (default: tick)")
    cmd.add_argument("--start-seq", type=int, help="with --from-stream: first stream sequence")
    cmd.add_argument("--end-seq", type=int, help="with --from-stream: last stream sequence")
    cmd.add_argument("--since", help="with --from-stream: ISO time of the first message")
    cmd.add_argument("--until", help="with --from-stream: ISO time of the last message")
    cmd.add_argument(
        "--geoip-db",
        type=Path,
        help="MaxMind .mmdb for format-1 input that carries an IP (captures, snapshots)",
    )
    cmd.add_argument(
        "--max-clock-skew-s", type=float, default=None, help="the clock_skew bound (default 600)"
    )
    cmd.add_argument("--format", choices=("text", "json"), default="text", help="final counts")
    stores.add_store_options(cmd)
    stores.add_salt_option(cmd)
    cmd.set_defaults(run=_replay)


def _replay(args: argparse.Namespace) -> int:
    import asyncio
    import datetime as dt

    try:
        where = stores.endpoints(args, nats_role="replay")
        since = _time(args.since)
        until = _time(args.until)
        salts = stores.salt_book(args, "replay")
        from gameplay_analytics.runtime import replay

        if args.from_snapshots and args.adapter not in replay.ADAPTERS:
            raise stores.Refused(f"--adapter: one of {', '.join(sorted(replay.ADAPTERS))}")
        if args.from_stream and not where["nats_url"]:
            raise stores.Refused("--from-stream needs --nats-url or --endpoints")
    except (stores.Refused, ValueError) as err:
        print(f"replay: {err}", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(_run(args, where, salts, since, until, dt.datetime.now(dt.UTC)))
    except (OSError, TimeoutError) as err:
        print(f"replay: a store is unreachable: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    if args.format == "json":
        import dataclasses
        import json

        print(json.dumps(dataclasses.asdict(counts), default=str, sort_keys=True))
    else:
        print(counts.line())
    return 0


def _time(text: str | None) -> Any:
    import datetime as dt

    if text is None:
        return None
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


async def _run(args: argparse.Namespace, where: dict[str, Any], salts: Any, since: Any,
               until: Any, now: Any) -> Any:  # fmt: skip
    import datetime as dt

    import asyncpg

    from gameplay_analytics.contract.registry import SchemaRegistry
    from gameplay_analytics.privacy import open_geoip
    from gameplay_analytics.privacy.edge import EdgeKeys
    from gameplay_analytics.runtime import replay
    from gameplay_analytics.runtime.aggregator.enrich import Enricher, TimeBounds
    from gameplay_analytics.runtime.storage import warm

    bounds = TimeBounds(retention_days=where["warm_retention_days"])
    if args.max_clock_skew_s is not None:
        bounds = TimeBounds(dt.timedelta(seconds=args.max_clock_skew_s), bounds.retention_days)
    # Format-1 input (captures, snapshots, stream ranges older than format 2) is sealed with
    # the gateway's keys here; format-2 messages are already pseudonymous.
    legacy = EdgeKeys(
        salts=salts,
        profile_secret=stores.profile_secret(args, "replay", salts),
        geoip=open_geoip(args.geoip_db),
    )
    enricher = Enricher(
        registry=SchemaRegistry.from_released(max_events=10_000), bounds=bounds, legacy=legacy
    )
    if args.from_stream:
        source: Any = replay.from_stream(
            where["nats_url"], stream=where["stream"], subject=where["events_subject"],
            start_seq=args.start_seq, end_seq=args.end_seq, since=since, until=until,
        )  # fmt: skip
    elif args.from_jsonl:
        source = replay.from_jsonl(args.from_jsonl)
    else:
        files = [p for given in args.from_snapshots for p in _files(given)]
        source = replay.from_snapshots(files, replay.ADAPTERS[args.adapter]())
    store = None
    if where["warehouse_root"]:
        store = warm.WarmStore(
            where["warehouse_root"], endpoint=where["s3_endpoint"], region=where["s3_region"]
        )
    pool = await asyncpg.create_pool(where["postgres_dsn"], min_size=1, max_size=3)
    try:
        return await replay.replay(
            source, enricher=enricher, pool=pool, store=store, now=now, progress=_progress
        )
    finally:
        await pool.close()


def _files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.json")) if path.is_dir() else [path]


def _progress(counts: Any) -> None:
    end = "\r" if sys.stderr.isatty() else "\n"
    print(
        f"replay: {counts.messages} messages, {counts.read} events read, "
        f"{counts.dead_lettered} dead-lettered",
        end=end, file=sys.stderr, flush=True,
    )  # fmt: skip
