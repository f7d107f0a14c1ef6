import type { AdminContext } from "../admin/deps.ts";
import { everything, lotLedgerKey } from "../admin/ledger.ts";
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
 *
 * Then the lots are recounted (README "Lot counts"): the lots' counts are read first, then every record's
 * `lotCounted` mark is tallied (a page at a time, the tally in the cursor), and each lot whose count differs
 * from its tally is set to it, conditional on the count read first: a lot whose count moved meanwhile (a
 * device provisioned or released during the recount) is left and reported, to recount again later. Each
 * recount is a ledger entry under the lot's key.
 */

export const RECONCILE_JOB = "reconcile";

/** What a reconcile job is started with. */
export interface ReconcileJobParams {
  dryRun: boolean;
}

/** A lot whose count differed from its records' marks: set to it, would be (dry run), or moved meanwhile. */
export interface LotRecount {
  lot: string;
  /** The count read before the tally. */
  before: number;
  /** The records marked as counted in the lot. */
  after: number;
  outcome: "recounted" | "would-recount" | "moved";
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
  /** The lots whose count differed from their records' marks (once the devices are done). */
  lots?: LotRecount[];
}

/** Where a reconcile job stands: in the devices (the reconcile cursor), or tallying the lot marks. */
type ReconcileCursor =
  | { phase: "devices"; page: string }
  | { phase: "lots"; counts: Record<string, number>; tally: Record<string, number>; page?: string };

/** Records tallied a page at a time. */
const TALLY_PAGE = 500;

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
    private readonly context: AdminContext,
    private readonly clock: ClockPort,
    private readonly sliceLimit: number = RECONCILE_LIMITS.max,
  ) {
    this.#reconcile = new ReconcileAdmin(context);
  }

  /** Reconciles slices of devices from the cursor until the deadline or the last device, then recounts the lots. */
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
    const at = cursor === undefined ? undefined : (JSON.parse(cursor) as ReconcileCursor);
    const spent = () => this.clock.now().getTime() >= budget.deadline;
    const more = (next: ReconcileCursor): JobStep => ({
      cursor: JSON.stringify(next),
      progress: { done: sum.examined },
      done: false,
      result: sum,
    });
    if (at === undefined || at.phase === "devices") {
      let page = at?.page;
      for (;;) {
        const slice = await this.#reconcile.slice(job.startedBy, {
          limit: this.sliceLimit,
          dryRun,
          ...(page !== undefined ? { cursor: page } : {}),
        });
        sum.examined += slice.examined;
        for (const device of slice.devices) {
          sum.outcomes[device.outcome] += 1;
          if (sum.devices.length < RECONCILE_LISTED) sum.devices.push(device);
          else sum.truncated = true;
        }
        page = slice.cursor;
        if (slice.done || page === undefined) break;
        if (spent()) return more({ phase: "devices", page });
      }
      const lots: ReconcileCursor = { phase: "lots", counts: await this.#counts(), tally: {} };
      if (spent()) return more(lots);
      return this.step({ ...job, result: sum }, JSON.stringify(lots), budget);
    }
    const { retried } = this.context;
    let page = at.page;
    for (;;) {
      const read = await retried.allowlist.list(
        {},
        page === undefined ? { limit: TALLY_PAGE } : { limit: TALLY_PAGE, cursor: page },
      );
      for (const record of read.items) {
        if (record.lotCounted !== undefined)
          at.tally[record.lotCounted] = (at.tally[record.lotCounted] ?? 0) + 1;
      }
      page = read.cursor;
      if (page === undefined) break;
      if (spent()) return more({ ...at, page });
    }
    sum.lots = await this.#recount(job.startedBy, dryRun, at.counts, at.tally);
    return {
      cursor: undefined,
      progress: { done: sum.examined, total: sum.examined },
      done: true,
      result: sum,
    };
  }

  /** Every lot's count, as read before the tally. */
  async #counts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for await (const lot of everything((page) => this.context.retried.lots.list(page))) {
      counts[lot.lot] = lot.provisionedCount;
    }
    return counts;
  }

  /** Sets each lot whose count differs from its tally (dry run: reports it), conditional on the count read. */
  async #recount(
    actor: string,
    dryRun: boolean,
    counts: Record<string, number>,
    tally: Record<string, number>,
  ): Promise<LotRecount[]> {
    const { retried, deps } = this.context;
    const recounts: LotRecount[] = [];
    for (const [lot, before] of Object.entries(counts)) {
      const after = tally[lot] ?? 0;
      if (after === before) continue;
      if (dryRun) {
        recounts.push({ lot, before, after, outcome: "would-recount" });
        continue;
      }
      if (!(await retried.lots.recount(lot, after, before))) {
        recounts.push({ lot, before, after, outcome: "moved" });
        continue;
      }
      recounts.push({ lot, before, after, outcome: "recounted" });
      await retried.ledger.append({
        deviceId: lotLedgerKey(lot),
        at: deps.clock.now().toISOString(),
        kind: "admin",
        actor,
        change: {
          action: "lot-recount",
          before: { provisionedCount: before },
          after: { provisionedCount: after },
        },
      });
    }
    return recounts;
  }
}
