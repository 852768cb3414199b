"""Drive a gateway with synthetic players over real WebSockets, and keep what they were told.

Every player's SDK reports each `ack` (the seqs it covered, the rejected ones, the guard's
drops), so after a run the set of events the pipeline promised to store is known exactly and
can be reconciled against Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gameplay_analytics.loadgen.players import EventMix, PlayerProfile, play_session, play_steady
from gameplay_analytics.runtime.gateway.auth import issue_token
from gameplay_analytics.sdk import Acked, AnalyticsClient, ClientStats, WebSocketConnector

__all__ = ["LoadProfile", "LoadResult", "PlayerRecord", "run_load"]


@dataclass(frozen=True)
class LoadProfile:
    """Who plays, for how long and how hard. `steady_rate` (events/s per player) replaces
    the bursty play of `play_session` by an exact, always-kept event stream (benchmarks)."""

    players: int = 300
    seconds: float = 60.0
    pace: float = 1.0
    ramp_s: float = 5.0  # players join over this many seconds
    session_s: float | None = None  # one session per connection; None: one for the whole run
    mix: EventMix = field(default_factory=EventMix)
    disconnect_share: float = 0.1  # players whose connection drops once mid-session
    opt_out_share: float = 0.03  # consent.analytics == false
    no_social_share: float = 0.1  # consent.social == false
    steady_rate: float | None = None
    onboarding: bool = False  # new players: a tutorial before the first fight, some quit early
    early_quit_share: float = 0.25  # with onboarding: players who leave after 2–15 s
    seed: int = 7
    flush_timeout_s: float = 20.0


@dataclass
class PlayerRecord:
    player_uuid: str
    client_guid: str
    opted_out: bool
    stats: ClientStats
    acks: list[Acked] = field(default_factory=list)
    flushed: bool = False
    sessions: int = 0
    connections: int = 0


@dataclass
class LoadResult:
    records: list[PlayerRecord]
    started: float
    ended: float

    def total(self, stat: str) -> int:
        return sum(int(getattr(r.stats, stat)) for r in self.records)

    def client_guids(self) -> list[str]:
        return [r.client_guid for r in self.records]

    def promised(self) -> tuple[set[tuple[str, int]], list[tuple[str, set[int], int]]]:
        """(exact, partial): `exact` holds (client_guid, seq) of every event acked as stored
        from envelopes where the guard dropped nothing; `partial` lists, per envelope with
        drops, the candidate seqs and how many of them were stored."""
        exact: set[tuple[str, int]] = set()
        partial: list[tuple[str, set[int], int]] = []
        for record in self.records:
            for ack in record.acks:
                kept = set(ack.seqs) - set(ack.rejected)
                if ack.dropped:
                    partial.append((record.client_guid, kept, ack.accepted))
                else:
                    exact.update((record.client_guid, seq) for seq in kept)
        return exact, partial


async def run_load(
    ws_url: str,
    *,
    jwt_secret: str,
    profile: LoadProfile,
    state_dir: Path,
    progress: Callable[[LoadResult], None] | None = None,
    on_start: Callable[[LoadResult], None] | None = None,
) -> LoadResult:
    """Run `profile.players` sessions concurrently; returns once all have flushed (bounded).
    `on_start` gets the live result before any player starts (to watch it); `progress` gets
    it every second."""
    rng = random.Random(profile.seed)
    records: list[PlayerRecord] = []
    result = LoadResult(records, time.time(), 0.0)
    if on_start is not None:
        on_start(result)
    tasks = []
    for index in range(profile.players):
        tasks.append(asyncio.create_task(_player(index, ws_url, jwt_secret, profile, rng,
                                                 state_dir, records)))  # fmt: skip
    reporter = asyncio.create_task(_report(result, progress)) if progress else None
    try:
        await asyncio.gather(*tasks)
    finally:
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
    result.ended = time.time()
    return result


async def _player(
    index: int,
    ws_url: str,
    secret: str,
    profile: LoadProfile,
    rng: random.Random,
    state_dir: Path,
    records: list[PlayerRecord],
) -> None:
    player = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    opted_out = rng.random() < profile.opt_out_share
    consent = {"analytics": not opted_out, "social": rng.random() >= profile.no_social_share}
    drops_at = (
        rng.uniform(0.2, 0.8) * profile.seconds if rng.random() < profile.disconnect_share else None
    )
    start_delay = rng.uniform(0, profile.ramp_s)
    quits_after = rng.uniform(2.0, 15.0) if rng.random() < profile.early_quit_share else None
    acks: list[Acked] = []
    character = PlayerProfile.draw(index + profile.seed * 1_000_003)
    client = AnalyticsClient(
        player_uuid=player,
        client_guid=guid,
        token=lambda: issue_token(player, secret=secret, ttl_s=3600, region=character.region),
        state_dir=state_dir / guid,
        build="2026.11.1+demo",
        platform=rng.choice(("win64", "linux64", "macos", "ps5")),
        consent=consent,
        on_ack=acks.append,
    )
    record = PlayerRecord(player, guid, opted_out, client.stats, acks)
    records.append(record)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start_delay)
    end = loop.time() + profile.seconds
    if profile.onboarding and quits_after is not None:
        end = min(end, loop.time() + quits_after)
    dropper = None
    record.flushed = True
    # Sessions back to back until the run's time is up; each is one connection, closed only
    # once everything it carried is acked (or the flush bound passes).
    while (left := end - loop.time()) > 0.5:
        length = min(left, profile.session_s or left)
        connector = WebSocketConnector(client, ws_url, headers=_forwarded_for(character))
        connector.start()
        if drops_at is not None and drops_at < profile.seconds - left + length:
            dropper = asyncio.create_task(
                _drop_later(connector, max(0.0, drops_at - (profile.seconds - left)))
            )
            drops_at = None
        try:
            if profile.steady_rate is not None:
                await play_steady(client, seconds=length, rate=profile.steady_rate)
            else:
                await play_session(
                    client, character, seconds=length, pace=profile.pace, mix=profile.mix,
                    tutorial=profile.onboarding and record.sessions == 0,
                )  # fmt: skip
        finally:
            if dropper is not None:
                dropper.cancel()
                dropper = None
            flushed = await connector.stop(flush_timeout_s=profile.flush_timeout_s)
            record.flushed = record.flushed and flushed
            record.sessions += 1
            record.connections += connector.connections


def _forwarded_for(character: PlayerProfile) -> dict[str, str]:
    # The player's test address (loadgen.geo): a gateway trusting this peer geolocates it.
    return {"X-Forwarded-For": character.address} if character.address else {}


async def _drop_later(connector: WebSocketConnector, after_s: float) -> None:
    await asyncio.sleep(after_s)
    await connector.disconnect()


async def _report(result: LoadResult, progress: Callable[[LoadResult], None]) -> None:
    while True:
        await asyncio.sleep(1.0)
        progress(result)
