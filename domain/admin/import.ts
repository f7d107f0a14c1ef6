import { describeError } from "../errors.ts";
import { type AllowlistFields, allowlistFieldsOf } from "../records.ts";
import type { AllowlistRecord, LedgerEntry } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { type ImportFormat, parseLines } from "./import-lines.ts";
import { statusOmitted, validateAllowlistRecord } from "./validation.ts";

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

export type { ImportFormat } from "./import-lines.ts";
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
  context: AdminContext,
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
  const writer = batchWriter(context, actor, report, reject, options.onProgress);

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
  context: AdminContext,
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
      const write: Promise<void> = writeBatch(context, actor, batch, report, reject)
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
  context: AdminContext,
  actor: string,
  batch: Parsed[],
  report: ImportReport,
  reject: (line: number, reason: string) => void,
): Promise<void> {
  const { allowlist, ledger } = context.retried;
  const existing = new Map(
    (await allowlist.getMany(batch.map((p) => p.fields.deviceId))).map((r) => [r.deviceId, r]),
  );
  const now = context.deps.clock.now().toISOString();
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
        if (!(await allowlist.create(record))) {
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
        if (!(await allowlist.update(record, current.version))) {
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
  if (entries.length > 0) await ledger.appendMany(entries);
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
