/** In-memory jobs table, job bucket and queue, for the job runner and kinds without I/O. */
import type { JobFiles, JobQueue, JobStore, SignedUrl, UploadedPart } from "../../domain/jobs/ports.ts";
import type { Job } from "../../domain/jobs/types.ts";
import type { Page, PageRequest } from "../../domain/ports.ts";

/** The jobs table: conditional on the version, as DynamoDB is. */
export class MemoryJobStore implements JobStore {
  readonly jobs = new Map<string, Job>();

  async create(job: Job): Promise<boolean> {
    if (this.jobs.has(job.id)) return false;
    this.jobs.set(job.id, structuredClone(job));
    return true;
  }

  async get(id: string): Promise<Job | undefined> {
    const job = this.jobs.get(id);
    return job && structuredClone(job);
  }

  async update(job: Job, expectedVersion: number): Promise<boolean> {
    if (this.jobs.get(job.id)?.version !== expectedVersion) return false;
    this.jobs.set(job.id, structuredClone(job));
    return true;
  }

  async list(page: PageRequest): Promise<Page<Job>> {
    const all = [...this.jobs.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
    const start = Number(page.cursor ?? 0);
    const end = start + (page.limit ?? 100);
    return { items: all.slice(start, end), ...(end < all.length ? { cursor: String(end) } : {}) };
  }
}

/** The job bucket: objects by key, multipart uploads assembled on completion. */
export class MemoryJobFiles implements JobFiles {
  readonly objects = new Map<string, Uint8Array>();
  readonly uploads = new Map<string, Map<number, Uint8Array>>();
  /** The size of the chunks reads hand out (small, to split lines across chunks). */
  constructor(private readonly chunkBytes = 1000) {}

  put(key: string, text: string): void {
    this.objects.set(key, new TextEncoder().encode(text));
  }

  text(key: string): string | undefined {
    const bytes = this.objects.get(key);
    return bytes && new TextDecoder().decode(bytes);
  }

  async uploadUrl(key: string, bytes: number): Promise<SignedUrl> {
    return { url: `memory://${key}?bytes=${bytes}`, method: "PUT", headers: {}, expiresAt: "" };
  }

  async downloadUrl(key: string): Promise<SignedUrl> {
    return { url: `memory://${key}`, method: "GET", headers: {}, expiresAt: "" };
  }

  async size(key: string): Promise<number | undefined> {
    return this.objects.get(key)?.length;
  }

  async read(key: string, fromByte: number): Promise<AsyncIterable<Uint8Array>> {
    const bytes = this.objects.get(key);
    if (bytes === undefined) throw new Error(`no object ${key}`);
    const size = this.chunkBytes;
    return (async function* () {
      for (let at = fromByte; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
    })();
  }

  async startUpload(key: string): Promise<string> {
    const id = `${key}#${this.uploads.size + 1}`;
    this.uploads.set(id, new Map());
    return id;
  }

  async uploadPart(_key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string> {
    this.uploads.get(uploadId)?.set(partNumber, body.slice());
    return `etag-${partNumber}-${body.length}`;
  }

  async completeUpload(key: string, uploadId: string, parts: UploadedPart[]): Promise<void> {
    const stored = this.uploads.get(uploadId);
    if (stored === undefined) throw new Error(`no upload ${uploadId}`);
    const bodies = parts.map((part) => {
      const body = stored.get(part.partNumber);
      if (body === undefined || part.etag !== `etag-${part.partNumber}-${body.length}`)
        throw new Error(`part ${part.partNumber} does not match`);
      return body;
    });
    this.objects.set(key, Buffer.concat(bodies));
    this.uploads.delete(uploadId);
  }
}

/** The worker's queue: the job ids enqueued, in order. */
export class MemoryJobQueue implements JobQueue {
  readonly sent: string[] = [];
  async enqueue(jobId: string): Promise<void> {
    this.sent.push(jobId);
  }
}
