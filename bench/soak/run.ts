/**
 * The soak: a fleet against a `jitr local` child process with injected IoT faults (throttling, 5xx, latency
 * jitter), a `kill -9` of that process at a seeded random moment and a restart on the same data directory
 * (the rule path's queue is lost with the process; devices' reconnects bring the events back). Afterwards
 * the registry and the tables are read through the real AWS SDK and checked device by device.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { prepareDemo } from "../../cli/demo.ts";
import {
  DEAD_LETTER_LOG_MESSAGE,
  LOCAL_CREDENTIALS,
  LOCAL_TABLES,
  loadLocalEndpoints,
} from "../../local/contract.ts";
import { type FleetMember, runProcessFleet } from "../devices/fleet.ts";
import type { DeviceReport } from "../devices/messages.ts";
import { type RetryPattern, seededRandom } from "../devices/retry.ts";
import { checkSoak, type FleetCertificate, type Violation } from "./check.ts";
import { collectSoakState, listCertificates } from "./collect.ts";

export interface SoakOptions {
  devices: number;
  seed?: number;
  retry?: RetryPattern;
  /** Compresses the devices' retry delays (see the fleet runner); 1 for the soak proper. */
  timeScale?: number;
  /** The function timeout `jitr local` tells the handler (how long a killed invocation blocks its event). */
  functionTimeoutMs?: number;
  /** IoT faults in the child (defaults: 10 % throttling, 2 % 5xx, 0-200 ms latency jitter). */
  faults?: { throttleRate: number; serverErrorRate: number; latencyMs: number; latencyJitterMs: number };
  /** Kill the child once this share of the devices meant to be provisioned published (default: seeded, 10-60 %). */
  killAt?: number;
  /** `jitr local`'s provisioning log level (default INFO: every event's outcome is in the log file). */
  logLevel?: string;
  log?: (line: string) => void;
}

export interface SoakResult {
  violations: Violation[];
  devices: number;
  published: number;
  reports: DeviceReport[];
  /** Published devices when the child was killed, and how long the stack was down. */
  killedAfter: number;
  downMs: number;
  /** Events `jitr local` dead-lettered (from its log). */
  deadLettered: number;
  /** Items whose indexes the restarted `jitr local` wrote again; undefined if it did not see the kill. */
  indexesRepaired: number | undefined;
  elapsedMs: number;
  seed: number;
  /** The data directory and `jitr local`'s log, kept when a check failed (removed when all held). */
  keptDataDir?: string;
}

/** `jitr local`'s output across its runs (both processes append to it), in the data directory. */
export const SOAK_LOG = "jitr-local.log";

const JITR = fileURLToPath(new URL("../../bin/jitr.js", import.meta.url));
const SOAK_NAMING = { prefix: "soak", lot: "soak-lot-1" };
const SITE = "soak";

interface Ports {
  aws: number;
  admin: number;
  mqtt: number;
}

/** A started `jitr local`, with what it printed before it was ready. */
interface StartedLocal {
  child: ChildProcess;
  /** Events it queued again from its journal. */
  replayed: number;
  /** Items whose indexes it wrote again, having found the last run killed; undefined when it did not. */
  indexesRepaired: number | undefined;
}

/** Starts `jitr local` on the data directory; resolves once it prints that it is ready. */
function startLocal(
  dataDir: string,
  ports: Ports,
  env: NodeJS.ProcessEnv,
  logLevel: string,
  logFile: WriteStream,
): Promise<StartedLocal> {
  return new Promise((resolve, reject) => {
    const args = [JITR, "local", "--data", dataDir, "--aws-port", String(ports.aws)];
    args.push(
      "--admin-port",
      String(ports.admin),
      "--mqtt-port",
      String(ports.mqtt),
      "--log-level",
      logLevel,
    );
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(logFile, { end: false });
    child.stderr?.pipe(logFile, { end: false });
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`jitr local was not ready within 60 s:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("jitr local ready")) {
        clearTimeout(timer);
        const repaired = /(\d+) items written again/.exec(output)?.[1];
        child.stdout?.off("data", onData);
        resolve({
          child,
          replayed: Number(/(\d+) unacked events/.exec(output)?.[1] ?? 0),
          indexesRepaired: repaired === undefined ? undefined : Number(repaired),
        });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`jitr local exited before it was ready (${code ?? signal}):\n${output}`));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
  });
}

/** Runs the soak and checks the state it leaves; `violations` is empty when every check held. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const seed = options.seed ?? Date.now() % 1_000_000;
  const random = seededRandom(seed);
  const log = options.log ?? (() => undefined);
  const faults = options.faults ?? {
    throttleRate: 0.1,
    serverErrorRate: 0.02,
    latencyMs: 0,
    latencyJitterMs: 200,
  };
  const dataDir = await mkdtemp(join(tmpdir(), "jitr-soak-"));
  const logLevel = options.logLevel ?? "INFO";
  const logFile = createWriteStream(join(dataDir, SOAK_LOG), { flags: "a" });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JITR_LOCAL_QUOTAS: "0",
    ...(options.functionTimeoutMs
      ? { JITR_LOCAL_FUNCTION_TIMEOUT_MS: String(options.functionTimeoutMs) }
      : {}),
    JITR_LOCAL_FAULT_THROTTLE_RATE: String(faults.throttleRate),
    JITR_LOCAL_FAULT_5XX_RATE: String(faults.serverErrorRate),
    JITR_LOCAL_FAULT_LATENCY_MS: String(faults.latencyMs),
    JITR_LOCAL_FAULT_LATENCY_JITTER_MS: String(faults.latencyJitterMs),
  };
  const startedAt = Date.now();
  let { child } = await startLocal(dataDir, { aws: 0, admin: 0, mqtt: 0 }, env, logLevel, logFile);
  let keep = false;
  const clientsToClose: { destroy(): void }[] = [];
  try {
    const endpoints = await loadLocalEndpoints(dataDir);
    const ports: Ports = {
      aws: Number(new URL(endpoints.awsEndpoint).port),
      admin: Number(new URL(endpoints.adminApi).port),
      mqtt: endpoints.mqttPort,
    };
    // The harness's own calls meet the injected faults too: the SDK's retries carry them through.
    const config = {
      endpoint: endpoints.awsEndpoint,
      region: endpoints.region,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 12,
    };
    const clients = { iot: new IoTClient(config), dynamo: new DynamoDBClient(config) };
    clientsToClose.push(clients.iot, clients.dynamo);
    const target = { clients, tables: LOCAL_TABLES };

    // Per-device policies, so an undone run could leave one behind for the checker to find.
    const now = new Date().toISOString();
    await createDocumentClient(clients.dynamo).send(
      new PutCommand({
        TableName: LOCAL_TABLES.mappings,
        Item: {
          selector: "default",
          policy: { template: "per-device-sensor" },
          attributes: { site: SITE },
          version: 1,
          createdAt: now,
          updatedAt: now,
          updatedBy: "soak",
        },
      }),
    );
    log("soak: jitr local ready; setting up the fleet");
    const demo = await prepareDemo(target, dataDir, options.devices, SOAK_NAMING);
    const members: FleetMember[] = demo.map((d) => ({
      deviceId: d.deviceId,
      identity: d.identity,
      certificateId: d.certificateId,
      topic: `sites/${SITE}/devices/${d.deviceId}/telemetry`,
      ...(d.after ? { after: d.after } : {}),
    }));
    const fleet: FleetCertificate[] = demo.map((d) => ({
      deviceId: d.deviceId,
      certificateId: d.certificateId,
      expect: d.expect,
    }));
    const meantToProvision = demo.filter((d) => d.expect === "provisioned").length;
    const killAt = Math.max(1, Math.round(meantToProvision * (options.killAt ?? 0.1 + random() * 0.5)));
    log(
      `soak: ${demo.length} devices (${meantToProvision} to provision), seed ${seed}; kill -9 after ${killAt} published`,
    );

    let published = 0;
    let killedAfter = -1;
    let downMs = 0;
    let indexesRepaired: number | undefined;
    let restarting: Promise<void> | undefined;
    const crash = async () => {
      killedAfter = published;
      const down = Date.now();
      child.kill("SIGKILL");
      await exited(child);
      log(`soak: killed jitr local (kill -9) after ${published} published`);
      await new Promise((r) => setTimeout(r, 200 + random() * 1_800));
      const restarted = await startLocal(dataDir, ports, env, logLevel, logFile);
      child = restarted.child;
      indexesRepaired = restarted.indexesRepaired;
      downMs = Date.now() - down;
      log(
        `soak: restarted on the same data after ${downMs} ms; ${restarted.replayed} unacked events queued again; ${indexesRepaired === undefined ? "indexes not checked" : `indexes checked, ${indexesRepaired} items written again`}`,
      );
    };
    const result = await runProcessFleet({
      endpoint: {
        host: endpoints.mqttHost,
        port: endpoints.mqttPort,
        caPem: await readFile(endpoints.gatewayCaFile, "utf8"),
      },
      devices: members,
      retry: options.retry ?? "backoff",
      timeScale: options.timeScale ?? 1,
      seed,
      statuses: async () =>
        new Map((await listCertificates(clients.iot)).map((c) => [c.certificateId, c.status])),
      onReport: (report, done, total) => {
        if (done % Math.max(1, Math.round(total / 10)) === 0) log(`soak: ${done}/${total} devices reported`);
        if (report.result === "published") published++;
        if (published >= killAt && restarting === undefined) restarting = crash();
      },
    });
    // A run too small to reach the mark (every device denied, say) still crashes once, at the end.
    restarting ??= crash();
    await restarting;

    // Events decided just before the fleet finished may still be writing their ledger entries: settle.
    log(`soak: fleet done (${result.published} published); checking the registry and the tables`);
    let violations: Violation[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const state = await collectSoakState(target, {
        fleet,
        perDevicePolicy: { template: "per-device-sensor", prefix: "jitr-" },
      });
      violations = checkSoak(state);
      if (violations.length === 0) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    keep = violations.length > 0;
    // Events the rule path gave up on (jitr local logs each one), counted apart from the checks: a
    // certificate whose event was dead-lettered and is not settled fails them anyway.
    const deadLettered = (await readFile(join(dataDir, SOAK_LOG), "utf8"))
      .split("\n")
      .filter((line) => line.includes(JSON.stringify(DEAD_LETTER_LOG_MESSAGE))).length;
    return {
      violations,
      devices: demo.length,
      published: result.published,
      reports: result.reports,
      killedAfter,
      downMs,
      deadLettered,
      indexesRepaired,
      elapsedMs: Date.now() - startedAt,
      seed,
      ...(keep ? { keptDataDir: dataDir } : {}),
    };
  } finally {
    for (const c of clientsToClose) c.destroy();
    child.kill("SIGTERM");
    const stopped = exited(child);
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await stopped;
    clearTimeout(timer);
    await new Promise((r) => logFile.end(r));
    if (!keep) await rm(dataDir, { recursive: true, force: true });
  }
}
