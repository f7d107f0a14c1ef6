import { InvalidRequestException, ThrottlingException } from "@aws-sdk/client-iot";
import { S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { describe, expect, it } from "vitest";
import { isNetworkError, isTransientAwsError, mapDynamoError } from "../../adapters/aws-errors.ts";
import { mapIotError } from "../../adapters/iot.ts";
import { S3JobFiles } from "../../adapters/s3.ts";
import { JitrError, TransientError } from "../../domain/errors.ts";

/** A network failure as the SDK hands it on: its retry layer adds `$metadata`, but there is no HTTP status. */
const withSdkMetadata = <E extends Error>(error: E): E =>
  Object.assign(error, { $metadata: { attempts: 1, totalRetryDelay: 0 } });

const named = (name: string, message: string, extra: Record<string, unknown> = {}): Error =>
  Object.assign(new Error(message), { name }, extra);

const NETWORK_CASES: { label: string; error: Error }[] = [
  {
    label: "TimeoutError: socket hang up with SDK metadata",
    error: withSdkMetadata(named("TimeoutError", "socket hang up")),
  },
  {
    label: "TimeoutError without metadata",
    error: named("TimeoutError", "Connection timed out after 1000 ms"),
  },
  {
    label: "ECONNRESET with SDK metadata",
    error: withSdkMetadata(named("Error", "socket hang up", { code: "ECONNRESET" })),
  },
  {
    label: "EPIPE with SDK metadata",
    error: withSdkMetadata(named("Error", "write EPIPE", { code: "EPIPE" })),
  },
  {
    label: "ETIMEDOUT with SDK metadata",
    error: withSdkMetadata(named("Error", "connect ETIMEDOUT", { code: "ETIMEDOUT" })),
  },
  {
    label: "ECONNREFUSED",
    error: named("Error", "connect ECONNREFUSED 127.0.0.1:4580", { code: "ECONNREFUSED" }),
  },
  {
    label: "a wrapper whose cause is ECONNRESET",
    error: withSdkMetadata(named("Error", "request failed", { cause: { code: "ECONNRESET" } })),
  },
  { label: "SDK metadata, no status, no service fault", error: withSdkMetadata(named("Error", "aborted")) },
];

describe("isTransientAwsError: network-level errors", () => {
  it.each(NETWORK_CASES)("$label is transient", ({ error }) => {
    // Act
    const transient = isTransientAwsError(error, new Set());

    // Assess
    expect(isNetworkError(error)).toBe(true);
    expect(transient).toBe(true);
  });

  it.each(NETWORK_CASES)("IoT: $label becomes TransientError", ({ error }) => {
    // Act
    const mapped = mapIotError(error, "DescribeCertificate", "certificate abc");

    // Assess
    expect(mapped).toBeInstanceOf(TransientError);
  });

  it.each(NETWORK_CASES)("DynamoDB: $label becomes TransientError", ({ error }) => {
    // Act
    const mapped = mapDynamoError(error, "GetItem", "table t");

    // Assess
    expect(mapped).toBeInstanceOf(TransientError);
  });

  it("S3: a socket hang up on a ranged read is transient", async () => {
    // Prepare
    mockClient(S3Client)
      .onAnyCommand()
      .rejects(withSdkMetadata(named("TimeoutError", "socket hang up")));
    const files = new S3JobFiles(new S3Client({ region: "us-east-1" }), "b");

    // Act
    const result = files.size("jobs/j1/input");

    // Assess
    await expect(result).rejects.toBeInstanceOf(TransientError);
  });
});

describe("isTransientAwsError: answers from the service stay as they were", () => {
  it("a client fault without a status is permanent", () => {
    // Prepare
    const error = new InvalidRequestException({ message: "bad", $metadata: {} });

    // Act
    const mapped = mapIotError(error, "CreateThing", "thing t");

    // Assess
    expect(isNetworkError(error)).toBe(false);
    expect(mapped).not.toBeInstanceOf(TransientError);
    expect(mapped).toBeInstanceOf(JitrError);
  });

  it("a 400 answer is permanent even with SDK metadata", () => {
    // Prepare
    const error = named("ValidationException", "bad", {
      $metadata: { httpStatusCode: 400 },
      $fault: "client",
    });

    // Act
    const transient = isTransientAwsError(error, new Set());

    // Assess
    expect(transient).toBe(false);
  });

  it("throttling stays transient", () => {
    // Prepare
    const error = new ThrottlingException({ message: "slow", $metadata: { httpStatusCode: 400 } });

    // Act
    const mapped = mapIotError(error, "UpdateCertificate", "certificate abc");

    // Assess
    expect(mapped).toBeInstanceOf(TransientError);
  });
});
