"""`gameplay-analytics`: the one command for every process and tool of the pipeline.

Subcommands import what they need lazily, so `schema check` never pulls in kopf or asyncpg.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]

DEV_JWT_SECRET = "gameplay-analytics-dev-secret-change-me"


def jwt_secret() -> str:
    """The pipeline's JWT secret; the development default is announced on stderr."""
    secret = os.environ.get("GAMEPLAY_ANALYTICS_JWT_SECRET")
    if secret:
        return secret
    print(
        "GAMEPLAY_ANALYTICS_JWT_SECRET is unset: using the development secret "
        f"{DEV_JWT_SECRET!r} (never in production)",
        file=sys.stderr,
    )
    return DEV_JWT_SECRET


def _schema_check(args: argparse.Namespace) -> int:
    from gameplay_analytics.contract.schema_check import check_schemas

    report = check_schemas(Path(args.schemas) if args.schemas else None)
    for problem in report.problems:
        print(f"FAIL {problem}")
    verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"schema check: {report.checked_fixtures} fixtures checked, {verdict}")
    return 0 if report.ok else 1


def _schema_release(args: argparse.Namespace) -> int:
    from gameplay_analytics.contract.paths import schemas_dir
    from gameplay_analytics.contract.registry import working_schemas
    from gameplay_analytics.contract.schema_check import check_schemas

    root = Path(args.schemas) if args.schemas else schemas_dir()
    report = check_schemas(root)
    if not report.ok:
        print("refusing to release: run `gameplay-analytics schema check`", file=sys.stderr)
        return 1
    for version, document in working_schemas(root).items():
        target = root / "analytics" / "released" / f"{version}.schema.json"
        if not target.exists():
            target.write_text(json.dumps(document, indent=2) + "\n")
            print(f"released {version} → {target}")
    return 0


def _token(args: argparse.Namespace) -> int:
    import jwt

    player = str(uuid.UUID(args.player))
    claims: dict[str, object] = {"sub": player, "exp": int(time.time()) + args.ttl}
    if args.shard:
        claims["shard"] = args.shard
    if args.region:
        claims["region"] = args.region
    print(jwt.encode(claims, jwt_secret(), algorithm="HS256"))
    return 0


def _not_yet(what: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        print(f"{what}: not yet — lands with its issue", file=sys.stderr)
        return 2

    return run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gameplay-analytics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    schema = sub.add_parser("schema", help="the event schema gate").add_subparsers(
        dest="schema_command", required=True
    )
    check = schema.add_parser("check", help="validate fixtures and compatibility (CI gate)")
    check.add_argument("--schemas", help="schemas folder (default: the shipped one)")
    check.set_defaults(run=_schema_check)
    release = schema.add_parser("release", help="freeze the working schema as released")
    release.add_argument("--schemas", help="schemas folder (default: the shipped one)")
    release.set_defaults(run=_schema_release)

    token = sub.add_parser("token", help="print a JWT for a player (development)")
    token.add_argument("--player", required=True, help="player UUID")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--shard")
    token.add_argument("--region")
    token.set_defaults(run=_token)

    for name, help_text in (
        ("up", "start nats-server, Postgres, gateway and aggregator locally"),
        ("demo", "run the local pipeline with synthetic players, then report"),
        ("gateway", "run the ingest gateway"),
        ("aggregator", "run the aggregator"),
        ("operator", "run the Kubernetes operator"),
        ("query", "SQL over the warm store with DuckDB"),
    ):
        sub.add_parser(name, help=help_text).set_defaults(run=_not_yet(name))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
