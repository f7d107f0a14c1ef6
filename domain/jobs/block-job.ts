import { type BlockMode, blockDevice } from "../admin/block.ts";
import type { AdminContext } from "../admin/deps.ts";
import { describeError } from "../errors.ts";
import type { ClockPort } from "../ports.ts";
import type { Job, JobBudget, JobKind, JobStep } from "./types.ts";

/*
 * A block job: many devices blocked, each through the per-device block step (../admin/block.ts: the record
 * written blocked, then every live certificate revoked, or set INACTIVE when suspending, which drops its
 * connections). The devices are a list of ids (its position is the cursor) or every record of a lot (the
 * lot's allowlist page is the cursor). A device redone after a crash finds its record blocked and its
 * certificates out of ACTIVE already: it counts as unchanged.
 */

export const BLOCK_JOB = "block";

/** The most device ids one block job names (they live in the job record, one DynamoDB item); more: a lot. */
export const BLOCK_JOB_MAX_IDS = 1_000;

/** What a block job is started with: the devices (ids, or a lot) and how certificates leave ACTIVE. */
export type BlockJobParams = { mode: BlockMode } & ({ deviceIds: string[] } | { lot: string });

/** What blocking did to one device: blocked now, blocked already, part-way (run again), or failed. */
export type BlockJobOutcome = "blocked" | "unchanged" | "incomplete" | "failed";

/** One device a block job changed or could not finish. */
export interface BlockJobDevice {
  deviceId: string;
  outcome: BlockJobOutcome;
  /** Certificates taken out of ACTIVE. */
  certificates: string[];
  detail?: string;
}

/** A block job's result so far. */
export interface BlockJobResult {
  mode: BlockMode;
  examined: number;
  outcomes: Record<BlockJobOutcome, number>;
  /** The devices blocked now, left part-way or failed, the first {@link BLOCK_LISTED}. */
  devices: BlockJobDevice[];
  truncated: boolean;
}

/** The most devices a block job's result lists. */
export const BLOCK_LISTED = 200;
/** Records of a lot read at a time. */
const LOT_PAGE = 100;

/** The block kind; see the top of this module. */
export class BlockJob implements JobKind {
  readonly kind = BLOCK_JOB;

  constructor(
    private readonly context: AdminContext,
    private readonly clock: ClockPort,
  ) {}

  /** Blocks devices from the cursor until the deadline or the last device. */
  async step(job: Job, cursor: string | undefined, budget: JobBudget): Promise<JobStep> {
    const params = job.params as unknown as BlockJobParams;
    const sum: BlockJobResult = structuredClone(
      (job.result as BlockJobResult | undefined) ?? {
        mode: params.mode,
        examined: 0,
        outcomes: { blocked: 0, unchanged: 0, incomplete: 0, failed: 0 },
        devices: [],
        truncated: false,
      },
    );
    const spent = () => this.clock.now().getTime() >= budget.deadline;
    const total = "deviceIds" in params ? params.deviceIds.length : undefined;
    const end = (next: string | undefined): JobStep => ({
      cursor: next,
      progress: {
        done: sum.examined,
        ...(total !== undefined ? { total } : next === undefined ? { total: sum.examined } : {}),
      },
      done: next === undefined,
      result: sum,
    });
    if ("deviceIds" in params) {
      let at = cursor === undefined ? 0 : Number(cursor);
      while (at < params.deviceIds.length) {
        await this.#block(job.startedBy, params.deviceIds[at] ?? "", params.mode, sum);
        at += 1;
        if (at < params.deviceIds.length && spent()) return end(String(at));
      }
      return end(undefined);
    }
    let page = cursor;
    for (;;) {
      const read = await this.context.retried.allowlist.list(
        { lot: params.lot },
        page === undefined ? { limit: LOT_PAGE } : { limit: LOT_PAGE, cursor: page },
      );
      for (const record of read.items) await this.#block(job.startedBy, record.deviceId, params.mode, sum);
      page = read.cursor;
      if (page === undefined || spent()) return end(page);
    }
  }

  /** Blocks one device and adds what happened to the sum. */
  async #block(actor: string, deviceId: string, mode: BlockMode, sum: BlockJobResult): Promise<void> {
    let device: BlockJobDevice;
    try {
      const { recordChanged, cutOff } = await blockDevice(this.context, actor, deviceId, mode);
      const outcome: BlockJobOutcome = !cutOff.complete
        ? "incomplete"
        : recordChanged || cutOff.changed.length > 0
          ? "blocked"
          : "unchanged";
      const problems = [
        ...cutOff.errors,
        ...cutOff.certificates.flatMap((c) =>
          c.error !== undefined ? [`${c.certificateId}: ${c.error}`] : [],
        ),
      ];
      device = {
        deviceId,
        outcome,
        certificates: cutOff.changed,
        ...(problems.length > 0 ? { detail: problems.join("; ") } : {}),
      };
    } catch (error) {
      device = { deviceId, outcome: "failed", certificates: [], detail: describeError(error) };
    }
    sum.examined += 1;
    sum.outcomes[device.outcome] += 1;
    if (device.outcome === "unchanged") return;
    if (sum.devices.length < BLOCK_LISTED) sum.devices.push(device);
    else sum.truncated = true;
  }
}
