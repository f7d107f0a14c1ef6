/**
 * Write throughput of the local AWS endpoint's DynamoDB: plain PutItems with a fixed number in flight,
 * then (when the endpoint serves them) two-item TransactWriteItems, each for a fixed time. Prints the
 * writes per second of each. Runs on an in-memory endpoint it starts itself and stops by itself.
 *
 *   npx tsx bench/local-dynamo-writes.ts [seconds=5] [concurrency=16]
 */
import {
  CreateTableCommand,
  DynamoDBClient,
  PutItemCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { startAwsEndpoint } from "../local/aws/index.ts";

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 16);
if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600)
  throw new Error("seconds must be in (0, 600]");
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
  throw new Error("concurrency must be a whole number from 1 to 256");

const endpoint = await startAwsEndpoint({ port: 0, quotas: { enabled: false }, faults: {} });
const client = new DynamoDBClient({
  endpoint: endpoint.url,
  region: "us-east-1",
  credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  maxAttempts: 1,
});

/** Runs `op` with `concurrency` calls in flight for `seconds`; answers completed calls per second. */
async function rate(op: (n: number) => Promise<unknown>): Promise<number> {
  const until = Date.now() + seconds * 1000;
  let next = 0;
  let done = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        await op(next++);
        done++;
      }
    }),
  );
  return done / (Number(process.hrtime.bigint() - started) / 1e9);
}

try {
  await client.send(
    new CreateTableCommand({
      TableName: "bench",
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    }),
  );
  const put = (n: number) =>
    client.send(
      new PutItemCommand({ TableName: "bench", Item: { id: { S: `item-${n % 1000}` }, n: { N: `${n}` } } }),
    );
  await rate(put); // warm-up: sockets open, code paths compiled
  const puts = await rate(put);
  console.log(`PutItem, ${concurrency} in flight, ${seconds} s: ${puts.toFixed(0)} puts/s`);

  let transactions: string;
  try {
    const rateOfTransactions = await rate((n) =>
      client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: "bench", Item: { id: { S: `txn-${n % 1000}` }, n: { N: `${n}` } } } },
            {
              Update: {
                TableName: "bench",
                Key: { id: { S: "counter" } },
                UpdateExpression: "ADD #count :one",
                ExpressionAttributeNames: { "#count": "count" },
                ExpressionAttributeValues: { ":one": { N: "1" } },
              },
            },
          ],
        }),
      ),
    );
    transactions = `${rateOfTransactions.toFixed(0)} transactions/s`;
  } catch (error) {
    transactions = `not served (${(error as Error).name})`;
  }
  console.log(`TransactWriteItems of 2 actions, ${concurrency} in flight, ${seconds} s: ${transactions}`);
} finally {
  client.destroy();
  await endpoint.close();
}
