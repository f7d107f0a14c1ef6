import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type AttributeValue,
  CreateTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DYNAMO_OPEN_MARKER } from "../../../local/aws/index.ts";
import { type Harness, startHarness } from "./helpers.ts";

const TORN_WRITE = fileURLToPath(new URL("../../support/torn-write-process.ts", import.meta.url));
const TABLE = "devices";

let dataDir: string;
let open: Harness | undefined;

async function start() {
  open = await startHarness({ dataDir });
  return open.dynamodb;
}

async function stop() {
  await open?.close();
  open = undefined;
}

/** Runs one write in a process that kills itself between the write's index entries and its item. */
function tornWrite(operation: string, input: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", TORN_WRITE, dataDir, operation, JSON.stringify(input)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("exit", (code, signal) =>
      signal === "SIGKILL" ? resolve() : reject(new Error(`the write was not torn (${code}):\n${output}`)),
    );
  });
}

const device = (id: string, status: string, lot: string): Record<string, AttributeValue> => ({
  id: { S: id },
  status: { S: status },
  lot: { S: lot },
});

async function byIndex(client: DynamoDBClient, index: string, name: string, value: string) {
  const answer = await client.send(
    new QueryCommand({
      TableName: TABLE,
      IndexName: index,
      KeyConditionExpression: "#k = :v",
      ExpressionAttributeNames: { "#k": name },
      ExpressionAttributeValues: { ":v": { S: value } },
    }),
  );
  return (answer.Items ?? []).map((item) => item.id?.S).sort();
}

async function itemIds(client: DynamoDBClient) {
  const answer = await client.send(new ScanCommand({ TableName: TABLE }));
  return (answer.Items ?? []).map((item) => item.id?.S).sort();
}

beforeEach(async () => {
  // Prepare: a table with an index of whole items (by status) and one of keys (by lot), two devices in it.
  dataDir = await mkdtemp(join(tmpdir(), "jitr-torn-"));
  const client = await start();
  await client.send(
    new CreateTableCommand({
      TableName: TABLE,
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      AttributeDefinitions: [
        { AttributeName: "id", AttributeType: "S" },
        { AttributeName: "status", AttributeType: "S" },
        { AttributeName: "lot", AttributeType: "S" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      GlobalSecondaryIndexes: [
        {
          IndexName: "byStatus",
          KeySchema: [
            { AttributeName: "status", KeyType: "HASH" },
            { AttributeName: "id", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
        {
          IndexName: "byLot",
          KeySchema: [{ AttributeName: "lot", KeyType: "HASH" }],
          Projection: { ProjectionType: "KEYS_ONLY" },
        },
      ],
    }),
  );
  // A new table is CREATING for a moment, as on AWS.
  await waitUntilTableExists({ client, maxWaitTime: 10, minDelay: 0.05 }, { TableName: TABLE });
  for (const item of [device("a", "allowed", "L1"), device("b", "allowed", "L1")])
    await client.send(new PutItemCommand({ TableName: TABLE, Item: item }));
  await stop();
  expect(existsSync(join(dataDir, DYNAMO_OPEN_MARKER))).toBe(false);
});

afterEach(async () => {
  await stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("local DynamoDB after a process killed in the middle of a write", () => {
  it("the harness tears a write: without the open-store marker (as after a clean stop) the index keeps an entry for an item that never landed", async () => {
    // Act
    await tornWrite("PutItem", { TableName: TABLE, Item: device("c", "blocked", "L2") });
    expect(existsSync(join(dataDir, DYNAMO_OPEN_MARKER))).toBe(true);
    await rm(join(dataDir, DYNAMO_OPEN_MARKER));
    const client = await start();
    // Assess: dynalite's own state, unchecked
    expect(await itemIds(client)).toEqual(["a", "b"]);
    expect(await byIndex(client, "byStatus", "status", "blocked")).toEqual(["c"]);
  });

  it("a put that did not land: its index entries are gone at the next start", async () => {
    // Act
    await tornWrite("PutItem", { TableName: TABLE, Item: device("c", "blocked", "L2") });
    const client = await start();
    // Assess
    expect(open?.endpoint.indexRepair).toEqual({ tables: 1, items: 1 });
    expect(await itemIds(client)).toEqual(["a", "b"]);
    expect(await byIndex(client, "byStatus", "status", "blocked")).toEqual([]);
    expect(await byIndex(client, "byLot", "lot", "L2")).toEqual([]);
    expect(await byIndex(client, "byStatus", "status", "allowed")).toEqual(["a", "b"]);
  });

  it("an update that did not land: the index answers the item's old values again, not the new ones", async () => {
    // Act
    await tornWrite("UpdateItem", {
      TableName: TABLE,
      Key: { id: { S: "a" } },
      UpdateExpression: "SET #s = :s, lot = :l",
      ExpressionAttributeNames: { "#s": "status" },
      ExpressionAttributeValues: { ":s": { S: "blocked" }, ":l": { S: "L9" } },
    });
    const client = await start();
    // Assess
    const a = await client.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: "a" } } }));
    expect(a.Item?.status?.S).toBe("allowed");
    expect(await byIndex(client, "byStatus", "status", "blocked")).toEqual([]);
    expect(await byIndex(client, "byStatus", "status", "allowed")).toEqual(["a", "b"]);
    expect(await byIndex(client, "byLot", "lot", "L9")).toEqual([]);
    expect(await byIndex(client, "byLot", "lot", "L1")).toEqual(["a", "b"]);
  });

  it("a delete that did not land: the item is found through its indexes again", async () => {
    // Act
    await tornWrite("DeleteItem", { TableName: TABLE, Key: { id: { S: "b" } } });
    const client = await start();
    // Assess
    expect(await itemIds(client)).toEqual(["a", "b"]);
    expect(await byIndex(client, "byStatus", "status", "allowed")).toEqual(["a", "b"]);
    expect(await byIndex(client, "byLot", "lot", "L1")).toEqual(["a", "b"]);
  });

  it("writes after the repair keep table and indexes together, and a clean stop removes the marker", async () => {
    // Act
    await tornWrite("PutItem", { TableName: TABLE, Item: device("c", "blocked", "L2") });
    let client = await start();
    await client.send(new PutItemCommand({ TableName: TABLE, Item: device("c", "allowed", "L1") }));
    await stop();
    client = await start();
    // Assess: a clean stop before, so nothing was checked
    expect(open?.endpoint.indexRepair).toBeUndefined();
    expect(await itemIds(client)).toEqual(["a", "b", "c"]);
    expect(await byIndex(client, "byStatus", "status", "allowed")).toEqual(["a", "b", "c"]);
    expect(await byIndex(client, "byStatus", "status", "blocked")).toEqual([]);
    expect(await byIndex(client, "byLot", "lot", "L2")).toEqual([]);
    await stop();
    expect(existsSync(join(dataDir, DYNAMO_OPEN_MARKER))).toBe(false);
  });
});
