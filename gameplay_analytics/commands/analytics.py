"""`gameplay-analytics insights views` (the Metabase views of insights/mart.py),
`insights metabase` (the dashboards, through Metabase's API: insights/metabase.py) and
`insights export` (the stakeholder feed of insights/feed.py, and with `--to-sheet` in Google
Sheets: insights/sheets.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from gameplay_analytics.commands.options import add_window_option

__all__ = ["register"]


def register(
    metrics: argparse._SubParsersAction[Any],
    store_options: Callable[[argparse.ArgumentParser], None],
    date: Callable[[str], Any],
) -> None:
    """Add `views`, `metabase` and `export` to the `insights` subcommands."""
    views = metrics.add_parser(
        "views", help="create/refresh the analytics_mart views (Metabase) in the hot store"
    )
    views.add_argument("--dsn", help="Postgres DSN of the hot store")
    views.add_argument("--endpoints", help="endpoints.json of a running `up`")
    add_window_option(views)
    views.set_defaults(run=_run_views, store="hot", root=None, s3_endpoint=None)

    metabase = metrics.add_parser(
        "metabase", help="create/update the dashboards and their questions in Metabase"
    )
    metabase.add_argument("--url", required=True, help="Metabase, e.g. http://metabase:3000")
    metabase.add_argument("--api-key", help="a Metabase API key (or --user and --password)")
    metabase.add_argument("--user", help="a Metabase user's email")
    metabase.add_argument("--password", help="that user's password")
    metabase.add_argument(
        "--database", default=None, help="the Metabase database of the hot store, by name"
    )
    metabase.add_argument("--dsn", help="create that database from this Postgres DSN if missing")
    metabase.add_argument("--collection-id", type=int, help="collection of the cards/dashboards")
    metabase.add_argument(
        "--dashboards", default="dashboards/metabase", help="folder of the definitions"
    )
    metabase.set_defaults(run=_run_metabase)

    export = metrics.add_parser("export", help="every metric as CSV + Parquet with a manifest")
    store_options(export)
    export.add_argument("--to", dest="out", help="a folder or s3://bucket/prefix")
    export.add_argument("--to-sheet", metavar="SPREADSHEET_ID", help="also a Google Sheet")
    export.add_argument("--service-account", help="the service account's JSON key file")
    export.add_argument(
        "--share-with", action="append", default=[], help="share the sheet read-only (repeat)"
    )
    export.add_argument("--from", dest="date_from", type=date, help="first day, YYYY-MM-DD")
    export.add_argument("--until", dest="date_to", type=date, help="last day, YYYY-MM-DD")
    export.add_argument("--by", default="class,region,playstyle", help="slices of every file")
    add_window_option(export)
    export.set_defaults(run=_run_export)


def _run_views(args: argparse.Namespace) -> int:
    from gameplay_analytics.commands.insights import open_store
    from gameplay_analytics.insights import mart
    from gameplay_analytics.insights.stores import HotStore, InsightsError

    try:
        if args.window < 0:
            raise InsightsError(f"--window must be a whole number of days ≥ 0, not {args.window}")
        store = open_store(args)
        assert isinstance(store, HotStore)
        asyncio.run(_execute(store.dsn, mart.refresh_statements(window=args.window)))
    except InsightsError as err:
        return _refuse(str(err))
    print(f"views: {', '.join(f'{mart.SCHEMA}.{v}' for v in mart.VIEWS)}")
    return 0


async def _execute(dsn: str, statements: list[str]) -> None:
    import asyncpg

    from gameplay_analytics.insights.stores import CONNECT_TIMEOUT_S, InsightsError

    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except (TimeoutError, OSError, asyncpg.PostgresError, ValueError) as err:
        raise InsightsError(f"hot store unreachable ({err})") from None
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    except asyncpg.PostgresError as err:
        raise InsightsError(f"creating the views failed: {' '.join(str(err).split())}") from None
    finally:
        await conn.close()


def _run_export(args: argparse.Namespace) -> int:
    import tempfile

    from gameplay_analytics.commands.insights import _params, open_store
    from gameplay_analytics.insights import feed
    from gameplay_analytics.insights.stores import InsightsError
    from gameplay_analytics.runtime.storage.objectstore import open_root

    with tempfile.TemporaryDirectory(prefix="feed-") as scratch:
        try:
            if not args.out and not args.to_sheet:
                raise InsightsError("give --to DIR|s3://… and/or --to-sheet SPREADSHEET_ID")
            if args.to_sheet and not args.service_account:
                raise InsightsError("--to-sheet needs --service-account FILE")
            params = _params(args)
            store = open_store(args)
            out = args.out or scratch
            try:
                where = open_root(out, endpoint=args.s3_endpoint)
                manifest = feed.export(store, params, where)
            except (OSError, ValueError) as err:
                raise InsightsError(f"cannot write the feed to {out}: {err}") from None
            finally:
                store.close()
            if args.to_sheet:
                _to_sheet(args, manifest, where)
        except InsightsError as err:
            return _refuse(str(err))
    for entry in manifest["metrics"]:
        print(f"{entry['metric']}: {entry['rows']} rows")
    if args.out:
        print(f"manifest: {where.join(feed.MANIFEST)}")
    if args.to_sheet:
        print(f"sheet: https://docs.google.com/spreadsheets/d/{args.to_sheet}")
    return 0


def _to_sheet(args: argparse.Namespace, manifest: dict[str, Any], where: Any) -> None:
    from gameplay_analytics.insights import sheets

    def read(name: str) -> bytes:
        with where.filesystem.open_input_stream(where.join(name)) as f:
            return bytes(f.read())

    sheets.sync(
        args.to_sheet, sheets.tables_from_feed(manifest, read),
        service_account_file=args.service_account, share_with=args.share_with,
    )  # fmt: skip


def _run_metabase(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gameplay_analytics.insights import metabase
    from gameplay_analytics.insights.stores import InsightsError

    try:
        boards = metabase.load_dashboards(Path(args.dashboards))
        api = metabase.Metabase(
            args.url, api_key=args.api_key, user=args.user, password=args.password
        )
        done = metabase.provision(
            api, boards, database_name=args.database or metabase.DEFAULT_DATABASE_NAME,
            dsn=args.dsn, collection_id=args.collection_id,
        )  # fmt: skip
    except InsightsError as err:
        return _refuse(str(err))
    for line in done.created:
        print(f"created {line}")
    for line in done.updated:
        print(f"updated {line}")
    for name, board_id in done.dashboards.items():
        print(f"dashboard {board_id}: {name} ({args.url.rstrip('/')}/dashboard/{board_id})")
    return 0


def _refuse(message: str) -> int:
    from gameplay_analytics.commands.insights import EXIT_REFUSED

    print(f"gameplay-analytics: {message}", file=sys.stderr)
    return EXIT_REFUSED
