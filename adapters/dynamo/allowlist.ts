import {
  DeleteCommand,
  GetCommand,
  type NativeAttributeValue,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { ConflictError } from "../../domain/errors.ts";
import type { AllowlistFilter, AllowlistStore, BindingClaim, Page, PageRequest } from "../../domain/ports.ts";
import { ALLOWLIST_FIELDS } from "../../domain/records.ts";
import type { AllowlistRecord } from "../../domain/types.ts";
import { indexNames } from "../tables.ts";
import { ADMIN_META_FIELDS, replaceExpression } from "./replace-expression.ts";
import { DynamoTable, type Item, invalidRecord, pageInput, send, sendConditional, toPage } from "./table.ts";

/** The fields an admin's update sets or removes (the binding fields stay the service's). */
const ADMIN_ALLOWLIST_FIELDS = [...ALLOWLIST_FIELDS.filter((f) => f !== "deviceId"), ...ADMIN_META_FIELDS];

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

/**
 * The allowlist table (key `deviceId`). The service writes only the binding fields
 * (certificateId, thingName, policyName, provisionedAt) and the lot place (`lotCounted`, written with the
 * lot's count by DynamoLots); `version`/`updatedAt` belong to admins.
 */
export class DynamoAllowlist extends DynamoTable implements AllowlistStore {
  /** The device's record, read consistently; undefined when there is none. */
  async get(deviceId: string): Promise<AllowlistRecord | undefined> {
    const output = await send("GetItem", this.#resource(deviceId), () =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: { deviceId }, ConsistentRead: true })),
    );
    return output.Item === undefined ? undefined : toAllowlistRecord(output.Item, this.table);
  }

  /**
   * Binds the certificate if the device is still bound to `expectedCertificateId` (or to nothing).
   * Claiming the certificate already expected is an idempotent retry: true, nothing written.
   */
  async claimBinding(claim: BindingClaim): Promise<boolean> {
    if (claim.certificateId === claim.expectedCertificateId) return true;
    const expected = claim.expectedCertificateId;
    return sendConditional("UpdateItem", this.#resource(claim.deviceId), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
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

  /**
   * Records what was provisioned; ConflictError when the binding is no longer this certificate's, when
   * the record was blocked meanwhile, or when `lot` is given and the record no longer holds that lot
   * place (or it is being given back).
   */
  async completeBinding(binding: {
    deviceId: string;
    certificateId: string;
    thingName: string;
    policyName?: string;
    provisionedAt: string;
    lot?: string;
  }): Promise<void> {
    const resource = this.#resource(binding.deviceId);
    const { lot } = binding;
    const written = await sendConditional("UpdateItem", resource, () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { deviceId: binding.deviceId },
          // Rights through thing groups alone leave no certificate policy to name.
          UpdateExpression:
            binding.policyName === undefined
              ? "SET thingName = :t, provisionedAt = :at REMOVE policyName"
              : "SET thingName = :t, policyName = :p, provisionedAt = :at",
          ConditionExpression:
            lot === undefined
              ? "certificateId = :c AND #status <> :blocked"
              : "certificateId = :c AND #status <> :blocked AND lotCounted = :lot AND attribute_not_exists(lotReleaseStartedAt)",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: {
            ":blocked": "blocked",
            ":t": binding.thingName,
            ...(binding.policyName === undefined ? {} : { ":p": binding.policyName }),
            ":at": binding.provisionedAt,
            ":c": binding.certificateId,
            ...(lot === undefined ? {} : { ":lot": lot }),
          },
        }),
      ),
    );
    if (!written) {
      throw new ConflictError(
        lot === undefined
          ? `${resource} is no longer bound to certificate ${binding.certificateId}, or was blocked; binding not completed`
          : `${resource} is no longer bound to certificate ${binding.certificateId} with its place in lot ${lot}, or was blocked; binding not completed`,
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
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
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
    if (filter.prefix !== undefined) {
      // deviceId is the sort key of both indexes: a condition on the key there, a filter on a scan
      const prefix = "begins_with(#deviceId, :prefix)";
      if (query)
        query = { ...query, KeyConditionExpression: `${query.KeyConditionExpression} AND ${prefix}` };
      else filters.push(prefix);
      names["#deviceId"] = "deviceId";
      values[":prefix"] = filter.prefix;
    }
    if (filter.profile !== undefined) {
      filters.push("#profile = :profile");
      names["#profile"] = "profile";
      values[":profile"] = filter.profile;
    }
    if (filter.bound === true) filters.push("attribute_exists(certificateId)");
    const input = {
      TableName: this.table,
      ...(filters.length > 0 ? { FilterExpression: filters.join(" AND ") } : {}),
      ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
      ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
      ...pageInput(page),
    };
    const output = await send(query ? "Query" : "Scan", `records in ${this.table}`, () =>
      this.doc.send(query ? new QueryCommand({ ...input, ...query }) : new ScanCommand(input)),
    );
    return toPage(output, (item) => toAllowlistRecord(item, this.table));
  }

  /** Several records by id, at most 100 per request; unprocessed keys are read again. */
  async getMany(deviceIds: string[]): Promise<AllowlistRecord[]> {
    const items = await this.batchGet([...new Set(deviceIds)].map((deviceId) => ({ deviceId })));
    return items.map((item) => toAllowlistRecord(item, this.table));
  }

  /** Writes a new record; false when the device has one already. */
  async create(record: AllowlistRecord): Promise<boolean> {
    return sendConditional("PutItem", this.#resource(record.deviceId), () =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
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
      lotCounted: _l,
      lotReleaseStartedAt: _r,
      deviceId,
      ...fields
    } = record;
    return sendConditional("UpdateItem", this.#resource(deviceId), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { deviceId },
          ...replaceExpression(fields, ADMIN_ALLOWLIST_FIELDS, expectedVersion),
          ConditionExpression: "attribute_exists(deviceId) AND #version = :expectedVersion",
        }),
      ),
    );
  }

  /** Deletes the record if its version and binding are still the expected ones and it holds no lot place. */
  async remove(
    deviceId: string,
    expected: { version: number; certificateId: string | undefined },
  ): Promise<boolean> {
    const bound = expected.certificateId;
    return sendConditional("DeleteItem", this.#resource(deviceId), () =>
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { deviceId },
          ConditionExpression:
            bound === undefined
              ? "version = :v AND attribute_not_exists(certificateId) AND attribute_not_exists(lotCounted)"
              : "version = :v AND certificateId = :c AND attribute_not_exists(lotCounted)",
          ExpressionAttributeValues:
            bound === undefined ? { ":v": expected.version } : { ":v": expected.version, ":c": bound },
        }),
      ),
    );
  }

  /**
   * Removes certificateId, thingName, policyName and provisionedAt if still bound to `certificateId`
   * and holding no lot place (given back first).
   */
  async unbind(deviceId: string, certificateId: string): Promise<boolean> {
    return sendConditional("UpdateItem", this.#resource(deviceId), () =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { deviceId },
          UpdateExpression: "REMOVE certificateId, thingName, policyName, provisionedAt",
          ConditionExpression: "certificateId = :c AND attribute_not_exists(lotCounted)",
          ExpressionAttributeValues: { ":c": certificateId },
        }),
      ),
    );
  }

  #resource(deviceId: string): string {
    return `device ${deviceId} in ${this.table}`;
  }
}
