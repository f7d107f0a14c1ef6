import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { createRulePath, MessageQueue, type QueuedMessage } from "../../local/rule-path.ts";

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

describe("local rule path: durability across a killed process", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const journalFile = () => {
    const dir = mkdtempSync(join(tmpdir(), "jitr-rule-path-"));
    dirs.push(dir);
    return join(dir, "rule-path.journal");
  };
  const never = new Promise<never>(() => undefined);

  it("with a journal, the messages not acked when the process died are delivered again at start; acked ones are not", async () => {
    // Prepare: the first process handles n=0 and dies while n=1 is in flight and n=2 waits behind it
    const file = journalFile();
    const first = createRulePath({
      journalFile: file,
      concurrency: 1,
      batchSize: 1,
      handler: async (event) => {
        if (bodies(event)[0]?.n === 0) return { batchItemFailures: [] };
        return never; // killed mid-run
      },
    });
    for (const n of [0, 1, 2]) first.enqueue("t", { n });
    while (first.stats().delivered < 1) await new Promise((r) => setTimeout(r, 5));
    // a write torn by the kill
    appendFileSync(file, '{"put":{"messageId":"torn');
    // Act: a new process over the same journal (the first is abandoned, as a killed one is)
    const seen: number[] = [];
    const second = createRulePath({
      journalFile: file,
      functionTimeoutMs: 300,
      handler: async (event) => {
        seen.push(...bodies(event).map((b) => b.n));
        return { batchItemFailures: [] };
      },
    });
    await new Promise((r) => setTimeout(r, 50));
    const seenBeforeVisible = [...seen];
    await second.idle();
    // Assess: replayed once the killed run's in-progress record could have expired (the function timeout)
    expect(seenBeforeVisible).toEqual([]);
    expect(seen.sort()).toEqual([1, 2]);
    expect(second.stats()).toMatchObject({ replayed: 2, delivered: 2 });
    await second.close();
    // all acked: a third start replays nothing, and the journal was rewritten down to nothing pending
    const third = createRulePath({ journalFile: file, handler: async () => ({ batchItemFailures: [] }) });
    expect(third.stats()).toMatchObject({ replayed: 0, waiting: 0 });
    await third.close();
    expect(readFileSync(file, "utf8")).toBe("");
  });

  it("a dead-lettered message leaves the journal too", async () => {
    const file = journalFile();
    const first = createRulePath({
      journalFile: file,
      maxReceiveCount: 2,
      retryBaseMs: 1,
      handler: async () => {
        throw new Error("boom");
      },
    });
    first.enqueue("t", { n: 1 });
    await first.idle();
    expect(first.stats()).toMatchObject({ deadLettered: 1 });
    await first.close();
    const second = createRulePath({ journalFile: file, handler: async () => ({ batchItemFailures: [] }) });
    expect(second.stats()).toMatchObject({ replayed: 0 });
    await second.close();
  });

  it("without a journal the queue lives in memory only", async () => {
    const first = createRulePath({ handler: async () => never });
    first.enqueue("t", { n: 1 });
    const second = createRulePath({ handler: async () => ({ batchItemFailures: [] }) });
    expect(second.stats()).toMatchObject({ replayed: 0, waiting: 0 });
    await second.close();
  });
});

describe("the rule path's message queue", () => {
  const message = (n: number, visibleAt: number): QueuedMessage => ({
    messageId: `m${n}`,
    topic: "t",
    body: String(n),
    receiveCount: 0,
    visibleAt,
    firstSentAt: 0,
  });
  const ids = (batch: QueuedMessage[]) => batch.map((m) => m.messageId);

  it("hands visible messages out first in, first out, in batches of the size asked", () => {
    // Prepare
    const queue = new MessageQueue();
    const now = Date.now();
    for (let n = 0; n < 7; n++) queue.push(message(n, now - 1), now);
    // Act
    const first = queue.take(now, 3);
    const second = queue.take(now, 3);
    const third = queue.take(now, 3);
    // Assess
    expect([ids(first), ids(second), ids(third)]).toEqual([["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]);
    expect(queue.size).toBe(0);
    expect(queue.nextVisibleAt()).toBeUndefined();
  });

  it("keeps hidden messages back until their time, then shows them earliest first", () => {
    // Prepare
    const queue = new MessageQueue();
    const now = Date.now();
    queue.push(message(1, now + 3_000), now);
    queue.push(message(2, now + 1_000), now);
    queue.push(message(3, now + 2_000), now);
    queue.push(message(4, now - 1), now);
    // Act
    const atNow = queue.take(now, 10);
    const next = queue.nextVisibleAt();
    const later = queue.take(now + 2_500, 10);
    // Assess
    expect(ids(atNow)).toEqual(["m4"]);
    expect(next).toBe(now + 1_000);
    expect(ids(later)).toEqual(["m2", "m3"]);
    expect(queue.size).toBe(1);
    expect(queue.nextVisibleAt()).toBe(now + 3_000);
  });

  it("loses and repeats nothing over many messages taken a batch at a time, hidden ones among them", () => {
    // Prepare: 10,000 visible messages and 1,000 hidden at shuffled times
    const queue = new MessageQueue();
    const now = Date.now();
    for (let n = 0; n < 10_000; n++) queue.push(message(n, now - 1), now);
    const hiddenTimes = Array.from({ length: 1_000 }, (_, i) => now + 1 + ((i * 7_919) % 1_000));
    hiddenTimes.forEach((at, i) => {
      queue.push(message(10_000 + i, at), now);
    });
    // Act
    const visible: string[] = [];
    for (let batch = queue.take(now, 5); batch.length > 0; batch = queue.take(now, 5))
      visible.push(...ids(batch));
    const shown = queue.take(now + 2_000, 2_000);
    // Assess
    expect(visible).toEqual(Array.from({ length: 10_000 }, (_, n) => `m${n}`));
    expect(shown.map((m) => m.visibleAt)).toEqual([...hiddenTimes].sort((a, b) => a - b));
    expect(new Set(ids(shown)).size).toBe(1_000);
    expect(queue.size).toBe(0);
  });
});
