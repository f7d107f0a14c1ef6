import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CliError } from "./output.ts";

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

/** Credentials for the local AWS endpoint: it checks no signature, but the SDK needs something to sign with. */
export const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

/** The endpoints of a `jitr local` under `dataDir`, or undefined when it has written none. */
export async function readLocalEndpoints(dataDir: string): Promise<LocalEndpoints | undefined> {
  const file = join(dataDir, "endpoints.json");
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(await readFile(file, "utf8")) as LocalEndpoints;
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/** Reads the endpoints of a running `jitr local`, or says how to start one. */
export async function loadLocalEndpoints(dataDir: string): Promise<LocalEndpoints> {
  const endpoints = await readLocalEndpoints(dataDir);
  if (endpoints === undefined) {
    throw new CliError(
      `no ${join(dataDir, "endpoints.json")}: start the local stack with \`jitr local\` (or pass --data DIR / the endpoint flags)`,
    );
  }
  return endpoints;
}
