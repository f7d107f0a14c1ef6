import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
} from "@aws-sdk/client-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ensureTables, type TableNames, tableDefinitions } from "../../adapters/tables.ts";
import { JitrError } from "../../domain/errors.ts";

const names: TableNames = {
  allowlist: "t-allowlist",
  mappings: "t-mappings",
  lots: "t-lots",
  ledger: "t-ledger",
  idempotency: "t-idempotency",
};

describe("tableDefinitions", () => {
  const definitions = tableDefinitions(names);
  const byName = (name: string) => definitions.find((definition) => definition.TableName === name);

  it("defines the five tables, all on demand", () => {
    // Prepare
    const expected = Object.values(names);

    // Act
    const tables = definitions.map((definition) => [definition.TableName, definition.BillingMode]);

    // Assess
    expect(tables).toStrictEqual(expected.map((name) => [name, "PAY_PER_REQUEST"]));
  });

  it.each([
    { table: names.allowlist, hash: "deviceId" },
    { table: names.mappings, hash: "selector" },
    { table: names.lots, hash: "lot" },
    { table: names.idempotency, hash: "id" },
  ])("$table is keyed by $hash (S)", ({ table, hash }) => {
    // Prepare
    const definition = byName(table);

    // Act
    const key = definition?.KeySchema;

    // Assess
    expect(key).toStrictEqual([{ AttributeName: hash, KeyType: "HASH" }]);
    expect(definition?.AttributeDefinitions).toContainEqual({ AttributeName: hash, AttributeType: "S" });
  });

  it("keys the ledger by deviceId and sk, with a byCertificate index", () => {
    // Prepare
    const ledger = byName(names.ledger);

    // Act
    const index = ledger?.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === "byCertificate");

    // Assess
    expect(ledger?.KeySchema).toStrictEqual([
      { AttributeName: "deviceId", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" },
    ]);
    expect(index).toStrictEqual({
      IndexName: "byCertificate",
      KeySchema: [
        { AttributeName: "certificateId", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      Projection: { ProjectionType: "ALL" },
    });
    expect(ledger?.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: "deviceId", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
        { AttributeName: "certificateId", AttributeType: "S" },
      ]),
    );
  });

  it("indexes the allowlist by lot and by status", () => {
    // Prepare
    const allowlist = byName(names.allowlist);

    // Act
    const indexes = allowlist?.GlobalSecondaryIndexes?.map((gsi) => [gsi.IndexName, gsi.KeySchema]);

    // Assess
    expect(indexes).toStrictEqual([
      [
        "byLot",
        [
          { AttributeName: "lot", KeyType: "HASH" },
          { AttributeName: "deviceId", KeyType: "RANGE" },
        ],
      ],
      [
        "byStatus",
        [
          { AttributeName: "status", KeyType: "HASH" },
          { AttributeName: "deviceId", KeyType: "RANGE" },
        ],
      ],
    ]);
  });

  it("defines every key attribute it uses, and no other", () => {
    // Prepare
    const problems: string[] = [];

    // Act
    for (const definition of definitions) {
      const keys = [
        ...(definition.KeySchema ?? []),
        ...(definition.GlobalSecondaryIndexes ?? []).flatMap((gsi) => gsi.KeySchema ?? []),
      ].map((key) => key.AttributeName);
      const defined = (definition.AttributeDefinitions ?? []).map((attribute) => attribute.AttributeName);
      if ([...new Set(keys)].sort().join() !== [...defined].sort().join())
        problems.push(String(definition.TableName));
    }

    // Assess
    expect(problems).toStrictEqual([]);
  });
});

describe("ensureTables", () => {
  const client = new DynamoDBClient({ region: "eu-west-1" });
  const ddb = mockClient(client);
  const notFound = () =>
    new ResourceNotFoundException({ message: "Requested resource not found", $metadata: {} });

  beforeEach(() => {
    ddb.reset();
  });

  it("creates only the missing tables and waits for them", async () => {
    // Prepare
    ddb.on(DescribeTableCommand).resolves({ Table: { TableStatus: "ACTIVE" } });
    ddb
      .on(DescribeTableCommand, { TableName: names.ledger })
      .rejectsOnce(notFound())
      .resolves({ Table: { TableStatus: "ACTIVE" } });
    ddb.on(CreateTableCommand).resolves({});

    // Act
    await ensureTables(client, names);

    // Assess
    expect(ddb).toHaveReceivedCommandExactlyOnceWith(CreateTableCommand, { TableName: names.ledger });
    expect(ddb.commandCalls(CreateTableCommand)[0]?.args[0].input).toStrictEqual(
      tableDefinitions(names).find((definition) => definition.TableName === names.ledger),
    );
  });

  it("tolerates a table created concurrently", async () => {
    // Prepare
    ddb.on(DescribeTableCommand).resolves({ Table: { TableStatus: "ACTIVE" } });
    ddb
      .on(DescribeTableCommand, { TableName: names.lots })
      .rejectsOnce(notFound())
      .resolves({ Table: { TableStatus: "ACTIVE" } });
    ddb.on(CreateTableCommand).rejects(new ResourceInUseException({ message: "in use", $metadata: {} }));

    // Act
    const result = ensureTables(client, names);

    // Assess
    await expect(result).resolves.toBeUndefined();
  });

  it("reports other failures as JitrError", async () => {
    // Prepare
    ddb.on(DescribeTableCommand).rejects(
      Object.assign(new Error("denied"), {
        name: "AccessDeniedException",
        $metadata: { httpStatusCode: 400 },
      }),
    );

    // Act
    const result = ensureTables(client, names);

    // Assess
    await expect(result).rejects.toBeInstanceOf(JitrError);
    expect(ddb).not.toHaveReceivedCommand(CreateTableCommand);
  });
});
