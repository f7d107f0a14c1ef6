/**
 * `jitr local`: the whole service in one process — the AWS endpoint (IoT emulator + DynamoDB), the
 * provisioning handler behind the rule path, the admin API and the device gateway.
 */

import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import type { LogLevel } from "@aws-lambda-powertools/logger/types";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { ensureTables, type TableNames } from "../adapters/tables.ts";
import { readAdminConfig } from "../handlers/admin-config.ts";
import { buildAdminDeps } from "../handlers/admin-wiring.ts";
import { DEFAULT_PROVISION_CONCURRENCY, readProvisioningConfig } from "../handlers/config.ts";
import { makeProvisionHandler } from "../handlers/provision.ts";
import { buildProvisioning } from "../handlers/wiring.ts";
import { writeSecret } from "../pki/key-files.ts";
import { startAdminServer } from "./admin-server.ts";
import { type AwsEndpoint, startAwsEndpoint } from "./aws/index.ts";
import { resolveQuotas } from "./aws/iot/limits.ts";
import {
  DEAD_LETTER_LOG_MESSAGE,
  LOCAL_CREDENTIALS,
  LOCAL_JOB_BUCKET,
  LOCAL_PORTS,
  LOCAL_TABLES,
  type LocalEndpoints,
  writeLocalEndpoints,
} from "./contract.ts";
import { type DeviceGateway, type GatewayConnectionEvent, startDeviceGateway } from "./gateway.ts";
import { type LocalJobs, startLocalJobs } from "./jobs.ts";
import { createRulePath, type RulePath } from "./rule-path.ts";
import { ensureGatewayTls, GATEWAY_FILES } from "./tls.ts";

/**
 * Metrics that are counted and dropped: EMF lines are for CloudWatch, and locally they would only mix
 * into the output of the process (a demo's summary, a test's captured stdout).
 */
class LocalMetrics extends Metrics {
  constructor(private readonly settings: { namespace: string; serviceName: string; singleMetric?: boolean }) {
    super(settings);
  }

  override publishStoredMetrics(): this {
    this.clearMetrics();
    this.clearDimensions();
    this.clearMetadata();
    return this;
  }

  override singleMetric(): LocalMetrics {
    return new LocalMetrics({ ...this.settings, singleMetric: true });
  }
}

export interface LocalStackOptions {
  /** State directory (`.jitr` by default). */
  dataDir: string;
  /** Keep AWS state in memory only (tests); the data directory still holds the TLS and endpoint files. */
  inMemory?: boolean;
  host?: string;
  /** 0 lets the OS pick (tests). */
  awsPort?: number;
  adminPort?: number;
  mqttPort?: number;
  region?: string;
  accountId?: string;
  /** Powertools log level of the provisioning handler (default ERROR, so a demo's progress stays readable). */
  logLevel?: LogLevel;
  /** Rule-path buffering: batches handled at once (the deployed MaximumConcurrency; default 4). */
  concurrency?: number;
  quotas?: { enabled: boolean; factor?: number };
  /**
   * The provisioning function's timeout as the handler sees it (default 60 s, or JITR_LOCAL_FUNCTION_TIMEOUT_MS):
   * how long a crashed invocation's idempotency record stays in progress before a redelivery may run.
   */
  functionTimeoutMs?: number;
  onConnectionEvent?: (event: GatewayConnectionEvent) => void;
  /** Print the handler's CloudWatch EMF metric lines to stdout, as on Lambda (default off). */
  emitMetrics?: boolean;
}

export interface LocalStack {
  /** What `endpoints.json` holds (DESIGN section 5). */
  endpoints: LocalEndpoints;
  aws: AwsEndpoint;
  gateway: DeviceGateway;
  rulePath: RulePath;
  /** The jobs' table, bucket, queue and worker. */
  jobs: LocalJobs;
  tables: TableNames;
  /** SDK clients pointed at the local endpoint. */
  clients: { iot: IoTClient; dynamo: DynamoDBClient };
  adminToken: string;
  close(): Promise<void>;
}

/** The provisioning function's behaviour settings, taken from the environment by `jitr local` as on Lambda. */
/** The handler's quota factor when the emulator enforces no quotas. */
const UNENFORCED_QUOTA_FACTOR = 1000;
/** The rule path's journal in the data directory (see ./rule-path.ts). */
export const RULE_PATH_JOURNAL = "rule-path.journal";

const TUNABLE_VARIABLES = [
  "JITR_DEVICE_ID_STRATEGY",
  "JITR_POLICY_PREFIX",
  "JITR_QUARANTINE",
  "JITR_RETRY_ATTEMPTS",
  "JITR_RETRY_BASE_DELAY_MS",
  "JITR_RETRY_MAX_DELAY_MS",
  "JITR_IDEMPOTENCY_TTL_SECONDS",
  "JITR_IOT_QUOTAS",
];

/** The handler's environment, with the same variable names as the deployed function. */
export function localHandlerEnvironment(
  region: string,
  accountId: string,
  tables: TableNames,
): Record<string, string> {
  return {
    AWS_REGION: region,
    JITR_ACCOUNT_ID: accountId,
    JITR_ALLOWLIST_TABLE: tables.allowlist,
    JITR_MAPPINGS_TABLE: tables.mappings,
    JITR_LOTS_TABLE: tables.lots,
    JITR_LEDGER_TABLE: tables.ledger,
    JITR_IDEMPOTENCY_TABLE: tables.idempotency,
    POWERTOOLS_SERVICE_NAME: "jitr-local",
    POWERTOOLS_METRICS_NAMESPACE: "JitrLocal",
  };
}

/** JITR_LOCAL_FUNCTION_TIMEOUT_MS, when set: a whole number of milliseconds from 1 s to 15 min (Lambda's range). */
export function functionTimeoutFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.JITR_LOCAL_FUNCTION_TIMEOUT_MS;
  if (raw === undefined || raw.trim() === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1_000 || value > 900_000)
    throw new Error(
      `JITR_LOCAL_FUNCTION_TIMEOUT_MS must be whole milliseconds from 1000 to 900000, got ${JSON.stringify(raw)}`,
    );
  return value;
}

async function ensureAdminToken(dataDir: string): Promise<{ token: string; file: string }> {
  const file = join(dataDir, "admin-token");
  if (existsSync(file)) return { token: (await readFile(file, "utf8")).trim(), file };
  const token = randomBytes(24).toString("base64url");
  await writeSecret(file, `${token}\n`);
  return { token, file };
}

/** Starts the stack; resolves when every part listens and `endpoints.json` is written. */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const dataDir = resolve(options.dataDir);
  const host = options.host ?? "127.0.0.1";
  const region = options.region ?? "us-east-1";
  const accountId = options.accountId ?? "123456789012";
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) await fn().catch(() => undefined);
  };
  try {
    const tls = await ensureGatewayTls(dataDir);
    const admin = await ensureAdminToken(dataDir);

    const aws = await startAwsEndpoint({
      host,
      port: options.awsPort ?? LOCAL_PORTS.aws,
      region,
      accountId,
      ...(options.inMemory ? {} : { dataDir }),
      ...(options.quotas ? { quotas: options.quotas } : {}),
      buckets: [LOCAL_JOB_BUCKET],
    });
    closers.push(() => aws.close());
    const clientConfig = { endpoint: aws.url, region, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 };
    const clients = { iot: new IoTClient(clientConfig), dynamo: new DynamoDBClient(clientConfig) };
    closers.push(async () => {
      clients.iot.destroy();
      clients.dynamo.destroy();
    });
    await ensureTables(clients.dynamo, LOCAL_TABLES);

    // The deployed handler module, configured through the deployed environment variable names.
    // The behaviour settings a user may set for the deployed function apply locally too.
    const passed = Object.fromEntries(
      TUNABLE_VARIABLES.flatMap((name) => (process.env[name] ? [[name, process.env[name] as string]] : [])),
    );
    // The handler paces IoT calls by the quotas the emulator enforces (same factor); when it enforces
    // none, the pace is far above anything local mode reaches, as on an account with raised quotas.
    const enforced = resolveQuotas(options.quotas);
    const emulatedFactor = enforced.enabled ? enforced.factor : UNENFORCED_QUOTA_FACTOR;
    const emulated = { JITR_IOT_QUOTAS: JSON.stringify({ factor: emulatedFactor }) };
    const concurrency = options.concurrency ?? DEFAULT_PROVISION_CONCURRENCY;
    const environment = {
      ...localHandlerEnvironment(region, accountId, LOCAL_TABLES),
      ...emulated,
      JITR_PROVISION_CONCURRENCY: String(concurrency),
      ...passed,
    };
    const config = readProvisioningConfig(environment);
    const logger = new Logger({ serviceName: config.serviceName, logLevel: options.logLevel ?? "ERROR" });
    const metricSettings = { namespace: config.metricsNamespace, serviceName: config.serviceName };
    const metrics = options.emitMetrics
      ? new Metrics({ ...metricSettings, logger })
      : new LocalMetrics(metricSettings);
    const handler = makeProvisionHandler(buildProvisioning(config, clients, { logger, metrics }));
    const functionTimeoutMs = options.functionTimeoutMs ?? functionTimeoutFromEnvironment();
    const rulePath = createRulePath({
      handler,
      // The queue outlives the process when the stack keeps its data (as SQS keeps a crashed poller's messages).
      ...(options.inMemory ? {} : { journalFile: join(dataDir, RULE_PATH_JOURNAL) }),
      concurrency,
      region,
      accountId,
      ...(functionTimeoutMs === undefined ? {} : { functionTimeoutMs }),
      // As an alarm on the dead-letter queue would: the event is kept in memory only, so say so.
      onDeadLetter: (message) =>
        logger.error(DEAD_LETTER_LOG_MESSAGE, {
          messageId: message.messageId,
          topic: message.topic,
          receiveCount: message.receiveCount,
          certificateId: certificateIdOfBody(message.body),
        }),
    });
    closers.push(() => rulePath.close());

    // Jobs: the deployed worker module behind an in-process queue, over the local table and bucket.
    const adminDeps = buildAdminDeps(readAdminConfig(environment), clients);
    const jobs = startLocalJobs({
      endpoint: aws.url,
      region,
      accountId,
      dynamo: clients.dynamo,
      table: LOCAL_TABLES.jobs ?? "jitr-local-jobs",
      bucket: LOCAL_JOB_BUCKET,
      admin: adminDeps,
      logError: (message, details) => logger.error(message, details),
    });
    closers.push(() => jobs.close());

    // The deployed admin routes, behind a bearer token instead of IAM.
    const adminServer = await startAdminServer({
      host,
      port: options.adminPort ?? LOCAL_PORTS.admin,
      token: admin.token,
      deps: { ...adminDeps, jobs: jobs.deps },
      logError: (message, details) => logger.error(message, details),
    });
    closers.push(() => adminServer.close());

    const gateway = await startDeviceGateway({
      host,
      port: options.mqttPort ?? LOCAL_PORTS.mqtt,
      registry: aws.iot,
      region,
      accountId,
      serverCertificatePem: tls.certificatePem,
      serverKeyPem: tls.keyPem,
      onRegistered: (topic, event) => rulePath.enqueue(topic, event),
      ...(options.onConnectionEvent ? { onConnectionEvent: options.onConnectionEvent } : {}),
    });
    closers.push(() => gateway.close());

    const endpoints: LocalEndpoints = {
      awsEndpoint: aws.url,
      adminApi: adminServer.url,
      adminTokenFile: admin.file,
      mqttHost: host,
      mqttPort: gateway.port,
      gatewayCaFile: join(dataDir, GATEWAY_FILES.ca),
      region,
      accountId,
    };
    await writeLocalEndpoints(dataDir, endpoints);
    await jobs.resume();
    return {
      endpoints,
      aws,
      gateway,
      rulePath,
      jobs,
      tables: LOCAL_TABLES,
      clients,
      adminToken: admin.token,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The certificate id an event names, for a log line (undefined when the body is not such an event). */
function certificateIdOfBody(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { certificateId?: unknown }).certificateId;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}
