"""`gateway --workers N`: N gateway processes sharing one WebSocket port (SO_REUSEPORT).

The kernel spreads new connections over the processes; each runs its own ingest queue,
publisher and breaker, and serves its probes on its own port (`metrics_port + i`). For bare
metal and the laptop: a Kubernetes Deployment stays one process per pod and scales by pods.
The supervisor forwards SIGTERM/SIGINT to every worker (each drains as a single gateway does),
stops them all when one fails, and exits with the worst exit code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from gameplay_analytics.runtime.gateway.settings import ENV_PREFIX, GatewaySettings

__all__ = ["supervise", "worker_environments"]

_POLL_S = 0.2


def worker_environments(
    environ: Mapping[str, str], settings: GatewaySettings, workers: int
) -> list[dict[str, str]]:
    """The environment of each worker: the shared port bound with SO_REUSEPORT, probes on
    consecutive ports. Pure. Raises ValueError where N processes could not share the port."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and settings.ws_port == 0:
        raise ValueError("--workers needs a fixed GAMEPLAY_ANALYTICS_WS_PORT (0 picks one each)")
    envs = []
    for i in range(workers):
        env = dict(environ)
        env[f"{ENV_PREFIX}REUSE_PORT"] = "true"
        if settings.metrics_port:
            env[f"{ENV_PREFIX}METRICS_PORT"] = str(settings.metrics_port + i)
        envs.append(env)
    return envs


def supervise(settings: GatewaySettings, workers: int) -> int:
    """Run `workers` gateway processes until they exit or a signal stops them."""
    try:
        envs = worker_environments(os.environ, settings, workers)
    except ValueError as err:
        print(f"gateway: {err}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "gameplay_analytics.cli", "gateway"]
    procs = [subprocess.Popen(command, env=env) for env in envs]

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(proc.poll() is None for proc in procs):
            if any(proc.returncode not in (None, 0) for proc in procs):
                forward(signal.SIGTERM, None)  # one worker failed: stop the others too
            time.sleep(_POLL_S)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max(proc.returncode or 0 for proc in procs)
