/**
 * AnalyticsClient: the transport-agnostic SDK core (PROTOCOL.md §1-2, client side), the twin
 * of gameplay_analytics/sdk/client.py. `track()` never throws; the transport sends what
 * `poll()` returns and hands every reply to `onFrame()`.
 */

import {
  DEFAULT_CAP_BYTES,
  DEFAULT_RULES,
  EVENTS,
  FLUSH_INTERVAL_MS,
  LIFECYCLE_PRIORITY,
  MAX_DOUBLINGS,
  MAX_EVENT_BYTES,
  MAX_FRAME_BYTES,
  MAX_HOLD_MS,
  MAX_IN_FLIGHT,
  PRIORITY_NAMES,
  RATE_LIMITED_RETRY_MS,
  RATE_MARGIN,
  RETRY_JITTER,
  SCHEMA_HASH,
  SCHEMA_VERSION,
  TELEMETRY_INTERVAL_MS,
} from "./contract.gen.js";
import { PriorityBuffer, utf8Length } from "./buffer.js";
import { PendingEvents } from "./pending.js";
import { CompiledRules, parseRules, type WireRules } from "./sampling.js";
import { SeqCounter, defaultStorage, loadOrCreateClientGuid, type StorageAdapter } from "./state.js";

export type Consent = { readonly analytics?: boolean; readonly social?: boolean };
export type Props = Readonly<Record<string, unknown>>;

export interface OverflowReport {
  /** Events dropped so far, per priority name (lifecycle is never dropped). */
  readonly dropped: Readonly<Record<string, number>>;
  readonly bufferedBytes: number;
  readonly capBytes: number;
}

export interface ClientOptions {
  /** The player's UUID, as the token's `sub` (used for the sampling hash only). */
  readonly player: string;
  /** The session JWT, or a function returning a fresh one (called per connection). */
  readonly token: string | (() => string);
  /** Keeps client_guid and seq across page loads; default `localStorage` where present. */
  readonly storage?: StorageAdapter;
  readonly clientGuid?: string;
  readonly build?: string;
  readonly platform?: string;
  readonly consent?: Consent;
  readonly bufferCapBytes?: number;
  readonly maxFrameBytes?: number;
  /** How often a new envelope goes out (sooner when one is full); never faster than 10 Hz. */
  readonly flushIntervalMs?: number;
  /** Report a session the last run left open as `session_crash` (default true). */
  readonly reportCrash?: boolean;
  /** Called when the buffer cap drops events: the hook for a debug HUD. */
  readonly onOverflow?: (report: OverflowReport) => void;
  /** Monotonic clock in ms (tests). */
  readonly now?: () => number;
}

export interface ClientStats {
  tracked: number;
  buffered: number;
  sampledOut: number;
  debounced: number;
  optedOut: number;
  refused: number;
  errors: number;
  envelopesSent: number;
  envelopesResent: number;
  envelopesAcked: number;
  eventsAcked: number;
  eventsRejected: number;
  eventsDroppedByServer: number;
  envelopesRefused: number;
  backpressure: number;
  rateLimited: number;
  telemetrySent: number;
}

interface Envelope {
  readonly id: number;
  readonly frame: string;
  readonly bytes: number;
  readonly events: readonly string[];
}

interface Decision {
  readonly keep: boolean;
  /** The event's JSON between its seq and its ts, encoded once per name. */
  readonly head: string;
  readonly priority: number;
  readonly debounceMs: number;
  readonly reason: "" | "sampled" | "consent" | "refused";
}

const WAKE_MARGIN_MS = 1; // pollDelay: wake just after the due time, never just before it
const ENVELOPE_OVERHEAD = 128;

const MAX_TIERS_CACHED = 16;
const NON_ASCII = /[^\x00-\x7f]/;
const REFUSED = { keep: false, head: "", priority: 0, debounceMs: 0 } as const;

const monotonic = (): number => globalThis.performance?.now() ?? Date.now();

export class AnalyticsClient {
  readonly player: string;
  readonly clientGuid: string;
  readonly schema = SCHEMA_VERSION;
  readonly schemaHash = SCHEMA_HASH;
  readonly stats: ClientStats = {
    tracked: 0, buffered: 0, sampledOut: 0, debounced: 0, optedOut: 0, refused: 0, errors: 0,
    envelopesSent: 0, envelopesResent: 0, envelopesAcked: 0, eventsAcked: 0, eventsRejected: 0,
    eventsDroppedByServer: 0, envelopesRefused: 0, backpressure: 0, rateLimited: 0, telemetrySent: 0,
  };
  sessionId: string | null = null;
  samplingVersion = "";
  welcomed = false;
  /** Set by an `unauthorized` error: reconnect with a new token. */
  unauthorized: string | null = null;
  /** The last run (page load) ended with a session open: it crashed or the tab closed. */
  recoveredCrash = false;
  /** Set by `analytics_version`: this build's schema is refused; analytics stop. */
  versionRefused: string | null = null;
  maxEvents = 500;
  maxRateHz = 10;

  private readonly opts: ClientOptions;
  private consent: Consent;
  private readonly seq: SeqCounter;
  private readonly buffer: PriorityBuffer;
  private readonly clock: () => number;
  private readonly pending: PendingEvents;
  private rules = new CompiledRules(DEFAULT_RULES as unknown as WireRules);
  private multiplier = 1;
  /** Decisions by event name, then by `props.tier`: sampling is per (name, tier). */
  private decisions = new Map<string, Map<unknown, Decision>>();
  private readonly lastAt = new Map<string, number>();
  private unacked = new Map<number, Envelope>();
  private resend: Envelope[] = [];
  private nextId = 1;
  private lastSend = -Infinity;
  private lastNew = -Infinity;
  private holdUntil = -Infinity;
  private refusals = 0; // refusals not yet offset by acks: each doubles the next wait
  private telemetryPending: string | null = null;
  private lastTelemetry = -Infinity;

  constructor(options: ClientOptions) {
    this.opts = options;
    this.player = options.player.toLowerCase();
    const storage = options.storage ?? defaultStorage();
    this.clientGuid = (options.clientGuid ?? loadOrCreateClientGuid(storage)).toLowerCase();
    this.consent = { ...options.consent };
    this.seq = new SeqCounter(this.clientGuid, storage);
    this.buffer = new PriorityBuffer(options.bufferCapBytes ?? DEFAULT_CAP_BYTES);
    this.clock = options.now ?? monotonic;
    this.pending = new PendingEvents(this.clientGuid, storage);
    for (const [, priority, event] of this.pending.recovered()) {
      this.buffer.push(priority, event, utf8Length(event));
    }
    this.recoveredCrash = this.pending.sessionOpen;
    if (this.recoveredCrash && options.reportCrash !== false) this.track("session_crash", { reason: "unclean_exit" });
  }

  // -- the game's side ---------------------------------------------------------------------

  /** Record one event. Never throws; see `stats` for what became of it. */
  track(name: string, props: Props = {}): void {
    const stats = this.stats;
    try {
      stats.tracked++;
      const raw = props["tier"];
      const tier = typeof raw === "string" ? raw : undefined; // other types have no tier rate
      let byTier = this.decisions.get(name);
      if (byTier === undefined) this.decisions.set(name, (byTier = new Map()));
      let decision = byTier.get(tier);
      if (decision === undefined) {
        decision = this.decide(name, tier);
        if (byTier.size < MAX_TIERS_CACHED) byTier.set(tier, decision); // a buggy game's tiers stay bounded
      }
      if (!decision.keep) {
        if (decision.reason === "sampled") stats.sampledOut++;
        else if (decision.reason === "consent") stats.optedOut++;
        else stats.refused++;
        return;
      }
      const now = Date.now();
      if (decision.debounceMs) {
        const last = this.lastAt.get(name);
        if (last !== undefined && now - last < decision.debounceMs) {
          stats.debounced++;
          return;
        }
        this.lastAt.set(name, now);
      }
      const seq = this.seq.take();
      const data = `{"seq":${seq}${decision.head}${now},"props":${JSON.stringify(props)}}`;
      const bytes = NON_ASCII.test(data) ? utf8Length(data) : data.length;
      if (bytes > MAX_EVENT_BYTES) {
        stats.refused++;
        return;
      }
      if (this.buffer.push(decision.priority, data, bytes)) this.reportOverflow();
      stats.buffered++;
      if (decision.priority === LIFECYCLE_PRIORITY) this.pending.add(seq, decision.priority, name, data);
    } catch {
      stats.errors++; // the game loop must never see an analytics failure
    }
  }

  /** The game's telemetry tick: the latest values go out at most once a second. */
  telemetry(rttMs: number, snapshotBytes: number): void {
    try {
      if (this.consent.analytics === false) return;
      const rtt = Number.isFinite(rttMs) && rttMs >= 0 ? rttMs : undefined;
      const size = Number.isSafeInteger(snapshotBytes) && snapshotBytes >= 0 ? snapshotBytes : undefined;
      this.telemetryPending = JSON.stringify({ type: "telemetry", rtt_ms: rtt, snapshot_bytes: size });
    } catch {
      this.stats.errors++;
    }
  }

  /** Change consent: tracking follows at once; the gateway learns it at the next `hello`. */
  setConsent(consent: Consent): void {
    this.consent = { ...consent };
    this.decisions.clear();
  }

  get bufferedEvents(): number {
    return this.buffer.count;
  }

  get bufferedBytes(): number {
    return this.buffer.size;
  }

  get pendingEnvelopes(): number {
    return this.unacked.size + this.resend.length;
  }

  /** Nothing buffered and nothing awaiting an ack. */
  get idle(): boolean {
    return this.buffer.count === 0 && this.unacked.size === 0 && this.resend.length === 0;
  }

  /** Events waiting per priority, and drops so far, for a debug HUD. */
  bufferReport(): { counts: Record<string, number>; overflow: OverflowReport } {
    return { counts: this.buffer.counts(), overflow: this.overflowReport() };
  }

  // -- the transport's side ----------------------------------------------------------------

  /** A connection is up: returns the `hello` frame to send first. */
  onConnected(): string {
    this.welcomed = false;
    this.unauthorized = null;
    const token = typeof this.opts.token === "function" ? this.opts.token() : this.opts.token;
    return JSON.stringify({
      type: "hello",
      token,
      client_guid: this.clientGuid,
      schema: this.schema,
      schema_hash: this.schemaHash,
      build: this.opts.build ?? "",
      platform: this.opts.platform ?? "",
      consent: this.consent,
    });
  }

  /** The connection is gone: every unacked envelope will be resent, unchanged. */
  onDisconnected(): void {
    this.welcomed = false;
    this.requeue([...this.unacked.values()]);
    this.unacked.clear();
  }

  /**
   * Handle one frame from the gateway; false when it is not an analytics frame (a game that
   * shares its socket passes everything here and handles what comes back false).
   */
  onFrame(data: unknown): boolean {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(String(data)) as Record<string, unknown>;
    } catch {
      return false;
    }
    if (typeof frame !== "object" || frame === null) return false;
    try {
      switch (frame["type"]) {
        case "ack":
          this.onAck(frame);
          return true;
        case "error":
          this.onError(frame);
          return true;
        case "welcome":
          this.sessionId = String(frame["session_id"]);
          this.maxEvents = Number(frame["max_events_per_envelope"] ?? 500) || 500;
          this.maxRateHz = Math.max(1, Number(frame["max_rate_hz"] ?? 10) || 10);
          // Welcomed even if the rules cannot be read (a newer wire version): the old rules
          // stay and the gateway's guard samples anyway; a client that never sends loses more.
          this.welcomed = true;
          this.setRules(frame);
          return true;
        case "sampling":
          this.setRules(frame);
          return true;
        default:
          return false;
      }
    } catch {
      this.stats.errors++;
      return true;
    }
  }

  /**
   * Frames to send now: telemetry when due, then a resend, else a new envelope once the
   * flush interval has passed (or one is full); at most one envelope per 1/max_rate_hz,
   * none while held back by `backpressure` or `rate_limited`.
   */
  poll(now: number = this.clock()): string[] {
    if (!this.welcomed) return [];
    const out: string[] = [];
    if (this.telemetryPending !== null && now - this.lastTelemetry >= TELEMETRY_INTERVAL_MS) {
      out.push(this.telemetryPending);
      this.telemetryPending = null;
      this.lastTelemetry = now;
      this.stats.telemetrySent++;
    }
    if (this.versionRefused !== null || now < this.holdUntil) return out;
    if (now - this.lastSend < (RATE_MARGIN * 1000) / this.maxRateHz) return out;
    let envelope: Envelope | undefined = this.resend.shift();
    if (envelope !== undefined) {
      this.stats.envelopesResent++;
    } else if (
      this.buffer.count &&
      this.unacked.size < MAX_IN_FLIGHT &&
      (now - this.lastNew >= Math.max(this.opts.flushIntervalMs ?? FLUSH_INTERVAL_MS, 100) ||
        this.buffer.count >= this.maxEvents)
    ) {
      envelope = this.newEnvelope();
      this.lastNew = now;
    } else {
      return out;
    }
    this.unacked.set(envelope.id, envelope);
    this.lastSend = now;
    this.stats.envelopesSent++;
    out.push(envelope.frame);
    return out;
  }

  /**
   * How long a transport may wait before its next `poll()`: until the flush schedule lets the
   * next new envelope go (the rate limit and a hold included), at most `ceilingMs` (acks,
   * resends, a full buffer), and `ceilingMs` when nothing is due. A transport polling on a
   * fixed 50 ms tick against the 100 ms flush and the 105 ms rate margin sent every third
   * tick: 6.7 Hz instead of the protocol's 10.
   */
  pollDelay(ceilingMs: number, now: number = this.clock()): number {
    const due = Math.max(
      this.holdUntil,
      this.lastSend + (RATE_MARGIN * 1000) / this.maxRateHz,
      this.lastNew + Math.max(this.opts.flushIntervalMs ?? FLUSH_INTERVAL_MS, 100),
    );
    const wait = due - now;
    return wait > 0 ? Math.min(ceilingMs, wait + WAKE_MARGIN_MS) : ceilingMs;
  }

  // -- private -----------------------------------------------------------------------------

  private decide(name: string, tier: unknown): Decision {
    const spec = EVENTS[name];
    if (this.versionRefused !== null || spec === undefined) return { ...REFUSED, reason: "refused" };
    const consent = this.consent;
    if (consent.analytics === false || (spec.consent !== null && consent[spec.consent as keyof Consent] === false)) {
      return { ...REFUSED, reason: "consent" }; // not even buffered
    }
    const keep = this.rules.shouldKeep(this.player, name, spec.tiered ? tier : undefined, this.multiplier);
    const head = `,"name":${JSON.stringify(name)},"ts":`;
    return { keep, head, priority: spec.priority, debounceMs: this.rules.debounceMs(name), reason: keep ? "" : "sampled" };
  }

  private newEnvelope(): Envelope {
    const maxBytes = (this.opts.maxFrameBytes ?? MAX_FRAME_BYTES) - ENVELOPE_OVERHEAD;
    const events = this.buffer.take(this.maxEvents, maxBytes);
    const id = this.nextId++;
    const frame = `{"type":"analytics","id":${id},"schema":${JSON.stringify(this.schema)},"events":[${events.join(",")}]}`;
    const bytes = utf8Length(frame);
    this.buffer.reserved += bytes;
    return { id, frame, bytes, events };
  }

  private forget(envelope: Envelope): void {
    this.buffer.reserved -= envelope.bytes;
    if (this.pending.size) this.pending.settle(envelope.events);
  }

  private requeue(envelopes: Envelope[]): void {
    this.resend = [...envelopes, ...this.resend].sort((a, b) => a.id - b.id);
  }

  private setRules(frame: Record<string, unknown>): void {
    const multiplier = typeof frame["multiplier"] === "number" ? frame["multiplier"] : 1;
    this.rules = parseRules(frame["sampling"]); // a bad form throws: the old rules stay
    this.samplingVersion = String(frame["sampling_version"] ?? "");
    this.multiplier = multiplier;
    this.decisions.clear();
  }

  private onAck(ack: Record<string, unknown>): void {
    const envelope = this.unacked.get(Number(ack["id"]));
    if (envelope === undefined) return; // already settled (a resend raced it)
    this.unacked.delete(envelope.id);
    this.forget(envelope);
    this.refusals = Math.max(0, this.refusals - 1);
    const stats = this.stats;
    stats.envelopesAcked++;
    stats.eventsAcked += Number(ack["accepted"] ?? 0);
    stats.eventsRejected += Array.isArray(ack["rejected"]) ? ack["rejected"].length : 0;
    stats.eventsDroppedByServer += Number(ack["dropped"] ?? 0);
  }

  private onError(error: Record<string, unknown>): void {
    const code = error["code"];
    const id = error["id"];
    const envelope = typeof id === "number" ? this.unacked.get(id) : undefined;
    if (envelope !== undefined) this.unacked.delete(envelope.id);
    if (code === "backpressure" || code === "rate_limited") {
      const retry = Number(error["retry_after_ms"] ?? 0) || RATE_LIMITED_RETRY_MS;
      // Refused again before acks: wait 2×, 4×, 8× the hint (as the Python SDK's SendSchedule.hold);
      // a refusal while held is of an envelope sent before the hold began: the same refusal.
      const now = this.clock();
      if (now >= this.holdUntil) {
        const wait = Math.min(retry * 2 ** Math.min(this.refusals, MAX_DOUBLINGS), MAX_HOLD_MS);
        this.refusals++;
        this.holdUntil = now + wait * (1 + RETRY_JITTER * Math.random());
      }
      if (code === "backpressure") this.stats.backpressure++;
      else this.stats.rateLimited++;
      if (envelope !== undefined) this.requeue([envelope]); // kept and resent unchanged
    } else if (code === "analytics_version") {
      this.versionRefused = String(error["detail"] ?? code);
      this.decisions.clear();
      if (envelope !== undefined) this.requeue([envelope]);
    } else if (code === "unauthorized") {
      this.unauthorized = String(error["detail"] ?? code);
      if (envelope !== undefined) this.requeue([envelope]);
    } else if (envelope !== undefined) {
      this.forget(envelope); // bad_request: resending the same bytes cannot succeed
      this.stats.envelopesRefused++;
    }
  }

  private overflowReport(): OverflowReport {
    const dropped: Record<string, number> = {};
    this.buffer.dropped.forEach((n, p) => {
      if (n) dropped[PRIORITY_NAMES[p] as string] = n;
    });
    return { dropped, bufferedBytes: this.buffer.size, capBytes: this.buffer.cap };
  }

  private reportOverflow(): void {
    const hook = this.opts.onOverflow;
    if (hook === undefined) return;
    try {
      hook(this.overflowReport());
    } catch {
      this.stats.errors++;
    }
  }
}
