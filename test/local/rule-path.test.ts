import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { createRulePath } from "../../local/rule-path.ts";

const bodies = (event: unknown) =>
  (event as SQSEvent).Records.map((r) => JSON.parse(r.body) as { n: number });

describe("local rule path", () => {
  it("delivers events as SQS batches to the handler, never more batches at once than the cap", async () => {
    // Prepare
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    const path = createRulePath({
      concurrency: 2,
      batchSize: 3,
      handler: async (event) => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 20));
        seen.push(...bodies(event).map((b) => b.n));
        running -= 1;
        return { batchItemFailures: [] } satisfies SQSBatchResponse;
      },
    });
    // Act
    for (let n = 0; n < 20; n++) path.enqueue("$aws/events/certificates/registered/ca", { n });
    await path.idle();
    // Assess
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(peak).toBe(2);
    expect(path.stats()).toMatchObject({ enqueued: 20, delivered: 20, retried: 0, deadLettered: 0 });
    await path.close();
  });

  it("retries the records a batch reports as failed, with backoff, until they succeed", async () => {
    const attempts = new Map<number, number[]>();
    const path = createRulePath({
      retryBaseMs: 20,
      handler: async (event) => {
        const records = (event as SQSEvent).Records;
        const failures = records.flatMap((record) => {
          const { n } = JSON.parse(record.body) as { n: number };
          attempts.set(n, [...(attempts.get(n) ?? []), Date.now()]);
          // event 1 fails twice, then succeeds
          return n === 1 && (attempts.get(n)?.length ?? 0) <= 2 ? [{ itemIdentifier: record.messageId }] : [];
        });
        return { batchItemFailures: failures };
      },
    });
    path.enqueue("t", { n: 0 });
    path.enqueue("t", { n: 1 });
    await path.idle();
    expect(attempts.get(0)).toHaveLength(1);
    const times = attempts.get(1) ?? [];
    expect(times).toHaveLength(3);
    // the second retry waits about twice as long as the first
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(18);
    expect((times[2] ?? 0) - (times[1] ?? 0)).toBeGreaterThanOrEqual(38);
    expect(path.stats()).toMatchObject({ delivered: 2, retried: 2, deadLettered: 0 });
    await path.close();
  });

  it("dead-letters an event after maxReceiveCount deliveries, and a handler that throws fails the whole batch", async () => {
    const dead: string[] = [];
    let calls = 0;
    const path = createRulePath({
      maxReceiveCount: 3,
      retryBaseMs: 1,
      batchSize: 10,
      onDeadLetter: (message) => dead.push(message.body),
      handler: async () => {
        calls += 1;
        throw new Error("boom");
      },
    });
    path.enqueue("t", { n: 7 });
    path.enqueue("t", { n: 8 });
    await path.idle();
    expect(calls).toBe(3);
    expect(dead.map((b) => JSON.parse(b))).toEqual([{ n: 7 }, { n: 8 }]);
    expect(path.deadLetters).toHaveLength(2);
    expect(path.deadLetters[0]?.receiveCount).toBe(3);
    expect(path.stats()).toMatchObject({ delivered: 0, deadLettered: 2, waiting: 0, inFlight: 0 });
    await path.close();
  });
});
