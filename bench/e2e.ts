/**
 * End to end with real devices: N MQTT/TLS devices run from child processes (bench/devices) against the
 * stack started in this process with AWS IoT's default quotas enforced (factor 1). Reports first connect ->
 * first accepted publish, certificates decided per second as a ratio to the ~10/s quota ceiling, events
 * per device, lost and stuck certificates. Stops by itself.
 *
 *   npm run bench:e2e -- [--quick] [--devices N] [--retry backoff|fixed]   (both patterns unless --retry)
 */
import "reflect-metadata";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "../adapters/dynamo/table.ts";
import { DEMO_NAMING, prepareDemo } from "../cli/demo.ts";
import { quantile } from "../cli/fleet.ts";
import type { LedgerEntry } from "../domain/types.ts";
import { startLocalStack } from "../local/stack.ts";
import { runProcessFleet } from "./devices/fleet.ts";
import type { RetryPattern } from "./devices/retry.ts";

/** DescribeCertificate and UpdateCertificate at 10 requests/s each: about 10 certificates decided per second. */
export const CEILING_PER_SECOND = 10;
/**
 * The fleet powers on over this long (each device at a uniformly random moment), as a line does, rather
 * than in one millisecond: devices started in one instant with a fixed 10 s retry stay in lock-step, and
 * each wave meets auto-registration's 15/s quota (a 1 s bucket) in a second or two. One fixed retry period.
 */
export const POWER_ON_SPREAD_MS = 10_000;

export interface EndToEndOptions {
  devices: number;
  retry: RetryPattern;
  /** A short run while tuning: 200 devices at most. */
  quick?: boolean;
  /** Quota factor (default 1): the ceiling scales with it. */
  quotaFactor?: number;
}

export interface EndToEndFigures {
  devices: number;
  retry: RetryPattern;
  /** First connection attempt -> first accepted publish, over the devices that published (ms). */
  connectToPublishMs: { p50: number; p95: number; max: number };
  /** Certificates decided (provisioned or denied) per second, from the first registration to the last outcome. */
  decidedPerSecond: number;
  /** `decidedPerSecond` over the quota ceiling. */
  ratioToCeiling: number;
  /** Registered events the rule path received, per device (duplicates from reconnects included). */
  eventsPerDevice: number;
  /** Connection attempts per device. */
  attemptsPerDevice: number;
  /** Devices meant to be provisioned that never published; certificates never decided (still PENDING_ACTIVATION). */
  lost: number;
  stuck: number;
  deadLettered: number;
  elapsedSeconds: number;
  peakRssMiB: number;
}

/** Runs one end-to-end measurement and returns its figures. */
export async function endToEnd(options: EndToEndOptions): Promise<EndToEndFigures> {
  const devices = options.quick ? Math.min(options.devices, 200) : options.devices;
  const factor = options.quotaFactor ?? 1;
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  const dataDir = await mkdtemp(join(tmpdir(), "jitr-e2e-"));
  let firstRegistration: number | undefined;
  const stack = await startLocalStack({
    dataDir,
    inMemory: true,
    awsPort: 0,
    adminPort: 0,
    mqttPort: 0,
    quotas: { enabled: true, factor },
    onConnectionEvent: (event) => {
      if (event.kind === "registered") firstRegistration ??= Date.now();
    },
  });
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(process.memoryUsage().rss), 500);
  try {
    const demo = await prepareDemo(stack, dataDir, devices, DEMO_NAMING);
    const statusOf = (id: string) => stack.aws.iot.describeCertificateById(id)?.status;
    const result = await runProcessFleet({
      endpoint: {
        host: stack.endpoints.mqttHost,
        port: stack.endpoints.mqttPort,
        caPem: await readFile(stack.endpoints.gatewayCaFile, "utf8"),
      },
      devices: demo.map((d) => ({
        deviceId: d.deviceId,
        identity: d.identity,
        certificateId: d.certificateId,
        topic: `devices/${d.deviceId}/telemetry`,
        ...(d.after ? { after: d.after } : {}),
      })),
      retry: options.retry,
      powerOnSpreadMs: POWER_ON_SPREAD_MS,
      deadlineMs: 30 * 60_000,
      // Read in this process: the oracle must not spend the quota the service is measured against.
      statuses: async () =>
        new Map(
          demo.flatMap((d) =>
            statusOf(d.certificateId) ? [[d.certificateId, statusOf(d.certificateId) as string]] : [],
          ),
        ),
    });
    await stack.rulePath.idle();
    const ledger: LedgerEntry[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await createDocumentClient(stack.clients.dynamo).send(
        new ScanCommand({ TableName: stack.tables.ledger, ExclusiveStartKey: start }),
      );
      ledger.push(...((page.Items ?? []) as LedgerEntry[]));
      start = page.LastEvaluatedKey;
    } while (start);
    const decidedAt = ledger
      .filter((e) => e.kind === "provisioned" || e.kind === "denied")
      .map((e) => Date.parse(e.at));
    const seconds = (Math.max(...decidedAt) - (firstRegistration ?? result.startedAt)) / 1000;
    const decidedPerSecond = decidedAt.length / Math.max(0.001, seconds);
    const published = new Set(result.reports.filter((r) => r.result === "published").map((r) => r.deviceId));
    const latencies = result.reports
      .flatMap((r) => (r.msToFirstPublish === undefined ? [] : [r.msToFirstPublish]))
      .sort((a, b) => a - b);
    const stats = stack.rulePath.stats();
    return {
      devices: demo.length,
      retry: options.retry,
      connectToPublishMs: {
        p50: quantile(latencies, 0.5),
        p95: quantile(latencies, 0.95),
        max: latencies.at(-1) ?? 0,
      },
      decidedPerSecond,
      ratioToCeiling: decidedPerSecond / (CEILING_PER_SECOND * factor),
      eventsPerDevice: stats.enqueued / demo.length,
      attemptsPerDevice: result.attempts / demo.length,
      lost: demo.filter((d) => d.expect === "provisioned" && !published.has(d.deviceId)).length,
      stuck: demo.filter((d) => statusOf(d.certificateId) === "PENDING_ACTIVATION").length,
      deadLettered: stats.deadLettered,
      elapsedSeconds: (result.endedAt - result.startedAt) / 1000,
      peakRssMiB: Math.max(...rss, process.memoryUsage().rss) / 2 ** 20,
    };
  } finally {
    clearInterval(sampler);
    await stack.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** One line per measurement, for the standalone run and for `npm run bench`. */
export function formatEndToEnd(f: EndToEndFigures): string {
  const c = f.connectToPublishMs;
  return [
    `end to end, ${f.devices} devices, ${f.retry === "backoff" ? "backoff 1 s..60 s, full jitter" : "fixed 10 s"} retries:`,
    `  connect -> publish p50 ${(c.p50 / 1000).toFixed(1)} s, p95 ${(c.p95 / 1000).toFixed(1)} s, max ${(c.max / 1000).toFixed(1)} s`,
    `  decided ${f.decidedPerSecond.toFixed(2)}/s = ${f.ratioToCeiling.toFixed(2)} x the ceiling; ${f.eventsPerDevice.toFixed(1)} events and ${f.attemptsPerDevice.toFixed(1)} connection attempts per device`,
    `  lost ${f.lost}, stuck ${f.stuck}, dead-lettered ${f.deadLettered}; ${f.elapsedSeconds.toFixed(0)} s; stack peak RSS ${f.peakRssMiB.toFixed(0)} MiB`,
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      devices: { type: "string", default: "2000" },
      retry: { type: "string" },
    },
  });
  const devices = Number(values.devices);
  if (!Number.isInteger(devices) || devices < 4) {
    process.stderr.write(`--devices must be a whole number of at least 4; got "${values.devices}"\n`);
    process.exit(2);
  }
  if (values.retry !== undefined && values.retry !== "backoff" && values.retry !== "fixed") {
    process.stderr.write(`--retry must be backoff or fixed; got "${values.retry}"\n`);
    process.exit(2);
  }
  const patterns: RetryPattern[] = values.retry ? [values.retry as RetryPattern] : ["backoff", "fixed"];
  for (const retry of patterns) {
    const figures = await endToEnd({ devices, retry, quick: values.quick });
    process.stdout.write(`${formatEndToEnd(figures)}\n`);
  }
}
