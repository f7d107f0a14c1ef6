/** The fleet-wide ledger (`byTime` index over 16 shards) against dynalite, so queries, filters and paging run for real. */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoLedger, ledgerFeedOf, ledgerSortKey } from "../../../adapters/dynamo/ledger.ts";
import { createDocumentClient } from "../../../adapters/dynamo/table.ts";
import { ValidationError } from "../../../domain/errors.ts";
import type { LedgerFilter } from "../../../domain/ports.ts";
import type { LedgerEntry } from "../../../domain/types.ts";
import { startDynalite } from "../../support/dynalite.ts";

let db: Awaited<ReturnType<typeof startDynalite>>;
let tables = 0;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => db.close());

/** A ledger on fresh tables of its own. */
async function freshLedger() {
  tables += 1;
  const names = {
    allowlist: `f${tables}-allowlist`,
    mappings: `f${tables}-mappings`,
    lots: `f${tables}-lots`,
    ledger: `f${tables}-ledger`,
    idempotency: `f${tables}-idempotency`,
  };
  const { ensureTables } = await import("../../../adapters/tables.ts");
  await ensureTables(db.client, names);
  const doc = createDocumentClient(db.client);
  return { doc, table: names.ledger, ledger: new DynamoLedger({ doc, table: names.ledger }) };
}

const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();

/** Every entry the filter lets through, page by page. */
async function readAll(ledger: DynamoLedger, filter: LedgerFilter, limit: number) {
  const pages: LedgerEntry[][] = [];
  let cursor: string | undefined;
  do {
    const page = await ledger.fleet(filter, cursor === undefined ? { limit } : { limit, cursor });
    pages.push(page.items);
    cursor = page.cursor;
  } while (cursor !== undefined && pages.length < 100);
  return pages;
}

describe("DynamoLedger.fleet", () => {
  it("gives every device's entries once, newest first across pages", async () => {
    // Prepare: 90 entries of 30 devices, one a second
    const { ledger } = await freshLedger();
    const entries: LedgerEntry[] = Array.from({ length: 90 }, (_, i) => ({
      deviceId: `dev-${i % 30}`,
      at: at(i),
      certificateId: `c-${i}`,
      kind: "denied",
      reason: "not-allowlisted",
    }));
    await ledger.appendMany(entries);

    // Act
    const pages = await readAll(ledger, {}, 20);

    // Assess
    expect(pages.slice(0, -1).every((p) => p.length === 20)).toBe(true);
    expect(pages.flat().map((e) => e.certificateId)).toEqual(entries.map((e) => e.certificateId).reverse());
    expect(pages.flat().every((e) => !("feed" in e))).toBe(true);
  });

  it("filters by kind, reason, lot and time", async () => {
    // Prepare
    const { ledger } = await freshLedger();
    await ledger.appendMany([
      { deviceId: "a", at: at(1), kind: "denied", reason: "not-allowlisted", lot: "lot-1" },
      { deviceId: "b", at: at(2), kind: "denied", reason: "blocked", lot: "lot-1" },
      { deviceId: "c", at: at(3), kind: "provisioned", lot: "lot-2" },
      { deviceId: "d", at: at(4), kind: "failed", lot: "lot-1" },
      { deviceId: "#mapping:default", at: at(5), kind: "admin", actor: "alice" },
    ]);
    const devices = async (filter: LedgerFilter) =>
      (await readAll(ledger, filter, 10)).flat().map((e) => e.deviceId);

    // Act
    const results = {
      denied: await devices({ kind: "denied" }),
      blocked: await devices({ reason: "blocked" }),
      lot1: await devices({ lot: "lot-1" }),
      since: await devices({ since: at(3) }),
      all: await devices({ kind: "denied", lot: "lot-1", since: at(2) }),
    };

    // Assess
    expect(results).toEqual({
      denied: ["b", "a"],
      blocked: ["b"],
      lot1: ["d", "b", "a"],
      since: ["#mapping:default", "d", "c"],
      all: ["b"],
    });
  });

  it("keeps time order when a selective filter finds matches unevenly across shards", async () => {
    // Prepare: shard 0 holds many newer non-matching entries above one old match; shard 1 holds matches in between
    const { doc, table, ledger } = await freshLedger();
    const put = async (entry: LedgerEntry, suffix: string) => {
      const sk = ledgerSortKey(entry, suffix);
      await doc.send(new PutCommand({ TableName: table, Item: { ...entry, sk, feed: ledgerFeedOf(sk) } }));
    };
    for (let i = 0; i < 40; i++)
      await put({ deviceId: `noise-${i}`, at: at(100 + i), kind: "provisioned" }, `0${i}`);
    await put({ deviceId: "old-match", at: at(50), kind: "failed" }, "0ff");
    for (let i = 0; i < 5; i++)
      await put({ deviceId: `match-${i}`, at: at(60 + i), kind: "failed" }, `1${i}`);
    await put({ deviceId: "oldest-match", at: at(10), kind: "failed" }, "1ff");

    // Act
    const pages = await readAll(ledger, { kind: "failed" }, 3);

    // Assess
    expect(pages.flat().map((e) => e.deviceId)).toEqual([
      "match-4",
      "match-3",
      "match-2",
      "match-1",
      "match-0",
      "old-match",
      "oldest-match",
    ]);
  });

  it("refuses a cursor it did not make", async () => {
    // Prepare
    const { ledger } = await freshLedger();
    const forged = Buffer.from(JSON.stringify([{ deviceId: "x" }]), "utf8").toString("base64url");

    // Act
    const attempts = [ledger.fleet({}, { cursor: forged }), ledger.fleet({}, { cursor: "%%%" })];

    // Assess
    for (const attempt of attempts) await expect(attempt).rejects.toBeInstanceOf(ValidationError);
  });

  it("does not list an entry written without an index shard (before the index existed)", async () => {
    // Prepare
    const { doc, table, ledger } = await freshLedger();
    const entry: LedgerEntry = { deviceId: "legacy", at: at(1), kind: "denied", reason: "blocked" };
    await doc.send(new PutCommand({ TableName: table, Item: { ...entry, sk: ledgerSortKey(entry, "abc") } }));
    await ledger.append({ deviceId: "new", at: at(2), kind: "denied", reason: "blocked" });

    // Act
    const page = await ledger.fleet({}, {});

    // Assess
    expect(page.items.map((e) => e.deviceId)).toEqual(["new"]);
    expect((await ledger.history("legacy", {})).items).toHaveLength(1);
  });
});
