import { QueueDoesNotExist, RequestThrottled, SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { SqsJobQueue } from "../../adapters/sqs.ts";
import { JitrError, TransientError } from "../../domain/errors.ts";

/** The jobs queue over SQS: what the admin function and the worker send to feed the worker. */
const client = new SQSClient({ region: "eu-west-1" });
const sqs = mockClient(client);
const QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/jitr-dev-jobs";
const queue = new SqsJobQueue(client, QUEUE_URL);

beforeEach(() => sqs.reset());

describe("SqsJobQueue", () => {
  it("sends one message naming the job, to the jobs queue, in the form the worker reads", async () => {
    // Prepare
    sqs.on(SendMessageCommand).resolves({ MessageId: "m-1" });

    // Act
    await queue.enqueue("0b6c0f6e-8d2a-4c59-9d2f-3d1f5f0a9e11");

    // Assess
    const calls = sqs.commandCalls(SendMessageCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.args[0].input).toEqual({
      QueueUrl: QUEUE_URL,
      MessageBody: JSON.stringify({ jobId: "0b6c0f6e-8d2a-4c59-9d2f-3d1f5f0a9e11" }),
    });
  });

  it("answers a TransientError when SQS throttles or fails, naming the job", async () => {
    // Prepare
    sqs
      .on(SendMessageCommand)
      .rejectsOnce(new RequestThrottled({ message: "slow down", $metadata: { httpStatusCode: 400 } }))
      .rejectsOnce(Object.assign(new Error("socket hang up"), { name: "Error" }))
      .rejectsOnce(
        Object.assign(new Error("We encountered an internal error"), {
          name: "InternalError",
          $metadata: { httpStatusCode: 500 },
        }),
      );

    // Act
    const failures = [
      await queue.enqueue("job-a").catch((e: unknown) => e),
      await queue.enqueue("job-b").catch((e: unknown) => e),
      await queue.enqueue("job-c").catch((e: unknown) => e),
    ];

    // Assess
    for (const failure of failures) expect(failure).toBeInstanceOf(TransientError);
    expect(String((failures[0] as Error).message)).toContain("job-a");
  });

  it("answers a plain JitrError (no retry) when the queue does not exist", async () => {
    // Prepare
    sqs
      .on(SendMessageCommand)
      .rejects(new QueueDoesNotExist({ message: "no queue", $metadata: { httpStatusCode: 400 } }));

    // Act
    const failure = await queue.enqueue("job-d").catch((e: unknown) => e);

    // Assess
    expect(failure).toBeInstanceOf(JitrError);
    expect(failure).not.toBeInstanceOf(TransientError);
    expect((failure as Error).message).toMatch(/SQS SendMessage of job job-d failed: QueueDoesNotExist/);
  });
});
