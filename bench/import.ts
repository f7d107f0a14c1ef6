/**
 * Bulk-import benchmark: streams generated allowlist lines through the local admin server into
 * DynamoDB (dynalite, run in a child process so the figures below are the admin server's own),
 * and prints records per second and the peak RSS and heap, sampled every 50 ms. The baseline, measured in
 * the same run against the same dynalite: raw conditional PutItem calls, 16 at a time, which is the least
 * work an import of one record does.
 *
 *   npx tsx bench/import.ts [lines]        (default 100000; or BENCH_LINES)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "../adapters/dynamo/table.ts";
import { IotRegistryAdapter } from "../adapters/iot.ts";
import { ensureTables } from "../adapters/tables.ts";
import type { ImportReport } from "../domain/admin/index.ts";
import { systemClock } from "../domain/ports.ts";
import { buildStores } from "../handlers/wiring.ts";
import { startAdminServer } from "../local/admin-server.ts";

const lines = Number(process.argv[2] ?? process.env.BENCH_LINES ?? 100_000);
const TOKEN = "bench-token";
const names = {
  allowlist: "allowlist",
  mappings: "mappings",
  lots: "lots",
  ledger: "ledger",
  idempotency: "idempotency",
};

/** Starts dynalite in a child process on a free port; resolves with its endpoint. */
async function startDynaliteProcess(): Promise<{ endpoint: string; child: ChildProcess }> {
  const dynalitePath = createRequire(import.meta.url).resolve("dynalite");
  const script = `const d=require(${JSON.stringify(dynalitePath)})({createTableMs:0});d.listen(0,"127.0.0.1",()=>console.log(d.address().port))`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once("exit", (code) => reject(new Error(`dynalite exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, child };
}

function* generate(count: number): Generator<string> {
  for (let i = 0; i < count; i++) {
    yield `${JSON.stringify({
      deviceId: `bench-${String(i).padStart(7, "0")}`,
      status: i % 50 === 0 ? "blocked" : "allowed",
      profile: i % 3 === 0 ? "gateway" : "sensor",
      lot: `lot-${i % 20}`,
      attributes: { site: `site-${i % 7}`, serial: String(100000 + i) },
    })}\n`;
  }
}

/** Posts the lines as a streamed body; resolves with the status and the report. */
function postImport(url: string, count: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/allowlist/import`,
      {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/x-ndjson" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("error", reject);
    Readable.from(generate(count)).pipe(req);
  });
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

const { endpoint, child } = await startDynaliteProcess();
const dynamo = new DynamoDBClient({
  region: "us-east-1",
  endpoint,
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
  maxAttempts: 3,
});
await ensureTables(dynamo, names);
const doc = createDocumentClient(dynamo);
const server = await startAdminServer({
  port: 0,
  token: TOKEN,
  deps: {
    // The import never calls IoT; a client to nowhere keeps the deps honest.
    iot: new IotRegistryAdapter(new IoTClient({ region: "us-east-1", endpoint: "http://127.0.0.1:9" })),
    ...buildStores(dynamo, names),
    clock: systemClock,
    settings: {
      region: "us-east-1",
      accountId: "123456789012",
      policyPrefix: "jitr-",
      deviceIdStrategy: "cn",
      retry: { attempts: 5, baseDelayMs: 20, maxDelayMs: 500 },
    },
  },
});

/** Raw conditional puts per second, 16 in flight, into a scratch table of the same dynalite. */
async function baselinePutsPerSecond(count: number, offset = 0): Promise<number> {
  const started = performance.now();
  let next = offset;
  count += offset;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < count) {
        const i = next++;
        await doc.send(
          new PutCommand({
            TableName: names.mappings,
            Item: { selector: `baseline-${i}`, version: 1 },
            ConditionExpression: "attribute_not_exists(selector)",
          }),
        );
      }
    }),
  );
  return (count - offset) / ((performance.now() - started) / 1000);
}
await baselinePutsPerSecond(1_000); // warm-up (JIT, connections), not counted
const baselineRate = await baselinePutsPerSecond(5_000, 1_000);

const baseline = process.memoryUsage();
let peakRss = baseline.rss;
let peakHeap = baseline.heapUsed;
const sampler = setInterval(() => {
  const usage = process.memoryUsage();
  peakRss = Math.max(peakRss, usage.rss);
  peakHeap = Math.max(peakHeap, usage.heapUsed);
}, 50);

process.stdout.write(`importing ${lines} lines through ${server.url} into dynalite (${endpoint})...\n`);
const started = performance.now();
const { status, body } = await postImport(server.url, lines);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);

const report = JSON.parse(body) as ImportReport;
process.stdout.write(
  [
    `status ${status}: accepted ${report.accepted}, created ${report.created}, rejected ${report.rejectedCount}`,
    `time ${seconds.toFixed(1)} s, ${Math.round(report.accepted / seconds)} records/s = ${(report.accepted / seconds / baselineRate).toFixed(2)} x the baseline of ${Math.round(baselineRate)} raw conditional puts/s`,
    `peak RSS ${mib(peakRss)} (start ${mib(baseline.rss)}), peak heap ${mib(peakHeap)} (start ${mib(baseline.heapUsed)})`,
    "",
  ].join("\n"),
);

await server.close();
dynamo.destroy();
child.kill();
process.exit(status === 200 && report.accepted === lines ? 0 : 1);
