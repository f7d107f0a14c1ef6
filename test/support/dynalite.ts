import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ensureTables, type TableNames } from "../../adapters/tables.ts";
import { createDynamoRouter } from "../../local/aws/dynamo-transactions.ts";

const require = createRequire(import.meta.url);
const dynalite: (options: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server = require("dynalite");

export const testTableNames: TableNames = {
  allowlist: "allowlist",
  mappings: "mappings",
  lots: "lots",
  ledger: "ledger",
  idempotency: "idempotency",
};

/**
 * An in-memory DynamoDB on a free loopback port, with the service's tables created: dynalite behind the
 * local endpoint's DynamoDB router, which adds TransactWriteItems (as `jitr local` serves it).
 */
export async function startDynalite(names: TableNames = testTableNames) {
  const dynamo = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => dynamo.listen(0, "127.0.0.1", resolve));
  const router = createDynamoRouter(dynamo);
  const server = createServer((req, res) => router.route(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("dynalite is not listening on a port");
  const client = new DynamoDBClient({
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${address.port}`,
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  await ensureTables(client, names);
  return {
    client,
    names,
    close: async () => {
      client.destroy();
      router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => dynamo.close(() => resolve()));
    },
  };
}
