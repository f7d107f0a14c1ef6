import { randomBytes } from "node:crypto";
import { PutCommand, QueryCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import { ConflictError } from "../../domain/errors.ts";
import type { LedgerStore, Page, PageRequest } from "../../domain/ports.ts";
import type { LedgerEntry } from "../../domain/types.ts";
import { indexNames } from "../tables.ts";
import { DynamoTable, type Item, invalidRecord, pageInput, send, sendConditional, toPage } from "./table.ts";

/** `${at}#${certificateId ?? "-"}#${suffix}`; the random suffix keeps same-millisecond entries apart. */
export function ledgerSortKey(entry: Pick<LedgerEntry, "at" | "certificateId">, suffix?: string): string {
  return `${entry.at}#${entry.certificateId ?? "-"}#${suffix ?? randomBytes(3).toString("hex")}`;
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

/** The ledger table (`deviceId` + `sk`, GSI `byCertificate`). Entries are only ever added. */
export class DynamoLedger extends DynamoTable implements LedgerStore {
  /** Adds the entry under a new sort key; never overwrites (a colliding key is drawn again). */
  async append(entry: LedgerEntry): Promise<void> {
    const resource = `ledger entry for device ${entry.deviceId} in ${this.table}`;
    for (let attempt = 1; attempt <= LEDGER_PUT_ATTEMPTS; attempt++) {
      const sk = ledgerSortKey(entry);
      const written = await sendConditional("PutItem", resource, () =>
        this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { ...entry, sk },
            ConditionExpression: "attribute_not_exists(sk)",
          }),
        ),
      );
      if (written) return;
    }
    throw new ConflictError(`${resource}: no free sort key after ${LEDGER_PUT_ATTEMPTS} attempts`);
  }

  /** Adds entries 25 at a time (BatchWriteItem), each under a new sort key; unprocessed ones are written again. */
  async appendMany(entries: LedgerEntry[]): Promise<void> {
    await this.batchPut(entries.map((entry) => ({ ...entry, sk: ledgerSortKey(entry) })));
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
