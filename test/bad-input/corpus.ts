import { readFileSync } from "node:fs";
import { join } from "node:path";
import { paginateScan } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "../../adapters/dynamo/table.ts";

import type { startTestStack } from "../support/local-stack.ts";

/*
 * The bad-input corpus: cases are data under test/fixtures/bad-input/ (one JSON object per line, see its
 * README); this module reads them and snapshots what a case may
 * change (the tables and the IoT registry), so a runner can check that nothing changed beyond the answer.
 */

export type TestStack = Awaited<ReturnType<typeof startTestStack>>;

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "bad-input");

/** The cases of one manifest: every non-empty line that is not a `//` comment, parsed, with its line number. */
export function readCases<T extends { name: string }>(file: string): (T & { line: number })[] {
  const text = readFileSync(join(FIXTURES, file), "utf8");
  const cases: (T & { line: number })[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("//")) return;
    let value: T;
    try {
      value = JSON.parse(line) as T;
    } catch {
      throw new Error(`${file}:${index + 1}: not a JSON object`);
    }
    if (typeof value.name !== "string") throw new Error(`${file}:${index + 1}: a case needs a name`);
    cases.push({ ...value, line: index + 1 });
  });
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`${file}:${c.line}: the name ${c.name} is taken`);
    names.add(c.name);
  }
  return cases;
}

/** What a case may change: every table's items (the idempotency store aside: Powertools' own) and the IoT registry. */
export interface Snapshot {
  tables: Record<string, Record<string, unknown>[]>;
  /** Certificates by id: status, CA, attached policies and things. */
  certificates: Record<
    string,
    { status: string; caCertificateId?: string; policies: string[]; things: string[] }
  >;
  /** The rest of the registry as it persists it (things, types, groups, policies, attachments). */
  registry: Omit<ReturnType<TestStack["stack"]["aws"]["iot"]["inventory"]>, "certificates">;
}

/** Reads the tables through the real SDK, and the IoT registry's whole inventory. */
export async function snapshot(t: TestStack): Promise<Snapshot> {
  const doc = createDocumentClient(t.stack.clients.dynamo);
  const tables: Snapshot["tables"] = {};
  const names = t.stack.tables;
  const jobs = names.jobs === undefined ? [] : [names.jobs];
  for (const table of [names.allowlist, names.mappings, names.lots, names.ledger, ...jobs]) {
    const items: Record<string, unknown>[] = [];
    for await (const page of paginateScan({ client: doc }, { TableName: table }))
      items.push(...(page.Items ?? []));
    tables[table] = items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  const { certificates: records, ...registry } = t.stack.aws.iot.inventory();
  const certificates: Snapshot["certificates"] = {};
  for (const c of records) {
    certificates[c.certificateId] = {
      status: c.status,
      ...(c.caCertificateId !== undefined ? { caCertificateId: c.caCertificateId } : {}),
      policies: t.stack.aws.iot.policiesForPrincipal(c.certificateArn).sort(),
      things: t.stack.aws.iot.thingsForPrincipal(c.certificateArn).sort(),
    };
  }
  return { tables, certificates, registry };
}

/** The ledger entries `after` holds that `before` does not. */
export function newLedgerEntries(t: TestStack, before: Snapshot, after: Snapshot): Record<string, unknown>[] {
  const table = t.stack.tables.ledger;
  const seen = new Set((before.tables[table] ?? []).map((e) => JSON.stringify(e)));
  return (after.tables[table] ?? []).filter((e) => !seen.has(JSON.stringify(e)));
}

/** `after` with the ledger's new entries dropped, to compare the rest with `before`. */
export function withoutLedgerGrowth(t: TestStack, before: Snapshot, after: Snapshot): Snapshot {
  const table = t.stack.tables.ledger;
  return { ...after, tables: { ...after.tables, [table]: before.tables[table] ?? [] } };
}
