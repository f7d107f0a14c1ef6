/**
 * `npm run soak -- [--devices N] [--seed S]`: the soak (bench/soak/run.ts) with a violation report; exits
 * non-zero on any violation. 1,000 devices by default.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { quantile } from "../cli/fleet.ts";
import { formatViolations } from "./soak/check.ts";
import { runSoak, SOAK_LOG } from "./soak/run.ts";

const { values } = parseArgs({
  options: { devices: { type: "string", default: "1000" }, seed: { type: "string" } },
});
const devices = Number(values.devices);
const seed = values.seed === undefined ? undefined : Number(values.seed);
if (!Number.isInteger(devices) || devices < 4) {
  process.stderr.write(`--devices must be a whole number of at least 4; got "${values.devices}"\n`);
  process.exit(2);
}
if (seed !== undefined && !Number.isInteger(seed)) {
  process.stderr.write(`--seed must be a whole number; got "${values.seed}"\n`);
  process.exit(2);
}
const started = Date.now();
const result = await runSoak({
  devices,
  ...(seed === undefined ? {} : { seed }),
  log: (line) =>
    process.stdout.write(`${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}\n`),
});
const attempts = result.reports.reduce((sum, r) => sum + r.attempts, 0);
const latencies = result.reports.flatMap((r) =>
  r.msToFirstPublish === undefined ? [] : [r.msToFirstPublish],
);
latencies.sort((a, b) => a - b);
const at = (q: number) => quantile(latencies, q);
process.stdout.write(
  [
    `soak: ${result.devices} devices, seed ${result.seed}, ${(result.elapsedMs / 1000).toFixed(1)} s`,
    `published ${result.published}; ${attempts} connection attempts (${(attempts / result.devices).toFixed(1)} per device)`,
    `first connect -> first accepted publish: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${at(1)} ms`,
    `kill -9 after ${result.killedAfter} published; down ${result.downMs} ms`,
    `dead-lettered events: ${result.deadLettered}`,
    formatViolations(result.violations),
    result.violations.length === 0 ? "soak passed" : `soak FAILED: ${result.violations.length} violations`,
    ...(result.keptDataDir
      ? [`kept for a look: ${result.keptDataDir} (jitr local's log: ${join(result.keptDataDir, SOAK_LOG)})`]
      : []),
    "",
  ].join("\n"),
);
process.exit(result.violations.length === 0 ? 0 : 1);
