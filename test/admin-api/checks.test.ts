/** Misconfiguration caught when it is saved, through the admin router over dynalite. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ImportReport } from "../../domain/admin/index.ts";
import { countInLot } from "../support/lot-count.ts";
import { startAdminWorlds } from "./support.ts";

let worlds: Awaited<ReturnType<typeof startAdminWorlds>>;
beforeAll(async () => {
  worlds = await startAdminWorlds();
});
afterAll(() => worlds.close());

const CREATE = { "if-none-match": "*" };
const report = (json: unknown) => json as ImportReport;

describe("CSV import accounts for every line", () => {
  it("an unterminated quote rejects its own line; the 8 good lines after it are imported", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    const good = Array.from({ length: 8 }, (_, i) => `after-${i},allowed,fine`);
    const csv = [
      "deviceId,status,note",
      "before,allowed,ok",
      'broken,allowed,"no closing quote',
      ...good,
    ].join("\n");

    // Act
    const imported = await call("POST", "/allowlist/import", {
      body: csv,
      headers: { "content-type": "text/csv" },
    });

    // Assess
    const result = report(imported.json);
    expect(imported.status).toBe(200);
    expect(result).toMatchObject({ accepted: 9, created: 9, rejectedCount: 1 });
    expect(result.rejected).toEqual([{ line: 3, reason: expect.stringContaining("is not closed") }]);
    expect(result.records.map((r) => r.line)).toEqual([2, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(await deps.allowlist.get("after-7")).toMatchObject({ status: "allowed", note: "fine" });
    expect(await deps.allowlist.get("broken")).toBeUndefined();
  });

  it("a record whose quoted field holds line breaks is imported at its first line, with a warning naming the lines it spans", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    const csv = ["deviceId,note", 'multi,"first', 'second"', "single,one"].join("\n");

    // Act
    const imported = await call("POST", "/allowlist/import", {
      body: csv,
      headers: { "content-type": "text/csv" },
    });

    // Assess
    const result = report(imported.json);
    expect(result.records.map((r) => [r.line, r.deviceId])).toEqual([
      [2, "multi"],
      [4, "single"],
    ]);
    expect(result.warnings).toEqual([{ line: 2, message: expect.stringContaining("spans lines 2-3") }]);
    expect(await deps.allowlist.get("multi")).toMatchObject({ note: "first\nsecond" });
  });
});

describe("mapping saves", () => {
  it("a mapping naming a thing group that does not exist: 409 naming the field; saved with force=true and a warning", async () => {
    // Prepare
    const { call } = await worlds.world();
    const body = { policy: { template: "sensor" }, thingGroups: ["no-such-group"] };

    // Act
    const refused = await call("PUT", "/mappings/default", { body, headers: CREATE });
    const read = await call("GET", "/mappings/default");
    const forced = await call("PUT", "/mappings/default?force=true", { body, headers: CREATE });

    // Assess
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({
      error: {
        code: "Conflict",
        details: [{ path: "thingGroups[0]", message: "thing group no-such-group does not exist" }],
      },
    });
    expect(read.status).toBe(404);
    expect(forced.status).toBe(201);
    expect(forced.json).toMatchObject({ warnings: [{ code: "missing-reference", path: "thingGroups[0]" }] });
  });

  it("an inline policy granting iot:* on *: 400 naming it; saved with allowBroadPolicy=true and a warning", async () => {
    // Prepare
    const { call } = await worlds.world();
    const document = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*" }],
    };

    // Act
    const refused = await call("PUT", "/mappings/default", {
      body: { policy: { document } },
      headers: CREATE,
    });
    const allowed = await call("PUT", "/mappings/default?allowBroadPolicy=true", {
      body: { policy: { document } },
      headers: CREATE,
    });
    const badFlag = await call("PUT", "/mappings/default?allowBroadPolicy=yes", {
      body: { policy: { document } },
      headers: { "if-match": '"1"' },
    });

    // Assess
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({
      error: { code: "ValidationError", details: [{ path: "policy.document.Statement[0]" }] },
    });
    expect(allowed.status).toBe(201);
    expect(allowed.json).toMatchObject({ warnings: [{ code: "broad-policy" }] });
    expect(badFlag.status).toBe(400);
  });
});

describe("lot quotas", () => {
  it("refuses maxDevices below the devices provisioned in the lot (409 with both numbers); the lot is unchanged", async () => {
    // Prepare
    const { call, deps } = await worlds.world();
    await call("PUT", "/lots/L1", { body: { maxDevices: 10 }, headers: CREATE });
    await countInLot(deps, "L1", 3);

    // Act
    const refused = await call("PUT", "/lots/L1", {
      body: { maxDevices: 2 },
      headers: { "if-match": '"1"' },
    });
    const atCount = await call("PUT", "/lots/L1", {
      body: { maxDevices: 3 },
      headers: { "if-match": '"1"' },
    });

    // Assess
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({
      error: { code: "Conflict", message: expect.stringMatching(/2 .* 3 /) },
    });
    expect(atCount.status).toBe(200);
    expect(await deps.lots.get("L1")).toMatchObject({ maxDevices: 3, provisionedCount: 3 });
  });
});

describe("allowlist records", () => {
  it("a record naming a lot that does not exist is saved with a lot-not-found warning; none once the lot exists", async () => {
    // Prepare
    const { call } = await worlds.world();

    // Act
    const saved = await call("PUT", "/allowlist/dev-1", {
      body: { status: "allowed", lot: "L9" },
      headers: CREATE,
    });
    await call("PUT", "/lots/L9", { body: { maxDevices: 5 }, headers: CREATE });
    const again = await call("PUT", "/allowlist/dev-1", {
      body: { status: "allowed", lot: "L9", note: "lot made" },
      headers: { "if-match": '"1"' },
    });

    // Assess
    expect(saved.status).toBe(201);
    expect(saved.json).toMatchObject({ lot: "L9", warnings: [{ code: "lot-not-found", path: "lot" }] });
    expect(again.status).toBe(200);
    expect(again.json).not.toHaveProperty("warnings");
  });
});
