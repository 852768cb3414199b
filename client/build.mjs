// The browser bundle: one minified ESM file (dist/gameplay-analytics.min.js) beside tsc's output.
import { build } from "esbuild";

await build({
  entryPoints: ["src/index.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  outfile: "dist/gameplay-analytics.min.js",
  legalComments: "none",
});
