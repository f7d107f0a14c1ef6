import { InternalServerError, ProvisionedThroughputExceededException } from "@aws-sdk/client-dynamodb";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoLots } from "../../../adapters/dynamo/lots.ts";
import { OutcomeUnknownError, TransientError } from "../../../domain/errors.ts";
import { conditionFailed, ddb, doc } from "./mock.ts";

const serverError = () => new InternalServerError({ message: "x", $metadata: { httpStatusCode: 500 } });
const throttled = () =>
  new ProvisionedThroughputExceededException({ message: "x", $metadata: { httpStatusCode: 400 } });

beforeEach(() => {
  ddb.reset();
});

describe("DynamoLots", () => {
  const lots = new DynamoLots({ doc, table: "lots" });

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

  it("release gives back one place, also below zero, while the lot exists", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    await lots.release("L1");

    // Assess
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "lots",
      Key: { lot: "L1" },
      UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) - :one",
      ConditionExpression: "attribute_exists(lot)",
      ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
    });
  });

  it("release of a lot that is gone is not an error", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(conditionFailed());

    // Act
    const result = lots.release("L1");

    // Assess
    await expect(result).resolves.toBeUndefined();
  });

  it("reserveBeyondQuota counts one more whatever maxDevices says", async () => {
    // Prepare
    ddb.on(UpdateCommand).resolves({});

    // Act
    await lots.reserveBeyondQuota("L1");

    // Assess
    expect(ddb.commandCalls(UpdateCommand)[0]?.args[0].input).toStrictEqual({
      TableName: "lots",
      Key: { lot: "L1" },
      UpdateExpression: "SET provisionedCount = if_not_exists(provisionedCount, :zero) + :one",
      ConditionExpression: "attribute_exists(lot)",
      ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
    });
  });

  it("a count whose outcome is unknown (5xx, lost response) is OutcomeUnknownError, never repeated", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(serverError());

    // Act
    const reserve = lots.reserve("L1");
    const beyond = lots.reserveBeyondQuota("L1");

    // Assess
    await expect(reserve).rejects.toBeInstanceOf(OutcomeUnknownError);
    await expect(beyond).rejects.toBeInstanceOf(OutcomeUnknownError);
  });

  it("a throttled count was not applied: TransientError, to be retried", async () => {
    // Prepare
    ddb.on(UpdateCommand).rejects(throttled());

    // Act
    const reserve = lots.reserve("L1");

    // Assess
    await expect(reserve).rejects.toBeInstanceOf(TransientError);
  });
});
