import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  DynamoDBDocumentClient,
  type NativeAttributeValue,
  type ScanCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { TransientError, ValidationError } from "../../domain/errors.ts";
import { type ClockPort, type Page, type PageRequest, systemClock } from "../../domain/ports.ts";
import { errorName, mapDynamoError } from "../aws-errors.ts";

/*
 * What the table stores share: the document client, error mapping, batch reads with
 * their retries of unprocessed items, and paging.
 */

/** An item as the document client reads and writes it. */
export type Item = Record<string, NativeAttributeValue>;

/** A document client that drops `undefined` values instead of failing on them. */
export function createDocumentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/** Sends one command, mapping its errors with {@link mapDynamoError}. */
export async function send<T>(operation: string, resource: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw mapDynamoError(error, operation, resource);
  }
}

/**
 * Sends one conditional write; true when written, false when the condition failed; other errors
 * mapped with {@link mapDynamoError}.
 */
export async function sendConditional(
  operation: string,
  resource: string,
  run: () => Promise<unknown>,
): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (error) {
    if (errorName(error) === "ConditionalCheckFailedException") return false;
    throw mapDynamoError(error, operation, resource);
  }
}

/** The ValidationError for an item that does not read as what its table holds. */
export const invalidRecord = (what: string, problem: string): ValidationError =>
  new ValidationError(`${what} is malformed: ${problem}`, [{ path: "", message: problem }]);

/** Retries of the items a batch request leaves unprocessed. */
export interface BatchRetry {
  /** Requests per chunk in all, the first included. */
  attempts: number;
  /** Delay before the first retry, doubled each time. */
  baseDelayMs: number;
}

export const defaultBatchRetry: BatchRetry = { attempts: 5, baseDelayMs: 25 };

/** What every table store is built from. */
export interface DynamoTableOptions {
  doc: DynamoDBDocumentClient;
  /** The table's physical name. */
  table: string;
  /** Paces the retries of unprocessed batch items; the system clock by default. */
  clock?: ClockPort;
  batchRetry?: BatchRetry;
}

/** BatchGetItem takes at most 100 keys per request. */
const BATCH_GET_LIMIT = 100;

/** A store over one table: its document client and name, and the batch reads every table makes alike. */
export abstract class DynamoTable {
  protected readonly doc: DynamoDBDocumentClient;
  protected readonly table: string;
  readonly #clock: ClockPort;
  readonly #batchRetry: BatchRetry;

  constructor(options: DynamoTableOptions) {
    this.doc = options.doc;
    this.table = options.table;
    this.#clock = options.clock ?? systemClock;
    const retry = options.batchRetry ?? defaultBatchRetry;
    this.#batchRetry = { attempts: Math.max(1, retry.attempts), baseDelayMs: retry.baseDelayMs };
  }

  /** Waits before sending a request again (the store's clock: tests do not wait). */
  protected pause(ms: number): Promise<void> {
    return this.#clock.sleep(ms);
  }

  /**
   * The items with the given keys (missing ones left out), read consistently 100 keys per request.
   * Unprocessed keys are read again with backoff; TransientError when some remain.
   */
  protected async batchGet(keys: Item[]): Promise<Item[]> {
    const items: Item[] = [];
    for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
      const chunk = keys.slice(start, start + BATCH_GET_LIMIT);
      await this.#untilProcessed(
        chunk,
        async (request) => {
          const output = await send("BatchGetItem", `${request.length} key(s) in ${this.table}`, () =>
            this.doc.send(
              new BatchGetCommand({
                RequestItems: { [this.table]: { Keys: request, ConsistentRead: true } },
              }),
            ),
          );
          items.push(...(output.Responses?.[this.table] ?? []));
          return output.UnprocessedKeys?.[this.table]?.Keys ?? [];
        },
        (left, attempts) =>
          `DynamoDB BatchGetItem left ${left} key(s) unprocessed in ${this.table} after ${attempts} attempts`,
      );
    }
    return items;
  }

  /** Sends `request` until it leaves nothing unprocessed, backing off between attempts. */
  async #untilProcessed<T>(
    first: T[],
    request: (pending: T[]) => Promise<T[]>,
    leftOver: (count: number, attempts: number) => string,
  ): Promise<void> {
    const { attempts, baseDelayMs } = this.#batchRetry;
    let pending = first;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > attempts) throw new TransientError(leftOver(pending.length, attempts));
      if (attempt > 1) await this.#clock.sleep(baseDelayMs * 2 ** (attempt - 2));
      pending = await request(pending);
    }
  }
}

/** Opaque page cursor: base64url of the LastEvaluatedKey JSON. */
export function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

const notACursor = (options?: ErrorOptions): ValidationError =>
  new ValidationError("invalid cursor", [{ path: "cursor", message: "not a cursor" }], options);

/** The key inside a cursor; ValidationError when it is not one these stores made. */
export function decodeCursor(cursor: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch (error) {
    throw notACursor({ cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw notACursor();
  const key: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== "string") throw notACursor();
    key[name] = value;
  }
  return key;
}

/** Limit and start key of a page request; limits are clamped to 1..1000. */
export function pageInput(page: PageRequest): Pick<ScanCommandInput, "Limit" | "ExclusiveStartKey"> {
  return {
    ...(page.limit === undefined ? {} : { Limit: Math.min(Math.max(1, page.limit), 1000) }),
    ...(page.cursor === undefined ? {} : { ExclusiveStartKey: decodeCursor(page.cursor) }),
  };
}

/** The page a Query or Scan returned, its items converted; a cursor when there are more. */
export function toPage<T>(
  output: { Items?: Item[]; LastEvaluatedKey?: Record<string, NativeAttributeValue> },
  convert: (item: Item) => T,
): Page<T> {
  const items = (output.Items ?? []).map(convert);
  return output.LastEvaluatedKey === undefined
    ? { items }
    : { items, cursor: encodeCursor(output.LastEvaluatedKey) };
}
