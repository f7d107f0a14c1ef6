/** The backup and restore job kinds over in-memory stores and bucket: round trip, diffs, refusals. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import { BackupJob } from "../../../domain/jobs/export-job.ts";
import { ImportJob } from "../../../domain/jobs/import-job.ts";
import type { RestoreReport } from "../../../domain/jobs/restore-job.ts";
import { RestoreJob } from "../../../domain/jobs/restore-job.ts";
import { JobRunner } from "../../../domain/jobs/runner.ts";
import type { AllowlistRecord } from "../../../domain/types.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { MemoryJobFiles, MemoryJobQueue, MemoryJobStore } from "../../support/job-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/restorer";
const CERT = "c".repeat(64);

/** A store with jobs; `files` may be shared between two worlds (one bucket, two stacks). */
function jobWorld(files = new MemoryJobFiles(777), seed: Parameters<typeof makeAdminWorld>[0] = {}) {
  const world = makeAdminWorld(seed);
  const store = new MemoryJobStore();
  const admin = new Admin({ ...world.deps, jobs: { jobs: store, files, queue: new MemoryJobQueue() } });
  if (admin.jobs === undefined) throw new Error("jobs not configured");
  const jobs = admin.jobs;
  const context = { deps: world.deps, retried: { ...world.deps } };
  const kinds = [
    new ImportJob({ context, files, clock: world.clock }),
    new BackupJob({ context, files }, 10 * 1024),
    new RestoreJob({ context, files, clock: world.clock }),
  ];
  const run = async (id: string) => {
    await new JobRunner({ store, kinds, clock: world.clock, owner: "worker" }).run(id, 3_600_000);
    const ended = await store.get(id);
    if (ended === undefined) throw new Error(`no job ${id}`);
    return ended;
  };
  /** Backs the store up; answers the file's text. */
  const backup = async () => {
    const job = await jobs.startBackup(ACTOR);
    const ended = await run(job.id);
    expect(ended.state).toBe("succeeded");
    return files.text(`backups/${job.id}.jsonl`) ?? "";
  };
  /** Restores a file's text; answers the ended job. */
  const restore = async (text: string, options: Record<string, unknown> = {}) => {
    const file = `uploads/${crypto.randomUUID()}`;
    files.put(file, text);
    return run((await jobs.startRestore(ACTOR, { file, ...options })).id);
  };
  return { ...world, files, store, admin, jobs, backup, restore };
}

/** Fills a store through the admin use cases: two lots, two mappings, 1,500 records, one of them bound. */
async function filled(w: ReturnType<typeof jobWorld>) {
  await w.admin.lots.put(
    ACTOR,
    "L1",
    { maxDevices: 100, notAfter: "2040-01-01T00:00:00.000Z" },
    { create: true },
  );
  await w.admin.lots.put(ACTOR, "L2", {}, { create: true });
  await w.admin.mappings.put(ACTOR, "default", { policy: { template: "sensor" } }, { create: true });
  await w.admin.mappings.put(
    ACTOR,
    "profile:gw",
    { policy: { template: "gateway" }, attributes: { role: "gw" } },
    { create: true },
  );
  const lines = Array.from({ length: 1_500 }, (_, i) =>
    JSON.stringify({
      deviceId: `d-${i}`,
      ...(i % 3 === 0 ? { lot: "L1" } : {}),
      ...(i % 5 === 0 ? { profile: "gw", attributes: { site: `s${i % 7}` } } : {}),
      ...(i === 7 ? { status: "blocked", note: "lost in transit" } : {}),
    }),
  );
  async function* source() {
    yield* lines;
  }
  await w.admin.allowlist.import(ACTOR, source());
  // The service binds d-1 to its certificate.
  const d1 = w.allowlist.records.get("d-1") as AllowlistRecord;
  w.allowlist.records.set("d-1", {
    ...d1,
    certificateId: CERT,
    thingName: "d-1",
    provisionedAt: "2026-01-01T00:00:00.000Z",
  });
}

const body = (text: string) => text.split("\n").slice(1);

describe("backup", () => {
  it("writes a header, then every lot, mapping and allowlist record with its kind and admin fields only", async () => {
    // Prepare
    const w = jobWorld();
    await filled(w);

    // Act
    const text = await w.backup();

    // Assess
    const lines = text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ kind: "backup", version: 1, createdAt: expect.any(String) });
    expect(lines.slice(1, 5).map((l) => [l.kind, l.record.lot ?? l.record.selector])).toEqual([
      ["lot", "L1"],
      ["lot", "L2"],
      ["mapping", "default"],
      ["mapping", "profile:gw"],
    ]);
    expect(lines.slice(5)).toHaveLength(1_500);
    expect(lines.every((l) => l.kind !== "allowlist" || l.record.version === undefined)).toBe(true);
    expect(lines.find((l) => l.record?.deviceId === "d-1")).toEqual({
      kind: "allowlist",
      record: { deviceId: "d-1", status: "allowed" },
    });
    expect(lines[1].record).toEqual({ lot: "L1", maxDevices: 100, notAfter: "2040-01-01T00:00:00.000Z" });
  });
});

describe("restore", () => {
  it("into an empty store creates every record; a backup of it then holds the same records", async () => {
    // Prepare: one bucket, two stores
    const source = jobWorld();
    await filled(source);
    const text = await source.backup();
    const fresh = jobWorld(source.files);

    // Act
    const restored = await fresh.restore(text);
    const again = await fresh.backup();

    // Assess
    expect(restored).toMatchObject({
      state: "succeeded",
      result: {
        dryRun: false,
        lots: { created: 2 },
        mappings: { created: 2 },
        allowlist: { created: 1_500, rejectedCount: 0 },
        rejectedCount: 0,
      },
    });
    expect(body(again)).toEqual(body(text));
    expect(fresh.allowlist.records.get("d-1")).not.toHaveProperty("certificateId");
    expect(fresh.mappings.mappings.get("default")?.version).toBe(1);
    expect(
      fresh.ledger.entries.filter((e) => e.actor === ACTOR && !e.deviceId.startsWith("#job:")),
    ).toHaveLength(2 + 2 + 1_500);
  });

  it("into a store that differs: a dry run names each field that changes and writes nothing; the restore then updates to the backup", async () => {
    // Prepare: the store moved on since the backup
    const w = jobWorld();
    await filled(w);
    const text = await w.backup();
    await w.admin.lots.put(ACTOR, "L1", { maxDevices: 50 }, { version: 1 });
    const d2 = await w.admin.allowlist.get("d-2");
    await w.admin.allowlist.put(ACTOR, "d-2", { note: "moved", lot: "L2" }, { version: d2.version });
    const before = structuredClone([...w.allowlist.records.values()]);

    // Act
    const dry = await w.restore(text, { dryRun: true });
    const unchangedByDryRun = structuredClone([...w.allowlist.records.values()]);
    const real = await w.restore(text);

    // Assess
    const report = dry.result as RestoreReport;
    expect(dry.state).toBe("succeeded");
    expect(report.lots).toMatchObject({ created: 0, updated: 1, unchanged: 1 });
    expect(report.lots.records.find((r) => r.key === "L1")?.changes).toEqual([
      { field: "maxDevices", before: 50, after: 100 },
      { field: "notAfter", after: "2040-01-01T00:00:00.000Z" },
    ]);
    expect(report.allowlist).toMatchObject({ dryRun: true, replaced: 1, unchanged: 1_499 });
    // Only the records that change are listed (a backup of a large store is mostly unchanged).
    expect(report.allowlist.records.map((r) => r.deviceId)).toEqual(["d-2"]);
    expect(report.allowlist.records.find((r) => r.deviceId === "d-2")?.changes).toEqual([
      { field: "lot", before: "L2" },
      { field: "note", before: "moved" },
    ]);
    expect(unchangedByDryRun).toEqual(before);
    expect(real).toMatchObject({
      state: "succeeded",
      result: { lots: { updated: 1 }, allowlist: { replaced: 1 } },
    });
    expect((real.result as RestoreReport).allowlist.records.map((r) => r.deviceId)).toEqual(["d-2"]);
    expect(w.lots.lots.get("L1")).toMatchObject({ maxDevices: 100, version: 3 });
    expect(w.allowlist.records.get("d-2")).not.toHaveProperty("note");
    expect(w.allowlist.records.get("d-1")).toMatchObject({ certificateId: CERT });
    expect(body(await w.backup())).toEqual(body(text));
  });

  it("refuses a crafted file whole: service fields, a bad header, a repeated key, a lot below its count", async () => {
    // Prepare: the store counts 3 devices in L1; the file would bind d-1 to another certificate
    const w = jobWorld(undefined, { lots: [{ lot: "L1", provisionedCount: 3, version: 1 }] });
    const lines = [
      '{"kind":"backup","version":1}',
      '{"kind":"lot","record":{"lot":"L1","maxDevices":1}}',
      '{"kind":"lot","record":{"lot":"L2","provisionedCount":0}}',
      '{"kind":"mapping","record":{"selector":"default","policy":{"template":"sensor"},"version":9}}',
      `{"kind":"allowlist","record":{"deviceId":"d-1","certificateId":"${CERT}"}}`,
      '{"kind":"allowlist","record":{"deviceId":"d-2","lotCounted":true}}',
      '{"kind":"allowlist","record":{"deviceId":"d-3"}}',
      '{"kind":"allowlist","record":{"deviceId":"d-3"}}',
      '{"kind":"device","record":{}}',
      "not json",
    ];

    // Act
    const ended = await w.restore(`${lines.join("\n")}\n`);
    const badHeader = await w.restore('{"kind":"allowlist","record":{"deviceId":"x"}}\n');
    const newer = await w.restore('{"kind":"backup","version":2}\n');

    // Assess
    const report = ended.result as RestoreReport;
    expect(ended).toMatchObject({ state: "failed", error: "8 line(s) are invalid; nothing was written" });
    expect(report.rejected.map((r) => r.line)).toEqual([2, 3, 4, 9, 10]);
    expect(report.rejected[0]?.reason).toContain("below the 3 devices");
    expect(report.rejected[1]?.reason).toContain("provisionedCount: is written by the service");
    expect(report.allowlist.rejected.map((r) => [r.line, r.reason])).toEqual([
      [5, expect.stringContaining("certificateId: is written by the service")],
      [6, expect.stringContaining("lotCounted: is written by the service")],
      [8, expect.stringContaining("line 7 already")],
    ]);
    expect(badHeader).toMatchObject({ state: "failed", result: { rejected: [{ line: 1 }] } });
    expect(newer).toMatchObject({
      state: "failed",
      result: { rejected: [{ line: 1, reason: expect.stringContaining("version 2") }] },
    });
    expect(w.allowlist.records.size).toBe(0);
    expect(w.lots.lots.get("L1")).toMatchObject({ provisionedCount: 3 });
    expect(w.lots.lots.has("L2")).toBe(false);
    expect(w.mappings.mappings.size).toBe(0);
    expect(w.ledger.entries.filter((e) => e.kind === "admin" && !e.deviceId.startsWith("#job:"))).toEqual([]);
  });

  it("keeps the job record small: lists cut at 200 entries, the counts complete", async () => {
    // Prepare: 300 bad lines
    const w = jobWorld();
    const bad = Array.from(
      { length: 300 },
      (_, i) => `{"kind":"allowlist","record":{"deviceId":"bad ${i}"}}`,
    );

    // Act
    const ended = await w.restore(`{"kind":"backup","version":1}\n${bad.join("\n")}\n`);

    // Assess
    const report = ended.result as RestoreReport;
    expect(ended).toMatchObject({ state: "failed", error: "300 line(s) are invalid; nothing was written" });
    expect(report).toMatchObject({ rejectedCount: 300, truncated: true, allowlist: { rejectedCount: 300 } });
    expect(report.allowlist.rejected).toHaveLength(200);
  });

  it("checks a mapping as a save does: a thing group that does not exist refuses it unless force", async () => {
    // Prepare
    const w = jobWorld();
    const text = [
      '{"kind":"backup","version":1}',
      '{"kind":"mapping","record":{"selector":"default","policy":{"template":"sensor"},"thingGroups":["ghosts"]}}',
      '{"kind":"allowlist","record":{"deviceId":"d-1","lot":"nowhere"}}',
      "",
    ].join("\n");

    // Act
    const refused = await w.restore(text);
    const forced = await w.restore(text, { force: true });

    // Assess
    expect(refused).toMatchObject({
      state: "failed",
      result: { rejected: [{ line: 2, reason: expect.stringContaining("thingGroups[0]") }] },
    });
    expect(forced).toMatchObject({
      state: "succeeded",
      result: { mappings: { created: 1 }, allowlist: { created: 1 } },
    });
    const warnings = (forced.result as RestoreReport).warnings.map((x) => [x.line, x.message]);
    expect(warnings).toEqual([
      [2, expect.stringContaining("thingGroups[0]")],
      [3, expect.stringContaining("lot nowhere is neither in the backup nor in the store")],
    ]);
    expect(w.mappings.mappings.get("default")?.thingGroups).toEqual(["ghosts"]);
  });

  it("refuses to start with fields it does not know or a file it did not hand out", async () => {
    // Prepare
    const w = jobWorld();

    // Act
    const refusals = await Promise.allSettled([
      w.jobs.startRestore(ACTOR, { file: "backups/x.jsonl" }),
      w.jobs.startRestore(ACTOR, { file: `uploads/${crypto.randomUUID()}` }),
      w.jobs.startRestore(ACTOR, { file: `uploads/${crypto.randomUUID()}`, dryRun: "yes", mode: "x" }),
    ]);

    // Assess
    expect(
      refusals.map((r) => (r.status === "rejected" ? (r.reason as { issues: unknown }).issues : r)),
    ).toEqual([
      [{ path: "file", message: expect.stringContaining("upload URL") }],
      [{ path: "file", message: expect.stringContaining("nothing was uploaded") }],
      [
        { path: "mode", message: "is not a field of a restore job" },
        { path: "dryRun", message: "must be true or false" },
      ],
    ]);
    expect(w.store.jobs.size).toBe(0);
  });
});
