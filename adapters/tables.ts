import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import { JitrError } from "../domain/errors.ts";
import { errorName, mapDynamoError } from "./aws-errors.ts";

/** The physical names of the service's DynamoDB tables. */
export interface TableNames {
  allowlist: string;
  mappings: string;
  lots: string;
  ledger: string;
  idempotency: string;
  /** The jobs table, where the deployment runs jobs. */
  jobs?: string;
}

/** Index names shared by the table definitions and the adapters that query them. */
export const indexNames = {
  allowlistByLot: "byLot",
  allowlistByStatus: "byStatus",
  ledgerByCertificate: "byCertificate",
  ledgerByTime: "byTime",
  jobsByCreation: "byCreation",
} as const;

/**
 * How many partitions the fleet-wide ledger index (`byTime`) spreads its entries over: an entry's `feed`
 * is one of `ledger#0`..`ledger#f`, drawn from the random suffix of its sort key, so a factory burst or a
 * large import writes to 16 index partitions instead of one (each takes about 1,000 writes a second).
 */
export const LEDGER_FEED_SHARDS = 16;

/**
 * The service's tables as CreateTable inputs (all PAY_PER_REQUEST), in the order allowlist,
 * mappings, lots, ledger, idempotency.
 *
 * - allowlist: `deviceId` (S); GSIs `byLot` (`lot`, `deviceId`) and `byStatus` (`status`, `deviceId`).
 * - mappings: `selector` (S).
 * - lots: `lot` (S).
 * - ledger: `deviceId` (S, HASH) + `sk` (S, RANGE: `${at}#${certificateId ?? "-"}#${6 hex}`);
 *   GSI `byCertificate` (`certificateId`, `sk`); GSI `byTime` (`feed`, `sk`): the fleet-wide view,
 *   `feed` one of {@link LEDGER_FEED_SHARDS} shards (entries written before the index have none).
 * - idempotency: `id` (S), the key Powertools' DynamoDB persistence layer uses by default. Its
 *   TTL attribute (`expiration`) is not part of CreateTable; enable TTL separately where wanted.
 * - jobs (when named): `id` (S); GSI `byCreation` (`listed`, the constant `job`, and `createdAt`), newest first.
 */
export function tableDefinitions(names: TableNames): CreateTableCommandInput[] {
  return [
    {
      TableName: names.allowlist,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "deviceId", AttributeType: "S" },
        { AttributeName: "lot", AttributeType: "S" },
        { AttributeName: "status", AttributeType: "S" },
      ],
      KeySchema: [{ AttributeName: "deviceId", KeyType: "HASH" }],
      GlobalSecondaryIndexes: [
        {
          IndexName: indexNames.allowlistByLot,
          KeySchema: [
            { AttributeName: "lot", KeyType: "HASH" },
            { AttributeName: "deviceId", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
        {
          IndexName: indexNames.allowlistByStatus,
          KeySchema: [
            { AttributeName: "status", KeyType: "HASH" },
            { AttributeName: "deviceId", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    },
    {
      TableName: names.mappings,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "selector", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "selector", KeyType: "HASH" }],
    },
    {
      TableName: names.lots,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "lot", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "lot", KeyType: "HASH" }],
    },
    {
      TableName: names.ledger,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "deviceId", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
        { AttributeName: "certificateId", AttributeType: "S" },
        { AttributeName: "feed", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "deviceId", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: indexNames.ledgerByCertificate,
          KeySchema: [
            { AttributeName: "certificateId", KeyType: "HASH" },
            { AttributeName: "sk", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
        {
          IndexName: indexNames.ledgerByTime,
          KeySchema: [
            { AttributeName: "feed", KeyType: "HASH" },
            { AttributeName: "sk", KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "ALL" },
        },
      ],
    },
    {
      TableName: names.idempotency,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    },
    ...(names.jobs === undefined ? [] : [jobsTable(names.jobs)]),
  ];
}

/** The jobs table: key `id`; every job is listed in the `byCreation` index by its creation time. */
function jobsTable(name: string): CreateTableCommandInput {
  return {
    TableName: name,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [
      { AttributeName: "id", AttributeType: "S" },
      { AttributeName: "listed", AttributeType: "S" },
      { AttributeName: "createdAt", AttributeType: "S" },
    ],
    KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
    GlobalSecondaryIndexes: [
      {
        IndexName: indexNames.jobsByCreation,
        KeySchema: [
          { AttributeName: "listed", KeyType: "HASH" },
          { AttributeName: "createdAt", KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "ALL" },
      },
    ],
  };
}

/** How long {@link ensureTables} waits for each table to become ACTIVE. */
export interface EnsureTablesOptions {
  /** Seconds; default 120. */
  maxWaitSeconds?: number;
}

/**
 * Creates the tables that do not exist yet and waits until every table is ACTIVE. A table created
 * concurrently by someone else (ResourceInUseException) is waited for like the others.
 */
export async function ensureTables(
  client: DynamoDBClient,
  names: TableNames,
  options: EnsureTablesOptions = {},
): Promise<void> {
  const maxWaitTime = options.maxWaitSeconds ?? 120;
  await Promise.all(
    tableDefinitions(names).map(async (definition) => {
      const tableName = definition.TableName ?? "";
      if (!(await tableExists(client, tableName))) {
        try {
          await client.send(new CreateTableCommand(definition));
        } catch (error) {
          if (errorName(error) !== "ResourceInUseException") {
            throw mapDynamoError(error, "CreateTable", `table ${tableName}`);
          }
        }
      }
      try {
        await waitUntilTableExists(
          { client, maxWaitTime, minDelay: 1, maxDelay: 5 },
          { TableName: tableName },
        );
      } catch (error) {
        throw new JitrError(`table ${tableName} did not become ACTIVE within ${maxWaitTime}s`, {
          cause: error,
        });
      }
    }),
  );
}

async function tableExists(client: DynamoDBClient, tableName: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return true;
  } catch (error) {
    if (errorName(error) === "ResourceNotFoundException") return false;
    throw mapDynamoError(error, "DescribeTable", `table ${tableName}`);
  }
}
