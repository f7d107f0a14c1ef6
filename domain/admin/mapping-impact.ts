import { samePolicyDocument } from "../../policies/index.ts";
import { readCertificate } from "../certificate.ts";
import type { MappingWarning } from "../jitp/index.ts";
import type { AllowlistRecord, CertificateFacts, PolicyMapping } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { caOf, everything, provisionedEntryOf } from "./ledger.ts";
import { readsCertificate, type SelectedThing, type Selection, selectionFor } from "./selection.ts";

/** What about a device a mapping change would change. */
export type ImpactChange =
  | "policy"
  | "document"
  | "thingType"
  | "thingGroups"
  | "attributes"
  /** The policies granted through thing groups (which policy on which group, or its document). */
  | "groupPolicies";

/** A provisioned device a mapping change would change: its policy (name or document) or its thing. */
export interface MappingImpact {
  deviceId: string;
  certificateId: string | undefined;
  /** The policy the service recorded as attached (the binding, else the provisioned ledger entry). */
  from: { selector: string | undefined; policyName: string | undefined };
  /** The policy the device's records would select (undefined: none would resolve). */
  to: { selector: string | undefined; policyName: string | undefined };
  documentChanged: boolean;
  changes: ImpactChange[];
  /** The thing's type, groups and attributes before and after, when one of them would change. */
  thing?: { before: SelectedThing; after: SelectedThing };
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

/**
 * Which provisioned devices would change if `selector` held `proposed` (undefined: deleted): from what the
 * service recorded for each device (the policy its binding and provisioned ledger entry name) to what its
 * records would select; the thing from what the records select now to what they would select.
 */
export async function impactOf(
  context: AdminContext,
  selector: string,
  proposed: PolicyMapping | undefined,
): Promise<Omit<MappingWhatIf, "warnings">> {
  const { retried, deps } = context;
  const current = new Map<string, PolicyMapping>();
  for await (const mapping of everything((page) => retried.mappings.list(page))) {
    current.set(mapping.selector, mapping);
  }
  const next = new Map(current);
  if (proposed === undefined) next.delete(selector);
  else next.set(selector, proposed);
  const caMatters = [...next.keys()].some((s) => s.startsWith("ca:"));
  const documents = new Map<string, Promise<string | undefined>>();
  const liveDocument = (policyName: string) => {
    let document = documents.get(policyName);
    if (document === undefined) {
      document = retried.iot.getPolicy(policyName).then((p) => p?.document);
      documents.set(policyName, document);
    }
    return document;
  };
  const affected: MappingImpact[] = [];
  let examined = 0;
  let affectedCount = 0;
  for await (const record of everything((page) => retried.allowlist.list({ bound: true }, page))) {
    examined += 1;
    const ca = (caMatters ? await caOf(retried.ledger, record) : record.caCertificateId) ?? "unknown";
    const certificate =
      record.certificateId !== undefined &&
      (readsCertificate(record, ca, current) || readsCertificate(record, ca, next))
        ? { certificateId: record.certificateId, facts: await factsOf(context, record.certificateId) }
        : undefined;
    const now = deps.clock.now();
    const before = selectionFor(deps.settings, now, record, ca, current, certificate);
    const after = selectionFor(deps.settings, now, record, ca, next, certificate);
    const recorded = await recordedPolicyOf(context, record, before);
    const changes: ImpactChange[] = [];
    const afterName = after.ok ? after.policyName : undefined;
    if (afterName !== recorded) changes.push("policy");
    // The document in place: the one today's mappings render for the recorded policy, else (the same policy
    // selected again) the policy's own; a policy the service does not write has none of its making.
    const inPlace =
      before.ok && before.policyName === recorded
        ? before.document
        : after.ok && afterName !== undefined && afterName === recorded && after.document !== undefined
          ? await liveDocument(afterName)
          : undefined;
    const afterDocument = after.ok ? after.document : undefined;
    const documentChanged =
      inPlace === undefined || afterDocument === undefined
        ? inPlace !== afterDocument || (afterName !== recorded && afterDocument !== undefined)
        : !samePolicyDocument(inPlace, afterDocument);
    if (documentChanged && afterName === recorded) changes.push("document");
    const thing = before.ok && after.ok ? { before: before.thing, after: after.thing } : undefined;
    if (thing !== undefined) changes.push(...thingChanges(thing.before, thing.after));
    if (before.ok && after.ok && groupRights(before) !== groupRights(after)) changes.push("groupPolicies");
    if (changes.length === 0) continue;
    affectedCount += 1;
    if (affected.length < MAX_IMPACTS_LISTED) {
      const thingChanged = changes.some((c) => c !== "policy" && c !== "document" && c !== "groupPolicies");
      affected.push({
        deviceId: record.deviceId,
        certificateId: record.certificateId,
        from: { selector: before.selector, policyName: recorded },
        to: { selector: after.selector, policyName: afterName },
        documentChanged,
        changes,
        ...(thingChanged && thing !== undefined ? { thing } : {}),
      });
    }
  }
  return { dryRun: true, mapping: proposed, devicesExamined: examined, affected, affectedCount };
}

/** The rights a selection grants through thing groups, as one comparable text. */
function groupRights(selection: Extract<Selection, { ok: true }>): string {
  return JSON.stringify(
    selection.groupPolicies
      .map((g) => [g.group, g.policy?.policyName ?? "", g.policy?.document ?? ""])
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
  );
}

/** Which of the thing's type, groups and attributes differ between two selections. */
export function thingChanges(before: SelectedThing, after: SelectedThing): ImpactChange[] {
  const changes: ImpactChange[] = [];
  if (before.thingTypeName !== after.thingTypeName) changes.push("thingType");
  if (!sameList(before.thingGroups, after.thingGroups)) changes.push("thingGroups");
  if (!sameAttributes(before.attributes, after.attributes)) changes.push("attributes");
  return changes;
}

/** True when two lists hold the same names, in any order. */
export const sameList = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");

/** True when two attribute maps hold the same pairs. */
export function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}

/** The policy the service recorded as attached: the binding's, else the provisioned entry's, else today's choice. */
async function recordedPolicyOf(
  { retried }: AdminContext,
  record: AllowlistRecord,
  selected: Selection,
): Promise<string | undefined> {
  if (record.policyName !== undefined) return record.policyName;
  if (record.certificateId !== undefined) {
    const entry = await provisionedEntryOf(retried.ledger, record.deviceId, record.certificateId);
    if (entry?.policyName !== undefined) return entry.policyName;
  }
  return selected.ok ? selected.policyName : undefined;
}

/** What the device's bound certificate says, read from the registry (undefined when it cannot be read). */
async function factsOf(context: AdminContext, certificateId: string): Promise<CertificateFacts | undefined> {
  const description = await context.retried.iot.describeCertificate(certificateId);
  if (description === undefined) return undefined;
  try {
    return readCertificate(description.certificatePem);
  } catch {
    return undefined;
  }
}
