/**
 * `npm run bench`: the service's figures in one table. Stops by itself.
 *
 *   npm run bench                 # 2,000 certificates per quota factor, 2,000 devices per retry pattern
 *   npm run bench -- --quick      # 200 certificates per factor, fewer start-up runs (about 2 minutes)
 *
 * Sections: service throughput under quotas at factors 0.5, 1 and 2 (bench/service.ts), end to end with
 * real devices (bench/e2e.ts: both retry patterns), and the provisioning bundle's size and module init time
 * against a handler that only loads the two SDK clients (bench/bundle.ts). Each throughput and end-to-end
 * measurement runs in a process of its own (bench/isolated.ts), so none pays for what ran before it.
 */
import { measureBundle } from "./bundle.ts";
import { formatEndToEnd } from "./e2e.ts";
import { runIsolated } from "./isolated.ts";
import { DEPLOYED_RULE_PATH, type ServiceRunResult } from "./service.ts";

const quick = process.argv.includes("--quick");
const FACTORS = [0.5, 1, 2] as const;
const CERTIFICATES = quick ? 200 : 2_000;
const DUPLICATES = 20;
/** Targets from issue 14 ("Done when"). */
const TARGET = {
  ratio: { 0.5: 0.95, 1: 0.95, 2: 0.9 } as Record<number, number>,
  throttled: 0.02,
  callsPerDevice: 6,
};

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
const mark = (ok: boolean) => (ok ? "met" : "NOT met");

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

const started = Date.now();
console.log(
  `jitr bench${quick ? " --quick" : ""}: node ${process.version}, ${CERTIFICATES} certificates x (1 + ${DUPLICATES} duplicates) per factor`,
);

// 1. Service throughput under quotas.
const results: ServiceRunResult[] = [];
for (const factor of FACTORS) {
  const deadlineMs = Math.max(60_000, (4 * 1000 * CERTIFICATES) / (10 * factor));
  process.stderr.write(`service throughput at quota factor ${factor} ...\n`);
  results.push(
    await runIsolated({
      kind: "service",
      options: { certificates: CERTIFICATES, duplicatesPerCertificate: DUPLICATES, factor, deadlineMs },
    }),
  );
}
console.log(
  `\nService throughput under quotas (rule path as deployed: batches of ${DEPLOYED_RULE_PATH.batchSize}, ${DEPLOYED_RULE_PATH.maxConcurrency} instances, DLQ after ${DEPLOYED_RULE_PATH.maxReceiveCount})`,
);
console.log(
  table(
    [
      "factor",
      "decided/s",
      "ceiling/s",
      "ratio",
      "target",
      "CPU (cores)",
      "throttled",
      "lost",
      "failed records",
      "dead-lettered",
      "stuck",
      "peak RSS",
    ],
    results.map((r) => {
      const ratio = r.decidedPerSecond / r.ceiling;
      const target = TARGET.ratio[r.factor] ?? 0.9;
      return [
        String(r.factor),
        r.decidedPerSecond.toFixed(2),
        `${r.ceiling.toFixed(1)} (${r.bindingOperation})`,
        ratio.toFixed(3),
        `>= ${target}: ${mark(ratio >= target)}`,
        r.cpuCores.toFixed(2),
        `${pct(r.throttledCalls / Math.max(1, r.iotCalls))} ${mark(r.throttledCalls / Math.max(1, r.iotCalls) <= TARGET.throttled)}`,
        String(r.lost),
        String(r.failedRecords),
        String(r.deadLettered),
        String(r.stuckPending),
        `${r.peakRssMiB.toFixed(0)} MiB`,
      ];
    }),
  ),
);
const common = results.find((r) => r.factor === 1) ?? results[0];
if (common) {
  const total = Object.values(common.callsPerDevice).reduce((a, b) => a + b, 0);
  console.log(
    `\nIoT calls per provisioned device (factor ${common.factor}, common path: allowlisted, shared policy in place, warm instances): ${total.toFixed(2)} (target <= ${TARGET.callsPerDevice}: ${mark(total <= TARGET.callsPerDevice + 1e-9)})`,
  );
  console.log(
    table(
      ["operation", "calls per device"],
      Object.entries(common.callsPerDevice).map(([operation, n]) => [operation, n.toFixed(2)]),
    ),
  );
  console.log(
    `events ${common.events} for ${common.certificates} certificates; a duplicate of a settled certificate costs ${common.duplicateCpuMs.toFixed(2)} ms of CPU`,
  );
}

// 2. End to end with real devices (in child processes, so the harness does not starve the stack), once with
// firmware-like retries and once with a fixed 10 s retry.
for (const retry of ["backoff", "fixed"] as const) {
  process.stderr.write(`end to end, ${retry} retries ...\n`);
  const figures = await runIsolated({ kind: "e2e", options: { devices: CERTIFICATES, retry, quick } });
  console.log(`\n${formatEndToEnd(figures)}`);
}

// 3. Bundle size and module init time.
process.stderr.write("bundle size and init time ...\n");
const bundle = await measureBundle({ runs: quick ? 5 : 15 });
console.log(
  "\nProvisioning bundle (as serverless-esbuild builds it: ESM, minified, AWS SDK provided by the runtime)",
);
console.log(
  table(
    ["bundle", "size", "module init (median)"],
    bundle.map((b) => [b.name, `${(b.bytes / 1024).toFixed(0)} KiB`, `${b.initMs.toFixed(0)} ms`]),
  ),
);
const [provisioning, floor] = bundle;
if (provisioning && floor)
  console.log(`provisioning init / floor: ${(provisioning.initMs / floor.initMs).toFixed(2)}x`);

console.log(`\nbench finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(0);
