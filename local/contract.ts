/**
 * What `jitr local` promises the programs that talk to it: the `endpoints.json` it writes into its data
 * directory, the credentials its AWS endpoint accepts, its table names and default ports. The CLI reads
 * this module without loading the local stack, so it imports nothing but Node built-ins (and types).
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TableNames } from "../adapters/tables.ts";

/** The fields of `<data>/endpoints.json` written by `jitr local` (DESIGN section 5). */
export interface LocalEndpoints {
  awsEndpoint: string;
  adminApi: string;
  adminTokenFile: string;
  mqttHost: string;
  mqttPort: number;
  gatewayCaFile: string;
  region: string;
  accountId: string;
}

/** The name of the endpoints file inside the data directory. */
export const ENDPOINTS_FILE = "endpoints.json";

/** The state directory when none is named: `JITR_DATA`, else `.jitr`. */
export const defaultDataDir = (env: NodeJS.ProcessEnv = process.env): string => env.JITR_DATA ?? ".jitr";

/** Credentials for the local AWS endpoint: it checks no signature, but the SDK needs something to sign with. */
export const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

/** The table names of `jitr local`. */
export const LOCAL_TABLES: TableNames = {
  allowlist: "jitr-local-allowlist",
  mappings: "jitr-local-mappings",
  lots: "jitr-local-lots",
  ledger: "jitr-local-ledger",
  idempotency: "jitr-local-idempotency",
  jobs: "jitr-local-jobs",
};

/** The bucket job files travel through in `jitr local`. */
export const LOCAL_JOB_BUCKET = "jitr-local-jobs";

/** The provisioning log's message for an event the local rule path dead-lettered (its queue keeps them in memory). */
export const DEAD_LETTER_LOG_MESSAGE = "event dead-lettered";

/** The ports `jitr local` listens on unless told otherwise. */
export const LOCAL_PORTS = { aws: 4580, admin: 4581, mqtt: 8883 } as const;

/** Writes `<data>/endpoints.json`. */
export async function writeLocalEndpoints(dataDir: string, endpoints: LocalEndpoints): Promise<void> {
  await writeFile(join(dataDir, ENDPOINTS_FILE), `${JSON.stringify(endpoints, null, 2)}\n`);
}

/** The endpoints of a `jitr local` under `dataDir`, or undefined when it has written none. */
export async function readLocalEndpoints(dataDir: string): Promise<LocalEndpoints | undefined> {
  const file = join(dataDir, ENDPOINTS_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(await readFile(file, "utf8")) as LocalEndpoints;
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/** Reads the endpoints of a running `jitr local`, or says how to start one. */
export async function loadLocalEndpoints(dataDir: string): Promise<LocalEndpoints> {
  const endpoints = await readLocalEndpoints(dataDir);
  if (endpoints === undefined) {
    throw new Error(
      `no ${join(dataDir, ENDPOINTS_FILE)}: start the local stack with \`jitr local\` (or pass --data DIR / the endpoint flags)`,
    );
  }
  return endpoints;
}
