import {
  DeleteCommand,
  GetCommand,
  type NativeAttributeValue,
  PutCommand,
  ScanCommand,
  TransactWriteCommand,
  type TransactWriteCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { OutcomeUnknownError, TransientError } from "../../domain/errors.ts";
import type { LotMark, LotPlace, LotStore, Page, PageRequest, TakeOutcome } from "../../domain/ports.ts";
import type { Lot } from "../../domain/types.ts";
import { errorName, mapDynamoError } from "../aws-errors.ts";
import { ADMIN_META_FIELDS, replaceExpression } from "./replace-expression.ts";
import {
  DynamoTable,
  type DynamoTableOptions,
  type Item,
  invalidRecord,
  pageInput,
  send,
  sendConditional,
  toPage,
} from "./table.ts";

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

/** Errors that say a request was refused before anything was written (not an unknown outcome). */
const NOT_APPLIED: ReadonlySet<string> = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
]);

/** A failed condition, as a cancelled transaction names it. */
const CONDITION_FAILED = "ConditionalCheckFailed";
/** Transactions sent in all when cancelled by conflicts (or throttling) rather than by a condition. */
const TRANSACTION_ATTEMPTS = 5;
const TRANSACTION_BACKOFF_MS = 20;

/** The code of each item's cancellation reason, in item order ("None" for an item that was fine). */
function cancellationReasons(error: unknown): string[] {
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
  return Array.isArray(reasons) ? reasons.map((reason) => reason?.Code ?? "None") : [];
}

export interface DynamoLotsOptions extends DynamoTableOptions {
  /** The allowlist table, whose records hold the devices' lot places (`lotCounted`). */
  recordsTable: string;
}

/**
 * The lots table (key `lot`) with its provisioned-device counter, and the devices' places in it: a
 * place is the allowlist record's mark and the count, written together (see domain/lot-place.ts).
 */
export class DynamoLots extends DynamoTable implements LotStore {
  readonly #recordsTable: string;

  constructor(options: DynamoLotsOptions) {
    super(options);
    this.#recordsTable = options.recordsTable;
  }

  /** The lot; a missing `provisionedCount` reads as 0. */
  async get(lot: string): Promise<Lot | undefined> {
    const output = await send("GetItem", this.#resource(lot), () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: { lot }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toLot(output.Item, this.table);
  }

  /**
   * Takes a device's place: marks its record (bound to the certificate, holding no place) and counts one
   * more in the lot (which exists and is under `maxDevices`; a missing count is 0, so a lot with
   * `maxDevices` 0 never admits one), in one transaction. A transaction that conflicts with another
   * write of one of the two items is sent again a few times.
   */
  async takePlace(mark: LotMark): Promise<TakeOutcome> {
    const resource = `lot place of ${mark.deviceId} in ${this.#resource(mark.lot)}`;
    const reasons = await this.#transact(resource, () => [
      {
        Update: {
          TableName: this.#recordsTable,
          Key: { deviceId: mark.deviceId },
          UpdateExpression: "SET lotCounted = :lot",
          ConditionExpression: "certificateId = :c AND attribute_not_exists(lotCounted)",
          ExpressionAttributeValues: { ":lot": mark.lot, ":c": mark.certificateId },
        },
      },
      {
        Update: {
          TableName: this.table,
          Key: { lot: mark.lot },
          UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) + :one",
          ConditionExpression:
            "attribute_exists(lot) AND (attribute_not_exists(maxDevices) OR provisionedCount < maxDevices" +
            " OR (attribute_not_exists(provisionedCount) AND maxDevices > :zero))",
          ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
        },
      },
    ]);
    if (reasons === undefined) return "counted";
    return reasons[0] === CONDITION_FAILED ? "lost" : "full";
  }

  /**
   * Gives a device's place back: removes its record's mark (and a release claim left by an earlier
   * version) if the record is still as read, and counts one less in the lot, in one transaction; when the
   * lot is gone, removes the mark alone. False when the record is not as read.
   */
  async givePlaceBack(place: LotPlace): Promise<boolean> {
    const conditions = ["lotCounted = :lot"];
    const values: Record<string, NativeAttributeValue> = { ":lot": place.lot };
    if (place.boundTo === undefined) conditions.push("attribute_not_exists(certificateId)");
    else {
      conditions.push("certificateId = :b");
      values[":b"] = place.boundTo;
    }
    if (place.releaseClaim === undefined) conditions.push("attribute_not_exists(lotReleaseStartedAt)");
    else {
      conditions.push("lotReleaseStartedAt = :p");
      values[":p"] = place.releaseClaim;
    }
    const unmark = {
      TableName: this.#recordsTable,
      Key: { deviceId: place.deviceId },
      UpdateExpression: "REMOVE lotCounted, lotReleaseStartedAt",
      ConditionExpression: conditions.join(" AND "),
      ExpressionAttributeValues: values,
    };
    const resource = `lot place of ${place.deviceId} in ${this.#resource(place.lot)}`;
    const reasons = await this.#transact(resource, () => [
      { Update: unmark },
      {
        Update: {
          TableName: this.table,
          Key: { lot: place.lot },
          UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) - :one",
          ConditionExpression: "attribute_exists(lot)",
          ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
        },
      },
    ]);
    if (reasons === undefined) return true;
    if (reasons[0] === CONDITION_FAILED) return false;
    // The lot is gone: nothing to count down, the mark goes alone.
    return sendConditional("UpdateItem", resource, () => this.doc.send(new UpdateCommand(unmark)));
  }

  /**
   * Sends a transaction; undefined when applied, else the cancellation reason of each item (a condition
   * failed somewhere, nothing written). Conflicts with other writes are sent again, up to
   * TRANSACTION_ATTEMPTS in all; an error that may have left the transaction applied becomes
   * OutcomeUnknownError (the SDK's own retries reuse the request token, so DynamoDB applies it once).
   */
  async #transact(
    resource: string,
    items: () => NonNullable<TransactWriteCommandInput["TransactItems"]>,
  ): Promise<string[] | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems: items() }));
        return undefined;
      } catch (error) {
        if (errorName(error) !== "TransactionCanceledException") {
          const mapped = mapDynamoError(error, "TransactWriteItems", resource);
          if (mapped instanceof TransientError && !NOT_APPLIED.has(errorName(error))) {
            throw new OutcomeUnknownError(`${mapped.message} (the lot place may or may not have changed)`, {
              cause: error,
            });
          }
          throw mapped;
        }
        const reasons = cancellationReasons(error);
        if (reasons.includes(CONDITION_FAILED)) return reasons;
        if (attempt >= TRANSACTION_ATTEMPTS) {
          throw new TransientError(
            `DynamoDB TransactWriteItems was cancelled for ${resource} (${reasons.join(", ") || "no reason given"}) ${attempt} times; nothing was written`,
            { cause: error },
          );
        }
        await this.pause(TRANSACTION_BACKOFF_MS * 2 ** (attempt - 1) * (0.5 + Math.random() / 2));
      }
    }
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
