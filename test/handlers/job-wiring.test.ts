/**
 * The deployed jobs wiring without AWS: the admin API and the job worker built from the configuration the
 * stack gives them, over mocked DynamoDB, SQS and S3 clients.
 */

import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import type { Context, SQSEvent } from "aws-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../domain/errors.ts";
import type { Job } from "../../domain/jobs/types.ts";
import { makeAdminHandler } from "../../handlers/admin.ts";
import { readAdminConfig } from "../../handlers/admin-config.ts";
import { buildAdmin } from "../../handlers/admin-wiring.ts";
import { makeJobWorkerHandler } from "../../handlers/job-worker.ts";
import { buildJobWorker } from "../../handlers/job-worker-wiring.ts";
import { event } from "../admin-api/support.ts";

const QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/jitr-dev-jobs";
const STACK_ENV = {
  JITR_ALLOWLIST_TABLE: "allowlist",
  JITR_MAPPINGS_TABLE: "mappings",
  JITR_LOTS_TABLE: "lots",
  JITR_LEDGER_TABLE: "ledger",
  JITR_ACCOUNT_ID: "123456789012",
  AWS_REGION: "eu-west-1",
  JITR_JOBS_TABLE: "jobs",
  JITR_JOBS_QUEUE_URL: QUEUE_URL,
  JITR_JOBS_BUCKET: "jitr-dev-jobsbucket-1a2b3c",
};
const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
const clients = () => ({
  iot: new IoTClient({ region: "eu-west-1", credentials }),
  dynamo: new DynamoDBClient({ region: "eu-west-1", credentials }),
});
const jobClients = () => ({
  s3: new S3Client({ region: "eu-west-1", credentials }),
  sqs: new SQSClient({ region: "eu-west-1", credentials }),
});

const ddb = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);
const s3 = mockClient(S3Client);
beforeEach(() => {
  ddb.reset();
  sqs.reset();
  s3.reset();
});

describe("the jobs configuration", () => {
  it("names the jobs' table, queue and bucket, or none of them", () => {
    // Prepare
    const { JITR_JOBS_TABLE: _t, JITR_JOBS_QUEUE_URL: _q, JITR_JOBS_BUCKET: _b, ...withoutJobs } = STACK_ENV;

    // Act
    const withJobs = readAdminConfig(STACK_ENV);
    const without = readAdminConfig(withoutJobs);

    // Assess
    expect(withJobs.jobs).toEqual({
      table: "jobs",
      queueUrl: QUEUE_URL,
      bucket: "jitr-dev-jobsbucket-1a2b3c",
    });
    expect(without.jobs).toBeUndefined();
  });

  it.each([
    [{ JITR_JOBS_BUCKET: "" }, "JITR_JOBS_BUCKET"],
    [{ JITR_JOBS_TABLE: " " }, "JITR_JOBS_TABLE"],
    [{ JITR_JOBS_QUEUE_URL: "jitr-dev-jobs" }, "JITR_JOBS_QUEUE_URL"],
  ])("fails fast on a partial or invalid jobs configuration (%j)", (change, name) => {
    // Prepare / Act
    const read = () => readAdminConfig({ ...STACK_ENV, ...change });

    // Assess
    expect(read).toThrow(ConfigurationError);
    expect(read).toThrow(name);
  });

  it("the worker refuses to start without the jobs configuration", () => {
    // Prepare
    const { JITR_JOBS_TABLE: _t, JITR_JOBS_QUEUE_URL: _q, JITR_JOBS_BUCKET: _b, ...withoutJobs } = STACK_ENV;

    // Act
    const build = () => buildJobWorker(readAdminConfig(withoutJobs), "w", clients(), jobClients());

    // Assess
    expect(build).toThrow(/JITR_JOBS_TABLE/);
  });
});

describe("the deployed admin API runs jobs", () => {
  it("starting an export writes the job record and its ledger entry, then enqueues the job on SQS", async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    sqs.on(SendMessageCommand).resolves({ MessageId: "m-1" });
    const handler = makeAdminHandler(buildAdmin(readAdminConfig(STACK_ENV), clients(), jobClients));

    // Act
    const response = await handler(event("POST", "/allowlist/export-jobs"));

    // Assess
    expect(response.statusCode).toBe(202);
    const job = JSON.parse(String(response.body)) as Job;
    expect(job).toMatchObject({
      kind: "export",
      state: "queued",
      startedBy: "arn:aws:iam::123456789012:user/alice",
    });
    const puts = ddb.commandCalls(PutCommand).map((call) => call.args[0].input.TableName);
    expect(puts).toEqual(["jobs", "ledger"]);
    expect(sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input)).toEqual([
      { QueueUrl: QUEUE_URL, MessageBody: JSON.stringify({ jobId: job.id }) },
    ]);
  });

  it("an upload URL is a presigned PUT of the stated size into the bucket's uploads/ prefix", async () => {
    // Prepare
    const handler = makeAdminHandler(buildAdmin(readAdminConfig(STACK_ENV), clients(), jobClients));

    // Act
    const response = await handler(event("POST", "/uploads", { body: { bytes: 1234 } }));

    // Assess
    expect(response.statusCode).toBe(201);
    const ticket = JSON.parse(String(response.body)) as {
      file: string;
      upload: { url: string; method: string };
    };
    expect(ticket.file).toMatch(/^uploads\/[0-9a-f-]{36}$/);
    const url = new URL(ticket.upload.url);
    expect(url.protocol).toBe("https:");
    expect(`${url.host}${url.pathname}`).toContain("jitr-dev-jobsbucket-1a2b3c");
    expect(url.pathname).toContain(`/${ticket.file}`);
    expect(url.searchParams.get("X-Amz-SignedHeaders")).toContain("content-length");
    expect(ticket.upload.method).toBe("PUT");
  });

  it("without the jobs configuration the job routes answer 404 and nothing is sent", async () => {
    // Prepare
    const { JITR_JOBS_TABLE: _t, JITR_JOBS_QUEUE_URL: _q, JITR_JOBS_BUCKET: _b, ...withoutJobs } = STACK_ENV;
    const handler = makeAdminHandler(buildAdmin(readAdminConfig(withoutJobs), clients(), jobClients));

    // Act
    const response = await handler(event("POST", "/allowlist/export-jobs"));

    // Assess
    expect(response.statusCode).toBe(404);
    expect(String(response.body)).toContain("this deployment runs no jobs");
    expect(sqs.calls()).toHaveLength(0);
    expect(ddb.calls()).toHaveLength(0);
  });
});

describe("the deployed job worker", () => {
  it("runs a queued export to the end: reads the records, writes the file to exports/, saves the job succeeded", async () => {
    // Prepare
    const id = "0b6c0f6e-8d2a-4c59-9d2f-3d1f5f0a9e11";
    const queued: Job = {
      id,
      kind: "export",
      state: "queued",
      params: { file: `exports/${id}.jsonl` },
      progress: { done: 0 },
      startedBy: "admin",
      createdAt: "2026-01-01T00:00:00.000Z",
      updatedAt: "2026-01-01T00:00:00.000Z",
      version: 1,
    };
    const stored: { job: Job } = { job: queued };
    ddb
      .on(GetCommand, { TableName: "jobs" })
      .callsFake(async () => ({ Item: { ...stored.job, listed: "job" } }));
    ddb
      .on(PutCommand, { TableName: "jobs" })
      .callsFake(async (input: { Item: Job & { listed?: string } }) => {
        const { listed: _listed, ...job } = input.Item;
        stored.job = job;
        return {};
      });
    ddb.on(ScanCommand, { TableName: "allowlist" }).resolves({
      Items: [
        { deviceId: "dev-1", status: "allowed", version: 1 },
        { deviceId: "dev-2", status: "blocked", version: 3 },
      ],
    });
    s3.on(CreateMultipartUploadCommand).resolves({ UploadId: "u-1" });
    s3.on(UploadPartCommand).resolves({ ETag: '"e1"' });
    s3.on(CompleteMultipartUploadCommand).resolves({});
    const handler = makeJobWorkerHandler(
      buildJobWorker(readAdminConfig(STACK_ENV), "worker-1", clients(), jobClients()),
    );
    const sqsEvent = { Records: [{ messageId: "m-1", body: JSON.stringify({ jobId: id }) }] } as SQSEvent;
    const context = { getRemainingTimeInMillis: () => 120_000 } as Context;

    // Act
    const response = await handler(sqsEvent, context);

    // Assess
    expect(response).toEqual({ batchItemFailures: [] });
    expect(stored.job).toMatchObject({
      state: "succeeded",
      result: { file: `exports/${id}.jsonl`, records: 2 },
    });
    const part = s3.commandCalls(UploadPartCommand)[0]?.args[0].input;
    expect(part).toMatchObject({
      Bucket: "jitr-dev-jobsbucket-1a2b3c",
      Key: `exports/${id}.jsonl`,
      PartNumber: 1,
    });
    expect(
      new TextDecoder()
        .decode(part?.Body as Uint8Array)
        .trim()
        .split("\n"),
    ).toHaveLength(2);
    expect(sqs.calls()).toHaveLength(0);
  });
});
