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

/** The most bytes one CSV record may hold across its lines (as one line may: an allowlist record is far smaller). */
const MAX_CSV_RECORD_BYTES = 64 * 1024;

/** Where a CSV scan stands at the end of a line: inside a quoted field (the record goes on), at a field's start. */
interface QuoteState {
  inQuotes: boolean;
  atFieldStart: boolean;
}

/**
 * CSV (RFC 4180, each record read by csv-parse): the header names the columns; a quoted field may span lines.
 * Every line is accounted for: a record is yielded at its first line (with a warning naming the lines it
 * spans, when more than one), or rejected with its line. A quote that is never closed (by the end of the input,
 * or within {@link MAX_CSV_RECORD_BYTES}) rejects the line it opened on, and the lines after it are read again
 * as records of their own, so one stray quote cannot hide the rest of the file; so does a record spanning
 * lines that does not read as one record of the header's columns.
 */
async function* parseCsv(
  header: string,
  headerLine: number,
  next: () => Promise<string | undefined>,
): AsyncGenerator<ParsedLine> {
  const columns = csvColumns(header);
  // A line source that fails (a limit broken) ends the lines; its error is raised after the ones read.
  let sourceFailure: { error: unknown } | undefined;
  let lineNumber = headerLine;
  const nextLine = async (): Promise<{ text: string; line: number } | undefined> => {
    if (sourceFailure !== undefined) return undefined;
    try {
      const text = await next();
      if (text === undefined) return undefined;
      lineNumber += 1;
      return { text, line: lineNumber };
    } catch (error) {
      sourceFailure = { error };
      return undefined;
    }
  };
  /** Lines to read again, oldest first: those after a quote that never closed. */
  const again: { text: string; line: number }[] = [];
  let record: { text: string; line: number }[] = [];
  let bytes = 0;
  let state: QuoteState = { inQuotes: false, atFieldStart: true };
  /** Rejects the record's first line and reads the lines after it again. */
  const giveUp = (problem: string): ParsedLine => {
    const [first, ...rest] = record;
    again.unshift(...rest);
    record = [];
    return { line: first?.line ?? lineNumber, problem };
  };
  for (;;) {
    const item = again.shift() ?? (await nextLine());
    if (item === undefined) {
      if (record.length === 0) break;
      yield giveUp(
        "a quoted CSV field opened on this line is not closed before the end; the lines after it are read as records of their own",
      );
      continue;
    }
    if (record.length === 0) {
      if (item.text.trim() === "") continue;
      bytes = 0;
      state = { inQuotes: false, atFieldStart: true };
    }
    record.push(item);
    bytes += Buffer.byteLength(item.text, "utf8") + 1;
    state = scanQuotes(item.text, state);
    if (state.inQuotes) {
      if (bytes > MAX_CSV_RECORD_BYTES)
        yield giveUp(
          `a quoted CSV field opened on this line is not closed within ${MAX_CSV_RECORD_BYTES} bytes; the lines after it are read as records of their own`,
        );
      continue;
    }
    const first = record[0]?.line ?? item.line;
    const last = item.line;
    const read = readCsvRecord(record.map((r) => r.text).join("\n"));
    if ("problem" in read && last === first) {
      record = [];
      yield { line: first, problem: read.problem };
      continue;
    }
    if ("problem" in read || (last > first && read.row.length !== columns.length)) {
      yield giveUp(
        `a quoted CSV field opened on this line runs to line ${last} and does not read as one record (${
          "problem" in read ? read.problem : `${read.row.length} fields; the header has ${columns.length}`
        }); the lines after it are read as records of their own`,
      );
      continue;
    }
    record = [];
    const parsed = csvBody(columns, read.row, first);
    if (last > first && "body" in parsed) {
      parsed.warnings.push(`the record spans lines ${first}-${last} (a quoted field holds line breaks)`);
    }
    yield parsed;
  }
  if (sourceFailure !== undefined) throw sourceFailure.error;
}

/** The quote state after `text`, from `state` at its start (a quote opens a field only at the field's start). */
function scanQuotes(text: string, state: QuoteState): QuoteState {
  let { inQuotes, atFieldStart } = state;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') i += 1;
        else inQuotes = false;
      }
    } else if (c === ",") atFieldStart = true;
    else {
      if (c === '"' && atFieldStart) inQuotes = true;
      atFieldStart = false;
    }
  }
  // a line break inside quotes is part of the field; outside, it ends the record
  return { inQuotes, atFieldStart: !inQuotes };
}

/** One CSV record's text as its fields, or why it cannot be read. */
function readCsvRecord(text: string): { row: string[] } | { problem: string } {
  try {
    // A quote inside an unquoted field, or text after a closing quote, is kept as written.
    const rows = parseSync(text, { relax_quotes: true, relax_column_count: true }) as string[][];
    const [row] = rows;
    if (row === undefined || rows.length !== 1) return { problem: "not readable as one CSV record" };
    return { row };
  } catch (error) {
    const code =
      typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
    return { problem: csvProblem(code) };
  }
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

/**
 * An AWS bulk-provisioning parameter line: ThingName is the device id, other keys attributes (a `status`
 * key too, with a warning), CSR ignored.
 */
function fromBulkParameters(object: Record<string, unknown>, line: number): ParsedLine {
  const warnings: string[] = [];
  const attributes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    if (key === "ThingName") continue;
    if (key === "CSR") {
      warnings.push("CSR ignored: devices present their own certificates (just-in-time registration)");
      continue;
    }
    // A bulk-provisioning line never sets the record's status (a factory's file must not unblock a
    // device): the key stays a thing attribute, and the line says so.
    if (key.toLowerCase() === "status") {
      warnings.push(
        `${key} kept as a thing attribute, not the record's status: set status with a native line or allowlist put --status`,
      );
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
