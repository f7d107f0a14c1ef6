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

/** Reads the endpoints of a running `jitr local`, or says how to start one. */
export async function loadLocalEndpoints(dataDir: string): Promise<LocalEndpoints> {
  const file = join(dataDir, "endpoints.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new CliError(
      `no ${file}: start the local stack with \`jitr local\` (or pass --data DIR / the endpoint flags)`,
    );
  }
  try {
    return JSON.parse(text) as LocalEndpoints;
  } catch {
    throw new CliError(`${file} is not valid JSON`);
  }
}
