import { createRequire } from "node:module";
import type TableConstructor from "cli-table3";

const requireModule = createRequire(import.meta.url);

/** The table renderer, loaded when the first table is printed rather than on every start. */
const Table = (): typeof TableConstructor => requireModule("cli-table3") as typeof TableConstructor;

/** Prints rows as a table for people, or as JSON with `--json`. */
export function printRows<T extends object>(
  rows: readonly T[],
  columns: readonly (keyof T & string)[],
  json: boolean,
): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const table = new (Table())({ head: [...columns], style: { head: [], border: [] } });
  for (const row of rows) table.push(columns.map((c) => formatCell(row[c])));
  process.stdout.write(`${table.toString()}\n`);
}

/** Prints one object as a two-column table, or as JSON. */
export function printObject(value: object, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const table = new (Table())({ style: { head: [], border: [] } });
  for (const [key, v] of Object.entries(value)) table.push({ [key]: formatCell(v) });
  process.stdout.write(`${table.toString()}\n`);
}

/** Prints one page of a listing: its rows (and the cursor of the next page on stderr), or the page as JSON. */
export function printPage<T extends object>(
  page: { items: readonly T[]; cursor?: string },
  columns: readonly (keyof T & string)[],
  json: boolean,
): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
    return;
  }
  printRows(page.items, columns, false);
  if (page.cursor !== undefined) process.stderr.write(`more: --cursor ${page.cursor}\n`);
}

function formatCell(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** An error the CLI reports as one line and a non-zero exit status. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}
