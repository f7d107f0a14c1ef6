import {
  DynamoDBClient,
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ThrottlingException,
} from "@aws-sdk/client-dynamodb";
import { describe, expect, it } from "vitest";
import { mapDynamoError } from "../../../adapters/aws-errors.ts";
import { createDocumentClient } from "../../../adapters/dynamo/table.ts";
import { JitrError } from "../../../domain/errors.ts";
import { conditionFailed } from "./mock.ts";

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
    {
      label: "a connection reset the SDK counted attempts for (metadata without a status)",
      error: Object.assign(new Error("read ECONNRESET"), {
        name: "TimeoutError",
        code: "ECONNRESET",
        $metadata: { attempts: 1, totalRetryDelay: 0 },
      }),
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
