"""`gameplay-analytics insights METRIC` and `query`: the metrics of PROTOCOL.md §6 and raw SQL.

Every refusal (bad argument, unknown slice, unreachable store, SQL error) is one line on
stderr and exit 2; an empty range is a result with no rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from gameplay_analytics.commands import analytics, daily, parity
from gameplay_analytics.commands.options import add_window_option

if TYPE_CHECKING:
    from gameplay_analytics.insights.core import Params
    from gameplay_analytics.insights.stores import Store

__all__ = ["register"]

_METRICS = ("funnel", "retention", "sessions", "combat", "xp", "economy")
_DEFAULT_ENDPOINTS = Path(".data/local/endpoints.json")
EXIT_REFUSED = 2


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line on stderr and exit 2 (PROTOCOL.md §6), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_REFUSED, f"{self.prog}: {message}\n")


def register(sub: argparse._SubParsersAction[Any]) -> None:
    insights = sub.add_parser("insights", help="funnel, retention, sessions, combat, XP, economy")
    _one_line(insights)
    metrics = insights.add_subparsers(
        dest="metric", required=True, metavar="METRIC", parser_class=_OneLineParser
    )
    for name in _METRICS:
        parser = metrics.add_parser(name, help=f"the {name} metric (PROTOCOL.md §6)")
        _store_options(parser)
        parser.add_argument("--from", dest="date_from", type=_date, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", type=_date, help="last day, YYYY-MM-DD")
        parser.add_argument(
            "--by", default="", help="slices: class,region,platform,build,playstyle"
        )
        add_window_option(parser)
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
        parser.add_argument("--plot", help="also write a chart here (.png or .svg)")
        parser.set_defaults(run=_run_metric)

    parity.register(metrics, _store_options, _date)
    analytics.register(metrics, _store_options, _date)
    daily.register(metrics, _store_options, _date)
    report = metrics.add_parser("report", help="a static page with PNG/SVG charts in --out")
    serve = metrics.add_parser("serve", help="the page, live, with slice pickers and dates")
    for parser in (report, serve):
        _store_options(parser)
        parser.add_argument("--from", dest="date_from", type=_date, help="first day")
        parser.add_argument("--to", dest="date_to", type=_date, help="last day")
        parser.add_argument("--by", default="", help="slices: class,region,…")
        add_window_option(parser)
    report.add_argument("--out", required=True, help="folder to write index.html and charts")
    report.set_defaults(run=_run_report)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8050)
    serve.set_defaults(run=_run_serve)

    query = sub.add_parser("query", help="SQL over the warm store with DuckDB")
    _one_line(query)
    query.add_argument(
        "sql", help='e.g. "SELECT category, count(*) FROM analytics_events GROUP BY 1"'
    )
    query.add_argument(
        "--root",
        default=os.environ.get("GAMEPLAY_ANALYTICS_WAREHOUSE_ROOT", ".data/local/warehouse"),
        help="warehouse root: a path or s3://bucket/prefix",
    )
    query.add_argument("--s3-endpoint", default=os.environ.get("GAMEPLAY_ANALYTICS_S3_ENDPOINT"))
    query.add_argument("--format", choices=("tsv", "table", "csv", "json"), default="tsv")
    query.set_defaults(run=_run_query)


def _one_line(parser: argparse.ArgumentParser) -> None:
    # Parsers made by the top-level subparsers are plain ArgumentParsers; give them ours.
    parser.__class__ = _OneLineParser


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=("hot", "warm"), default="hot")
    parser.add_argument("--dsn", help="Postgres DSN of the hot store")
    parser.add_argument("--root", help="warm store root: a path or s3://bucket/prefix")
    parser.add_argument("--s3-endpoint", default=os.environ.get("GAMEPLAY_ANALYTICS_S3_ENDPOINT"))
    parser.add_argument("--endpoints", help="endpoints.json of a running `up`")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def open_store(args: argparse.Namespace) -> Store:
    """The store the options name: --dsn/--root, else --endpoints, else a running `up`'s."""
    from gameplay_analytics.insights.stores import HotStore, InsightsError, WarmStore

    dsn, root = args.dsn, args.root
    endpoints = args.endpoints or (
        str(_DEFAULT_ENDPOINTS) if _DEFAULT_ENDPOINTS.is_file() and not (dsn or root) else None
    )
    if endpoints:
        try:
            found = json.loads(Path(endpoints).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InsightsError(f"cannot read --endpoints {endpoints}: {err}") from None
        dsn = dsn or found.get("postgres_dsn")
        root = root or found.get("warehouse_root")
    dsn = dsn or os.environ.get("GAMEPLAY_ANALYTICS_POSTGRES_DSN")
    root = root or os.environ.get("GAMEPLAY_ANALYTICS_WAREHOUSE_ROOT")
    if args.store == "hot":
        if not dsn:
            raise InsightsError("the hot store needs --dsn or --endpoints")
        return HotStore(dsn)
    if not root:
        raise InsightsError("the warm store needs --root or --endpoints")
    return WarmStore(root, endpoint=args.s3_endpoint)


def _run_metric(args: argparse.Namespace) -> int:
    from gameplay_analytics.insights import core, render
    from gameplay_analytics.insights.stores import InsightsError

    try:
        params = _params(args)
        store = open_store(args)
        try:
            result = core.compute(args.metric, store, params)
        finally:
            store.close()
        if args.plot:
            from gameplay_analytics.insights import plot

            try:
                plot.plot_result(result, Path(args.plot))
            except (OSError, ValueError) as err:
                raise InsightsError(f"cannot write --plot {args.plot}: {err}") from None
    except InsightsError as err:
        return _refuse(str(err))
    sys.stdout.write(render.render_result(result, args.format))
    return 0


def _params(args: argparse.Namespace) -> Params:
    from gameplay_analytics.insights import core

    return core.Params(
        store=args.store,
        date_from=args.date_from,
        date_to=args.date_to,
        by=tuple(d.strip() for d in args.by.split(",") if d.strip()),
        window=args.window,
    )


def _run_report(args: argparse.Namespace) -> int:
    from gameplay_analytics.insights import report
    from gameplay_analytics.insights.stores import InsightsError

    out = Path(args.out)
    try:
        params = _params(args)
        store = open_store(args)
        try:
            index = report.write_report(store, params, out)
        finally:
            store.close()
    except OSError as err:
        return _refuse(f"cannot write the report to {out}: {err}")
    except InsightsError as err:
        return _refuse(str(err))
    print(f"report: {index}")
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from gameplay_analytics.insights import server
    from gameplay_analytics.insights.stores import InsightsError

    try:
        _params(args)  # refuse bad defaults before serving
        open_store(args).close()  # and an unreachable or missing store
    except InsightsError as err:
        return _refuse(str(err))
    app = server.build_app(lambda: open_store(args), store_name=args.store)
    print(f"serving http://{args.host}:{args.port}/", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


def _run_query(args: argparse.Namespace) -> int:
    from gameplay_analytics.insights import render
    from gameplay_analytics.insights.stores import InsightsError, WarmStore

    try:
        store = WarmStore(args.root, endpoint=args.s3_endpoint)
        try:
            rows = store.fetch(args.sql, [])
        finally:
            store.close()
    except InsightsError as err:
        return _refuse(str(err))
    if args.format == "json":
        print(json.dumps({"rows": rows}, default=str, ensure_ascii=False))
    elif args.format == "csv":
        sys.stdout.write(render.rows_as_csv(rows))
    elif args.format == "table":
        sys.stdout.write(render.rows_as_table(rows) if rows else "(no rows)\n")
    else:
        names = render.columns(rows)
        print("\t".join(names))
        for row in rows:
            print("\t".join("" if row[n] is None else str(row[n]) for n in names))
    return 0


def _refuse(message: str) -> int:
    print(f"gameplay-analytics: {message}", file=sys.stderr)
    return EXIT_REFUSED
