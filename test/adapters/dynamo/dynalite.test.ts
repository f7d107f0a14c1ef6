/**
 * The DynamoDB adapters against dynalite (an in-process DynamoDB, behind the local endpoint's router for
 * transactions), so the expressions are evaluated by a real parser rather than only compared as strings.
 */

import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoAllowlist } from "../../../adapters/dynamo/allowlist.ts";
import { DynamoLedger } from "../../../adapters/dynamo/ledger.ts";
import { DynamoLots } from "../../../adapters/dynamo/lots.ts";
import { DynamoMappings } from "../../../adapters/dynamo/mappings.ts";
import { createDocumentClient } from "../../../adapters/dynamo/table.ts";
import { ensureTables, type TableNames } from "../../../adapters/tables.ts";
import { ConflictError } from "../../../domain/errors.ts";
import { startDynalite } from "../../support/dynalite.ts";
import { countInLot } from "../../support/lot-count.ts";

const names: TableNames = {
  allowlist: "allowlist",
  mappings: "mappings",
  lots: "lots",
  ledger: "ledger",
  idempotency: "idempotency",
};

let db: Awaited<ReturnType<typeof startDynalite>>;
let client: DynamoDBClient;

beforeAll(async () => {
  db = await startDynalite(names);
  client = db.client;
});

afterAll(async () => {
  await db?.close();
});

const docClient = () => createDocumentClient(client);

describe("against dynalite", () => {
  it("ensureTables is idempotent", async () => {
    // Prepare: the tables exist from beforeAll

    // Act
    const result = ensureTables(client, names);

    // Assess
    await expect(result).resolves.toBeUndefined();
  });

  it("lists records by device id prefix and profile, alone and with status or lot, following the cursor", async () => {
    // Prepare
    const doc = docClient();
    const allowlist = new DynamoAllowlist({ doc, table: names.allowlist });
    const records = [
      { deviceId: "pfx-a1", status: "allowed", profile: "sensor", lot: "L-pfx", version: 1 },
      { deviceId: "pfx-a2", status: "blocked", profile: "sensor", version: 1 },
      { deviceId: "pfx-b1", status: "allowed", profile: "gateway", lot: "L-pfx", version: 1 },
      { deviceId: "other-pfx-a", status: "allowed", profile: "sensor", version: 1 },
    ];
    for (const Item of records) await doc.send(new PutCommand({ TableName: names.allowlist, Item }));
    const all = async (filter: Parameters<typeof allowlist.list>[0]) => {
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await allowlist.list(filter, { limit: 1, ...(cursor ? { cursor } : {}) });
        ids.push(...page.items.map((r) => r.deviceId));
        cursor = page.cursor;
      } while (cursor !== undefined);
      return ids.sort();
    };

    // Act
    const byPrefix = await all({ prefix: "pfx-a" });
    const byProfile = await all({ prefix: "pfx-", profile: "sensor" });
    const withStatus = await all({ prefix: "pfx-", status: "allowed" });
    const withLot = await all({ lot: "L-pfx", profile: "gateway" });

    // Assess
    expect(byPrefix).toEqual(["pfx-a1", "pfx-a2"]);
    expect(byProfile).toEqual(["pfx-a1", "pfx-a2"]);
    expect(withStatus).toEqual(["pfx-a1", "pfx-b1"]);
    expect(withLot).toEqual(["pfx-b1"]);
  });

  it("binds, completes and releases a device", async () => {
    // Prepare
    const doc = docClient();
    const allowlist = new DynamoAllowlist({ doc, table: names.allowlist });
    await doc.send(
      new PutCommand({
        TableName: names.allowlist,
        Item: { deviceId: "dev-1", status: "allowed", version: 1 },
      }),
    );

    // Act
    const first = await allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c1",
      expectedCertificateId: undefined,
    });
    const rival = await allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c2",
      expectedCertificateId: undefined,
    });
    const unknownDevice = await allowlist.claimBinding({
      deviceId: "nobody",
      certificateId: "c1",
      expectedCertificateId: undefined,
    });
    await allowlist.completeBinding({
      deviceId: "dev-1",
      certificateId: "c1",
      thingName: "dev-1",
      policyName: "p",
      provisionedAt: "2024-05-01T00:00:00.000Z",
    });
    const lostComplete = await allowlist
      .completeBinding({
        deviceId: "dev-1",
        certificateId: "c2",
        thingName: "dev-1",
        policyName: "p",
        provisionedAt: "2024-05-01T00:00:00.000Z",
      })
      .then(
        () => undefined,
        (reason: unknown) => reason,
      );
    const replaced = await allowlist.claimBinding({
      deviceId: "dev-1",
      certificateId: "c3",
      expectedCertificateId: "c1",
    });
    await allowlist.releaseBinding({ deviceId: "dev-1", certificateId: "c3", expectedCertificateId: "c1" });
    const afterRelease = await allowlist.get("dev-1");

    // Assess
    expect([first, rival, unknownDevice, replaced]).toStrictEqual([true, false, false, true]);
    expect(lostComplete).toBeInstanceOf(ConflictError);
    expect(afterRelease).toStrictEqual({
      deviceId: "dev-1",
      status: "allowed",
      version: 1,
      certificateId: "c1",
      thingName: "dev-1",
      policyName: "p",
      provisionedAt: "2024-05-01T00:00:00.000Z",
    });
    expect(await allowlist.get("nobody")).toBeUndefined();
  });

  it("removes a binding that did not exist before the claim", async () => {
    // Prepare
    const doc = docClient();
    const allowlist = new DynamoAllowlist({ doc, table: names.allowlist });
    await doc.send(
      new PutCommand({
        TableName: names.allowlist,
        Item: { deviceId: "dev-2", status: "allowed", version: 1 },
      }),
    );
    await allowlist.claimBinding({
      deviceId: "dev-2",
      certificateId: "c1",
      expectedCertificateId: undefined,
    });

    // Act
    await allowlist.releaseBinding({
      deviceId: "dev-2",
      certificateId: "c1",
      expectedCertificateId: undefined,
    });

    // Assess
    expect((await allowlist.get("dev-2"))?.certificateId).toBeUndefined();
  });

  it("takes places up to the lot's quota and gives them back (a lot with quota 0 or none, a missing lot)", async () => {
    // Prepare
    const doc = docClient();
    const lots = new DynamoLots({ doc, table: names.lots, recordsTable: names.allowlist });
    await doc.send(new PutCommand({ TableName: names.lots, Item: { lot: "L1", maxDevices: 2 } }));
    await doc.send(new PutCommand({ TableName: names.lots, Item: { lot: "L0", maxDevices: 0 } }));
    await doc.send(new PutCommand({ TableName: names.lots, Item: { lot: "Lx" } }));
    const take = async (deviceId: string, lot: string) => {
      await doc.send(
        new PutCommand({
          TableName: names.allowlist,
          Item: { deviceId, status: "allowed", version: 1, lot, certificateId: `c-${deviceId}` },
        }),
      );
      return lots.takePlace({ deviceId, certificateId: `c-${deviceId}`, lot });
    };

    // Act
    const results = [await take("q1", "L1"), await take("q2", "L1"), await take("q3", "L1")];
    const given = await lots.givePlaceBack({
      deviceId: "q1",
      lot: "L1",
      boundTo: "c-q1",
      releaseClaim: undefined,
    });
    const afterRelease = await lots.get("L1");
    const others = [await take("q4", "L0"), await take("q5", "Lx"), await take("q6", "nope")];

    // Assess
    expect(results).toStrictEqual(["counted", "counted", "full"]);
    expect(given).toBe(true);
    expect(afterRelease).toStrictEqual({ lot: "L1", maxDevices: 2, provisionedCount: 1 });
    expect(others).toStrictEqual(["full", "counted", "full"]);
    expect(await lots.get("nope")).toBeUndefined();
  });

  it("removes a lot only at its version and while it counts no device", async () => {
    // Prepare
    const doc = docClient();
    const lots = new DynamoLots({ doc, table: names.lots, recordsTable: names.allowlist });
    const allowlist = new DynamoAllowlist({ doc, table: names.allowlist });
    await doc.send(new PutCommand({ TableName: names.lots, Item: { lot: "R1", version: 2 } }));
    await doc.send(new PutCommand({ TableName: names.lots, Item: { lot: "R2", version: 1 } }));
    await doc.send(new PutCommand({ TableName: names.lots, Item: { lot: "R3" } }));
    await countInLot({ allowlist, lots }, "R2");
    const counted = (await allowlist.list({}, { limit: 100 })).items.find((r) => r.lotCounted === "R2");

    // Act
    const staleVersion = await lots.remove("R1", 1);
    const counting = await lots.remove("R2", 1);
    await lots.givePlaceBack({
      deviceId: counted?.deviceId ?? "",
      lot: "R2",
      boundTo: counted?.certificateId,
      releaseClaim: undefined,
    });
    const emptied = await lots.remove("R2", 1);
    const unversioned = await lots.remove("R3", 0);
    const current = await lots.remove("R1", 2);

    // Assess
    expect([staleVersion, counting, emptied, unversioned, current]).toStrictEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    for (const lot of ["R1", "R2", "R3"]) expect(await lots.get(lot)).toBeUndefined();
  });

  it("reads several mappings at once", async () => {
    // Prepare
    const doc = docClient();
    const mappings = new DynamoMappings({ doc, table: names.mappings });
    await doc.send(
      new PutCommand({ TableName: names.mappings, Item: { selector: "profile:a", version: 1 } }),
    );
    await doc.send(new PutCommand({ TableName: names.mappings, Item: { selector: "lot:L1", version: 2 } }));

    // Act
    const found = await mappings.getMany(["profile:a", "lot:L1", "ca:none"]);

    // Assess
    expect(found.map((mapping) => mapping.selector).sort()).toStrictEqual(["lot:L1", "profile:a"]);
  });

  it("appends ledger entries and pages through them newest first", async () => {
    // Prepare
    const doc = docClient();
    const ledger = new DynamoLedger({ doc, table: names.ledger });
    const at = (second: number) => `2024-05-01T00:00:0${second}.000Z`;
    await ledger.append({
      deviceId: "dev-9",
      at: at(1),
      certificateId: "c9",
      kind: "denied",
      reason: "blocked",
    });
    await ledger.append({
      deviceId: "dev-9",
      at: at(2),
      certificateId: "c9",
      kind: "provisioned",
      error: undefined,
    });
    await ledger.append({ deviceId: "dev-9", at: at(2), certificateId: "c9", kind: "failed" });
    await ledger.append({ deviceId: "dev-9", at: at(3), kind: "admin", actor: "ops" });

    // Act
    const first = await ledger.history("dev-9", { limit: 2 });
    const second = await ledger.history("dev-9", { limit: 2, cursor: first.cursor });
    const byCertificate = await ledger.historyOfCertificate("c9", {});

    // Assess
    const firstAts = first.items.map((entry) => entry.at);
    const secondAts = second.items.map((entry) => entry.at);
    expect(firstAts).toStrictEqual([at(3), at(2)]);
    expect(secondAts).toStrictEqual([at(2), at(1)]);
    expect(byCertificate.items).toHaveLength(3);
    expect(byCertificate.items.every((entry) => entry.certificateId === "c9")).toBe(true);
  });
});
