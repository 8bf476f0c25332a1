// build.mjs: builds the dashboard into OUTDIR (node build.mjs --outdir DIR): index.html,
// app.js (every module and uPlot, one minified bundle) and app.css. Run by meson (ui/meson.build)
// from the npm packages `npm ci` installed (make deps); nothing is fetched at build or run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const at = process.argv.indexOf("--outdir");
if (at < 0 || !process.argv[at + 1]) {
  console.error("usage: node build.mjs --outdir DIR");
  process.exit(2);
}
const outdir = process.argv[at + 1];
mkdirSync(outdir, { recursive: true });

try {
  await build({
    entryPoints: { app: join(here, "src/main.js") },
    bundle: true,
    minify: true,
    format: "iife",
    target: ["chrome110", "firefox110", "safari16"],
    outdir,
    logLevel: "warning",
    legalComments: "none",
  });
  await build({
    entryPoints: { app: join(here, "src/style.css") },
    bundle: true,
    minify: true,
    outdir,
    logLevel: "warning",
  });
  copyFileSync(join(here, "src/index.html"), join(outdir, "index.html"));
} catch (err) {
  console.error(`ui: build failed: ${err.message.split("\n")[0]}`);
  process.exit(1);
}
