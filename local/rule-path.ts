/**
 * The local rule path: registered events go through a queue with the deployed stack's buffering
 * (batches, a concurrency cap, retries with backoff via partial batch failures, a dead-letter list)
 * to the same provisioning handler module that is deployed.
 *
 * With a journal file, the queue outlives the process as SQS does a crashed poller's messages: each message
 * is journalled when enqueued and again when it leaves the queue (handled or dead-lettered); at start the
 * messages never acked are queued again, visible after the function timeout (a visibility timeout).
 */
import { randomUUID } from "node:crypto";
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";

export type LambdaHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface RulePathOptions {
  handler: LambdaHandler;
  /** Batches handled at once (the event source's MaximumConcurrency). */
  concurrency?: number;
  /** Messages per batch. */
  batchSize?: number;
  /** Deliveries before a message is dead-lettered (the queue's maxReceiveCount). */
  maxReceiveCount?: number;
  /** Delay before a failed message is visible again: base, doubled per receive, capped. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * The function timeout the handler is told of (its remaining time at the start of a batch; default 60 s).
   * The idempotency record of an invocation that crashed stays in progress this long, as on Lambda.
   */
  functionTimeoutMs?: number;
  region?: string;
  accountId?: string;
  /**
   * The journal that keeps messages until acked (JSON lines; created if missing); unacked ones found at
   * start are delivered again. Without it the queue lives in memory only.
   */
  journalFile?: string;
  onDeadLetter?: (message: QueuedMessage) => void;
  onError?: (error: unknown) => void;
}

export interface QueuedMessage {
  messageId: string;
  topic: string;
  body: string;
  receiveCount: number;
  visibleAt: number;
  firstSentAt: number;
}

export interface RulePathStats {
  enqueued: number;
  delivered: number;
  retried: number;
  deadLettered: number;
  /** Messages found unacked in the journal at start and queued again. */
  replayed: number;
  inFlight: number;
  waiting: number;
}

export interface RulePath {
  /** The topic rule action: hands an event to the queue. */
  enqueue(topic: string, event: unknown): void;
  readonly deadLetters: readonly QueuedMessage[];
  stats(): RulePathStats;
  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

const context = (region: string, accountId: string, timeoutMs: number): Context => ({
  callbackWaitsForEmptyEventLoop: false,
  functionName: "jitr-local-provision",
  functionVersion: "$LATEST",
  invokedFunctionArn: `arn:aws:lambda:${region}:${accountId}:function:jitr-local-provision`,
  memoryLimitInMB: "512",
  awsRequestId: randomUUID(),
  logGroupName: "/aws/lambda/jitr-local-provision",
  logStreamName: "local",
  getRemainingTimeInMillis: () => timeoutMs,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
});

/** Starts the queue and its consumers. */
export function createRulePath(options: RulePathOptions): RulePath {
  const concurrency = options.concurrency ?? 4;
  const batchSize = options.batchSize ?? 5;
  const maxReceiveCount = options.maxReceiveCount ?? 5;
  const retryBaseMs = options.retryBaseMs ?? 250;
  const retryMaxMs = options.retryMaxMs ?? 5_000;
  const functionTimeoutMs = options.functionTimeoutMs ?? 60_000;
  const region = options.region ?? "us-east-1";
  const accountId = options.accountId ?? "123456789012";
  const queue = new MessageQueue();
  const deadLetters: QueuedMessage[] = [];
  const counters = { enqueued: 0, delivered: 0, retried: 0, deadLettered: 0, replayed: 0 };
  const journal = options.journalFile === undefined ? undefined : openJournal(options.journalFile);
  let inFlight = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let pumpScheduled = false;
  let idleWaiters: (() => void)[] = [];

  const toRecord = (m: QueuedMessage): SQSRecord => ({
    messageId: m.messageId,
    receiptHandle: m.messageId,
    body: m.body,
    attributes: {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: String(m.firstSentAt),
      SenderId: "iot.amazonaws.com",
      ApproximateFirstReceiveTimestamp: String(m.firstSentAt),
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: `arn:aws:sqs:${region}:${accountId}:jitr-local-events`,
    awsRegion: region,
  });

  const settleIdle = () => {
    if (queue.size === 0 && inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  /** A failed message goes back hidden for its backoff, from `now` (one moment for a whole batch). */
  const fail = (message: QueuedMessage, now: number) => {
    if (message.receiveCount >= maxReceiveCount) {
      journal?.ack(message.messageId);
      counters.deadLettered += 1;
      deadLetters.push(message);
      options.onDeadLetter?.(message);
      return;
    }
    counters.retried += 1;
    const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** (message.receiveCount - 1));
    message.visibleAt = now + delay;
    queue.push(message, now);
  };

  const deliver = async (batch: QueuedMessage[]) => {
    inFlight += 1;
    for (const m of batch) m.receiveCount += 1;
    const event: SQSEvent = { Records: batch.map(toRecord) };
    let failedIds: Set<string>;
    try {
      const response = (await options.handler(event, context(region, accountId, functionTimeoutMs))) as
        | SQSBatchResponse
        | undefined;
      failedIds = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (error) {
      options.onError?.(error);
      failedIds = new Set(batch.map((m) => m.messageId));
    }
    // As SQS hides a batch's failed messages for the same timeout, they come back together.
    const failedAt = Date.now();
    for (const m of batch) {
      if (failedIds.has(m.messageId)) fail(m, failedAt);
      else {
        journal?.ack(m.messageId);
        counters.delivered += 1;
      }
    }
    inFlight -= 1;
    pump();
  };

  function pump(): void {
    if (closed) return;
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    const now = Date.now();
    while (inFlight < concurrency) {
      const visible = queue.take(now, batchSize);
      if (visible.length === 0) break;
      void deliver(visible);
    }
    const next = queue.nextVisibleAt();
    if (next !== undefined && inFlight < concurrency) timer = setTimeout(pump, Math.max(1, next - now));
    settleIdle();
  }

  if (journal !== undefined) {
    // As SQS shows a crashed poller's messages again only after their visibility timeout (which outlasts
    // the function timeout), replayed messages become visible once a killed run's in-progress
    // idempotency record has expired: delivered at once, the handler would take them for duplicates of a
    // live run and drain them.
    const now = Date.now();
    for (const m of journal.pending) queue.push({ ...m, visibleAt: now + functionTimeoutMs }, now);
    counters.replayed = journal.pending.length;
    if (queue.size > 0) queueMicrotask(pump);
  }

  return {
    enqueue(topic, event) {
      if (closed) return;
      counters.enqueued += 1;
      const now = Date.now();
      const message: QueuedMessage = {
        messageId: randomUUID(),
        topic,
        body: JSON.stringify(event),
        receiveCount: 0,
        visibleAt: now,
        firstSentAt: now,
      };
      journal?.put(message);
      queue.push(message, now);
      if (!pumpScheduled) {
        // One pump per burst of enqueues in the same tick, not one per message.
        pumpScheduled = true;
        queueMicrotask(() => {
          pumpScheduled = false;
          pump();
        });
      }
    },
    deadLetters,
    stats: () => ({ ...counters, inFlight, waiting: queue.size }),
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        settleIdle();
      }),
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      for (const w of idleWaiters) w();
      idleWaiters = [];
    },
  };
}

/**
 * The waiting messages: those visible now in a first-in first-out list, those hidden until later (retries,
 * replays) in a heap by the time they show. Taking a batch and finding the next visible time cost the
 * batch's size and a heap step, not a pass over every waiting message (tens of thousands in a burst).
 */
export class MessageQueue {
  #ready: QueuedMessage[] = [];
  #head = 0;
  readonly #hidden: QueuedMessage[] = [];

  get size(): number {
    return this.#ready.length - this.#head + this.#hidden.length;
  }

  /** Queues a message; it is hidden if it shows only after `now`. */
  push(message: QueuedMessage, now: number): void {
    if (message.visibleAt <= now) this.#ready.push(message);
    else this.#hide(message);
  }

  /** Up to `count` messages visible at `now`, the longest visible first; they leave the queue. */
  take(now: number, count: number): QueuedMessage[] {
    while (this.#hidden.length > 0 && this.#hiddenAt(0) <= now) this.#ready.push(this.#unhide());
    const end = Math.min(this.#ready.length, this.#head + count);
    const batch = this.#ready.slice(this.#head, end);
    this.#head = end;
    if (this.#head === this.#ready.length) {
      this.#ready = [];
      this.#head = 0;
    } else if (this.#head > 1_024 && this.#head * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /** When the next message shows (a time already past if one is visible); undefined when empty. */
  nextVisibleAt(): number | undefined {
    return this.#ready[this.#head]?.visibleAt ?? this.#hidden[0]?.visibleAt;
  }

  #hiddenAt(i: number): number {
    return (this.#hidden[i] as QueuedMessage).visibleAt;
  }

  #swap(i: number, j: number): void {
    const heap = this.#hidden;
    [heap[i], heap[j]] = [heap[j] as QueuedMessage, heap[i] as QueuedMessage];
  }

  #hide(message: QueuedMessage): void {
    this.#hidden.push(message);
    let i = this.#hidden.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#hiddenAt(parent) <= this.#hiddenAt(i)) break;
      this.#swap(parent, i);
      i = parent;
    }
  }

  #unhide(): QueuedMessage {
    const heap = this.#hidden;
    const top = heap[0] as QueuedMessage;
    const last = heap.pop() as QueuedMessage;
    if (heap.length === 0) return top;
    heap[0] = last;
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      let least = i;
      if (left < heap.length && this.#hiddenAt(left) < this.#hiddenAt(least)) least = left;
      if (left + 1 < heap.length && this.#hiddenAt(left + 1) < this.#hiddenAt(least)) least = left + 1;
      if (least === i) return top;
      this.#swap(least, i);
      i = least;
    }
  }
}

/** Journal lines: a message put in the queue, or the id of one that left it. */
type JournalLine = { put: QueuedMessage } | { ack: string };

/** Acks between rewrites of the journal down to the messages still unacked. */
const JOURNAL_COMPACT_AFTER = 5_000;

interface Journal {
  /** The messages found unacked at start, in the order they were put. */
  pending: QueuedMessage[];
  put(message: QueuedMessage): void;
  ack(messageId: string): void;
}

/**
 * Opens the journal: reads the unacked messages (a torn last line, from a process killed mid-write, is
 * ignored), rewrites the file with only those, then appends a line per put and per ack (written through to
 * the file at once, so a killed process loses none), rewriting it again every few thousand acks.
 */
function openJournal(file: string): Journal {
  const unacked = new Map<string, QueuedMessage>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      let entry: JournalLine;
      try {
        entry = JSON.parse(line) as JournalLine;
      } catch {
        continue;
      }
      if ("put" in entry) unacked.set(entry.put.messageId, entry.put);
      else unacked.delete(entry.ack);
    }
  }
  const pending = [...unacked.values()];
  const rewrite = () => {
    const temporary = `${file}.tmp`;
    writeFileSync(temporary, [...unacked.values()].map((m) => `${JSON.stringify({ put: m })}\n`).join(""), {
      mode: 0o600,
    });
    renameSync(temporary, file);
  };
  rewrite();
  let acks = 0;
  const append = (entry: JournalLine) => appendFileSync(file, `${JSON.stringify(entry)}\n`);
  return {
    pending,
    put(message) {
      unacked.set(message.messageId, message);
      append({ put: { ...message, receiveCount: 0 } });
    },
    ack(messageId) {
      if (!unacked.delete(messageId)) return;
      append({ ack: messageId });
      acks += 1;
      if (acks >= JOURNAL_COMPACT_AFTER) {
        acks = 0;
        rewrite();
      }
    },
  };
}
