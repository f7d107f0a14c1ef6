import type { AdminContext } from "../admin/deps.ts";
import {
  emptyImportReport,
  type ImportFormat,
  type ImportMode,
  type ImportReport,
  importAllowlist,
} from "../admin/import.ts";
import type { ClockPort } from "../ports.ts";
import { fileLines, quoteCount } from "./lines.ts";
import type { JobFiles } from "./ports.ts";
import type { Job, JobBudget, JobKind, JobStep } from "./types.ts";

/*
 * An import job: the allowlist import (../admin/import.ts, line by line as the import route does it) over
 * a file in the job bucket, in two passes:
 *  1. validation: the whole file read as a dry run (nothing written), which counts its lines, finds the
 *     CSV header and decides every line; all-or-nothing ends here when a line is rejected, a dry run ends
 *     here with the report, best-effort remembers the rejected lines so the writes skip them (a device id
 *     repeated across slices stays rejected);
 *  2. writes: slices of lines from a line and byte cursor, each imported best-effort, the reports summed.
 * A slice redone after a crash finds its lines written already: they count as unchanged.
 */

export const IMPORT_JOB = "import";

/** What an import job is started with. */
export interface ImportJobParams {
  file: string;
  mode: ImportMode;
  format?: ImportFormat;
  dryRun?: boolean;
}

/** Where the write pass stands: the next line, the byte it starts at, the CSV header, the lines to skip. */
interface WriteCursor {
  line: number;
  byte: number;
  header?: string;
  skip: number[];
}

/** The write cursor of a JSON-lines file's first line: a kind that validated the file itself starts there. */
export const FROM_THE_START = JSON.stringify({ line: 1, byte: 0, skip: [] } satisfies WriteCursor);

/** The most lines one write slice takes. */
const SLICE_LINES = 5_000;
/** The most entries each list of a job's report keeps. */
const LISTED = 200;
/** The longest line (as the import route). */
const LINE_BYTES = 64 * 1024;

export interface ImportJobDeps {
  context: AdminContext;
  files: JobFiles;
  clock: ClockPort;
  /** The import line a file line gives (a restore takes the allowlist records out of a backup file). */
  lineOf?: (text: string) => string;
  /** List unchanged records in the report too (the default). */
  listUnchanged?: boolean;
}

/** The import kind; see the passes at the top of this module. */
export class ImportJob implements JobKind {
  readonly kind = IMPORT_JOB;

  constructor(private readonly deps: ImportJobDeps) {}

  /** Validates the file first, then writes one slice per step. */
  async step(job: Job, cursor: string | undefined, budget: JobBudget): Promise<JobStep> {
    const params = job.params as unknown as ImportJobParams;
    if (cursor === undefined) return this.#validate(job, params);
    return this.#write(job, params, JSON.parse(cursor) as WriteCursor, budget);
  }

  async #validate(job: Job, params: ImportJobParams): Promise<JobStep> {
    const { context, files, lineOf = same } = this.deps;
    let total = 0;
    let header: { text: string; end: number; line: number } | undefined;
    const source = async function* () {
      for await (const line of fileLines(await files.read(params.file, 0), 0, 1, LINE_BYTES)) {
        total = line.line;
        if (header === undefined && line.text.trim() !== "")
          header = { text: line.text, end: line.end, line: line.line };
        yield lineOf(line.text);
      }
    };
    const report = await importAllowlist(context, job.startedBy, source(), {
      mode: "best-effort",
      dryRun: true,
      ...(params.format !== undefined ? { format: params.format } : {}),
    });
    const progress = { done: 0, total };
    const validation = { ...report, mode: params.mode, dryRun: true };
    if (report.stopped !== undefined) {
      return {
        cursor: undefined,
        progress,
        done: true,
        result: validation,
        failed: `${report.stopped.reason}; nothing was written`,
      };
    }
    if (params.dryRun === true)
      return { cursor: undefined, progress: { done: total, total }, done: true, result: validation };
    if (params.mode === "all-or-nothing" && report.rejectedCount > 0) {
      const failed = `${report.rejectedCount} line(s) are invalid; nothing was written`;
      return { cursor: undefined, progress, done: true, result: validation, failed };
    }
    if (report.rejectedCount > report.rejected.length) {
      const failed = `${report.rejectedCount} line(s) are invalid, more than a job skips; nothing was written: fix the file`;
      return { cursor: undefined, progress, done: true, result: validation, failed };
    }
    const csv = report.format === "csv" && header !== undefined;
    const start: WriteCursor = {
      line: csv && header ? header.line + 1 : 1,
      byte: csv && header ? header.end : 0,
      ...(csv && header ? { header: header.text } : {}),
      skip: report.rejected.map((r) => r.line),
    };
    const result: ImportReport = {
      ...emptyImportReport(params.mode, report.format, false),
      rejected: report.rejected.slice(0, LISTED),
      rejectedCount: report.rejectedCount,
      truncated: report.rejected.length > LISTED,
    };
    return { cursor: JSON.stringify(start), progress, done: false, result };
  }

  async #write(job: Job, params: ImportJobParams, cursor: WriteCursor, budget: JobBudget): Promise<JobStep> {
    const { context, files, clock, lineOf = same } = this.deps;
    const skip = new Set(cursor.skip);
    const csv = cursor.header !== undefined;
    let next = { line: cursor.line, byte: cursor.byte };
    let finished = false;
    const source = async function* () {
      if (cursor.header !== undefined) yield cursor.header;
      let taken = 0;
      let quotes = 0;
      for await (const line of fileLines(
        await files.read(params.file, cursor.byte),
        cursor.byte,
        cursor.line,
        LINE_BYTES,
      )) {
        yield skip.has(line.line) ? "" : lineOf(line.text);
        taken += 1;
        quotes += csv ? quoteCount(line.text) : 0;
        next = { line: line.line + 1, byte: line.end };
        // A slice ends between records: in CSV, where the quotes seen pair up (no quoted field is open).
        const spent = taken >= SLICE_LINES || clock.now().getTime() >= budget.deadline;
        if (spent && quotes % 2 === 0) return;
      }
      finished = true;
    };
    const slice = await importAllowlist(context, job.startedBy, source(), {
      mode: "best-effort",
      firstLine: csv ? cursor.line - 1 : cursor.line,
      ...(this.deps.listUnchanged === false ? { listUnchanged: false } : {}),
      ...(params.format !== undefined || csv ? { format: csv ? "csv" : (params.format ?? "jsonl") } : {}),
    });
    const result = sumReports(job.result as ImportReport, slice);
    const total = job.progress.total;
    const progress = { done: next.line - 1, ...(total !== undefined ? { total } : {}) };
    if (slice.stopped !== undefined) {
      return {
        cursor: undefined,
        progress,
        done: true,
        result,
        failed: `${slice.stopped.reason}; the lines before it were imported`,
      };
    }
    const moved: WriteCursor = { ...cursor, ...next, skip: cursor.skip.filter((line) => line >= next.line) };
    return { cursor: finished ? undefined : JSON.stringify(moved), progress, done: finished, result };
  }
}

const same = (text: string): string => text;

/** The job's report so far plus one slice's (its lists kept to {@link LISTED} entries each). */
function sumReports(sum: ImportReport, slice: ImportReport): ImportReport {
  const capped = <T>(a: T[], b: T[]) => [...a, ...b].slice(0, LISTED);
  const lists = [
    sum.records.length + slice.records.length,
    sum.rejected.length + slice.rejected.length,
    sum.warnings.length + slice.warnings.length,
  ];
  return {
    ...sum,
    accepted: sum.accepted + slice.accepted,
    created: sum.created + slice.created,
    updated: sum.updated + slice.updated,
    replaced: sum.replaced + slice.replaced,
    merged: sum.merged + slice.merged,
    unchanged: sum.unchanged + slice.unchanged,
    records: capped(sum.records, slice.records),
    rejected: capped(sum.rejected, slice.rejected),
    rejectedCount: sum.rejectedCount + slice.rejectedCount,
    warnings: capped(sum.warnings, slice.warnings),
    truncated: sum.truncated || slice.truncated || lists.some((n) => n > LISTED),
  };
}
