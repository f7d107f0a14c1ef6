import { once } from "node:events";
import { parse } from "csv-parse";
import { parse as parseSync } from "csv-parse/sync";
import { JitrError, ValidationError } from "../errors.ts";
import { ALLOWLIST_FIELDS } from "../records.ts";

/*
 * Reading import lines into allowlist bodies: JSON lines (an object a line, or an AWS bulk-provisioning
 * parameter line) or CSV (a header, then records; a quoted field may span lines). The format is given
 * or sniffed from the first non-blank line. A line that cannot be read becomes a problem with its line
 * number; a CSV header that cannot be read refuses the whole import.
 */

export type ImportFormat = "jsonl" | "csv";

/**
 * One line read: an allowlist body to validate (with warnings), or why the line cannot be read. `merge`
 * marks an AWS bulk-provisioning line: it merges into an existing record instead of replacing it.
 */
export type ParsedLine =
  | { line: number; body: Record<string, unknown>; warnings: string[]; merge: boolean }
  | { line: number; problem: string };

/** Which limit an import body broke: one line's length, or the whole body's size. */
export type ImportLimit = "line" | "body";

/**
 * Thrown by an import's line source when the body breaks a limit (see the admin API's import limits):
 * reading stops at `line`, the line that broke it; the lines before it were read in full.
 */
export class ImportLimitError extends JitrError {
  constructor(
    readonly limit: ImportLimit,
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = "ImportLimitError";
  }
}

/** Sniffs the format from the first non-blank line: `{` starts JSON lines, anything else is a CSV header. */
export const sniffFormat = (firstLine: string): ImportFormat =>
  firstLine.trimStart().startsWith("{") ? "jsonl" : "csv";

/** Reads lines (numbered from `firstLine`) into allowlist bodies, calling `decided` once the format is known. */
export async function* parseLines(
  lines: AsyncIterable<string>,
  format: ImportFormat | undefined,
  decided: (format: ImportFormat) => void,
  firstLine = 1,
): AsyncGenerator<ParsedLine> {
  const iterator = lines[Symbol.asyncIterator]();
  let lineNumber = firstLine - 1;
  const next = async (): Promise<string | undefined> => {
    const { value, done } = await iterator.next();
    if (done) return undefined;
    lineNumber += 1;
    return value.endsWith("\r") ? value.slice(0, -1) : value;
  };
  let first = await next();
  while (first !== undefined && first.trim() === "") first = await next();
  if (first === undefined) return;
  const chosen = format ?? sniffFormat(first);
  decided(chosen);
  if (chosen === "csv") {
    yield* parseCsv(first, lineNumber, next);
    return;
  }
  for (let text: string | undefined = first; text !== undefined; text = await next()) {
    if (text.trim() !== "") yield parseJsonLine(text, lineNumber);
  }
}

/**
 * CSV (RFC 4180, read by csv-parse): the header names the columns; a quoted field may span lines; a
 * record that cannot be read is reported with its line and the rest goes on.
 */
async function* parseCsv(
  header: string,
  headerLine: number,
  next: () => Promise<string | undefined>,
): AsyncGenerator<ParsedLine> {
  const columns = csvColumns(header);
  const problems: ParsedLine[] = [];
  const parser = parse({
    info: true,
    relax_column_count: true,
    // A quote inside an unquoted field, or text after a closing quote, is kept as written: csv-parse
    // cannot find the next record reliably after refusing it, and one bad field must not cost the rest.
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (error) => {
      problems.push({ line: headerLine + Number(error?.lines ?? 0), problem: csvProblem(error?.code) });
      return undefined;
    },
  });
  // A line source that fails (a limit broken) ends the records read so far; its error is raised after them.
  let sourceFailure: { error: unknown } | undefined;
  const feeding = (async () => {
    try {
      for (let text = await next(); text !== undefined; text = await next()) {
        if (!parser.write(`${text}\n`)) await once(parser, "drain");
      }
    } catch (error) {
      sourceFailure = { error };
    }
    parser.end();
  })();
  for await (const { record, info } of parser as AsyncIterable<{
    record: string[];
    info: { lines: number };
  }>) {
    yield* problems.splice(0);
    yield csvBody(columns, record, headerLine + info.lines);
  }
  await feeding;
  yield* problems.splice(0);
  if (sourceFailure !== undefined) throw sourceFailure.error;
}

function csvProblem(code: string | undefined): string {
  if (code === "CSV_QUOTE_NOT_CLOSED") return "a quoted CSV field is not closed before the end";
  if (code === "CSV_INVALID_CLOSING_QUOTE")
    return "a quoted CSV field is followed by text before the next comma";
  return `not readable as CSV (${code ?? "unknown error"})`;
}

function parseJsonLine(text: string, line: number): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { line, problem: "not valid JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { line, problem: "a line must be a JSON object" };
  }
  const object = value as Record<string, unknown>;
  if (object.ThingName !== undefined && object.deviceId === undefined)
    return fromBulkParameters(object, line);
  return { line, body: object, warnings: [], merge: false };
}

/** An AWS bulk-provisioning parameter line: ThingName is the device id, other keys attributes, CSR ignored. */
function fromBulkParameters(object: Record<string, unknown>, line: number): ParsedLine {
  const warnings: string[] = [];
  const attributes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    if (key === "ThingName") continue;
    if (key === "CSR") {
      warnings.push("CSR ignored: devices present their own certificates (just-in-time registration)");
      continue;
    }
    attributes[key] = typeof value === "number" || typeof value === "boolean" ? String(value) : value;
  }
  return {
    line,
    body: { deviceId: object.ThingName, ...(Object.keys(attributes).length > 0 ? { attributes } : {}) },
    warnings,
    merge: true,
  };
}

/** CSV columns: the allowlist fields, `attributes.<name>`, and `thingGroups` separated by `;`. */
const CSV_FIELDS = new Set<string>(ALLOWLIST_FIELDS.filter((field) => field !== "attributes"));

/** The CSV header's columns; ValidationError (the whole import is refused) for an unknown or missing one. */
function csvColumns(header: string): string[] {
  let columns: string[];
  try {
    columns = (parseSync(header) as string[][])[0]?.map((c) => c.trim()) ?? [];
  } catch (cause) {
    throw new ValidationError(
      "the CSV header cannot be read",
      [{ path: "line 1", message: "not valid CSV" }],
      { cause },
    );
  }
  const unknown = columns.filter((c) => !CSV_FIELDS.has(c) && !/^attributes\..+/.test(c));
  if (unknown.length > 0 || !columns.includes("deviceId")) {
    const known = `${[...CSV_FIELDS].join(", ")}, attributes.<name>`;
    throw new ValidationError("the CSV header is invalid", [
      ...unknown.map((c) => ({ path: `column ${c}`, message: `is not a known column (known: ${known})` })),
      ...(columns.includes("deviceId") ? [] : [{ path: "column deviceId", message: "is required" }]),
    ]);
  }
  return columns;
}

/** One CSV record as an allowlist body: `attributes.<name>` columns gathered, `thingGroups` split on `;`. */
function csvBody(columns: string[], row: string[], line: number): ParsedLine {
  if (row.length !== columns.length) {
    return { line, problem: `has ${row.length} fields; the header has ${columns.length}` };
  }
  const body: Record<string, unknown> = {};
  const attributes: Record<string, string> = {};
  columns.forEach((column, i) => {
    const value = row[i] ?? "";
    if (value === "") return;
    if (column.startsWith("attributes.")) attributes[column.slice("attributes.".length)] = value;
    else if (column === "thingGroups")
      body.thingGroups = value
        .split(";")
        .map((g) => g.trim())
        .filter(Boolean);
    else body[column] = value;
  });
  if (Object.keys(attributes).length > 0) body.attributes = attributes;
  return { line, body, warnings: [], merge: false };
}
