import type { AdminContext } from "../admin/deps.ts";
import { allowlistFieldsOf } from "../records.ts";
import type { JobFiles, UploadedPart } from "./ports.ts";
import type { Job, JobBudget, JobKind, JobStep } from "./types.ts";

/*
 * An export job: every allowlist record as JSON lines (the form import reads back, as GET /allowlist/export
 * writes it) into one file in the job bucket, through a multipart upload: each step reads pages of records
 * until a part is full (S3's 5 MiB minimum), uploads it and saves the page cursor after it, so a crash
 * redoes at most one part. The last step completes the upload; the API hands out a download URL for it.
 */

export const EXPORT_JOB = "export";

/** What an export job is started with: the file it writes. */
export interface ExportJobParams {
  file: string;
}

/** What an export job hands back: its file and how many records it holds. */
export interface ExportResult {
  file: string;
  records: number;
  bytes: number;
}

interface ExportCursor {
  uploadId: string;
  parts: UploadedPart[];
  /** The allowlist page after the last uploaded part (absent at the first page). */
  page?: string;
  records: number;
  bytes: number;
}

/** The smallest part S3 takes (the last excepted). */
export const PART_BYTES = 5 * 1024 * 1024;
const PAGE = 500;

/** The export kind; see the top of this module. */
export class ExportJob implements JobKind {
  readonly kind = EXPORT_JOB;

  constructor(
    private readonly deps: { context: AdminContext; files: JobFiles },
    private readonly partBytes = PART_BYTES,
  ) {}

  /** Uploads one part of records per step; the last step completes the file. */
  async step(job: Job, cursor: string | undefined, _budget: JobBudget): Promise<JobStep> {
    const { files, context } = this.deps;
    const { file } = job.params as unknown as ExportJobParams;
    const at: ExportCursor =
      cursor === undefined
        ? { uploadId: await files.startUpload(file), parts: [], records: 0, bytes: 0 }
        : (JSON.parse(cursor) as ExportCursor);
    const chunks: string[] = [];
    let size = 0;
    let records = 0;
    let page = at.page;
    let last = false;
    while (size < this.partBytes) {
      const read = await context.retried.allowlist.list(
        {},
        page === undefined ? { limit: PAGE } : { limit: PAGE, cursor: page },
      );
      for (const record of read.items) {
        const line = `${JSON.stringify(allowlistFieldsOf(record))}\n`;
        chunks.push(line);
        size += Buffer.byteLength(line, "utf8");
      }
      records += read.items.length;
      page = read.cursor;
      if (page === undefined) {
        last = true;
        break;
      }
    }
    const partNumber = at.parts.length + 1;
    const body = new TextEncoder().encode(chunks.join(""));
    const etag = await files.uploadPart(file, at.uploadId, partNumber, body);
    const next: ExportCursor = {
      uploadId: at.uploadId,
      parts: [...at.parts, { partNumber, etag }],
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
