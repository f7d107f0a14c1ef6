/** DynamoLots.recount against dynalite: the count is set only while it is still the count read. */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoAllowlist } from "../../../adapters/dynamo/allowlist.ts";
import { DynamoLots } from "../../../adapters/dynamo/lots.ts";
import { createDocumentClient } from "../../../adapters/dynamo/table.ts";
import { startDynalite, testTableNames } from "../../support/dynalite.ts";
import { countInLot } from "../../support/lot-count.ts";

describe("DynamoLots.recount", () => {
  let dynamo: Awaited<ReturnType<typeof startDynalite>>;
  let lots: DynamoLots;
  let allowlist: DynamoAllowlist;
  beforeAll(async () => {
    dynamo = await startDynalite(testTableNames);
    const doc = createDocumentClient(dynamo.client);
    lots = new DynamoLots({ doc, table: testTableNames.lots, recordsTable: testTableNames.allowlist });
    allowlist = new DynamoAllowlist({ doc, table: testTableNames.allowlist });
  });
  afterAll(async () => dynamo.close());

  it("sets the count when it is the one expected, and refuses when it moved or the lot is gone", async () => {
    // Prepare
    await lots.create({ lot: "rc-1", version: 1, provisionedCount: 0 });
    await countInLot({ allowlist, lots }, "rc-1", 2);

    // Act
    const moved = await lots.recount("rc-1", 7, 1);
    const set = await lots.recount("rc-1", 7, 2);
    const gone = await lots.recount("rc-absent", 3, 0);

    // Assess
    expect([moved, set, gone]).toEqual([false, true, false]);
    expect((await lots.get("rc-1"))?.provisionedCount).toBe(7);
    expect(await lots.get("rc-absent")).toBeUndefined();
  });

  it("takes a lot with no count as counting 0", async () => {
    // Prepare: a lot written without provisionedCount
    await createDocumentClient(dynamo.client).send(
      new PutCommand({ TableName: testTableNames.lots, Item: { lot: "rc-2", version: 1 } }),
    );

    // Act
    const set = await lots.recount("rc-2", 2, 0);

    // Assess
    expect(set).toBe(true);
    expect((await lots.get("rc-2"))?.provisionedCount).toBe(2);
  });
});
