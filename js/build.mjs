// Bundles every js/*.js entry (one per widget) into n4a_widgets/static/.
// The Python package loads them by file path (anywidget `_esm`).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "n4a_widgets", "static");
mkdirSync(out, { recursive: true });

const entries = readdirSync(here)
  .filter((f) => f.endsWith(".js") && !f.endsWith(".config.js"))
  .map((f) => join(here, f));

await build({
  entryPoints: entries,
  bundle: true,
  format: "esm",
  target: "es2020",
  outdir: out,
  minify: process.env.N4A_DEV !== "1",
  sourcemap: false,
  logLevel: "info",
});
copyFileSync(join(here, "lib", "widgets.css"), join(out, "widgets.css"));
