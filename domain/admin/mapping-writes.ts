import type { MappingWarning } from "../jitp/index.ts";
import { thingNameWarnings } from "../jitp/index.ts";
import { mappingFieldsOf } from "../records.ts";
import type { PolicyMapping } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { mappingLedgerKey } from "./ledger.ts";
import { checkMapping, type MappingSaveOptions } from "./mapping-checks.ts";
import { valid, validateMapping } from "./validation.ts";
import { type Content, type Precondition, type Written, writeVersioned } from "./versioned.ts";

/*
 * Writing a mapping, apart from the rest of the mapping use cases so that a module that only writes
 * mappings (a restore) reaches no delete.
 */

/**
 * Creates or updates a mapping; answers it with the warnings about what it will do. Refused when it names a
 * thing type, thing group or existing policy that does not exist (unless `force`), or its inline policy
 * grants broadly (unless `allowBroadPolicy`); see ./mapping-checks.ts.
 */
export async function putMapping(
  context: AdminContext,
  actor: string,
  selector: string,
  body: unknown,
  precondition: Precondition,
  options: MappingSaveOptions = {},
): Promise<Written<PolicyMapping> & { warnings: MappingWarning[] }> {
  const fields = valid(validateMapping(body, selector, context.deps.settings));
  const warnings = [
    ...thingNameWarnings(fields, context.deps.settings),
    ...(await checkMapping(context, fields, options, true)),
  ];
  const written = await writeVersioned<Content<PolicyMapping>>(context, context.deps.mappings, {
    actor,
    precondition,
    key: selector,
    what: `policy mapping ${selector}`,
    ledgerKey: mappingLedgerKey(selector),
    compose: () => ({ content: fields, fields }),
    fieldsOf: mappingFieldsOf,
  });
  return { ...written, warnings };
}
