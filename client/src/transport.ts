/**
 * Two ways to carry an AnalyticsClient: on a WebSocket the game already owns (`shareSocket`:
 * the game sends the frames it is handed and routes replies here), or on one of its own
 * (`connect`: reconnects with capped, jittered backoff; unacked envelopes are resent).
 */

import type { AnalyticsClient } from "./client.js";

/** A timer handle for either runtime. */
type Timer = ReturnType<typeof setTimeout>;

export interface SharedSocket {
  /** The game's socket is open (again): sends `hello` through the game's `send`. */
  opened(): void;
  /** A frame arrived; true when it was an analytics frame (the game can ignore it then). */
  received(data: unknown): boolean;
  /** The game's socket closed: unacked envelopes will be resent after `opened()`. */
  closed(): void;
  /** Stop the pump timer. */
  stop(): void;
}

/**
 * Analytics on the game's own socket: `send` is the game's function that writes one text
 * frame; the pump calls it with analytics frames while the socket is open.
 */
export function shareSocket(client: AnalyticsClient, send: (frame: string) => void): SharedSocket {
  let open = false;
  const safeSend = (frame: string): void => {
    try {
      send(frame);
    } catch {
      client.stats.errors++;
    }
  };
  const timer = pumpEvery(client, () => {
    if (open) for (const frame of client.poll()) safeSend(frame);
  });
  return {
    opened() {
      open = true;
      safeSend(client.onConnected());
    },
    received: (data) => client.onFrame(data),
    closed() {
      open = false;
      client.onDisconnected();
    },
    stop: () => timer.stop(),
  };
}

export interface ConnectOptions {
  /** A WebSocket constructor where the runtime has no global one (Node < 22: `ws`). */
  readonly WebSocket?: new (url: string) => WebSocket;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

export interface Connection {
  /** Connections opened so far. */
  readonly connections: number;
  /** Resolves once every event is acknowledged (true) or after `timeoutMs` (false). */
  flush(timeoutMs: number): Promise<boolean>;
  /** Drop the current connection as a network failure would; it reconnects. */
  drop(): void;
  /** Flush (bounded), then close for good. */
  close(flushTimeoutMs?: number): Promise<boolean>;
}

/** Analytics on a WebSocket of the SDK's own, kept open until `close()`. */
export function connect(client: AnalyticsClient, url: string, options: ConnectOptions = {}): Connection {
  const Socket = options.WebSocket ?? (globalThis as { WebSocket?: new (url: string) => WebSocket }).WebSocket;
  if (Socket === undefined) throw new Error("no WebSocket in this runtime: pass options.WebSocket");
  const minMs = options.reconnectMinMs ?? 100;
  const maxMs = options.reconnectMaxMs ?? 5000;
  let delay = minMs;
  let socket: WebSocket | null = null;
  let stopped = false;
  let connections = 0;
  let retry: Timer | null = null;

  const pump = pumpEvery(client, () => {
    if (socket?.readyState !== 1) return;
    for (const frame of client.poll()) socket.send(frame);
  });

  const open = (): void => {
    retry = null;
    if (stopped) return;
    let ws: WebSocket;
    try {
      ws = new Socket(url);
    } catch {
      schedule();
      return;
    }
    socket = ws;
    ws.onopen = () => {
      connections++;
      ws.send(client.onConnected());
    };
    ws.onmessage = (event: MessageEvent) => {
      client.onFrame(event.data);
      if (client.welcomed) delay = minMs;
      if (client.unauthorized !== null) ws.close();
    };
    ws.onclose = () => {
      if (socket === ws) socket = null;
      client.onDisconnected();
      schedule();
    };
    ws.onerror = () => undefined; // onclose follows
  };
  const schedule = (): void => {
    if (stopped || retry !== null) return;
    retry = setTimeout(open, delay * (0.5 + Math.random()));
    delay = Math.min(maxMs, delay * 2);
  };
  const flush = async (timeoutMs: number): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (!client.idle) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  };
  open();
  return {
    get connections() {
      return connections;
    },
    flush,
    drop() {
      socket?.close(4000, "dropped");
    },
    async close(flushTimeoutMs = 5000) {
      const flushed = await flush(flushTimeoutMs);
      stopped = true;
      pump.stop();
      if (retry !== null) clearTimeout(retry);
      socket?.close(1000);
      return flushed;
    },
  };
}

const POLL_MS = 50; // the longest a transport waits between polls (acks, resends, a full buffer)

/** Calls `send` again whenever the client's schedule lets the next envelope go (at most
 * POLL_MS apart): the protocol's 10 Hz, not the next multiple of a fixed tick. */
function pumpEvery(client: AnalyticsClient, send: () => void): { stop(): void } {
  let timer: Timer | null = null;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    try {
      send();
    } finally {
      timer = setTimeout(tick, client.pollDelay(POLL_MS));
      unref(timer);
    }
  };
  timer = setTimeout(tick, POLL_MS);
  unref(timer);
  return {
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    },
  };
}

function unref(timer: Timer): void {
  (timer as { unref?: () => void }).unref?.();
}
