/**
 * The event buffer: encoded events by priority, capped in bytes (the Python SDK's twin).
 * On overflow the lowest priority goes first, oldest first within it; lifecycle never.
 */

import { LIFECYCLE_PRIORITY, PRIORITY_NAMES } from "./contract.gen.js";

const LEVELS = PRIORITY_NAMES.length;

/** UTF-8 length of a string without allocating (events are mostly ASCII JSON). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else {
      bytes += 2; // 3 bytes for one unit, or 4 for a surrogate pair (two units)
      if (code >= 0xd800 && code < 0xdc00) i++;
    }
  }
  return bytes;
}

/** A FIFO with O(1) shift, enough for one priority level. */
class Queue {
  private items: string[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: string): void {
    this.items.push(item);
  }
  peek(): string | undefined {
    return this.items[this.head];
  }
  shift(): string | undefined {
    const item = this.items[this.head];
    this.items[this.head++] = "";
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

/**
 * Encoded events waiting for an envelope. `reserved` counts against the cap too: the bytes
 * of sent, unacknowledged envelopes the SDK keeps for a resend. `dropped` counts per priority.
 */
export class PriorityBuffer {
  private readonly queues: Queue[] = Array.from({ length: LEVELS }, () => new Queue());
  size = 0;
  count = 0;
  reserved = 0;
  readonly dropped: number[] = new Array<number>(LEVELS).fill(0);

  constructor(readonly cap: number) {}

  /** Add an event; returns how many events the cap evicted (0 almost always). */
  push(priority: number, event: string, bytes: number): number {
    (this.queues[priority] as Queue).push(event);
    this.size += bytes;
    this.count += 1;
    return this.size + this.reserved > this.cap ? this.evict() : 0;
  }

  /** Up to `maxEvents` events within `maxBytes`, highest priority first (one event always). */
  take(maxEvents: number, maxBytes: number): string[] {
    const taken: string[] = [];
    let budget = maxBytes;
    for (let p = LEVELS - 1; p >= 0 && taken.length < maxEvents; p--) {
      const queue = this.queues[p] as Queue;
      while (queue.length && taken.length < maxEvents) {
        const bytes = utf8Length(queue.peek() as string);
        if (bytes + 1 > budget && taken.length) return this.settle(taken);
        taken.push(queue.shift() as string);
        budget -= bytes + 1;
        this.size -= bytes;
      }
    }
    return this.settle(taken);
  }

  /** Events waiting per priority name, for a debug HUD. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    this.queues.forEach((q, p) => {
      if (q.length) counts[PRIORITY_NAMES[p] as string] = q.length;
    });
    return counts;
  }

  private settle(taken: string[]): string[] {
    this.count -= taken.length;
    return taken;
  }

  private evict(): number {
    let evicted = 0;
    for (let p = 0; p < LEVELS && this.size + this.reserved > this.cap; p++) {
      if (p === LIFECYCLE_PRIORITY) continue;
      const queue = this.queues[p] as Queue;
      while (queue.length && this.size + this.reserved > this.cap) {
        this.size -= utf8Length(queue.shift() as string);
        this.count -= 1;
        this.dropped[p] = (this.dropped[p] as number) + 1;
        evicted += 1;
      }
    }
    return evicted;
  }
}
