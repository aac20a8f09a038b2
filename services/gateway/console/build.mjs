// Builds the Console into ../orchestrator_gateway/console (committed, served by the gateway).
// `node build.mjs --check` builds into a temporary directory and fails when the committed
// output differs (CI's freshness check). The build is deterministic: pinned esbuild and
// dependencies (package-lock.json), no hashes or timestamps in the output.
import { build } from "esbuild";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const committed = join(here, "..", "orchestrator_gateway", "console");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "console-")) : committed;

rmSync(join(out, "assets"), { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
await build({
  entryPoints: { app: join(here, "src", "main.jsx") },
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: true,
  legalComments: "eof",
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: join(out, "assets"),
  logLevel: "warning",
});
await build({
  entryPoints: { app: join(here, "src", "styles.css") },
  bundle: true,
  minify: true,
  outdir: join(out, "assets"),
  logLevel: "warning",
});
cpSync(join(here, "src", "index.html"), join(out, "index.html"));

if (check) {
  const files = (dir) =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath ?? e.path, e.name)))
      .sort();
  const built = files(out);
  const have = files(committed);
  const stale = built.filter(
    (f) => !have.includes(f) || !readFileSync(join(out, f)).equals(readFileSync(join(committed, f))),
  );
  const extra = have.filter((f) => !built.includes(f));
  rmSync(out, { recursive: true, force: true });
  if (stale.length || extra.length) {
    console.error(`console build is stale: ${[...stale, ...extra].join(", ")}; run \`make console\``);
    process.exit(1);
  }
  console.log("console build is fresh");
}
