// What one track() costs, as a ratio against the floor measured in the same run: building the
// same event's JSON and pushing it on an array. Not a test (timings on shared machines are noisy).
import { AnalyticsClient, memoryStorage } from "./dist/index.js";

const N = 200_000;
const ROUNDS = 5;
const props = { enemy_id: "orc_7", tier: "elite" };

function floor() {
  const out = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    out.push(`{"seq":${i},"name":"engage_enemy","ts":${Date.now()},"props":${JSON.stringify(props)}}`);
  }
  return Number(process.hrtime.bigint() - start) / N;
}

function track() {
  const client = new AnalyticsClient({
    player: "9b2f6a3e-1c4d-4f5a-8b7c-2d1e0f9a8b7c", token: "t", storage: memoryStorage(),
    bufferCapBytes: 1 << 30,
  });
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) client.track("engage_enemy", props);
  return Number(process.hrtime.bigint() - start) / N;
}

floor(), track(); // warm up
const best = (f) => Math.min(...Array.from({ length: ROUNDS }, f));
const [raw, ours] = [best(floor), best(track)];
console.log(`track(): ${(ours / 1000).toFixed(2)} µs per event; floor ${(raw / 1000).toFixed(2)} µs; ratio ${(ours / raw).toFixed(2)}`);
