/** The import and export job kinds over in-memory stores and bucket, run by the job runner. */
import { describe, expect, it } from "vitest";
import type { ImportReport } from "../../../domain/admin/import.ts";
import { Admin } from "../../../domain/admin/index.ts";
import { ExportJob } from "../../../domain/jobs/export-job.ts";
import { ImportJob } from "../../../domain/jobs/import-job.ts";
import { JobRunner } from "../../../domain/jobs/runner.ts";
import type { JobKind } from "../../../domain/jobs/types.ts";
import { makeAdminWorld } from "../../support/admin-fakes.ts";
import { MemoryJobFiles, MemoryJobQueue, MemoryJobStore } from "../../support/job-fakes.ts";

const ACTOR = "arn:aws:iam::123456789012:user/importer";

function jobWorld(seed: Parameters<typeof makeAdminWorld>[0] = {}) {
  const world = makeAdminWorld(seed);
  const store = new MemoryJobStore();
  const files = new MemoryJobFiles(777);
  const queue = new MemoryJobQueue();
  const admin = new Admin({ ...world.deps, jobs: { jobs: store, files, queue } });
  if (admin.jobs === undefined) throw new Error("jobs not configured");
  const context = { deps: world.deps, retried: { ...world.deps } };
  const kinds = (exportParts = 5 * 1024 * 1024): JobKind[] => [
    new ImportJob({ context, files, clock: world.clock }),
    new ExportJob({ context, files }, exportParts),
  ];
  const run = async (id: string, kindList = kinds()) =>
    new JobRunner({ store, kinds: kindList, clock: world.clock, owner: "worker" }).run(id, 3_600_000);
  return { ...world, store, files, queue, jobs: admin.jobs, admin, run, kinds };
}

const upload = (files: MemoryJobFiles, text: string) => {
  const file = `uploads/${crypto.randomUUID()}`;
  files.put(file, text);
  return file;
};

const lines = (count: number, line: (i: number) => string) =>
  `${Array.from({ length: count }, (_, i) => line(i)).join("\n")}\n`;

describe("import job", () => {
  it("validates the whole file first: all-or-nothing with one bad line writes nothing", async () => {
    // Prepare: the bad line is the last of 12,000 (beyond the first write slice)
    const w = jobWorld();
    const file = upload(
      w.files,
      lines(12_000, (i) => (i === 11_999 ? '{"deviceId":"bad id"}' : `{"deviceId":"d-${i}"}`)),
    );
    const job = await w.jobs.startImport(ACTOR, { file, mode: "all-or-nothing" });

    // Act
    await w.run(job.id);

    // Assess
    const ended = await w.store.get(job.id);
    expect(ended).toMatchObject({ state: "failed", error: "1 line(s) are invalid; nothing was written" });
    expect((ended?.result as ImportReport | undefined)?.rejected).toEqual([
      { line: 12_000, reason: expect.any(String) },
    ]);
    expect(w.allowlist.records.size).toBe(0);
    expect(w.queue.sent).toEqual([job.id]);
  });

  it("writes a large file in slices, numbering lines as in the file and rejecting a device id repeated in a later slice", async () => {
    // Prepare: 12,000 lines; line 11,001 repeats the device of line 2
    const w = jobWorld();
    const file = upload(
      w.files,
      lines(12_000, (i) => `{"deviceId":"d-${i === 11_000 ? 1 : i}","note":"n${i}"}`),
    );
    const job = await w.jobs.startImport(ACTOR, { file });

    // Act
    await w.run(job.id);

    // Assess
    const ended = await w.store.get(job.id);
    expect(ended).toMatchObject({ state: "succeeded", progress: { done: 12_000, total: 12_000 } });
    expect(ended?.result).toMatchObject({ created: 11_999, rejectedCount: 1, rejected: [{ line: 11_001 }] });
    expect(w.allowlist.records.get("d-1")?.note).toBe("n1");
    expect(w.allowlist.records.size).toBe(11_999);
    expect(
      w.ledger.entries.filter((e) => e.actor === ACTOR && e.change?.action === "import-create"),
    ).toHaveLength(11_999);
  });

  it("reads a CSV file across slices with its header, a quoted field spanning lines kept whole", async () => {
    // Prepare: 6,001 records; record 5,000's note spans two lines, across the 5,000-line slice boundary
    const w = jobWorld();
    const rows = Array.from({ length: 6_001 }, (_, i) =>
      i === 4_999 ? `c-${i},"two\nlines"` : `c-${i},n${i}`,
    );
    const file = upload(w.files, `deviceId,note\n${rows.join("\n")}\n`);
    const job = await w.jobs.startImport(ACTOR, { file, format: "csv" });

    // Act
    await w.run(job.id);

    // Assess
    expect(await w.store.get(job.id)).toMatchObject({
      state: "succeeded",
      result: { created: 6_001, rejectedCount: 0 },
    });
    expect(w.allowlist.records.get("c-4999")?.note).toBe("two\nlines");
    expect(w.allowlist.records.get("c-6000")?.note).toBe("n6000");
  });

  it("resumes after a crash in the middle of the writes: every line imported, none twice", async () => {
    // Prepare: the worker dies in the second write slice
    const w = jobWorld();
    const file = upload(
      w.files,
      lines(11_000, (i) => `{"deviceId":"r-${i}"}`),
    );
    const job = await w.jobs.startImport(ACTOR, { file });
    const [importKind, exportKind] = w.kinds();
    if (importKind === undefined || exportKind === undefined) throw new Error("kinds");
    let slices = 0;
    const crashing: JobKind = {
      kind: importKind.kind,
      step: async (j, cursor, budget) => {
        slices += 1;
        if (slices === 3) await new Promise(() => undefined);
        return importKind.step(j, cursor, budget);
      },
    };
    void w.run(job.id, [crashing]);
    await vitestWait(() => slices === 3);
    await w.clock.sleep(120_000);

    // Act
    await w.run(job.id);

    // Assess
    const ended = await w.store.get(job.id);
    expect(ended).toMatchObject({
      state: "succeeded",
      progress: { done: 11_000 },
      result: { created: 11_000 },
    });
    expect(w.allowlist.records.size).toBe(11_000);
    expect(w.ledger.entries.filter((e) => e.change?.action === "import-create")).toHaveLength(11_000);
  });

  it("refuses to start without an uploaded file, or with a file name it did not hand out", async () => {
    // Prepare
    const w = jobWorld();
    w.files.put("exports/other.jsonl", '{"deviceId":"x"}\n');

    // Act
    const refusals = await Promise.allSettled([
      w.jobs.startImport(ACTOR, { file: `uploads/${crypto.randomUUID()}` }),
      w.jobs.startImport(ACTOR, { file: "exports/other.jsonl" }),
      w.jobs.startImport(ACTOR, { file: `uploads/${crypto.randomUUID()}`, bucket: "x" }),
    ]);

    // Assess
    expect(
      refusals.map((r) => (r.status === "rejected" ? (r.reason as { issues: unknown }).issues : r)),
    ).toEqual([
      [{ path: "file", message: expect.stringContaining("nothing was uploaded") }],
      [{ path: "file", message: expect.stringContaining("upload URL") }],
      [{ path: "bucket", message: expect.any(String) }],
    ]);
    expect(w.store.jobs.size).toBe(0);
    expect(w.queue.sent).toEqual([]);
  });
});

describe("export job", () => {
  it("writes every record as JSON lines in parts, and the file imports back unchanged", async () => {
    // Prepare: 1,200 records, parts of about 10 KiB
    const w = jobWorld();
    const source = upload(
      w.files,
      lines(1_200, (i) => `{"deviceId":"e-${i}","attributes":{"site":"s${i % 7}"}}`),
    );
    await w.run((await w.jobs.startImport(ACTOR, { file: source })).id);
    const job = await w.jobs.startExport(ACTOR);

    // Act
    await w.run(job.id, w.kinds(10 * 1024));
    const exported = await w.jobs.get(job.id);
    const again = await w.jobs.startImport(ACTOR, {
      file: upload(w.files, w.files.text(`exports/${job.id}.jsonl`) ?? ""),
    });
    await w.run(again.id);

    // Assess
    expect(exported).toMatchObject({
      state: "succeeded",
      result: { records: 1_200 },
      download: { url: `memory://exports/${job.id}.jsonl` },
    });
    expect(w.files.text(`exports/${job.id}.jsonl`)?.split("\n").filter(Boolean)).toHaveLength(1_200);
    expect(await w.store.get(again.id)).toMatchObject({
      state: "succeeded",
      result: { unchanged: 1_200, created: 0 },
    });
  });

  it("cancels a job that has not ended, with a ledger entry naming who did, and refuses to cancel an ended one", async () => {
    // Prepare
    const w = jobWorld();
    const job = await w.jobs.startExport(ACTOR);

    // Act
    const cancelled = await w.jobs.cancel("someone", job.id);
    const outcome = await w.run(job.id);
    const again = w.jobs.cancel("someone", job.id);

    // Assess
    expect(cancelled.state).toBe("cancelled");
    expect(outcome).toBe("ended");
    await expect(again).rejects.toThrow(/ended/);
    expect(w.ledger.changes(`#job:${job.id}`)).toEqual([
      expect.objectContaining({ action: "job-start" }),
      expect.objectContaining({ action: "job-cancel" }),
    ]);
  });
});

async function vitestWait(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
}
