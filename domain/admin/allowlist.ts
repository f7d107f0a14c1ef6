import { DeviceBoundError, NotFoundError, StateConflictError, ValidationError } from "../errors.ts";
import { giveBackLotPlace } from "../lot-place.ts";
import type { Page, PageRequest } from "../ports.ts";
import { type AllowlistFields, allowlistFieldsOf } from "../records.ts";
import type { AllowlistRecord, AllowlistStatus } from "../types.ts";
import { type BlockMode, type CutOff, cutOff } from "./block.ts";
import type { AdminContext } from "./deps.ts";
import { type ImportOptions, type ImportReport, importAllowlist } from "./import.ts";
import { everything } from "./ledger.ts";
import { compact, requireDeviceId, statusOmitted, valid, validateAllowlistRecord } from "./validation.ts";
import {
  type Content,
  checkVersion,
  lostRace,
  type Precondition,
  recordChange,
  type Written,
  writeVersioned,
} from "./versioned.ts";

/** A note about a record that is saved as it is, but will not work as it reads. */
export interface RecordWarning {
  code: "lot-not-found";
  path: string;
  message: string;
}

/** Which allowlist records to list. */
export interface AllowlistQuery {
  status?: AllowlistStatus;
  lot?: string;
  /** Device ids starting with this. */
  prefix?: string;
  profile?: string;
}

const EXPORT_PAGE = 500;

/** The allowlist use cases: records, bulk import and export. */
export class AllowlistAdmin {
  constructor(private readonly context: AdminContext) {}

  /** One record; NotFoundError when there is none. */
  async get(deviceId: string): Promise<AllowlistRecord> {
    requireDeviceId(deviceId);
    const record = await this.context.retried.allowlist.get(deviceId);
    if (record === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    return record;
  }

  /**
   * A page of records, filtered by status, lot, device id prefix and profile. Prefix and profile filter
   * what each page reads, so a page may hold fewer records than its limit while a cursor follows.
   */
  list(query: AllowlistQuery, page: PageRequest): Promise<Page<AllowlistRecord>> {
    const { status, lot, prefix, profile } = query;
    return this.context.retried.allowlist.list(compact({ status, lot, prefix, profile }), page);
  }

  /**
   * Creates or updates a record (the admin fields; the binding stays the service's). A record written
   * `blocked` then has its device's live certificates taken out of ACTIVE (./block.ts): revoked, or set
   * INACTIVE with `suspend`; `cutOff` says what was done. A record naming a lot that does not exist is
   * saved (the lot may be created next) with a `lot-not-found` warning: until the lot exists, the device
   * is quarantined `lot-quota-exceeded` (row 9).
   */
  async put(
    actor: string,
    deviceId: string,
    body: unknown,
    precondition: Precondition,
    options: { suspend?: boolean } = {},
  ): Promise<Written<AllowlistRecord> & { cutOff?: CutOff; warnings: RecordWarning[] }> {
    const fields = valid(validateAllowlistRecord(body, deviceId));
    if (options.suspend === true && fields.status !== "blocked") {
      throw new ValidationError("suspend applies to a record written blocked: give status blocked", [
        { path: "status", message: "must be blocked to suspend the device's certificates" },
      ]);
    }
    const written = await this.write(actor, deviceId, fields, statusOmitted(body), precondition);
    const warnings = await this.#lotWarnings(written.value);
    if (written.value.status !== "blocked") return { ...written, warnings };
    const mode: BlockMode = options.suspend === true ? "suspend" : "revoke";
    return { ...written, warnings, cutOff: await cutOff(this.context, actor, written.value, mode) };
  }

  /** A warning when the record names a lot that does not exist. */
  async #lotWarnings(record: AllowlistRecord): Promise<RecordWarning[]> {
    const { lot } = record;
    if (lot === undefined || (await this.context.retried.lots.get(lot)) !== undefined) return [];
    return [
      {
        code: "lot-not-found",
        path: "lot",
        message: `lot ${lot} does not exist: the device is quarantined lot-quota-exceeded until it does`,
      },
    ];
  }

  /** The versioned write of a record's admin fields. */
  private write(
    actor: string,
    deviceId: string,
    fields: AllowlistFields,
    keepStatus: boolean,
    precondition: Precondition,
  ): Promise<Written<AllowlistRecord>> {
    return writeVersioned<Content<AllowlistRecord>>(this.context, this.context.deps.allowlist, {
      actor,
      precondition,
      key: deviceId,
      what: `allowlist record ${deviceId}`,
      ledgerKey: deviceId,
      compose: (current) => {
        if (current === undefined) return { content: fields, fields };
        const kept: AllowlistFields = keepStatus ? { ...fields, status: current.status } : fields;
        return { content: { ...bindingOf(current), ...kept }, fields: kept };
      },
      fieldsOf: allowlistFieldsOf,
    });
  }

  /** Deletes a record; refused while it is bound to an ACTIVE (or activating) certificate. */
  async remove(actor: string, deviceId: string, version: number | undefined): Promise<void> {
    requireDeviceId(deviceId);
    const { deps, retried } = this.context;
    const what = `allowlist record ${deviceId}`;
    const current = await retried.allowlist.get(deviceId);
    if (current === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    if (version !== undefined) checkVersion(current, version, what);
    const { certificateId } = current;
    if (certificateId !== undefined) {
      const bound = await retried.iot.describeCertificate(certificateId);
      if (bound?.status === "ACTIVE" || bound?.status === "PENDING_ACTIVATION") {
        throw new DeviceBoundError(deviceId, certificateId, bound.status);
      }
    }
    // The record takes the device's lot place with it: give it back first (see ../lot-place.ts).
    const given = await giveBackLotPlace(retried, deviceId, certificateId, deps.clock.now());
    if (given.outcome === "busy") {
      throw new StateConflictError(
        `device ${deviceId}: its lot place is being given back by another request; try again shortly`,
      );
    }
    if (!(await deps.allowlist.remove(deviceId, { version: current.version, certificateId }))) {
      throw lostRace(what);
    }
    await recordChange(retried.ledger, actor, deviceId, deps.clock.now().toISOString(), {
      action: "delete",
      before: allowlistFieldsOf(current),
    });
  }

  /** Every record's admin fields as JSON lines, in the form import reads back. */
  async *export(): AsyncGenerator<string> {
    const { allowlist } = this.context.retried;
    for await (const record of everything((page) => allowlist.list({}, page), EXPORT_PAGE)) {
      yield JSON.stringify(allowlistFieldsOf(record));
    }
  }

  /** Imports records from lines of JSON or CSV (see ./import.ts). */
  import(actor: string, lines: AsyncIterable<string>, options: ImportOptions = {}): Promise<ImportReport> {
    return importAllowlist(this.context, actor, lines, options);
  }
}

/** The service-written fields of a record: the binding and the lot place. */
function bindingOf(record: Content<AllowlistRecord>): Partial<AllowlistRecord> {
  const { certificateId, thingName, policyName, provisionedAt, lotCounted, lotReleaseStartedAt } = record;
  return compact({ certificateId, thingName, policyName, provisionedAt, lotCounted, lotReleaseStartedAt });
}
