"""Run the dbt project (analytics/dbt/) against the hot or the warm store.

dbt lives in its own virtualenv (`make dbt-venv`: `.venv/dbt`): dbt-core<1.12 pins
pathspec<0.13 while mypy needs pathspec>=1, so the two cannot share one environment. dbt is
found as GAMEPLAY_ANALYTICS_DBT, else `<this venv>/dbt/bin/dbt`, else `dbt` on PATH.

`environment` (pure) maps a store to the variables profiles.yml reads; `build` runs
`dbt build` in a subprocess with its target, logs and DuckDB file under a folder of the
caller's, and reports the outcome from dbt's run_results.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from gameplay_analytics.insights.stores import InsightsError

__all__ = ["DBT_ENV", "BuildResult", "build", "environment", "find_dbt", "project_dir"]

DBT_ENV: Final = "GAMEPLAY_ANALYTICS_DBT"
DUCKDB_FILE: Final = "marts.duckdb"
"""The DuckDB database the duckdb target builds the marts in (under the caller's folder)."""
TIMEOUT_S: Final = 1800.0


@dataclasses.dataclass(frozen=True, slots=True)
class BuildResult:
    ok: bool
    target: str
    counts: dict[str, int]
    """Nodes by status (success, pass, error, fail, warn, skipped) from run_results.json."""
    failures: list[str]
    log: Path


def find_dbt() -> str | None:
    """The dbt executable, or None when dbt is not installed."""
    named = os.environ.get(DBT_ENV)
    if named:
        return named if Path(named).is_file() else None
    nested = Path(sys.prefix) / "dbt" / "bin" / "dbt"
    if nested.is_file():
        return str(nested)
    return shutil.which("dbt")


def project_dir() -> Path:
    """analytics/dbt of the checkout this package runs from (or of the working directory)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / "analytics" / "dbt" / "dbt_project.yml").is_file():
            return base / "analytics" / "dbt"
    raise InsightsError("no analytics/dbt/dbt_project.yml here: run from the repository")


def environment(*, dsn: str | None = None, root: str | None = None, work: Path) -> dict[str, str]:
    """The variables profiles.yml reads, for the hot store at `dsn` or the warm store at
    `root` (a local folder: DuckDB's S3 support is not in the wheel)."""
    env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    if dsn:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgres", "postgresql"):
            raise InsightsError(f"not a postgresql:// DSN: {parts.scheme or dsn!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        env |= {
            "GAMEPLAY_ANALYTICS_DBT_TARGET": "postgres",
            "PGHOST": query.get("host") or parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port or query.get("port") or 5432),
            "PGUSER": unquote(parts.username or "") or query.get("user") or "postgres",
            "PGPASSWORD": unquote(parts.password or "") or query.get("password") or "",
            "PGDATABASE": parts.path.lstrip("/") or "postgres",
        }
        return env
    if not root:
        raise InsightsError("dbt needs the hot store's --dsn or the warm store's --root")
    if "://" in root:
        raise InsightsError(f"dbt's DuckDB target reads a local warm store, not {root}")
    return env | {
        "GAMEPLAY_ANALYTICS_DBT_TARGET": "duckdb",
        "GAMEPLAY_ANALYTICS_WAREHOUSE_ROOT": str(Path(root).resolve()),
        "GAMEPLAY_ANALYTICS_DBT_DUCKDB": str((work / DUCKDB_FILE).resolve()),
    }


def build(dbt: str, env: dict[str, str], work: Path, *, full_refresh: bool = False) -> BuildResult:
    """`dbt build` (models, then their tests) with target and logs under `work`."""
    project = project_dir()
    work.mkdir(parents=True, exist_ok=True)
    target = work / "target"
    command = [
        dbt, "build", "--project-dir", str(project), "--profiles-dir", str(project),
        "--target-path", str(target.resolve()), "--log-path", str((work / "logs").resolve()),
        "--no-use-colors",
    ]  # fmt: skip
    if full_refresh:
        command.append("--full-refresh")
    log = work / "dbt-build.log"
    try:
        done = subprocess.run(
            command, env={**os.environ, **env}, capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False, cwd=work,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        raise InsightsError(f"dbt build did not run: {err}") from None
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    counts, failures = _results(target / "run_results.json")
    ok = done.returncode == 0 and not failures
    if not counts and not ok:
        failures = [_last_line(done.stdout + done.stderr)]
    return BuildResult(ok, env.get("GAMEPLAY_ANALYTICS_DBT_TARGET", "?"), counts, failures, log)


def _results(path: Path) -> tuple[dict[str, int], list[str]]:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError):
        return {}, []
    counts: dict[str, int] = {}
    failures = []
    for node in results:
        status = str(node.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if status in ("error", "fail"):
            failures.append(f"{node.get('unique_id')}: {_last_line(str(node.get('message')))}")
    return counts, failures


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
