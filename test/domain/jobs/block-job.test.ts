/** The block job kind over in-memory stores and a fake registry: many devices blocked, by ids or by lot, resumable. */
import { describe, expect, it } from "vitest";
import { Admin } from "../../../domain/admin/index.ts";
import { ValidationError } from "../../../domain/errors.ts";
import { BlockJob, type BlockJobResult } from "../../../domain/jobs/block-job.ts";
import { JobRunner } from "../../../domain/jobs/runner.ts";
import type { Job } from "../../../domain/jobs/types.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { MemoryJobFiles, MemoryJobQueue, MemoryJobStore } from "../../support/job-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/alice";
const CA = "c".repeat(64);

/** `count` devices of lot L-1 (and one of lot L-2), each bound to an ACTIVE certificate. */
function fleet(count: number) {
  const world = makeAdminWorld();
  const certificates = new Map<string, string>();
  const add = (deviceId: string, lot: string, i: number) => {
    const certificateId = i.toString(16).padStart(64, "b");
    world.iot.addCertificate(certificateId, "not a pem", CA, "ACTIVE");
    certificates.set(deviceId, certificateId);
    world.allowlist.records.set(deviceId, {
      deviceId,
      status: "allowed",
      lot,
      version: 1,
      certificateId,
      thingName: deviceId,
      provisionedAt: "2026-01-01T00:00:00.000Z",
    });
  };
  for (let i = 0; i < count; i++) add(`dev-${String(i).padStart(3, "0")}`, "L-1", i);
  add("other", "L-2", count);
  const store = new MemoryJobStore();
  const queue = new MemoryJobQueue();
  const admin = new Admin({ ...world.deps, jobs: { jobs: store, files: new MemoryJobFiles(), queue } });
  if (admin.jobs === undefined) throw new Error("jobs not configured");
  const context = { deps: world.deps, retried: { ...world.deps } };
  const status = (deviceId: string) => world.iot.certificates.get(certificates.get(deviceId) ?? "")?.status;
  const runner = new JobRunner({
    store,
    kinds: [new BlockJob(context, world.clock)],
    clock: world.clock,
    owner: "w",
  });
  return { ...world, store, queue, jobs: admin.jobs, context, status, runner };
}

describe("block job", () => {
  it("blocks the devices named, revoking their certificates, one per step when time is short, and resumes from the position", async () => {
    // Prepare
    const w = fleet(3);
    const job = await w.jobs.startBlock(ACTOR, { deviceIds: ["dev-000", "dev-002", "dev-001"] });
    const kind = new BlockJob(w.context, w.clock);
    const spent = { deadline: 0 };

    // Act
    const first = await kind.step(job, undefined, spent);
    const second = await kind.step({ ...job, result: first.result }, first.cursor, spent);
    const end = await kind.step({ ...job, result: second.result }, second.cursor, spent);

    // Assess
    expect(first).toMatchObject({ done: false, cursor: "1", progress: { done: 1, total: 3 } });
    expect(end).toMatchObject({ done: true, cursor: undefined, progress: { done: 3, total: 3 } });
    const result = end.result as BlockJobResult;
    expect(result).toMatchObject({
      mode: "revoke",
      examined: 3,
      outcomes: { blocked: 3, unchanged: 0, incomplete: 0, failed: 0 },
    });
    for (const id of ["dev-000", "dev-001", "dev-002"]) {
      expect(w.allowlist.records.get(id)?.status).toBe("blocked");
      expect(w.status(id)).toBe("REVOKED");
    }
    expect(w.status("other")).toBe("ACTIVE");
    const blocks = w.ledger.entries.filter((e) => e.kind === "admin" && e.change?.action === "block");
    expect(blocks).toHaveLength(3);
  });

  it("blocks every record of a lot, suspending (INACTIVE), and a device already blocked counts as unchanged", async () => {
    // Prepare
    const w = fleet(5);
    const done = await w.jobs.startBlock(ACTOR, { deviceIds: ["dev-004"], suspend: true });
    await w.runner.run(done.id, 60_000);
    const job = await w.jobs.startBlock(ACTOR, { lot: "L-1", suspend: true });

    // Act
    const outcome = await w.runner.run(job.id, 60_000);

    // Assess
    expect(outcome).toBe("ended");
    const ended = (await w.store.get(job.id)) as Job;
    expect(ended).toMatchObject({
      state: "succeeded",
      params: { mode: "suspend", lot: "L-1" },
      progress: { done: 5, total: 5 },
    });
    const result = ended.result as BlockJobResult;
    expect(result.outcomes).toEqual({ blocked: 4, unchanged: 1, incomplete: 0, failed: 0 });
    expect(result.devices.map((d) => d.deviceId).sort()).toEqual([
      "dev-000",
      "dev-001",
      "dev-002",
      "dev-003",
    ]);
    for (let i = 0; i < 5; i++) expect(w.status(`dev-00${i}`)).toBe("INACTIVE");
    expect(w.status("other")).toBe("ACTIVE");
  });

  it("reports a device with no record as failed and one whose certificate could not be changed as incomplete", async () => {
    // Prepare
    const w = fleet(2);
    w.iot.failOn("updateCertificateStatus", () => new Error("registry broke"), 1);
    const job = await w.jobs.startBlock(ACTOR, { deviceIds: ["dev-000", "ghost", "dev-001"] });

    // Act
    await w.runner.run(job.id, 60_000);

    // Assess
    const result = (await w.store.get(job.id))?.result as BlockJobResult;
    expect(result.outcomes).toEqual({ blocked: 1, unchanged: 0, incomplete: 1, failed: 1 });
    expect(result.devices).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          deviceId: "dev-000",
          outcome: "incomplete",
          detail: expect.stringContaining("registry broke"),
        }),
        expect.objectContaining({
          deviceId: "ghost",
          outcome: "failed",
          detail: expect.stringContaining("no allowlist record"),
        }),
      ]),
    );
  });

  it.each([
    [{}, ""],
    [{ deviceIds: ["a"], lot: "L-1" }, ""],
    [{ deviceIds: [] }, "deviceIds"],
    [{ deviceIds: ["a", "a"] }, "deviceIds[1]"],
    [{ deviceIds: ["bad id"] }, "deviceIds[0]"],
    [{ lot: "no spaces" }, "lot"],
    [{ lot: "L-1", suspend: "yes" }, "suspend"],
    [{ lot: "L-1", mode: "revoke" }, "mode"],
  ])("refuses %j naming %s, and starts nothing", async (body, path) => {
    // Prepare
    const w = fleet(1);

    // Act
    const refused = await w.jobs.startBlock(ACTOR, body).catch((e: unknown) => e);

    // Assess
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).issues.map((i) => i.path)).toContain(path);
    expect(w.store.jobs.size).toBe(0);
    expect(w.queue.sent).toEqual([]);
  });
});
