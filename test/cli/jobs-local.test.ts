/** Jobs through the admin API and the CLI against jitr local: a large import and its export through S3, resume at start. */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectAdminApi } from "../../cli/api-client.ts";
import { main } from "../../cli/main.ts";
import type { Job } from "../../domain/jobs/types.ts";
import { captureOutput } from "../support/capture.ts";
import { startTestStack } from "../support/local-stack.ts";

const output = captureOutput();
const LINES = 20_000;

let t: Awaited<ReturnType<typeof startTestStack>>;
beforeAll(async () => {
  t = await startTestStack();
});
afterAll(async () => t.close());

const jitr = (...args: string[]) => main(["node", "jitr", ...args, "--data", t.dataDir]);
const json = <T>(): T => JSON.parse(output.stdout()) as T;

async function waitFor(id: string): Promise<Job> {
  const api = await connectAdminApi({ data: t.dataDir });
  for (;;) {
    const job = await api.jobs.get(id);
    if (["succeeded", "failed", "cancelled"].includes(job.state)) return job;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("jobs against jitr local", () => {
  it(`imports ${LINES} lines as a job through an upload URL, exports them as a job and imports the export back unchanged`, async () => {
    // Prepare
    const file = join(t.dataDir, "large.jsonl");
    const lines = Array.from({ length: LINES }, (_, i) =>
      JSON.stringify({ deviceId: `big-${i}`, lot: undefined, attributes: { n: String(i) } }),
    );
    await writeFile(file, `${lines.join("\n")}\n`);
    const exported = join(t.dataDir, "export.jsonl");

    // Act
    const imported = await jitr("allowlist", "import", file, "--job", "--json");
    const report = json<{ created: number; rejectedCount: number }>();
    output.reset();
    const exportStatus = await jitr("allowlist", "export", "--job", "--out", exported);
    output.reset();
    const reimported = await jitr(
      "allowlist",
      "import",
      exported,
      "--job",
      "--mode",
      "all-or-nothing",
      "--json",
    );
    const again = json<{ unchanged: number; created: number }>();
    output.reset();
    const listed = await jitr("jobs", "list", "--json");
    const jobs = json<{ items: Job[] }>();

    // Assess
    expect([imported, exportStatus, reimported, listed]).toEqual([0, 0, 0, 0]);
    expect(report).toMatchObject({ created: LINES, rejectedCount: 0 });
    expect((await readFile(exported, "utf8")).split("\n").filter(Boolean)).toHaveLength(LINES);
    expect(again).toMatchObject({ unchanged: LINES, created: 0 });
    expect(jobs.items.map((j) => [j.kind, j.state, j.startedBy])).toEqual([
      ["import", "succeeded", "local-admin"],
      ["export", "succeeded", "local-admin"],
      ["import", "succeeded", "local-admin"],
    ]);
  }, 300_000);

  it("fails an all-or-nothing import job with a bad line and writes nothing; the CLI exits 1 with the report", async () => {
    // Prepare
    const file = join(t.dataDir, "bad.jsonl");
    await writeFile(file, '{"deviceId":"aon-1"}\n{"deviceId":"aon 2"}\n');

    // Act
    const status = await jitr("allowlist", "import", file, "--job", "--mode", "all-or-nothing", "--json");
    const report = json<{ rejected: { line: number }[] }>();
    const message = output.stderr();
    output.reset();
    const lookup = await jitr("allowlist", "get", "aon-1");

    // Assess
    expect(status).toBe(1);
    expect(report.rejected).toEqual([{ line: 2, reason: expect.any(String) }]);
    expect(message).toMatch(/failed: 1 line\(s\) are invalid; nothing was written/);
    expect(lookup).toBe(1);
  });

  it("refuses an import job over a file that was not uploaded, and an unknown job", async () => {
    // Prepare
    const api = await connectAdminApi({ data: t.dataDir });

    // Act
    const answers = await Promise.allSettled([
      api.jobs.startImport({ file: `uploads/${crypto.randomUUID()}`, mode: "best-effort" }),
      api.jobs.startImport({ file: "../allowlist", mode: "best-effort" }),
      api.jobs.get(crypto.randomUUID()),
    ]);

    // Assess
    expect(
      answers.map((a) => (a.status === "rejected" ? (a.reason as { status: number }).status : a.status)),
    ).toEqual([400, 400, 404]);
  });

  it("resumes at start a job left running by a stopped stack once its lease has expired", async () => {
    // Prepare: a file uploaded, and a job record as a crashed worker leaves it (running, lease expired)
    const api = await connectAdminApi({ data: t.dataDir });
    const text = '{"deviceId":"resume-1"}\n{"deviceId":"resume-2"}\n';
    const ticket = await api.jobs.requestUpload(Buffer.byteLength(text));
    await fetch(ticket.upload.url, { method: "PUT", headers: ticket.upload.headers, body: text });
    const id = crypto.randomUUID();
    const now = new Date().toISOString();
    await t.stack.jobs.deps.jobs.create({
      id,
      kind: "import",
      state: "running",
      params: { file: ticket.file, mode: "best-effort" },
      progress: { done: 0 },
      startedBy: "someone",
      createdAt: now,
      updatedAt: now,
      lease: { owner: "a-stopped-worker", expiresAt: new Date(Date.now() - 1_000).toISOString() },
      version: 3,
    });

    // Act
    const resumed = await t.stack.jobs.resume();
    const job = await waitFor(id);

    // Assess
    expect(resumed).toBeGreaterThanOrEqual(1);
    expect(job).toMatchObject({ state: "succeeded", result: { created: 2 } });
    expect((await api.allowlist.get("resume-2")).value.updatedBy).toBe("someone");
  });
});
