import { once } from "node:events";
import { parse } from "csv-parse";
import { parse as parseSync } from "csv-parse/sync";
import type { AdminDeps } from "./admin.ts";
import { describeError, ValidationError } from "./errors.ts";
import {
  ALLOWLIST_FIELDS,
  type AllowlistFields,
  allowlistFieldsOf,
  statusOmitted,
  validateAllowlistRecord,
} from "./records.ts";
import { withRetry } from "./retry.ts";
import type { AllowlistRecord, LedgerEntry } from "./types.ts";

/*
 * Bulk import of allowlist records, over an async iterable of lines so memory stays bounded:
 *  1. The format is given (JSON lines or CSV) or sniffed from the first non-blank line.
 *  2. Each line is parsed and validated into admin fields; an AWS bulk-provisioning parameter line
 *     (`{"ThingName": ...}`) becomes a record whose other keys are attributes (a CSR is ignored, with a warning).
 *  3. Valid records are written in batches: existing records are read in one batch, then each line is
 *     created (conditional on absence), updated (conditional on the version read) or left unchanged.
 *  4. Every change gets a ledger entry, written in batches.
 * `best-effort` writes every valid line; `all-or-nothing` validates every line first and writes nothing
 * if any is bad (there are no multi-item transactions, so a write that then loses a race is still reported).
 */

export type ImportFormat = "jsonl" | "csv";
export type ImportMode = "best-effort" | "all-or-nothing";

/** What an import did, line by line where it matters. */
export interface ImportReport {
  mode: ImportMode;
  format: ImportFormat | undefined;
  accepted: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: { line: number; reason: string }[];
  rejectedCount: number;
  warnings: { line: number; message: string }[];
  /** True when `rejected` or `warnings` were cut at {@link MAX_LISTED}. */
  truncated: boolean;
}

export interface ImportOptions {
  format?: ImportFormat;
  mode?: ImportMode;
  /** Called after each written batch with the number of lines read so far. */
  onProgress?: (linesRead: number) => void;
}

const BATCH = 100;
const WRITE_CONCURRENCY = 16;
const BATCHES_IN_FLIGHT = 3;
const MAX_LISTED = 1000;

interface Parsed {
  line: number;
  fields: AllowlistFields;
  /** The line gave no status: an existing record keeps its own. */
  keepStatus: boolean;
}

/** Imports allowlist records from lines of JSON or CSV; see the steps at the top of this module. */
export async function importAllowlist(
  deps: AdminDeps,
  actor: string,
  lines: AsyncIterable<string>,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const mode = options.mode ?? "best-effort";
  const report: ImportReport = {
    mode,
    format: options.format,
    accepted: 0,
    created: 0,
    updated: 0,
    unchanged: 0,
    rejected: [],
    rejectedCount: 0,
    warnings: [],
    truncated: false,
  };
  const reject = (line: number, reason: string) => {
    report.rejectedCount += 1;
    if (report.rejected.length < MAX_LISTED) report.rejected.push({ line, reason });
    else report.truncated = true;
  };
  const warn = (line: number, message: string) => {
    if (report.warnings.length < MAX_LISTED) report.warnings.push({ line, message });
    else report.truncated = true;
  };
  const seen = new Map<string, number>();
  const held: Parsed[] = [];
  let batch: Parsed[] = [];
  let linesRead = 0;
  const writer = batchWriter(deps, actor, report, reject, options.onProgress);

  for await (const parsed of parseLines(lines, options.format, (format) => (report.format = format))) {
    linesRead = parsed.line;
    if ("problem" in parsed) {
      reject(parsed.line, parsed.problem);
      continue;
    }
    for (const message of parsed.warnings) warn(parsed.line, message);
    const validated = validateAllowlistRecord(parsed.body);
    if (!validated.ok) {
      reject(
        parsed.line,
        validated.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; "),
      );
      continue;
    }
    const { deviceId } = validated.value;
    const first = seen.get(deviceId);
    if (first !== undefined) {
      reject(parsed.line, `deviceId ${deviceId} appears on line ${first} already`);
      continue;
    }
    seen.set(deviceId, parsed.line);
    const item = { line: parsed.line, fields: validated.value, keepStatus: statusOmitted(parsed.body) };
    if (mode === "all-or-nothing") {
      held.push(item);
      continue;
    }
    batch.push(item);
    if (batch.length >= BATCH) {
      await writer.add(batch, linesRead);
      batch = [];
    }
  }
  if (mode === "all-or-nothing") {
    if (report.rejectedCount > 0) return report;
    for (let start = 0; start < held.length; start += BATCH) {
      const slice = held.slice(start, start + BATCH);
      await writer.add(slice, slice[slice.length - 1]?.line ?? linesRead);
    }
  } else if (batch.length > 0) {
    await writer.add(batch, linesRead);
  }
  await writer.drain();
  return report;
}

/**
 * Writes batches with a few in flight (the next batch is read while earlier ones are written), which
 * bounds memory to {@link BATCHES_IN_FLIGHT} batches and reports progress as each one completes.
 */
function batchWriter(
  deps: AdminDeps,
  actor: string,
  report: ImportReport,
  reject: (line: number, reason: string) => void,
  onProgress: ((linesRead: number) => void) | undefined,
) {
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let done = 0;
  return {
    async add(batch: Parsed[], linesRead: number): Promise<void> {
      const write: Promise<void> = writeBatch(deps, actor, batch, report, reject)
        .then(() => {
          done = Math.max(done, linesRead);
          onProgress?.(done);
        })
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => inFlight.delete(write));
      inFlight.add(write);
      if (inFlight.size >= BATCHES_IN_FLIGHT) await Promise.race(inFlight);
      if (failure !== undefined) throw failure;
    },
    async drain(): Promise<void> {
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
    },
  };
}

const sameFields = (a: AllowlistFields, b: AllowlistFields): boolean =>
  JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}

async function writeBatch(
  deps: AdminDeps,
  actor: string,
  batch: Parsed[],
  report: ImportReport,
  reject: (line: number, reason: string) => void,
): Promise<void> {
  const retry = <T>(fn: () => Promise<T>) => withRetry(fn, deps.settings.retry, deps.clock);
  const existing = new Map(
    (await retry(() => deps.allowlist.getMany(batch.map((p) => p.fields.deviceId)))).map((r) => [
      r.deviceId,
      r,
    ]),
  );
  const now = deps.clock.now().toISOString();
  const entries: LedgerEntry[] = [];
  const write = async ({ line, fields: given, keepStatus }: Parsed): Promise<void> => {
    const current = existing.get(given.deviceId);
    const fields = current !== undefined && keepStatus ? { ...given, status: current.status } : given;
    try {
      if (current === undefined) {
        const record: AllowlistRecord = {
          ...fields,
          version: 1,
          createdAt: now,
          updatedAt: now,
          updatedBy: actor,
        };
        if (!(await retry(() => deps.allowlist.create(record)))) {
          reject(line, `device ${fields.deviceId} was created by someone else meanwhile; import it again`);
          return;
        }
        report.created += 1;
        entries.push(
          ledgerEntry(fields.deviceId, now, actor, { action: "import-create", after: fields, version: 1 }),
        );
      } else if (sameFields(allowlistFieldsOf(current), fields)) {
        report.unchanged += 1;
      } else {
        const { certificateId, thingName, policyName, provisionedAt, createdAt } = current;
        const record: AllowlistRecord = {
          ...fields,
          ...(certificateId !== undefined ? { certificateId } : {}),
          ...(thingName !== undefined ? { thingName } : {}),
          ...(policyName !== undefined ? { policyName } : {}),
          ...(provisionedAt !== undefined ? { provisionedAt } : {}),
          version: current.version + 1,
          ...(createdAt !== undefined ? { createdAt } : {}),
          updatedAt: now,
          updatedBy: actor,
        };
        if (!(await retry(() => deps.allowlist.update(record, current.version)))) {
          reject(line, `device ${fields.deviceId} was changed by someone else meanwhile; import it again`);
          return;
        }
        report.updated += 1;
        entries.push(
          ledgerEntry(fields.deviceId, now, actor, {
            action: "import-update",
            before: allowlistFieldsOf(current),
            after: fields,
            version: record.version,
          }),
        );
      }
      report.accepted += 1;
    } catch (error) {
      reject(line, `not written: ${describeError(error)}`);
    }
  };
  const queue = [...batch];
  await Promise.all(
    Array.from({ length: Math.min(WRITE_CONCURRENCY, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await write(item);
    }),
  );
  if (entries.length > 0) await retry(() => deps.ledger.appendMany(entries));
}

const ledgerEntry = (
  deviceId: string,
  at: string,
  actor: string,
  change: Record<string, unknown>,
): LedgerEntry => ({
  deviceId,
  at,
  kind: "admin",
  actor,
  change,
});

type ParsedLine =
  | { line: number; body: Record<string, unknown>; warnings: string[] }
  | { line: number; problem: string };

/** Sniffs the format from the first non-blank line: `{` starts JSON lines, anything else is a CSV header. */
export const sniffFormat = (firstLine: string): ImportFormat =>
  firstLine.trimStart().startsWith("{") ? "jsonl" : "csv";

/** The format a Content-Type names, or undefined (then sniffed). */
export function formatOfContentType(contentType: string | undefined): ImportFormat | undefined {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  if (type === undefined) return undefined;
  if (type === "text/csv" || type === "application/csv") return "csv";
  if (
    [
      "application/x-ndjson",
      "application/jsonl",
      "application/x-jsonlines",
      "application/json-lines",
    ].includes(type)
  ) {
    return "jsonl";
  }
  return undefined;
}

async function* parseLines(
  lines: AsyncIterable<string>,
  format: ImportFormat | undefined,
  decided: (format: ImportFormat) => void,
): AsyncGenerator<ParsedLine> {
  const iterator = lines[Symbol.asyncIterator]();
  let lineNumber = 0;
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
  const feeding = (async () => {
    for (let text = await next(); text !== undefined; text = await next()) {
      if (!parser.write(`${text}\n`)) await once(parser, "drain");
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
  return { line, body: object, warnings: [] };
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
  return { line, body, warnings: [] };
}

/** Splits a whole body into lines (the deployed HTTP API hands the body over at once). */
export async function* linesOf(body: string): AsyncGenerator<string> {
  let start = 0;
  while (start <= body.length) {
    const end = body.indexOf("\n", start);
    if (end < 0) {
      if (start < body.length) yield body.slice(start);
      return;
    }
    yield body.slice(start, end);
    start = end + 1;
  }
}
