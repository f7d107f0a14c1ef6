import { describeError, TransientError } from "../errors.ts";
import type { ClockPort } from "../ports.ts";
import type { JobStore } from "./ports.ts";
import { FINAL_STATES, type Job, type JobKind, type JobStep } from "./types.ts";

/*
 * The worker's loop over one job:
 *  1. claim it: a conditional write sets a lease naming this worker, unless another worker holds a lease
 *     that has not expired (a crashed worker's lease expires, and its job resumes from the last cursor);
 *  2. run slices: each `step` starts at the saved cursor and should return by its slice deadline; after
 *     each, cursor, progress and result are saved (conditional on the version, renewing the lease);
 *  3. end it (succeeded or failed), or, when the time budget is spent, give the lease back and answer
 *     `again` so the caller re-enqueues it. A save that loses to a cancel stops at once.
 */

/** What became of a run: the job ended, needs another run, is held by a live lease, or is gone. */
export type RunOutcome = "ended" | "again" | "busy" | "absent" | "lost";

export interface JobRunnerOptions {
  store: JobStore;
  kinds: readonly JobKind[];
  clock: ClockPort;
  /** This worker's name, in its leases. */
  owner: string;
  /** How long a lease lasts from each save; longer than a slice. Default 60 s. */
  leaseMs?: number;
  /** The most one slice may take. Default 20 s. */
  sliceMs?: number;
}

/** Runs jobs slice by slice within a time budget; see the steps at the top of this module. */
export class JobRunner {
  readonly #kinds: Map<string, JobKind>;
  readonly #leaseMs: number;
  readonly #sliceMs: number;

  constructor(private readonly options: JobRunnerOptions) {
    this.#kinds = new Map(options.kinds.map((kind) => [kind.kind, kind]));
    this.#leaseMs = options.leaseMs ?? 60_000;
    this.#sliceMs = Math.min(options.sliceMs ?? 20_000, this.#leaseMs / 2);
  }

  /** Advances the job until it ends or `budgetMs` is spent. */
  async run(id: string, budgetMs: number): Promise<RunOutcome> {
    const { clock } = this.options;
    const deadline = clock.now().getTime() + budgetMs;
    let job = await this.#claim(id);
    if (typeof job === "string") return job;
    const kind = this.#kinds.get(job.kind);
    if (kind === undefined) return this.#end(job, { state: "failed", error: `unknown job kind ${job.kind}` });
    while (clock.now().getTime() < deadline) {
      let step: JobStep;
      try {
        const sliceDeadline = Math.min(deadline, clock.now().getTime() + this.#sliceMs);
        step = await kind.step(job, job.cursor, { deadline: sliceDeadline });
      } catch (error) {
        if (error instanceof TransientError) {
          // Retried by the queue from the saved cursor: give the lease back now.
          await this.#save(job, { lease: undefined });
          throw error;
        }
        return this.#end(job, { state: "failed", error: describeError(error) });
      }
      const saved: Partial<Job> = { cursor: step.cursor, progress: step.progress, result: step.result };
      if (step.failed !== undefined) return this.#end(job, { ...saved, state: "failed", error: step.failed });
      if (step.done) return this.#end(job, { ...saved, state: "succeeded" });
      const next = await this.#save(job, { ...saved, lease: this.#lease() });
      if (typeof next === "string") return next;
      job = next;
    }
    const released = await this.#save(job, { state: "queued", lease: undefined });
    return typeof released === "string" ? released : "again";
  }

  /** Takes the lease, unless the job ended or another worker's lease is live. */
  async #claim(id: string): Promise<Job | RunOutcome> {
    const { store, clock } = this.options;
    const job = await store.get(id);
    if (job === undefined) return "absent";
    if (FINAL_STATES.includes(job.state)) return "ended";
    const lease = job.lease;
    if (
      lease !== undefined &&
      lease.owner !== this.options.owner &&
      Date.parse(lease.expiresAt) > clock.now().getTime()
    ) {
      return "busy";
    }
    const claimed = await this.#save(job, { state: "running", lease: this.#lease() });
    return claimed === "lost" ? "busy" : claimed;
  }

  #lease() {
    const expiresAt = new Date(this.options.clock.now().getTime() + this.#leaseMs).toISOString();
    return { owner: this.options.owner, expiresAt };
  }

  async #end(job: Job, change: Partial<Job>): Promise<RunOutcome> {
    const saved = await this.#save(job, { ...change, lease: undefined });
    return typeof saved === "string" ? saved : "ended";
  }

  /**
   * Writes the change conditional on the version read. Lost: the job was cancelled (`ended`) or another
   * worker took it over after this one's lease expired (`lost`); either way this worker stops.
   */
  async #save(job: Job, change: Partial<Job>): Promise<Job | RunOutcome> {
    const { store, clock } = this.options;
    const next: Job = { ...job, ...change, version: job.version + 1, updatedAt: clock.now().toISOString() };
    for (const key of Object.keys(change) as (keyof Job)[]) {
      if (change[key] === undefined) delete next[key];
    }
    if (await store.update(next, job.version)) return next;
    const now = await store.get(job.id);
    return now === undefined || FINAL_STATES.includes(now.state) ? "ended" : "lost";
  }
}
