"""The supervisor's rule: restart what exited, waiting longer in a crash loop, never longer
than the bound, and a fresh streak after a part ran healthily."""

from __future__ import annotations

import dataclasses

from gameplay_analytics.local.supervise import Backoff, Supervisor


@dataclasses.dataclass
class FakePart:
    role: str
    code: int | None = None
    starts: int = 0
    next_pid: int = 100

    @property
    def pid(self) -> int | None:
        return None if self.code is not None else self.next_pid

    def exit_code(self) -> int | None:
        return self.code

    def start(self) -> None:
        self.starts += 1
        self.next_pid += 1
        self.code = None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(parts: list[FakePart]) -> tuple[Supervisor, Clock, list[str]]:
    clock, said = Clock(), []
    backoff = Backoff(initial_s=1, max_s=8, factor=2, healthy_after_s=60)
    return Supervisor(lambda: parts, report=said.append, backoff=backoff, clock=clock), clock, said


def test_backoff_grows_and_is_bounded() -> None:
    backoff = Backoff(initial_s=0.5, max_s=30, factor=2)
    assert [backoff.delay(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_an_exit_is_reported_and_restarted_after_the_delay() -> None:
    gateway = FakePart("gateway")
    supervisor, clock, said = make([gateway])
    assert supervisor.check() is False  # running: nothing to do
    clock.now, gateway.code = 100.0, -9
    assert supervisor.check() is True
    assert said == ["gateway exited with code -9 after 100 s; restarting in 1 s"]
    assert supervisor.status()["gateway"] == {
        "state": "restarting", "pid": None, "restarts": 0, "last_exit_code": -9,
    }  # fmt: skip
    clock.now = 100.5
    assert supervisor.check() is False and gateway.starts == 0  # not yet
    clock.now = 101.0
    assert supervisor.check() is True and gateway.starts == 1
    assert said[-1] == "gateway restarted (pid 101, restart 1)"
    assert supervisor.status()["gateway"]["state"] == "running"


def test_a_crash_loop_waits_longer_each_time_up_to_the_bound() -> None:
    aggregator = FakePart("aggregator-0")
    supervisor, clock, _ = make([aggregator])
    supervisor.check()
    delays = []
    for _ in range(6):
        clock.now += 1.0  # dies a second after each start
        aggregator.code = 1
        supervisor.check()
        status = supervisor._status["aggregator-0"]
        assert status.restart_at is not None
        delays.append(status.restart_at - clock.now)
        clock.now = status.restart_at
        supervisor.check()
    assert delays == [1, 2, 4, 8, 8, 8]
    assert supervisor.status()["aggregator-0"]["restarts"] == 6


def test_a_part_that_ran_healthily_starts_a_new_streak() -> None:
    part = FakePart("gateway")
    supervisor, clock, _ = make([part])
    supervisor.check()
    for _ in range(3):  # a crash loop: delays 1, 2, 4
        clock.now += 1
        part.code = 1
        supervisor.check()
        clock.now += 10
        supervisor.check()
    clock.now += 120  # then it runs for two minutes
    part.code = 1
    supervisor.check()
    status = supervisor._status["gateway"]
    assert status.restart_at is not None and status.restart_at - clock.now == 1
