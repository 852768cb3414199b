"""`gameplay-analytics`: the one command for every process and tool of the pipeline.

Subcommands import what they need lazily, so `schema check` never pulls in kopf or asyncpg.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from gameplay_analytics.commands import (
    bucketpolicy,
    insights,
    natsusers,
    privacy,
    quality,
    replay,
    status,
)

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
    from gameplay_analytics.runtime.gateway.auth import issue_token

    token = issue_token(
        uuid.UUID(args.player),
        secret=jwt_secret(),
        ttl_s=args.ttl,
        shard=args.shard,
        region=args.region,
    )
    print(token)
    return 0


def _up(args: argparse.Namespace) -> int:
    import signal
    import time

    from gameplay_analytics.contract.natsnames import PipelineNames
    from gameplay_analytics.contract.natsperms import Role
    from gameplay_analytics.local import heartbeat, supervise
    from gameplay_analytics.local.services import ServiceError
    from gameplay_analytics.local.stack import LocalStack, StackConfig
    from gameplay_analytics.runtime import logs

    logs.configure("up")
    if args.gateway_workers < 1:  # 0 ran one gateway whose readiness nobody waited for
        print(
            f"up: --gateway-workers must be at least 1, not {args.gateway_workers}", file=sys.stderr
        )
        return 2

    stack = LocalStack(
        StackConfig(
            data_dir=Path(args.data_dir),
            ws_port=args.ws_port,
            jwt_secret=jwt_secret(),
            gateway_workers=args.gateway_workers,
        )
    )
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    try:
        stack.start()
    except ServiceError as err:
        print(f"up: {err}", file=sys.stderr)
        return 1
    print(f"ready {stack.endpoints_path}", flush=True)
    beat = heartbeat.LocalHeartbeat(
        metrics_urls=stack.gateway.metrics_urls if stack.gateway else [],
        nats_url=stack.nats_url_as(Role.OPERATOR),  # in a cluster the operator publishes
        bucket=PipelineNames().config_bucket,
    )
    next_beat = time.monotonic() + heartbeat.INTERVAL_S
    try:
        while not stopping:
            stack.supervise()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + heartbeat.INTERVAL_S
                try:
                    beat.step(time.time())
                except Exception as err:  # the controller never takes `up` down
                    print(f"up: heartbeat step failed ({type(err).__name__})", file=sys.stderr)
            time.sleep(supervise.CHECK_INTERVAL_S)
    finally:
        stack.stop()
    return 0


def _serve(role: str) -> Callable[[argparse.Namespace], int]:
    """Run one runtime process until SIGTERM/SIGINT. The entry (`run_gateway`,
    `run_aggregator`) owns its signals: each starts that process's own graceful shutdown."""

    def run(args: argparse.Namespace) -> int:
        import asyncio
        import importlib

        import pydantic

        from gameplay_analytics.runtime import environment, jetstream, logs

        logs.configure(role)
        module, settings_cls, entry = _RUNTIME[role]
        app = importlib.import_module(module)
        models = [
            logs.LogSettings,
            *(getattr(importlib.import_module(m), cls) for m, cls, _ in _RUNTIME.values()),
        ]
        try:
            environment.check_environment(os.environ, models=models)
            settings = getattr(app, settings_cls)()
        except (environment.UnknownSettings, pydantic.ValidationError) as err:
            print(f"{role}: {err}", file=sys.stderr)
            return 2
        if getattr(args, "workers", 1) != 1:
            from gameplay_analytics.runtime.gateway import workers

            return workers.supervise(settings, args.workers)
        try:
            asyncio.run(getattr(app, entry)(settings))
        except jetstream.MissingInfrastructure as err:
            print(f"{role}: {err}", file=sys.stderr)
            return 1
        return 0

    return run


_RUNTIME = {
    "gateway": ("gameplay_analytics.runtime.gateway.app", "GatewaySettings", "run_gateway"),
    "aggregator": (
        "gameplay_analytics.runtime.aggregator.app", "AggregatorSettings", "run_aggregator",
    ),
}  # fmt: skip


def _operator(_: argparse.Namespace) -> int:
    from gameplay_analytics.operator import runner
    from gameplay_analytics.runtime import logs

    logs.configure("operator")
    runner.main()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gameplay_analytics.local import demo

    return demo.main(
        data_dir=Path(args.data_dir) if args.data_dir else None,
        players=args.players,
        seconds=args.seconds,
        jwt_secret=jwt_secret(),
    )


def _load(args: argparse.Namespace) -> int:
    import asyncio
    import tempfile

    from gameplay_analytics.loadgen import EventMix, LoadProfile, Target, run_load_test
    from gameplay_analytics.local import natsauth
    from gameplay_analytics.local.stack import LocalStack, StackConfig

    profile = LoadProfile(
        players=args.players, seconds=args.seconds, pace=args.pace, ramp_s=args.ramp,
        session_s=args.session_seconds, mix=EventMix.parse(args.mix),
        disconnect_share=args.disconnects, steady_rate=args.steady_rate, seed=args.seed,
    )  # fmt: skip
    root = Path(args.data_dir or tempfile.mkdtemp(prefix="gameplay-load-"))
    stack = None
    if args.url:
        target = Target(args.url, args.secret or jwt_secret(), args.dsn,
                        args.gateway_metrics, tuple(args.aggregator_metrics))  # fmt: skip
    else:
        secret = args.secret or jwt_secret()
        stack = LocalStack(StackConfig(data_dir=root, jwt_secret=secret))
        print(f"• starting the local stack in {root} …", flush=True)
        stack.start()
        assert stack.gateway is not None
        target = Target(stack.ws_url, secret, stack.postgres.dsn, stack.gateway.metrics_url,
                        tuple(a.metrics_url for a in stack.aggregators),
                        nats_url=stack.nats_url_as(natsauth.ADMIN))  # fmt: skip
    print(f"• {profile.players} players × {profile.seconds:g} s against {target.ws_url} …")
    try:
        report = asyncio.run(
            run_load_test(
                target,
                profile,
                state_dir=root / "players",
                out=sys.stdout,
                plot_path=Path(args.plot) if args.plot else None,
            )
        )
    finally:
        if stack is not None:
            stack.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(report.summary(), indent=2) + "\n")
    return 0 if report.ok or report.reconciliation is None else 1


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

    up = sub.add_parser("up", help="start nats-server, Postgres, gateway and aggregator")
    up.add_argument("--data-dir", default=".data/local", help="where every part keeps its data")
    up.add_argument("--ws-port", type=int, default=0, help="gateway WebSocket port (0: any)")
    up.add_argument(
        "--gateway-workers",
        type=int,
        default=1,
        help="gateway processes sharing the WebSocket port (gateway --workers)",
    )
    up.set_defaults(run=_up)

    for role in _RUNTIME:
        runtime = sub.add_parser(role, help=f"run the {role} (settings from GAMEPLAY_ANALYTICS_*)")
        runtime.set_defaults(run=_serve(role))
    gateway_parser = sub.choices["gateway"]
    gateway_parser.add_argument(
        "--workers", type=int, default=1, help="gateway processes sharing the port (SO_REUSEPORT)"
    )

    sub.add_parser(
        "operator", help="run the Kubernetes operator (settings from GAMEPLAY_ANALYTICS_OPERATOR_*)"
    ).set_defaults(run=_operator)

    demo = sub.add_parser("demo", help="the local pipeline with synthetic players, then report")
    demo.add_argument("--data-dir", help="keep the stack's data here (default: a temp folder)")
    demo.add_argument("--players", type=int, default=300, help="synthetic players")
    demo.add_argument("--seconds", type=float, default=60.0, help="how long they play")
    demo.set_defaults(run=_demo)

    load = sub.add_parser(
        "load", help="synthetic players against a gateway, then latency, resources, reconciliation"
    )
    load.add_argument("--url", help="gateway ws://…/ws (default: start a local stack)")
    load.add_argument("--secret", help="JWT secret (default: GAMEPLAY_ANALYTICS_JWT_SECRET)")
    load.add_argument("--dsn", help="Postgres DSN of the hot store (with --url)")
    load.add_argument("--gateway-metrics", help="gateway /metrics URL (with --url)")
    load.add_argument("--aggregator-metrics", action="append", default=[], help="repeatable")
    load.add_argument("--data-dir", help="local stack and SDK state (default: a temp folder)")
    load.add_argument("--players", type=int, default=500, help="synthetic players")
    load.add_argument("--seconds", type=float, default=60.0, help="how long each one plays")
    load.add_argument("--pace", type=float, default=1.0, help="1.0 ≈ 20 events/s tracked each")
    load.add_argument("--steady-rate", type=float, help="exact events/s per player instead")
    load.add_argument("--session-seconds", type=float, help="session length (default: --seconds)")
    load.add_argument("--mix", default="", help="e.g. combat=0.55,progression=0.25,social=0.12")
    load.add_argument("--disconnects", type=float, default=0.1, help="share of players dropped")
    load.add_argument("--ramp", type=float, default=5.0, help="seconds over which players join")
    load.add_argument("--seed", type=int, default=7)
    load.add_argument("--plot", help="write a PNG of the run over time here")
    load.add_argument("--json", help="write the summary figures here")
    load.set_defaults(run=_load)

    privacy.register(sub)
    replay.register(sub)
    status.register(sub)
    insights.register(sub)  # insights METRIC, query
    quality.register(sub)
    natsusers.register(sub)
    bucketpolicy.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
