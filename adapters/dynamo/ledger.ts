import { randomBytes } from "node:crypto";
import { PutCommand, QueryCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import { ConflictError } from "../../domain/errors.ts";
import type { LedgerStore, Page, PageRequest } from "../../domain/ports.ts";
import type { LedgerEntry } from "../../domain/types.ts";
import { indexNames } from "../tables.ts";
import { DynamoTable, type Item, invalidRecord, pageInput, send, sendConditional, toPage } from "./table.ts";

/**
 * `${at}#${certificateId ?? "-"}#${suffix}`: sorted by time, and the random suffix (128 bits) keeps
 * entries of the same millisecond and certificate apart. Keys written before the suffix grew (6 hex,
 * or none) sort and read the same.
 */
export function ledgerSortKey(entry: Pick<LedgerEntry, "at" | "certificateId">, suffix?: string): string {
  return `${entry.at}#${entry.certificateId ?? "-"}#${suffix ?? randomBytes(16).toString("hex")}`;
}

/** A ledger entry as stored, with its sort key. */
type StoredLedgerEntry = LedgerEntry & { sk: string };

/** An entry as read back; it keeps its sort key beside the entry's fields. */
function toStoredLedgerEntry(item: Item, table: string): StoredLedgerEntry {
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
              Item: { ...entry, sk },
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
