import type { AdminContext } from "../admin/deps.ts";
import {
  type DeviceReconciliation,
  RECONCILE_LIMITS,
  ReconcileAdmin,
  type ReconcileOutcome,
} from "../admin/reconcile.ts";
import type { ClockPort } from "../ports.ts";
import type { Job, JobBudget, JobKind, JobStep } from "./types.ts";

/*
 * A reconcile job: the reconcile use case (../admin/reconcile.ts, called as a unit, one slice of the
 * provisioned devices at a time) over the whole allowlist. Each job step runs slices until its deadline and
 * saves the allowlist cursor after the last; a slice redone after a crash finds its devices reconciled
 * already (they count as unchanged). The result sums the slices: devices checked, changed (would change,
 * in a dry run), left (skipped, unresolved) and failed, with the first devices that were not unchanged.
 */

export const RECONCILE_JOB = "reconcile";

/** What a reconcile job is started with. */
export interface ReconcileJobParams {
  dryRun: boolean;
}

/** A reconcile job's result so far. */
export interface ReconcileJobResult {
  dryRun: boolean;
  /** Provisioned devices checked. */
  examined: number;
  /** Devices by outcome (changed or would-change, skipped, unresolved, failed). */
  outcomes: Record<ReconcileOutcome, number>;
  /** The devices that changed, would change or were left, the first {@link RECONCILE_LISTED}. */
  devices: DeviceReconciliation[];
  /** More devices than listed were not unchanged. */
  truncated: boolean;
}

/** The most devices a reconcile job's result lists (the job record is one DynamoDB item: 400 KB at most). */
export const RECONCILE_LISTED = 100;

const NO_OUTCOMES: Record<ReconcileOutcome, number> = {
  changed: 0,
  "would-change": 0,
  skipped: 0,
  unresolved: 0,
  failed: 0,
};

/** The reconcile kind; see the top of this module. */
export class ReconcileJob implements JobKind {
  readonly kind = RECONCILE_JOB;
  readonly #reconcile: ReconcileAdmin;

  constructor(
    context: AdminContext,
    private readonly clock: ClockPort,
    private readonly sliceLimit: number = RECONCILE_LIMITS.max,
  ) {
    this.#reconcile = new ReconcileAdmin(context);
  }

  /** Reconciles slices of devices from the cursor until the deadline or the last device. */
  async step(job: Job, cursor: string | undefined, budget: JobBudget): Promise<JobStep> {
    const { dryRun } = job.params as unknown as ReconcileJobParams;
    const sum: ReconcileJobResult = structuredClone(
      (job.result as ReconcileJobResult | undefined) ?? {
        dryRun,
        examined: 0,
        outcomes: { ...NO_OUTCOMES },
        devices: [],
        truncated: false,
      },
    );
    let at = cursor;
    for (;;) {
      const slice = await this.#reconcile.slice(job.startedBy, {
        limit: this.sliceLimit,
        dryRun,
        ...(at !== undefined ? { cursor: at } : {}),
      });
      sum.examined += slice.examined;
      for (const device of slice.devices) {
        sum.outcomes[device.outcome] += 1;
        if (sum.devices.length < RECONCILE_LISTED) sum.devices.push(device);
        else sum.truncated = true;
      }
      at = slice.cursor;
      const done = slice.done || at === undefined;
      if (done || this.clock.now().getTime() >= budget.deadline) {
        return {
          cursor: done ? undefined : at,
          progress: done ? { done: sum.examined, total: sum.examined } : { done: sum.examined },
          done,
          result: sum,
        };
      }
    }
  }
}
