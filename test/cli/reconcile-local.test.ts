/** `jitr reconcile` against jitr local: a dry run, a refusal without --yes off a terminal, then the change. */
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWithRetry } from "../../cli/device-client.ts";
import { main } from "../../cli/main.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const output = captureOutput();

let t: Awaited<ReturnType<typeof startTestStack>>;
beforeAll(async () => {
  t = await startTestStack();
});
afterAll(async () => t.close());

const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);
const json = <T>(): T => JSON.parse(output.stdout()) as T;

interface Run {
  dryRun: boolean;
  examined: number;
  devices: { deviceId: string; outcome: string; actions: string[] }[];
}

describe("jitr reconcile against jitr local", () => {
  it("lists the changes in a dry run, refuses to apply without --yes off a terminal, and applies with it", async () => {
    // Prepare: a device provisioned under sensor, then the mapping changed to command-only
    expect(await jitr("mappings", "put", "default", "--template", "sensor")).toBe(0);
    await t.allow("cli-rc-1");
    const device = await t.device("cli-rc-1");
    const connected = await connectWithRetry(device, t.endpoint, { deadlineMs: 15_000, baseDelayMs: 50 });
    connected.client?.end(true);
    expect(t.status(device.certificateId)).toBe("ACTIVE");
    expect(await jitr("mappings", "put", "default", "--template", "command-only")).toBe(0);

    // Act
    output.reset();
    const dryRun = await jitr("reconcile", "--dry-run", "--json");
    const preview = json<Run>();
    output.reset();
    const refused = await jitr("reconcile");
    const refusal = output.stderr();
    output.reset();
    const applied = await jitr("reconcile", "--yes", "--limit", "1", "--json");
    const run = json<Run>();

    // Assess
    expect(dryRun).toBe(0);
    expect(preview).toMatchObject({
      dryRun: true,
      devices: [{ deviceId: "cli-rc-1", outcome: "would-change" }],
    });
    expect(refused).not.toBe(0);
    expect(refusal).toMatch(/--yes/);
    expect(applied).toBe(0);
    expect(run).toMatchObject({
      dryRun: false,
      changed: 1,
      devices: [{ deviceId: "cli-rc-1", outcome: "changed" }],
    });
    expect(run.devices[0]?.actions).toContain("detach policy jitr-sensor");
    // Both ran as reconcile jobs, shown by `jitr jobs`.
    const jobIds = [(preview as Run & { job?: string }).job, (run as Run & { job?: string }).job];
    expect(jobIds).toEqual([expect.any(String), expect.any(String)]);
    output.reset();
    expect(await jitr("jobs", "get", String(jobIds[1]), "--json")).toBe(0);
    expect(json()).toMatchObject({ kind: "reconcile", state: "succeeded", params: { dryRun: false } });
    output.reset();
    expect(await jitr("allowlist", "get", "cli-rc-1", "--json")).toBe(0);
    expect(json()).toMatchObject({ policyName: "jitr-command-only" });
  });

  it("prints a table of the changes for people", async () => {
    // Prepare
    expect(await jitr("mappings", "put", "default", "--template", "sensor")).toBe(0);

    // Act
    output.reset();
    const code = await jitr("reconcile", "--dry-run");

    // Assess
    expect(code).toBe(0);
    expect(output.stdout()).toMatch(/wouldChange\s*│\s*1/);
    expect(output.stdout()).toMatch(/cli-rc-1.*would-change/);
  });

  it("recounts a lot whose count drifted from its records' marks, and prints it", async () => {
    // Prepare: a device of lot rc-lot provisioned (counted once), then the count set wrong by hand
    expect(await jitr("lots", "put", "rc-lot", "--max-devices", "10")).toBe(0);
    await t.allow("cli-rc-lot", { lot: "rc-lot" });
    const device = await t.device("cli-rc-lot");
    (await connectWithRetry(device, t.endpoint, { deadlineMs: 15_000, baseDelayMs: 50 })).client?.end(true);
    await t.stack.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: t.stack.tables.lots,
        Key: { lot: { S: "rc-lot" } },
        UpdateExpression: "SET provisionedCount = :n",
        ExpressionAttributeValues: { ":n": { N: "4" } },
      }),
    );

    // Act
    output.reset();
    const code = await jitr("reconcile", "--yes", "--json");
    const run = json<{ lots?: { lot: string; before: number; after: number; outcome: string }[] }>();
    output.reset();
    await jitr("lots", "get", "rc-lot", "--json");
    const lot = json<{ provisionedCount: number }>();

    // Assess
    expect(code).toBe(0);
    expect(run.lots).toContainEqual({ lot: "rc-lot", before: 4, after: 1, outcome: "recounted" });
    expect(lot.provisionedCount).toBe(1);
  });
});
