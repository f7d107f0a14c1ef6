import { writeFile } from "node:fs/promises";
import { join } from "node:path";
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

/** Runs `jitr` in-process against the running stack (endpoints.json and the token file under --data). */
const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);
/** The command's JSON output. */
const json = <T>(): T => JSON.parse(output.stdout()) as T;

describe("admin CLI against jitr local", () => {
  it("manages records, explains, approves a quarantined device and shows its history", async () => {
    // Prepare: a mapping and a device that connects before it is allowlisted
    expect(await jitr("mappings", "put", "default", "--template", "sensor")).toBe(0);
    const device = await t.device("cli-late-1");
    const quarantined = await connectWithRetry(device, t.endpoint, {
      deadlineMs: 15_000,
      baseDelayMs: 50,
      shouldStop: async () => (t.status(device.certificateId) === "INACTIVE" ? "INACTIVE" : undefined),
    });
    expect(quarantined.stopReason).toBe("INACTIVE");

    // Act: allowlist it, explain, approve
    expect(
      await jitr("allowlist", "put", "cli-late-1", "--status", "allowed", "--attribute", "site=north"),
    ).toBe(0);
    output.reset();
    expect(await jitr("explain", "cli-late-1", "--json")).toBe(0);
    expect(json()).toMatchObject({ decision: "allow", policy: { policyName: "jitr-sensor" } });
    output.reset();
    expect(await jitr("approve", "cli-late-1", "--json")).toBe(0);

    // Assess
    expect(t.status(device.certificateId)).toBe("ACTIVE");
    output.reset();
    expect(await jitr("history", "cli-late-1", "--json")).toBe(0);
    const history = json<{ items: { kind: string; reason?: string }[] }>();
    expect(history.items.map((e) => e.kind)).toEqual(["provisioned", "admin", "denied"]);
    expect(history.items[2]?.reason).toBe("not-allowlisted");
  });

  it("imports an AWS bulk-provisioning file and exports it back", async () => {
    const file = join(t.dataDir, "bulk.jsonl");
    await writeFile(
      file,
      '{"ThingName":"bulk-a","SerialNumber":"1"}\n{"ThingName":"bulk-b","CSR":"-----BEGIN..."}\n',
    );
    expect(await jitr("allowlist", "import", file, "--json")).toBe(0);
    expect(json()).toMatchObject({ accepted: 2, rejectedCount: 0, warnings: [{ line: 2 }] });
    output.reset();
    expect(await jitr("allowlist", "get", "bulk-a", "--json")).toBe(0);
    expect(json()).toMatchObject({
      deviceId: "bulk-a",
      status: "allowed",
      attributes: { SerialNumber: "1" },
    });
  });

  it("fails with the API's message and status 1 on a bad record", async () => {
    expect(await jitr("allowlist", "put", "bad-1", "--status", "maybe")).toBe(1);
    expect(output.stderr()).toMatch(/status/);
    output.reset();
    expect(await jitr("allowlist", "get", "bad-1")).toBe(1);
    expect(output.stderr()).toMatch(/not found|does not exist|no allowlist record/i);
  });
});
