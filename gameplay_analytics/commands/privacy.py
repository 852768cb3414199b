"""`gameplay-analytics privacy erase | access | scan` (PROTOCOL.md §7).

The player UUID comes from `--player UUID` or, with `--player -`, from stdin (so it stays out
of shell history and process listings); it is never printed, logged or echoed in an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

__all__ = ["register"]

_ENV = "GAMEPLAY_ANALYTICS_"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    group = sub.add_parser("privacy", help="erasure and access requests, the privacy scan")
    commands = group.add_subparsers(dest="privacy_command", required=True)
    for kind, help_text in (
        ("erase", "remove a player from every store (idempotent), with an audit row"),
        ("access", "everything stored about a player, with an audit row"),
    ):
        cmd = commands.add_parser(kind, help=help_text)
        who = cmd.add_mutually_exclusive_group(required=True)
        who.add_argument("--player", help="player UUID, or - to read it from stdin")
        who.add_argument(
            "--player-file", help="a file holding the UUID (a mounted Secret in a cluster Job)"
        )
        _store_options(cmd)
        cmd.add_argument(
            "--salt-secret-file",
            default=os.environ.get(f"{_ENV}SALT_SECRET_FILE"),
            help="the aggregator's salt secret file (else GAMEPLAY_ANALYTICS_SALT_SECRET)",
        )
        cmd.add_argument(
            "--warm-retention-days", type=int,
            default=int(os.environ.get(f"{_ENV}WARM_RETENTION_DAYS", "183")),
            help="how far back the salt months go (the warm retention)",
        )  # fmt: skip
        cmd.add_argument("--format", choices=("text", "json"), default="text")
        cmd.set_defaults(run=_request(kind))
    register_scan(commands)


def _store_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--endpoints", help="endpoints.json of `gameplay-analytics up`")
    cmd.add_argument("--dsn", default=os.environ.get(f"{_ENV}POSTGRES_DSN"), help="hot store")
    cmd.add_argument(
        "--root", default=os.environ.get(f"{_ENV}WAREHOUSE_ROOT"), help="warm store root"
    )
    cmd.add_argument("--s3-endpoint", default=os.environ.get(f"{_ENV}S3_ENDPOINT"))
    cmd.add_argument("--s3-region", default=os.environ.get(f"{_ENV}S3_REGION"))
    cmd.add_argument("--nats-url", default=os.environ.get(f"{_ENV}NATS_URL"), help="JetStream")
    for option, var in (
        ("--stream", "STREAM"),
        ("--events-subject", "EVENTS_SUBJECT"),
        ("--dlq-subject", "DLQ_SUBJECT"),
    ):  # the pipeline's own NATS names, as the operator renders them
        cmd.add_argument(
            option,
            default=os.environ.get(f"{_ENV}{var}"),
            help=f"default: GAMEPLAY_ANALYTICS_{var}, else the local stack's",
        )


class _Refused(Exception):
    """A bad argument or an unreachable store: one line on stderr, exit 2."""


def _request(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        import asyncio
        import datetime as dt

        from gameplay_analytics.privacy.pseudonym import Pseudonymiser, load_salt_book
        from gameplay_analytics.runtime import privacy_requests

        try:
            player = _player(args.player, args.player_file)
            stores = _stores(args)
            secret_file = Path(args.salt_secret_file) if args.salt_secret_file else None
            salts = load_salt_book(secret_file=secret_file, env=os.environ)
        except (_Refused, ValueError) as err:
            print(f"privacy {kind}: {err}", file=sys.stderr)
            return 2
        if salts.development:
            print(
                f"privacy {kind}: no salt secret given: using the development salt",
                file=sys.stderr,
            )
        act = privacy_requests.erase_player if kind == "erase" else privacy_requests.access_player
        try:
            result = asyncio.run(
                act(
                    player, stores=stores, pseudonymiser=Pseudonymiser(salts),
                    now=dt.datetime.now(dt.UTC),
                )
            )  # fmt: skip
        except (OSError, TimeoutError) as err:
            print(f"privacy {kind}: a store is unreachable: {type(err).__name__}", file=sys.stderr)
            return 2
        _print(result, args.format)
        return 0

    return run


def _player(value: str | None, path: str | None) -> str:
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise _Refused(f"cannot read --player-file: {err.strerror}") from None
    else:
        text = sys.stdin.readline() if value == "-" else str(value)
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise _Refused("--player is not a UUID") from None  # the value is not echoed


def _stores(args: argparse.Namespace) -> Any:
    from gameplay_analytics.contract.natsnames import PipelineNames
    from gameplay_analytics.runtime.privacy_requests import PrivacyStores

    names = PipelineNames()
    found: dict[str, Any] = {}
    if args.endpoints:
        try:
            found = json.loads(Path(args.endpoints).read_text())
        except (OSError, ValueError) as err:
            raise _Refused(f"cannot read {args.endpoints}: {err}") from None
    dsn = args.dsn or found.get("postgres_dsn")
    if not dsn:
        raise _Refused("the hot store is needed: --endpoints, --dsn or POSTGRES_DSN")
    return PrivacyStores(
        postgres_dsn=dsn,
        warehouse_root=args.root or found.get("warehouse_root"),
        s3_endpoint=args.s3_endpoint,
        s3_region=args.s3_region,
        nats_url=args.nats_url or found.get("nats_url"),
        stream=args.stream or names.stream,
        events_subject=args.events_subject or names.events_subject,
        dlq_subject=args.dlq_subject or names.dlq_subject,
        warm_retention_days=args.warm_retention_days,
    )


def _print(result: Any, fmt: str) -> None:
    if fmt == "json":
        doc = {
            "request_id": str(result.request_id),
            "kind": result.kind,
            "rows_by_store": result.rows_by_store,
            "total": result.total,
        }
        if result.kind == "access":
            doc["records"] = result.records
        print(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return
    if result.total == 0:
        verb = "already erased or never stored" if result.kind == "erase" else "nothing stored"
        print(f"{result.kind} {result.request_id}: nothing found ({verb})")
        return
    verb = "removed" if result.kind == "erase" else "found"
    print(f"{result.kind} {result.request_id}: {verb} {result.total} rows")
    for store, count in sorted(result.rows_by_store.items()):
        print(f"  {store}: {count}")


def register_scan(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    scan = commands.add_parser(
        "scan", help="search every store and log for raw UUIDs, IPs, free text, age fields"
    )
    _store_options(scan)
    scan.add_argument(
        "--logs", action="append", default=[], help="a log file or a folder of *.log; repeatable"
    )
    scan.add_argument(
        "--players-file",
        help="raw player UUIDs to look for, one a line (- for stdin); "
        "default: any UUID outside the id columns",
    )
    scan.add_argument("--canary", action="append", default=[], help="planted text; repeatable")
    scan.add_argument(
        "--server-port", action="append", type=int, default=[],
        help="a server's own port: its listen address in a log is not a finding; repeatable",
    )  # fmt: skip
    scan.set_defaults(run=_scan)


def _scan(args: argparse.Namespace) -> int:
    import asyncio
    from urllib.parse import urlparse

    from gameplay_analytics.runtime import privacy_scan

    endpoints: dict[str, Any] = {}
    try:
        if args.endpoints:
            endpoints = json.loads(Path(args.endpoints).read_text())
        players = None
        if args.players_file:
            lines = (
                sys.stdin.read()
                if args.players_file == "-"
                else Path(args.players_file).read_text()
            ).split()
            players = [str(uuid.UUID(line)) for line in lines]
    except (OSError, ValueError) as err:
        print(f"privacy scan: {type(err).__name__}: a bad argument file", file=sys.stderr)
        return 2
    logs: list[Path] = []
    for given in args.logs:
        path = Path(given)
        logs += sorted(path.rglob("*.log")) if path.is_dir() else [path]
    urls = [endpoints.get("nats_url"), endpoints.get("postgres_dsn"), endpoints.get("ws_url")]
    urls += list((endpoints.get("metrics_urls") or {}).values())
    ports = set(args.server_port) | {p for u in urls if u and (p := urlparse(str(u)).port)}
    try:
        report = asyncio.run(
            privacy_scan.scan_all(
                dsn=args.dsn or endpoints.get("postgres_dsn"),
                warehouse_root=_scan_root(args, endpoints),
                nats_url=args.nats_url or endpoints.get("nats_url"),
                log_paths=logs, player_uuids=players, canaries=args.canary,
                server_ports=ports,
            )
        )  # fmt: skip
    except (OSError, TimeoutError) as err:
        print(f"privacy scan: a store is unreachable: {type(err).__name__}", file=sys.stderr)
        return 2
    for finding in report.findings:
        print(finding.redacted())
    print(report.line("scan"))
    return 1 if report.findings else 0


def _scan_root(args: argparse.Namespace, endpoints: dict[str, Any]) -> Any:
    root = args.root or endpoints.get("warehouse_root")
    if not root:
        return None
    from gameplay_analytics.runtime.storage.objectstore import open_root

    return open_root(str(root), endpoint=args.s3_endpoint, region=args.s3_region)
