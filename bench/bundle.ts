/**
 * The provisioning bundle's size and cold-start cost against a floor: a handler that only loads the two
 * SDK clients it needs (IoT, DynamoDB) and builds them. Both are bundled as serverless.yml has
 * serverless-esbuild do it (ESM, minified, the AWS SDK left to the runtime); each is timed in a fresh Node
 * process from the start of the import to the end of a first invocation that does no I/O (a malformed
 * event for the provisioning handler: configuration, clients and middleware are built, nothing is sent).
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const root = resolve(import.meta.dirname, "..");

export interface BundleFigure {
  name: string;
  bytes: number;
  initMs: number;
}

const FLOOR_SOURCE = `
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
let clients;
export const handler = async () => {
  clients ??= { iot: new IoTClient({ maxAttempts: 1 }), dynamo: new DynamoDBClient({ maxAttempts: 1 }) };
  return { ok: true };
};
`;

const ENVIRONMENT = {
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "bench",
  AWS_SECRET_ACCESS_KEY: "bench",
  JITR_ACCOUNT_ID: "123456789012",
  JITR_ALLOWLIST_TABLE: "a",
  JITR_MAPPINGS_TABLE: "m",
  JITR_LOTS_TABLE: "l",
  JITR_LEDGER_TABLE: "g",
  JITR_IDEMPOTENCY_TABLE: "i",
  POWERTOOLS_METRICS_DISABLED: "true",
  POWERTOOLS_LOG_LEVEL: "SILENT",
};

/** Bundles `entry` as deployed into `outfile`. */
async function bundle(entry: string, outfile: string): Promise<number> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external: ["@aws-sdk/*"],
    mainFields: ["module", "main"],
    banner: {
      js: "import { createRequire as __jitrCreateRequire } from 'node:module'; const require = __jitrCreateRequire(import.meta.url);",
    },
    logLevel: "silent",
  });
  return (await stat(outfile)).size;
}

/** Milliseconds from the import to the end of the first invocation, in a fresh process. */
function coldStart(file: string): number {
  const script = `
const t0 = performance.now();
const { handler } = await import(${JSON.stringify(`file://${file}`)});
await handler({ certificateId: "not an id" }, { getRemainingTimeInMillis: () => 30000, awsRequestId: "bench", functionName: "bench" });
process.stdout.write(String(performance.now() - t0));
`;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, ...ENVIRONMENT },
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`cold start of ${file} failed: ${result.stderr}`);
  return Number(result.stdout.trim().split("\n").pop());
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/** Sizes and median cold starts of the provisioning bundle and the floor, measured in turn. */
export async function measureBundle(options: { runs: number }): Promise<BundleFigure[]> {
  const dir = await mkdtemp(join(tmpdir(), "jitr-bench-bundle-"));
  try {
    // The runtime provides the AWS SDK: resolve it from the project's node_modules.
    await symlink(join(root, "node_modules"), join(dir, "node_modules"), "dir");
    const floorEntry = join(dir, "floor-entry.mjs");
    await writeFile(floorEntry, FLOOR_SOURCE);
    const files = {
      provisioning: join(dir, "provision.mjs"),
      floor: join(dir, "floor.mjs"),
    };
    const sizes = {
      provisioning: await bundle(join(root, "handlers", "provision-entry.ts"), files.provisioning),
      floor: await bundle(floorEntry, files.floor),
    };
    coldStart(files.provisioning); // warm the file cache; no figure kept
    coldStart(files.floor);
    const times = { provisioning: [] as number[], floor: [] as number[] };
    for (let i = 0; i < options.runs; i++) {
      times.provisioning.push(coldStart(files.provisioning));
      times.floor.push(coldStart(files.floor));
    }
    return [
      {
        name: "provisioning (handlers/provision-entry.ts)",
        bytes: sizes.provisioning,
        initMs: median(times.provisioning),
      },
      { name: "floor (IoT + DynamoDB clients only)", bytes: sizes.floor, initMs: median(times.floor) },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
