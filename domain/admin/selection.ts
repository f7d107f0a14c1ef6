import { decide, type GroupPolicyChoice } from "../decide.ts";
import type { ProvisionSettings } from "../provision.ts";
import { mappingSelectors, selectMapping } from "../select-policy.ts";
import type { AllowlistRecord, CertificateFacts, DenialReason, PolicyMapping } from "../types.ts";
import { anyCertificate, eventFor, NO_CERTIFICATE } from "./hypothetical.ts";

/*
 * What a provisioned device's records select now: the same `decide` provisioning runs, about the
 * device's policy and thing rather than its certificate or its admission (the record is read as
 * allowed, and the certificate's and the record's validity windows, the pinned fingerprint and the
 * lot are left out). The mapping-change what-if and reconcile share it.
 */

/** The thing a device's records select. */
export interface SelectedThing {
  thingName: string;
  thingTypeName?: string;
  attributes: Record<string, string>;
  thingGroups: string[];
}

/** What a device's records select: a policy and a thing, or the reason none resolves. */
export type Selection =
  | {
      ok: true;
      selector: string;
      mappingVersion: number;
      /** The certificate's policy; undefined when the rights come through thing groups alone. */
      policyName: string | undefined;
      /** The rendered document; undefined when the mapping names an existing policy (or there is none). */
      document: string | undefined;
      perDevice: boolean;
      /** Rights through thing groups: the policies the service keeps attached to groups, or the groups' own. */
      groupPolicies: GroupPolicyChoice[];
      thing: SelectedThing;
    }
  | { ok: false; selector: string | undefined; reason: DenialReason; detail: string };

/** The certificate a selection is made for: its id and what it says (for templates that read it). */
export interface SelectionCertificate {
  certificateId: string;
  facts: CertificateFacts | undefined;
}

/** Every mapping among `mappings` a device would look up, in no particular order. */
export function candidateMappings(
  record: AllowlistRecord,
  caCertificateId: string,
  mappings: ReadonlyMap<string, PolicyMapping>,
): PolicyMapping[] {
  return mappingSelectors(record.deviceId, record, caCertificateId).flatMap((s) => {
    const mapping = mappings.get(s);
    return mapping ? [mapping] : [];
  });
}

/** True when the mapping a device selects evaluates a provisioning template (which may read its certificate). */
export function readsCertificate(
  record: AllowlistRecord,
  caCertificateId: string,
  mappings: ReadonlyMap<string, PolicyMapping>,
): boolean {
  const selectors = mappingSelectors(record.deviceId, record, caCertificateId);
  return (
    selectMapping(selectors, candidateMappings(record, caCertificateId, mappings))?.provisioningTemplate !==
    undefined
  );
}

/** What the device's records select with `mappings`, for its certificate (any certificate when not given). */
export function selectionFor(
  settings: ProvisionSettings,
  now: Date,
  record: AllowlistRecord,
  caCertificateId: string,
  mappings: ReadonlyMap<string, PolicyMapping>,
  certificate?: SelectionCertificate,
): Selection {
  const found = candidateMappings(record, caCertificateId, mappings);
  const { notBefore: _b, notAfter: _a, certificateFingerprint: _f, lot: _l, ...rest } = record;
  const facts =
    certificate?.facts !== undefined
      ? { ...certificate.facts, notBefore: new Date(0), notAfter: new Date(8.64e15) }
      : anyCertificate();
  const decision = decide({
    event: eventFor(certificate?.certificateId ?? NO_CERTIFICATE, caCertificateId, settings.accountId, now),
    certificate: facts,
    deviceId: record.deviceId,
    record: { ...rest, status: "allowed", caCertificateId },
    boundCertificate: undefined,
    lot: undefined,
    mappings: found,
    now,
    settings,
  });
  if (decision.outcome === "deny") {
    const selectors = mappingSelectors(record.deviceId, record, caCertificateId);
    return {
      ok: false,
      selector: selectMapping(selectors, found)?.selector,
      reason: decision.reason,
      detail: decision.detail,
    };
  }
  const { thingName, thingTypeName, attributes, thingGroups } = decision.thing;
  return {
    ok: true,
    selector: decision.mapping.selector,
    mappingVersion: decision.mapping.version,
    policyName: decision.policy?.policyName,
    document: decision.policy?.document,
    perDevice: decision.policy?.perDevice ?? false,
    groupPolicies: decision.groupPolicies,
    thing: {
      thingName,
      ...(thingTypeName !== undefined ? { thingTypeName } : {}),
      attributes: { ...attributes },
      thingGroups: [...thingGroups].sort(),
    },
  };
}
