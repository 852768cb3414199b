"""`gameplay-analytics quality sessions --day D`: the nightly check of session counts.

Counts the day's authenticated sessions in the gateways' ledger (JetStream KV) and the rows
of `analytics_sessions`, prints the table, exports the variance (`--metrics-file` for a
textfile collector, `--pushgateway` for a CronJob) and exits 1 when the variance is over the
threshold (3 %), 2 when a store cannot be read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

from gameplay_analytics.commands import stores

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("quality", help="data-quality checks (nightly)")
    checks = group.add_subparsers(dest="quality_check", required=True)
    cmd = checks.add_parser(
        "sessions", help="gateway-authenticated sessions vs analytics_sessions for one day"
    )
    cmd.add_argument(
        "--day",
        type=dt.date.fromisoformat,
        help="UTC day YYYY-MM-DD (default: yesterday)",
    )
    cmd.add_argument("--threshold", type=float, help="variance that alerts (default 0.03)")
    cmd.add_argument("--metrics-file", help="write the gauges here (node exporter textfile)")
    cmd.add_argument(
        "--pushgateway",
        default=os.environ.get(f"{stores.ENV}PUSHGATEWAY_URL"),
        help="push the gauges to this Prometheus Pushgateway",
    )
    cmd.add_argument(
        "--job", help="`job` label of pushed gauges (default <PIPELINE>-quality, as alerts read)"
    )
    stores.add_store_options(cmd)
    cmd.set_defaults(run=_sessions)


def _sessions(args: argparse.Namespace) -> int:
    import asyncio

    from gameplay_analytics.insights import quality

    day = args.day or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    try:
        where = stores.endpoints(args, nats_role="quality")
        if not where["nats_url"]:
            raise stores.Refused("the sessions ledger is on NATS: --endpoints or --nats-url")
        counts = asyncio.run(_count(where, day))
    except stores.Refused as err:
        print(f"quality: {err}", file=sys.stderr)
        return 2
    threshold = quality.VARIANCE_THRESHOLD if args.threshold is None else args.threshold
    check = quality.SessionCheck(day=day, threshold=threshold, **counts)
    print(check.table())
    _export(args, quality.metrics(check))
    return 0 if check.ok else 1


async def _count(where: dict[str, Any], day: dt.date) -> dict[str, int]:
    import asyncpg
    import nats.errors
    import nats.js.errors

    from gameplay_analytics.contract import natsperms
    from gameplay_analytics.runtime import jetstream
    from gameplay_analytics.runtime.gateway import ledger
    from gameplay_analytics.runtime.storage.schema import SESSIONS_TABLE

    try:
        settings = jetstream.NatsSettings(nats_url=where["nats_url"])
        nc = await jetstream.connect_once(settings, name="gameplay-analytics-quality")
    except (OSError, nats.errors.Error) as err:
        shown = natsperms.without_login(where["nats_url"])
        raise stores.Refused(f"NATS at {shown}: {type(err).__name__}") from None
    try:
        js = nc.jetstream()
        try:
            bucket = settings.sessions_bucket
            kept = await ledger.count_sessions(js, day, bucket=bucket, kept=True)
            opted_out = await ledger.count_sessions(js, day, bucket=bucket, kept=False)
        except nats.js.errors.NotFoundError:
            raise stores.Refused("no sessions ledger on this NATS (no gateway ran)") from None
    finally:
        await nc.close()
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    try:
        conn = await asyncpg.connect(where["postgres_dsn"], timeout=10)
    except (OSError, asyncpg.PostgresError) as err:
        raise stores.Refused(f"the hot store: {type(err).__name__}") from None
    try:
        stored = await conn.fetchval(
            f"SELECT count(*) FROM {SESSIONS_TABLE} WHERE started_at >= $1 AND started_at < $2",
            start,
            start + dt.timedelta(days=1),
        )
    finally:
        await conn.close()
    return {"gateway": kept, "opted_out": opted_out, "stored": int(stored)}


def _export(args: argparse.Namespace, registry: Any) -> None:
    from prometheus_client import push_to_gateway, write_to_textfile

    if args.metrics_file:
        write_to_textfile(args.metrics_file, registry)
    if args.pushgateway:
        namespace = os.environ.get("POD_NAMESPACE", "")
        from gameplay_analytics.operator.quality import job_name

        pipeline = os.environ.get(f"{stores.ENV}PIPELINE") or "local"
        push_to_gateway(
            args.pushgateway,
            job=args.job or job_name(pipeline),
            registry=registry,
            grouping_key={"namespace": namespace} if namespace else {},
            timeout=10,
        )
