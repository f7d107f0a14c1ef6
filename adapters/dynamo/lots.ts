import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { OutcomeUnknownError, TransientError } from "../../domain/errors.ts";
import type { LotStore, Page, PageRequest } from "../../domain/ports.ts";
import type { Lot } from "../../domain/types.ts";
import { errorName } from "../aws-errors.ts";
import { ADMIN_META_FIELDS, replaceExpression } from "./replace-expression.ts";
import { DynamoTable, type Item, invalidRecord, pageInput, send, sendConditional, toPage } from "./table.ts";

/** The fields an admin's update sets or removes (`provisionedCount` stays the service's). */
const ADMIN_LOT_FIELDS = ["maxDevices", "notBefore", "notAfter", ...ADMIN_META_FIELDS];

function toLot(item: Item, table: string): Lot {
  const { lot, provisionedCount } = item;
  const what = `lot in ${table}`;
  if (typeof lot !== "string") throw invalidRecord(what, "lot is not a string");
  if (provisionedCount !== undefined && typeof provisionedCount !== "number") {
    throw invalidRecord(`${what} ${lot}`, "provisionedCount is not a number");
  }
  return { ...item, lot, provisionedCount: provisionedCount ?? 0 };
}

/** Errors that say a request was refused before anything was written. */
const NOT_APPLIED: ReadonlySet<string> = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
]);

/**
 * Sends one conditional increment of a count. A transient error that may have left the count changed
 * (5xx, a lost response) becomes OutcomeUnknownError, so it is not repeated: a repeat could count twice.
 */
async function sendCount(operation: string, resource: string, run: () => Promise<unknown>): Promise<boolean> {
  try {
    return await sendConditional(operation, resource, run);
  } catch (error) {
    if (error instanceof TransientError && !NOT_APPLIED.has(errorName(error.cause))) {
      throw new OutcomeUnknownError(`${error.message} (the count may or may not have changed)`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** The lots table (key `lot`) with its provisioned-device counter. */
export class DynamoLots extends DynamoTable implements LotStore {
  /** The lot; a missing `provisionedCount` reads as 0. */
  async get(lot: string): Promise<Lot | undefined> {
    const output = await send("GetItem", this.#resource(lot), () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: { lot }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toLot(output.Item, this.table);
  }

  /**
   * Counts one more device when the lot exists and is under `maxDevices` (a missing count is 0,
   * so a lot with `maxDevices` 0 never admits one). False when the lot is full or does not exist;
   * OutcomeUnknownError when the write may or may not have been applied.
   */
  async reserve(lot: string): Promise<boolean> {
    return sendCount("UpdateItem", this.#resource(lot), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { lot },
          UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) + :one",
          ConditionExpression:
            "attribute_exists(lot) AND (attribute_not_exists(maxDevices) OR provisionedCount < maxDevices" +
            " OR (attribute_not_exists(provisionedCount) AND maxDevices > :zero))",
          ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
        }),
      ),
    );
  }

  /** Counts one more device whatever `maxDevices` says; nothing happens when the lot is gone. */
  async reserveBeyondQuota(lot: string): Promise<void> {
    await sendCount("UpdateItem", this.#resource(lot), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { lot },
          UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) + :one",
          ConditionExpression: "attribute_exists(lot)",
          ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
        }),
      ),
    );
  }

  /**
   * Gives back one place; nothing happens when the lot is gone. Not held at zero: a place given back
   * before its own count arrived (a release racing the run that counts it) is then counted back to
   * where it was.
   */
  async release(lot: string): Promise<void> {
    await sendConditional("UpdateItem", this.#resource(lot), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { lot },
          UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) - :one",
          ConditionExpression: "attribute_exists(lot)",
          ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
        }),
      ),
    );
  }

  /** Sets the count from a recount, if it is still the count the recount started from. */
  async recount(lot: string, count: number, expected: number): Promise<boolean> {
    return sendConditional("UpdateItem", this.#resource(lot), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { lot },
          UpdateExpression: "SET provisionedCount = :count",
          ConditionExpression:
            expected === 0
              ? "attribute_exists(lot) AND (attribute_not_exists(provisionedCount) OR provisionedCount = :expected)"
              : "provisionedCount = :expected",
          ExpressionAttributeValues: { ":count": count, ":expected": expected },
        }),
      ),
    );
  }

  /** A page of lots (scan order). */
  async list(page: PageRequest): Promise<Page<Lot>> {
    const output = await send("Scan", `lots in ${this.table}`, () =>
      this.doc.send(new ScanCommand({ TableName: this.table, ...pageInput(page) })),
    );
    return toPage(output, (item) => toLot(item, this.table));
  }

  /** Writes a new lot; false when it exists already. */
  async create(lot: Lot): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(lot.lot), () =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: lot,
          ConditionExpression: "attribute_not_exists(lot)",
        }),
      ),
    );
  }

  /**
   * Sets the admin fields (not `provisionedCount`) if the stored version is `expectedVersion`;
   * version 0 stands for a lot written without one.
   */
  async update(lot: Lot, expectedVersion: number): Promise<boolean> {
    const { lot: name, provisionedCount: _count, ...fields } = lot;
    const update = replaceExpression(
      fields,
      ADMIN_LOT_FIELDS,
      expectedVersion === 0 ? undefined : expectedVersion,
    );
    return sendConditional("UpdateItem", this.#resource(name), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { lot: name },
          ...update,
          ConditionExpression:
            expectedVersion === 0
              ? "attribute_exists(lot) AND attribute_not_exists(#version)"
              : "attribute_exists(lot) AND #version = :expectedVersion",
        }),
      ),
    );
  }

  /**
   * Deletes the lot if it is at `expectedVersion` (0: written without one) and counts no device, so a
   * place taken meanwhile keeps it; false otherwise.
   */
  async remove(lot: string, expectedVersion: number): Promise<boolean> {
    const version = expectedVersion === 0 ? "attribute_not_exists(#version)" : "#version = :expectedVersion";
    return sendConditional("DeleteItem", this.#resource(lot), () =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { lot },
          ConditionExpression: `${version} AND (attribute_not_exists(provisionedCount) OR provisionedCount = :zero)`,
          ExpressionAttributeNames: { "#version": "version" },
          ExpressionAttributeValues: {
            ":zero": 0,
            ...(expectedVersion === 0 ? {} : { ":expectedVersion": expectedVersion }),
          },
        }),
      ),
    );
  }

  #resource(lot: string): string {
    return `lot ${lot} in ${this.table}`;
  }
}
