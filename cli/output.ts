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
  const cells = rows.map((row) => columns.map((c) => formatCell(row[c])));
  const colWidths = fitColumns(
    columns.map((c, i) => Math.max(c.length, ...cells.map((r) => longestLine(r[i] ?? "")))),
    terminalWidth(),
  );
  const table = new (Table())({
    head: [...columns],
    style: { head: [], border: [] },
    ...(colWidths !== undefined ? { colWidths, wordWrap: true, wrapOnWordBoundary: false } : {}),
  });
  for (const row of cells) table.push(row);
  process.stdout.write(`${table.toString()}\n`);
}

/** Prints one object as a two-column table, or as JSON. */
export function printObject(value: object, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const entries = Object.entries(value).map(([key, v]) => [key, formatCell(v)] as const);
  const colWidths = fitColumns(
    [
      Math.max(0, ...entries.map(([key]) => key.length)),
      Math.max(0, ...entries.map(([, v]) => longestLine(v))),
    ],
    terminalWidth(),
  );
  const table = new (Table())({
    style: { head: [], border: [] },
    ...(colWidths !== undefined ? { colWidths, wordWrap: true, wrapOnWordBoundary: false } : {}),
  });
  for (const [key, v] of entries) table.push({ [key]: v });
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

/** The terminal's width in columns, or undefined when stdout is not a terminal (nothing is wrapped then). */
function terminalWidth(): number | undefined {
  const columns = process.stdout.isTTY === true ? process.stdout.columns : undefined;
  const forced = Number(process.env.JITR_COLUMNS);
  return Number.isInteger(forced) && forced > 0 ? forced : columns;
}

const longestLine = (text: string): number => Math.max(0, ...text.split("\n").map((line) => line.length));

/**
 * Column widths (cell padding and border included) that fit a table into `width`, or undefined when it
 * fits as it is (or the width is unknown). The widest columns give up room first, none below 8.
 */
export function fitColumns(contentWidths: number[], width: number | undefined): number[] | undefined {
  const widths = contentWidths.map((w) => w + 2); // one space of padding each side
  const total = () => widths.reduce((sum, w) => sum + w, 0) + widths.length + 1; // + borders
  if (width === undefined || total() <= width) return undefined;
  const MIN = 8;
  while (total() > width) {
    const widest = widths.reduce((at, w, i) => (w > (widths[at] ?? 0) ? i : at), 0);
    const current = widths[widest] ?? MIN;
    if (current <= MIN) break;
    widths[widest] = current - 1;
  }
  return widths;
}

function formatCell(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** An error the CLI reports as one line (or, under `--json`, as an error body) and a non-zero exit status. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The API's error code and details, when the error came from the API. */
    readonly api?: { code: string; details?: unknown },
  ) {
    super(message);
    this.name = "CliError";
  }
}
