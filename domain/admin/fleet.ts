import { describeError, invalidFields } from "../errors.ts";
import { isThingName } from "../naming.ts";
import type { LedgerFilter, Page, PageRequest } from "../ports.ts";
import type { LedgerEntry } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { explain } from "./explain.ts";
import { everything, lotLedgerKey, mappingLedgerKey } from "./ledger.ts";
import { isLotName, LOT_NAME_RULE, requireLotName, requireSelector } from "./validation.ts";

/** One quarantined device in the approve queue: why it was quarantined, and what the decision says now. */
export interface Approval {
  deviceId: string;
  /** The quarantined certificate, still INACTIVE. */
  certificateId: string;
  caCertificateId?: string;
  lot?: string;
  /** The reason it was quarantined. */
  reason?: string;
  deniedAt: string;
  /** Whether its records now allow it: `approve` would provision it. */
  ready: boolean;
  /** The decision now, for this certificate. */
  now: { decision: "allow" | "deny"; reason?: string; detail?: string };
}

/** The most entries of one device the approve queue reads to find its latest outcome. */
const LATEST_OUTCOME_SCAN = 50;

/** The fleet-wide views: the ledger across devices, the approve queue, and mapping and lot history. */
export class FleetAdmin {
  constructor(private readonly context: AdminContext) {}

  /** Every device's outcomes and every admin change matching the filter, newest first. */
  ledger(filter: LedgerFilter, page: PageRequest): Promise<Page<LedgerEntry>> {
    return this.context.retried.ledger.fleet(filter, page);
  }

  /**
   * The approve queue: devices whose latest outcome quarantined a certificate (denied, INACTIVE) that is
   * still INACTIVE, newest first, each with whether its records now allow it (the decision `explain` runs).
   * A page may hold fewer than `limit` devices (entries since superseded are left out); follow its cursor.
   */
  async approvals(page: PageRequest): Promise<Page<Approval>> {
    const { retried } = this.context;
    const denials = await retried.ledger.fleet({ kind: "denied", certificateStatus: "INACTIVE" }, page);
    const items: Approval[] = [];
    for (const entry of denials.items) {
      const approval = await this.#pending(entry);
      if (approval !== undefined) items.push(approval);
    }
    return denials.cursor === undefined ? { items } : { items, cursor: denials.cursor };
  }

  /** Changes to a mapping, newest first: who, when, the fields before and after, and the versions. */
  mappingHistory(selector: string, page: PageRequest): Promise<Page<LedgerEntry>> {
    requireSelector(selector);
    return this.context.retried.ledger.history(mappingLedgerKey(selector), page);
  }

  /** Changes to a lot, newest first: who, when, the fields before and after, and the versions. */
  lotHistory(lot: string, page: PageRequest): Promise<Page<LedgerEntry>> {
    requireLotName(lot);
    return this.context.retried.ledger.history(lotLedgerKey(lot), page);
  }

  /** The approval of a quarantine entry, if it is still the device's latest outcome and the certificate is still INACTIVE. */
  async #pending(denial: LedgerEntry): Promise<Approval | undefined> {
    const { retried } = this.context;
    const { deviceId, certificateId } = denial;
    if (certificateId === undefined || !isThingName(deviceId)) return undefined;
    let scanned = 0;
    for await (const entry of everything((p) => retried.ledger.history(deviceId, p), 25)) {
      if (++scanned > LATEST_OUTCOME_SCAN) return undefined;
      if (entry.kind === "admin") continue;
      if (entry.certificateId !== certificateId || entry.at !== denial.at || entry.kind !== "denied")
        return undefined;
      break;
    }
    const description = await retried.iot.describeCertificate(certificateId);
    if (description?.status !== "INACTIVE") return undefined;
    const ca = description.caCertificateId ?? denial.caCertificateId;
    const now = await explain(this.context, {
      certificatePem: description.certificatePem,
      ...(ca !== undefined ? { caCertificateId: ca } : {}),
    }).catch((error: unknown) => ({
      decision: "deny" as const,
      reason: undefined,
      detail: describeError(error),
    }));
    return {
      deviceId,
      certificateId,
      ...(ca !== undefined ? { caCertificateId: ca } : {}),
      ...(denial.lot !== undefined ? { lot: denial.lot } : {}),
      ...(denial.reason !== undefined ? { reason: denial.reason } : {}),
      deniedAt: denial.at,
      ready: now.decision === "allow",
      now: {
        decision: now.decision,
        ...(now.reason !== undefined ? { reason: now.reason } : {}),
        ...(now.detail !== undefined ? { detail: now.detail } : {}),
      },
    };
  }
}

/** The filter kinds of the fleet-wide ledger. */
export const LEDGER_KINDS = ["provisioned", "denied", "failed", "admin"] as const;

/** Reads the filters of a fleet-wide ledger query (`kind`, `reason`, `lot`, `since`); 400 naming each bad one. */
export function ledgerFilterOf(query: Record<string, string | undefined>, now: Date): LedgerFilter {
  const issues: { path: string; message: string }[] = [];
  const filter: LedgerFilter = {};
  const { kind, reason, lot, since } = query;
  if (kind !== undefined) {
    const known = LEDGER_KINDS.find((k) => k === kind);
    if (known === undefined)
      issues.push({ path: "kind", message: `must be one of ${LEDGER_KINDS.join(", ")}` });
    else filter.kind = known;
  }
  if (reason !== undefined) {
    if (!/^[a-z][a-z-]{0,63}$/.test(reason))
      issues.push({ path: "reason", message: "must be a reason (lowercase words joined by -)" });
    else filter.reason = reason;
  }
  if (lot !== undefined) {
    if (isLotName(lot)) filter.lot = lot;
    else issues.push({ path: "lot", message: `must be a lot name (${LOT_NAME_RULE})` });
  }
  if (since !== undefined) {
    const at = sinceOf(since, now);
    if (at === undefined)
      issues.push({
        path: "since",
        message: "must be an ISO 8601 time or a duration back from now (30m, 12h, 7d)",
      });
    else filter.since = at;
  }
  if (issues.length > 0) throw invalidFields(issues);
  return filter;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `since` as an ISO time: an ISO 8601 time with a date, or a duration (`90s`, `30m`, `12h`, `7d`) back from now. */
function sinceOf(value: string, now: Date): string | undefined {
  const duration = /^(\d{1,6})([smhd])$/.exec(value);
  if (duration) {
    const [, amount = "", unit = ""] = duration;
    return new Date(now.getTime() - Number(amount) * (UNIT_MS[unit] ?? 0)).toISOString();
  }
  if (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) return undefined;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? undefined : time.toISOString();
}
