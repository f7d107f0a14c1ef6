import { StateConflictError } from "../errors.ts";
import { lotFieldsOf } from "../records.ts";
import type { Lot } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { lotLedgerKey } from "./ledger.ts";
import { valid, validateLot } from "./validation.ts";
import { type Content, type Precondition, type Written, writeVersioned } from "./versioned.ts";

/*
 * Writing a lot, apart from the rest of the lot use cases so that a module that only writes lots (a
 * restore) reaches no delete.
 */

/**
 * Creates or updates a lot's quota and window; the count of provisioned devices is kept. A `maxDevices`
 * below the devices already provisioned in the lot is refused (StateConflictError naming both numbers):
 * it could never be met, and deprovisioning is how devices leave a lot.
 */
export async function putLot(
  context: AdminContext,
  actor: string,
  name: string,
  body: unknown,
  precondition: Precondition,
): Promise<Written<Lot>> {
  const fields = valid(validateLot(body, name));
  return writeVersioned<Content<Lot>>(context, context.deps.lots, {
    actor,
    precondition,
    key: name,
    what: `lot ${name}`,
    ledgerKey: lotLedgerKey(name),
    compose: (current) => {
      const provisioned = current?.provisionedCount ?? 0;
      if (fields.maxDevices !== undefined && fields.maxDevices < provisioned) {
        throw new StateConflictError(
          `lot ${name}: maxDevices ${fields.maxDevices} is below the ${provisioned} devices already provisioned in it; deprovision devices first, or set maxDevices to ${provisioned} or more`,
        );
      }
      return { content: { ...fields, provisionedCount: provisioned }, fields };
    },
    fieldsOf: lotFieldsOf,
  });
}
