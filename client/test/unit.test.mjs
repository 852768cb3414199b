// The SDK core without a network: hash, sampling, buffer, consent, debounce, seq, resend.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import { AnalyticsClient, memoryStorage, keep, threshold, xxh64 } from "../dist/index.js";

const GOLDEN = fileURLToPath(new URL("../../schemas/sampling-golden.json", import.meta.url));
const PLAYER = "9B2F6A3E-1C4D-4F5A-8B7C-2D1E0F9A8B7C";

/** A persistent in-memory storage: what localStorage is across page loads. */
function pageStorage() {
  const items = new Map();
  return { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => void items.set(k, v), items };
}

function welcomed(options = {}) {
  let now = 0;
  const client = new AnalyticsClient({
    player: PLAYER, token: "t", storage: pageStorage(), now: () => now, ...options,
  });
  client.onConnected();
  client.onFrame(JSON.stringify({
    type: "welcome", session_id: "s1", sampling: options.sampling ?? allKept(), sampling_version: "v",
  }));
  return { client, tick: (ms) => (now += ms) };
}

function allKept() {
  return { v: 1, events: Object.fromEntries(
    ["session_start", "session_end", "session_crash", "engage_enemy", "client_tick", "chat_message",
     "loot_drop", "inventory_move", "encounter_end"].map((n) => [n, { rate: 1, exempt: n.startsWith("session") }])),
    debounce_ms: { inventory_move: 250 } };
}

test("xxh64 matches the reference implementation (short, striped, multi-byte input)", () => {
  const vectors = [
    ["", 17241709254077376921n], ["a", 15154266338359012955n], ["abc", 4952883123889572249n],
    ["9b2f6a3e-1c4d-4f5a-8b7c-2d1e0f9a8b7c:combat", 12231987825403632693n],
    ["x".repeat(33), 12968755452232992934n], ["héllo wörld ✓ 😀".repeat(5), 8686337200364348653n],
  ];
  for (const [text, expected] of vectors) assert.equal(xxh64(text), expected, text);
});

test("golden vectors of schemas/sampling-golden.json: hashes and keep decisions", (t) => {
  if (!existsSync(GOLDEN)) return t.skip("schemas/sampling-golden.json not on this branch yet");
  const golden = JSON.parse(readFileSync(GOLDEN, "utf8"));
  for (const { key, value } of golden.hash) assert.equal(xxh64(key).toString(), value, key);
  assert.ok(golden.decisions.length > 0);
  for (const d of golden.decisions) {
    assert.equal(keep(d.player, d.cohort, d.rate), d.kept, JSON.stringify(d));
  }
});

test("threshold is exact at the edges", () => {
  assert.equal(threshold(0), 0n);
  assert.equal(threshold(Number.NaN), 0n);
  assert.equal(threshold(1), 1n << 64n);
  assert.equal(threshold(0.5), 1n << 63n);
  assert.equal(threshold(2 ** -70), 1n); // ceil of a fraction of one bucket
});

test("track() never throws, whatever the game passes", () => {
  const { client } = welcomed();
  const circular = {};
  circular.self = circular;
  client.track("engage_enemy", circular);
  client.track("engage_enemy", { big: 1n });
  client.track("no_such_event", {});
  client.track(undefined, null);
  assert.equal(client.stats.errors, 3);
  assert.equal(client.stats.refused, 1);
  assert.equal(client.bufferedEvents, 0);
});

test("an envelope carries the buffered events, highest priority first, at most 10 Hz", () => {
  const { client, tick } = welcomed();
  client.track("client_tick", { fps: 60 });
  client.track("session_start", {});
  client.track("engage_enemy", { enemy_id: "orc", tier: "boss" });
  tick(1000);
  const [frame] = client.poll();
  const envelope = JSON.parse(frame);
  assert.equal(envelope.type, "analytics");
  assert.deepEqual(envelope.events.map((e) => e.name), ["session_start", "engage_enemy", "client_tick"]);
  const seqs = envelope.events.map((e) => e.seq).sort((a, b) => a - b);
  assert.deepEqual(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2]);
  client.track("client_tick", { fps: 61 });
  tick(50);
  assert.deepEqual(client.poll(), []); // within 1/max_rate_hz of the last one
  tick(60);
  assert.equal(client.poll().length, 1);
});

test("a transport that waits pollDelay() between polls sends at the protocol's 10 Hz", () => {
  // A fixed 50 ms tick against the 100 ms flush and the 105 ms rate margin sent every third
  // tick (6.7 Hz); waking when the schedule is due keeps a steady producer near 10 Hz.
  const { client, tick } = welcomed();
  let sent = 0;
  let elapsed = 0;
  while (elapsed < 10_000) {
    client.track("client_tick", { fps: 60 });
    for (const frame of client.poll()) {
      const { type, id, events } = JSON.parse(frame);
      if (type !== "analytics") continue;
      sent++;
      client.onFrame(JSON.stringify({ type: "ack", id, accepted: events.length }));
    }
    const wait = client.pollDelay(50);
    assert.ok(wait > 0 && wait <= 50, `pollDelay ${wait}`);
    tick(wait);
    elapsed += wait;
  }
  assert.ok(sent >= 90 && sent <= 100, `${sent} envelopes in 10 s`);
});

test("unacked envelopes are resent unchanged after a reconnect; acked ones are not", () => {
  const { client, tick } = welcomed();
  client.track("session_start", {});
  tick(1000);
  const [first] = client.poll();
  client.track("session_end", { reason: "logout" });
  tick(1000);
  const [second] = client.poll();
  client.onFrame(JSON.stringify({ type: "ack", id: JSON.parse(first).id, accepted: 1 }));
  client.onDisconnected();
  assert.equal(client.poll().length, 0); // not welcomed
  const hello = JSON.parse(client.onConnected());
  assert.equal(hello.schema_hash.startsWith("sha256:"), true);
  client.onFrame(JSON.stringify({ type: "welcome", session_id: "s2", sampling: allKept(), sampling_version: "v" }));
  tick(1000);
  assert.deepEqual(client.poll(), [second]);
  client.onFrame(JSON.stringify({ type: "ack", id: JSON.parse(second).id, accepted: 1 }));
  assert.equal(client.idle, true);
  assert.equal(client.stats.envelopesResent, 1);
});

test("backpressure keeps the envelope and holds sending back", () => {
  const { client, tick } = welcomed();
  client.track("session_start", {});
  tick(1000);
  const [frame] = client.poll();
  client.onFrame(JSON.stringify({ type: "error", code: "backpressure", id: JSON.parse(frame).id, retry_after_ms: 500, detail: "" }));
  tick(200);
  assert.deepEqual(client.poll(), []);
  tick(600);
  assert.deepEqual(client.poll(), [frame]);
});

test("refused again before acks, the wait doubles up to 8x the hint; acks bring it back", () => {
  const { client, tick } = welcomed();
  client.track("session_start", {});
  tick(1000);
  let [frame] = client.poll();
  const refuseAndWait = () => {
    client.onFrame(JSON.stringify({ type: "error", code: "backpressure", id: JSON.parse(frame).id, retry_after_ms: 100, detail: "" }));
    let waited = 0;
    let sent = [];
    while (sent.length === 0) {
      tick(5);
      waited += 5;
      sent = client.poll();
    }
    frame = sent[0];
    return waited / 100; // in hints; the jitter is below 1.5x
  };
  const waits = [1, 2, 3, 4, 5].map(refuseAndWait);
  [1, 2, 4, 8, 8].forEach((doubled, i) => assert.ok(waits[i] >= doubled && waits[i] < doubled * 1.5 + 0.1, `${waits}`));
  for (let i = 0; i < 6; i++) {
    client.onFrame(JSON.stringify({ type: "ack", id: JSON.parse(frame).id, accepted: 1 }));
    client.track("session_end", { reason: "logout" });
    tick(1000);
    [frame] = client.poll();
  }
  const back = refuseAndWait();
  assert.ok(back >= 1 && back < 1.6, `${back}`);
});

test("envelopes on the wire refused together count as one refusal: the wait doubles once", () => {
  const { client, tick } = welcomed();
  const sent = [];
  for (let i = 0; i < 4; i++) {
    client.track("session_end", { reason: "logout" });
    tick(110);
    sent.push(...client.poll());
  }
  assert.equal(sent.length, 4);
  for (const frame of sent) {
    client.onFrame(JSON.stringify({ type: "error", code: "backpressure", id: JSON.parse(frame).id, retry_after_ms: 100, detail: "" }));
  }
  const waitInHints = () => {
    let waited = 0;
    let out = [];
    while (out.length === 0) {
      tick(5);
      waited += 5;
      out = client.poll();
    }
    return [out[0], waited / 100];
  };
  const [resend, first] = waitInHints();
  assert.ok(first >= 1 && first < 1.6, `${first}`); // the hint, not 8x it
  client.onFrame(JSON.stringify({ type: "error", code: "backpressure", id: JSON.parse(resend).id, retry_after_ms: 100, detail: "" }));
  const [, second] = waitInHints();
  assert.ok(second >= 2 && second < 3.1, `${second}`); // refused after the hold: doubled once
});

test("the 1 MiB cap drops the lowest priority first, never lifecycle, and tells the HUD", () => {
  const reports = [];
  const { client } = welcomed({ bufferCapBytes: 4096, onOverflow: (r) => reports.push(r) });
  for (let i = 0; i < 20; i++) client.track("session_start", { character_class: "x".repeat(100) });
  for (let i = 0; i < 200; i++) client.track("client_tick", { fps: i });
  for (let i = 0; i < 200; i++) client.track("engage_enemy", { enemy_id: `e${i}`, tier: "boss" });
  const { counts, overflow } = client.bufferReport();
  assert.equal(counts.lifecycle, 20);
  assert.equal(counts.heartbeat ?? 0, 0);
  assert.ok(overflow.dropped.heartbeat === 200 && overflow.dropped.gameplay > 0, JSON.stringify(overflow));
  assert.equal(overflow.dropped.lifecycle, undefined);
  assert.ok(client.bufferedBytes <= 4096);
  assert.ok(reports.length > 0 && reports.at(-1).dropped.gameplay === overflow.dropped.gameplay);
});

test("opt-out buffers nothing; social consent gates social events; consent is in hello", () => {
  const { client } = welcomed({ consent: { analytics: true, social: false } });
  client.track("chat_message", { length: 3 });
  client.track("session_start", {});
  assert.equal(client.stats.optedOut, 1);
  assert.equal(client.bufferedEvents, 1);
  client.setConsent({ analytics: false });
  client.track("session_end", { reason: "logout" });
  assert.equal(client.stats.optedOut, 2);
  assert.deepEqual(JSON.parse(client.onConnected()).consent, { analytics: false });
});

test("debounce: one inventory_move per 250 ms", () => {
  const { client } = welcomed();
  for (let i = 0; i < 5; i++) client.track("inventory_move", { item_id: "a", from: "b", to: "c" });
  assert.equal(client.stats.debounced, 4);
  assert.equal(client.bufferedEvents, 1);
});

test("sampling follows the rules and multiplier of welcome/sampling, with cohorts", () => {
  const player = "00000000-0000-0000-0000-000000000000";
  const rules = { v: 1, events: { engage_enemy: { rate: 0.5, tiers: { boss: 1 }, cohort: "combat" },
    session_end: { rate: 1, exempt: true } } };
  const { client } = welcomed({ player, sampling: rules });
  client.track("engage_enemy", { enemy_id: "a", tier: "normal" });
  client.track("engage_enemy", { enemy_id: "a", tier: "boss" });
  const expectNormal = keep(player, "combat", 0.5);
  assert.equal(client.bufferedEvents, expectNormal ? 2 : 1);
  client.onFrame(JSON.stringify({ type: "sampling", sampling: rules, sampling_version: "w", multiplier: 0 }));
  client.track("engage_enemy", { enemy_id: "a", tier: "normal" });
  client.track("session_end", { reason: "logout" }); // exempt: the multiplier never touches it
  client.track("engage_enemy", { enemy_id: "a", tier: "boss" }); // rate 1.0: critical, kept too
  assert.equal(client.bufferedEvents, (expectNormal ? 2 : 1) + 2);
  assert.equal(client.samplingVersion, "w");
  // a malformed rules frame keeps the old rules
  assert.equal(client.onFrame(JSON.stringify({ type: "sampling", sampling: { v: 9 } })), true);
  assert.equal(client.samplingVersion, "w");
});

test("seq rises across page loads and between two tabs of one installation", () => {
  const storage = pageStorage();
  const seqs = [];
  for (let load = 0; load < 3; load++) {
    const a = welcomed({ storage, clientGuid: undefined }).client;
    const b = welcomed({ storage }).client;
    assert.equal(a.clientGuid, b.clientGuid);
    for (const c of [a, b]) c.track("client_tick", { fps: 60 });
    for (const c of [a, b]) {
      const events = JSON.parse(c.poll(1e9)[0]).events;
      seqs.push(events.find((e) => e.name === "client_tick").seq);
    }
  }
  assert.equal(new Set(seqs).size, seqs.length);
  const ofA = seqs.filter((_, i) => i % 2 === 0);
  assert.deepEqual(ofA, [...ofA].sort((x, y) => x - y));
});

test("without persistent storage, seqs start from the wall clock", () => {
  const client = new AnalyticsClient({ player: PLAYER, token: "t", storage: memoryStorage() });
  client.onConnected();
  client.onFrame(JSON.stringify({ type: "welcome", session_id: "s", sampling: allKept(), sampling_version: "v" }));
  client.track("session_start", {});
  const seq = JSON.parse(client.poll(1e9)[0]).events[0].seq;
  assert.ok(seq >= (Date.now() - 60_000) * 1000);
});

test("telemetry goes out at most once a second, latest values", () => {
  const { client, tick } = welcomed();
  tick(5000);
  client.telemetry(40, 1000);
  client.telemetry(48, 1834);
  assert.deepEqual(client.poll().map((f) => JSON.parse(f)), [{ type: "telemetry", rtt_ms: 48, snapshot_bytes: 1834 }]);
  client.telemetry(50, 1900);
  tick(500);
  assert.deepEqual(client.poll(), []);
  tick(600);
  assert.equal(JSON.parse(client.poll()[0]).rtt_ms, 50);
});

test("frames that are not analytics are handed back to the game", () => {
  const { client } = welcomed();
  assert.equal(client.onFrame('{"type":"state","x":1}'), false);
  assert.equal(client.onFrame("not json"), false);
  assert.equal(client.onFrame(JSON.stringify({ type: "ack", id: 999, accepted: 0 })), true);
});

test("a welcome with unreadable rules still lets the client send", () => {
  const client = new AnalyticsClient({ player: PLAYER, token: "t", storage: pageStorage() });
  client.onConnected();
  client.onFrame(JSON.stringify({ type: "welcome", session_id: "s", sampling: { v: 99 }, sampling_version: "x" }));
  assert.equal(client.welcomed, true);
  client.track("session_start", {});
  assert.equal(client.poll(1e9).length, 1);
});

test("unacked lifecycle events survive a reload, unchanged; an open session is a crash", () => {
  const storage = pageStorage();
  const first = welcomed({ storage }).client;
  first.track("session_start", {});
  first.track("engage_enemy", { enemy_id: "a", tier: "boss" }); // not lifecycle: not kept
  const sent = JSON.parse(first.poll(1e9)[0]).events; // sent, never acked: the tab closes
  const second = welcomed({ storage }).client;
  assert.equal(second.recoveredCrash, true);
  const frame = JSON.parse(second.poll(1e9)[0]);
  const names = frame.events.map((e) => e.name).sort();
  assert.deepEqual(names, ["session_crash", "session_start"]);
  assert.deepEqual(frame.events.find((e) => e.name === "session_start"), sent.find((e) => e.name === "session_start"));
  second.onFrame(JSON.stringify({ type: "ack", id: frame.id, accepted: 2 }));
  const third = welcomed({ storage }).client;
  assert.equal(third.recoveredCrash, false); // the crash was reported, and acknowledged
  assert.equal(third.bufferedEvents, 0);
});
