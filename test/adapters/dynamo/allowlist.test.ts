import { InternalServerError, ThrottlingException } from "@aws-sdk/client-dynamodb";
import { BatchGetCommand, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoAllowlist } from "../../../adapters/dynamo/allowlist.ts";
import { ConflictError, TransientError, ValidationError } from "../../../domain/errors.ts";
import { conditionFailed, ddb, doc, thrownBy } from "./mock.ts";

beforeEach(() => {
  ddb.reset();
});

describe("DynamoAllowlist", () => {
  const allowlist = new DynamoAllowlist({ doc, table: "allowlist" });

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
      ConditionExpression: "certificateId = :c AND #status <> :blocked",
      ExpressionAttributeNames: { "#status": "status" },
      ExpressionAttributeValues: {
        ":blocked": "blocked",
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

  it("getMany reads the records consistently, each device once", async () => {
    // Prepare
    ddb.on(BatchGetCommand).resolves({
      Responses: { allowlist: [{ deviceId: "dev-1", status: "allowed", version: 1 }] },
    });

    // Act
    const records = await allowlist.getMany(["dev-1", "dev-2", "dev-1"]);

    // Assess
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(BatchGetCommand, {
      RequestItems: {
        allowlist: { Keys: [{ deviceId: "dev-1" }, { deviceId: "dev-2" }], ConsistentRead: true },
      },
    });
    expect(records).toStrictEqual([{ deviceId: "dev-1", status: "allowed", version: 1 }]);
  });
});
