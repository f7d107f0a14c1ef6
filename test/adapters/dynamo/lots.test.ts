import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import { GetCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoLots } from "../../../adapters/dynamo/lots.ts";
import { OutcomeUnknownError, TransientError } from "../../../domain/errors.ts";
import { FakeClock } from "../../support/fakes.ts";
import { ddb, doc } from "./mock.ts";

const serverError = () => new InternalServerError({ message: "x", $metadata: { httpStatusCode: 500 } });
const throttled = () =>
  new ProvisionedThroughputExceededException({ message: "x", $metadata: { httpStatusCode: 400 } });

beforeEach(() => {
  ddb.reset();
});

describe("DynamoLots", () => {
  const clock = new FakeClock();
  const lots = new DynamoLots({ doc, table: "lots", recordsTable: "allowlist", clock });

  it("get defaults a missing provisionedCount to 0", async () => {
    // Prepare
    ddb.on(GetCommand).resolves({ Item: { lot: "L1", maxDevices: 10 } });

    // Act
    const lot = await lots.get("L1");

    // Assess
    expect(ddb).toHaveReceivedCommandWith(GetCommand, { TableName: "lots", Key: { lot: "L1" } });
    expect(lot).toStrictEqual({ lot: "L1", maxDevices: 10, provisionedCount: 0 });
  });

  const recordCondition = "certificateId = :c AND attribute_not_exists(lotCounted)";
  const mark = { deviceId: "d1", certificateId: "c1", lot: "L1" };
  const place = { deviceId: "d1", lot: "L1", boundTo: "c1", releaseClaim: undefined };
  const cancelled = (...codes: string[]) =>
    new TransactionCanceledException({
      message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(", ")}]`,
      $metadata: { httpStatusCode: 400 },
      CancellationReasons: codes.map((Code) => ({ Code })),
    });

  it("takePlace marks the record and counts the device under the quota in one transaction", async () => {
    // Prepare
    ddb.on(TransactWriteCommand).resolves({});

    // Act
    const taken = await lots.takePlace(mark);

    // Assess
    expect(taken).toBe("counted");
    expect(ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input).toStrictEqual({
      TransactItems: [
        {
          Update: {
            TableName: "allowlist",
            Key: { deviceId: "d1" },
            UpdateExpression: "SET lotCounted = :lot",
            ConditionExpression: recordCondition,
            ExpressionAttributeValues: { ":lot": "L1", ":c": "c1" },
          },
        },
        {
          Update: {
            TableName: "lots",
            Key: { lot: "L1" },
            UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) + :one",
            ConditionExpression:
              "attribute_exists(lot) AND (attribute_not_exists(maxDevices) OR provisionedCount < maxDevices" +
              " OR (attribute_not_exists(provisionedCount) AND maxDevices > :zero))",
            ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
          },
        },
      ],
    });
  });

  it.each([
    { codes: ["ConditionalCheckFailed", "None"], outcome: "lost" },
    { codes: ["ConditionalCheckFailed", "ConditionalCheckFailed"], outcome: "lost" },
    { codes: ["None", "ConditionalCheckFailed"], outcome: "full" },
  ])("takePlace cancelled with $codes is $outcome", async ({ codes, outcome }) => {
    // Prepare
    ddb.on(TransactWriteCommand).rejects(cancelled(...codes));

    // Act
    const taken = await lots.takePlace(mark);

    // Assess
    expect(taken).toBe(outcome);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(1);
  });

  it("a transaction cancelled by a conflict is sent again (with backoff), then applies", async () => {
    // Prepare
    ddb
      .on(TransactWriteCommand)
      .rejectsOnce(cancelled("None", "TransactionConflict"))
      .rejectsOnce(cancelled("TransactionConflict", "None"))
      .resolves({});

    // Act
    const taken = await lots.takePlace(mark);

    // Assess
    expect(taken).toBe("counted");
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(3);
    expect(clock.sleeps).toHaveLength(2);
  });

  it("a transaction that keeps conflicting is a TransientError saying nothing was written", async () => {
    // Prepare
    ddb.on(TransactWriteCommand).rejects(cancelled("None", "TransactionConflict"));

    // Act
    const taken = lots.takePlace(mark);

    // Assess
    await expect(taken).rejects.toThrow(/cancelled .* 5 times; nothing was written/);
    await expect(lots.takePlace(mark)).rejects.toBeInstanceOf(TransientError);
  });

  it("a place whose outcome is unknown (5xx, lost response) is OutcomeUnknownError; a throttled one TransientError", async () => {
    // Prepare
    ddb.on(TransactWriteCommand).rejectsOnce(serverError()).rejectsOnce(throttled());

    // Act
    const unknown = await lots.takePlace(mark).catch((error: unknown) => error);
    const refused = await lots.takePlace(mark).catch((error: unknown) => error);

    // Assess
    expect(unknown).toBeInstanceOf(OutcomeUnknownError);
    expect(refused).toBeInstanceOf(TransientError);
    expect(refused).not.toBeInstanceOf(OutcomeUnknownError);
  });

  it("givePlaceBack removes the mark if the record is as read and counts one less, in one transaction", async () => {
    // Prepare
    ddb.on(TransactWriteCommand).resolves({});

    // Act
    const given = await lots.givePlaceBack(place);

    // Assess
    expect(given).toBe(true);
    expect(ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input).toStrictEqual({
      TransactItems: [
        {
          Update: {
            TableName: "allowlist",
            Key: { deviceId: "d1" },
            UpdateExpression: "REMOVE lotCounted, lotReleaseStartedAt",
            ConditionExpression:
              "lotCounted = :lot AND certificateId = :b AND attribute_not_exists(lotReleaseStartedAt)",
            ExpressionAttributeValues: { ":lot": "L1", ":b": "c1" },
          },
        },
        {
          Update: {
            TableName: "lots",
            Key: { lot: "L1" },
            UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) - :one",
            ConditionExpression: "attribute_exists(lot)",
            ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
          },
        },
      ],
    });
  });

  it("givePlaceBack over an unbound record and an earlier version's release claim names both in its condition", async () => {
    // Prepare
    ddb.on(TransactWriteCommand).resolves({});

    // Act
    await lots.givePlaceBack({ ...place, boundTo: undefined, releaseClaim: "2026-01-01T00:00:00.000Z" });

    // Assess
    const input = ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input;
    expect(input?.TransactItems?.[0]?.Update).toMatchObject({
      ConditionExpression:
        "lotCounted = :lot AND attribute_not_exists(certificateId) AND lotReleaseStartedAt = :p",
      ExpressionAttributeValues: { ":lot": "L1", ":p": "2026-01-01T00:00:00.000Z" },
    });
  });

  it("givePlaceBack is false when the record is not as read; nothing else is sent", async () => {
    // Prepare
    ddb.on(TransactWriteCommand).rejects(cancelled("ConditionalCheckFailed", "None"));

    // Act
    const given = await lots.givePlaceBack(place);

    // Assess
    expect(given).toBe(false);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it("givePlaceBack in a lot that is gone removes the mark alone, on the same condition", async () => {
    // Prepare
    ddb.on(TransactWriteCommand).rejects(cancelled("None", "ConditionalCheckFailed"));
    ddb.on(UpdateCommand).resolves({});

    // Act
    const given = await lots.givePlaceBack(place);

    // Assess
    expect(given).toBe(true);
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual(
      ddb.commandCalls(TransactWriteCommand)[0]?.args[0].input.TransactItems?.[0]?.Update,
    );
  });
});
