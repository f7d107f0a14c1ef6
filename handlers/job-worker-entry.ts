import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { readAdminConfig } from "./admin-config.ts";
import { type JobWorkerHandler, makeJobWorkerHandler } from "./job-worker.ts";
import { buildJobWorker } from "./job-worker-wiring.ts";

let built: JobWorkerHandler | undefined;

/** The deployed job worker's entry point (fed by the jobs queue): built on the first invocation of a cold start. */
export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  built ??= makeJobWorkerHandler(buildJobWorker(readAdminConfig(), `lambda-${context.logStreamName}`));
  return built(event, context);
};
