/**
 * Start-up benchmark of the built CLI: how long `jitr --version` and `jitr --help` take as whole processes,
 * as ratios to `node -e 0` measured in the same run (the three in turn, so a drift in the machine's speed
 * touches all of them alike). Builds dist/ first, then prints the medians and the ratios. Stops by itself.
 *
 *   npm run bench:startup [-- runs=21]
 */
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const runs = Number(process.argv[2] ?? 21);
const TARGET = 3;
if (!Number.isInteger(runs) || runs < 3 || runs > 500)
  throw new Error("runs must be a whole number from 3 to 500");

const build = spawnSync(
  process.execPath,
  [join(root, "node_modules", "tsx", "dist", "cli.mjs"), "scripts/build.ts"],
  {
    cwd: root,
    stdio: "inherit",
  },
);
if (build.status !== 0) process.exit(build.status ?? 1);

const bin = join(root, "bin", "jitr.js");
const commands = {
  "node -e 0": ["-e", "0"],
  "jitr --version": [bin, "--version"],
  "jitr --help": [bin, "--help"],
} as const;
type Name = keyof typeof commands;
const names = Object.keys(commands) as Name[];

/** Wall time of one run, in milliseconds. */
function timeOnce(args: readonly string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`${args.join(" ")} failed: ${String(result.stderr)}`);
  return elapsed;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

for (const name of names) timeOnce(commands[name]); // warm-up: file cache, no figure kept
const times = new Map<Name, number[]>(names.map((name) => [name, []]));
for (let i = 0; i < runs; i++) for (const name of names) times.get(name)?.push(timeOnce(commands[name]));

const baseline = median(times.get("node -e 0") ?? []);
console.log(`start-up of the built CLI, median of ${runs} runs each, in turn, node ${process.version}`);
for (const name of names) {
  const ms = median(times.get(name) ?? []);
  const ratio = ms / baseline;
  const verdict =
    name === "node -e 0"
      ? ""
      : ratio < TARGET
        ? `  (target < ${TARGET}x: met)`
        : `  (target < ${TARGET}x: NOT met)`;
  console.log(`${name.padEnd(16)} ${ms.toFixed(0).padStart(5)} ms  ${ratio.toFixed(2)}x node -e 0${verdict}`);
}
