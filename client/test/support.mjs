// A real local stack for the tests: `gameplay-analytics up` through the Python CLI, tokens from
// `gameplay-analytics token`, and Postgres read through the same Python (asyncpg).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
/** The Python with gameplay_analytics installed: CLIENT_TEST_PYTHON, else the repo venv. */
export const PYTHON = process.env.CLIENT_TEST_PYTHON ?? join(REPO, ".venv", "bin", "python");
const SECRET = "client-test-secret-of-at-least-32-bytes";
const ENV = { ...process.env, PYTHONPATH: REPO, GAMEPLAY_ANALYTICS_JWT_SECRET: SECRET };

export function pythonAvailable() {
  return existsSync(PYTHON);
}

/** Start the stack; resolves to {endpoints, stop()} once it prints `ready`. */
export async function startStack() {
  const dataDir = mkdtempSync(join(tmpdir(), "ga-client-"));
  const proc = spawn(PYTHON, ["-m", "gameplay_analytics.cli", "up", "--data-dir", dataDir], {
    env: ENV, stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  let line;
  try {
    line = await new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`stack not ready in 120 s: ${stderr}`)), 120_000);
      createInterface({ input: proc.stdout }).once("line", (l) => (clearTimeout(timer), resolveLine(l)));
      proc.once("exit", (code) => (clearTimeout(timer), reject(new Error(`up exited ${code}: ${stderr}`))));
    });
    if (!line.startsWith("ready ")) throw new Error(`unexpected: ${line}\n${stderr}`);
  } catch (err) {
    proc.kill("SIGTERM");
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const endpoints = JSON.parse(readFileSync(line.slice(6).trim(), "utf8"));
  return {
    endpoints,
    async stop() {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function token(player) {
  return execFileSync(PYTHON, ["-m", "gameplay_analytics.cli", "token", "--player", player], {
    env: ENV, encoding: "utf8",
  }).trim();
}

const QUERY = `
import asyncio, json, sys
import asyncpg
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    try:
        rows = await conn.fetch(sys.argv[2], *json.loads(sys.argv[3]))
    finally:
        await conn.close()
    print(json.dumps([dict(r) for r in rows], default=str))
asyncio.run(main())
`;

/** Rows of a SQL query against the stack's Postgres. */
export function query(dsn, sql, params = []) {
  const out = execFileSync(PYTHON, ["-c", QUERY, dsn, sql, JSON.stringify(params)], {
    env: ENV, encoding: "utf8",
  });
  return JSON.parse(out);
}

/** Poll `fn` until it returns a truthy value or `timeoutMs` passes (then the last value). */
export async function eventually(fn, timeoutMs = 30_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value || Date.now() >= deadline) return value;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
