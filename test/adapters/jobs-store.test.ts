/** The jobs table against dynalite, and the job bucket against the local endpoint's S3 (s3rver). */
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoJobs } from "../../adapters/dynamo/jobs.ts";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";
import { S3JobFiles } from "../../adapters/s3.ts";
import type { Job } from "../../domain/jobs/types.ts";
import { type AwsEndpoint, startAwsEndpoint } from "../../local/aws/index.ts";
import { startDynalite, testTableNames } from "../support/dynalite.ts";

const job = (id: string, createdAt: string): Job => ({
  id,
  kind: "import",
  state: "queued",
  params: { file: "uploads/x" },
  progress: { done: 0 },
  startedBy: "admin",
  createdAt,
  updatedAt: createdAt,
  version: 1,
});

describe("DynamoJobs", () => {
  let dynamo: Awaited<ReturnType<typeof startDynalite>>;
  let jobs: DynamoJobs;
  beforeAll(async () => {
    dynamo = await startDynalite({ ...testTableNames, jobs: "jobs" });
    jobs = new DynamoJobs({ doc: createDocumentClient(dynamo.client), table: "jobs" });
  });
  afterAll(async () => dynamo.close());

  it("creates once, updates only at the version read, and lists newest first", async () => {
    // Prepare
    await jobs.create(job("a", "2026-01-01T00:00:00.000Z"));
    await jobs.create(job("b", "2026-01-02T00:00:00.000Z"));

    // Act
    const again = await jobs.create(job("a", "2026-01-03T00:00:00.000Z"));
    const updated = await jobs.update(
      { ...job("a", "2026-01-01T00:00:00.000Z"), state: "running", version: 2 },
      1,
    );
    const stale = await jobs.update(
      { ...job("a", "2026-01-01T00:00:00.000Z"), state: "cancelled", version: 2 },
      1,
    );
    const page = await jobs.list({ limit: 10 });

    // Assess
    expect([again, updated, stale]).toEqual([false, true, false]);
    expect(await jobs.get("a")).toMatchObject({ state: "running", version: 2 });
    expect(page.items.map((j) => j.id)).toEqual(["b", "a"]);
    expect(page.items[0]).not.toHaveProperty("listed");
  });
});

describe("S3JobFiles on the local endpoint", () => {
  let aws: AwsEndpoint;
  let files: S3JobFiles;
  beforeAll(async () => {
    aws = await startAwsEndpoint({ buckets: ["jobs"] });
    const s3 = new S3Client({
      endpoint: aws.url,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    files = new S3JobFiles(s3, "jobs");
  });
  afterAll(async () => aws.close());

  it("takes an upload through a presigned URL, reads it from a byte, and hands it out through a download URL", async () => {
    // Prepare
    const text = "line one\nline two\n";
    const upload = await files.uploadUrl("uploads/a", Buffer.byteLength(text), 60);

    // Act
    const put = await fetch(upload.url, { method: "PUT", headers: upload.headers, body: text });
    const size = await files.size("uploads/a");
    const missing = await files.size("uploads/none");
    let tail = "";
    for await (const chunk of await files.read("uploads/a", 9)) tail += Buffer.from(chunk).toString("utf8");
    const download = await fetch((await files.downloadUrl("uploads/a", 60)).url);

    // Assess
    expect(put.status).toBe(200);
    expect([size, missing]).toEqual([text.length, undefined]);
    expect(tail).toBe("line two\n");
    expect(await download.text()).toBe(text);
  });

  it("assembles a multipart upload from its parts", async () => {
    // Prepare
    const first = new Uint8Array(5 * 1024 * 1024).fill(97);
    const uploadId = await files.startUpload("exports/x");

    // Act
    const parts = [
      { partNumber: 1, etag: await files.uploadPart("exports/x", uploadId, 1, first) },
      {
        partNumber: 2,
        etag: await files.uploadPart("exports/x", uploadId, 2, new TextEncoder().encode("end\n")),
      },
    ];
    await files.completeUpload("exports/x", uploadId, parts);

    // Assess
    expect(await files.size("exports/x")).toBe(first.length + 4);
  });
});
