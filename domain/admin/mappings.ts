import { NotFoundError } from "../errors.ts";
import { type MappingWarning, thingNameWarnings } from "../jitp/index.ts";
import type { Page, PageRequest } from "../ports.ts";
import { mappingFieldsOf } from "../records.ts";
import type { PolicyMapping } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { mappingLedgerKey } from "./ledger.ts";
import { checkMapping, type MappingSaveOptions } from "./mapping-checks.ts";
import { impactOf, type MappingWhatIf } from "./mapping-impact.ts";
import { putMapping } from "./mapping-writes.ts";
import { requireSelector, valid, validateMapping } from "./validation.ts";
import { checkVersion, lostRace, type Precondition, recordChange, type Written } from "./versioned.ts";

/** The policy-mapping use cases. */
export class MappingAdmin {
  constructor(private readonly context: AdminContext) {}

  /** One mapping; NotFoundError when there is none. */
  async get(selector: string): Promise<PolicyMapping> {
    requireSelector(selector);
    const mapping = await this.context.retried.mappings.get(selector);
    if (mapping === undefined) throw new NotFoundError(`no policy mapping for selector ${selector}`);
    return mapping;
  }

  /** A page of mappings. */
  list(page: PageRequest): Promise<Page<PolicyMapping>> {
    return this.context.retried.mappings.list(page);
  }

  /**
   * Creates or updates a mapping; answers it with the warnings about what it will do. Refused when it names a
   * thing type, thing group or existing policy that does not exist (unless `force`), or its inline policy
   * grants broadly (unless `allowBroadPolicy`); see ./mapping-checks.ts.
   */
  put(
    actor: string,
    selector: string,
    body: unknown,
    precondition: Precondition,
    options: MappingSaveOptions = {},
  ): Promise<Written<PolicyMapping> & { warnings: MappingWarning[] }> {
    return putMapping(this.context, actor, selector, body, precondition, options);
  }

  /** What saving the mapping would change for provisioned devices; nothing is saved. */
  async whatIf(selector: string, body: unknown): Promise<MappingWhatIf> {
    const fields = valid(validateMapping(body, selector, this.context.deps.settings));
    const impact = await impactOf(this.context, selector, { ...fields, version: 0 });
    const checks = await checkMapping(this.context, fields, {}, false);
    return { ...impact, warnings: [...thingNameWarnings(fields, this.context.deps.settings), ...checks] };
  }

  /** Deletes a mapping (at the version given, if one is). */
  async remove(actor: string, selector: string, version: number | undefined): Promise<void> {
    requireSelector(selector);
    const { deps, retried } = this.context;
    const what = `policy mapping ${selector}`;
    const current = await retried.mappings.get(selector);
    if (current === undefined) throw new NotFoundError(`no policy mapping for selector ${selector}`);
    if (version !== undefined) checkVersion(current, version, what);
    if (!(await deps.mappings.remove(selector, current.version))) throw lostRace(what);
    await recordChange(retried.ledger, actor, mappingLedgerKey(selector), deps.clock.now().toISOString(), {
      action: "delete",
      before: mappingFieldsOf(current),
      previousVersion: current.version,
    });
  }
}
