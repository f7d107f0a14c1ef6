/**
 * Service throughput under IoT quotas: registered certificates (PENDING_ACTIVATION, allowlisted, their
 * shared policy already in place) whose events, each with duplicates mixed in, go through the rule path
 * as deployed (batches of five, a concurrency cap of two, a visibility timeout before a failed message
 * comes back, a dead-letter list after five receives), one handler instance per concurrency slot, against
 * the local endpoint enforcing AWS's quotas scaled by a factor. The provisioning function gets the same
 * factor through its deployment parameter (JITR_IOT_QUOTAS); no code changes between factors.
 */
import "reflect-metadata";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { BatchWriteCommand, PutCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { Context } from "aws-lambda";
import { createDocumentClient } from "../adapters/dynamo/table.ts";
import { registerCa, writeCa } from "../cli/ca.ts";
import { defaultIotQuotas, quotaOf } from "../domain/rate.ts";
import type { RegisteredEvent } from "../domain/types.ts";
import { readProvisioningConfig } from "../handlers/config.ts";
import { makeProvisionHandler } from "../handlers/provision.ts";
import { buildProvisioning } from "../handlers/wiring.ts";
import { createRulePath, type LambdaHandler } from "../local/rule-path.ts";
import { localHandlerEnvironment, startLocalStack } from "../local/stack.ts";
import { certificateIdOf, createCa, issueCertificate } from "../pki/certificates.ts";

/** The deployed event source and queue (serverless.yml defaults). */
export const DEPLOYED_RULE_PATH = {
  batchSize: 5,
  maxConcurrency: 4,
  maxReceiveCount: 5,
  visibilityTimeoutMs: 180_000,
};

export interface ServiceRunOptions {
  certificates: number;
  duplicatesPerCertificate: number;
  factor: number;
  /** Stop waiting after this long (the run then counts what is left as lost). */
  deadlineMs: number;
}

export interface ServiceRunResult {
  factor: number;
  certificates: number;
  events: number;
  decided: number;
  seconds: number;
  decidedPerSecond: number;
  /** Certificates per second the quotas allow for the calls a device needed in this run. */
  ceiling: number;
  /** The operation that sets the ceiling. */
  bindingOperation: string;
  /** CPU time of the whole process (stack, handlers, harness) per second of wall time, in cores. */
  cpuCores: number;
  /** Successful IoT calls per decided certificate, by operation. */
  callsPerDevice: Record<string, number>;
  iotCalls: number;
  throttledCalls: number;
  lost: number;
  /** Records the handler reported failed (each comes back after the visibility timeout). */
  failedRecords: number;
  deadLettered: number;
  stuckPending: number;
  peakRssMiB: number;
  /** CPU milliseconds a duplicate of a settled certificate costs, measured after the run. */
  duplicateCpuMs: number;
}

const quiet = (serviceName: string) => {
  // BENCH_LOG_LEVEL=ERROR shows why a message failed (the handler's own error logs).
  const logLevel = process.env.BENCH_LOG_LEVEL === "ERROR" ? "ERROR" : "SILENT";
  const logger = new Logger({ serviceName, logLevel });
  return { logger, metrics: new Metrics({ namespace: "JitrBench", serviceName, logger }) };
};

/** A seeded shuffle, so two runs enqueue in the same order. */
function shuffle<T>(items: T[], seed = 1): T[] {
  let state = seed;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** Runs one factor; stops by itself. */
export async function runServiceThroughput(options: ServiceRunOptions): Promise<ServiceRunResult> {
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  const dataDir = await mkdtemp(join(tmpdir(), "jitr-bench-service-"));
  const stack = await startLocalStack({
    dataDir,
    inMemory: true,
    awsPort: 0,
    adminPort: 0,
    mqttPort: 0,
    quotas: { enabled: true, factor: options.factor },
  });
  try {
    const { region, accountId } = stack.endpoints;
    // The fleet is set up as if its devices had connected earlier: no quota while registering.
    stack.aws.quotas.enabled = false;
    const doc = createDocumentClient(stack.clients.dynamo);

    // The fleet: a CA with auto-registration, a shared policy template for everyone, allowlisted devices.
    const caDir = join(dataDir, "ca");
    const ca = await createCa({ commonName: "JITR Bench CA" });
    await mkdir(caDir, { recursive: true });
    await writeCa(caDir, ca);
    const { certificateId: caId } = await registerCa(stack.clients.iot, caDir, { autoRegistration: true });
    const now = new Date().toISOString();
    await doc.send(
      new PutCommand({
        TableName: stack.tables.mappings,
        Item: { selector: "default", policy: { template: "sensor" }, version: 1, updatedAt: now },
      }),
    );
    const warmUp = DEPLOYED_RULE_PATH.maxConcurrency;
    const total = options.certificates + warmUp;
    const ids: string[] = [];
    const deviceIds: string[] = [];
    for (let start = 0; start < total; start += 50) {
      const names = Array.from(
        { length: Math.min(50, total - start) },
        (_, k) => `bench-${String(start + k).padStart(5, "0")}`,
      );
      const issued = await Promise.all(names.map((CN) => issueCertificate(ca, { subject: { CN } })));
      for (const certificate of issued) {
        await stack.aws.iot.autoRegisterCertificate(certificate.certificatePem, caId);
        ids.push(certificateIdOf(certificate.certificatePem));
      }
      deviceIds.push(...names);
    }
    for (let start = 0; start < deviceIds.length; start += 25) {
      const items = deviceIds.slice(start, start + 25).map((deviceId) => ({
        PutRequest: { Item: { deviceId, status: "allowed", version: 1 } },
      }));
      await doc.send(new BatchWriteCommand({ RequestItems: { [stack.tables.allowlist]: items } }));
    }
    const eventOf = (certificateId: string): RegisteredEvent => ({
      certificateId,
      caCertificateId: caId,
      timestamp: Date.now(),
      certificateStatus: "PENDING_ACTIVATION",
      awsAccountId: accountId,
      certificateRegistrationTimestamp: String(Date.now()),
    });

    // One handler instance per concurrency slot, each with its own clients, as Lambda runs them.
    const environment = {
      ...localHandlerEnvironment(region, accountId, stack.tables),
      JITR_IOT_QUOTAS: JSON.stringify({ factor: options.factor }),
      JITR_PROVISION_CONCURRENCY: String(DEPLOYED_RULE_PATH.maxConcurrency),
    };
    const config = readProvisioningConfig(environment);
    const calls = new Map<string, number>();
    let throttled = 0;
    const instances: LambdaHandler[] = [];
    for (let i = 0; i < DEPLOYED_RULE_PATH.maxConcurrency; i++) {
      const clientConfig = {
        endpoint: stack.endpoints.awsEndpoint,
        region,
        credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
        maxAttempts: 1,
      };
      const iot = new IoTClient(clientConfig);
      iot.middlewareStack.add(
        (next, context) => async (args) => {
          const operation = String(context.commandName ?? "").replace(/Command$/, "");
          try {
            const result = await next(args);
            calls.set(operation, (calls.get(operation) ?? 0) + 1);
            return result;
          } catch (error) {
            if ((error as { name?: string }).name === "ThrottlingException") throttled += 1;
            else calls.set(operation, (calls.get(operation) ?? 0) + 1);
            throw error;
          }
        },
        { step: "initialize", name: "benchCallCounter" },
      );
      const clients = { iot, dynamo: new DynamoDBClient(clientConfig) };
      instances.push(makeProvisionHandler(buildProvisioning(config, clients, quiet(`bench-${i}`))));
    }
    const free = [...instances];
    let failedRecords = 0;
    const pooled: LambdaHandler = async (event, context: Context) => {
      const instance = free.pop();
      if (instance === undefined) throw new Error("more batches in flight than concurrency slots");
      try {
        const response = (await instance(event, context)) as { batchItemFailures?: unknown[] } | undefined;
        failedRecords += response?.batchItemFailures?.length ?? 0;
        return response;
      } finally {
        free.push(instance);
      }
    };
    const rulePath = createRulePath({
      handler: pooled,
      concurrency: DEPLOYED_RULE_PATH.maxConcurrency,
      batchSize: DEPLOYED_RULE_PATH.batchSize,
      maxReceiveCount: DEPLOYED_RULE_PATH.maxReceiveCount,
      retryBaseMs: DEPLOYED_RULE_PATH.visibilityTimeoutMs,
      retryMaxMs: DEPLOYED_RULE_PATH.visibilityTimeoutMs,
      region,
      accountId,
    });

    stack.aws.quotas.enabled = true;
    // Warm-up: one certificate per instance, so the shared policy exists and instances are warm.
    const warmIds = ids.slice(0, warmUp);
    for (const id of warmIds) rulePath.enqueue("warm-up", eventOf(id));
    await rulePath.idle();
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // the emulator's buckets refill
    calls.clear();
    throttled = 0;
    failedRecords = 0;

    // The burst: every certificate's event and its duplicates, mixed.
    const measured = ids.slice(warmUp);
    const events = shuffle(
      measured.flatMap((id) => Array.from({ length: 1 + options.duplicatesPerCertificate }, () => id)),
    );
    const statusOf = (id: string) => stack.aws.iot.describeCertificateById(id)?.status;
    const rss: number[] = [];
    const cpuStart = process.cpuUsage();
    const started = performance.now();
    for (const id of events) rulePath.enqueue(`$aws/events/certificates/registered/${caId}`, eventOf(id));
    let decided = 0;
    let lastDecidedAt = started;
    // A failed message comes back after the visibility timeout, as on SQS: wait for that once more.
    const deadline = started + options.deadlineMs + DEPLOYED_RULE_PATH.visibilityTimeoutMs;
    while (performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      rss.push(process.memoryUsage().rss);
      const count = measured.filter((id) => statusOf(id) !== "PENDING_ACTIVATION").length;
      if (count > decided) {
        decided = count;
        lastDecidedAt = performance.now();
      }
      const stats = rulePath.stats();
      if (stats.waiting === 0 && stats.inFlight === 0) break;
    }
    const cpu = process.cpuUsage(cpuStart);
    const wallSeconds = (performance.now() - started) / 1000;
    const seconds = (lastDecidedAt - started) / 1000;
    const stats = rulePath.stats();
    await rulePath.close();

    // What each device cost and what bounds the rate: quota / calls per device, the lowest over operations.
    const callsPerDevice: Record<string, number> = {};
    let ceiling = Number.POSITIVE_INFINITY;
    let bindingOperation = "";
    const quotas = { ...defaultIotQuotas, factor: options.factor };
    for (const [operation, count] of [...calls].sort()) {
      const perDevice = count / Math.max(1, decided);
      callsPerDevice[operation] = perDevice;
      const bound = quotaOf(quotas, operation) / perDevice;
      if (bound < ceiling) {
        ceiling = bound;
        bindingOperation = operation;
      }
    }

    // Lost: not decided, or decided without a ledger outcome.
    const ledger = new Set<string>();
    let key: Record<string, unknown> | undefined;
    do {
      const page = await doc.send(
        new ScanCommand({ TableName: stack.tables.ledger, ...(key ? { ExclusiveStartKey: key } : {}) }),
      );
      for (const item of page.Items ?? [])
        if (typeof item.certificateId === "string" && (item.kind === "provisioned" || item.kind === "denied"))
          ledger.add(item.certificateId);
      key = page.LastEvaluatedKey;
    } while (key);
    const stuckPending = measured.filter((id) => statusOf(id) === "PENDING_ACTIVATION").length;
    const lost = measured.filter((id) => statusOf(id) === "PENDING_ACTIVATION" || !ledger.has(id)).length;

    // The cost of a duplicate of a settled certificate, alone: the same events again, CPU per event.
    const again = createRulePath({
      handler: pooled,
      concurrency: DEPLOYED_RULE_PATH.maxConcurrency,
      batchSize: DEPLOYED_RULE_PATH.batchSize,
      region,
      accountId,
    });
    const sample = measured.slice(0, Math.min(measured.length, 1_000));
    const dupStart = process.cpuUsage();
    for (const id of sample) again.enqueue("duplicate", eventOf(id));
    await again.idle();
    const dupCpu = process.cpuUsage(dupStart);
    await again.close();

    return {
      factor: options.factor,
      certificates: measured.length,
      events: events.length,
      decided,
      seconds,
      decidedPerSecond: decided / Math.max(seconds, 0.001),
      ceiling,
      bindingOperation,
      cpuCores: (cpu.user + cpu.system) / 1e6 / wallSeconds,
      callsPerDevice,
      iotCalls: [...calls.values()].reduce((a, b) => a + b, 0) + throttled,
      throttledCalls: throttled,
      lost,
      failedRecords,
      deadLettered: stats.deadLettered,
      stuckPending,
      peakRssMiB: Math.max(...rss, process.memoryUsage().rss) / 2 ** 20,
      duplicateCpuMs: (dupCpu.user + dupCpu.system) / 1000 / Math.max(1, sample.length),
    };
  } finally {
    await stack.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
