import { ResourceNotFoundException, ThrottlingException } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoLedger, ledgerSortKey } from "../../../adapters/dynamo/ledger.ts";
import { decodeCursor, encodeCursor } from "../../../adapters/dynamo/table.ts";
import { JitrError, TransientError, ValidationError } from "../../../domain/errors.ts";
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
    expect(keys[2]).toMatch(/^2024-05-01T00:00:00\.000Z#c-1#[0-9a-f]{32}$/);
  });

  it("append puts the entry under a fresh sort key without overwriting", async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});

    // Act
    await ledger.append(entry);

    // Assess
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(PutCommand, {
      TableName: "ledger",
      Item: {
        ...entry,
        sk: expect.stringMatching(/^2024-05-01T00:00:00\.000Z#c-1#[0-9a-f]{32}$/),
        feed: expect.stringMatching(/^ledger#[0-9a-f]$/),
      },
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

  it("two entries of the same millisecond and certificate get keys of their own, in time order", async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    const later = { ...entry, at: "2024-05-01T00:00:00.001Z" };

    // Act
    await ledger.append(entry);
    await ledger.append({ ...entry });
    await ledger.append(later);

    // Assess
    const keys = ddb.commandCalls(PutCommand).map((call) => String(call.args[0].input.Item?.sk));
    expect(new Set(keys).size).toBe(3);
    expect(keys.slice(0, 2).every((key) => key.startsWith(`${entry.at}#c-1#`))).toBe(true);
    expect(keys.slice(0, 2).every((key) => key < String(keys[2]))).toBe(true);
  });

  it("append of the same entry after a put without answer finds it written instead of adding it twice", async () => {
    // Prepare
    ddb
      .on(PutCommand)
      .rejectsOnce(new ThrottlingException({ message: "slow down", $metadata: {} }))
      .rejectsOnce(conditionFailed())
      .resolves({});

    // Act
    const first = await thrownBy(ledger.append(entry));
    await ledger.append(entry);

    // Assess
    expect(first).toBeInstanceOf(TransientError);
    const keys = ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item?.sk);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
  });

  it("appendMany puts each entry conditionally under its own key, never as an unconditional batch", async () => {
    // Prepare
    ddb.on(PutCommand).resolves({});
    const entries = Array.from({ length: 30 }, (_, i) => ({ ...entry, deviceId: `dev-${i}` }));

    // Act
    await ledger.appendMany(entries);

    // Assess
    expect(ddb).not.toHaveReceivedCommand(BatchWriteCommand);
    const inputs = ddb.commandCalls(PutCommand).map((call) => call.args[0].input);
    expect(inputs).toHaveLength(30);
    expect(inputs.every((input) => input.ConditionExpression === "attribute_not_exists(sk)")).toBe(true);
    expect(new Set(inputs.map((input) => input.Item?.deviceId)).size).toBe(30);
  });

  it("appendMany tries every entry and then throws the first failure", async () => {
    // Prepare
    ddb
      .on(PutCommand)
      .rejectsOnce(new ThrottlingException({ message: "slow down", $metadata: {} }))
      .resolves({});
    const entries = Array.from({ length: 3 }, (_, i) => ({ ...entry, deviceId: `dev-${i}` }));

    // Act
    const thrown = await thrownBy(ledger.appendMany(entries));

    // Assess
    expect(thrown).toBeInstanceOf(TransientError);
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 3);
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

  it("hasTerminalOutcome reads the certificate's entries through byCertificate, page after page, for provisioned or denied", async () => {
    // Prepare: a `failed` entry on the first page, the `provisioned` one on the second
    const failed = { ...entry, kind: "failed", sk: "2024-05-01T00:00:01.000Z#c-1#b" };
    const provisioned = { ...entry, kind: "provisioned", sk: "2024-05-01T00:00:02.000Z#c-1#a" };
    ddb
      .on(QueryCommand)
      .resolvesOnce({ Items: [failed], LastEvaluatedKey: { deviceId: "dev-1", sk: failed.sk } })
      .resolvesOnce({ Items: [provisioned] })
      .resolves({ Items: [failed] });

    // Act / Assess
    expect(await ledger.hasTerminalOutcome("c-1")).toBe(true);
    const calls = ddb.commandCalls(QueryCommand).map((c) => c.args[0].input);
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({
      IndexName: "byCertificate",
      ExpressionAttributeValues: { ":c": "c-1" },
    });
    expect(calls[1]?.ExclusiveStartKey).toEqual({ deviceId: "dev-1", sk: failed.sk });
    // only a `failed` entry: no outcome
    expect(await ledger.hasTerminalOutcome("c-1")).toBe(false);
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
