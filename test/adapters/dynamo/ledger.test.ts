import { ResourceNotFoundException } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoLedger, ledgerSortKey } from "../../../adapters/dynamo/ledger.ts";
import { decodeCursor, encodeCursor } from "../../../adapters/dynamo/table.ts";
import { JitrError, TransientError, ValidationError } from "../../../domain/errors.ts";
import type { ClockPort } from "../../../domain/ports.ts";
import type { LedgerEntry } from "../../../domain/types.ts";
import { conditionFailed, ddb, doc, thrownBy } from "./mock.ts";

beforeEach(() => {
  ddb.reset();
});

describe("DynamoLedger", () => {
  const ledger = new DynamoLedger({ doc, table: "ledger" });
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

  it("appendMany writes 25 entries per request, each under its own sort key", async () => {
    // Prepare
    ddb.on(BatchWriteCommand).resolves({});
    const entries = Array.from({ length: 30 }, (_, i) => ({ ...entry, deviceId: `dev-${i}` }));

    // Act
    await ledger.appendMany(entries);

    // Assess
    const requests = ddb
      .commandCalls(BatchWriteCommand)
      .map((call) => call.args[0].input.RequestItems?.ledger);
    expect(requests.map((request) => request?.length)).toStrictEqual([25, 5]);
    expect(requests[0]?.[0]).toStrictEqual({
      PutRequest: {
        Item: { ...entry, deviceId: "dev-0", sk: expect.stringMatching(/^2024-05-01T00:00:00\.000Z#c-1#/) },
      },
    });
  });

  it("appendMany writes unprocessed entries again, paced by the store's clock, then gives up", async () => {
    // Prepare
    const sleeps: number[] = [];
    const clock: ClockPort = {
      now: () => new Date(0),
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    };
    const paced = new DynamoLedger({
      doc,
      table: "ledger",
      clock,
      batchRetry: { attempts: 3, baseDelayMs: 10 },
    });
    const unprocessed = { PutRequest: { Item: { ...entry, sk: "s" } } };
    ddb.on(BatchWriteCommand).resolves({ UnprocessedItems: { ledger: [unprocessed] } });

    // Act
    const thrown = await thrownBy(paced.appendMany([entry]));

    // Assess
    expect(thrown).toBeInstanceOf(TransientError);
    expect(ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 3);
    expect(ddb).toHaveReceivedNthCommandWith(BatchWriteCommand, 2, {
      RequestItems: { ledger: [unprocessed] },
    });
    expect(sleeps).toStrictEqual([10, 20]);
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

  it("history queries newest first and returns a cursor", async () => {
    // Prepare
    const stored = { ...entry, sk: "2024-05-01T00:00:00.000Z#c-1#abcdef" };
    const lastKey = { deviceId: "dev-1", sk: stored.sk };
    ddb.on(QueryCommand).resolves({ Items: [stored], LastEvaluatedKey: lastKey });

    // Act
    const page = await ledger.history("dev-1", { limit: 1 });

    // Assess
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "ledger",
      KeyConditionExpression: "deviceId = :d",
      ExpressionAttributeValues: { ":d": "dev-1" },
      ScanIndexForward: false,
      Limit: 1,
    });
    expect(page).toStrictEqual({ items: [stored], cursor: encodeCursor(lastKey) });
  });

  it("history continues from a cursor", async () => {
    // Prepare
    ddb.on(QueryCommand).resolves({ Items: [] });
    const cursor = encodeCursor({ deviceId: "dev-1", sk: "x" });

    // Act
    const page = await ledger.history("dev-1", { cursor });

    // Assess
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, {
      ExclusiveStartKey: { deviceId: "dev-1", sk: "x" },
    });
    expect(page).toStrictEqual({ items: [] });
  });

  it("history rejects a forged cursor without querying", async () => {
    // Prepare
    const cursor = Buffer.from("[1,2]").toString("base64url");

    // Act
    const result = ledger.history("dev-1", { cursor });

    // Assess
    await expect(result).rejects.toBeInstanceOf(ValidationError);
    expect(ddb).not.toHaveReceivedAnyCommand();
  });

  it("historyOfCertificate queries the byCertificate index", async () => {
    // Prepare
    ddb.on(QueryCommand).resolves({ Items: [] });

    // Act
    await ledger.historyOfCertificate("c-1", {});

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
