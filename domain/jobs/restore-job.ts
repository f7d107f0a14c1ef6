import type { AdminContext } from "../admin/deps.ts";
import { type FieldChange, fieldChanges, sameValues } from "../admin/diff.ts";
import { emptyImportReport, type ImportReport, importAllowlist, issuesText } from "../admin/import.ts";
import { putLot } from "../admin/lot-writes.ts";
import { checkMapping } from "../admin/mapping-checks.ts";
import { putMapping } from "../admin/mapping-writes.ts";
import { validateLot, validateMapping } from "../admin/validation.ts";
import { describeError } from "../errors.ts";
import { isObject, parseJsonOrUndefined } from "../json.ts";
import type { ClockPort } from "../ports.ts";
import { type LotFields, lotFieldsOf, type MappingFields, mappingFieldsOf } from "../records.ts";
import { BACKUP_VERSION } from "./export-job.ts";
import { FROM_THE_START, ImportJob } from "./import-job.ts";
import { fileLines } from "./lines.ts";
import type { JobFiles } from "./ports.ts";
import type { Job, JobBudget, JobKind, JobStep } from "./types.ts";

/*
 * A restore job: a backup file (./export-job.ts, BackupJob) read back into the stores, all or nothing:
 *  1. validation: the whole file read, nothing written. The header must name the backup format's version;
 *     every line must be a lot, a mapping or an allowlist record, validated as the admin routes validate
 *     it (a mapping also as a save checks it: the thing types, groups and policies it names must exist
 *     unless `force`, a broad inline policy needs `allowBroadPolicy`); a lot may not drop below the devices
 *     the store counts in it; a key may appear once. Each record is compared with the stored one: created,
 *     updated (with the fields that change) or unchanged. One bad line and nothing is written; a dry run
 *     ends here with that report.
 *  2. lots, then mappings: created, or updated at the version read (a lost race fails the job), through
 *     the same use cases as `PUT /lots/{lot}` and `PUT /mappings/{selector}`, each change in the ledger;
 *  3. allowlist records, in slices, as an import of native lines does (./import-job.ts): created, replaced
 *     or unchanged, each change in the ledger.
 * Only admin fields travel in a backup. A line carrying a field the service writes (a certificate binding:
 * certificateId, thingName, policyName, provisionedAt; a lot place: lotCounted; a lot's provisionedCount;
 * versions and audit stamps) is rejected: a file must never bind a device to a certificate, release its
 * binding or change a lot's count. A restored record keeps the binding and lot place the store holds (none
 * when it is created: the device's next certificate event binds it); versions are the store's own.
 */

export const RESTORE_JOB = "restore";

/** What a restore job is started with. */
export interface RestoreJobParams {
  file: string;
  dryRun?: boolean;
  /** Restore mappings naming thing types, groups or policies that do not exist (they get a warning). */
  force?: boolean;
  /** Restore mappings whose inline policy grants broadly. */
  allowBroadPolicy?: boolean;
}

/** What a restore does (or, in a dry run, would do) to one lot or mapping. */
export interface RestoredRecord {
  line: number;
  key: string;
  outcome: "created" | "updated" | "unchanged";
  changes?: FieldChange[];
}

/** The lots or the mappings of a restore. */
export interface RestoredKind {
  created: number;
  updated: number;
  unchanged: number;
  records: RestoredRecord[];
}

/** What a restore did, or would do. */
export interface RestoreReport {
  dryRun: boolean;
  /** The backup's header. */
  backup?: { version: number; createdAt?: string };
  lots: RestoredKind;
  mappings: RestoredKind;
  allowlist: ImportReport;
  /** Lines refused (the allowlist's own are in `allowlist.rejected`). */
  rejected: { line: number; reason: string }[];
  /** Every refused line, the allowlist's included. */
  rejectedCount: number;
  warnings: { line: number; message: string }[];
  /** True when a list was cut at `RESTORE_LIMITS.listed` entries (the counts are complete). */
  truncated?: boolean;
}

/**
 * The most lots, and the most mappings, one restore takes (they are held in memory); the most entries each
 * list of its report keeps (the report is saved on the job record, which must stay small).
 */
export const RESTORE_LIMITS = { lots: 10_000, mappings: 10_000, listed: 200 } as const;
const LINE_BYTES = 64 * 1024;

type Cursor = { phase: "records" } | { phase: "allowlist"; inner: string };

interface Held<F> {
  line: number;
  key: string;
  fields: F;
}

/** The restore kind; see the passes at the top of this module. */
export class RestoreJob implements JobKind {
  readonly kind = RESTORE_JOB;
  readonly #allowlist: ImportJob;

  constructor(private readonly deps: { context: AdminContext; files: JobFiles; clock: ClockPort }) {
    this.#allowlist = new ImportJob({ ...deps, lineOf: allowlistLineOf, listUnchanged: false });
  }

  /** Validates the whole file first, then writes lots and mappings, then allowlist slices. */
  async step(job: Job, cursor: string | undefined, budget: JobBudget): Promise<JobStep> {
    const params = job.params as unknown as RestoreJobParams;
    if (cursor === undefined) return this.#validate(job, params);
    const at = JSON.parse(cursor) as Cursor;
    const report = job.result as RestoreReport;
    if (at.phase === "records") return this.#writeRecords(job, params, report);
    const inner = await this.#allowlist.step(
      {
        ...job,
        params: { file: params.file, mode: "best-effort", format: "jsonl" },
        result: report.allowlist,
      },
      at.inner,
      budget,
    );
    const allowlist = inner.result as ImportReport;
    const result: RestoreReport = {
      ...report,
      allowlist,
      rejectedCount: report.rejected.length + allowlist.rejectedCount,
    };
    return {
      ...inner,
      cursor:
        inner.cursor === undefined ? undefined : JSON.stringify({ phase: "allowlist", inner: inner.cursor }),
      result,
    };
  }

  async #validate(job: Job, params: RestoreJobParams): Promise<JobStep> {
    const { context } = this.deps;
    const read = await this.#read(params.file);
    const report = read.report;
    const allowlist = await importAllowlist(context, job.startedBy, read.allowlistLines(), {
      mode: "best-effort",
      format: "jsonl",
      dryRun: true,
      listUnchanged: false,
    });
    await this.#decide(read, params, report);
    for (const [lot, line] of read.lotsNamed) {
      if (!read.lots.some((held) => held.key === lot) && (await context.retried.lots.get(lot)) === undefined)
        report.warnings.push({
          line,
          message: `lot ${lot} is neither in the backup nor in the store: its devices are quarantined lot-quota-exceeded until it exists`,
        });
    }
    report.warnings.sort((a, b) => a.line - b.line);
    report.rejectedCount = report.rejected.length + allowlist.rejectedCount;
    report.allowlist = allowlist;
    capLists(report);
    const total = read.lines();
    const progress = { done: 0, total };
    if (allowlist.stopped !== undefined)
      return {
        cursor: undefined,
        progress,
        done: true,
        result: report,
        failed: `${allowlist.stopped.reason}; nothing was written`,
      };
    if (report.rejectedCount > 0) {
      const failed = `${report.rejectedCount} line(s) are invalid; nothing was written`;
      return { cursor: undefined, progress, done: true, result: report, failed };
    }
    if (params.dryRun === true)
      return { cursor: undefined, progress: { done: total, total }, done: true, result: report };
    const start: RestoreReport = {
      ...report,
      dryRun: false,
      allowlist: emptyImportReport("best-effort", "jsonl", false),
    };
    return {
      cursor: JSON.stringify({ phase: "records" } satisfies Cursor),
      progress,
      done: false,
      result: start,
    };
  }

  /** Each held lot and mapping checked against the store: refused, or created, updated or unchanged. */
  async #decide(read: FileRead, params: RestoreJobParams, report: RestoreReport): Promise<void> {
    const { context } = this.deps;
    const reject = (line: number, reason: string) => report.rejected.push({ line, reason });
    for (const held of read.lots) {
      const current = await context.retried.lots.get(held.key);
      const counted = current?.provisionedCount ?? 0;
      if (held.fields.maxDevices !== undefined && held.fields.maxDevices < counted) {
        reject(
          held.line,
          `lot ${held.key}: maxDevices ${held.fields.maxDevices} is below the ${counted} devices the store counts in it`,
        );
        continue;
      }
      outcome(report.lots, held, current && lotFieldsOf(current));
    }
    for (const held of read.mappings) {
      try {
        const warnings = await checkMapping(context, held.fields, params, true);
        for (const warning of warnings)
          report.warnings.push({ line: held.line, message: `${warning.path}: ${warning.message}` });
      } catch (error) {
        reject(held.line, `mapping ${held.key}: ${describeError(error)}`);
        continue;
      }
      const current = await context.retried.mappings.get(held.key);
      outcome(report.mappings, held, current && mappingFieldsOf(current));
    }
    report.rejected.sort((a, b) => a.line - b.line);
  }

  async #writeRecords(job: Job, params: RestoreJobParams, report: RestoreReport): Promise<JobStep> {
    const { context } = this.deps;
    const read = await this.#read(params.file);
    for await (const _ of read.allowlistLines()) {
      // Reads the file through: the lots and mappings are held as it goes.
    }
    const result: RestoreReport = { ...report, lots: emptyKind(), mappings: emptyKind() };
    const progress = { done: 0, ...(job.progress.total !== undefined ? { total: job.progress.total } : {}) };
    try {
      for (const held of read.lots) {
        const current = await context.retried.lots.get(held.key);
        const done = outcome(result.lots, held, current && lotFieldsOf(current));
        if (done === "unchanged") continue;
        await putLot(
          context,
          job.startedBy,
          held.key,
          held.fields,
          current ? { version: current.version ?? 0 } : { create: true },
        );
      }
      for (const held of read.mappings) {
        const current = await context.retried.mappings.get(held.key);
        const done = outcome(result.mappings, held, current && mappingFieldsOf(current));
        if (done === "unchanged") continue;
        await putMapping(
          context,
          job.startedBy,
          held.key,
          held.fields,
          current ? { version: current.version } : { create: true },
          params,
        );
      }
    } catch (error) {
      return {
        cursor: undefined,
        progress,
        done: true,
        result,
        failed: `${describeError(error)}; the lots and mappings before it were restored, no allowlist record was`,
      };
    }
    const cursor: Cursor = { phase: "allowlist", inner: FROM_THE_START };
    return { cursor: JSON.stringify(cursor), progress, done: false, result };
  }

  /** Reads the file's header, lots and mappings as its lines go by, handing the allowlist lines on. */
  async #read(file: string): Promise<FileRead> {
    const { files, context } = this.deps;
    const chunks = await files.read(file, 0);
    const report: RestoreReport = {
      dryRun: true,
      lots: emptyKind(),
      mappings: emptyKind(),
      allowlist: emptyImportReport("all-or-nothing", "jsonl", true),
      rejected: [],
      rejectedCount: 0,
      warnings: [],
    };
    const read: FileRead = {
      report,
      lots: [],
      mappings: [],
      lotsNamed: new Map(),
      lines: () => total,
      allowlistLines,
    };
    let total = 0;
    const reject = (line: number, reason: string) => report.rejected.push({ line, reason });
    const settings = context.deps.settings;
    const lotKeys = new Map<string, number>();
    const selectors = new Map<string, number>();
    async function* allowlistLines(): AsyncGenerator<string> {
      for await (const { text, line } of fileLines(chunks, 0, 1, LINE_BYTES)) {
        total = line;
        if (text.trim() === "") {
          yield "";
          continue;
        }
        const value = parseJsonOrUndefined(text);
        if (line === 1) {
          if (!isObject(value) || value.kind !== "backup")
            reject(line, 'the first line must be the backup header ({"kind":"backup","version":1,...})');
          else if (value.version !== BACKUP_VERSION)
            reject(
              line,
              `backup version ${String(value.version)} is not one this service reads (${BACKUP_VERSION})`,
            );
          else
            report.backup = {
              version: BACKUP_VERSION,
              ...(typeof value.createdAt === "string" ? { createdAt: value.createdAt } : {}),
            };
          yield "";
          continue;
        }
        if (!isObject(value) || !isObject(value.record)) {
          reject(line, 'must be a JSON object {"kind":"lot"|"mapping"|"allowlist","record":{...}}');
          yield "";
          continue;
        }
        const { kind, record } = value;
        if (kind === "allowlist") {
          if (typeof record.lot === "string" && !read.lotsNamed.has(record.lot))
            read.lotsNamed.set(record.lot, line);
          yield JSON.stringify(record);
          continue;
        }
        yield "";
        if (kind === "lot") {
          const key = typeof record.lot === "string" ? record.lot : "";
          const validated = validateLot(record, key);
          if (!validated.ok) reject(line, issuesText(validated.issues));
          else if (lotKeys.has(key)) reject(line, `lot ${key} appears on line ${lotKeys.get(key)} already`);
          else if (read.lots.length >= RESTORE_LIMITS.lots)
            reject(line, `a restore takes at most ${RESTORE_LIMITS.lots} lots`);
          else {
            lotKeys.set(key, line);
            read.lots.push({ line, key, fields: validated.value });
          }
        } else if (kind === "mapping") {
          const key = typeof record.selector === "string" ? record.selector : "";
          const validated = validateMapping(record, key, settings);
          if (!validated.ok) reject(line, issuesText(validated.issues));
          else if (selectors.has(key))
            reject(line, `mapping ${key} appears on line ${selectors.get(key)} already`);
          else if (read.mappings.length >= RESTORE_LIMITS.mappings)
            reject(line, `a restore takes at most ${RESTORE_LIMITS.mappings} mappings`);
          else {
            selectors.set(key, line);
            read.mappings.push({ line, key, fields: validated.value });
          }
        } else reject(line, `kind must be lot, mapping or allowlist (not ${JSON.stringify(kind)})`);
      }
      if (total === 0) reject(1, "the file is empty: a backup starts with its header line");
    }
    return read;
  }
}

/** What reading a backup file gathers; `allowlistLines` reads it (once), the rest fills as it goes. */
interface FileRead {
  report: RestoreReport;
  lots: Held<LotFields>[];
  mappings: Held<MappingFields>[];
  /** Each lot an allowlist record names, with the first line naming it. */
  lotsNamed: Map<string, number>;
  /** The file's lines read so far. */
  lines(): number;
  /** One import line per file line: the allowlist record's JSON, or blank for any other line. */
  allowlistLines(): AsyncGenerator<string>;
}

/** The import line of a backup file's line: the record of an allowlist line, blank for any other. */
export function allowlistLineOf(text: string): string {
  const value = parseJsonOrUndefined(text);
  return isObject(value) && value.kind === "allowlist" && isObject(value.record)
    ? JSON.stringify(value.record)
    : "";
}

/** Counts a held record's outcome against the stored one's admin fields; answers the outcome. */
function outcome<F extends object>(
  kind: RestoredKind,
  held: Held<F>,
  current: object | undefined,
): RestoredRecord["outcome"] {
  const done: RestoredRecord =
    current === undefined
      ? { line: held.line, key: held.key, outcome: "created" }
      : sameValues(current, held.fields)
        ? { line: held.line, key: held.key, outcome: "unchanged" }
        : { line: held.line, key: held.key, outcome: "updated", changes: fieldChanges(current, held.fields) };
  kind[done.outcome] += 1;
  if (kind.records.length < RESTORE_LIMITS.listed) kind.records.push(done);
  return done.outcome;
}

/** Cuts each list of the report to `RESTORE_LIMITS.listed` entries, saying so when it cuts. */
function capLists(report: RestoreReport): void {
  const { listed } = RESTORE_LIMITS;
  const { allowlist } = report;
  const lists = [report.rejected, report.warnings, allowlist.records, allowlist.rejected, allowlist.warnings];
  if (lists.every((list) => list.length <= listed)) return;
  report.rejected = report.rejected.slice(0, listed);
  report.warnings = report.warnings.slice(0, listed);
  report.allowlist = {
    ...allowlist,
    records: allowlist.records.slice(0, listed),
    rejected: allowlist.rejected.slice(0, listed),
    warnings: allowlist.warnings.slice(0, listed),
    truncated: true,
  };
  report.truncated = true;
}

const emptyKind = (): RestoredKind => ({ created: 0, updated: 0, unchanged: 0, records: [] });
