import { describeError } from "../errors.ts";
import { type AllowlistFields, allowlistFieldsOf } from "../records.ts";
import type { AllowlistRecord, LedgerEntry } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { type FieldChange, fieldChanges, sameValues } from "./diff.ts";
import { type ImportFormat, type ImportLimit, ImportLimitError, parseLines } from "./import-lines.ts";
import { statusOmitted, validateAllowlistRecord } from "./validation.ts";

/*
 * Bulk import of allowlist records, over an async iterable of lines so memory stays bounded:
 *  1. The format is given (JSON lines or CSV) or sniffed from the first non-blank line.
 *  2. Each line is parsed and validated into admin fields; an AWS bulk-provisioning parameter line
 *     (`{"ThingName": ...}`) becomes a record whose other keys are attributes (a CSR is ignored, with a warning).
 *  3. Valid records are written in batches: existing records are read in one batch, then each line is
 *     created (conditional on absence), or the existing record is replaced (a native line: the export
 *     format, so a restore is exact) or merged into (a bulk-provisioning line: the fields it does not
 *     name are kept, its attributes win key by key), conditional on the version read; or it is unchanged.
 *  4. Every change gets a ledger entry, written in batches.
 * `best-effort` writes every valid line; `all-or-nothing` validates every line first and writes nothing
 * if any is bad (there are no multi-item transactions, so a write that then loses a race is still reported).
 * A dry run reads and decides the same way and writes nothing. A line source that breaks a limit
 * (ImportLimitError) stops the import at that line: best-effort writes the valid lines before it,
 * all-or-nothing writes nothing, and the report's `stopped` says where and why.
 */

export type { ImportFormat, ImportLimit } from "./import-lines.ts";
export { ImportLimitError } from "./import-lines.ts";
export type ImportMode = "best-effort" | "all-or-nothing";

/** What an import did (or, in a dry run, would do) to a record. */
export type ImportOutcome = "created" | "replaced" | "merged" | "unchanged";

/** What an import did (or would do) to the record of one line. */
export interface ImportedRecord {
  line: number;
  deviceId: string;
  outcome: ImportOutcome;
  /** The fields a replace or merge changes. */
  changes?: FieldChange[];
}

/** What an import did, line by line where it matters. */
export interface ImportReport {
  mode: ImportMode;
  format: ImportFormat | undefined;
  /** True when nothing was written: the counts say what the import would do. */
  dryRun: boolean;
  accepted: number;
  created: number;
  /** Replaced plus merged. */
  updated: number;
  /** Existing records replaced by a native line. */
  replaced: number;
  /** Existing records a bulk-provisioning line merged into. */
  merged: number;
  unchanged: number;
  /**
   * What happened to each accepted record, by line (the first {@link MAX_LISTED} lines); an updated one
   * with the fields that change, before and after.
   */
  records: ImportedRecord[];
  rejected: { line: number; reason: string }[];
  rejectedCount: number;
  warnings: { line: number; message: string }[];
  /** True when `records`, `rejected` or `warnings` were cut at {@link MAX_LISTED}. */
  truncated: boolean;
  /** Set when the body broke a limit: reading stopped at this line, and nothing from it on was imported. */
  stopped?: { line: number; limit: ImportLimit; reason: string };
}

export interface ImportOptions {
  format?: ImportFormat;
  mode?: ImportMode;
  /** Decide every line against the stored records, write nothing. */
  dryRun?: boolean;
  /** Called after each written batch with the number of lines read so far. */
  onProgress?: (linesRead: number) => void;
  /** The number of the first line given (a part of a larger file); 1 unless given. */
  firstLine?: number;
  /** List unchanged records in `records` too (the default); false lists only the records that change. */
  listUnchanged?: boolean;
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
  /** A bulk-provisioning line: merged into an existing record rather than replacing it. */
  merge: boolean;
}

/** Imports allowlist records from lines of JSON or CSV; see the steps at the top of this module. */
export async function importAllowlist(
  context: AdminContext,
  actor: string,
  lines: AsyncIterable<string>,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const mode = options.mode ?? "best-effort";
  const report = emptyImportReport(mode, options.format, options.dryRun === true);
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
  const writer = batchWriter(context, actor, report, reject, options);

  try {
    for await (const parsed of parseLines(
      lines,
      options.format,
      (format) => (report.format = format),
      options.firstLine,
    )) {
      linesRead = parsed.line;
      if ("problem" in parsed) {
        reject(parsed.line, parsed.problem);
        continue;
      }
      for (const message of parsed.warnings) warn(parsed.line, message);
      const validated = validateAllowlistRecord(parsed.body);
      if (!validated.ok) {
        reject(parsed.line, issuesText(validated.issues));
        continue;
      }
      const { deviceId } = validated.value;
      const first = seen.get(deviceId);
      if (first !== undefined) {
        reject(parsed.line, `deviceId ${deviceId} appears on line ${first} already`);
        continue;
      }
      seen.set(deviceId, parsed.line);
      const item: Parsed = {
        line: parsed.line,
        fields: validated.value,
        keepStatus: statusOmitted(parsed.body),
        merge: parsed.merge,
      };
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
  } catch (error) {
    if (!(error instanceof ImportLimitError)) {
      await writer.drain().catch(() => undefined);
      throw error;
    }
    // Nothing from the line that broke the limit on is read; the lines before it count as read.
    report.stopped = { line: error.line, limit: error.limit, reason: error.message };
  }
  if (mode === "all-or-nothing") {
    if (report.rejectedCount === 0 && report.stopped === undefined) await checkMerges(context, held, reject);
    if (report.rejectedCount > 0 || report.stopped !== undefined) return finish(report);
    for (let start = 0; start < held.length; start += BATCH) {
      const slice = held.slice(start, start + BATCH);
      await writer.add(slice, slice[slice.length - 1]?.line ?? linesRead);
    }
  } else if (batch.length > 0) {
    await writer.add(batch, linesRead);
  }
  await writer.drain();
  return finish(report);
}

/** Before an all-or-nothing import writes: rejects each bulk line whose merge into its stored record is invalid. */
async function checkMerges(
  context: AdminContext,
  held: Parsed[],
  reject: (line: number, reason: string) => void,
): Promise<void> {
  const merges = held.filter((item) => item.merge);
  for (let start = 0; start < merges.length; start += BATCH) {
    const slice = merges.slice(start, start + BATCH);
    const stored = await context.retried.allowlist.getMany(slice.map((item) => item.fields.deviceId));
    const byId = new Map(stored.map((record) => [record.deviceId, record]));
    for (const item of slice) {
      const composed = composeFields(item, byId.get(item.fields.deviceId));
      if (!composed.ok) reject(item.line, composed.reason);
    }
  }
}

/** Validation issues as one line of text: `path: message; ...`. */
export const issuesText = (issues: { path: string; message: string }[]): string =>
  issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");

/** Records the outcome of one accepted line, listing the first {@link MAX_LISTED} lines' outcomes. */
function recordOutcome(
  report: ImportReport,
  line: number,
  deviceId: string,
  outcome: ImportOutcome,
  changes?: FieldChange[],
  listed = true,
): void {
  report.accepted += 1;
  report[outcome] += 1;
  if (outcome === "replaced" || outcome === "merged") report.updated += 1;
  if (!listed) return;
  report.records.push({ line, deviceId, outcome, ...(changes !== undefined ? { changes } : {}) });
  // Batches finish out of order: keep the lowest lines, trimming now and then so the list stays bounded.
  if (report.records.length >= 2 * MAX_LISTED) trimRecords(report);
}

function trimRecords(report: ImportReport): void {
  report.records.sort((a, b) => a.line - b.line);
  if (report.records.length > MAX_LISTED) {
    report.records.length = MAX_LISTED;
    report.truncated = true;
  }
}

function finish(report: ImportReport): ImportReport {
  trimRecords(report);
  return report;
}

/**
 * Writes batches with a few in flight (the next batch is read while earlier ones are written), which
 * bounds memory to {@link BATCHES_IN_FLIGHT} batches and reports progress as each one completes.
 */
function batchWriter(
  context: AdminContext,
  actor: string,
  report: ImportReport,
  reject: (line: number, reason: string) => void,
  { onProgress, dryRun, listUnchanged = true }: ImportOptions,
) {
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let done = 0;
  return {
    async add(batch: Parsed[], linesRead: number): Promise<void> {
      const write: Promise<void> = writeBatch(context, actor, batch, report, reject, {
        dryRun: dryRun === true,
        listUnchanged,
      })
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

const sameFields = (a: AllowlistFields, b: AllowlistFields): boolean => sameValues(a, b);

async function writeBatch(
  context: AdminContext,
  actor: string,
  batch: Parsed[],
  report: ImportReport,
  reject: (line: number, reason: string) => void,
  { dryRun, listUnchanged }: { dryRun: boolean; listUnchanged: boolean },
): Promise<void> {
  const { allowlist, ledger } = context.retried;
  const existing = new Map(
    (await allowlist.getMany(batch.map((p) => p.fields.deviceId))).map((r) => [r.deviceId, r]),
  );
  const now = context.deps.clock.now().toISOString();
  const entries: LedgerEntry[] = [];
  /*
   * A retried conditional write whose first attempt landed (its answer lost to a timeout) fails its
   * condition against itself. The stored record then is this very write: same version, time, actor and
   * fields. Anything else is another writer's.
   */
  const ownWriteLanded = async (written: AllowlistRecord): Promise<boolean> => {
    const stored = await allowlist.get(written.deviceId);
    return (
      stored !== undefined &&
      stored.version === written.version &&
      stored.updatedAt === written.updatedAt &&
      stored.updatedBy === written.updatedBy &&
      sameFields(allowlistFieldsOf(stored), allowlistFieldsOf(written))
    );
  };
  const write = async (item: Parsed): Promise<void> => {
    const { line } = item;
    const current = existing.get(item.fields.deviceId);
    const composed = composeFields(item, current);
    if (!composed.ok) {
      reject(line, composed.reason);
      return;
    }
    const { fields } = composed;
    try {
      if (current === undefined) {
        if (!dryRun) {
          const record: AllowlistRecord = {
            ...fields,
            version: 1,
            createdAt: now,
            updatedAt: now,
            updatedBy: actor,
          };
          if (!(await allowlist.create(record)) && !(await ownWriteLanded(record))) {
            reject(line, `device ${fields.deviceId} was created by someone else meanwhile; import it again`);
            return;
          }
          entries.push(
            ledgerEntry(fields.deviceId, now, actor, { action: "import-create", after: fields, version: 1 }),
          );
        }
        recordOutcome(report, line, fields.deviceId, "created");
      } else if (sameFields(allowlistFieldsOf(current), fields)) {
        recordOutcome(report, line, fields.deviceId, "unchanged", undefined, listUnchanged);
      } else {
        const outcome = item.merge ? "merged" : "replaced";
        if (!dryRun) {
          const { certificateId, thingName, policyName, provisionedAt, createdAt } = current;
          const { lotCounted, lotReleaseStartedAt } = current;
          const record: AllowlistRecord = {
            ...fields,
            ...(certificateId !== undefined ? { certificateId } : {}),
            ...(thingName !== undefined ? { thingName } : {}),
            ...(policyName !== undefined ? { policyName } : {}),
            ...(provisionedAt !== undefined ? { provisionedAt } : {}),
            ...(lotCounted !== undefined ? { lotCounted } : {}),
            ...(lotReleaseStartedAt !== undefined ? { lotReleaseStartedAt } : {}),
            version: current.version + 1,
            ...(createdAt !== undefined ? { createdAt } : {}),
            updatedAt: now,
            updatedBy: actor,
          };
          if (!(await allowlist.update(record, current.version)) && !(await ownWriteLanded(record))) {
            reject(line, `device ${fields.deviceId} was changed by someone else meanwhile; import it again`);
            return;
          }
          entries.push(
            ledgerEntry(fields.deviceId, now, actor, {
              action: "import-update",
              outcome,
              before: allowlistFieldsOf(current),
              after: fields,
              version: record.version,
            }),
          );
        }
        recordOutcome(
          report,
          line,
          fields.deviceId,
          outcome,
          fieldChanges(allowlistFieldsOf(current), fields),
        );
      }
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
  if (entries.length > 0) await ledger.appendMany(entries);
}

/**
 * The fields a line gives a record. A native line replaces the record's fields (keeping its status when
 * the line gives none); a bulk-provisioning line over an existing record keeps every field it does not
 * name (status, profile, pins, window, lot, ...) and merges its attributes in, its keys winning; the
 * merged record is validated again (its attributes must still fit).
 */
function composeFields(
  { fields, keepStatus, merge }: Parsed,
  current: AllowlistRecord | undefined,
): { ok: true; fields: AllowlistFields } | { ok: false; reason: string } {
  if (current === undefined) return { ok: true, fields };
  if (!merge) return { ok: true, fields: keepStatus ? { ...fields, status: current.status } : fields };
  const kept = allowlistFieldsOf(current);
  const attributes = { ...kept.attributes, ...fields.attributes };
  const merged = { ...kept, ...(Object.keys(attributes).length > 0 ? { attributes } : {}) };
  const validated = validateAllowlistRecord(merged);
  if (!validated.ok)
    return { ok: false, reason: `merged into the existing record: ${issuesText(validated.issues)}` };
  return { ok: true, fields: validated.value };
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

/** An import report with nothing counted yet. */
export function emptyImportReport(
  mode: ImportMode,
  format: ImportFormat | undefined,
  dryRun: boolean,
): ImportReport {
  return {
    mode,
    format,
    dryRun,
    accepted: 0,
    created: 0,
    updated: 0,
    replaced: 0,
    merged: 0,
    unchanged: 0,
    records: [],
    rejected: [],
    rejectedCount: 0,
    warnings: [],
    truncated: false,
  };
}
