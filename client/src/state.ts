/**
 * The installation's persistent state: its client_guid and its seq counter (PROTOCOL.md §1:
 * seqs rise strictly across the installation's life, page loads included).
 */

/** Synchronous key-value storage; `localStorage` is one, `memoryStorage()` another. */
export interface StorageAdapter {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** A storage that forgets on exit (tests, bots): seqs then start from the wall clock. */
export function memoryStorage(): StorageAdapter & { readonly persistent: false } {
  const items = new Map<string, string>();
  return {
    persistent: false,
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
  };
}

/** `localStorage` where the runtime has a usable one, else a memory storage. */
export function defaultStorage(): StorageAdapter {
  try {
    const local = (globalThis as { localStorage?: StorageAdapter }).localStorage;
    if (local !== undefined) {
      local.setItem("gameplay-analytics:probe", "1");
      return local;
    }
  } catch {
    // private mode or a sandboxed frame: storage throws; fall through
  }
  return memoryStorage();
}

const PREFIX = "gameplay-analytics:";

function uuid4(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  const hex = Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16));
  hex[12] = "4";
  hex[16] = ((parseInt(hex[16] as string, 16) & 3) | 8).toString(16);
  const s = hex.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/** The installation's client_guid, created on first use and kept in `storage`. */
export function loadOrCreateClientGuid(storage: StorageAdapter): string {
  const key = `${PREFIX}client_guid`;
  const found = safeGet(storage, key);
  if (found && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(found)) {
    return found;
  }
  const guid = uuid4();
  safeSet(storage, key, guid);
  return guid;
}

function safeGet(storage: StorageAdapter, key: string): string | null {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

function safeSet(storage: StorageAdapter, key: string, value: string): void {
  try {
    storage.setItem(key, value);
  } catch {
    // quota or a closed storage: the wall-clock floor below still keeps seqs rising
  }
}

/**
 * Hands out strictly increasing seqs for one client_guid, reserving blocks: storage holds the
 * first seq no page has been handed, so a closed tab skips at most one block, never repeats
 * one, and two tabs of one installation reserve disjoint blocks. Without persistent storage
 * the counter starts from the wall clock in microseconds, as the Python SDK's does.
 */
export class SeqCounter {
  private next: number;
  private limit: number;
  private readonly key: string;

  constructor(
    clientGuid: string,
    private readonly storage: StorageAdapter,
    private readonly block = 1024,
  ) {
    this.key = `${PREFIX}seq:${clientGuid}`;
    const persistent = (storage as { persistent?: boolean }).persistent !== false;
    this.next = this.limit = persistent ? 0 : Date.now() * 1000;
    this.reserve();
  }

  take(): number {
    if (this.next >= this.limit) this.reserve();
    return this.next++;
  }

  private reserve(): void {
    const stored = Number(safeGet(this.storage, this.key) ?? 0);
    // A damaged value must not restart the sequence at 0: jump past anything plausible.
    const floor = Number.isSafeInteger(stored) && stored >= 0 ? stored : Date.now() * 1000;
    this.next = Math.max(this.next, floor);
    this.limit = this.next + this.block;
    safeSet(this.storage, this.key, String(this.limit));
  }
}
