/** Allowlist put merges attributes and thing groups; a bulk line's `status` key; against jitr local. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

/** The record as the CLI prints it with --json. */
async function record(deviceId: string): Promise<Record<string, unknown>> {
  output.reset();
  expect(await jitr("allowlist", "get", deviceId, "--json")).toBe(0);
  return JSON.parse(output.stdout()) as Record<string, unknown>;
}

const admin = (path: string, init: RequestInit & { contentType?: string } = {}) =>
  fetch(`${t.stack.endpoints.adminApi}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${t.stack.adminToken}`,
      "content-type": init.contentType ?? "application/json",
    },
  });

describe("allowlist put merges", () => {
  it("merges --attribute key by key and --thing-group into the record, and removes one of each", async () => {
    // Prepare
    expect(await jitr("allowlist", "put", "mrg-1", "--attribute", "site=north", "--thing-group", "g1")).toBe(
      0,
    );

    // Act
    const added = await jitr("allowlist", "put", "mrg-1", "--attribute", "floor=2", "--thing-group", "g2");
    const afterAdd = await record("mrg-1");
    const removed = await jitr(
      "allowlist",
      "put",
      "mrg-1",
      "--remove-attribute",
      "site",
      "--remove-thing-group",
      "g1",
    );
    const afterRemove = await record("mrg-1");

    // Assess
    expect([added, removed]).toEqual([0, 0]);
    expect(afterAdd).toMatchObject({ attributes: { site: "north", floor: "2" }, thingGroups: ["g1", "g2"] });
    expect(afterRemove).toMatchObject({ attributes: { floor: "2" }, thingGroups: ["g2"] });
    expect(afterRemove.attributes).not.toHaveProperty("site");
  });

  it("refuses to remove an attribute or group the record does not have, changing nothing", async () => {
    // Prepare
    expect(await jitr("allowlist", "put", "mrg-2", "--attribute", "site=north")).toBe(0);
    const before = await record("mrg-2");
    output.reset();

    // Act
    const attribute = await jitr("allowlist", "put", "mrg-2", "--remove-attribute", "sight");
    const attributeError = output.stderr();
    const group = await jitr("allowlist", "put", "mrg-2", "--remove-thing-group", "nope");

    // Assess
    expect([attribute, group]).toEqual([1, 1]);
    expect(attributeError).toContain("no attribute sight");
    expect(await record("mrg-2")).toEqual(before);
  });

  it("with --replace, the flags' attributes are the record's attributes", async () => {
    // Prepare
    expect(await jitr("allowlist", "put", "mrg-3", "--attribute", "site=north")).toBe(0);

    // Act
    const status = await jitr("allowlist", "put", "mrg-3", "--replace", "--attribute", "floor=1");

    // Assess
    expect(status).toBe(0);
    expect((await record("mrg-3")).attributes).toEqual({ floor: "1" });
  });
});

describe("a status key in an AWS bulk-provisioning line", () => {
  it("stays a thing attribute with a warning; the record's status is kept (CLI)", async () => {
    // Prepare: a blocked device, and a factory file whose line says status allowed
    expect(await jitr("allowlist", "put", "bulk-st-1", "--status", "blocked")).toBe(0);
    const file = join(t.dataDir, "status.jsonl");
    await writeFile(file, '{"ThingName":"bulk-st-1","status":"allowed","SerialNumber":"9"}\n');
    output.reset();

    // Act
    const status = await jitr("allowlist", "import", file, "--json");
    const report = JSON.parse(output.stdout()) as { warnings: { line: number; message: string }[] };

    // Assess
    expect(status).toBe(0);
    expect(report.warnings).toEqual([
      { line: 1, message: expect.stringContaining("status kept as a thing attribute") },
    ]);
    expect(await record("bulk-st-1")).toMatchObject({
      status: "blocked",
      attributes: { status: "allowed", SerialNumber: "9" },
    });
  });

  it("stays a thing attribute with a warning for a new record too (API)", async () => {
    // Act
    const response = await admin("/allowlist/import", {
      method: "POST",
      body: '{"ThingName":"bulk-st-2","Status":"blocked"}\n',
      contentType: "application/x-ndjson",
    });

    // Assess
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      created: 1,
      warnings: [{ line: 1, message: expect.stringContaining("Status kept as a thing attribute") }],
    });
    expect(await record("bulk-st-2")).toMatchObject({ status: "allowed", attributes: { Status: "blocked" } });
  });
});
