"""Options shared by the commands that act on a pipeline's stores (`privacy`, `replay`): where
the hot store, warm store and JetStream are, the NATS names, and the salt secret.

Each option defaults to the variable the operator renders for the pipeline's processes
(`GAMEPLAY_ANALYTICS_*`), so a Job in the cluster needs no arguments beyond the request;
`--endpoints` reads the local stack's `endpoints.json`. Each command logs in to NATS as its
own least-privilege user (`contract.natsperms`): from the local stack's users file, or from
`GAMEPLAY_ANALYTICS_NATS_USER`/`…_NATS_PASSWORD` in a cluster.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from gameplay_analytics.contract.natsnames import ENV_PREFIX

__all__ = [
    "ENV",
    "Refused",
    "add_salt_option",
    "add_store_options",
    "endpoints",
    "nats_login",
    "profile_secret",
    "salt_book",
]

ENV = ENV_PREFIX


class Refused(Exception):
    """A bad argument or an unreachable store: one line on stderr, exit 2."""


def add_store_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--endpoints", help="endpoints.json of `gameplay-analytics up`")
    cmd.add_argument("--dsn", default=os.environ.get(f"{ENV}POSTGRES_DSN"), help="hot store")
    cmd.add_argument(
        "--root", default=os.environ.get(f"{ENV}WAREHOUSE_ROOT"), help="warm store root"
    )
    cmd.add_argument("--s3-endpoint", default=os.environ.get(f"{ENV}S3_ENDPOINT"))
    cmd.add_argument("--s3-region", default=os.environ.get(f"{ENV}S3_REGION"))
    cmd.add_argument("--nats-url", default=os.environ.get(f"{ENV}NATS_URL"), help="JetStream")
    for option, var in (
        ("--stream", "STREAM"),
        ("--events-subject", "EVENTS_SUBJECT"),
        ("--dlq-subject", "DLQ_SUBJECT"),
    ):  # the pipeline's own NATS names, as the operator renders them
        cmd.add_argument(
            option,
            default=os.environ.get(f"{ENV}{var}"),
            help=f"default: GAMEPLAY_ANALYTICS_{var}, else the local stack's",
        )
    cmd.add_argument(
        "--warm-retention-days", type=int,
        default=int(os.environ.get(f"{ENV}WARM_RETENTION_DAYS", "183")),
        help="the warm retention (salt months searched; the too_old bound)",
    )  # fmt: skip


def add_salt_option(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--salt-secret-file",
        default=os.environ.get(f"{ENV}SALT_SECRET_FILE"),
        help="the gateway's salt secret file (else GAMEPLAY_ANALYTICS_SALT_SECRET)",
    )
    cmd.add_argument(
        "--profile-secret-file",
        help="the onboarding profile's key secret, in a file "
        "(else GAMEPLAY_ANALYTICS_PROFILE_SECRET)",
    )


def endpoints(args: argparse.Namespace, *, nats_role: str) -> dict[str, Any]:
    """The stores as options and `--endpoints` give them, options winning; NATS names
    filled with the local stack's defaults, the NATS URL logged in as `nats_role`. Raises
    `Refused` without a hot store."""
    from gameplay_analytics.contract.natsnames import PipelineNames

    found: dict[str, Any] = {}
    if args.endpoints:
        try:
            found = json.loads(Path(args.endpoints).read_text())
        except (OSError, ValueError) as err:
            raise Refused(f"cannot read {args.endpoints}: {err}") from None
    dsn = args.dsn or found.get("postgres_dsn")
    if not dsn:
        raise Refused("the hot store is needed: --endpoints, --dsn or POSTGRES_DSN")
    names = PipelineNames()
    return {
        "postgres_dsn": dsn,
        "warehouse_root": args.root or found.get("warehouse_root"),
        "s3_endpoint": args.s3_endpoint,
        "s3_region": args.s3_region,
        "nats_url": nats_login(args.nats_url or found.get("nats_url"), found, nats_role),
        "stream": args.stream or names.stream,
        "events_subject": args.events_subject or names.events_subject,
        "dlq_subject": args.dlq_subject or names.dlq_subject,
        "warm_retention_days": args.warm_retention_days,
    }


def nats_login(url: str | None, found: dict[str, Any], role: str) -> str | None:
    """The NATS URL a command connects with, logged in as `role`: with the local stack's
    password for it when the URL came from endpoints.json, else with `…_NATS_USER` and
    `…_NATS_PASSWORD` when both are set, else as given (an open server)."""
    from gameplay_analytics.local import natsauth

    if not url:
        return url
    users_file = found.get("nats_users")
    if users_file and url == found.get("nats_url"):
        password = natsauth.password_of(Path(users_file), role)
        if password is None:
            raise Refused(f"{users_file}: no NATS user {role!r}")
        return natsauth.login_url(url, role, password)
    user, password = os.environ.get(f"{ENV}NATS_USER"), os.environ.get(f"{ENV}NATS_PASSWORD")
    if user and password:
        return natsauth.login_url(url, user, password)
    return url


def salt_book(args: argparse.Namespace, command: str) -> Any:
    """The pipeline's salt book; says on stderr when it is the public development one."""
    import sys

    from gameplay_analytics.privacy.pseudonym import load_salt_book

    secret_file = Path(args.salt_secret_file) if args.salt_secret_file else None
    book = load_salt_book(secret_file=secret_file, env=os.environ)
    if book.development:
        print(f"{command}: no salt secret given: using the development salt", file=sys.stderr)
    return book


def profile_secret(args: argparse.Namespace, command: str, salts: Any) -> str:
    """The onboarding profile's key secret, as the aggregator has it: given, else derived from
    the salt master secret of `salts`, else the development one (said on stderr)."""
    import sys

    from gameplay_analytics.privacy import profile

    if args.profile_secret_file:
        try:
            secret = Path(args.profile_secret_file).read_text().strip()
        except OSError as err:
            raise Refused(f"cannot read --profile-secret-file: {err.strerror}") from None
    else:
        secret = os.environ.get(f"{ENV}PROFILE_SECRET", "").strip()
    resolved = profile.profile_secret(secret or None, salts)
    if resolved is None:
        print(f"{command}: no profile secret given: using the development one", file=sys.stderr)
        return profile.DEVELOPMENT_PROFILE_SECRET
    return resolved
