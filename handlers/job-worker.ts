import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { adminContext } from "../domain/admin/deps.ts";
import type { AdminDeps } from "../domain/admin/index.ts";
import { describeError } from "../domain/errors.ts";
import { type JobQueue, JobRunner, jobKinds } from "../domain/jobs/index.ts";

/*
 * The job worker: fed by the jobs queue, one message a job. It runs the job's slices within the time the
 * invocation has left (less a margin to save and re-enqueue), then:
 *  - the job ended, or is gone: the message is done;
 *  - the budget ran out: the job is enqueued again (a new message), and this one is done;
 *  - another worker's lease is live, or a transient error: the message fails, so the queue delivers it
 *    again after its visibility timeout (a crashed worker's lease has expired by then).
 */

/** The message body naming a job. */
export interface JobMessage {
  jobId: string;
}

export interface JobWorkerDeps {
  admin: AdminDeps;
  queue: JobQueue;
  /** This worker's name in leases. */
  owner: string;
  /** Kept back from the invocation's remaining time for the last save; default 30 s. */
  marginMs?: number;
  /** The most one invocation runs a job; default: all the time it has. */
  maxBudgetMs?: number;
  logError?: (message: string, details: Record<string, unknown>) => void;
}

export type JobWorkerHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** The job id a message names, or undefined when it names none. */
function jobIdOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as Partial<JobMessage> | null;
    return typeof parsed?.jobId === "string" ? parsed.jobId : undefined;
  } catch {
    return undefined;
  }
}

/** Builds the worker's SQS handler; see the top of this module. */
export function makeJobWorkerHandler(deps: JobWorkerDeps): JobWorkerHandler {
  const jobs = deps.admin.jobs;
  if (jobs === undefined) throw new Error("the job worker needs the jobs table, queue and bucket");
  const context = adminContext(deps.admin);
  const runner = new JobRunner({
    store: jobs.jobs,
    kinds: jobKinds(context, jobs.files, deps.admin.clock),
    clock: deps.admin.clock,
    owner: deps.owner,
  });
  const logError =
    deps.logError ?? ((message, details) => console.error(JSON.stringify({ message, ...details })));
  return async (event, lambda) => {
    const batchItemFailures: SQSBatchResponse["batchItemFailures"] = [];
    for (const record of event.Records) {
      const id = jobIdOf(record.body);
      if (id === undefined) {
        logError("job message names no job; dropped", { messageId: record.messageId });
        continue;
      }
      const budget = Math.min(
        deps.maxBudgetMs ?? Number.MAX_SAFE_INTEGER,
        lambda.getRemainingTimeInMillis() - (deps.marginMs ?? 30_000),
      );
      try {
        const outcome = await runner.run(id, Math.max(1_000, budget));
        if (outcome === "again") await deps.queue.enqueue(id);
        if (outcome === "busy") batchItemFailures.push({ itemIdentifier: record.messageId });
      } catch (error) {
        logError("job run failed; the queue delivers it again", { jobId: id, error: describeError(error) });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  };
}
