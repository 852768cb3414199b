"""`gameplay-analytics privacy erase | access | scan` (PROTOCOL.md §7).

The player UUID comes from `--player UUID` or, with `--player -`, from stdin (so it stays out
of shell history and process listings); it is never printed, logged or echoed in an error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from gameplay_analytics.commands import stores

__all__ = ["register"]


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
        stores.add_store_options(cmd)
        stores.add_salt_option(cmd)
        cmd.add_argument(
            "--no-event-messages", dest="event_messages", action="store_false",
            help="skip scanning the events subject (large streams: about 10,000 messages/s); "
            "its messages then leave with the stream's max_age, and tombstones keep them out",
        )  # fmt: skip
        cmd.add_argument("--format", choices=("text", "json"), default="text")
        cmd.set_defaults(run=_request(kind))
    register_scan(commands)


def _request(kind: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        import asyncio
        import datetime as dt

        from gameplay_analytics.privacy.pseudonym import Pseudonymiser
        from gameplay_analytics.runtime import privacy_requests

        try:
            player = _player(args.player, args.player_file)
            where = privacy_requests.PrivacyStores(
                **stores.endpoints(args, nats_role="privacy"), event_messages=args.event_messages
            )
            salts = stores.salt_book(args, f"privacy {kind}")
            profile_secret = stores.profile_secret(args, f"privacy {kind}", salts)
        except (stores.Refused, ValueError) as err:
            print(f"privacy {kind}: {err}", file=sys.stderr)
            return 2
        act = privacy_requests.erase_player if kind == "erase" else privacy_requests.access_player
        try:
            result = asyncio.run(
                act(
                    player, stores=where, pseudonymiser=Pseudonymiser(salts),
                    now=dt.datetime.now(dt.UTC), profile_secret=profile_secret,
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
            raise stores.Refused(f"cannot read --player-file: {err.strerror}") from None
    else:
        text = sys.stdin.readline() if value == "-" else str(value)
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise stores.Refused("--player is not a UUID") from None  # the value is not echoed


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
    stores.add_store_options(scan)
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
    try:
        given = args.nats_url or endpoints.get("nats_url")
        nats_url = stores.nats_login(given, endpoints, "privacy")
    except stores.Refused as err:
        print(f"privacy scan: {err}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(
            privacy_scan.scan_all(
                dsn=args.dsn or endpoints.get("postgres_dsn"),
                warehouse_root=_scan_root(args, endpoints),
                nats_url=nats_url, log_paths=logs, player_uuids=players, canaries=args.canary,
                server_ports=set(args.server_port) | server_ports(endpoints),
            )
        )  # fmt: skip
    except (OSError, TimeoutError) as err:
        print(f"privacy scan: a store is unreachable: {type(err).__name__}", file=sys.stderr)
        return 2
    for finding in report.findings:
        print(finding.redacted())
    print(report.line("scan"))
    return 1 if report.findings else 0


def server_ports(endpoints: dict[str, Any]) -> set[int]:
    """The ports of the servers `endpoints.json` names (every node of a NATS cluster's URL
    list): their own listen addresses in a log are not findings."""
    from urllib.parse import urlsplit

    from gameplay_analytics.runtime import jetstream

    urls = [*jetstream.servers(endpoints.get("nats_url") or ""), endpoints.get("postgres_dsn")]
    urls += [endpoints.get("ws_url"), *(endpoints.get("metrics_urls") or {}).values()]
    ports = set()
    for url in urls:
        with contextlib.suppress(ValueError):  # not a URL with a port: nothing to allow
            if url and (port := urlsplit(str(url)).port):
                ports.add(port)
    return ports


def _scan_root(args: argparse.Namespace, endpoints: dict[str, Any]) -> Any:
    root = args.root or endpoints.get("warehouse_root")
    if not root:
        return None
    from gameplay_analytics.runtime.storage.objectstore import open_root

    return open_root(str(root), endpoint=args.s3_endpoint, region=args.s3_region)
