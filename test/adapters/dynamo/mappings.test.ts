import { ProvisionedThroughputExceededException } from "@aws-sdk/client-dynamodb";
import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import { beforeEach, describe, expect, it } from "vitest";
import { DynamoMappings } from "../../../adapters/dynamo/mappings.ts";
import { TransientError } from "../../../domain/errors.ts";
import type { ClockPort } from "../../../domain/ports.ts";
import { ddb, doc } from "./mock.ts";

beforeEach(() => {
  ddb.reset();
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
  const mappings = new DynamoMappings({
    doc,
    table: "mappings",
    clock: noSleep,
    batchRetry: { attempts: 3, baseDelayMs: 10 },
  });

  beforeEach(() => {
    noSleep.sleeps = [];
  });

  it("getMany reads the selectors consistently with one BatchGetItem", async () => {
    // Prepare
    ddb.on(BatchGetCommand).resolves({
      Responses: { mappings: [{ selector: "profile:a", version: 1, policy: { policyName: "p" } }] },
    });

    // Act
    const found = await mappings.getMany(["profile:a", "lot:L1", "profile:a"]);

    // Assess
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(BatchGetCommand, {
      RequestItems: {
        mappings: { Keys: [{ selector: "profile:a" }, { selector: "lot:L1" }], ConsistentRead: true },
      },
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
      RequestItems: { mappings: { Keys: [{ selector: "b" }], ConsistentRead: true } },
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
