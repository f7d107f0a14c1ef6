import type { AdminContext } from "../admin/deps.ts";
import type { Page, PageRequest } from "../ports.ts";
import { allowlistFieldsOf, lotFieldsOf, mappingFieldsOf } from "../records.ts";
import type { JobFiles, UploadedPart } from "./ports.ts";
import type { Job, JobBudget, JobKind, JobStep } from "./types.ts";

/*
 * Jobs that write records into one file in the job bucket, as JSON lines, through a multipart upload: each
 * step reads pages of records until a part is full (S3's 5 MiB minimum), uploads it and saves the page
 * cursor after it, so a crash redoes at most one part. The last step completes the upload; the API hands
 * out a download URL for it. Two kinds:
 *  - export: every allowlist record (the form import reads back, as GET /allowlist/export writes it);
 *  - backup: a header line (`{"kind":"backup","version":1,"createdAt":...}`), then every lot, mapping and
 *    allowlist record, in that order, one per line as `{"kind":"lot"|"mapping"|"allowlist","record":{...}}`
 *    with its admin fields only (what a restore reads back; see ./restore-job.ts).
 */

export const EXPORT_JOB = "export";
export const BACKUP_JOB = "backup";

/** The version of the backup file format, in its header line. */
export const BACKUP_VERSION = 1;

/** The record kinds of a backup file, in the order it holds them. */
export const BACKUP_KINDS = ["lot", "mapping", "allowlist"] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

/** What an export or backup job is started with: the file it writes. */
export interface ExportJobParams {
  file: string;
}

/** What an export or backup job hands back: its file and how many records it holds. */
export interface ExportResult {
  file: string;
  records: number;
  bytes: number;
}

interface ExportCursor {
  uploadId: string;
  parts: UploadedPart[];
  /** The source being read (an index into the kind's sources; absent: the first). */
  source?: number;
  /** The source's page after the last uploaded part (absent at its first page). */
  page?: string;
  records: number;
  bytes: number;
}

/** One kind of record a file holds: how to page through it and the line each record becomes. */
interface RecordSource {
  list(page: PageRequest): Promise<Page<unknown>>;
  line(record: unknown): unknown;
}

/** A source from a typed page reader and line maker. */
const source = <T>(
  list: (page: PageRequest) => Promise<Page<T>>,
  line: (record: T) => unknown,
): RecordSource => ({
  list,
  line: (record) => line(record as T),
});

/** The smallest part S3 takes (the last excepted). */
export const PART_BYTES = 5 * 1024 * 1024;
const PAGE = 500;

/** Writes a file of records from sources, part by part; see the top of this module. */
abstract class RecordFileJob implements JobKind {
  abstract readonly kind: string;

  constructor(
    protected readonly deps: { context: AdminContext; files: JobFiles },
    private readonly partBytes = PART_BYTES,
  ) {}

  /** The sources, in file order. */
  protected abstract sources(): RecordSource[];

  /** The file's first line, if it has one. */
  protected header(_job: Job): string | undefined {
    return undefined;
  }

  /** Uploads one part of records per step; the last step completes the file. */
  async step(job: Job, cursor: string | undefined, _budget: JobBudget): Promise<JobStep> {
    const { files } = this.deps;
    const { file } = job.params as unknown as ExportJobParams;
    const sources = this.sources();
    const chunks: string[] = [];
    let size = 0;
    const push = (line: string) => {
      chunks.push(line);
      size += Buffer.byteLength(line, "utf8");
    };
    let at: ExportCursor;
    if (cursor === undefined) {
      at = { uploadId: await files.startUpload(file), parts: [], records: 0, bytes: 0 };
      const header = this.header(job);
      if (header !== undefined) push(`${header}\n`);
    } else at = JSON.parse(cursor) as ExportCursor;
    let records = 0;
    let index = at.source ?? 0;
    let page = at.page;
    while (size < this.partBytes && index < sources.length) {
      const from = sources[index] as RecordSource;
      const read = await from.list(page === undefined ? { limit: PAGE } : { limit: PAGE, cursor: page });
      for (const record of read.items) push(`${JSON.stringify(from.line(record))}\n`);
      records += read.items.length;
      page = read.cursor;
      if (page === undefined) index += 1;
    }
    const last = index >= sources.length;
    const partNumber = at.parts.length + 1;
    const body = new TextEncoder().encode(chunks.join(""));
    const etag = await files.uploadPart(file, at.uploadId, partNumber, body);
    const next: ExportCursor = {
      uploadId: at.uploadId,
      parts: [...at.parts, { partNumber, etag }],
      ...(index > 0 ? { source: index } : {}),
      ...(page !== undefined ? { page } : {}),
      records: at.records + records,
      bytes: at.bytes + size,
    };
    const progress = { done: next.records };
    if (!last) return { cursor: JSON.stringify(next), progress, done: false };
    await files.completeUpload(file, at.uploadId, next.parts);
    const result: ExportResult = { file, records: next.records, bytes: next.bytes };
    return { cursor: undefined, progress: { done: next.records, total: next.records }, done: true, result };
  }
}

/** The export kind: every allowlist record, one per line. */
export class ExportJob extends RecordFileJob {
  readonly kind = EXPORT_JOB;

  protected sources(): RecordSource[] {
    const { allowlist } = this.deps.context.retried;
    return [source((page) => allowlist.list({}, page), allowlistFieldsOf)];
  }
}

/** The backup kind: a header, then every lot, mapping and allowlist record, each line naming its kind. */
export class BackupJob extends RecordFileJob {
  readonly kind = BACKUP_JOB;

  protected override header(job: Job): string {
    return JSON.stringify({ kind: "backup", version: BACKUP_VERSION, createdAt: job.createdAt });
  }

  protected sources(): RecordSource[] {
    const { lots, mappings, allowlist } = this.deps.context.retried;
    return [
      source(
        (page) => lots.list(page),
        (record) => ({ kind: "lot", record: lotFieldsOf(record) }),
      ),
      source(
        (page) => mappings.list(page),
        (record) => ({ kind: "mapping", record: mappingFieldsOf(record) }),
      ),
      source(
        (page) => allowlist.list({}, page),
        (record) => ({ kind: "allowlist", record: allowlistFieldsOf(record) }),
      ),
    ];
  }
}
