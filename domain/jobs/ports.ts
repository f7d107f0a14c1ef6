import type { Page, PageRequest } from "../ports.ts";
import type { Job } from "./types.ts";

/** The jobs table: every write conditional, so one worker owns a running slice and a cancel is never lost. */
export interface JobStore {
  /** Writes a new job; false when the id exists. */
  create(job: Job): Promise<boolean>;
  get(id: string): Promise<Job | undefined>;
  /** Replaces the job if the stored version is `expectedVersion`; false otherwise. */
  update(job: Job, expectedVersion: number): Promise<boolean>;
  /** A page of jobs, newest first. */
  list(page: PageRequest): Promise<Page<Job>>;
}

/** The queue that feeds the worker: a message names a job to advance. */
export interface JobQueue {
  enqueue(jobId: string): Promise<void>;
}

/** A presigned URL and until when it works. */
export interface SignedUrl {
  url: string;
  method: "GET" | "PUT";
  /** Headers the request must carry as signed. */
  headers: Record<string, string>;
  expiresAt: string;
}

/** A part of a multipart upload, as completed. */
export interface UploadedPart {
  partNumber: number;
  etag: string;
}

/** The bucket job files travel through (S3): uploads to import, exports to download. */
export interface JobFiles {
  /** A URL to PUT exactly `bytes` bytes to `key`. */
  uploadUrl(key: string, bytes: number, expiresSeconds: number): Promise<SignedUrl>;
  /** A URL to GET `key`. */
  downloadUrl(key: string, expiresSeconds: number): Promise<SignedUrl>;
  /** The object's size in bytes, or undefined when there is none. */
  size(key: string): Promise<number | undefined>;
  /** The object's bytes from `fromByte` on. */
  read(key: string, fromByte: number): Promise<AsyncIterable<Uint8Array>>;
  /** Starts a multipart upload; answers its id. */
  startUpload(key: string): Promise<string>;
  /** Uploads one part (5 MiB at least, the last excepted); answers its ETag. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string>;
  completeUpload(key: string, uploadId: string, parts: UploadedPart[]): Promise<void>;
}
