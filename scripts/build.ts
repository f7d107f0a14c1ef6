/**
 * Builds the CLI and every module it loads into dist/: tsc with tsconfig.build.json, plain JavaScript with
 * the relative `.ts` imports rewritten to `.js`, so the package runs without TypeScript or tsx.
 *
 *   npm run build
 *
 * It compiles into a fresh folder and swaps it in, so dist/ never keeps the output of a deleted source and a
 * `jitr` started meanwhile reads a whole build; the console's browser script is bundled into dist/console/app.js; the mark dist/.built is written last (bin/jitr.js runs dist/
 * from a clone only while that mark is newer than every source).
 */
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");
const staging = join(root, `dist.building-${process.pid}`);
const previous = join(root, `dist.previous-${process.pid}`);
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

const started = Date.now();
const run = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json"), "--outDir", staging], {
  cwd: root,
  stdio: "inherit",
});
if (run.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  process.exit(run.status ?? 1);
}
// the admin console's browser script, bundled (the installed package has no esbuild to bundle it on demand)
const { BUNDLE_FILE } = await import("../console/assets.ts");
const { writeBundle } = await import("./console-bundle.ts");
writeBundle(join(staging, "console", BUNDLE_FILE));
writeFileSync(join(staging, ".built"), `${new Date().toISOString()}\n`);
if (existsSync(dist)) renameSync(dist, previous);
renameSync(staging, dist);
rmSync(previous, { recursive: true, force: true });
console.error(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
