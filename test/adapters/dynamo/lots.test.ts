import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoLots } from "../../../adapters/dynamo/lots.ts";
import { conditionFailed, ddb, doc } from "./mock.ts";

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
