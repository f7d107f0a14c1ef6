/**
 * The local AWS endpoint on a data directory, killed (SIGKILL, by itself) in the middle of one DynamoDB
 * write: after dynalite has written the item's secondary-index entries and before it writes the item, the
 * moment a `kill -9` can fall in. For tests of what the next start makes of it.
 *
 *   node --import tsx test/support/torn-write-process.ts <data directory> <operation> <input as JSON>
 *
 * `operation` is PutItem, UpdateItem or DeleteItem; the write is sent through the endpoint with the SDK.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import {
  DeleteItemCommand,
  type DeleteItemCommandInput,
  PutItemCommand,
  type PutItemCommandInput,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from "@aws-sdk/client-dynamodb";
import { startHarness } from "../local/aws/helpers.ts";

const [dataDir, operation, input] = process.argv.slice(2);
if (!dataDir || !operation || !input)
  throw new Error("usage: torn-write-process.ts <dir> <operation> <input>");

// dynalite's write actions call the index update through its db module's exports, so a wrapper there sees
// every write between its index entries and its item.
const require = createRequire(import.meta.url);
const db = require(join(dirname(require.resolve("dynalite")), "db", "index.js")) as {
  updateIndexes: (
    store: unknown,
    table: unknown,
    old: unknown,
    item: unknown,
    cb: (e?: unknown) => void,
  ) => void;
};
const updateIndexes = db.updateIndexes;
let armed = false;
db.updateIndexes = (store, table, old, item, cb) =>
  updateIndexes(store, table, old, item, (error) => {
    if (armed && !error) process.kill(process.pid, "SIGKILL");
    cb(error);
  });

const { dynamodb: client } = await startHarness({ dataDir });
armed = true;
const parsed = JSON.parse(input);
if (operation === "PutItem") await client.send(new PutItemCommand(parsed as PutItemCommandInput));
else if (operation === "UpdateItem")
  await client.send(new UpdateItemCommand(parsed as UpdateItemCommandInput));
else if (operation === "DeleteItem")
  await client.send(new DeleteItemCommand(parsed as DeleteItemCommandInput));
else throw new Error(`unknown operation ${operation}`);
throw new Error("the write finished: the process was not killed in it");
