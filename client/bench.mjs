// What one track() costs on this machine (not a test: timings are noisy on shared machines).
import { AnalyticsClient, memoryStorage } from "./dist/index.js";

const client = new AnalyticsClient({
  player: "9b2f6a3e-1c4d-4f5a-8b7c-2d1e0f9a8b7c", token: "t", storage: memoryStorage(),
  bufferCapBytes: 1 << 30,
});
const N = 200_000;
const props = { enemy_id: "orc_7", tier: "elite" };
for (let i = 0; i < 10_000; i++) client.track("engage_enemy", props); // warm up
const start = process.hrtime.bigint();
for (let i = 0; i < N; i++) client.track("engage_enemy", props);
const ns = Number(process.hrtime.bigint() - start) / N;
console.log(`track(): ${(ns / 1000).toFixed(2)} µs per event (${N} events, buffered ${client.bufferedEvents})`);
