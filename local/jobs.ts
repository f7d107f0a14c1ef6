/**
 * Jobs in `jitr local`: the jobs table and the job bucket on the local AWS endpoint, and an in-process
 * queue (the rule path's buffering: retries with backoff) driving the deployed worker module. Jobs queued
 * or running when the stack last stopped are enqueued again at start, and resume from their cursor.
 */
import { randomUUID } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { DynamoJobs } from "../adapters/dynamo/jobs.ts";
import { createDocumentClient } from "../adapters/dynamo/table.ts";
import { S3JobFiles } from "../adapters/s3.ts";
import type { AdminDeps } from "../domain/admin/index.ts";
import { everything } from "../domain/admin/ledger.ts";
import { FINAL_STATES, type JobDeps, type JobQueue } from "../domain/jobs/index.ts";
import { makeJobWorkerHandler } from "../handlers/job-worker.ts";
import { LOCAL_CREDENTIALS } from "./contract.ts";
import { createRulePath, type LambdaHandler, type RulePath } from "./rule-path.ts";

export interface LocalJobsOptions {
  endpoint: string;
  region: string;
  accountId: string;
  dynamo: DynamoDBClient;
  table: string;
  bucket: string;
  /** The admin ports the worker runs with (its own view: the jobs are added to it). */
  admin: AdminDeps;
  /** The most one delivery runs a job before it is enqueued again; default 10 s. */
  sliceBudgetMs?: number;
  logError?: (message: string, details: Record<string, unknown>) => void;
}

export interface LocalJobs {
  deps: JobDeps;
  queue: RulePath;
  /** Enqueues every job that has not ended (after a restart). */
  resume(): Promise<number>;
  close(): Promise<void>;
}

/** Wires the jobs table, bucket, queue and worker; see the top of this module. */
export function startLocalJobs(options: LocalJobsOptions): LocalJobs {
  const s3 = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    credentials: LOCAL_CREDENTIALS,
    forcePathStyle: true,
    maxAttempts: 1,
  });
  const jobs = new DynamoJobs({ doc: createDocumentClient(options.dynamo), table: options.table });
  const files = new S3JobFiles(s3, options.bucket);
  let path: RulePath | undefined;
  const queue: JobQueue = {
    async enqueue(jobId) {
      path?.enqueue("jobs", { jobId });
    },
  };
  const deps: JobDeps = { jobs, files, queue };
  const handler = makeJobWorkerHandler({
    admin: { ...options.admin, jobs: deps },
    queue,
    owner: `local-${randomUUID()}`,
    marginMs: 0,
    maxBudgetMs: options.sliceBudgetMs ?? 10_000,
    ...(options.logError ? { logError: options.logError } : {}),
  });
  // A job held by a live lease (a worker that stopped mid-slice) comes back until its lease expires.
  path = createRulePath({
    handler: handler as LambdaHandler,
    concurrency: 2,
    batchSize: 1,
    maxReceiveCount: 1_000,
    retryBaseMs: 500,
    retryMaxMs: 5_000,
    region: options.region,
    accountId: options.accountId,
  });
  const started = path;
  return {
    deps,
    queue: started,
    async resume() {
      let count = 0;
      for await (const job of everything((page) => jobs.list(page), 100)) {
        if (FINAL_STATES.includes(job.state)) continue;
        await queue.enqueue(job.id);
        count += 1;
      }
      return count;
    },
    async close() {
      await started.close();
      s3.destroy();
    },
  };
}
