// The size budget: the minified browser bundle, gzipped, stays within 10 KB.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 10 * 1024;

test("the minified, gzipped bundle is within 10 KB", () => {
  const bundle = readFileSync(new URL("../dist/gameplay-analytics.min.js", import.meta.url));
  const gzipped = gzipSync(bundle, { level: 9 }).length;
  assert.ok(gzipped <= BUDGET_BYTES, `bundle is ${gzipped} bytes gzipped, budget ${BUDGET_BYTES}`);
  assert.ok(!/\brequire\(/.test(bundle.toString()), "the bundle must be self-contained ESM");
});
