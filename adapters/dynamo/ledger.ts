import { randomBytes } from "node:crypto";
import { PutCommand, QueryCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import { ConflictError, ValidationError } from "../../domain/errors.ts";
import type { LedgerFilter, LedgerStore, Page, PageRequest } from "../../domain/ports.ts";
import type { LedgerEntry } from "../../domain/types.ts";
import { indexNames, LEDGER_FEED_SHARDS } from "../tables.ts";
import { DynamoTable, type Item, invalidRecord, pageInput, send, sendConditional, toPage } from "./table.ts";

/**
 * `${at}#${certificateId ?? "-"}#${suffix}`: sorted by time, and the random suffix (128 bits) keeps
 * entries of the same millisecond and certificate apart. Keys written before the suffix grew (6 hex,
 * or none) sort and read the same.
 */
export function ledgerSortKey(entry: Pick<LedgerEntry, "at" | "certificateId">, suffix?: string): string {
  return `${entry.at}#${entry.certificateId ?? "-"}#${suffix ?? randomBytes(16).toString("hex")}`;
}

/** The fleet-wide index shard of an entry: `ledger#<first hex digit of the sort key's random suffix>`. */
export function ledgerFeedOf(sk: string): string {
  const digit = Number.parseInt(sk.slice(sk.lastIndexOf("#") + 1, sk.lastIndexOf("#") + 2), 16);
  return feedName(Number.isNaN(digit) ? 0 : digit % LEDGER_FEED_SHARDS);
}

const feedName = (shard: number): string => `ledger#${shard.toString(16)}`;

/** A ledger entry as stored, with its sort key. */
type StoredLedgerEntry = LedgerEntry & { sk: string };

/** An entry as read back; it keeps its sort key beside the entry's fields (not its index shard). */
function toStoredLedgerEntry(stored: Item, table: string): StoredLedgerEntry {
  const { feed: _feed, ...item } = stored;
  const { deviceId, sk, at, kind } = item;
  const what = `ledger entry in ${table}`;
  if (typeof deviceId !== "string" || typeof sk !== "string")
    throw invalidRecord(what, "key is not a string");
  if (typeof at !== "string") throw invalidRecord(what, "at is not a string");
  if (kind !== "provisioned" && kind !== "denied" && kind !== "failed" && kind !== "admin") {
    throw invalidRecord(what, "kind is unknown");
  }
  return { ...item, deviceId, sk, at, kind };
}

/** Attempts at a fresh sort key when one collides (practically never). */
const LEDGER_PUT_ATTEMPTS = 3;
/** Conditional puts in flight at once when many entries are added. */
const APPEND_CONCURRENCY = 8;

/**
 * The ledger table (`deviceId` + `sk`, GSI `byCertificate`). Entries are only ever added: every
 * write is a PutItem on a fresh key under `attribute_not_exists(sk)`, never an update, delete or
 * unconditional batch write, so no entry is ever overwritten.
 */
export class DynamoLedger extends DynamoTable implements LedgerStore {
  /** Keys of entries whose last put failed without an answer: it may have landed. */
  readonly #unanswered = new WeakMap<LedgerEntry, string>();

  /**
   * Adds the entry under a new sort key; never overwrites (a colliding key is drawn again). Adding
   * the same entry object again after a put failed without an answer reuses its key, so a retry
   * finds the entry already written instead of adding it twice.
   */
  async append(entry: LedgerEntry): Promise<void> {
    const resource = `ledger entry for device ${entry.deviceId} in ${this.table}`;
    const earlier = this.#unanswered.get(entry);
    let sk = earlier ?? ledgerSortKey(entry);
    for (let attempt = 1; attempt <= LEDGER_PUT_ATTEMPTS; attempt++) {
      let written: boolean;
      try {
        written = await sendConditional("PutItem", resource, () =>
          this.doc.send(
            new PutCommand({
              TableName: this.table,
              Item: { ...entry, sk, feed: ledgerFeedOf(sk) },
              ConditionExpression: "attribute_not_exists(sk)",
            }),
          ),
        );
      } catch (error) {
        this.#unanswered.set(entry, sk);
        throw error;
      }
      if (written || sk === earlier) {
        this.#unanswered.delete(entry);
        return;
      }
      sk = ledgerSortKey(entry);
    }
    this.#unanswered.delete(entry);
    throw new ConflictError(`${resource}: no free sort key after ${LEDGER_PUT_ATTEMPTS} attempts`);
  }

  /** Adds entries as {@link append} does, a few at a time; the first failure is thrown once all have been tried. */
  async appendMany(entries: LedgerEntry[]): Promise<void> {
    const queue = [...entries];
    const failures: unknown[] = [];
    await Promise.all(
      Array.from({ length: Math.min(APPEND_CONCURRENCY, queue.length) }, async () => {
        for (let entry = queue.shift(); entry !== undefined; entry = queue.shift()) {
          await this.append(entry).catch((error: unknown) => failures.push(error));
        }
      }),
    );
    if (failures.length > 0) throw failures[0];
  }

  /** A device's entries as a page, newest first. */
  async history(deviceId: string, page: PageRequest): Promise<Page<LedgerEntry>> {
    return this.#query(`device ${deviceId}`, page, {
      KeyConditionExpression: "deviceId = :d",
      ExpressionAttributeValues: { ":d": deviceId },
    });
  }

  /** A certificate's entries as a page (through the `byCertificate` index), newest first. */
  async historyOfCertificate(certificateId: string, page: PageRequest): Promise<Page<LedgerEntry>> {
    return this.#query(`certificate ${certificateId}`, page, {
      IndexName: indexNames.ledgerByCertificate,
      KeyConditionExpression: "certificateId = :c",
      ExpressionAttributeValues: { ":c": certificateId },
    });
  }

  /** Whether the certificate's `provisioned` or `denied` entry is recorded (through the `byCertificate` index). */
  async hasTerminalOutcome(certificateId: string): Promise<boolean> {
    let cursor: string | undefined;
    do {
      const page = await this.#query(`certificate ${certificateId}`, cursor === undefined ? {} : { cursor }, {
        IndexName: indexNames.ledgerByCertificate,
        KeyConditionExpression: "certificateId = :c",
        ExpressionAttributeValues: { ":c": certificateId },
      });
      if (page.items.some((e) => e.kind === "provisioned" || e.kind === "denied")) return true;
      cursor = page.cursor;
    } while (cursor !== undefined);
    return false;
  }

  /**
   * Every device's entries matching the filter, newest first, through the `byTime` index: one query per
   * shard, merged by sort key. A page holds at most `limit` entries, fewer when the filter is selective
   * (its cursor then goes on); the cursor is valid with the same filter only.
   */
  async fleet(filter: LedgerFilter, page: PageRequest): Promise<Page<LedgerEntry>> {
    const limit = Math.min(Math.max(1, page.limit ?? 100), 1000);
    const perQuery = Math.max(10, Math.ceil((limit * 2) / LEDGER_FEED_SHARDS));
    const shards: FeedShard[] = decodeFeedCursor(page.cursor).map((resume, shard) => ({
      shard,
      resume,
      buffer: [],
      afterBuffer: "done",
    }));
    const condition = fleetCondition(filter);
    const items: StoredLedgerEntry[] = [];
    let queries = 0;
    while (items.length < limit) {
      const hungry = shards.filter((s) => s.buffer.length === 0 && s.resume !== "done");
      if (hungry.length > 0) {
        // An entry is given out only once every shard that may hold a newer one has been read.
        if (queries + hungry.length > FLEET_QUERY_BUDGET) break;
        queries += hungry.length;
        await Promise.all(hungry.map((s) => this.#fill(s, condition, perQuery)));
        continue;
      }
      let newest: FeedShard | undefined;
      for (const s of shards) {
        const head = s.buffer[0];
        if (head !== undefined && (newest?.buffer[0]?.sk ?? "") < head.sk) newest = s;
      }
      const entry = newest?.buffer.shift();
      if (newest === undefined || entry === undefined) break;
      newest.resume = newest.buffer.length > 0 ? [entry.deviceId, entry.sk] : newest.afterBuffer;
      items.push(entry);
    }
    const finished = shards.every((s) => s.resume === "done" && s.buffer.length === 0);
    return finished ? { items } : { items, cursor: encodeFeedCursor(shards.map((s) => s.resume)) };
  }

  /** Reads the next entries of one shard into its buffer (none, when the filter left none of them). */
  async #fill(shard: FeedShard, condition: FleetCondition, limit: number): Promise<void> {
    const feed = feedName(shard.shard);
    const start = shard.resume;
    const output = await send("Query", `fleet-wide ledger (${feed}) in ${this.table}`, () =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: indexNames.ledgerByTime,
          KeyConditionExpression: `feed = :feed${condition.since ? " AND sk >= :since" : ""}`,
          ...(condition.filter ? { FilterExpression: condition.filter } : {}),
          ...(Object.keys(condition.names).length > 0 ? { ExpressionAttributeNames: condition.names } : {}),
          ExpressionAttributeValues: { ":feed": feed, ...condition.values },
          ScanIndexForward: false,
          Limit: limit,
          ...(Array.isArray(start) ? { ExclusiveStartKey: { feed, deviceId: start[0], sk: start[1] } } : {}),
        }),
      ),
    );
    const last = output.LastEvaluatedKey;
    const next: FeedPosition =
      last !== undefined && typeof last.deviceId === "string" && typeof last.sk === "string"
        ? [last.deviceId, last.sk]
        : "done";
    const items = (output.Items ?? []).map((item) => toStoredLedgerEntry(item, this.table));
    if (items.length === 0) shard.resume = next;
    else {
      shard.buffer = items;
      shard.afterBuffer = next;
    }
  }

  async #query(
    subject: string,
    page: PageRequest,
    condition: Pick<QueryCommandInput, "IndexName" | "KeyConditionExpression" | "ExpressionAttributeValues">,
  ): Promise<Page<LedgerEntry>> {
    const paging = pageInput(page);
    const output = await send("Query", `ledger of ${subject} in ${this.table}`, () =>
      this.doc.send(
        new QueryCommand({ TableName: this.table, ...condition, ScanIndexForward: false, ...paging }),
      ),
    );
    return toPage(output, (item) => toStoredLedgerEntry(item, this.table));
  }
}

/** Queries one fleet-wide page may send before it answers with what it has (and a cursor). */
const FLEET_QUERY_BUDGET = LEDGER_FEED_SHARDS * 6;

/**
 * Where a shard's reading goes on: `"start"` (its newest entry), after an entry (`[deviceId, sk]`, the
 * base table's key, which with `feed` is the index's start key), or `"done"`.
 */
type FeedPosition = "start" | "done" | [string, string];

/** One shard while a page is read: where it goes on, entries read and not yet given out, where after them. */
interface FeedShard {
  shard: number;
  resume: FeedPosition;
  buffer: StoredLedgerEntry[];
  afterBuffer: FeedPosition;
}

/** The key condition and filter of a fleet-wide query. */
interface FleetCondition {
  since: boolean;
  filter: string | undefined;
  names: Record<string, string>;
  values: Record<string, string>;
}

function fleetCondition(filter: LedgerFilter): FleetCondition {
  const names: Record<string, string> = {};
  const values: Record<string, string> = {};
  const clauses: string[] = [];
  const fields = [
    ["kind", filter.kind],
    ["reason", filter.reason],
    ["lot", filter.lot],
    ["certificateStatus", filter.certificateStatus],
  ] as const;
  for (const [field, value] of fields) {
    if (value === undefined) continue;
    names[`#${field}`] = field;
    values[`:${field}`] = value;
    clauses.push(`#${field} = :${field}`);
  }
  if (filter.since !== undefined) values[":since"] = filter.since;
  return {
    since: filter.since !== undefined,
    filter: clauses.length > 0 ? clauses.join(" AND ") : undefined,
    names,
    values,
  };
}

const notAFeedCursor = (): ValidationError =>
  new ValidationError("invalid cursor", [
    { path: "cursor", message: "not a cursor of the fleet-wide ledger" },
  ]);

/** A cursor: base64url of the JSON array of every shard's position. */
function encodeFeedCursor(positions: FeedPosition[]): string {
  return Buffer.from(JSON.stringify(positions), "utf8").toString("base64url");
}

/** Every shard's position in a cursor (each at its start without one); ValidationError when it is not one. */
function decodeFeedCursor(cursor: string | undefined): FeedPosition[] {
  if (cursor === undefined) return Array.from({ length: LEDGER_FEED_SHARDS }, () => "start");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw notAFeedCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== LEDGER_FEED_SHARDS) throw notAFeedCursor();
  return parsed.map((position: unknown): FeedPosition => {
    if (position === "start" || position === "done") return position;
    if (
      Array.isArray(position) &&
      position.length === 2 &&
      typeof position[0] === "string" &&
      typeof position[1] === "string"
    ) {
      return [position[0], position[1]];
    }
    throw notAFeedCursor();
  });
}
