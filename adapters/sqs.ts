import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { JitrError, TransientError } from "../domain/errors.ts";
import type { JobQueue } from "../domain/jobs/ports.ts";
import { errorDetail, isTransientAwsError } from "./aws-errors.ts";

/** SQS errors worth another attempt besides 5xx, 429, `$retryable` and network failures. */
const TRANSIENT = new Set([
  "ThrottlingException",
  "RequestThrottled",
  "KmsThrottled",
  "ServiceUnavailable",
  "InternalError",
]);

/**
 * The jobs queue over SQS: a message `{"jobId": ...}` names a job for the worker (handlers/job-worker.ts)
 * to advance. A failed send is a TransientError when trying again may help, else a JitrError; the job record
 * is written before it is enqueued, so a lost message leaves a queued job that `jitr jobs` shows.
 */
export class SqsJobQueue implements JobQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(jobId: string): Promise<void> {
    try {
      await this.sqs.send(
        new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify({ jobId }) }),
      );
    } catch (error) {
      const message = `SQS SendMessage of job ${jobId} failed: ${errorDetail(error)}`;
      throw isTransientAwsError(error, TRANSIENT)
        ? new TransientError(message, { cause: error })
        : new JitrError(message, { cause: error });
    }
  }
}
