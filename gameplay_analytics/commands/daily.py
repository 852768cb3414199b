"""`gameplay-analytics insights daily --out DIR`: the daily job. Builds the dbt marts
(analytics/dbt/, on the store the options name) and writes the day's summary for the roadmap
review (DIR/summary.json, DIR/summary.md; insights/daily.py), and prints the Markdown.

`--dbt auto` (default) builds when dbt is installed and says so in the summary when it is
not; `always` refuses without dbt; `never` skips it. Exit 0 when the summary is written and
dbt (if run) passed, 1 when dbt failed (the summary is still written), 2 on a refusal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gameplay_analytics.commands.options import add_window_option

__all__ = ["register"]

EXIT_DBT_FAILED = 1


def register(
    metrics: argparse._SubParsersAction[Any],
    store_options: Callable[[argparse.ArgumentParser], None],
    date: Callable[[str], Any],
) -> None:
    """Add `daily` to the `insights` subcommands (with the group's own option helpers)."""
    parser = metrics.add_parser("daily", help="build the dbt marts and write the day's summary")
    store_options(parser)
    parser.add_argument(
        "--out", required=True, help="folder for summary.json, summary.md, dbt/ ({day}: the day)"
    )
    parser.add_argument("--day", type=date, help="the day summarised (default: yesterday, UTC)")
    add_window_option(parser)
    parser.add_argument("--dbt", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental marts")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from gameplay_analytics.commands.insights import EXIT_REFUSED, open_store
    from gameplay_analytics.insights import daily
    from gameplay_analytics.insights.stores import InsightsError

    day = args.day or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    out = Path(args.out.replace("{day}", day.isoformat()))  # a folder a day from a schedule
    try:
        if args.window < 0:
            raise InsightsError(f"--window must be a whole number of days ≥ 0, not {args.window}")
        store = open_store(args)
        try:
            built = _dbt(args, store, out / "dbt")
            found = daily.collect(store, day, args.window)
        finally:
            store.close()
        extra = {"store": store.name, "window": args.window, "dbt": built}
        summary = daily.summarise(day, found["today"], found["yesterday"], extra=extra)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        text = daily.markdown(summary)
        (out / "summary.md").write_text(text, encoding="utf-8")
    except OSError as err:
        print(f"gameplay-analytics: cannot write the summary to {out}: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except InsightsError as err:
        print(f"gameplay-analytics: {err}", file=sys.stderr)
        return EXIT_REFUSED
    print(text)  # the log keeps it too: a CronJob's `--out` may be an emptyDir
    print(f"summary: {out / 'summary.md'} (dbt: {built['status']})")
    if built["status"] == "failed":
        for failure in built["failures"]:
            print(f"dbt: {failure}", file=sys.stderr)
        return EXIT_DBT_FAILED
    return 0


def _dbt(args: argparse.Namespace, store: Any, work: Path) -> dict[str, Any]:
    """Build the marts on `store`; the outcome as the summary's `dbt` entry."""
    from gameplay_analytics.insights import dbt_run
    from gameplay_analytics.insights.stores import InsightsError

    if args.dbt == "never":
        return {"status": "skipped", "reason": "--dbt never"}
    found = dbt_run.find_dbt()
    if found is None:
        if args.dbt == "always":
            raise InsightsError(f"dbt is not installed (make dbt-venv, or set {dbt_run.DBT_ENV})")
        return {"status": "skipped", "reason": "dbt is not installed"}
    if store.name == "hot":
        env = dbt_run.environment(dsn=store.dsn, work=work)
    else:
        env = dbt_run.environment(root=store.root, work=work)
    result = dbt_run.build(found, env, work, full_refresh=args.full_refresh)
    return {
        "status": "passed" if result.ok else "failed",
        "target": result.target,
        "counts": result.counts,
        "failures": result.failures,
        "log": str(result.log),
    }
