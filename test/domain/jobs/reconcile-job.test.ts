/** The reconcile job kind over in-memory stores and a fake registry: the reconcile use case over every device, resumable. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import { ValidationError } from "../../../domain/errors.ts";
import { ReconcileJob, type ReconcileJobResult } from "../../../domain/jobs/reconcile-job.ts";
import { JobRunner } from "../../../domain/jobs/runner.ts";
import type { Job } from "../../../domain/jobs/types.ts";
import type { PolicyMapping } from "../../../domain/types.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { MemoryJobFiles, MemoryJobQueue, MemoryJobStore } from "../../support/job-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const CA = "c".repeat(64);
const DOCUMENT = '{"Version":"2012-10-17","Statement":[]}';
const COMMAND_ONLY: PolicyMapping = { selector: "default", version: 2, policy: { template: "command-only" } };

/** A world of `count` devices provisioned with jitr-sensor while the default mapping now selects command-only. */
function fleet(count: number) {
  const world = makeAdminWorld({ mappings: [COMMAND_ONLY] });
  world.iot.policies.set("jitr-sensor", {
    versions: [{ id: "1", document: DOCUMENT, createdAt: new Date(0) }],
    defaultId: "1",
  });
  const arns = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const deviceId = `dev-${String(i).padStart(3, "0")}`;
    const certificateId = i.toString(16).padStart(64, "a");
    const arn = world.iot.addCertificate(certificateId, "not a pem", CA, "ACTIVE");
    arns.set(deviceId, arn);
    world.allowlist.records.set(deviceId, {
      deviceId,
      status: "allowed",
      version: 1,
      certificateId,
      thingName: deviceId,
      policyName: "jitr-sensor",
      provisionedAt: "2026-01-01T00:00:00.000Z",
    });
    world.iot.things.set(deviceId, { thingName: deviceId, attributes: {} });
    world.iot.thingPrincipals.set(deviceId, new Set([arn]));
    world.iot.policyTargets.set(
      "jitr-sensor",
      (world.iot.policyTargets.get("jitr-sensor") ?? new Set()).add(arn),
    );
    world.ledger.entries.push({
      deviceId,
      at: "2026-01-01T00:00:00.000Z",
      kind: "provisioned",
      certificateId,
      caCertificateId: CA,
      policyName: "jitr-sensor",
    });
  }
  const store = new MemoryJobStore();
  const queue = new MemoryJobQueue();
  const admin = new Admin({ ...world.deps, jobs: { jobs: store, files: new MemoryJobFiles(), queue } });
  if (admin.jobs === undefined) throw new Error("jobs not configured");
  const context = { deps: world.deps, retried: { ...world.deps } };
  const attached = (deviceId: string) =>
    [...world.iot.policyTargets]
      .filter(([, targets]) => targets.has(arns.get(deviceId) ?? ""))
      .map(([name]) => name);
  return { ...world, store, queue, jobs: admin.jobs, context, attached };
}

describe("reconcile job", () => {
  it("goes over every provisioned device a slice at a time, saving the cursor, and sums the outcomes", async () => {
    // Prepare: 5 devices, 2 a slice, a spent budget (one slice a step)
    const w = fleet(5);
    const kind = new ReconcileJob(w.context, w.clock, 2);
    const job = await w.jobs.startReconcile(ACTOR, {});
    const spent = { deadline: 0 };

    // Act
    const first = await kind.step(job, undefined, spent);
    const second = await kind.step({ ...job, result: first.result }, first.cursor, spent);
    const third = await kind.step({ ...job, result: second.result }, second.cursor, spent);
    const last = await kind.step({ ...job, result: third.result }, third.cursor, spent);

    // Assess: two slices of 2, the last device, then the lot recount
    expect(first).toMatchObject({ done: false, progress: { done: 2 }, cursor: expect.any(String) });
    expect(second).toMatchObject({ done: false, progress: { done: 4 } });
    expect(third).toMatchObject({ done: false, progress: { done: 5 } });
    expect(last).toMatchObject({ done: true, cursor: undefined, progress: { done: 5, total: 5 } });
    const result = last.result as ReconcileJobResult;
    expect(result).toMatchObject({ dryRun: false, examined: 5, truncated: false });
    expect(result.outcomes).toEqual({ changed: 5, "would-change": 0, skipped: 0, unresolved: 0, failed: 0 });
    expect(result.devices.map((d) => d.deviceId)).toEqual([
      "dev-000",
      "dev-001",
      "dev-002",
      "dev-003",
      "dev-004",
    ]);
    for (let i = 0; i < 5; i++) expect(w.attached(`dev-00${i}`)).toEqual(["jitr-command-only"]);
    const reconciled = w.ledger.entries.filter((e) => e.kind === "admin" && e.change?.action === "reconcile");
    expect(reconciled).toHaveLength(5);
    expect(reconciled.every((e) => e.actor === ACTOR)).toBe(true);
  });

  it("run by the worker to the end, a dry run reports what would change and changes nothing", async () => {
    // Prepare
    const w = fleet(3);
    const job = await w.jobs.startReconcile(ACTOR, { dryRun: true });
    const runner = new JobRunner({
      store: w.store,
      kinds: [new ReconcileJob(w.context, w.clock, 2)],
      clock: w.clock,
      owner: "w",
    });

    // Act
    const outcome = await runner.run(job.id, 60_000);

    // Assess
    expect(outcome).toBe("ended");
    const ended = (await w.store.get(job.id)) as Job;
    expect(ended).toMatchObject({
      kind: "reconcile",
      state: "succeeded",
      params: { dryRun: true },
      progress: { done: 3, total: 3 },
    });
    expect((ended.result as ReconcileJobResult).outcomes["would-change"]).toBe(3);
    for (const id of ["dev-000", "dev-001", "dev-002"]) expect(w.attached(id)).toEqual(["jitr-sensor"]);
    expect(w.ledger.entries.filter((e) => e.change?.action === "reconcile")).toEqual([]);
    expect(w.ledger.entries.filter((e) => e.change?.action === "job-start")).toEqual([
      expect.objectContaining({
        actor: ACTOR,
        change: { action: "job-start", kind: "reconcile", params: { dryRun: true } },
      }),
    ]);
    expect(w.queue.sent).toEqual([job.id]);
  });

  it("a device that fails is counted and listed; the others are reconciled and the job succeeds", async () => {
    // Prepare
    const w = fleet(3);
    w.iot.failOn("describeCertificate", () => new Error("registry broke"), 1);
    const job = await w.jobs.startReconcile(ACTOR, {});
    const runner = new JobRunner({
      store: w.store,
      kinds: [new ReconcileJob(w.context, w.clock)],
      clock: w.clock,
      owner: "w",
    });

    // Act
    await runner.run(job.id, 60_000);

    // Assess
    const result = (await w.store.get(job.id))?.result as ReconcileJobResult;
    expect(result.outcomes).toMatchObject({ changed: 2, failed: 1 });
    expect(result.devices.find((d) => d.outcome === "failed")).toMatchObject({
      detail: expect.stringContaining("registry broke"),
    });
  });

  it("refuses a body that is not a reconcile job's, and starts nothing", async () => {
    // Prepare
    const w = fleet(1);

    // Act
    const refused = await w.jobs.startReconcile(ACTOR, { dryRun: "yes", limit: 5 }).catch((e: unknown) => e);

    // Assess
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).issues.map((i) => i.path).sort()).toEqual(["dryRun", "limit"]);
    expect(w.store.jobs.size).toBe(0);
    expect(w.queue.sent).toEqual([]);
  });

  it("recounts the lots from the records' marks after the devices, reporting and recording each lot set", async () => {
    // Prepare: lot L-1 counts 5 but 2 records are marked; L-2 counts 0 but 1 is; L-3 is right
    const w = fleet(3);
    const lot = (name: string, provisionedCount: number) =>
      w.lots.lots.set(name, { lot: name, provisionedCount, version: 1 });
    lot("L-1", 5);
    lot("L-2", 0);
    lot("L-3", 0);
    const mark = (deviceId: string, lotCounted: string) => {
      const record = w.allowlist.records.get(deviceId);
      if (record) w.allowlist.records.set(deviceId, { ...record, lotCounted });
    };
    mark("dev-000", "L-1");
    mark("dev-001", "L-1");
    mark("dev-002", "L-2");
    const runner = new JobRunner({
      store: w.store,
      kinds: [new ReconcileJob(w.context, w.clock, 2)],
      clock: w.clock,
      owner: "w",
    });
    const dry = await w.jobs.startReconcile(ACTOR, { dryRun: true });
    await runner.run(dry.id, 60_000);
    const job = await w.jobs.startReconcile(ACTOR, {});

    // Act
    await runner.run(job.id, 60_000);

    // Assess
    const preview = (await w.store.get(dry.id))?.result as ReconcileJobResult;
    const result = (await w.store.get(job.id))?.result as ReconcileJobResult;
    expect(preview.lots).toEqual([
      { lot: "L-1", before: 5, after: 2, outcome: "would-recount" },
      { lot: "L-2", before: 0, after: 1, outcome: "would-recount" },
    ]);
    expect(result.lots).toEqual([
      { lot: "L-1", before: 5, after: 2, outcome: "recounted" },
      { lot: "L-2", before: 0, after: 1, outcome: "recounted" },
    ]);
    expect([...w.lots.lots.values()].map((l) => [l.lot, l.provisionedCount])).toEqual([
      ["L-1", 2],
      ["L-2", 1],
      ["L-3", 0],
    ]);
    expect(w.ledger.entries.filter((e) => e.change?.action === "lot-recount").map((e) => e.deviceId)).toEqual(
      ["#lot:L-1", "#lot:L-2"],
    );
  });

  it("leaves a lot whose count moved during the recount, and says so", async () => {
    // Prepare: the count read is 5; a device is counted in the lot before the recount writes
    const w = fleet(1);
    w.lots.lots.set("L-1", { lot: "L-1", provisionedCount: 5, version: 1 });
    const kind = new ReconcileJob(w.context, w.clock);
    const job = await w.jobs.startReconcile(ACTOR, {});
    const toLots = await kind.step(job, undefined, { deadline: 0 });
    const stored = w.lots.lots.get("L-1");
    if (stored) stored.provisionedCount = 6;

    // Act
    const last = await kind.step({ ...job, result: toLots.result }, toLots.cursor, {
      deadline: Number.MAX_SAFE_INTEGER,
    });

    // Assess
    expect((last.result as ReconcileJobResult).lots).toEqual([
      { lot: "L-1", before: 5, after: 0, outcome: "moved" },
    ]);
    expect(w.lots.lots.get("L-1")?.provisionedCount).toBe(6);
  });
});
