import { randomBytes } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  type NativeAttributeValue,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { ConflictError, TransientError, ValidationError } from "../domain/errors.ts";
import {
  type AllowlistFilter,
  type AllowlistStore,
  type BindingClaim,
  type ClockPort,
  type LedgerStore,
  type LotStore,
  type MappingStore,
  type Page,
  type PageRequest,
  systemClock,
} from "../domain/ports.ts";
import { ALLOWLIST_FIELDS } from "../domain/records.ts";
import type { AllowlistRecord, LedgerEntry, Lot, PolicyMapping } from "../domain/types.ts";
import { errorName, mapDynamoError } from "./aws-errors.ts";
import { indexNames } from "./tables.ts";

export { mapDynamoError } from "./aws-errors.ts";

type Item = Record<string, NativeAttributeValue>;

/** A document client that drops `undefined` values instead of failing on them. */
export function createDocumentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
}

const isConditionFailure = (error: unknown): boolean =>
  errorName(error) === "ConditionalCheckFailedException";

/** Sends one command, mapping its errors with {@link mapDynamoError}. */
async function send<T>(operation: string, resource: string, run: () => Promise<T>): Promise<T> {
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
async function sendConditional(
  operation: string,
  resource: string,
  run: () => Promise<unknown>,
): Promise<boolean> {
  try {
    await run();
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw mapDynamoError(error, operation, resource);
  }
}

const invalidRecord = (what: string, problem: string): ValidationError =>
  new ValidationError(`${what} is malformed: ${problem}`, [{ path: "", message: problem }]);

function toAllowlistRecord(item: Item, table: string): AllowlistRecord {
  const { deviceId, status, version } = item;
  const what = `allowlist record in ${table}`;
  if (typeof deviceId !== "string") throw invalidRecord(what, "deviceId is not a string");
  if (status !== "allowed" && status !== "blocked") {
    throw invalidRecord(`${what} ${deviceId}`, "status is neither allowed nor blocked");
  }
  if (typeof version !== "number") throw invalidRecord(`${what} ${deviceId}`, "version is not a number");
  return { ...item, deviceId, status, version };
}

function toPolicyMapping(item: Item, table: string): PolicyMapping {
  const { selector, version } = item;
  const what = `policy mapping in ${table}`;
  if (typeof selector !== "string") throw invalidRecord(what, "selector is not a string");
  if (typeof version !== "number") throw invalidRecord(`${what} ${selector}`, "version is not a number");
  return { ...item, selector, version };
}

function toLot(item: Item, table: string): Lot {
  const { lot, provisionedCount } = item;
  const what = `lot in ${table}`;
  if (typeof lot !== "string") throw invalidRecord(what, "lot is not a string");
  if (provisionedCount !== undefined && typeof provisionedCount !== "number") {
    throw invalidRecord(`${what} ${lot}`, "provisionedCount is not a number");
  }
  return { ...item, lot, provisionedCount: provisionedCount ?? 0 };
}

/**
 * The allowlist table (key `deviceId`). The service writes only the binding fields
 * (certificateId, thingName, policyName, provisionedAt); `version`/`updatedAt` belong to admins.
 */
export class DynamoAllowlist implements AllowlistStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, tableName: string) {
    this.#doc = doc;
    this.#table = tableName;
  }

  async get(deviceId: string): Promise<AllowlistRecord | undefined> {
    const output = await send("GetItem", this.#resource(deviceId), () =>
      this.#doc.send(new GetCommand({ TableName: this.#table, Key: { deviceId }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toAllowlistRecord(output.Item, this.#table);
  }

  /**
   * Binds the certificate if the device is still bound to `expectedCertificateId` (or to nothing).
   * Claiming the certificate already expected is an idempotent retry: true, nothing written.
   */
  async claimBinding(claim: BindingClaim): Promise<boolean> {
    if (claim.certificateId === claim.expectedCertificateId) return true;
    const expected = claim.expectedCertificateId;
    return sendConditional("UpdateItem", this.#resource(claim.deviceId), () =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { deviceId: claim.deviceId },
          UpdateExpression: "SET certificateId = :c",
          ConditionExpression:
            expected === undefined
              ? "attribute_exists(deviceId) AND attribute_not_exists(certificateId)"
              : "attribute_exists(deviceId) AND certificateId = :expected",
          ExpressionAttributeValues:
            expected === undefined
              ? { ":c": claim.certificateId }
              : { ":c": claim.certificateId, ":expected": expected },
        }),
      ),
    );
  }

  /** Records what was provisioned; ConflictError when the binding is no longer this certificate's. */
  async completeBinding(binding: {
    deviceId: string;
    certificateId: string;
    thingName: string;
    policyName: string;
    provisionedAt: string;
  }): Promise<void> {
    const resource = this.#resource(binding.deviceId);
    const written = await sendConditional("UpdateItem", resource, () =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { deviceId: binding.deviceId },
          UpdateExpression: "SET thingName = :t, policyName = :p, provisionedAt = :at",
          ConditionExpression: "certificateId = :c",
          ExpressionAttributeValues: {
            ":t": binding.thingName,
            ":p": binding.policyName,
            ":at": binding.provisionedAt,
            ":c": binding.certificateId,
          },
        }),
      ),
    );
    if (!written) {
      throw new ConflictError(
        `${resource} is no longer bound to certificate ${binding.certificateId}; binding not completed`,
      );
    }
  }

  /**
   * Restores `expectedCertificateId` (or removes the binding) if the device is still bound to the
   * claimed certificate; otherwise someone else has moved on and nothing is written.
   */
  async releaseBinding(claim: BindingClaim): Promise<void> {
    if (claim.certificateId === claim.expectedCertificateId) return;
    const expected = claim.expectedCertificateId;
    await sendConditional("UpdateItem", this.#resource(claim.deviceId), () =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { deviceId: claim.deviceId },
          UpdateExpression: expected === undefined ? "REMOVE certificateId" : "SET certificateId = :expected",
          ConditionExpression: "certificateId = :claimed",
          ExpressionAttributeValues:
            expected === undefined
              ? { ":claimed": claim.certificateId }
              : { ":claimed": claim.certificateId, ":expected": expected },
        }),
      ),
    );
  }

  /** A page of records: by status or lot through their indexes, otherwise a scan. */
  async list(filter: AllowlistFilter, page: PageRequest): Promise<Page<AllowlistRecord>> {
    const names: Record<string, string> = {};
    const values: Record<string, NativeAttributeValue> = {};
    const filters: string[] = [];
    let query: Pick<QueryCommandInput, "IndexName" | "KeyConditionExpression"> | undefined;
    if (filter.lot !== undefined) {
      query = { IndexName: indexNames.allowlistByLot, KeyConditionExpression: "#lot = :lot" };
      names["#lot"] = "lot";
      values[":lot"] = filter.lot;
      if (filter.status !== undefined) filters.push("#status = :status");
    } else if (filter.status !== undefined) {
      query = { IndexName: indexNames.allowlistByStatus, KeyConditionExpression: "#status = :status" };
    }
    if (filter.status !== undefined) {
      names["#status"] = "status";
      values[":status"] = filter.status;
    }
    if (filter.bound === true) filters.push("attribute_exists(certificateId)");
    const input = {
      TableName: this.#table,
      ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
      ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
      ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
      ...pageInput(page),
    };
    const output = await send(query ? "Query" : "Scan", `records in ${this.#table}`, () =>
      this.#doc.send(query ? new QueryCommand({ ...input, ...query }) : new ScanCommand(input)),
    );
    return toPage(output, (item) => toAllowlistRecord(item, this.#table));
  }

  /** Several records by id, at most 100 per request; unprocessed keys are read again. */
  async getMany(deviceIds: string[]): Promise<AllowlistRecord[]> {
    const items = await batchGet(
      this.#doc,
      this.#table,
      [...new Set(deviceIds)].map((deviceId) => ({ deviceId })),
    );
    return items.map((item) => toAllowlistRecord(item, this.#table));
  }

  /** Writes a new record; false when the device has one already. */
  async create(record: AllowlistRecord): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(record.deviceId), () =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: record,
          ConditionExpression: "attribute_not_exists(deviceId)",
        }),
      ),
    );
  }

  /**
   * Sets the admin fields (removing the ones the record no longer has) if the stored version is
   * `expectedVersion`; the binding fields the service writes are left as they are.
   */
  async update(record: AllowlistRecord, expectedVersion: number): Promise<boolean> {
    const {
      certificateId: _c,
      thingName: _t,
      policyName: _p,
      provisionedAt: _a,
      deviceId,
      ...fields
    } = record;
    return sendConditional("UpdateItem", this.#resource(deviceId), () =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { deviceId },
          ...replaceExpression(fields, ADMIN_ALLOWLIST_FIELDS, expectedVersion),
          ConditionExpression: "attribute_exists(deviceId) AND #version = :expectedVersion",
        }),
      ),
    );
  }

  /** Deletes the record if its version and binding are still the expected ones. */
  async remove(
    deviceId: string,
    expected: { version: number; certificateId: string | undefined },
  ): Promise<boolean> {
    const bound = expected.certificateId;
    return sendConditional("DeleteItem", this.#resource(deviceId), () =>
      this.#doc.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { deviceId },
          ConditionExpression:
            bound === undefined
              ? "version = :v AND attribute_not_exists(certificateId)"
              : "version = :v AND certificateId = :c",
          ExpressionAttributeValues:
            bound === undefined ? { ":v": expected.version } : { ":v": expected.version, ":c": bound },
        }),
      ),
    );
  }

  /** Removes certificateId, thingName, policyName and provisionedAt if still bound to `certificateId`. */
  async unbind(deviceId: string, certificateId: string): Promise<boolean> {
    return sendConditional("UpdateItem", this.#resource(deviceId), () =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { deviceId },
          UpdateExpression: "REMOVE certificateId, thingName, policyName, provisionedAt",
          ConditionExpression: "certificateId = :c",
          ExpressionAttributeValues: { ":c": certificateId },
        }),
      ),
    );
  }

  #resource(deviceId: string): string {
    return `device ${deviceId} in ${this.#table}`;
  }
}

/** Retry settings for BatchGetItem's unprocessed keys. */
export interface BatchRetryOptions {
  /** Total attempts per chunk, the first included; default 5. */
  maxAttempts?: number;
  /** Delay before the first retry, doubled each time; default 25 ms. */
  baseDelayMs?: number;
  clock?: ClockPort;
}

/** BatchGetItem takes at most 100 keys per request. */
const BATCH_GET_LIMIT = 100;

/** The policy-mapping table (key `selector`). */
export class DynamoMappings implements MappingStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #maxAttempts: number;
  readonly #baseDelayMs: number;
  readonly #clock: ClockPort;

  constructor(doc: DynamoDBDocumentClient, tableName: string, options: BatchRetryOptions = {}) {
    this.#doc = doc;
    this.#table = tableName;
    this.#maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.#baseDelayMs = options.baseDelayMs ?? 25;
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * The mappings that exist among `selectors` (duplicates ignored), in no particular order.
   * Unprocessed keys are retried with exponential backoff; TransientError when some remain.
   */
  async getMany(selectors: string[]): Promise<PolicyMapping[]> {
    const unique = [...new Set(selectors)];
    const mappings: PolicyMapping[] = [];
    for (let start = 0; start < unique.length; start += BATCH_GET_LIMIT) {
      const chunk = unique.slice(start, start + BATCH_GET_LIMIT);
      for (const item of await this.#getChunk(chunk)) mappings.push(toPolicyMapping(item, this.#table));
    }
    return mappings;
  }

  /** One mapping, or undefined. */
  async get(selector: string): Promise<PolicyMapping | undefined> {
    const output = await send("GetItem", this.#resource(selector), () =>
      this.#doc.send(new GetCommand({ TableName: this.#table, Key: { selector }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toPolicyMapping(output.Item, this.#table);
  }

  /** A page of mappings (scan order). */
  async list(page: PageRequest): Promise<Page<PolicyMapping>> {
    const output = await send("Scan", `mappings in ${this.#table}`, () =>
      this.#doc.send(new ScanCommand({ TableName: this.#table, ...pageInput(page) })),
    );
    return toPage(output, (item) => toPolicyMapping(item, this.#table));
  }

  /** Writes a new mapping; false when the selector has one already. */
  async create(mapping: PolicyMapping): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(mapping.selector), () =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: mapping,
          ConditionExpression: "attribute_not_exists(selector)",
        }),
      ),
    );
  }

  /** Replaces the mapping if the stored version is `expectedVersion`. */
  async update(mapping: PolicyMapping, expectedVersion: number): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(mapping.selector), () =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
          Item: mapping,
          ConditionExpression: "version = :v",
          ExpressionAttributeValues: { ":v": expectedVersion },
        }),
      ),
    );
  }

  /** Deletes the mapping if the stored version is `expectedVersion`. */
  async remove(selector: string, expectedVersion: number): Promise<boolean> {
    return sendConditional("DeleteItem", this.#resource(selector), () =>
      this.#doc.send(
        new DeleteCommand({
          TableName: this.#table,
          Key: { selector },
          ConditionExpression: "version = :v",
          ExpressionAttributeValues: { ":v": expectedVersion },
        }),
      ),
    );
  }

  #resource(selector: string): string {
    return `mapping ${selector} in ${this.#table}`;
  }

  async #getChunk(selectors: string[]): Promise<Item[]> {
    const resource = `${selectors.length} selector(s) in ${this.#table}`;
    const items: Item[] = [];
    let keys: Item[] = selectors.map((selector) => ({ selector }));
    for (let attempt = 1; keys.length > 0; attempt++) {
      if (attempt > this.#maxAttempts) {
        throw new TransientError(
          `DynamoDB BatchGetItem left ${keys.length} key(s) unprocessed in ${this.#table} after ${this.#maxAttempts} attempts`,
        );
      }
      if (attempt > 1) await this.#clock.sleep(this.#baseDelayMs * 2 ** (attempt - 2));
      const requestKeys = keys;
      const output = await send("BatchGetItem", resource, () =>
        this.#doc.send(new BatchGetCommand({ RequestItems: { [this.#table]: { Keys: requestKeys } } })),
      );
      items.push(...(output.Responses?.[this.#table] ?? []));
      keys = output.UnprocessedKeys?.[this.#table]?.Keys ?? [];
    }
    return items;
  }
}

/** The lots table (key `lot`) with its provisioned-device counter. */
export class DynamoLots implements LotStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, tableName: string) {
    this.#doc = doc;
    this.#table = tableName;
  }

  /** The lot; a missing `provisionedCount` reads as 0. */
  async get(lot: string): Promise<Lot | undefined> {
    const output = await send("GetItem", this.#resource(lot), () =>
      this.#doc.send(new GetCommand({ TableName: this.#table, Key: { lot }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toLot(output.Item, this.#table);
  }

  /**
   * Counts one more device when the lot exists and is under `maxDevices` (a missing count is 0,
   * so a lot with `maxDevices` 0 never admits one). False when the lot is full or does not exist.
   */
  async reserve(lot: string): Promise<boolean> {
    return sendConditional("UpdateItem", this.#resource(lot), () =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
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

  /** Gives back one reservation; nothing happens when the count is already 0 or the lot is gone. */
  async release(lot: string): Promise<void> {
    await sendConditional("UpdateItem", this.#resource(lot), () =>
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
          Key: { lot },
          UpdateExpression: "SET provisionedCount = provisionedCount - :one",
          ConditionExpression: "provisionedCount > :zero",
          ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
        }),
      ),
    );
  }

  /** A page of lots (scan order). */
  async list(page: PageRequest): Promise<Page<Lot>> {
    const output = await send("Scan", `lots in ${this.#table}`, () =>
      this.#doc.send(new ScanCommand({ TableName: this.#table, ...pageInput(page) })),
    );
    return toPage(output, (item) => toLot(item, this.#table));
  }

  /** Writes a new lot; false when it exists already. */
  async create(lot: Lot): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(lot.lot), () =>
      this.#doc.send(
        new PutCommand({
          TableName: this.#table,
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
      this.#doc.send(
        new UpdateCommand({
          TableName: this.#table,
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

  #resource(lot: string): string {
    return `lot ${lot} in ${this.#table}`;
  }
}

/** A ledger entry as stored, with its sort key. */
export type StoredLedgerEntry = LedgerEntry & { sk: string };

/** One page of ledger entries, newest first; `cursor` is set when there are more. */
export interface LedgerPage {
  entries: StoredLedgerEntry[];
  cursor?: string;
}

export interface LedgerPageOptions {
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

/** `${at}#${certificateId ?? "-"}#${suffix}`; the random suffix keeps same-millisecond entries apart. */
export function ledgerSortKey(entry: Pick<LedgerEntry, "at" | "certificateId">, suffix?: string): string {
  return `${entry.at}#${entry.certificateId ?? "-"}#${suffix ?? randomBytes(3).toString("hex")}`;
}

/** Opaque page cursor: base64url of the LastEvaluatedKey JSON. */
export function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

/** The key inside a cursor; ValidationError when it is not one this adapter made. */
export function decodeCursor(cursor: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch (error) {
    throw new ValidationError("invalid cursor", [{ path: "cursor", message: "not a cursor" }], {
      cause: error,
    });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError("invalid cursor", [{ path: "cursor", message: "not a cursor" }]);
  }
  const key: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (typeof value !== "string") {
      throw new ValidationError("invalid cursor", [{ path: "cursor", message: "not a cursor" }]);
    }
    key[name] = value;
  }
  return key;
}

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
export class DynamoLedger implements LedgerStore {
  readonly #doc: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(doc: DynamoDBDocumentClient, tableName: string) {
    this.#doc = doc;
    this.#table = tableName;
  }

  /** Adds the entry under a new sort key; never overwrites (a colliding key is drawn again). */
  async append(entry: LedgerEntry): Promise<void> {
    const resource = `ledger entry for device ${entry.deviceId} in ${this.#table}`;
    for (let attempt = 1; attempt <= LEDGER_PUT_ATTEMPTS; attempt++) {
      const sk = ledgerSortKey(entry);
      const written = await sendConditional("PutItem", resource, () =>
        this.#doc.send(
          new PutCommand({
            TableName: this.#table,
            Item: { ...entry, sk },
            ConditionExpression: "attribute_not_exists(sk)",
          }),
        ),
      );
      if (written) return;
    }
    throw new ConflictError(`${resource}: no free sort key after ${LEDGER_PUT_ATTEMPTS} attempts`);
  }

  /** Adds entries 25 at a time (BatchWriteItem), retrying unprocessed ones with backoff. */
  async appendMany(entries: LedgerEntry[]): Promise<void> {
    for (let start = 0; start < entries.length; start += BATCH_WRITE_LIMIT) {
      let requests: { PutRequest: { Item: Item } }[] = entries
        .slice(start, start + BATCH_WRITE_LIMIT)
        .map((entry) => ({ PutRequest: { Item: { ...entry, sk: ledgerSortKey(entry) } } }));
      for (let attempt = 1; requests.length > 0; attempt++) {
        if (attempt > BATCH_WRITE_ATTEMPTS) {
          throw new TransientError(
            `DynamoDB BatchWriteItem left ${requests.length} ledger entries unwritten in ${this.#table}`,
          );
        }
        if (attempt > 1) await systemClock.sleep(25 * 2 ** (attempt - 2));
        const batch = requests;
        const output = await send("BatchWriteItem", `ledger entries in ${this.#table}`, () =>
          this.#doc.send(new BatchWriteCommand({ RequestItems: { [this.#table]: batch } })),
        );
        requests = (output.UnprocessedItems?.[this.#table] ?? []).flatMap((request) =>
          request.PutRequest?.Item === undefined ? [] : [{ PutRequest: { Item: request.PutRequest.Item } }],
        );
      }
    }
  }

  /** A device's entries as a page, newest first. */
  async history(deviceId: string, page: PageRequest): Promise<Page<LedgerEntry>> {
    const { entries, cursor } = await this.listForDevice(deviceId, page);
    return cursor === undefined ? { items: entries } : { items: entries, cursor };
  }

  /** A device's entries, newest first. */
  async listForDevice(deviceId: string, options: LedgerPageOptions = {}): Promise<LedgerPage> {
    return this.#query(`device ${deviceId}`, options, {
      KeyConditionExpression: "deviceId = :d",
      ExpressionAttributeValues: { ":d": deviceId },
    });
  }

  /** A certificate's entries (through the `byCertificate` index), newest first. */
  async listForCertificate(certificateId: string, options: LedgerPageOptions = {}): Promise<LedgerPage> {
    return this.#query(`certificate ${certificateId}`, options, {
      IndexName: indexNames.ledgerByCertificate,
      KeyConditionExpression: "certificateId = :c",
      ExpressionAttributeValues: { ":c": certificateId },
    });
  }

  async #query(
    subject: string,
    options: LedgerPageOptions,
    condition: Pick<QueryCommandInput, "IndexName" | "KeyConditionExpression" | "ExpressionAttributeValues">,
  ): Promise<LedgerPage> {
    const exclusiveStartKey = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const output = await send("Query", `ledger of ${subject} in ${this.#table}`, () =>
      this.#doc.send(
        new QueryCommand({
          TableName: this.#table,
          ...condition,
          ScanIndexForward: false,
          ...(options.limit === undefined ? {} : { Limit: options.limit }),
          ...(exclusiveStartKey === undefined ? {} : { ExclusiveStartKey: exclusiveStartKey }),
        }),
      ),
    );
    const entries = (output.Items ?? []).map((item) => toStoredLedgerEntry(item, this.#table));
    return output.LastEvaluatedKey === undefined
      ? { entries }
      : { entries, cursor: encodeCursor(output.LastEvaluatedKey) };
  }
}

/** BatchWriteItem takes at most 25 requests. */
const BATCH_WRITE_LIMIT = 25;
const BATCH_WRITE_ATTEMPTS = 6;

/** Fields an admin owns on an item, besides the key: what a replacing write sets or removes. */
const ADMIN_META_FIELDS = ["version", "createdAt", "updatedAt", "updatedBy"];
const ADMIN_ALLOWLIST_FIELDS = [...ALLOWLIST_FIELDS.filter((f) => f !== "deviceId"), ...ADMIN_META_FIELDS];
const ADMIN_LOT_FIELDS = ["maxDevices", "notBefore", "notAfter", ...ADMIN_META_FIELDS];

/**
 * An update that sets the given fields and removes the managed ones that are absent, so the item ends
 * as `fields` plus whatever the service owns. Binds `#version` for the caller's condition.
 */
function replaceExpression(
  fields: Record<string, unknown>,
  managed: string[],
  expectedVersion?: number,
): {
  UpdateExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues: Record<string, NativeAttributeValue>;
} {
  const names: Record<string, string> = { "#version": "version" };
  const values: Record<string, NativeAttributeValue> =
    expectedVersion === undefined ? {} : { ":expectedVersion": expectedVersion };
  const sets: string[] = [];
  const removes: string[] = [];
  managed.forEach((field, i) => {
    const value = fields[field];
    const name = field === "version" ? "#version" : `#f${i}`;
    names[name] = field;
    if (value === undefined) removes.push(name);
    else {
      values[`:f${i}`] = value;
      sets.push(`${name} = :f${i}`);
    }
  });
  return {
    UpdateExpression: [
      sets.length ? `SET ${sets.join(", ")}` : "",
      removes.length ? `REMOVE ${removes.join(", ")}` : "",
    ]
      .filter(Boolean)
      .join(" "),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
  };
}

/** Limit and start key of a page request; limits are clamped to 1..1000. */
function pageInput(page: PageRequest): Pick<ScanCommandInput, "Limit" | "ExclusiveStartKey"> {
  return {
    ...(page.limit === undefined ? {} : { Limit: Math.min(Math.max(1, page.limit), 1000) }),
    ...(page.cursor === undefined ? {} : { ExclusiveStartKey: decodeCursor(page.cursor) }),
  };
}

function toPage<T>(
  output: { Items?: Item[]; LastEvaluatedKey?: Record<string, NativeAttributeValue> },
  convert: (item: Item) => T,
): Page<T> {
  const items = (output.Items ?? []).map(convert);
  return output.LastEvaluatedKey === undefined
    ? { items }
    : { items, cursor: encodeCursor(output.LastEvaluatedKey) };
}

/** Reads keys 100 at a time, reading unprocessed keys again with backoff. */
async function batchGet(doc: DynamoDBDocumentClient, table: string, keys: Item[]): Promise<Item[]> {
  const items: Item[] = [];
  for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
    let pending = keys.slice(start, start + BATCH_GET_LIMIT);
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > BATCH_WRITE_ATTEMPTS) {
        throw new TransientError(
          `DynamoDB BatchGetItem left ${pending.length} key(s) unprocessed in ${table}`,
        );
      }
      if (attempt > 1) await systemClock.sleep(25 * 2 ** (attempt - 2));
      const request = pending;
      const output = await send("BatchGetItem", `${request.length} key(s) in ${table}`, () =>
        doc.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: request, ConsistentRead: true } } })),
      );
      items.push(...(output.Responses?.[table] ?? []));
      pending = output.UnprocessedKeys?.[table]?.Keys ?? [];
    }
  }
  return items;
}
