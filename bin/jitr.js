#!/usr/bin/env node
// The `jitr` command. An installed package runs the built JavaScript in dist/. A clone of the repository
// runs dist/ too when it was built after the last change to the sources (`npm run build`), and otherwise
// the TypeScript sources through tsx (a devDependency), so a clone never runs stale code.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// The AWS SDK warns on every start that its releases after January 2027 need Node 22; Node 20 is a
// supported runtime here, so that one notice is not shown (every other warning is).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).startsWith("NodeVersionSupportWarning")) return;
  emitWarning(warning, ...rest);
};

const root = fileURLToPath(new URL("..", import.meta.url));
/** Written by scripts/build.ts into dist/ once a build is complete. */
const BUILT_MARK = join(root, "dist", ".built");

/** The newest modification time of the sources the build compiles (and of its configuration), early out above `limit`. */
function sourcesNewerThan(limit) {
  let config;
  try {
    config = JSON.parse(readFileSync(join(root, "tsconfig.build.json"), "utf8"));
  } catch {
    return true;
  }
  const newer = (path) => statSync(path).mtimeMs > limit;
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return walk(path);
      return /\.(tsx?|json)$/.test(entry.name) && newer(path);
    });
  return (
    newer(join(root, "tsconfig.build.json")) ||
    newer(join(root, "tsconfig.json")) ||
    config.include.some((dir) => existsSync(join(root, dir)) && walk(join(root, dir)))
  );
}

/** True when dist/ should run: always in an installed package, in a clone when built after the last source change. */
function runBuilt() {
  if (!existsSync(join(root, "cli", "main.ts"))) return true;
  if (!existsSync(BUILT_MARK)) return false;
  return !sourcesNewerThan(statSync(BUILT_MARK).mtimeMs);
}

let main;
if (runBuilt()) {
  ({ main } = await import("../dist/cli/main.js"));
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    process.stderr.write(
      "jitr: no build in dist/ and no tsx to run the sources: run `npm ci && npm run build`\n",
    );
    process.exit(1);
  }
  register();
  ({ main } = await import("../cli/main.ts"));
}
process.exitCode = await main(process.argv);
