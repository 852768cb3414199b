"""Envelopes sent and not yet settled: on the wire by id, and those waiting for a resend.

An envelope leaves only when its `ack` (or a `bad_request`) settles it; a disconnect puts
every one on the wire back in line, oldest first, to be resent byte for byte.
"""

from __future__ import annotations

import dataclasses

import msgspec

__all__ = ["Envelope", "InFlight"]


class _SeqOnly(msgspec.Struct):
    seq: int


class _EnvelopeSeqs(msgspec.Struct):
    events: list[_SeqOnly]


_envelope_seqs = msgspec.json.Decoder(_EnvelopeSeqs)


@dataclasses.dataclass(slots=True)
class Envelope:
    """One encoded `analytics` frame and how many events it carries."""

    id: int
    frame: bytes
    events: int

    def seqs(self) -> tuple[int, ...]:
        """The seqs of its events (decoded on demand: only reconciliation needs them)."""
        return tuple(e.seq for e in _envelope_seqs.decode(self.frame).events)


class InFlight:
    """The client's unsettled envelopes."""

    __slots__ = ("_resend", "_wire")

    def __init__(self) -> None:
        self._wire: dict[int, Envelope] = {}
        self._resend: list[Envelope] = []

    def __len__(self) -> int:
        return len(self._wire) + len(self._resend)

    @property
    def events(self) -> int:
        """Events in unsettled envelopes, on the wire or waiting for a resend."""
        return sum(e.events for e in self._wire.values()) + sum(e.events for e in self._resend)

    @property
    def on_the_wire(self) -> int:
        return len(self._wire)

    def sent(self, envelope: Envelope) -> None:
        self._wire[envelope.id] = envelope

    def settle(self, envelope_id: int) -> Envelope | None:
        """Take an envelope off the wire (None: unknown, or a resend raced its ack)."""
        return self._wire.pop(envelope_id, None)

    def requeue(self, envelope: Envelope) -> None:
        """Send it again later, unchanged, in id order with the others waiting."""
        self._resend = sorted([envelope, *self._resend], key=lambda e: e.id)

    def next_resend(self) -> Envelope | None:
        return self._resend.pop(0) if self._resend else None

    def disconnected(self) -> None:
        """The connection is gone: everything on the wire waits for a resend."""
        self._resend = sorted([*self._wire.values(), *self._resend], key=lambda e: e.id)
        self._wire.clear()
