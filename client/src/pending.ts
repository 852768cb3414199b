/**
 * Unacked session lifecycle events kept in storage, so that a closed tab or a crashed game
 * does not lose its `session_end`; the twin of gameplay_analytics/sdk/pending.py. After a
 * reload they go back into the buffer with their seq and bytes (the server stores each once).
 */

import type { StorageAdapter } from "./state.js";

type Entry = [seq: number, priority: number, event: string];

/** The seq of an event this SDK encoded: its JSON starts with `{"seq":N,`. */
export function seqOf(event: string): number {
  return Number(event.slice(7, event.indexOf(",")));
}

export class PendingEvents {
  private readonly key: string;
  private events = new Map<number, Entry>();
  /** Whether the last run left a session open (a `session_start` without an end). */
  sessionOpen = false;

  constructor(clientGuid: string, private readonly storage: StorageAdapter) {
    this.key = `gameplay-analytics:pending:${clientGuid}`;
    try {
      const saved = JSON.parse(storage.getItem(this.key) ?? "null") as { open?: unknown; events?: unknown } | null;
      this.sessionOpen = saved?.open === true;
      if (Array.isArray(saved?.events)) {
        for (const e of saved.events as unknown[]) {
          if (Array.isArray(e) && typeof e[0] === "number" && typeof e[1] === "number" && typeof e[2] === "string") {
            this.events.set(e[0], [e[0], e[1], e[2]]);
          }
        }
      }
    } catch {
      // a damaged entry: nothing to recover
    }
  }

  get size(): number {
    return this.events.size;
  }

  recovered(): Entry[] {
    return [...this.events.values()].sort((a, b) => a[0] - b[0]);
  }

  /** Keep one lifecycle event, and follow whether a session is open; written at once. */
  add(seq: number, priority: number, name: string, event: string): void {
    if (name === "session_start") this.sessionOpen = true;
    else if (name === "session_end" || name === "session_crash") this.sessionOpen = false;
    this.events.set(seq, [seq, priority, event]);
    this.save();
  }

  /** These events were acknowledged (or refused for good): forget them. */
  settle(events: readonly string[]): void {
    let changed = false;
    for (const event of events) changed = this.events.delete(seqOf(event)) || changed;
    if (changed) this.save();
  }

  private save(): void {
    try {
      this.storage.setItem(this.key, JSON.stringify({ open: this.sessionOpen, events: [...this.events.values()] }));
    } catch {
      // quota or a closed storage: the events are still in memory
    }
  }
}
