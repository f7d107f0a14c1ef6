import { readCertificate } from "../certificate.ts";
import type { Decision, DecisionInput } from "../decide.ts";
import { deriveDeviceId } from "../device-id.ts";
import { describeError, invalidFields } from "../errors.ts";
import { isThingName, THING_NAME_RULE } from "../naming.ts";
import type { CertificateDescription } from "../ports.ts";
import { decideWithReferences, gatherDecisionInput } from "../provision.ts";
import { groupPoliciesOf } from "../references.ts";
import { mappingSelectors, selectMapping } from "../select-policy.ts";
import type { AllowlistRecord, CertificateFacts, PolicyMapping } from "../types.ts";
import type { AdminContext } from "./deps.ts";
import { anyCertificate, eventFor, NO_CERTIFICATE } from "./hypothetical.ts";
import { caOf } from "./ledger.ts";
import { compact, type Issue } from "./validation.ts";

/** The explain answer: what would happen, and why. */
export interface Explanation {
  deviceId: string | undefined;
  decision: "allow" | "deny";
  reason?: string;
  detail?: string;
  /** What the certificate would become. */
  certificateStatus: "ACTIVE" | "INACTIVE" | "REVOKED";
  certificate: { source: "pem" | "bound" | "hypothetical"; certificateId?: string; status?: string };
  caCertificateId: string | undefined;
  selectors: string[];
  record: AllowlistRecord | undefined;
  mapping: PolicyMapping | undefined;
  policy?: { policyName: string; document: string | undefined; perDevice: boolean; existing?: boolean };
  /**
   * Every policy the device would have once provisioned, with its source: the certificate's, the ones the
   * mapping keeps on thing groups, and those found attached to the thing's groups or their parents.
   */
  effectivePolicies?: EffectivePolicy[];
  thing?: {
    thingName: string;
    thingTypeName?: string;
    thingGroups: string[];
    attributes: Record<string, string>;
  };
  assumptions: string[];
}

/** A policy in effect for a device, and where it comes from. */
export interface EffectivePolicy {
  policyName: string;
  /** `certificate`: attached to the certificate; `group`: to a thing group the thing is in, or a parent of one. */
  source: "certificate" | "group";
  /** For a group policy: the thing group the thing joins. */
  group?: string;
  /** For a group policy: the group it is attached to (the group itself or a parent). */
  attachedTo?: string;
  /** True when the mapping makes the service keep it (attached to the certificate or group at provisioning). */
  fromMapping: boolean;
  /** The document (rendered, or read from the registry); undefined when the policy does not exist. */
  document: string | undefined;
}

/** What to explain: a device by its id, or a certificate by its PEM; optionally the CA to assume. */
export interface ExplainRequest {
  deviceId?: string;
  certificatePem?: string;
  caCertificateId?: string;
}

/** A dry run of the decision for a device id or a certificate PEM; changes nothing. */
export async function explain(context: AdminContext, body: unknown): Promise<Explanation> {
  const request = readExplainRequest(body);
  const { deps, retried } = context;
  const assumptions: string[] = [];
  let pem = request.certificatePem;
  let source: Explanation["certificate"]["source"] = "pem";
  let description: CertificateDescription | undefined;
  if (pem === undefined) {
    const deviceId = request.deviceId ?? "";
    const record = await retried.allowlist.get(deviceId);
    const boundId = record?.certificateId;
    description = boundId === undefined ? undefined : await retried.iot.describeCertificate(boundId);
    if (description === undefined) {
      return explainHypothetical(context, deviceId, record, request.caCertificateId, assumptions);
    }
    pem = description.certificatePem;
    source = "bound";
    assumptions.push(`explained for the certificate the device is bound to (${description.certificateId})`);
  }
  let facts: CertificateFacts;
  try {
    facts = readCertificate(pem);
  } catch (error) {
    throw invalidFields([
      { path: "certificatePem", message: `is not a readable X.509 certificate (${describeError(error)})` },
    ]);
  }
  const certificateId = facts.fingerprint;
  description ??= await retried.iot.describeCertificate(certificateId);
  const deviceId = deriveDeviceId(facts, deps.settings.deviceIdStrategy);
  const record = deviceId === undefined ? undefined : await retried.allowlist.get(deviceId);
  let ca = request.caCertificateId ?? description?.caCertificateId;
  if (ca === undefined) {
    ca = record?.caCertificateId;
    assumptions.push(
      ca === undefined
        ? "the certificate is not registered and no caCertificateId was given: ca:<id> mappings are not considered"
        : "the certificate is not registered: assumed issued by the CA the record pins",
    );
  }
  const gathered = await gatherDecisionInput(
    eventFor(certificateId, ca ?? "unknown", deps.settings.accountId, deps.clock.now()),
    facts,
    deviceId,
    { certificateId },
    deps,
  );
  const { input, decision } = await decideWithReferences(gathered, retried.iot);
  const status = description?.status;
  return answer(
    context,
    input,
    decision,
    { source, certificateId, ...(status ? { status } : {}) },
    assumptions,
  );
}

/** Explains a device that has no certificate: as if a new one, valid now, connected. */
async function explainHypothetical(
  context: AdminContext,
  deviceId: string,
  record: AllowlistRecord | undefined,
  requestedCa: string | undefined,
  assumptions: string[],
): Promise<Explanation> {
  const { deps, retried } = context;
  const ca = requestedCa ?? (record === undefined ? undefined : await caOf(retried.ledger, record));
  assumptions.push(
    "no certificate given: explained for a new certificate for this device, valid now" +
      (record?.certificateFingerprint ? ", matching the pinned fingerprint" : ""),
  );
  if (ca === undefined) assumptions.push("no CA known for the device: ca:<id> mappings are not considered");
  else if (requestedCa === undefined) assumptions.push(`assumed issued by CA ${ca}`);
  const fingerprint = record?.certificateFingerprint ?? NO_CERTIFICATE;
  const gathered = await gatherDecisionInput(
    eventFor(fingerprint, ca ?? "unknown", deps.settings.accountId, deps.clock.now()),
    anyCertificate(fingerprint),
    deviceId,
    { certificateId: fingerprint },
    deps,
  );
  const { input, decision } = await decideWithReferences(gathered, retried.iot);
  return answer(context, input, decision, { source: "hypothetical" }, assumptions);
}

/** The explanation of a decision: the selectors tried, the mapping chosen, the policy it renders. */
async function answer(
  context: AdminContext,
  input: DecisionInput,
  decision: Decision,
  certificate: Explanation["certificate"],
  assumptions: string[],
): Promise<Explanation> {
  const selectors =
    input.deviceId === undefined
      ? []
      : mappingSelectors(input.deviceId, input.record, input.event.caCertificateId);
  const mapping = selectMapping(selectors, input.mappings);
  const base = {
    deviceId: input.deviceId,
    certificate,
    caCertificateId: input.event.caCertificateId === "unknown" ? undefined : input.event.caCertificateId,
    selectors,
    record: input.record,
    mapping,
    assumptions,
  };
  if (decision.outcome === "deny") {
    return {
      ...base,
      decision: "deny",
      reason: decision.reason,
      detail: decision.detail,
      certificateStatus: decision.certificateStatus,
    };
  }
  let policy: Explanation["policy"] = decision.policy === undefined ? undefined : { ...decision.policy };
  if (decision.policy !== undefined && decision.policy.document === undefined) {
    const existing = await context.retried.iot.getPolicy(decision.policy.policyName);
    policy = { ...decision.policy, document: existing?.document, existing: existing !== undefined };
  }
  return {
    ...base,
    decision: "allow",
    certificateStatus: "ACTIVE",
    mapping: decision.mapping,
    ...(policy !== undefined ? { policy } : {}),
    effectivePolicies: await effectivePolicies(context, decision, policy),
    thing: decision.thing,
  };
}

/**
 * The policies in effect once provisioned: the certificate's, then for each thing group of the thing the
 * policy the mapping keeps on it and the policies attached to it or its parents now (each pair once).
 */
async function effectivePolicies(
  context: AdminContext,
  decision: Extract<Decision, { outcome: "allow" }>,
  policy: Explanation["policy"],
): Promise<EffectivePolicy[]> {
  const { iot } = context.retried;
  const out: EffectivePolicy[] = [];
  if (policy !== undefined) {
    out.push({
      policyName: policy.policyName,
      source: "certificate",
      fromMapping: true,
      document: policy.document,
    });
  }
  const documents = new Map<string, Promise<string | undefined>>();
  const documentOf = (name: string) => {
    let found = documents.get(name);
    if (found === undefined) {
      found = iot.getPolicy(name).then((p) => p?.document);
      documents.set(name, found);
    }
    return found;
  };
  const add = (entry: EffectivePolicy) => {
    if (
      !out.some(
        (e) => e.policyName === entry.policyName && e.source === "group" && e.attachedTo === entry.attachedTo,
      )
    )
      out.push(entry);
  };
  for (const { group, policy: kept } of decision.groupPolicies) {
    if (kept === undefined) continue;
    add({
      policyName: kept.policyName,
      source: "group",
      group,
      attachedTo: group,
      fromMapping: true,
      document: kept.document ?? (await documentOf(kept.policyName)),
    });
  }
  for (const group of decision.thing.thingGroups) {
    for (const fact of (await groupPoliciesOf(iot, group)) ?? []) {
      add({
        policyName: fact.policyName,
        source: "group",
        group,
        attachedTo: fact.attachedTo,
        fromMapping: false,
        document: await documentOf(fact.policyName),
      });
    }
  }
  return out;
}

const EXPLAIN_FIELDS = ["deviceId", "certificatePem", "caCertificateId"];

/** Validates an explain request: exactly one of deviceId or certificatePem, and known fields only. */
function readExplainRequest(body: unknown): ExplainRequest {
  const object =
    typeof body === "object" && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined;
  if (object === undefined) throw invalidFields([{ path: "", message: "the body must be a JSON object" }]);
  const issues: Issue[] = [];
  for (const key of Object.keys(object)) {
    if (!EXPLAIN_FIELDS.includes(key)) {
      issues.push({ path: key, message: `is not a known field (known: ${EXPLAIN_FIELDS.join(", ")})` });
    }
  }
  const { deviceId, certificatePem, caCertificateId } = object;
  if ((deviceId === undefined) === (certificatePem === undefined)) {
    issues.push({ path: "deviceId", message: "give exactly one of deviceId or certificatePem" });
  }
  if (deviceId !== undefined && (typeof deviceId !== "string" || !isThingName(deviceId))) {
    issues.push({ path: "deviceId", message: `must be a thing name (${THING_NAME_RULE})` });
  }
  if (
    certificatePem !== undefined &&
    (typeof certificatePem !== "string" || !certificatePem.includes("BEGIN CERTIFICATE"))
  ) {
    issues.push({
      path: "certificatePem",
      message: "must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
    });
  }
  if (
    caCertificateId !== undefined &&
    (typeof caCertificateId !== "string" || !/^[0-9a-f]{64}$/.test(caCertificateId))
  ) {
    issues.push({
      path: "caCertificateId",
      message: "must be a CA certificate id (64 lowercase hex digits)",
    });
  }
  if (issues.length > 0) throw invalidFields(issues);
  return compact({
    deviceId: typeof deviceId === "string" ? deviceId : undefined,
    certificatePem: typeof certificatePem === "string" ? certificatePem : undefined,
    caCertificateId: typeof caCertificateId === "string" ? caCertificateId : undefined,
  });
}
