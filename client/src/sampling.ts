/**
 * Compiled sampling rules (the `welcome.sampling` wire form) and the keep decision of
 * PROTOCOL.md §2, bit for bit the server's: exact 64-bit integers, never a double compare.
 */

import { xxh64 } from "./xxh64.js";

export interface WireEventRule {
  readonly rate: number;
  readonly exempt?: boolean;
  readonly tiers?: Readonly<Record<string, number>>;
  readonly cohort?: string;
}

export interface WireRules {
  readonly v: number;
  readonly events: Readonly<Record<string, WireEventRule>>;
  readonly debounce_ms?: Readonly<Record<string, number>>;
}

export const WIRE_VERSION = 1;
const BUCKETS = 1n << 64n;

/** The first bucket not kept at `rate`: ceil(rate × 2^64) exactly; NaN or ≤ 0 keeps none. */
export function threshold(rate: number): bigint {
  if (Number.isNaN(rate) || rate <= 0) return 0n;
  if (rate >= 1) return BUCKETS;
  // rate × 2^64 only moves the exponent, so the double product is exact; ceil makes it whole.
  return BigInt(Math.ceil(rate * 2 ** 64));
}

/** Whether `player`'s events of `cohort` are in the sample at `rate`. */
export function keep(player: string, cohort: string, rate: number): boolean {
  if (rate >= 1) return true;
  return xxh64(`${player.toLowerCase()}:${cohort}`) < threshold(rate);
}

function clamp(rate: number): number {
  return Number.isNaN(rate) ? 0 : Math.min(1, Math.max(0, rate));
}

/** Rules as the SDK uses them; parse with `parseRules`, which refuses a malformed form. */
export class CompiledRules {
  constructor(readonly wire: WireRules) {}

  /** The rate an event is kept at: its tier's rate when it has one, × multiplier unless the
   * event is critical (exempt, or a rate of 1.0: boss/elite combat, skill_rank_up), as
   * `thinnable` in gameplay_analytics/sampling/compiled.py. */
  rateFor(name: string, tier: unknown, multiplier: number): number {
    const rule = this.wire.events[name];
    if (rule === undefined) return 0;
    let rate = rule.rate;
    if (rule.tiers !== undefined && typeof tier === "string") {
      const tierRate = rule.tiers[tier];
      if (tierRate !== undefined) rate = tierRate;
    }
    if (rule.exempt !== true && rate < 1) rate *= multiplier;
    return clamp(rate);
  }

  /** The hash key of an event: its rule's cohort, else the event's own name. */
  cohortFor(name: string): string {
    return this.wire.events[name]?.cohort || name;
  }

  shouldKeep(player: string, name: string, tier: unknown, multiplier: number): boolean {
    return keep(player, this.cohortFor(name), this.rateFor(name, tier, multiplier));
  }

  /** Minimum interval between two events of this name, in ms (0: none). */
  debounceMs(name: string): number {
    return this.wire.debounce_ms?.[name] ?? 0;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isRate(value: unknown): value is number {
  return typeof value === "number" && value >= 0 && value <= 1;
}

/** Parse a wire form; throws an Error naming the bad path (the client keeps its old rules). */
export function parseRules(data: unknown): CompiledRules {
  if (!isRecord(data) || data["v"] !== WIRE_VERSION) {
    throw new Error(`sampling rules: unsupported wire version; this reader understands v=${WIRE_VERSION}`);
  }
  const events = data["events"];
  if (!isRecord(events)) throw new Error("sampling rules: events must be an object");
  for (const [name, rule] of Object.entries(events)) {
    if (!isRecord(rule) || !isRate(rule["rate"])) {
      throw new Error(`sampling rules: events.${name}.rate must be a number in [0, 1]`);
    }
    const tiers = rule["tiers"];
    if (tiers !== undefined && (!isRecord(tiers) || !Object.values(tiers).every(isRate))) {
      throw new Error(`sampling rules: events.${name}.tiers must map tiers to rates`);
    }
  }
  const debounce = data["debounce_ms"] ?? {};
  if (!isRecord(debounce)) throw new Error("sampling rules: debounce_ms must be an object");
  return new CompiledRules(data as unknown as WireRules);
}
