// The SDK against a real gateway: events land in Postgres exactly once, across a dropped
// connection; then the browser bundle in real headless Chromium does the same.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";

import { AnalyticsClient, connect, shareSocket } from "../dist/index.js";
import { eventually, pythonAvailable, query, startStack, token } from "./support.mjs";
import { runPage, chromiumPath } from "./browser.mjs";

const skip = pythonAvailable() ? false : "no Python with gameplay_analytics (set CLIENT_TEST_PYTHON)";
let stack;

before(async () => {
  if (!skip) stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

function storedFor(clientGuid) {
  return query(stack.endpoints.postgres_dsn,
    "SELECT seq, event_name, sample_rate FROM analytics_events WHERE client_guid = $1::uuid ORDER BY seq",
    [clientGuid]);
}

test("events tracked on the SDK's own socket are stored once, across a dropped connection", { skip }, async () => {
  const player = randomUUID();
  const client = new AnalyticsClient({ player, token: () => token(player), platform: "node", build: "test" });
  const conn = connect(client, stack.endpoints.ws_url);
  client.track("session_start", { character_class: "mage" });
  for (let i = 0; i < 20; i++) client.track("engage_enemy", { enemy_id: `orc_${i}`, tier: "elite" });
  client.track("encounter_end", { encounter_id: "e1", tier: "elite", outcome: "win" });
  client.telemetry(48, 1834);
  assert.equal(await conn.flush(30_000), true, JSON.stringify(client.stats));
  conn.drop();
  for (let i = 0; i < 10; i++) client.track("skill_rank_up", { skill: "fire", rank: i + 1 });
  client.track("session_end", { reason: "logout" });
  assert.equal(await conn.close(30_000), true, JSON.stringify(client.stats));
  assert.ok(conn.connections >= 2);
  const rows = await eventually(() => {
    const r = storedFor(client.clientGuid);
    return r.length >= 33 ? r : null;
  });
  assert.ok(rows, "events did not reach Postgres");
  assert.equal(rows.length, 33);
  assert.equal(new Set(rows.map((r) => r.seq)).size, 33);
  assert.deepEqual(rows.map((r) => r.event_name).filter((n) => n.startsWith("session")), ["session_start", "session_end"]);
  assert.equal(client.stats.eventsAcked, 33);
});

test("on a socket the game owns: game input and analytics share it; game frames come back", { skip }, async () => {
  const player = randomUUID();
  const client = new AnalyticsClient({ player, token: token(player), platform: "node" });
  const game = new WebSocket(stack.endpoints.ws_url); // the game's own connection
  const link = shareSocket(client, (frame) => game.send(frame));
  const notAnalytics = [];
  game.onopen = () => link.opened();
  game.onmessage = (e) => { if (!link.received(e.data)) notAnalytics.push(e.data); };
  game.onclose = () => link.closed();
  await eventually(() => client.welcomed, 10_000, 20);
  client.track("session_start", {});
  for (let i = 0; i < 5; i++) {
    game.send(JSON.stringify({ type: "input", keys: ["w"], tick: i })); // the game's own frames
    client.track("xp_gain", { amount: 10, source: "quest" });
    client.track("encounter_end", { encounter_id: `e${i}`, tier: "normal", outcome: "win" });
  }
  client.track("session_end", { reason: "logout" });
  assert.ok(await eventually(() => client.idle, 30_000, 20), JSON.stringify(client.stats));
  link.stop();
  game.close();
  const expected = client.stats.eventsAcked;
  assert.equal(expected, client.stats.buffered); // nothing lost, nothing rejected
  const rows = await eventually(() => {
    const r = storedFor(client.clientGuid);
    return r.length >= expected ? r : null;
  });
  assert.ok(rows && rows.length === expected, `stored ${rows?.length} of ${expected}`);
  assert.deepEqual(notAnalytics, []); // the gateway answers analytics only; input is ignored
});

test("the bundle in headless Chromium sends events that land in Postgres", { skip: skip || (chromiumPath() ? false : "chromium not installed") }, async () => {
  const player = randomUUID();
  const { reports, stderr } = await runPage({ wsUrl: stack.endpoints.ws_url, token: token(player), player });
  assert.equal(reports.length, 2, JSON.stringify({ reports, stderr }));
  const [first, second] = reports;
  assert.equal(first.flushed && second.flushed, true, JSON.stringify(reports));
  assert.equal(second.clientGuid, first.clientGuid); // localStorage kept the installation
  const rows = await eventually(() => {
    const r = storedFor(first.clientGuid);
    return r.length >= 23 ? r : null;
  });
  assert.ok(rows, `not all stored for ${first.clientGuid}`);
  // 22 tracked, and the session the first load left open, reported by the second
  assert.equal(rows.length, 23);
  assert.equal(rows.filter((r) => r.event_name === "session_crash").length, 1);
  // seq continues across page loads: every event of the second load follows the first's
  const names = rows.map((r) => r.event_name); // ordered by seq
  assert.equal(names[0], "session_start");
  assert.equal(names.at(-1), "session_end");
  assert.equal(names.lastIndexOf("engage_enemy") < names.indexOf("skill_rank_up"), true);
});
