"""The gateway process: WebSocket server, ingest worker, config watcher, breaker, probes.

`Gateway` runs in-process (tests, the local stack); `run_gateway` is the process entry point
that runs one until cancelled or SIGTERM, then drains: nothing acked is lost, nothing pending
is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from nats.aio.client import Client
from nats.js import JetStreamContext
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gameplay_analytics.runtime import jetstream
from gameplay_analytics.runtime.config import ConfigWatcher, LiveConfig, cold_start, default_config
from gameplay_analytics.runtime.gateway import auth, clientaddr, ledger, metrics, proxied, relay
from gameplay_analytics.runtime.gateway.budgets import PlayerBudgets
from gameplay_analytics.runtime.gateway.ingest import IngestWorker
from gameplay_analytics.runtime.gateway.session import Session
from gameplay_analytics.runtime.gateway.settings import GatewaySettings
from gameplay_analytics.runtime.gcpolicy import tune_gc
from gameplay_analytics.runtime.probes import ProbeServer
from gameplay_analytics.sampling.breaker import CircuitBreaker

__all__ = ["WS_PATH", "Gateway", "run_gateway"]

log = logging.getLogger(__name__)

WS_PATH = "/ws"
_CLIENT_NAME = "gameplay-analytics-gateway"


class Gateway:
    """One gateway: `await start()`, serve, `await drain_and_stop()`.

    `port` and `metrics_port` are the bound ports (useful with port 0). `ready` is what
    `/readyz` reports: started, connected to NATS, not draining.
    """

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.verifier = auth.verifier_for(settings)
        self._trusted_proxies = settings.trusted_networks()
        self.budgets = PlayerBudgets(settings.player_rate_hz())
        self.worker = IngestWorker(
            capacity=settings.queue_capacity,
            publish_timeout_s=settings.publish_timeout_s,
            group_window_s=settings.group_window_s,
            group_max_bytes=settings.group_max_bytes,
            max_writes=settings.group_max_writes,
            target_delay_s=settings.queue_delay_target_s,
        )
        self._live = cold_start(
            default_config(
                schemas_root=settings.schemas_dir, max_events=settings.max_events_per_envelope
            ),
            sampling_file=settings.sampling_file,
            schemas_file=settings.schemas_file,
            breaker_file=settings.breaker_file,
            schemas_root=settings.schemas_dir,
            max_events=settings.max_events_per_envelope,
        )
        self._breaker = CircuitBreaker(self._live.breaker or settings.breaker())
        self._multiplier = 1.0
        self._sessions: set[Session] = set()
        self.ledger = ledger.SessionLedger(settings.sessions_bucket)
        self.edge, warnings = settings.edge_keys()
        for warning in warnings:
            log.warning(warning)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._server: Server | None = None
        self._probes: ProbeServer | None = None
        self._watcher: ConfigWatcher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._draining = False
        self.port = settings.ws_port
        self.metrics_port = settings.metrics_port
        metrics.QUEUE_DEPTH.set_function(lambda: self.worker.depth)
        metrics.QUEUE_CAPACITY.set(settings.queue_capacity)

    # -- Hub (what sessions read) ----------------------------------------------------------

    @property
    def live(self) -> LiveConfig:
        return self._live

    @property
    def multiplier(self) -> float:
        return self._multiplier

    def add(self, session: Session) -> None:
        self._sessions.add(session)
        metrics.SESSIONS_ACTIVE.inc()
        self.ledger.record(session.session_id, kept=session.analytics_consent)

    def discard(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.discard(session)
            metrics.SESSIONS_ACTIVE.dec()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._started and not self._draining and self.worker.connected

    @property
    def url(self) -> str:
        host = (
            "127.0.0.1" if self.settings.ws_host in ("0.0.0.0", "::", "") else self.settings.ws_host
        )
        return f"ws://{host}:{self.port}{WS_PATH}"

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    async def start(self, *, listen: bool = True) -> None:
        """Start the probes, connect to NATS, verify the stream and bucket exist (their owner
        is the operator, or `up`: MissingInfrastructure otherwise), then listen (unless
        `listen=False`: a game server embedding the gateway serves sessions on its own socket,
        see embed.py)."""
        settings = self.settings
        self._probes = ProbeServer(
            host=settings.metrics_host, port=settings.metrics_port, ready=lambda: self.ready
        )
        await self._probes.start()
        self.metrics_port = self._probes.port
        self._nc = await jetstream.connect(settings, name=_CLIENT_NAME)
        self._js = self._nc.jetstream(publish_async_max_pending=settings.publish_max_inflight)
        await jetstream.verify(self._js, settings.names(), url=settings.nats_url)
        await self.ledger.attach(self._js)
        self.worker.attach(self._nc, self._js)
        self._watcher = ConfigWatcher(
            nc=self._nc,
            js=self._js,
            initial=self._live,
            on_change=self._on_config,
            schemas_root=settings.schemas_dir,
            max_events=settings.max_events_per_envelope,
            bucket=settings.config_bucket,
        )
        self._tasks = [
            asyncio.create_task(self.worker.run(), name="gateway-ingest"),
            asyncio.create_task(self._watcher.run(), name="gateway-config-watch"),
            asyncio.create_task(self._run_breaker(), name="gateway-breaker"),
        ]
        # Serve only with the KV values applied, so the first welcome already carries them.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._watcher.loaded.wait(), 2.0)
        if not listen:
            self._started = True
            return
        self._server = await serve(
            self._handle,
            settings.ws_host,
            settings.ws_port,
            process_request=self._process_request,
            max_size=settings.max_frame_bytes,
            compression=None,  # deflate would cost more CPU than the frames are worth
            reuse_port=settings.reuse_port or None,
            create_connection=(
                proxied.connection_class(self._trusted_proxies) if settings.proxy_protocol else None
            ),
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        self._started = True
        log.info("gateway listening on %s (metrics on :%d)", self.url, self.metrics_port)

    async def drain_and_stop(self) -> None:
        """Stop accepting, store or refuse every pending envelope, close sockets with 1001."""
        if self._draining:
            return
        self._draining = True
        if self._server is not None:
            self._server.close(close_connections=False)  # no new connections
        failed = await self.worker.drain(self.settings.drain_timeout_s)
        if failed:
            log.warning("shutdown: %d envelopes refused with backpressure, not stored", failed)
        await asyncio.sleep(0)  # let the settle callbacks queue their acks and refusals
        sessions = list(self._sessions)
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), self.settings.drain_timeout_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ledger.drain()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.close(), 5.0)
        if self._probes is not None:
            await self._probes.close()
        self.edge.close()
        log.info("gateway stopped")

    # -- private ---------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path.split("?", 1)[0] == relay.RELAY_PATH:
            await relay.serve_relay(ws, self)
            return
        await Session(ws, self, client_ip=self._client_ip(ws)).serve()

    def _client_ip(self, ws: ServerConnection) -> str | None:
        remote = ws.remote_address
        peer = str(remote[0]) if remote else None
        if not self._trusted_proxies or ws.request is None:
            return peer
        headers = ws.request.headers
        return clientaddr.client_address(
            peer,
            forwarded=headers.get_all("Forwarded"),
            x_forwarded_for=headers.get_all("X-Forwarded-For"),
            trusted=self._trusted_proxies,
        )

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        relaying = path == relay.RELAY_PATH and self.settings.relay_secret is not None
        if path != WS_PATH and not relaying:
            return ws.respond(404, f"analytics WebSocket is at {WS_PATH}\n")
        if self._draining:
            response = ws.respond(503, "gateway shutting down\n")
            response.headers = Headers([*response.headers.raw_items(), ("Retry-After", "1")])
            return response
        return None

    def _on_config(self, live: LiveConfig) -> None:
        self._live = live
        breaker = live.breaker or self.settings.breaker()
        if breaker != self._breaker.config:  # a SamplingPolicy breaker edit: start afresh
            self._breaker = CircuitBreaker(breaker)
            self._multiplier = self._breaker.multiplier
        self._broadcast()

    def _broadcast(self) -> None:
        for session in list(self._sessions):
            session.push_sampling(self._live, self._multiplier)

    async def _run_breaker(self) -> None:
        interval = self.settings.breaker_interval_s
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            window = self.settings.combat_window_s
            metrics.PLAYERS_IN_COMBAT.set(
                sum(1 for session in self._sessions if now - session.last_combat < window)
            )
            changed = self._breaker.observe(self.worker.fill, now)
            if changed is not None:
                log.warning(
                    "ingest queue at %.0f%%: client sampling multiplier now %s",
                    100 * self.worker.fill,
                    changed,
                )
                self._multiplier = changed
                self._broadcast()


async def run_gateway(settings: GatewaySettings, *, started: asyncio.Event | None = None) -> None:
    """Run a gateway until cancelled or SIGTERM/SIGINT, then drain and stop it."""
    gateway = Gateway(settings)
    await gateway.start()
    tune_gc()  # what startup made lives as long as the process: out of the collector's sight
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    if started is not None:
        started.set()
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await asyncio.shield(gateway.drain_and_stop())
