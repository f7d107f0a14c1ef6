/**
 * A local AWS endpoint on one HTTP port: an AWS IoT control-plane emulator (restJson1),
 * DynamoDB (dynalite, in process) and S3 (s3rver, in process, for job files). Requests are routed by
 * the service name in the SigV4 credential scope of the `Authorization` header (or, for a presigned
 * URL, of its `X-Amz-Credential` query parameter), so `AWS_ENDPOINT_URL=http://127.0.0.1:<port>`
 * serves the real AWS SDK clients and the AWS CLI unchanged. Signatures are not verified.
 * DynamoDB's TransactWriteItems, which dynalite lacks, is served on top of it (dynamo-transactions.ts).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dynalite from "dynalite";
import S3rver from "s3rver";
import { DUMMY_ACCOUNT } from "s3rver/lib/models/account.js";
import type { IndexRepair } from "./dynamo-index-repair.ts";
import { createDynamoRouter } from "./dynamo-transactions.ts";
import { createIotHandler } from "./iot/http.ts";
import {
  type FaultOptions,
  type QuotaOptions,
  RateLimiter,
  resolveFaults,
  resolveQuotas,
} from "./iot/limits.ts";
import { IotRegistry } from "./iot/registry.ts";

export { IotError, type IotErrorCode } from "./iot/errors.ts";
export {
  DEFAULT_IOT_API_QUOTA,
  type FaultOptions,
  IOT_API_QUOTAS,
  type QuotaOptions,
  RateLimiter,
} from "./iot/limits.ts";
export type {
  AutoRegistrationStatus,
  CaCertificateRecord,
  CaCertificateStatus,
  CaMatch,
  CertificateMode,
  CertificateRecord,
  CertificateStatus,
  CertificateVariables,
  Connection,
  IotRegistryEvents,
  IotRegistryOptions,
  PolicyRecord,
  ThingGroupRecord,
  ThingRecord,
  ThingTypeRecord,
} from "./iot/registry.ts";
export { IotRegistry } from "./iot/registry.ts";

export interface AwsEndpointOptions {
  /** Interface to listen on; default 127.0.0.1. */
  host?: string;
  /** 0 (the default) lets the OS pick a free port. */
  port?: number;
  /** Persist state under this directory (`iot.json`, `dynamodb/`); in memory when absent. */
  dataDir?: string;
  /** Default us-east-1. */
  region?: string;
  /** Default 123456789012. */
  accountId?: string;
  /** IoT API quotas; from JITR_LOCAL_QUOTAS / JITR_LOCAL_QUOTA_FACTOR when absent. */
  quotas?: QuotaOptions;
  /** IoT fault injection; each field falls back to its JITR_LOCAL_FAULT_* variable. */
  faults?: FaultOptions;
  /** Host name DescribeEndpoint answers with for every endpoint type; default "localhost". */
  iotEndpointAddress?: string;
  /** S3 buckets to create at start (job files); persisted under `dataDir/s3` when a data directory is given. */
  buckets?: string[];
  /** The access key S3 accepts (signatures are not verified); default `local`. */
  accessKeyId?: string;
}

/** How long the endpoint keeps an idle keep-alive socket open (longer than any client's idle time here). */
export const LOCAL_KEEP_ALIVE_MS = 300_000;

export interface AwsEndpoint {
  /** e.g. http://127.0.0.1:4566 — use as AWS_ENDPOINT_URL or a client's `endpoint`. */
  url: string;
  port: number;
  iot: IotRegistry;
  /** The quota buckets; a benchmark sets up its fleet with `enabled` off, as if registered earlier. */
  quotas: RateLimiter;
  /** Set when the last process on the data directory was killed: what the index check at start found. */
  indexRepair: IndexRepair | undefined;
  close(): Promise<void>;
}

/** The service name of a SigV4 `Authorization` header's credential scope (`.../<region>/<service>/aws4_request`). */
export function serviceFromAuthorization(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const match = /Credential=[^/,\s]+\/\d{8}\/[^/,\s]+\/([^/,\s]+)\/aws4_request/.exec(authorization);
  return match?.[1];
}

/** The service name of a presigned URL's `X-Amz-Credential` (`<key>/<date>/<region>/<service>/aws4_request`). */
export function serviceFromPresignedUrl(url: string | undefined): string | undefined {
  const credential = new URL(url ?? "/", "http://localhost").searchParams.get("X-Amz-Credential");
  return credential?.split("/")[3];
}

function serviceOf(req: IncomingMessage): string | undefined {
  const fromAuth = serviceFromAuthorization(req.headers.authorization) ?? serviceFromPresignedUrl(req.url);
  if (fromAuth) return fromAuth;
  // Unsigned DynamoDB JSON requests still name their API in X-Amz-Target.
  const target = req.headers["x-amz-target"];
  if (typeof target === "string" && target.startsWith("DynamoDB_")) return "dynamodb";
  return undefined;
}

function sendJsonError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ message });
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "x-amzn-errortype": code,
  });
  res.end(body);
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

/**
 * Written in the data directory while the DynamoDB store is open, removed when it closes: found at start,
 * the last process was killed, and the store's indexes are checked against its tables.
 */
export const DYNAMO_OPEN_MARKER = "dynamodb-open";

export async function startAwsEndpoint(opts: AwsEndpointOptions = {}): Promise<AwsEndpoint> {
  const host = opts.host ?? "127.0.0.1";
  const region = opts.region ?? "us-east-1";
  const accountId = opts.accountId ?? "123456789012";
  const quotas = resolveQuotas(opts.quotas);
  const faults = resolveFaults(opts.faults);
  const limiter = new RateLimiter(quotas.enabled, quotas.factor);

  if (opts.dataDir) mkdirSync(join(opts.dataDir, "dynamodb"), { recursive: true });
  const iot = new IotRegistry({
    region,
    accountId,
    limiter,
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    ...(opts.iotEndpointAddress ? { endpointAddress: opts.iotEndpointAddress } : {}),
  });

  const dynamo = dynalite({
    ...(opts.dataDir ? { path: join(opts.dataDir, "dynamodb") } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  // dynalite only closes its LevelDB store through server.close(), which needs a listening
  // server: it listens on an unadvertised loopback port, requests reach it through emit().
  await listen(dynamo, 0, "127.0.0.1");
  // TransactWriteItems, which dynalite lacks, is served on top of it; plain writes pass through a gate.
  // A transaction a killed process left half applied is put back before anything is served, and after an
  // unclean stop (the marker of an open store is still there) the indexes are brought back to their tables.
  const dynamoRouter = createDynamoRouter(
    dynamo,
    opts.dataDir ? { journalPath: join(opts.dataDir, "dynamodb-transaction.json") } : {},
  );
  const openMarker = opts.dataDir ? join(opts.dataDir, DYNAMO_OPEN_MARKER) : undefined;
  let indexRepair: IndexRepair | undefined;
  try {
    indexRepair = await dynamoRouter.recover({ indexes: openMarker !== undefined && existsSync(openMarker) });
    if (openMarker) writeFileSync(openMarker, `${process.pid}\n`);
  } catch (error) {
    dynamoRouter.close();
    await closeServer(dynamo);
    throw error;
  }

  // s3rver keeps objects in a directory: under the data directory, or a temporary one removed at close.
  const s3Directory = opts.dataDir ? join(opts.dataDir, "s3") : mkdtempSync(join(tmpdir(), "jitr-s3-"));
  mkdirSync(s3Directory, { recursive: true });
  DUMMY_ACCOUNT.createKeyPair(opts.accessKeyId ?? "local", opts.accessKeyId ?? "local");
  const s3 = new S3rver({
    directory: s3Directory,
    silent: true,
    allowMismatchedSignatures: true,
    vhostBuckets: false,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name })),
  });
  await s3.configureBuckets();
  const s3Handler = s3.callback();

  const iotHandler = createIotHandler(iot, { limiter, faults });
  const server = createServer((req, res) => {
    const service = serviceOf(req);
    if (service === "iot") {
      void iotHandler(req, res);
    } else if (service === "dynamodb") {
      dynamoRouter.route(req, res);
    } else if (service === "s3") {
      s3Handler(req, res);
    } else if (service === undefined) {
      req.resume();
      sendJsonError(res, 403, "MissingAuthenticationTokenException", "Missing SigV4 Authorization header");
    } else {
      req.resume();
      sendJsonError(
        res,
        404,
        "UnknownServiceException",
        `Service "${service}" is not served by the local AWS endpoint (only iot, dynamodb and s3)`,
      );
    }
  });

  // The SDK's agent keeps idle sockets open without a time limit: a server that closes an idle socket
  // first (Node's default after 5 s) races a request sent on it, which fails as "socket hang up".
  // Idle sockets live long here, and headers may take a little longer still (Node requires that order).
  server.keepAliveTimeout = LOCAL_KEEP_ALIVE_MS;
  server.headersTimeout = LOCAL_KEEP_ALIVE_MS + 1_000;
  let address: AddressInfo;
  try {
    address = await listen(server, opts.port ?? 0, host);
  } catch (error) {
    dynamoRouter.close();
    await closeServer(dynamo);
    if (openMarker) rmSync(openMarker, { force: true });
    throw error;
  }
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    iot,
    quotas: limiter,
    indexRepair,
    close() {
      closing ??= (async () => {
        await closeServer(server);
        dynamoRouter.close();
        await closeServer(dynamo);
        if (openMarker) rmSync(openMarker, { force: true });
        if (!opts.dataDir) rmSync(s3Directory, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
