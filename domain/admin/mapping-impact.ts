import { decide } from "../decide.ts";
import type { MappingWarning } from "../jitp/index.ts";
import { mappingSelectors, selectMapping } from "../select-policy.ts";
import type { AllowlistRecord, PolicyMapping } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { anyCertificate, eventFor, NO_CERTIFICATE } from "./hypothetical.ts";
import { caOf, everything } from "./ledger.ts";

/** A provisioned device whose policy a mapping change would change. */
export interface MappingImpact {
  deviceId: string;
  certificateId: string | undefined;
  from: { selector: string | undefined; policyName: string | undefined };
  to: { selector: string | undefined; policyName: string | undefined };
  documentChanged: boolean;
}

/** What a mapping change would do, without saving it. */
export interface MappingWhatIf {
  dryRun: true;
  mapping: PolicyMapping | undefined;
  devicesExamined: number;
  affected: MappingImpact[];
  affectedCount: number;
  /** What the mapping as proposed will not do as it reads (see thingNameWarnings); it could be saved anyway. */
  warnings: MappingWarning[];
}

const MAX_IMPACTS_LISTED = 1000;

/** Which provisioned devices would get another policy if `selector` held `proposed` (undefined: deleted). */
export async function impactOf(
  context: AdminContext,
  selector: string,
  proposed: PolicyMapping | undefined,
): Promise<Omit<MappingWhatIf, "warnings">> {
  const { retried } = context;
  const current = new Map<string, PolicyMapping>();
  for await (const mapping of everything((page) => retried.mappings.list(page))) {
    current.set(mapping.selector, mapping);
  }
  const next = new Map(current);
  if (proposed === undefined) next.delete(selector);
  else next.set(selector, proposed);
  const caMatters = [...next.keys()].some((s) => s.startsWith("ca:"));
  const affected: MappingImpact[] = [];
  let examined = 0;
  let affectedCount = 0;
  for await (const record of everything((page) => retried.allowlist.list({ bound: true }, page))) {
    examined += 1;
    const ca = (caMatters ? await caOf(retried.ledger, record) : record.caCertificateId) ?? "unknown";
    const before = policyFor(context, record, ca, current);
    const after = policyFor(context, record, ca, next);
    const documentChanged = before.document !== after.document;
    if (before.policyName === after.policyName && !documentChanged) continue;
    affectedCount += 1;
    if (affected.length < MAX_IMPACTS_LISTED) {
      affected.push({
        deviceId: record.deviceId,
        certificateId: record.certificateId,
        from: { selector: before.selector, policyName: before.policyName },
        to: { selector: after.selector, policyName: after.policyName },
        documentChanged,
      });
    }
  }
  return { dryRun: true, mapping: proposed, devicesExamined: examined, affected, affectedCount };
}

/** The policy a provisioned device gets from a set of mappings, its validity aside. */
function policyFor(
  { deps }: AdminContext,
  record: AllowlistRecord,
  caCertificateId: string,
  mappings: Map<string, PolicyMapping>,
): { selector: string | undefined; policyName: string | undefined; document: string | undefined } {
  const selectors = mappingSelectors(record.deviceId, record, caCertificateId);
  const found = selectors.flatMap((s) => {
    const m = mappings.get(s);
    return m ? [m] : [];
  });
  const now = deps.clock.now();
  const { notBefore: _b, notAfter: _a, certificateFingerprint: _f, lot: _l, ...rest } = record;
  const decision = decide({
    event: eventFor(NO_CERTIFICATE, caCertificateId, deps.settings.accountId, now),
    certificate: anyCertificate(),
    deviceId: record.deviceId,
    record: { ...rest, status: "allowed", caCertificateId },
    boundCertificate: undefined,
    lot: undefined,
    mappings: found,
    now,
    settings: deps.settings,
  });
  if (decision.outcome === "deny") {
    return {
      selector: selectMapping(selectors, found)?.selector,
      policyName: undefined,
      document: undefined,
    };
  }
  return {
    selector: decision.mapping.selector,
    policyName: decision.policy.policyName,
    document: decision.policy.document,
  };
}
