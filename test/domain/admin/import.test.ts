/** Bulk import over in-memory stores: both modes, the formats, updates, races and progress. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import { ValidationError } from "../../../domain/errors.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";

const ACTOR = "importer";

async function* linesOf(...lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

const jsonLines = (...records: Record<string, unknown>[]) =>
  linesOf(...records.map((r) => JSON.stringify(r)));

describe("import", () => {
  it("best-effort writes the good lines and reports each bad one with its line and reason", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      linesOf(
        '{"deviceId":"ok-1"}',
        "not json",
        '{"deviceId":"ok-2","status":"nope"}',
        "",
        '{"deviceId":"ok-1"}',
      ),
    );

    // Assess
    expect(report).toMatchObject({
      mode: "best-effort",
      format: "jsonl",
      accepted: 1,
      created: 1,
      rejectedCount: 3,
    });
    expect(report.rejected).toEqual([
      { line: 2, reason: "not valid JSON" },
      { line: 3, reason: "status: must be one of allowed, blocked" },
      { line: 5, reason: "deviceId ok-1 appears on line 1 already" },
    ]);
    expect([...world.allowlist.records.keys()]).toEqual(["ok-1"]);
    expect(world.ledger.changes("ok-1")).toEqual([
      { action: "import-create", after: { deviceId: "ok-1", status: "allowed" }, version: 1 },
    ]);
  });

  it("all-or-nothing writes nothing when a line is bad, and everything when all are good", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    const good = Array.from({ length: 250 }, (_, i) => ({ deviceId: `d-${i}` }));

    // Act
    const refused = await admin.allowlist.import(
      ACTOR,
      jsonLines({ deviceId: "a-1" }, { deviceId: "bad id" }),
      {
        mode: "all-or-nothing",
      },
    );
    const refusedWrites = world.allowlist.records.size + world.ledger.entries.length;
    const accepted = await admin.allowlist.import(ACTOR, jsonLines(...good), { mode: "all-or-nothing" });

    // Assess
    expect(refused).toMatchObject({ accepted: 0, rejectedCount: 1, rejected: [{ line: 2 }] });
    expect(refusedWrites).toBe(0);
    expect(accepted).toMatchObject({ accepted: 250, created: 250, rejectedCount: 0 });
    expect(world.allowlist.records.size).toBe(250);
    expect(world.ledger.entries).toHaveLength(250);
  });

  it("updates changed records keeping the binding and a blocked status, and leaves identical ones unchanged", async () => {
    // Prepare
    const world = makeAdminWorld({
      records: [
        { deviceId: "u-1", status: "allowed", version: 1 },
        {
          deviceId: "u-2",
          status: "blocked",
          version: 4,
          certificateId: "f".repeat(64),
          createdAt: "2026-01-01",
        },
      ],
    });
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      jsonLines({ deviceId: "u-1" }, { deviceId: "u-2", profile: "new" }),
    );

    // Assess
    expect(report).toMatchObject({ accepted: 2, created: 0, updated: 1, unchanged: 1 });
    expect(world.allowlist.records.get("u-1")?.version).toBe(1);
    expect(world.allowlist.records.get("u-2")).toMatchObject({
      status: "blocked",
      profile: "new",
      version: 5,
      createdAt: "2026-01-01",
      certificateId: "f".repeat(64),
      updatedBy: ACTOR,
    });
    expect(world.ledger.changes("u-2")).toEqual([
      {
        action: "import-update",
        before: { deviceId: "u-2", status: "blocked" },
        after: { deviceId: "u-2", status: "blocked", profile: "new" },
        version: 5,
      },
    ]);
  });

  it("reads CSV with attributes.<name> and thingGroups columns, and bulk-provisioning parameter lines", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const csv = await admin.allowlist.import(
      ACTOR,
      linesOf("deviceId,thingGroups,attributes.site", "c-1,a;b,north", "c-2"),
      { format: "csv" },
    );
    const bulk = await admin.allowlist.import(
      ACTOR,
      linesOf('{"ThingName":"b-1","SerialNumber":123,"CSR":"x"}'),
    );

    // Assess
    expect(csv).toMatchObject({
      format: "csv",
      accepted: 1,
      rejected: [{ line: 3, reason: "has 1 fields; the header has 3" }],
    });
    expect(world.allowlist.records.get("c-1")).toMatchObject({
      thingGroups: ["a", "b"],
      attributes: { site: "north" },
    });
    expect(bulk).toMatchObject({
      format: "jsonl",
      accepted: 1,
      warnings: [{ line: 1, message: expect.stringContaining("CSR ignored") }],
    });
    expect(world.allowlist.records.get("b-1")).toMatchObject({ attributes: { SerialNumber: "123" } });
  });

  it("refuses a CSV header with an unknown column before writing anything", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const refused = admin.allowlist.import(ACTOR, linesOf("deviceId,colour", "dev-1,red"));

    // Assess
    await expect(refused).rejects.toBeInstanceOf(ValidationError);
    await expect(refused).rejects.toMatchObject({ issues: [{ path: "column colour" }] });
    expect(world.allowlist.records.size).toBe(0);
  });

  it("reports a line whose create loses a race, and imports the rest", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);
    world.allowlist.beforeNextWrite(() => {
      world.allowlist.records.set("r-1", { deviceId: "r-1", status: "blocked", version: 1 });
    });

    // Act
    const report = await admin.allowlist.import(ACTOR, jsonLines({ deviceId: "r-1" }, { deviceId: "r-2" }));

    // Assess
    expect(report).toMatchObject({ accepted: 1, created: 1 });
    expect(report.rejected).toEqual([
      { line: 1, reason: "device r-1 was created by someone else meanwhile; import it again" },
    ]);
    expect(world.allowlist.records.get("r-1")?.status).toBe("blocked");
  });

  it("reports progress after each batch, never going back", async () => {
    // Prepare
    const admin = new Admin(makeAdminWorld().deps);
    const progress: number[] = [];

    // Act
    await admin.allowlist.import(
      ACTOR,
      jsonLines(...Array.from({ length: 230 }, (_, i) => ({ deviceId: `p-${i}` }))),
      {
        onProgress: (n) => progress.push(n),
      },
    );

    // Assess
    expect(progress).toHaveLength(3);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(progress.at(-1)).toBe(230);
  });
});
