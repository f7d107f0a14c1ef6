/**
 * Index repair for the local DynamoDB after a process was killed.
 *
 * dynalite writes an item's secondary-index entries and the item itself as separate LevelDB writes: the
 * index entries first, then the item. A `kill -9` between the two leaves the table and its indexes apart:
 * an index entry for an item that never landed (a put), an entry with the new values beside an item that
 * kept its old ones (an update), or an item whose entries are gone (a delete). DynamoDB's indexes always
 * follow the table, so a query on one must not answer an item the table does not hold.
 *
 * After an unclean stop, before anything is served, every table with secondary indexes is compared with
 * its indexes, entry by entry, and each item found apart is written again through dynalite so its entries
 * are derived from the table once more: each differing index image is put (so dynalite's next write
 * removes exactly those entries), then the table's item is put back, or deleted when the table has none.
 */

import { canonicalJson } from "./canonical-json.ts";

/** A DynamoDB item in its wire form (attribute name -> typed value). */
type Item = Record<string, unknown>;

/** Calls dynalite itself (not through the endpoint's router); resolves with the body, throws on an error. */
export type DynaliteCall = (operation: string, body: unknown) => Promise<Record<string, unknown>>;

interface IndexDescription {
  IndexName: string;
  KeySchema: { AttributeName: string }[];
  Projection?: { ProjectionType?: string; NonKeyAttributes?: string[] };
}

interface TableDescription {
  TableName: string;
  KeySchema: { AttributeName: string }[];
  GlobalSecondaryIndexes?: IndexDescription[];
  LocalSecondaryIndexes?: IndexDescription[];
}

/** What a repair found and did. */
export interface IndexRepair {
  /** Tables with secondary indexes that were compared. */
  tables: number;
  /** Items written again because a table and its indexes disagreed about them. */
  items: number;
}

async function* scan(call: DynaliteCall, tableName: string, indexName?: string): AsyncGenerator<Item> {
  let start: unknown;
  do {
    const page = await call("Scan", {
      TableName: tableName,
      ...(indexName ? { IndexName: indexName } : {}),
      ...(start ? { ExclusiveStartKey: start } : {}),
    });
    for (const item of (page.Items as Item[] | undefined) ?? []) yield item;
    start = page.LastEvaluatedKey;
  } while (start);
}

async function listTables(call: DynaliteCall): Promise<string[]> {
  const names: string[] = [];
  let start: unknown;
  do {
    const page = await call("ListTables", start ? { ExclusiveStartTableName: start } : {});
    names.push(...((page.TableNames as string[] | undefined) ?? []));
    start = page.LastEvaluatedTableName;
  } while (start);
  return names;
}

/** The entry an index holds for `item`: undefined when the item lacks one of the index's key attributes. */
function projection(item: Item, index: IndexDescription, tableKeys: string[]): Item | undefined {
  const indexKeys = index.KeySchema.map((k) => k.AttributeName);
  if (!indexKeys.every((name) => item[name] !== undefined)) return undefined;
  const type = index.Projection?.ProjectionType ?? "ALL";
  if (type === "ALL") return item;
  const names = new Set([...indexKeys, ...tableKeys, ...(index.Projection?.NonKeyAttributes ?? [])]);
  return Object.fromEntries(Object.entries(item).filter(([name]) => names.has(name)));
}

/** Compares one table with its indexes and writes again every item they disagree about. */
async function repairTable(call: DynaliteCall, table: TableDescription): Promise<number> {
  const indexes = [...(table.GlobalSecondaryIndexes ?? []), ...(table.LocalSecondaryIndexes ?? [])];
  const tableKeys = table.KeySchema.map((k) => k.AttributeName);
  const keyOf = (item: Item): Item => Object.fromEntries(tableKeys.map((name) => [name, item[name]]));
  const items = new Map<string, Item>();
  for await (const item of scan(call, table.TableName)) items.set(canonicalJson(keyOf(item)), item);

  /** Items found apart, with the index images that differ from the table's (to be removed). */
  const apart = new Map<string, { key: Item; images: Map<string, Item> }>();
  const mark = (id: string, key: Item, image?: Item) => {
    const entry = apart.get(id) ?? { key, images: new Map<string, Item>() };
    if (image) entry.images.set(canonicalJson(image), image);
    apart.set(id, entry);
  };
  for (const index of indexes) {
    const seen = new Set<string>();
    for await (const entry of scan(call, table.TableName, index.IndexName)) {
      const key = keyOf(entry);
      const id = canonicalJson(key);
      seen.add(id);
      const item = items.get(id);
      const expected = item === undefined ? undefined : projection(item, index, tableKeys);
      if (expected === undefined || canonicalJson(expected) !== canonicalJson(entry)) mark(id, key, entry);
    }
    for (const [id, item] of items)
      if (!seen.has(id) && projection(item, index, tableKeys) !== undefined) mark(id, keyOf(item));
  }

  for (const [id, { key, images }] of apart) {
    for (const image of images.values()) await call("PutItem", { TableName: table.TableName, Item: image });
    const item = items.get(id);
    if (item) await call("PutItem", { TableName: table.TableName, Item: item });
    else await call("DeleteItem", { TableName: table.TableName, Key: key });
  }
  return apart.size;
}

/** Brings every table's secondary indexes back in line with the table (see the module's comment). */
export async function repairIndexes(call: DynaliteCall): Promise<IndexRepair> {
  const repair: IndexRepair = { tables: 0, items: 0 };
  for (const name of await listTables(call)) {
    const { Table } = (await call("DescribeTable", { TableName: name })) as { Table: TableDescription };
    if (!Table.GlobalSecondaryIndexes?.length && !Table.LocalSecondaryIndexes?.length) continue;
    repair.tables += 1;
    repair.items += await repairTable(call, Table);
  }
  return repair;
}
