/**
 * Burst benchmark: N devices connect at once to `jitr local` with AWS IoT's default API quotas enforced.
 * Prints provisionings per second as a ratio to the quota ceiling (about 10 devices/s per account and
 * region: DescribeCertificate and UpdateCertificate are 10 requests/s each), latency figures, and
 * whether any event was lost (dead-lettered). Stops by itself.
 *
 *   npx tsx bench/burst.ts [devices=200] [concurrency=200] [ruleConcurrency=2]
 */
import "reflect-metadata";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_NAMING, demoOracles, prepareDemo } from "../cli/demo.ts";
import { runFleet } from "../cli/fleet.ts";
import { startLocalStack } from "../local/stack.ts";

const [devices = 200, concurrency = 200, ruleConcurrency = 2] = process.argv.slice(2).map(Number);
const CEILING_PER_SECOND = 10;

process.env.POWERTOOLS_METRICS_DISABLED = "true";
let firstRegistration: number | undefined;
const dataDir = await mkdtemp(join(tmpdir(), "jitr-burst-"));
const stack = await startLocalStack({
  dataDir,
  inMemory: true,
  awsPort: 0,
  adminPort: 0,
  mqttPort: 0,
  quotas: { enabled: true, factor: 1 },
  concurrency: ruleConcurrency,
  onConnectionEvent: (event) => {
    if (event.kind === "registered") firstRegistration ??= Date.now();
  },
});
try {
  const fleet = await prepareDemo(stack, dataDir, devices, DEMO_NAMING);
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(process.memoryUsage().rss), 250);
  const summary = await runFleet({
    endpoint: {
      host: stack.endpoints.mqttHost,
      port: stack.endpoints.mqttPort,
      caPem: await readFile(stack.endpoints.gatewayCaFile, "utf8"),
    },
    devices: fleet,
    concurrency,
    deadlineMs: 300_000,
    ...demoOracles(stack, (id) => stack.aws.iot.describeCertificateById(id)?.status),
  });
  clearInterval(sampler);
  await stack.rulePath.idle();
  const stats = stack.rulePath.stats();
  // Service-side rate: from the first registration to the last binding written (the allowlist's provisionedAt).
  const { ScanCommand } = await import("@aws-sdk/lib-dynamodb");
  const { createDocumentClient } = await import("../adapters/dynamo/table.ts");
  const scan = await createDocumentClient(stack.clients.dynamo).send(
    new ScanCommand({ TableName: stack.tables.allowlist }),
  );
  const provisionedAt = (scan.Items ?? []).flatMap((i) =>
    typeof i.provisionedAt === "string" ? [Date.parse(i.provisionedAt)] : [],
  );
  const serviceSeconds = (Math.max(...provisionedAt) - (firstRegistration ?? summary.startedAt)) / 1000;
  const serviceRate = provisionedAt.length / serviceSeconds;
  // Every certificate decided (provisioned or denied) costs one DescribeCertificate and one UpdateCertificate.
  const decided = summary.outcomes.filter((o) => o.actual !== "timeout" && o.actual !== "error").length;
  const decidedRate = decided / serviceSeconds;
  const rate = summary.provisionedPerSecond;
  const lines = [
    `devices ${devices}, connecting at once ${concurrency}, rule-path concurrency ${ruleConcurrency}, quotas enforced (factor 1)`,
    `provisioned ${summary.provisioned} in ${((summary.endedAt - summary.startedAt) / 1000).toFixed(1)} s: ${rate.toFixed(2)}/s = ${(rate / CEILING_PER_SECOND).toFixed(2)} x the ~${CEILING_PER_SECOND}/s quota ceiling`,
    `first connect -> first accepted publish: p50 ${summary.latencyMs?.p50} ms, p95 ${summary.latencyMs?.p95} ms, max ${summary.latencyMs?.max} ms`,
    `service side: ${provisionedAt.length} bindings written ${serviceSeconds.toFixed(1)} s after the first registration: ${serviceRate.toFixed(2)}/s = ${(serviceRate / CEILING_PER_SECOND).toFixed(2)} x the ceiling`,
    `certificates decided (provisioned or denied): ${decided}: ${decidedRate.toFixed(2)}/s = ${(decidedRate / CEILING_PER_SECOND).toFixed(2)} x the ceiling`,
    `rule path: ${stats.enqueued} events enqueued, ${stats.delivered} delivered, ${stats.retried} retried, ${stats.deadLettered} dead-lettered`,
    `every device ended as expected: ${summary.allAsExpected}; peak RSS ${(Math.max(...rss, process.memoryUsage().rss) / 2 ** 20).toFixed(0)} MiB`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await stack.close();
  await rm(dataDir, { recursive: true, force: true });
}
