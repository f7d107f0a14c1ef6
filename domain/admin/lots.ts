import { NotFoundError, StateConflictError } from "../errors.ts";
import type { Page, PageRequest } from "../ports.ts";
import { lotFieldsOf } from "../records.ts";
import type { Lot } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { lotLedgerKey } from "./ledger.ts";
import { putLot } from "./lot-writes.ts";
import { requireLotName } from "./validation.ts";
import { checkVersion, lostRace, type Precondition, recordChange, type Written } from "./versioned.ts";

/** The lot use cases; `provisionedCount` is the service's. */
export class LotAdmin {
  constructor(private readonly context: AdminContext) {}

  /** One lot; NotFoundError when there is none. */
  async get(lot: string): Promise<Lot> {
    requireLotName(lot);
    const found = await this.context.retried.lots.get(lot);
    if (found === undefined) throw new NotFoundError(`no lot ${lot}`);
    return found;
  }

  /** A page of lots. */
  list(page: PageRequest): Promise<Page<Lot>> {
    return this.context.retried.lots.list(page);
  }

  /**
   * Creates or updates a lot's quota and window; the count of provisioned devices is kept. A `maxDevices`
   * below the devices already provisioned in the lot is refused (StateConflictError naming both numbers):
   * it could never be met, and deprovisioning is how devices leave a lot.
   */
  put(actor: string, name: string, body: unknown, precondition: Precondition): Promise<Written<Lot>> {
    return putLot(this.context, actor, name, body, precondition);
  }

  /**
   * Deletes a lot (at the version given, if one is). Refused (StateConflictError) while it counts
   * provisioned devices (deprovision them first) or an allowlist record names it (its device would be
   * quarantined `lot-quota-exceeded`: move or remove the record first).
   */
  async remove(actor: string, name: string, version: number | undefined): Promise<void> {
    requireLotName(name);
    const { deps, retried } = this.context;
    const what = `lot ${name}`;
    const current = await retried.lots.get(name);
    if (current === undefined) throw new NotFoundError(`no lot ${name}`);
    if (version !== undefined) checkVersion(current, version, what);
    if (current.provisionedCount !== 0) {
      throw new StateConflictError(
        `lot ${name} counts ${current.provisionedCount} provisioned device(s): deprovision them first`,
      );
    }
    const named = await retried.allowlist.list({ lot: name }, { limit: 1 });
    const record = named.items[0];
    if (record !== undefined) {
      throw new StateConflictError(
        `allowlist records still name lot ${name} (${record.deviceId}, maybe more): give them another lot or remove them first`,
      );
    }
    if (!(await deps.lots.remove(name, current.version ?? 0))) throw lostRace(what);
    await recordChange(retried.ledger, actor, lotLedgerKey(name), deps.clock.now().toISOString(), {
      action: "delete",
      before: lotFieldsOf(current),
      ...(current.version !== undefined ? { previousVersion: current.version } : {}),
    });
  }
}
