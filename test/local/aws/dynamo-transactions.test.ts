import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type AttributeValue,
  CreateTableCommand,
  type DynamoDBClient,
  DynamoDBClient as DynamoDBClientClass,
  type DynamoDBServiceException,
  GetItemCommand,
  IdempotentParameterMismatchException,
  PutItemCommand,
  QueryCommand,
  ResourceNotFoundException,
  ScanCommand,
  TransactionCanceledException,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  type TransactWriteItemsCommandInput,
  UpdateItemCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import dynalite from "dynalite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLIENT_TOKEN_TTL_MS, createDynamoRouter } from "../../../local/aws/dynamo-transactions.ts";
import { WriteGate } from "../../../local/aws/write-gate.ts";
import { type Harness, startHarness } from "./helpers.ts";

type Item = Record<string, AttributeValue>;

let tables = 0;

/** Creates a table keyed by `id` (string) with a GSI `byLot` on `lot`; answers its name. */
async function createTable(client: DynamoDBClient, keyType: "S" | "N" = "S"): Promise<string> {
  const name = `txn-${++tables}`;
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "id", AttributeType: keyType },
        { AttributeName: "lot", AttributeType: "S" },
      ],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      GlobalSecondaryIndexes: [
        {
          IndexName: "byLot",
          KeySchema: [{ AttributeName: "lot", KeyType: "HASH" }],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    }),
  );
  // A new table is CREATING for a moment, as on AWS (longer with a data directory).
  await waitUntilTableExists({ client, maxWaitTime: 10, minDelay: 0.05 }, { TableName: name });
  return name;
}

async function scan(client: DynamoDBClient, table: string): Promise<Item[]> {
  const out = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
  return (out.Items ?? []).sort((a, b) =>
    String(a.id?.S ?? a.id?.N).localeCompare(String(b.id?.S ?? b.id?.N)),
  );
}

async function ids(client: DynamoDBClient, table: string, lot: string): Promise<string[]> {
  const out = await client.send(
    new QueryCommand({
      TableName: table,
      IndexName: "byLot",
      KeyConditionExpression: "lot = :lot",
      ExpressionAttributeValues: { ":lot": { S: lot } },
    }),
  );
  return (out.Items ?? []).map((item) => String(item.id?.S)).sort();
}

async function put(client: DynamoDBClient, table: string, item: Item): Promise<void> {
  await client.send(new PutItemCommand({ TableName: table, Item: item }));
}

async function get(client: DynamoDBClient, table: string, id: string): Promise<Item | undefined> {
  const out = await client.send(
    new GetItemCommand({ TableName: table, Key: { id: { S: id } }, ConsistentRead: true }),
  );
  return out.Item;
}

const caught = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (error: unknown) => error,
  );

/** A ConditionCheck of the item `id`. */
const check = (table: string, id: string, condition: string, more: object = {}): TransactWriteItem => ({
  ConditionCheck: { TableName: table, Key: { id: { S: id } }, ConditionExpression: condition, ...more },
});

/** A ConditionCheck that the item `id` is open, as in `{ state: "open" }`. */
const checkOpen = (table: string, id: string, more: object = {}): TransactWriteItem =>
  check(table, id, "#s = :open", {
    ExpressionAttributeNames: { "#s": "state" },
    ExpressionAttributeValues: { ":open": { S: "open" } },
    ...more,
  });

/** An Update adding `by` to the number `attribute` of the item `id`. */
const add = (table: string, id: string, attribute: string, by: number) => ({
  Update: {
    TableName: table,
    Key: { id: { S: id } },
    UpdateExpression: "ADD #a :by",
    ExpressionAttributeNames: { "#a": attribute },
    ExpressionAttributeValues: { ":by": { N: String(by) } },
  },
});

describe("TransactWriteItems on the local DynamoDB", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());
  /** The error a transaction of `items` fails with. */
  const failure = (items: TransactWriteItem[]) =>
    caught(h.dynamodb.send(new TransactWriteItemsCommand({ TransactItems: items })));

  it("applies every action when all conditions hold", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    await put(h.dynamodb, table, { id: { S: "kept" }, lot: { S: "A" }, n: { N: "1" } });
    await put(h.dynamodb, table, { id: { S: "gone" }, lot: { S: "A" } });
    await put(h.dynamodb, table, { id: { S: "checked" }, state: { S: "open" } });

    // Act
    const out = await h.dynamodb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Put: {
              TableName: table,
              Item: { id: { S: "new" }, lot: { S: "A" } },
              ConditionExpression: "attribute_not_exists(id)",
            },
          },
          {
            Update: {
              TableName: table,
              Key: { id: { S: "kept" } },
              UpdateExpression: "SET n = n + :one, lot = :lot",
              ConditionExpression: "n = :one",
              ExpressionAttributeValues: { ":one": { N: "1" }, ":lot": { S: "B" } },
            },
          },
          {
            Delete: {
              TableName: table,
              Key: { id: { S: "gone" } },
              ConditionExpression: "attribute_exists(id)",
            },
          },
          checkOpen(table, "checked"),
        ],
      }),
    );

    // Assess
    expect(out.$metadata.httpStatusCode).toBe(200);
    expect(out.ConsumedCapacity).toBeUndefined();
    expect(await scan(h.dynamodb, table)).toEqual([
      { id: { S: "checked" }, state: { S: "open" } },
      { id: { S: "kept" }, lot: { S: "B" }, n: { N: "2" } },
      { id: { S: "new" }, lot: { S: "A" } },
    ]);
    expect(await ids(h.dynamodb, table, "A")).toEqual(["new"]);
    expect(await ids(h.dynamodb, table, "B")).toEqual(["kept"]);
  });

  it("applies none when one condition fails, and says why per action", async () => {
    // Prepare: an item to update, one to delete, one the transaction would create, one whose check fails.
    const table = await createTable(h.dynamodb);
    const before: Item[] = [
      { id: { S: "checked" }, lot: { S: "A" }, state: { S: "closed" } },
      { id: { S: "deleted" }, lot: { S: "A" } },
      { id: { S: "updated" }, lot: { S: "A" }, n: { N: "1" } },
    ];
    for (const item of before) await put(h.dynamodb, table, item);

    // Act
    const error = await failure([
      {
        Update: {
          TableName: table,
          Key: { id: { S: "updated" } },
          UpdateExpression: "SET n = n + :one, lot = :b",
          ExpressionAttributeValues: { ":one": { N: "1" }, ":b": { S: "B" } },
        },
      },
      { Delete: { TableName: table, Key: { id: { S: "deleted" } } } },
      { Put: { TableName: table, Item: { id: { S: "created" }, lot: { S: "A" } } } },
      checkOpen(table, "checked", { ReturnValuesOnConditionCheckFailure: "ALL_OLD" }),
    ]);

    // Assess
    expect(error).toBeInstanceOf(TransactionCanceledException);
    const cancelled = error as TransactionCanceledException;
    expect(cancelled.$metadata.httpStatusCode).toBe(400);
    expect(cancelled.message).toBe(
      "Transaction cancelled, please refer cancellation reasons for specific reasons [None, None, None, ConditionalCheckFailed]",
    );
    expect(cancelled.CancellationReasons).toEqual([
      { Code: "None" },
      { Code: "None" },
      { Code: "None" },
      { Code: "ConditionalCheckFailed", Message: "The conditional request failed", Item: before[0] },
    ]);
    expect(await scan(h.dynamodb, table)).toEqual(before);
    expect(await ids(h.dynamodb, table, "A")).toEqual(["checked", "deleted", "updated"]);
    expect(await ids(h.dynamodb, table, "B")).toEqual([]);
  });

  it("reports every failed condition, with the old item only where asked and present", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    await put(h.dynamodb, table, { id: { S: "taken" }, v: { S: "old" } });
    await put(h.dynamodb, table, { id: { S: "free" }, v: { S: "old" } });

    // Act
    const error = await failure([
      {
        Put: {
          TableName: table,
          Item: { id: { S: "taken" }, v: { S: "new" } },
          ConditionExpression: "attribute_not_exists(id)",
        },
      },
      { Put: { TableName: table, Item: { id: { S: "free" }, v: { S: "new" } } } },
      {
        Delete: {
          TableName: table,
          Key: { id: { S: "absent" } },
          ConditionExpression: "attribute_exists(id)",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
    ]);

    // Assess
    expect((error as TransactionCanceledException).CancellationReasons).toEqual([
      { Code: "ConditionalCheckFailed", Message: "The conditional request failed" },
      { Code: "None" },
      { Code: "ConditionalCheckFailed", Message: "The conditional request failed" },
    ]);
    expect(await scan(h.dynamodb, table)).toEqual([
      { id: { S: "free" }, v: { S: "old" } },
      { id: { S: "taken" }, v: { S: "old" } },
    ]);
  });

  it("cancels with ValidationError when a write does not fit the item's data", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    await put(h.dynamodb, table, { id: { S: "text" }, v: { S: "not a number" } });

    // Act
    const error = await failure([
      { Put: { TableName: table, Item: { id: { S: "created" } } } },
      {
        Update: {
          TableName: table,
          Key: { id: { S: "text" } },
          UpdateExpression: "SET v = v + :one",
          ExpressionAttributeValues: { ":one": { N: "1" } },
        },
      },
    ]);

    // Assess
    expect((error as TransactionCanceledException).CancellationReasons).toEqual([
      { Code: "None" },
      { Code: "ValidationError", Message: "An operand in the update expression has an incorrect data type" },
    ]);
    expect(await scan(h.dynamodb, table)).toEqual([{ id: { S: "text" }, v: { S: "not a number" } }]);
  });

  it("evaluates a ConditionCheck without leaving a trace", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    await put(h.dynamodb, table, { id: { S: "present" }, lot: { S: "A" } });

    // Act
    await h.dynamodb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          check(table, "absent", "attribute_not_exists(id)"),
          check(table, "present", "attribute_exists(id)"),
          { Put: { TableName: table, Item: { id: { S: "written" } } } },
        ],
      }),
    );

    // Assess
    expect(await scan(h.dynamodb, table)).toEqual([
      { id: { S: "present" }, lot: { S: "A" } },
      { id: { S: "written" } },
    ]);
    expect(await ids(h.dynamodb, table, "A")).toEqual(["present"]);
  });

  it("refuses two actions on the same item, and writes nothing", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    const numbers = await createTable(h.dynamodb, "N");

    // Act
    const twice = await failure([
      { Put: { TableName: table, Item: { id: { S: "other" } } } },
      { Put: { TableName: table, Item: { id: { S: "same" }, v: { S: "1" } } } },
      check(table, "same", "attribute_not_exists(id)"),
    ]);
    // 1 and 1.0 name the same number, so the same item.
    const sameNumber = await failure([
      { Put: { TableName: numbers, Item: { id: { N: "1" } } } },
      { Delete: { TableName: numbers, Key: { id: { N: "1.0" } } } },
    ]);

    // Assess
    for (const error of [twice, sameNumber]) {
      expect((error as DynamoDBServiceException).name).toBe("ValidationException");
      expect((error as Error).message).toBe(
        "Transaction request cannot include multiple operations on one item",
      );
    }
    expect(await scan(h.dynamodb, table)).toEqual([]);
    expect(await scan(h.dynamodb, numbers)).toEqual([]);
  });

  it("refuses more than 100 actions, and writes nothing", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    const action = (i: number): TransactWriteItem => ({
      Put: { TableName: table, Item: { id: { S: `item-${i}` } } },
    });

    // Act
    const error = await caught(
      h.dynamodb.send(
        new TransactWriteItemsCommand({ TransactItems: Array.from({ length: 101 }, (_, i) => action(i)) }),
      ),
    );
    await h.dynamodb.send(
      new TransactWriteItemsCommand({ TransactItems: Array.from({ length: 100 }, (_, i) => action(i)) }),
    );

    // Assess
    expect((error as DynamoDBServiceException).name).toBe("ValidationException");
    expect((error as Error).message).toMatch(/transactItems.*less than or equal to 100/);
    expect(await scan(h.dynamodb, table)).toHaveLength(100);
  });

  it("answers ResourceNotFoundException for an unknown table, and writes nothing", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);

    // Act
    const error = await failure([
      { Put: { TableName: table, Item: { id: { S: "a" } } } },
      { Put: { TableName: "no-such-table", Item: { id: { S: "b" } } } },
    ]);

    // Assess
    expect(error).toBeInstanceOf(ResourceNotFoundException);
    expect(await scan(h.dynamodb, table)).toEqual([]);
  });

  it("answers a bad action's own validation error, with earlier writes put back", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    await put(h.dynamodb, table, { id: { S: "kept" }, v: { S: "old" } });

    // Act: the second action's value is never used, which a single UpdateItem refuses too.
    const unused = await failure([
      { Put: { TableName: table, Item: { id: { S: "kept" }, v: { S: "new" } } } },
      {
        Update: {
          TableName: table,
          Key: { id: { S: "other" } },
          UpdateExpression: "SET v = :v",
          ExpressionAttributeValues: { ":v": { S: "x" }, ":unused": { S: "y" } },
        },
      },
    ]);
    const twoKinds = await failure([
      {
        Put: { TableName: table, Item: { id: { S: "x" } } },
        Delete: { TableName: table, Key: { id: { S: "y" } } },
      },
    ]);
    const missingKey = await failure([{ Put: { TableName: table, Item: { v: { S: "x" } } } }]);

    // Assess
    expect((unused as DynamoDBServiceException).name).toBe("ValidationException");
    expect((unused as Error).message).toMatch(/unused in expressions/);
    expect((twoKinds as DynamoDBServiceException).name).toBe("ValidationException");
    expect((twoKinds as Error).message).toBe(
      "TransactItems can only contain one of Check, Put, Update or Delete",
    );
    expect((missingKey as Error).message).toBe(
      "One or more parameter values were invalid: Missing the key id in the item",
    );
    expect(await scan(h.dynamodb, table)).toEqual([{ id: { S: "kept" }, v: { S: "old" } }]);
  });

  it("applies a replayed ClientRequestToken once, and refuses it with other actions", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    const increment = (by: number) =>
      new TransactWriteItemsCommand({
        ClientRequestToken: `token-${table}`,
        TransactItems: [add(table, "counter", "n", by)],
      });

    // Act
    await h.dynamodb.send(increment(1));
    const again = await h.dynamodb.send(increment(1));
    const mismatch = await caught(h.dynamodb.send(increment(2)));

    // Assess
    expect(again.$metadata.httpStatusCode).toBe(200);
    expect(mismatch).toBeInstanceOf(IdempotentParameterMismatchException);
    expect(await get(h.dynamodb, table, "counter")).toEqual({ id: { S: "counter" }, n: { N: "1" } });
  });

  it("answers malformed requests with a clear error, and writes nothing", async () => {
    // Prepare: requests the SDK's types would not let through go as raw JSON.
    const table = await createTable(h.dynamodb);
    const signed =
      "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00";
    const raw = async (body: unknown, authorization: string | undefined = signed) => {
      const res = await fetch(h.endpoint.url, {
        method: "POST",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "DynamoDB_20120810.TransactWriteItems",
          ...(authorization ? { authorization } : {}),
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      const answer = (await res.json()) as { __type: string; message: string };
      return {
        status: res.status,
        type: answer.__type.slice(answer.__type.indexOf("#") + 1),
        message: answer.message,
      };
    };
    const fails = async (input: TransactWriteItemsCommandInput) =>
      (await caught(h.dynamodb.send(new TransactWriteItemsCommand(input)))) as DynamoDBServiceException;
    const putA = { Put: { TableName: table, Item: { id: { S: "a" } } } };

    // Act
    const notJson = await raw("{oops");
    const unsigned = await raw({ TransactItems: [putA] }, "");
    const noUpdate = await raw({
      TransactItems: [putA, { Update: { TableName: table, Key: { id: { S: "b" } } } }],
    });
    const noCondition = await raw({
      TransactItems: [putA, { ConditionCheck: { TableName: table, Key: { id: { S: "b" } } } }],
    });
    const badReturn = await raw({
      TransactItems: [{ Put: { ...putA.Put, ReturnValuesOnConditionCheckFailure: "ALL_NEW" } }],
    });
    const none = await fails({ TransactItems: [] });
    const longToken = await fails({ ClientRequestToken: "t".repeat(37), TransactItems: [putA] });
    const badKey = await fails({
      TransactItems: [putA, { Delete: { TableName: table, Key: { other: { S: "b" } } } }],
    });

    // Assess
    expect(notJson).toMatchObject({ status: 400, type: "SerializationException" });
    expect(unsigned).toMatchObject({ status: 400, type: "MissingAuthenticationTokenException" });
    for (const answer of [noUpdate, noCondition, badReturn])
      expect(answer).toMatchObject({ status: 400, type: "ValidationException" });
    expect(noUpdate.message).toMatch(/'transactItems.2.member.update.updateExpression' .* not be null/);
    expect(noCondition.message).toMatch(
      /'transactItems.2.member.conditionCheck.conditionExpression' .* not be null/,
    );
    expect(badReturn.message).toMatch(/returnValuesOnConditionCheckFailure.*\[ALL_OLD, NONE\]/);
    for (const error of [none, longToken, badKey]) expect(error.name).toBe("ValidationException");
    expect(none.message).toMatch(/'transactItems' .* greater than or equal to 1/);
    expect(longToken.message).toMatch(/'clientRequestToken' .* length between 1 and 36/);
    expect(badKey.message).toBe("The provided key element does not match the schema");
    expect(await scan(h.dynamodb, table)).toEqual([]);
  });

  it("serves lib-dynamodb's TransactWriteCommand unchanged", async () => {
    // Prepare
    const table = await createTable(h.dynamodb);
    const documents = DynamoDBDocumentClient.from(h.dynamodb);

    // Act
    await documents.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: table,
              Item: { id: "a", tags: ["x"] },
              ConditionExpression: "attribute_not_exists(id)",
            },
          },
          {
            Update: {
              TableName: table,
              Key: { id: "b" },
              UpdateExpression: "SET #count = if_not_exists(#count, :zero) + :one",
              ExpressionAttributeNames: { "#count": "count" },
              ExpressionAttributeValues: { ":zero": 0, ":one": 1 },
            },
          },
        ],
      }),
    );
    const replaced = await caught(
      documents.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: table, Item: { id: "a" }, ConditionExpression: "attribute_not_exists(id)" } },
          ],
        }),
      ),
    );

    // Assess
    expect((replaced as TransactionCanceledException).CancellationReasons).toEqual([
      { Code: "ConditionalCheckFailed", Message: "The conditional request failed" },
    ]);
    expect(await scan(h.dynamodb, table)).toEqual([
      { id: { S: "a" }, tags: { L: [{ S: "x" }] } },
      { id: { S: "b" }, count: { N: "1" } },
    ]);
  });
});

/**
 * 200 transactions in parallel over 150 items (every fourth names the item of the one before it), each
 * counting one item on a shared counter while the count is under 150 and marking the item if unmarked (in
 * either order), each beside a plain UpdateItem of another attribute of the counter. A transaction
 * cancelled on a marked item puts the counter back to its image: only if nothing else wrote the counter in
 * between do the count and the plain writes' attribute stay right.
 */
async function markAndCount(client: DynamoDBClient, marks: string, counters: string): Promise<number> {
  await put(client, counters, { id: { S: "lot" }, count: { N: "0" }, touched: { N: "0" } });
  let plain = 0;
  const transaction = async (i: number) => {
    const count: TransactWriteItem = {
      Update: {
        TableName: counters,
        Key: { id: { S: "lot" } },
        UpdateExpression: "SET #count = #count + :one",
        ConditionExpression: "#count < :max",
        ExpressionAttributeNames: { "#count": "count" },
        ExpressionAttributeValues: { ":one": { N: "1" }, ":max": { N: "150" } },
      },
    };
    const mark: TransactWriteItem = {
      Update: {
        TableName: marks,
        Key: { id: { S: `device-${i % 4 === 3 ? i - 1 : i}` } },
        UpdateExpression: "SET marked = :yes, lot = :lot",
        ConditionExpression: "attribute_not_exists(marked)",
        ExpressionAttributeValues: { ":yes": { BOOL: true }, ":lot": { S: "lot" } },
      },
    };
    await client
      .send(new TransactWriteItemsCommand({ TransactItems: i % 2 === 0 ? [count, mark] : [mark, count] }))
      .catch((error: unknown) => {
        if (!(error instanceof TransactionCanceledException)) throw error;
      });
  };
  const touch = async () => {
    await client.send(new UpdateItemCommand(add(counters, "lot", "touched", 1).Update));
    plain++;
  };
  const runs: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) {
    runs.push(transaction(i));
    runs.push(touch());
  }
  await Promise.all(runs);
  return plain;
}

/** Asserts 150 items marked (on the table and its GSI), counted 150, and every plain write on the counter. */
async function expectLotFull(client: DynamoDBClient, marks: string, counters: string, plain: number) {
  const marked = (await scan(client, marks)).filter((item) => item.marked?.BOOL === true).length;
  const counter = await get(client, counters, "lot");
  expect({
    marked,
    indexed: (await ids(client, marks, "lot")).length,
    count: Number(counter?.count?.N),
    touched: Number(counter?.touched?.N),
  }).toEqual({ marked: 150, indexed: 150, count: 150, touched: plain });
}

describe("TransactWriteItems under concurrency", () => {
  it("keeps a counter equal to the marked items, with plain writes in between", async () => {
    // Prepare
    const h = await startHarness();
    try {
      const marks = await createTable(h.dynamodb);
      const counters = await createTable(h.dynamodb);

      // Act
      const plain = await markAndCount(h.dynamodb, marks, counters);

      // Assess
      await expectLotFull(h.dynamodb, marks, counters, plain);
    } finally {
      await h.close();
    }
  });

  it("keeps the same state across a restart with a data directory", async () => {
    // Prepare
    const dataDir = await mkdtemp(join(tmpdir(), "jitr-txn-"));
    try {
      let h = await startHarness({ dataDir });
      const marks = await createTable(h.dynamodb);
      const counters = await createTable(h.dynamodb);
      let plain: number;
      try {
        // Act
        plain = await markAndCount(h.dynamodb, marks, counters);
      } finally {
        await h.close();
      }
      h = await startHarness({ dataDir });
      try {
        // Assess
        await expectLotFull(h.dynamodb, marks, counters, plain);
      } finally {
        await h.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

const ENDPOINT_PROCESS = fileURLToPath(new URL("../../support/aws-endpoint-process.ts", import.meta.url));

/** Starts the endpoint in a process of its own on `dataDir`; resolves with the process and its URL. */
function startEndpointProcess(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", ENDPOINT_PROCESS, dataDir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk;
      const url = /^(http:\/\/127\.0\.0\.1:\d+)$/m.exec(output)?.[1];
      if (url) resolve({ child, url });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`the endpoint process left (${code}):\n${output}`)));
  });
}

describe("TransactWriteItems and a killed process", () => {
  it("puts back, at the next start, a transaction the kill left half applied", async () => {
    // Prepare: transactions of 21 writes (20 items and a counter of them) run back to back.
    const dataDir = await mkdtemp(join(tmpdir(), "jitr-txn-kill-"));
    let table = "";
    let successes = 0;
    try {
      for (let round = 0; round < 4; round++) {
        const { child, url } = await startEndpointProcess(dataDir);
        const exited = new Promise((resolve) => child.once("exit", resolve));
        const client = new DynamoDBClientClass({
          endpoint: url,
          region: "us-east-1",
          credentials: { accessKeyId: "test", secretAccessKey: "test" },
          maxAttempts: 1,
        });
        try {
          if (round === 0) {
            table = await createTable(client);
            await put(client, table, { id: { S: "counter" }, count: { N: "0" } });
          }
          // Act: kill -9 the endpoint a few transactions in, at a different moment of the next one each round.
          const stopAt = successes + 5;
          let batch = 0;
          const worker = async (): Promise<void> => {
            for (;;) {
              const n = `${round}-${batch++}`;
              const items: TransactWriteItem[] = Array.from({ length: 20 }, (_, i) => ({
                Put: { TableName: table, Item: { id: { S: `item-${n}-${i}` }, lot: { S: "lot" } } },
              }));
              items.push(add(table, "counter", "count", 20));
              try {
                await client.send(new TransactWriteItemsCommand({ TransactItems: items }));
              } catch {
                return; // the endpoint is gone
              }
              if (++successes === stopAt) setTimeout(() => child.kill("SIGKILL"), 2 + 4 * round);
            }
          };
          await Promise.all([worker(), worker(), worker(), worker()]);
          await exited;
        } finally {
          client.destroy();
          child.kill("SIGKILL");
        }
      }

      // Assess: every counted item is there, and no item is there uncounted.
      const h = await startHarness({ dataDir });
      try {
        const counter = await get(h.dynamodb, table, "counter");
        const items = (await scan(h.dynamodb, table)).filter((item) => item.lot?.S === "lot");
        expect(Number(counter?.count?.N)).toBe(items.length);
        expect(items.length).toBeGreaterThanOrEqual(successes * 20);
        // The index agrees with the table: an entry a kill left without its item was removed at the start.
        const indexed = await h.dynamodb.send(
          new QueryCommand({
            TableName: table,
            IndexName: "byLot",
            KeyConditionExpression: "lot = :l",
            ExpressionAttributeValues: { ":l": { S: "lot" } },
          }),
        );
        expect(indexed.Items?.length).toBe(items.length);
      } finally {
        await h.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("ClientRequestToken window", () => {
  let dynamo: Server;
  let server: Server;
  let client: DynamoDBClient;
  let clock = 0;
  beforeAll(async () => {
    dynamo = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => dynamo.listen(0, "127.0.0.1", resolve));
    const router = createDynamoRouter(dynamo, { now: () => clock });
    server = createServer((req, res) => router.route(req, res));
    server.on("close", () => router.close());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = new DynamoDBClientClass({
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    await new Promise((resolve) => dynamo.close(resolve));
  });

  it("treats a token as new once 10 minutes have passed since its transaction", async () => {
    // Prepare
    const table = await createTable(client);
    const increment = new TransactWriteItemsCommand({
      ClientRequestToken: "window",
      TransactItems: [add(table, "counter", "n", 1)],
    });

    // Act
    clock = 1_000;
    await client.send(increment);
    clock = 1_000 + CLIENT_TOKEN_TTL_MS - 1;
    await client.send(increment);
    const withinWindow = await get(client, table, "counter");
    clock = 1_000 + CLIENT_TOKEN_TTL_MS;
    await client.send(increment);

    // Assess
    expect(withinWindow?.n).toEqual({ N: "1" });
    expect((await get(client, table, "counter"))?.n).toEqual({ N: "2" });
  });
});

describe("WriteGate", () => {
  it("lets shared holders in together and an exclusive one alone, in arrival order", async () => {
    // Prepare
    const gate = new WriteGate();
    const events: string[] = [];

    // Act
    gate.enterShared(() => events.push("write 1"));
    const transaction = gate.enterExclusive().then(() => events.push("transaction"));
    gate.enterShared(() => events.push("write 2"));
    await Promise.resolve();
    events.push("write 1 done");
    gate.leaveShared();
    await transaction;
    events.push("transaction done");
    gate.leaveExclusive();

    // Assess
    expect(events).toEqual(["write 1", "write 1 done", "transaction", "transaction done", "write 2"]);
  });
});
