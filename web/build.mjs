// Bundles the page into dist/ (served by the gateway with --web_root) and
// the Node tests into build-test/. Run gen.sh first (npm run build does).
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm } from "node:fs/promises";

const here = new URL(".", import.meta.url).pathname;
await rm(`${here}dist`, { recursive: true, force: true });
await mkdir(`${here}dist`, { recursive: true });
await build({
  entryPoints: [`${here}src/app.ts`],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: true,
  outfile: `${here}dist/app.js`,
  logLevel: "warning",
});
await copyFile(`${here}index.html`, `${here}dist/index.html`);
await copyFile(`${here}style.css`, `${here}dist/style.css`);

await rm(`${here}build-test`, { recursive: true, force: true });
const tests = (await readdir(`${here}test`)).filter((f) => f.endsWith(".test.ts"));
await build({
  entryPoints: tests.map((f) => `${here}test/${f}`),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node18",
  outdir: `${here}build-test`,
  outExtension: { ".js": ".mjs" },
  // playwright-core stays a runtime import from node_modules.
  external: ["playwright-core"],
  logLevel: "warning",
});
