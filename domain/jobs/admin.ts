import { isLotName } from "../admin/validation.ts";
import { invalidFields, NotFoundError, StateConflictError } from "../errors.ts";
import { isObject } from "../json.ts";
import { isThingName } from "../naming.ts";
import type { ClockPort, LedgerPort, Page, PageRequest } from "../ports.ts";
import { BLOCK_JOB, BLOCK_JOB_MAX_IDS, type BlockJobParams } from "./block-job.ts";
import { BACKUP_JOB, EXPORT_JOB, type ExportJobParams, type ExportResult } from "./export-job.ts";
import { IMPORT_JOB, type ImportJobParams } from "./import-job.ts";
import type { JobFiles, JobQueue, JobStore, SignedUrl } from "./ports.ts";
import { RECONCILE_JOB, type ReconcileJobParams } from "./reconcile-job.ts";
import { RESTORE_JOB, type RestoreJobParams } from "./restore-job.ts";
import { FINAL_STATES, type Job } from "./types.ts";

/*
 * The admin side of jobs: an upload URL for a file to import, starting import and export jobs, reading
 * and listing jobs (a finished export with a fresh download URL), and cancelling one. Starting and
 * cancelling are admin changes: each goes to the ledger (key `#job:<id>`) with who made it.
 */

/** The limits of job files. */
export const JOB_LIMITS = {
  /** The largest file an import job takes. */
  uploadBytes: 1024 * 1024 * 1024,
  uploadUrlSeconds: 15 * 60,
  downloadUrlSeconds: 60 * 60,
} as const;

/** What the jobs run on. */
export interface JobDeps {
  jobs: JobStore;
  queue: JobQueue;
  files: JobFiles;
}

/** An upload URL and the file name to start the import job with. */
export interface UploadTicket {
  file: string;
  upload: SignedUrl;
}

/** A job as the API answers it: a finished export carries a download URL. */
export type JobView = Job & { download?: SignedUrl };

/** Ledger key of changes to a job. */
export const jobLedgerKey = (id: string): string => `#job:${id}`;

const UPLOAD_FILE = /^uploads\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The job use cases of the admin API. */
export class JobsAdmin {
  constructor(private readonly deps: JobDeps & { clock: ClockPort; ledger: LedgerPort }) {}

  /** A URL to upload a file of `bytes` bytes to, and the name to start its import job with. */
  async requestUpload(body: unknown): Promise<UploadTicket> {
    const bytes = isObject(body) ? body.bytes : undefined;
    if (
      typeof bytes !== "number" ||
      !Number.isSafeInteger(bytes) ||
      bytes < 1 ||
      bytes > JOB_LIMITS.uploadBytes
    ) {
      throw invalidFields([
        { path: "bytes", message: `must be the file's size, 1 to ${JOB_LIMITS.uploadBytes} bytes` },
      ]);
    }
    const file = `uploads/${crypto.randomUUID()}`;
    return { file, upload: await this.deps.files.uploadUrl(file, bytes, JOB_LIMITS.uploadUrlSeconds) };
  }

  /** Starts an import job over an uploaded file. */
  async startImport(actor: string, body: unknown): Promise<Job> {
    const params = importParamsOf(body);
    await this.#requireUpload(params.file);
    return this.#start(actor, IMPORT_JOB, { ...params });
  }

  /** Starts an export job: every allowlist record into one file. */
  async startExport(actor: string): Promise<Job> {
    const id = crypto.randomUUID();
    const params: ExportJobParams = { file: `exports/${id}.jsonl` };
    return this.#start(actor, EXPORT_JOB, { ...params }, id);
  }

  /** Starts a reconcile job over every provisioned device (`dryRun`: change nothing, report what would). */
  async startReconcile(actor: string, body: unknown): Promise<Job> {
    return this.#start(actor, RECONCILE_JOB, { ...reconcileParamsOf(body) });
  }

  /** Starts a block job over devices named by id or by lot (`suspend`: INACTIVE rather than REVOKED). */
  async startBlock(actor: string, body: unknown): Promise<Job> {
    return this.#start(actor, BLOCK_JOB, { ...blockParamsOf(body) });
  }

  /** Starts a backup job: every lot, mapping and allowlist record into one file. */
  async startBackup(actor: string): Promise<Job> {
    const id = crypto.randomUUID();
    const params: ExportJobParams = { file: `backups/${id}.jsonl` };
    return this.#start(actor, BACKUP_JOB, { ...params }, id);
  }

  /** Starts a restore job over an uploaded backup file. */
  async startRestore(actor: string, body: unknown): Promise<Job> {
    const params = restoreParamsOf(body);
    await this.#requireUpload(params.file);
    return this.#start(actor, RESTORE_JOB, { ...params });
  }

  /** Refuses a file that was not uploaded, or is too large. */
  async #requireUpload(file: string): Promise<void> {
    const size = await this.deps.files.size(file);
    if (size === undefined)
      throw invalidFields([
        { path: "file", message: "nothing was uploaded there (or the upload URL expired)" },
      ]);
    if (size > JOB_LIMITS.uploadBytes)
      throw invalidFields([{ path: "file", message: `is larger than ${JOB_LIMITS.uploadBytes} bytes` }]);
  }

  /** One job; a succeeded export or backup with a fresh download URL. */
  async get(id: string): Promise<JobView> {
    const job = JOB_ID.test(id) ? await this.deps.jobs.get(id) : undefined;
    if (job === undefined) throw new NotFoundError(`no job ${id}`);
    if ((job.kind === EXPORT_JOB || job.kind === BACKUP_JOB) && job.state === "succeeded") {
      const { file } = job.result as ExportResult;
      return { ...job, download: await this.deps.files.downloadUrl(file, JOB_LIMITS.downloadUrlSeconds) };
    }
    return job;
  }

  /** A page of jobs, newest first. */
  list(page: PageRequest): Promise<Page<Job>> {
    return this.deps.jobs.list(page);
  }

  /** Cancels a job that has not ended; a running slice stops at its next save. */
  async cancel(actor: string, id: string): Promise<Job> {
    const { jobs, clock, ledger } = this.deps;
    for (;;) {
      const job = await this.get(id);
      if (FINAL_STATES.includes(job.state))
        throw new StateConflictError(`job ${id} has ended (${job.state})`);
      const { lease: _lease, download: _download, ...rest } = job;
      const now = clock.now().toISOString();
      const cancelled: Job = { ...rest, state: "cancelled", updatedAt: now, version: job.version + 1 };
      if (await jobs.update(cancelled, job.version)) {
        await ledger.append({
          deviceId: jobLedgerKey(id),
          at: now,
          kind: "admin",
          actor,
          change: { action: "job-cancel", kind: job.kind },
        });
        return cancelled;
      }
    }
  }

  async #start(
    actor: string,
    kind: string,
    params: Record<string, unknown>,
    id = crypto.randomUUID(),
  ): Promise<Job> {
    const { jobs, queue, clock, ledger } = this.deps;
    const now = clock.now().toISOString();
    const job: Job = {
      id,
      kind,
      state: "queued",
      params,
      progress: { done: 0 },
      startedBy: actor,
      createdAt: now,
      updatedAt: now,
      version: 1,
    };
    if (!(await jobs.create(job))) throw new StateConflictError(`job ${id} exists already`);
    await ledger.append({
      deviceId: jobLedgerKey(id),
      at: now,
      kind: "admin",
      actor,
      change: { action: "job-start", kind, params },
    });
    await queue.enqueue(id);
    return job;
  }
}

/** An import job's parameters from a request body; ValidationError naming each field at fault. */
function importParamsOf(body: unknown): ImportJobParams {
  if (!isObject(body)) throw invalidFields([{ path: "", message: "must be a JSON object" }]);
  const { file, mode = "best-effort", format, dryRun = false, ...unknown } = body;
  const issues = Object.keys(unknown).map((path) => ({ path, message: "is not a field of an import job" }));
  if (typeof file !== "string" || !UPLOAD_FILE.test(file))
    issues.push({ path: "file", message: "must be the file an upload URL was given for" });
  if (mode !== "best-effort" && mode !== "all-or-nothing")
    issues.push({ path: "mode", message: "must be best-effort or all-or-nothing" });
  if (format !== undefined && format !== "jsonl" && format !== "csv")
    issues.push({ path: "format", message: "must be jsonl or csv" });
  if (typeof dryRun !== "boolean") issues.push({ path: "dryRun", message: "must be true or false" });
  if (issues.length > 0) throw invalidFields(issues);
  return {
    file: file as string,
    mode: mode as ImportJobParams["mode"],
    ...(format !== undefined ? { format: format as ImportJobParams["format"] } : {}),
    ...(dryRun === true ? { dryRun: true } : {}),
  };
}

/** A reconcile job's parameters from a request body (an empty body: a real run). */
function reconcileParamsOf(body: unknown): ReconcileJobParams {
  if (body !== undefined && !isObject(body))
    throw invalidFields([{ path: "", message: "must be a JSON object" }]);
  const { dryRun = false, ...unknown } = body ?? {};
  const issues = Object.keys(unknown).map((path) => ({ path, message: "is not a field of a reconcile job" }));
  if (typeof dryRun !== "boolean") issues.push({ path: "dryRun", message: "must be true or false" });
  if (issues.length > 0) throw invalidFields(issues);
  return { dryRun: dryRun as boolean };
}

/** A block job's parameters from a request body: `deviceIds` or `lot`, and `suspend`. */
function blockParamsOf(body: unknown): BlockJobParams {
  if (!isObject(body)) throw invalidFields([{ path: "", message: "must be a JSON object" }]);
  const { deviceIds, lot, suspend = false, ...unknown } = body;
  const issues = Object.keys(unknown).map((path) => ({ path, message: "is not a field of a block job" }));
  if (typeof suspend !== "boolean") issues.push({ path: "suspend", message: "must be true or false" });
  if ((deviceIds === undefined) === (lot === undefined))
    issues.push({ path: "", message: "name the devices: deviceIds or lot, not both" });
  if (lot !== undefined && (typeof lot !== "string" || !isLotName(lot)))
    issues.push({ path: "lot", message: "must be a lot name" });
  if (deviceIds !== undefined) {
    if (!Array.isArray(deviceIds) || deviceIds.length === 0 || deviceIds.length > BLOCK_JOB_MAX_IDS) {
      issues.push({
        path: "deviceIds",
        message: `must be a list of 1 to ${BLOCK_JOB_MAX_IDS} device ids (more: block by lot)`,
      });
    } else {
      const seen = new Set<string>();
      deviceIds.forEach((id: unknown, i) => {
        if (typeof id !== "string" || !isThingName(id))
          issues.push({ path: `deviceIds[${i}]`, message: "must be a device id (a thing name)" });
        else if (seen.has(id)) issues.push({ path: `deviceIds[${i}]`, message: `${id} is named twice` });
        else seen.add(id);
      });
    }
  }
  if (issues.length > 0) throw invalidFields(issues);
  const mode = suspend === true ? "suspend" : "revoke";
  return lot !== undefined ? { mode, lot: lot as string } : { mode, deviceIds: deviceIds as string[] };
}

/** A restore job's parameters from a request body; ValidationError naming each field at fault. */
function restoreParamsOf(body: unknown): RestoreJobParams {
  if (!isObject(body)) throw invalidFields([{ path: "", message: "must be a JSON object" }]);
  const { file, dryRun = false, force = false, allowBroadPolicy = false, ...unknown } = body;
  const issues = Object.keys(unknown).map((path) => ({ path, message: "is not a field of a restore job" }));
  if (typeof file !== "string" || !UPLOAD_FILE.test(file))
    issues.push({ path: "file", message: "must be the file an upload URL was given for" });
  const flags = { dryRun, force, allowBroadPolicy };
  for (const [path, value] of Object.entries(flags))
    if (typeof value !== "boolean") issues.push({ path, message: "must be true or false" });
  if (issues.length > 0) throw invalidFields(issues);
  return {
    file: file as string,
    ...(dryRun === true ? { dryRun: true } : {}),
    ...(force === true ? { force: true } : {}),
    ...(allowBroadPolicy === true ? { allowBroadPolicy: true } : {}),
  };
}
