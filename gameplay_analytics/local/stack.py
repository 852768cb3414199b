"""`gameplay-analytics up`: nats-server, PostgreSQL, gateway and aggregator on one machine.

Each part is a child process (the gateway and aggregator via this same CLI), so the stack
uses every core and a test can SIGKILL any part. Start is all-or-nothing: if one part fails,
everything already started is stopped and the error names the part and its log. The stack
owns the stream and the config bucket here (the operator does in a cluster): it creates them
before the gateway and aggregators start, which only verify them. NATS runs with auth on:
each part logs in as its own least-privilege user (`local/natsauth.py`), `up` itself as the
operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from gameplay_analytics.contract.natsnames import PipelineNames
from gameplay_analytics.contract.natsperms import Role
from gameplay_analytics.local import natsauth, supervise
from gameplay_analytics.local.services import (
    ManagedProcess,
    NatsCluster,
    NatsServer,
    PostgresServer,
    ServiceError,
    free_port,
    free_ports,
)
from gameplay_analytics.runtime import jetstream

__all__ = ["LocalStack", "RuntimeProcess", "StackConfig"]

_READY_TIMEOUT_S = 60.0


@dataclass
class StackConfig:
    data_dir: Path
    ws_port: int = 0
    jwt_secret: str = ""
    nats_sync_always: bool = True
    aggregators: int = 1
    gateway_workers: int = 1  # gateway processes sharing the WebSocket port (`gateway --workers`)
    nats_nodes: int = 1  # 3: a JetStream cluster on loopback with the stream at R3 (tests/chaos)
    extra_env: dict[str, str] = field(default_factory=dict)


class RuntimeProcess(ManagedProcess):
    """A gateway or aggregator child process, ready when its `/readyz` answers 200.

    A gateway with `workers` > 1 is `gateway --workers N`: a supervisor of N processes on one
    WebSocket port, worker i serving its probes on `metrics_port + i`; ready when all are.
    """

    def __init__(
        self,
        role: str,
        *,
        log_dir: Path,
        env: dict[str, str],
        metrics_port: int,
        workers: int = 1,
    ):
        super().__init__(role, log_dir / f"{role}.log")
        self.role = role
        self.env = env
        self.metrics_port = metrics_port
        self.workers = workers

    @property
    def metrics_url(self) -> str:
        return self.metrics_urls[0]

    @property
    def metrics_urls(self) -> list[str]:
        """One per worker."""
        return [f"http://127.0.0.1:{self.metrics_port + i}/metrics" for i in range(self.workers)]

    def start(self) -> None:
        argv = [sys.executable, "-m", "gameplay_analytics.cli", self.role.split("-")[0]]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env}, start_new_session=True,
            )  # fmt: skip

    def exit_code(self) -> int | None:
        """The exit status once the process has ended; None while it runs (or never ran)."""
        return None if self.proc is None else self.proc.poll()

    def wait_ready(self, deadline: float) -> None:
        waiting = [url.replace("/metrics", "/readyz") for url in self.metrics_urls]
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            waiting = [url for url in waiting if not _ready(url)]
            if not waiting:
                return
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
        raise ServiceError(f"{self.role} did not become ready:\n" + "\n".join(tail))


def _ready(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
        return bool(reply.status == 200)
    return False


class LocalStack:
    """The whole pipeline on this machine; use as a context manager or start()/stop()."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        data = config.data_dir.resolve()
        self.nats_users = natsauth.LocalNatsUsers.load_or_create(data / natsauth.FILE_NAME)
        auth = self.nats_users.authorization(PipelineNames())
        self.nats: NatsServer | NatsCluster = (
            NatsServer(data / "nats", sync_always=config.nats_sync_always, auth_config=auth)
            if config.nats_nodes == 1
            else NatsCluster(data / "nats", nodes=config.nats_nodes,
                             sync_always=config.nats_sync_always, auth_config=auth)
        )  # fmt: skip
        self.postgres = PostgresServer(data / "postgres" / "data")
        self.warehouse_root = data / "warehouse"
        self.ws_port = config.ws_port or free_port()
        self.gateway: RuntimeProcess | None = None
        self.aggregators: list[RuntimeProcess] = []
        self.endpoints_path = data / "endpoints.json"
        self.supervisor = supervise.Supervisor(
            lambda: [p for p in [self.gateway, *self.aggregators] if p is not None],
            report=lambda text: print(f"up: {text}", file=sys.stderr, flush=True),
        )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    def nats_url_as(self, user: Role | str) -> str:
        """The NATS URL with `user`'s credentials (a role, or `natsauth.ADMIN` for tests)."""
        return self.nats_users.url(self.nats.url, str(user))

    def runtime_env(self, role: Role) -> dict[str, str]:
        """The settings of a gateway or aggregator of this stack, logged in as `role`."""
        env = {
            "GAMEPLAY_ANALYTICS_NATS_URL": self.nats.url,
            "GAMEPLAY_ANALYTICS_POSTGRES_DSN": self.postgres.dsn,
            "GAMEPLAY_ANALYTICS_WAREHOUSE_ROOT": str(self.warehouse_root),
            "GAMEPLAY_ANALYTICS_JWT_SECRET": self.config.jwt_secret,
            "GAMEPLAY_ANALYTICS_PIPELINE": "local",
            **self.nats_users.env(role),
            **self.config.extra_env,
        }
        return env

    def new_aggregator(self, index: int) -> RuntimeProcess:
        port = free_port()
        return RuntimeProcess(
            f"aggregator-{index}",
            log_dir=self.config.data_dir.resolve() / "logs",
            env={
                **self.runtime_env(Role.AGGREGATOR),
                "GAMEPLAY_ANALYTICS_METRICS_PORT": str(port),
            },
            metrics_port=port,
        )

    def start(self) -> None:
        try:
            self.nats.start()
            asyncio.run(
                jetstream.provision(
                    jetstream.NatsSettings(nats_url=self.nats_url_as(Role.OPERATOR)),
                    limits=jetstream.StreamSettings(replicas=self.config.nats_nodes),
                )
            )
            self.postgres.start()
            self.warehouse_root.mkdir(parents=True, exist_ok=True)
            deadline = time.monotonic() + _READY_TIMEOUT_S
            self.aggregators = [self.new_aggregator(i) for i in range(self.config.aggregators)]
            for aggregator in self.aggregators:
                aggregator.start()
            workers = self.config.gateway_workers
            metrics_port = free_ports(workers)
            self.gateway = RuntimeProcess(
                "gateway",
                log_dir=self.config.data_dir.resolve() / "logs",
                env={
                    **self.runtime_env(Role.GATEWAY),
                    "GAMEPLAY_ANALYTICS_WS_HOST": "127.0.0.1",
                    "GAMEPLAY_ANALYTICS_WS_PORT": str(self.ws_port),
                    "GAMEPLAY_ANALYTICS_METRICS_PORT": str(metrics_port),
                },
                metrics_port=metrics_port,
                workers=workers,
            )
            self.gateway.start()
            for process in [*self.aggregators, self.gateway]:
                process.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        self.supervisor.check()
        self._write_endpoints()

    def supervise(self) -> None:
        """One supervision pass (restart what exited); endpoints.json follows any change."""
        if self.supervisor.check():
            self._write_endpoints()

    def _write_endpoints(self) -> None:
        """Owner-only: `nats_url` carries the local admin's login (PROTOCOL.md §4's readers
        connect with it as given, NATS auth on or not)."""
        text = json.dumps(self.endpoints(), indent=2) + "\n"
        fd = os.open(self.endpoints_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(self.endpoints_path, 0o600)  # a file an older `up` left readable

    def endpoints(self) -> dict[str, object]:
        return {
            "ws_url": self.ws_url,
            "nats_url": self.nats_url_as(natsauth.ADMIN),
            "nats_users": str(self.nats_users.path),
            "postgres_dsn": self.postgres.dsn,
            "warehouse_root": str(self.warehouse_root),
            "metrics_urls": {
                f"{p.role}-{i}" if i else p.role: url
                for p in [self.gateway, *self.aggregators]
                if p is not None
                for i, url in enumerate(p.metrics_urls)
            },
            "up_pid": os.getpid(),
            "processes": self.supervisor.status(),
        }

    def stop(self) -> None:
        """Gateway first (it drains its queue to JetStream), then aggregators, then storage."""
        for process in [self.gateway, *self.aggregators]:
            if process is not None:
                process.stop()
        self.nats.stop()
        self.postgres.stop()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
