// Real headless Chromium loading the built bundle from a throwaway HTTP server. The page
// tracks events over two page loads (localStorage keeps client_guid and seq) and posts back.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BUNDLE = new URL("../dist/gameplay-analytics.min.js", import.meta.url);
const CANDIDATES = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];

export function chromiumPath() {
  return CANDIDATES.find((p) => p && existsSync(p)) ?? null;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>analytics</title>
<script type="module">
import { AnalyticsClient, connect } from "/sdk.js";
const q = new URLSearchParams(location.search);
const load = Number(sessionStorage.getItem("load") || "1");
const post = (body) => fetch("/result", { method: "POST", body: JSON.stringify(body) });
try {
  const client = new AnalyticsClient({ player: q.get("player"), token: q.get("token"), platform: "web" });
  const conn = connect(client, q.get("ws"));
  if (load === 1) {
    client.track("session_start", { character_class: "rogue" });
    for (let i = 0; i < 10; i++) client.track("engage_enemy", { enemy_id: "wolf_" + i, tier: "boss" });
  } else {
    for (let i = 0; i < 10; i++) client.track("skill_rank_up", { skill: "stealth", rank: i + 1 });
    client.track("session_end", { reason: "logout" });
  }
  const flushed = await conn.close(20000);
  await post({ load, flushed, clientGuid: client.clientGuid, stats: client.stats });
  if (load === 1) { sessionStorage.setItem("load", "2"); location.reload(); }
} catch (err) {
  await post({ load, error: String(err && err.stack || err) });
}
</script>`;

/** Run the page; resolves with both loads' reports. */
export async function runPage({ wsUrl, token, player, timeoutMs = 60_000 }) {
  const reports = [];
  let done;
  const finished = new Promise((resolve) => (done = resolve));
  const server = createServer((req, res) => {
    if (req.url === "/sdk.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(readFileSync(BUNDLE));
    }
    if (req.url === "/result" && req.method === "POST") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const report = JSON.parse(body);
        reports.push(report);
        res.end("ok");
        if (report.error || report.load === 2) done();
      });
      return;
    }
    if (req.url?.startsWith("/page.html")) {
      res.writeHead(200, { "content-type": "text/html" });
      return res.end(PAGE);
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  const profile = mkdtempSync(join(tmpdir(), "ga-chromium-"));
  const url = `http://127.0.0.1:${port}/page.html?` + new URLSearchParams({ ws: wsUrl, token, player });
  const browser = spawn(chromiumPath(), [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", `--user-data-dir=${profile}`, url,
  ], { stdio: ["ignore", "ignore", "pipe"], detached: true }); // its own process group: its helpers go with it
  let stderr = "";
  browser.stderr.on("data", (c) => (stderr = (stderr + c).slice(-3000)));
  const timer = setTimeout(done, timeoutMs);
  try {
    await finished;
  } finally {
    clearTimeout(timer);
    const exited = new Promise((r) => browser.once("exit", r));
    signalGroup(browser.pid, "SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    signalGroup(browser.pid, "SIGKILL");
    server.close();
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
  return { reports, stderr: reports.length < 2 ? stderr : "" };
}

function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
