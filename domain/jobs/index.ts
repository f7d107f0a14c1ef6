/*
 * Jobs: long work as a job record advanced slice by slice by a worker fed by a queue (./runner.ts), the
 * kinds (./import-job.ts, ./export-job.ts, ./reconcile-job.ts, ./block-job.ts), and the admin use cases
 * over them (./admin.ts).
 */
import type { AdminContext } from "../admin/deps.ts";
import type { ClockPort } from "../ports.ts";
import { BlockJob } from "./block-job.ts";
import { BackupJob, ExportJob } from "./export-job.ts";
import { ImportJob } from "./import-job.ts";
import type { JobFiles } from "./ports.ts";
import { ReconcileJob } from "./reconcile-job.ts";
import { RestoreJob } from "./restore-job.ts";
import type { JobKind } from "./types.ts";

export {
  JOB_LIMITS,
  type JobDeps,
  JobsAdmin,
  type JobView,
  jobLedgerKey,
  type UploadTicket,
} from "./admin.ts";
export {
  BLOCK_JOB,
  BLOCK_JOB_MAX_IDS,
  BlockJob,
  type BlockJobDevice,
  type BlockJobOutcome,
  type BlockJobParams,
  type BlockJobResult,
} from "./block-job.ts";
export {
  BACKUP_JOB,
  BACKUP_VERSION,
  BackupJob,
  EXPORT_JOB,
  ExportJob,
  type ExportResult,
} from "./export-job.ts";
export { IMPORT_JOB, ImportJob, type ImportJobParams } from "./import-job.ts";
export type { JobFiles, JobQueue, JobStore, SignedUrl, UploadedPart } from "./ports.ts";
export {
  RECONCILE_JOB,
  RECONCILE_LISTED,
  ReconcileJob,
  type ReconcileJobParams,
  type ReconcileJobResult,
} from "./reconcile-job.ts";
export {
  RESTORE_JOB,
  type RestoredKind,
  type RestoredRecord,
  RestoreJob,
  type RestoreJobParams,
  type RestoreReport,
} from "./restore-job.ts";
export { JobRunner, type JobRunnerOptions, type RunOutcome } from "./runner.ts";
export {
  FINAL_STATES,
  type Job,
  type JobBudget,
  type JobKind,
  type JobProgress,
  type JobState,
  type JobStep,
} from "./types.ts";

/** The kinds of job the worker runs, over the admin use cases' ports and the job bucket. */
export function jobKinds(context: AdminContext, files: JobFiles, clock: ClockPort): JobKind[] {
  return [
    new ImportJob({ context, files, clock }),
    new ExportJob({ context, files }),
    new ReconcileJob(context, clock),
    new BlockJob(context, clock),
    new BackupJob({ context, files }),
    new RestoreJob({ context, files, clock }),
  ];
}
