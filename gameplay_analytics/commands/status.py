"""`gameplay-analytics status`: what a running `up` says about its parts (endpoints.json).

Exit 0 when `up` is alive and every part runs, 1 otherwise (a part restarting, `up` gone, or
no stack in that folder), so a script can wait on it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("status", help="the local stack's parts: running, restarting, restarts")
    cmd.add_argument("--data-dir", default=".data/local", help="the folder `up` was given")
    cmd.add_argument("--json", action="store_true", help="print endpoints.json's status as is")
    cmd.set_defaults(run=_status)


def _status(args: argparse.Namespace) -> int:
    path = Path(args.data_dir).resolve() / "endpoints.json"
    try:
        endpoints: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        print(f"status: no local stack at {path} ({type(err).__name__})")
        return 1
    up_alive = _alive(endpoints.get("up_pid"))
    parts: dict[str, dict[str, Any]] = endpoints.get("processes", {})
    if args.json:
        print(json.dumps({"up_alive": up_alive, "processes": parts}, indent=2))
    else:
        print(f"up: {'running' if up_alive else 'not running'} (pid {endpoints.get('up_pid')})")
        for role, part in sorted(parts.items()):
            print(
                f"{role}: {part['state']}, pid {part['pid']}, restarts {part['restarts']}"
                + (
                    f", last exit code {code}"
                    if (code := part["last_exit_code"]) is not None
                    else ""
                )
            )
    healthy = up_alive and all(p["state"] == "running" for p in parts.values())
    return 0 if healthy else 1


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
