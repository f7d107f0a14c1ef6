import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ResourceNotFoundException,
  ThrottlingException,
} from "@aws-sdk/client-dynamodb";
import { BatchGetCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import {
  createDocumentClient,
  DynamoAllowlist,
  DynamoLedger,
  DynamoLots,
  DynamoMappings,
  decodeCursor,
  encodeCursor,
  ledgerSortKey,
  mapDynamoError,
} from "../../adapters/dynamo.ts";
import { ConflictError, JitrError, TransientError, ValidationError } from "../../domain/errors.ts";
import type { ClockPort } from "../../domain/ports.ts";
import type { LedgerEntry } from "../../domain/types.ts";

const doc = createDocumentClient(new DynamoDBClient({ region: "eu-west-1" }));
const ddb = mockClient(doc);

const conditionFailed = () =>
  new ConditionalCheckFailedException({ message: "The conditional request failed", $metadata: {} });

beforeEach(() => {
  ddb.reset();
});

/** What the promise rejected with (undefined when it resolved). */
async function thrownBy(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
}

describe("createDocumentClient", () => {
  it("removes undefined values when marshalling", () => {
    // Prepare
    const client = new DynamoDBClient({ region: "eu-west-1" });

    // Act
    const created = createDocumentClient(client);

    // Assess
    expect(created.config.translateConfig?.marshallOptions?.removeUndefinedValues).toBe(true);
  });
});

describe("DynamoAllowlist", () => {
  const allowlist = new DynamoAllowlist(doc, "allowlist");

  it("get reads consistently by deviceId", async () => {
    // Prepare
    ddb.on(GetCommand).resolves({ Item: { deviceId: "dev-1", status: "allowed", version: 3, lot: "L1" } });

    // Act
    const record = await allowlist.get("dev-1");

    // Assess
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(GetCommand, {
      TableName: "allowlist",
      Key: { deviceId: "dev-1" },
      ConsistentRead: true,
    });
    expect(record).toStrictEqual({ deviceId: "dev-1", status: "allowed", version: 3, lot: "L1" });
  });

  it("get returns undefined when there is no record", async () => {
    // Prepare
    ddb.on(GetCommand).resolves({});

    // Act
    const record = await allowlist.get("dev-1");

    // Assess
    expect(record).toBeUndefined();
  });

  it("get rejects a record without a valid status", async () => {
    // Prepare
    ddb.on(GetCommand).resolves({ Item: { deviceId: "dev-1", status: "maybe", version: 1 } });

    // Act
    const result = allowlist.get("dev-1");

    // Assess
    await expect(result).rejects.toBeInstanceOf(ValidationError);
  });

  it("claimBinding without a current binding requires none", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    const claimed = await allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c-new",
      expectedCertificateId: undefined,
    });

    // Assess
    expect(claimed).toBe(true);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "allowlist",
      Key: { deviceId: "dev-1" },
      UpdateExpression: "SET certificateId = :c",
      ConditionExpression: "attribute_exists(deviceId) AND attribute_not_exists(certificateId)",
      ExpressionAttributeValues: { ":c": "c-new" },
    });
  });

  it("claimBinding over a current binding requires that binding", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    const claimed = await allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c-new",
      expectedCertificateId: "c-old",
    });

    // Assess
    expect(claimed).toBe(true);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "allowlist",
      Key: { deviceId: "dev-1" },
      UpdateExpression: "SET certificateId = :c",
      ConditionExpression: "attribute_exists(deviceId) AND certificateId = :expected",
      ExpressionAttributeValues: { ":c": "c-new", ":expected": "c-old" },
    });
  });

  it("claimBinding returns false when another certificate won", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(conditionFailed());

    // Act
    const claimed = await allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c-new",
      expectedCertificateId: undefined,
    });

    // Assess
    expect(claimed).toBe(false);
  });

  it("claimBinding of the already bound certificate succeeds without writing", async () => {
    // Prepare
    ddb.onAnyCommand().rejects(new Error("must not be called"));

    // Act
    const claimed = await allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c-1",
      expectedCertificateId: "c-1",
    });

    // Assess
    expect(claimed).toBe(true);
    expect(ddb).not.toHaveReceivedAnyCommand();
  });

  it("claimBinding maps throttling to TransientError", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(new ThrottlingException({ message: "slow", $metadata: {} }));

    // Act
    const result = allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c",
      expectedCertificateId: undefined,
    });

    // Assess
    await expect(result).rejects.toBeInstanceOf(TransientError);
  });

  it("completeBinding writes the provisioned fields only while the claim holds", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    await allowlist.completeBinding({
      deviceId: "dev-1",
      certificateId: "c-1",
      thingName: "dev-1",
      policyName: "jitr-dev-1",
      provisionedAt: "2024-05-01T00:00:00.000Z",
    });

    // Assess
    const input = ddb.commandCalls(UpdateCommand)[0]?.args[0].input;
    expect(input).toStrictEqual({
      TableName: "allowlist",
      Key: { deviceId: "dev-1" },
      UpdateExpression: "SET thingName = :t, policyName = :p, provisionedAt = :at",
      ConditionExpression: "certificateId = :c",
      ExpressionAttributeValues: {
        ":t": "dev-1",
        ":p": "jitr-dev-1",
        ":at": "2024-05-01T00:00:00.000Z",
        ":c": "c-1",
      },
    });
    expect(input?.UpdateExpression).not.toMatch(/version|updatedAt/);
  });

  it("completeBinding throws ConflictError when the claim was lost", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(conditionFailed());

    // Act
    const thrown = await thrownBy(
      allowlist.completeBinding({
        deviceId: "dev-1",
        certificateId: "c-1",
        thingName: "dev-1",
        policyName: "p",
        provisionedAt: "2024-05-01T00:00:00.000Z",
      }),
    );

    // Assess
    expect(thrown).toBeInstanceOf(ConflictError);
  });

  it("releaseBinding restores the previous certificate while the claim holds", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    await allowlist.releaseBinding({
      deviceId: "dev-1",
      certificateId: "c-new",
      expectedCertificateId: "c-old",
    });

    // Assess
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "allowlist",
      Key: { deviceId: "dev-1" },
      UpdateExpression: "SET certificateId = :expected",
      ConditionExpression: "certificateId = :claimed",
      ExpressionAttributeValues: { ":claimed": "c-new", ":expected": "c-old" },
    });
  });

  it("releaseBinding removes the binding when there was none before", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    await allowlist.releaseBinding({
      deviceId: "dev-1",
      certificateId: "c-new",
      expectedCertificateId: undefined,
    });

    // Assess
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "allowlist",
      Key: { deviceId: "dev-1" },
      UpdateExpression: "REMOVE certificateId",
      ConditionExpression: "certificateId = :claimed",
      ExpressionAttributeValues: { ":claimed": "c-new" },
    });
  });

  it("releaseBinding ignores a binding someone else has moved on", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(conditionFailed());

    // Act
    const result = allowlist.releaseBinding({
      deviceId: "dev-1",
      certificateId: "c-new",
      expectedCertificateId: undefined,
    });

    // Assess
    await expect(result).resolves.toBeUndefined();
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 1);
  });

  it("releaseBinding still reports other failures", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(new InternalServerError({ message: "boom", $metadata: {} }));

    // Act
    const result = allowlist.releaseBinding({
      deviceId: "dev-1",
      certificateId: "c",
      expectedCertificateId: undefined,
    });

    // Assess
    await expect(result).rejects.toBeInstanceOf(TransientError);
  });
});

describe("DynamoMappings", () => {
  const noSleep: ClockPort & { sleeps: number[] } = {
    sleeps: [],
    now: () => new Date(0),
    sleep(ms) {
      this.sleeps.push(ms);
      return Promise.resolve();
    },
  };
  const mappings = new DynamoMappings(doc, "mappings", { clock: noSleep, maxAttempts: 3, baseDelayMs: 10 });

  beforeEach(() => {
    noSleep.sleeps = [];
  });

  it("getMany reads the selectors with one BatchGetItem", async () => {
    // Prepare
    ddb.on(BatchGetCommand).resolves({
      Responses: { mappings: [{ selector: "profile:a", version: 1, policy: { policyName: "p" } }] },
    });

    // Act
    const found = await mappings.getMany(["profile:a", "lot:L1", "profile:a"]);

    // Assess
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(BatchGetCommand, {
      RequestItems: { mappings: { Keys: [{ selector: "profile:a" }, { selector: "lot:L1" }] } },
    });
    expect(found).toStrictEqual([{ selector: "profile:a", version: 1, policy: { policyName: "p" } }]);
  });

  it("getMany sends nothing for no selectors", async () => {
    // Prepare
    ddb.onAnyCommand().rejects(new Error("must not be called"));

    // Act
    const found = await mappings.getMany([]);

    // Assess
    expect(found).toStrictEqual([]);
    expect(ddb).not.toHaveReceivedAnyCommand();
  });

  it("getMany retries unprocessed keys with backoff", async () => {
    // Prepare
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { mappings: [{ selector: "a", version: 1 }] },
        UnprocessedKeys: { mappings: { Keys: [{ selector: "b" }] } },
      })
      .resolvesOnce({
        Responses: { mappings: [] },
        UnprocessedKeys: { mappings: { Keys: [{ selector: "b" }] } },
      })
      .resolvesOnce({ Responses: { mappings: [{ selector: "b", version: 2 }] } });

    // Act
    const found = await mappings.getMany(["a", "b"]);

    // Assess
    expect(found).toHaveLength(2);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ selector: "a" }),
        expect.objectContaining({ selector: "b" }),
      ]),
    );
    expect(ddb).toHaveReceivedCommandTimes(BatchGetCommand, 3);
    expect(ddb).toHaveReceivedNthCommandWith(BatchGetCommand, 2, {
      RequestItems: { mappings: { Keys: [{ selector: "b" }] } },
    });
    expect(noSleep.sleeps).toStrictEqual([10, 20]);
  });

  it("getMany gives up with TransientError when keys stay unprocessed", async () => {
    // Prepare
    ddb.on(BatchGetCommand).resolves({ UnprocessedKeys: { mappings: { Keys: [{ selector: "b" }] } } });

    // Act
    const result = mappings.getMany(["b"]);

    // Assess
    await expect(result).rejects.toBeInstanceOf(TransientError);
    expect(ddb).toHaveReceivedCommandTimes(BatchGetCommand, 3);
  });

  it("getMany splits more than 100 selectors into several requests", async () => {
    // Prepare
    ddb.on(BatchGetCommand).resolves({ Responses: { mappings: [] } });
    const selectors = Array.from({ length: 150 }, (_, i) => `s${i}`);

    // Act
    await mappings.getMany(selectors);

    // Assess
    const sizes = ddb
      .commandCalls(BatchGetCommand)
      .map((call) => call.args[0].input.RequestItems?.mappings?.Keys?.length);
    expect(sizes).toStrictEqual([100, 50]);
  });

  it("getMany maps throttling to TransientError", async () => {
    // Prepare
    ddb
      .on(BatchGetCommand)
      .rejects(new ProvisionedThroughputExceededException({ message: "too much", $metadata: {} }));

    // Act
    const result = mappings.getMany(["a"]);

    // Assess
    await expect(result).rejects.toBeInstanceOf(TransientError);
  });
});

describe("DynamoLots", () => {
  const lots = new DynamoLots(doc, "lots");

  it("get defaults a missing provisionedCount to 0", async () => {
    // Prepare
    ddb.on(GetCommand).resolves({ Item: { lot: "L1", maxDevices: 10 } });

    // Act
    const lot = await lots.get("L1");

    // Assess
    expect(ddb).toHaveReceivedCommandWith(GetCommand, { TableName: "lots", Key: { lot: "L1" } });
    expect(lot).toStrictEqual({ lot: "L1", maxDevices: 10, provisionedCount: 0 });
  });

  it("reserve increments the count under the quota", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    const reserved = await lots.reserve("L1");

    // Assess
    expect(reserved).toBe(true);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "lots",
      Key: { lot: "L1" },
      UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) + :one",
      ConditionExpression:
        "attribute_exists(lot) AND (attribute_not_exists(maxDevices) OR provisionedCount < maxDevices" +
        " OR (attribute_not_exists(provisionedCount) AND maxDevices > :zero))",
      ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
    });
  });

  it("reserve returns false when the lot is full", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(conditionFailed());

    // Act
    const reserved = await lots.reserve("L1");

    // Assess
    expect(reserved).toBe(false);
  });

  it("release decrements only a positive count", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    await lots.release("L1");

    // Assess
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "lots",
      Key: { lot: "L1" },
      UpdateExpression: "SET provisionedCount = provisionedCount - :one",
      ConditionExpression: "provisionedCount > :zero",
      ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
    });
  });

  it("release at zero is not an error", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(conditionFailed());

    // Act
    const result = lots.release("L1");

    // Assess
    await expect(result).resolves.toBeUndefined();
  });
});

describe("DynamoLedger", () => {
  const ledger = new DynamoLedger(doc, "ledger");
  const entry: LedgerEntry = {
    deviceId: "dev-1",
    at: "2024-05-01T00:00:00.000Z",
    certificateId: "c-1",
    kind: "provisioned",
    policyName: "p",
  };

  it("ledgerSortKey joins time, certificate and suffix", () => {
    // Prepare
    const withoutCertificate = { at: entry.at };

    // Act
    const keys = [
      ledgerSortKey(entry, "abcdef"),
      ledgerSortKey(withoutCertificate, "012345"),
      ledgerSortKey(entry),
    ];

    // Assess
    expect(keys[0]).toBe("2024-05-01T00:00:00.000Z#c-1#abcdef");
    expect(keys[1]).toBe("2024-05-01T00:00:00.000Z#-#012345");
    expect(keys[2]).toMatch(/^2024-05-01T00:00:00\.000Z#c-1#[0-9a-f]{6}$/);
  });

  it("append puts the entry under a fresh sort key without overwriting", async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});

    // Act
    await ledger.append(entry);

    // Assess
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(PutCommand, {
      TableName: "ledger",
      Item: { ...entry, sk: expect.stringMatching(/^2024-05-01T00:00:00\.000Z#c-1#[0-9a-f]{6}$/) },
      ConditionExpression: "attribute_not_exists(sk)",
    });
  });

  it("append draws a new sort key when one collides", async () => {
    // Prepare
    ddb.on(PutCommand).rejectsOnce(conditionFailed()).resolves({});

    // Act
    await ledger.append(entry);

    // Assess
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 2);
  });

  it("append maps a missing table to JitrError (not transient)", async () => {
    // Prepare
    ddb.on(PutCommand).rejects(new ResourceNotFoundException({ message: "no table", $metadata: {} }));

    // Act
    const thrown = await thrownBy(ledger.append(entry));

    // Assess
    expect(thrown).toBeInstanceOf(JitrError);
    expect(thrown).not.toBeInstanceOf(TransientError);
    expect(thrown).toMatchObject({ message: expect.stringContaining("PutItem") });
  });

  it("listForDevice queries newest first and returns a cursor", async () => {
    // Prepare
    const stored = { ...entry, sk: "2024-05-01T00:00:00.000Z#c-1#abcdef" };
    const lastKey = { deviceId: "dev-1", sk: stored.sk };
    ddb.on(QueryCommand).resolves({ Items: [stored], LastEvaluatedKey: lastKey });

    // Act
    const page = await ledger.listForDevice("dev-1", { limit: 1 });

    // Assess
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "ledger",
      KeyConditionExpression: "deviceId = :d",
      ExpressionAttributeValues: { ":d": "dev-1" },
      ScanIndexForward: false,
      Limit: 1,
    });
    expect(page).toStrictEqual({ entries: [stored], cursor: encodeCursor(lastKey) });
  });

  it("listForDevice continues from a cursor", async () => {
    // Prepare
    ddb.on(QueryCommand).resolves({ Items: [] });
    const cursor = encodeCursor({ deviceId: "dev-1", sk: "x" });

    // Act
    const page = await ledger.listForDevice("dev-1", { cursor });

    // Assess
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, {
      ExclusiveStartKey: { deviceId: "dev-1", sk: "x" },
    });
    expect(page).toStrictEqual({ entries: [] });
  });

  it("listForDevice rejects a forged cursor without querying", async () => {
    // Prepare
    const cursor = Buffer.from("[1,2]").toString("base64url");

    // Act
    const result = ledger.listForDevice("dev-1", { cursor });

    // Assess
    await expect(result).rejects.toBeInstanceOf(ValidationError);
    expect(ddb).not.toHaveReceivedAnyCommand();
  });

  it("listForCertificate queries the byCertificate index", async () => {
    // Prepare
    ddb.on(QueryCommand).resolves({ Items: [] });

    // Act
    await ledger.listForCertificate("c-1");

    // Assess
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "ledger",
      IndexName: "byCertificate",
      KeyConditionExpression: "certificateId = :c",
      ExpressionAttributeValues: { ":c": "c-1" },
      ScanIndexForward: false,
    });
  });

  it("cursors round-trip", () => {
    // Prepare
    const key = { certificateId: "c-1", sk: "s", deviceId: "d" };

    // Act
    const decoded = decodeCursor(encodeCursor(key));

    // Assess
    expect(decoded).toStrictEqual(key);
  });
});

describe("mapDynamoError", () => {
  const meta = { $metadata: {} };
  it.each([
    {
      label: "ProvisionedThroughputExceededException",
      error: new ProvisionedThroughputExceededException({ message: "x", ...meta }),
      name: "TransientError",
    },
    {
      label: "ThrottlingException",
      error: new ThrottlingException({ message: "x", ...meta }),
      name: "TransientError",
    },
    {
      label: "InternalServerError",
      error: new InternalServerError({ message: "x", ...meta }),
      name: "TransientError",
    },
    {
      label: "RequestLimitExceeded",
      error: new RequestLimitExceeded({ message: "x", ...meta }),
      name: "TransientError",
    },
    {
      label: "HTTP 503",
      error: Object.assign(new Error("unavailable"), { name: "Unknown", $metadata: { httpStatusCode: 503 } }),
      name: "TransientError",
    },
    {
      label: "a network error",
      error: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
      name: "TransientError",
    },
    { label: "ConditionalCheckFailedException", error: conditionFailed(), name: "ConflictError" },
    {
      label: "ValidationException",
      error: Object.assign(new Error("bad expression"), {
        name: "ValidationException",
        $metadata: { httpStatusCode: 400 },
      }),
      name: "JitrError",
    },
  ])("$label becomes $name", ({ error, name }) => {
    // Prepare
    const operation = "UpdateItem";

    // Act
    const mapped = mapDynamoError(error, operation, "device dev-1 in allowlist");

    // Assess
    expect(mapped).toBeInstanceOf(JitrError);
    expect(mapped.name).toBe(name);
    expect(mapped.cause).toBe(error);
    expect(mapped.message).toContain("UpdateItem failed for device dev-1 in allowlist");
  });
});
