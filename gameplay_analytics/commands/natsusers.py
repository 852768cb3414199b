"""`gameplay-analytics nats-permissions`: the nats-server `authorization` block of a pipeline's
least-privilege users, for an SRE to paste into their NATS configuration.

The users and their lists come from `contract.natsperms`; passwords are written as variables
(`$<NS>_<NAME>_<ROLE>_PASSWORD`) that nats-server reads from its environment, set from the
per-role Secrets (docs/operations.md), so the output carries no secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gameplay_analytics.contract.natsnames import PipelineNames

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "nats-permissions",
        help="nats-server authorization block: one least-privilege user per component",
    )
    cmd.add_argument(
        "--pipeline", help="an AnalyticsPipeline YAML file (default: the local stack's names)"
    )
    cmd.add_argument("--json", action="store_true", help="each user's permissions as JSON")
    cmd.set_defaults(run=_render)


# nats-server parses a variable's value as a config token: a value that reads as a number, a
# date or a boolean is not a string and the login fails to parse. Say so where the SRE looks.
_VARIABLES_NOTE = (
    "# Set each $..._PASSWORD variable in nats-server's environment from its role's Secret.\n"
    "# nats-server parses the value: start each password with a letter (e.g. 'p' + base64url)\n"
    "# so that it never reads as a number, a date or a boolean.\n"
)


def _render(args: argparse.Namespace) -> int:
    from gameplay_analytics.contract import natsperms
    from gameplay_analytics.contract.natsnames import PipelineNames

    names, prefix = PipelineNames(), ""
    if args.pipeline:
        try:
            names, prefix = _pipeline_names(Path(args.pipeline))
        except (OSError, ValueError, KeyError, TypeError) as err:
            print(f"nats-permissions: {args.pipeline}: {err}", file=sys.stderr)
            return 2
    users = natsperms.user_names(prefix)
    if args.json:
        perms = natsperms.all_permissions(names, users)
        print(json.dumps({users[r]: perms[r].config() for r in natsperms.ROLES}, indent=2))
        return 0
    print(_VARIABLES_NOTE, end="")
    print(
        natsperms.authorization_block(names, natsperms.password_variables(prefix), users=users),
        end="",
    )
    return 0


def _pipeline_names(path: Path) -> tuple[PipelineNames, str]:
    import yaml

    from gameplay_analytics.operator import models, naming

    try:
        body = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"not YAML ({type(err).__name__})") from None
    if not isinstance(body, dict) or body.get("kind") != "AnalyticsPipeline":
        raise ValueError("not an AnalyticsPipeline")
    meta = body["metadata"]
    pipeline = naming.Pipeline(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        spec=models.AnalyticsPipelineSpec.model_validate(body.get("spec") or {}),
        default_image="",
    )
    return naming.nats_names(pipeline), f"{pipeline.namespace}-{pipeline.name}"
