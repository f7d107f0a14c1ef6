/*
 * The one job model: long work (an import, an export, a reconcile, a block of many devices) as a job
 * record that a worker advances slice by slice. A kind implements `step`; the runner (./runner.ts) owns
 * the record: who may run it (a lease), its cursor and progress after each slice, and its end.
 */

/** Where a job is: waiting for a worker, advancing, or ended (succeeded, failed, cancelled). */
export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** The states a job never leaves. */
export const FINAL_STATES: readonly JobState[] = ["succeeded", "failed", "cancelled"];

/** How far a job is: units done, of `total` when the kind knows it. */
export interface JobProgress {
  done: number;
  total?: number;
}

/** The worker running a slice of the job, until `expiresAt` (a crashed worker's job resumes after it). */
export interface JobLease {
  owner: string;
  expiresAt: string;
}

/** A job record, as stored and as the admin API answers it. */
export interface Job {
  id: string;
  kind: string;
  state: JobState;
  /** What the job was started with (the kind reads them; the API shows them). */
  params: Record<string, unknown>;
  progress: JobProgress;
  /** Where the next slice starts: opaque to everyone but the kind. */
  cursor?: string;
  startedBy: string;
  createdAt: string;
  updatedAt: string;
  /** What the job did (so far, while it runs). */
  result?: unknown;
  /** Why it failed. */
  error?: string;
  lease?: JobLease;
  /** Bumped by every write: each write is conditional on the version read. */
  version: number;
}

/** What one slice may spend: it should return by `deadline` (epoch milliseconds). */
export interface JobBudget {
  deadline: number;
}

/** What a slice did: where the next one starts, the progress, the result so far, and whether it is all done. */
export interface JobStep {
  cursor: string | undefined;
  progress: JobProgress;
  done: boolean;
  result?: unknown;
  /** The job ended without doing its work (e.g. an all-or-nothing import with a bad line): why. */
  failed?: string;
}

/** A kind of job: one slice of its work at a time, from a cursor, resumable from the cursor it returns. */
export interface JobKind {
  readonly kind: string;
  step(job: Job, cursor: string | undefined, budget: JobBudget): Promise<JobStep>;
}
