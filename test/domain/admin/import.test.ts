/** Bulk import over in-memory stores: both modes, the formats, updates, races and progress. */
import { describe, expect, it } from "vitest";
import { ImportLimitError } from "../../../domain/admin/import.ts";
import { Admin } from "../../../domain/admin/index.ts";
import { TransientError, ValidationError } from "../../../domain/errors.ts";
import type { AllowlistRecord } from "../../../domain/types.ts";
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
    expect(report).toMatchObject({ accepted: 2, created: 0, updated: 1, replaced: 1, unchanged: 1 });
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
        outcome: "replaced",
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

  it("counts a line written when a retried write fails its condition against its own first attempt", async () => {
    // Prepare: each write lands, then its answer is lost (a transient error), so the write is retried
    const world = makeAdminWorld({ records: [pinned("l-2")] });
    const admin = new Admin(world.deps);
    const store = world.allowlist;
    const create = store.create.bind(store);
    const update = store.update.bind(store);
    const lost = new Set<string>();
    store.create = async (record) => {
      const written = await create(record);
      if (written && !lost.has(record.deviceId)) {
        lost.add(record.deviceId);
        throw new TransientError("socket hang up");
      }
      return written;
    };
    store.update = async (record, expectedVersion) => {
      const written = await update(record, expectedVersion);
      if (written && !lost.has(record.deviceId)) {
        lost.add(record.deviceId);
        throw new TransientError("socket hang up");
      }
      return written;
    };

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      jsonLines({ deviceId: "l-1" }, { deviceId: "l-2", status: "blocked" }),
    );

    // Assess: both lines written once, reported written, one ledger entry each
    expect(lost).toEqual(new Set(["l-1", "l-2"]));
    expect(report).toMatchObject({ accepted: 2, created: 1, rejectedCount: 0 });
    expect(report.rejected).toEqual([]);
    expect(store.records.get("l-1")).toMatchObject({ version: 1, updatedBy: ACTOR });
    expect(store.records.get("l-2")).toMatchObject({ status: "blocked", updatedBy: ACTOR });
    expect(world.ledger.changes("l-1")).toHaveLength(1);
    expect(world.ledger.changes("l-2")).toHaveLength(1);
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

/** A provisioned record with every pin set, as a factory's first import and a provisioning leave it. */
const pinned = (deviceId: string): AllowlistRecord => ({
  deviceId,
  status: "allowed",
  profile: "outdoor",
  caCertificateId: "c".repeat(64),
  certificateFingerprint: "d".repeat(64),
  notBefore: "2026-01-01T00:00:00.000Z",
  notAfter: "2036-01-01T00:00:00.000Z",
  lot: "lot-7",
  rotation: "replace",
  attributes: { site: "north", SerialNumber: "SN-old" },
  certificateId: "f".repeat(64),
  thingName: deviceId,
  provisionedAt: "2026-02-01T00:00:00.000Z",
  version: 3,
});

describe("import over existing records", () => {
  it("merges a bulk-provisioning line: every pin and field it does not name kept, its attribute keys winning", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [pinned("m-1")] });
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      linesOf('{"ThingName":"m-1","SerialNumber":"SN-new","Model":"x2"}'),
    );

    // Assess
    expect(report).toMatchObject({ accepted: 1, merged: 1, replaced: 0, updated: 1, dryRun: false });
    expect(report.records).toEqual([
      {
        line: 1,
        deviceId: "m-1",
        outcome: "merged",
        changes: [
          { field: "attributes.SerialNumber", before: "SN-old", after: "SN-new" },
          { field: "attributes.Model", after: "x2" },
        ],
      },
    ]);
    const { attributes, version, updatedBy, updatedAt, ...rest } = world.allowlist.records.get("m-1") ?? {};
    const { attributes: _, version: before, ...kept } = pinned("m-1");
    expect(rest).toEqual(kept);
    expect(attributes).toEqual({ site: "north", SerialNumber: "SN-new", Model: "x2" });
    expect([version, updatedBy]).toEqual([before + 1, ACTOR]);
    expect(world.ledger.changes("m-1")).toEqual([
      expect.objectContaining({ action: "import-update", outcome: "merged", version: 4 }),
    ]);
  });

  it("replaces with a native line, so restoring an export is exact (pins the line leaves out are gone)", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [pinned("n-1")] });
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      jsonLines({ deviceId: "n-1", status: "allowed", attributes: { site: "south" } }),
    );

    // Assess
    expect(report).toMatchObject({ accepted: 1, replaced: 1, merged: 0 });
    expect(report.records).toEqual([
      {
        line: 1,
        deviceId: "n-1",
        outcome: "replaced",
        changes: [
          { field: "profile", before: "outdoor" },
          { field: "attributes.site", before: "north", after: "south" },
          { field: "attributes.SerialNumber", before: "SN-old" },
          { field: "caCertificateId", before: "c".repeat(64) },
          { field: "certificateFingerprint", before: "d".repeat(64) },
          { field: "notBefore", before: "2026-01-01T00:00:00.000Z" },
          { field: "notAfter", before: "2036-01-01T00:00:00.000Z" },
          { field: "lot", before: "lot-7" },
          { field: "rotation", before: "replace" },
        ],
      },
    ]);
    const stored = world.allowlist.records.get("n-1");
    expect(stored).toMatchObject({
      attributes: { site: "south" },
      certificateId: "f".repeat(64),
      version: 4,
    });
    for (const pin of ["caCertificateId", "certificateFingerprint", "lot", "notAfter", "profile"] as const)
      expect(stored?.[pin], pin).toBeUndefined();
  });

  it("leaves a record unchanged when a bulk line repeats what it holds", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [pinned("u-1")] });
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(ACTOR, linesOf('{"ThingName":"u-1","site":"north"}'));

    // Assess
    expect(report).toMatchObject({ accepted: 1, unchanged: 1, updated: 0 });
    expect(report.records).toEqual([{ line: 1, deviceId: "u-1", outcome: "unchanged" }]);
    expect(world.allowlist.records.get("u-1")?.version).toBe(3);
    expect(world.ledger.entries).toEqual([]);
  });

  it("merges only into the version it read: a record changed meanwhile is reported, not overwritten", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [pinned("v-1")] });
    const admin = new Admin(world.deps);
    world.allowlist.beforeNextWrite(() => {
      const current = world.allowlist.records.get("v-1");
      if (current) world.allowlist.records.set("v-1", { ...current, status: "blocked", version: 4 });
    });

    // Act
    const report = await admin.allowlist.import(ACTOR, linesOf('{"ThingName":"v-1","Model":"x3"}'));

    // Assess
    expect(report).toMatchObject({ accepted: 0, merged: 0, rejectedCount: 1 });
    expect(report.rejected).toEqual([
      { line: 1, reason: "device v-1 was changed by someone else meanwhile; import it again" },
    ]);
    expect(world.allowlist.records.get("v-1")).toMatchObject({ status: "blocked", version: 4 });
    expect(world.allowlist.records.get("v-1")?.attributes).not.toHaveProperty("Model");
  });

  it("rejects a bulk line whose merged attributes no longer fit, leaving the record as it was", async () => {
    // Prepare: the record holds 50 attributes, the most a record may
    const full = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`a${i}`, "v"]));
    const world = makeAdminWorld({ records: [{ ...pinned("f-1"), attributes: full }] });
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(ACTOR, linesOf('{"ThingName":"f-1","extra":"v"}'));

    // Assess
    expect(report.rejected).toEqual([
      {
        line: 1,
        reason: expect.stringMatching(/^merged into the existing record: attributes: .*at most 50/),
      },
    ]);
    expect(world.allowlist.records.get("f-1")?.version).toBe(3);
  });

  it("all-or-nothing refuses a bulk line whose merge is invalid before writing any line", async () => {
    // Prepare
    const full = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`a${i}`, "v"]));
    const world = makeAdminWorld({ records: [{ ...pinned("f-2"), attributes: full }] });
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      linesOf('{"deviceId":"new-1"}', '{"ThingName":"f-2","extra":"v"}'),
      { mode: "all-or-nothing" },
    );

    // Assess
    expect(report).toMatchObject({ accepted: 0, rejected: [{ line: 2 }] });
    expect([...world.allowlist.records.keys()]).toEqual(["f-2"]);
    expect(world.ledger.entries).toEqual([]);
  });

  it("dry run: says what each line would do to each record, and writes nothing", async () => {
    // Prepare
    const world = makeAdminWorld({ records: [pinned("d-merge"), pinned("d-replace"), pinned("d-same")] });
    const admin = new Admin(world.deps);
    const before = structuredClone([...world.allowlist.records.values()]);

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      linesOf(
        '{"deviceId":"d-new"}',
        '{"ThingName":"d-merge","Model":"x"}',
        '{"deviceId":"d-replace","status":"allowed"}',
        '{"ThingName":"d-same","site":"north"}',
      ),
      { dryRun: true },
    );

    // Assess
    expect(report).toMatchObject({
      dryRun: true,
      accepted: 4,
      created: 1,
      merged: 1,
      replaced: 1,
      unchanged: 1,
    });
    expect(report.records).toEqual([
      { line: 1, deviceId: "d-new", outcome: "created" },
      {
        line: 2,
        deviceId: "d-merge",
        outcome: "merged",
        changes: [{ field: "attributes.Model", after: "x" }],
      },
      {
        line: 3,
        deviceId: "d-replace",
        outcome: "replaced",
        changes: expect.arrayContaining([
          { field: "attributes", before: { site: "north", SerialNumber: "SN-old" } },
          { field: "lot", before: "lot-7" },
        ]),
      },
      { line: 4, deviceId: "d-same", outcome: "unchanged" },
    ]);
    expect([...world.allowlist.records.values()]).toEqual(before);
    expect(world.ledger.entries).toEqual([]);
  });
});

describe("import that breaks a limit", () => {
  /** Lines, then the line source's error for the line after them (as the HTTP layer raises it). */
  async function* stoppingAfter(...lines: string[]): AsyncGenerator<string> {
    yield* lines;
    throw new ImportLimitError("line", lines.length + 1, `line ${lines.length + 1} is too long`);
  }

  it("best-effort writes the lines before the one that broke it, and says where it stopped", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(
      ACTOR,
      stoppingAfter('{"deviceId":"s-1"}', '{"deviceId":"s-2"}'),
    );

    // Assess
    expect(report).toMatchObject({
      accepted: 2,
      created: 2,
      stopped: { line: 3, limit: "line", reason: "line 3 is too long" },
    });
    expect([...world.allowlist.records.keys()].sort()).toEqual(["s-1", "s-2"]);
  });

  it("all-or-nothing writes nothing", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(ACTOR, stoppingAfter('{"deviceId":"s-1"}'), {
      mode: "all-or-nothing",
    });

    // Assess
    expect(report).toMatchObject({ accepted: 0, stopped: { line: 2, limit: "line" } });
    expect(world.allowlist.records.size + world.ledger.entries.length).toBe(0);
  });

  it("stops a CSV import too, instead of waiting for the rest of the body", async () => {
    // Prepare
    const world = makeAdminWorld();
    const admin = new Admin(world.deps);

    // Act
    const report = await admin.allowlist.import(ACTOR, stoppingAfter("deviceId,status", "c-1,allowed"), {
      format: "csv",
    });

    // Assess
    expect(report).toMatchObject({ accepted: 1, stopped: { line: 3, limit: "line" } });
    expect([...world.allowlist.records.keys()]).toEqual(["c-1"]);
  });
});
