import { createHash } from "node:crypto";
import { devicePlaceholders, policyTemplates, renderPolicy } from "../policies/index.ts";
import { type EvaluatedTemplate, evaluateProvisioningTemplate, type TemplatePolicy } from "./jitp/index.ts";
import { POLICY_NAME_MAX, THING_NAME_RULE } from "./naming.ts";
import { type Reference, type ReferenceFacts, unusableReferences, unusableText } from "./references.ts";
import { mappingSelectors, selectMapping } from "./select-policy.ts";
import type {
  AllowlistRecord,
  CertificateFacts,
  CertificateStatus,
  DenialReason,
  Lot,
  PolicyMapping,
  RegisteredEvent,
  Rotation,
} from "./types.ts";

/** Deployment facts that shape a decision. */
export interface DecisionSettings {
  region: string;
  accountId: string;
  /** Prefix of every policy the service creates (IAM scopes policy writes to it). */
  policyPrefix: string;
  /**
   * What a reversible denial does to the certificate: `inactive` (default) quarantines it so an admin
   * can approve it later; `revoke` revokes it, for fleets that want no second chance.
   */
  quarantine?: "inactive" | "revoke";
}

/** Everything the decision reads; gathered by the use case, so `decide` stays pure. */
export interface DecisionInput {
  event: RegisteredEvent;
  /** Undefined when the certificate could not be read. */
  certificate: CertificateFacts | undefined;
  deviceId: string | undefined;
  record: AllowlistRecord | undefined;
  /** The certificate the device is bound to now, when that is not the event's certificate. */
  boundCertificate: { certificateId: string; status: CertificateStatus } | undefined;
  lot: Lot | undefined;
  /** Mappings found for the device's selectors (any order). */
  mappings: PolicyMapping[];
  now: Date;
  settings: DecisionSettings;
  /**
   * What the registry says of the resources an allowed provisioning would name (see {@link referencesOf}):
   * read by the use case for the references of a first decision, then passed to a second one. Row 11b
   * applies to the references found in it; undefined: none were read.
   */
  references?: ReferenceFacts;
}

/** The policy a provisioned certificate gets. */
export interface PolicyChoice {
  policyName: string;
  /** The rendered document to ensure; undefined when the mapping names an existing policy. */
  document: string | undefined;
  perDevice: boolean;
}

/** A policy granted through a thing group the device's thing joins. */
export interface GroupPolicyChoice {
  group: string;
  /** The shared policy to keep attached to the group; undefined: the group's own policies, as attached. */
  policy: PolicyChoice | undefined;
}

export interface Allow {
  outcome: "allow";
  deviceId: string;
  record: AllowlistRecord;
  mapping: PolicyMapping;
  thing: {
    thingName: string;
    thingTypeName?: string;
    attributes: Record<string, string>;
    thingGroups: string[];
  };
  /** The policy attached to the certificate; undefined when the rights come through thing groups only. */
  policy: PolicyChoice | undefined;
  /** Rights through thing groups (the thing joins each group; see {@link GroupPolicyChoice}). */
  groupPolicies: GroupPolicyChoice[];
  /** The mapping's provisioning template as evaluated for this device, when the mapping has one. */
  template?: EvaluatedTemplate;
  rotation: Rotation;
  /** The certificate this one replaces (rotation `replace`), to be revoked after activation. */
  replaces: string | undefined;
  /** The certificate bound now, which the binding claim expects to still be there. */
  expectedBinding: string | undefined;
  /** The lot to count this device in (first provisioning of a device in a lot). */
  reserveLot: string | undefined;
}

export interface Deny {
  outcome: "deny";
  reason: DenialReason;
  certificateStatus: "REVOKED" | "INACTIVE";
  deviceId: string | undefined;
  detail: string;
}

export type Decision = Allow | Deny;

const revoke = (reason: DenialReason, deviceId: string | undefined, detail: string): Deny => ({
  outcome: "deny",
  reason,
  certificateStatus: "REVOKED",
  deviceId,
  detail,
});
const quarantine = (reason: DenialReason, deviceId: string | undefined, detail: string): Deny => ({
  outcome: "deny",
  reason,
  certificateStatus: "INACTIVE",
  deviceId,
  detail,
});

/** Now is outside the window, or a bound is there but is no date (fail closed: NaN compares false). */
const outsideWindow = (now: Date, notBefore?: string, notAfter?: string): boolean => {
  const from = notBefore === undefined ? Number.NEGATIVE_INFINITY : Date.parse(notBefore);
  const to = notAfter === undefined ? Number.POSITIVE_INFINITY : Date.parse(notAfter);
  return Number.isNaN(from) || Number.isNaN(to) || now.getTime() < from || now.getTime() > to;
};

/**
 * The decision table (README, "Decision table"): the first row that matches wins. With
 * `quarantine: "revoke"` the reversible denials revoke instead of quarantining.
 */
export function decide(input: DecisionInput): Decision {
  const decision = decideByTable(input);
  if (
    decision.outcome === "deny" &&
    decision.certificateStatus === "INACTIVE" &&
    input.settings.quarantine === "revoke"
  ) {
    return { ...decision, certificateStatus: "REVOKED" };
  }
  return decision;
}

/** The rows of the table, in order. */
function decideByTable(input: DecisionInput): Decision {
  const { event, certificate, deviceId, record, boundCertificate, lot, now } = input;

  // 1. no valid device id
  if (certificate === undefined || deviceId === undefined) {
    return revoke(
      "invalid-device-id",
      undefined,
      certificate === undefined
        ? "the certificate could not be read"
        : `the certificate names no device id matching ${THING_NAME_RULE}`,
    );
  }
  // 2. certificate validity
  if (now < certificate.notBefore) {
    return revoke("certificate-not-yet-valid", deviceId, `valid from ${certificate.notBefore.toISOString()}`);
  }
  if (now > certificate.notAfter) {
    return revoke("certificate-expired", deviceId, `expired ${certificate.notAfter.toISOString()}`);
  }
  // 3. allowlisted?
  if (record === undefined)
    return quarantine("not-allowlisted", deviceId, "no allowlist record for this device");
  // 4. blocked
  if (record.status === "blocked") return revoke("blocked", deviceId, "the allowlist record is blocked");
  if (record.status !== "allowed") {
    return quarantine("not-allowlisted", deviceId, `the allowlist record has an unknown status`);
  }
  // 5. CA pinned
  if (record.caCertificateId !== undefined && record.caCertificateId !== event.caCertificateId) {
    return revoke("wrong-ca", deviceId, "the record names another CA");
  }
  // 6. record (and lot) validity window
  if (outsideWindow(now, record.notBefore, record.notAfter)) {
    return quarantine(
      "entry-not-valid-now",
      deviceId,
      "now is outside the record's notBefore/notAfter window",
    );
  }
  if (lot !== undefined && outsideWindow(now, lot.notBefore, lot.notAfter)) {
    return quarantine(
      "entry-not-valid-now",
      deviceId,
      `now is outside lot ${lot.lot}'s notBefore/notAfter window`,
    );
  }
  // 7. fingerprint pinned
  if (
    record.certificateFingerprint !== undefined &&
    record.certificateFingerprint.toLowerCase().replace(/:/g, "") !== certificate.fingerprint
  ) {
    return revoke(
      "fingerprint-mismatch",
      deviceId,
      "the certificate's fingerprint differs from the pinned one",
    );
  }
  // 8. bound to another certificate that still holds the device: any state but REVOKED, since each of the
  // others (ACTIVE, being provisioned, INACTIVE = suspended) can be made ACTIVE again; only deprovisioning
  // (or a revocation) releases a binding.
  const rotation: Rotation = record.rotation ?? "reject";
  const liveBinding = boundCertificate !== undefined && boundCertificate.status !== "REVOKED";
  if (liveBinding && rotation === "reject") {
    return revoke(
      "already-provisioned",
      deviceId,
      `the device is bound to another certificate (${boundCertificate.status})`,
    );
  }
  // 9. lot quota (a device is counted once, on its first provisioning; one that holds a place already,
  // `lotCounted`, was counted by an earlier or a concurrent run and relies on that place)
  const countsInLot =
    record.lot !== undefined && record.provisionedAt === undefined && record.lotCounted === undefined;
  if (countsInLot) {
    if (lot === undefined)
      return quarantine("lot-quota-exceeded", deviceId, `lot ${record.lot} does not exist`);
    if (lot.maxDevices !== undefined && lot.provisionedCount >= lot.maxDevices) {
      return quarantine(
        "lot-quota-exceeded",
        deviceId,
        `lot ${lot.lot} has ${lot.maxDevices} devices already`,
      );
    }
  }
  // 10. a mapping that resolves to a policy
  const mapping = selectMapping(mappingSelectors(deviceId, record, event.caCertificateId), input.mappings);
  if (mapping === undefined) return quarantine("no-policy", deviceId, "no policy mapping matches the device");
  const attributes = { ...(mapping.attributes ?? {}), ...(record.attributes ?? {}) };
  const thingTypeName = record.thingType ?? mapping.thingType;
  let thing: Allow["thing"] = {
    thingName: deviceId,
    ...(thingTypeName !== undefined ? { thingTypeName } : {}),
    attributes,
    thingGroups: [
      ...new Set([
        ...(mapping.thingGroups ?? []),
        ...(record.thingGroups ?? []),
        ...(mapping.groupPolicies ?? []).map((g) => g.group),
      ]),
    ],
  };
  // 11. a provisioning template (JITP format) evaluated for this device
  let template: EvaluatedTemplate | undefined;
  if (mapping.provisioningTemplate !== undefined) {
    const evaluated = evaluateProvisioningTemplate(mapping.provisioningTemplate, {
      deviceId,
      certificateId: event.certificateId,
      certificate,
      recordAttributes: record.attributes ?? {},
      region: input.settings.region,
      accountId: input.settings.accountId,
    });
    if (!evaluated.ok) {
      return quarantine(
        "template-parameter-invalid",
        deviceId,
        `mapping ${mapping.selector}: ${evaluated.error}`,
      );
    }
    template = evaluated.template;
    // A template whose certificate Status is INACTIVE asks that the device not get in: it is quarantined
    // (as row 11 does) rather than provisioned half-way, so an admin can approve it once the template
    // or the record changes.
    if (template.certificateStatus !== "ACTIVE") {
      return quarantine(
        "template-parameter-invalid",
        deviceId,
        `mapping ${mapping.selector}: the template sets the certificate's Status to ${template.certificateStatus}`,
      );
    }
    thing = templateThing(template, thing);
  }
  const groupPolicies = chooseGroupPolicies(mapping, input.settings);
  if ("error" in groupPolicies) return quarantine("no-policy", deviceId, groupPolicies.error);
  // The certificate's policy is optional when thing groups carry the rights; an empty set is row 10.
  const chosen =
    template?.policy !== undefined
      ? templatePolicy(template.policy, mapping, deviceId, attributes, input.settings)
      : mapping.policy === undefined && groupPolicies.length > 0
        ? undefined
        : choosePolicy(mapping, deviceId, attributes, input.settings);
  if (chosen !== undefined && "error" in chosen) {
    return quarantine(
      template?.policy !== undefined ? "template-parameter-invalid" : "no-policy",
      deviceId,
      chosen.error,
    );
  }
  const policy = chosen;
  // 11a. the thing is always the device's own: a template naming another thing would attach this
  // certificate to that thing, and so to another device's rights.
  if (thing.thingName !== deviceId) {
    return quarantine(
      "thing-name-mismatch",
      deviceId,
      `mapping ${mapping.selector}: the template names the thing ${JSON.stringify(thing.thingName)}, not the device id ${deviceId}`,
    );
  }

  // 11b. the thing type, thing groups and existing policy it names are there to use
  const unusable = unusableReferences(referencesOf({ thing, policy, groupPolicies }), input.references);
  if (unusable.length > 0) {
    return quarantine(
      "missing-reference",
      deviceId,
      `mapping ${mapping.selector}: ${unusableText(unusable)}`,
    );
  }

  // 12. provision
  return {
    outcome: "allow",
    deviceId,
    record,
    mapping,
    thing,
    policy,
    groupPolicies,
    ...(template !== undefined ? { template } : {}),
    rotation,
    replaces: liveBinding && rotation === "replace" ? boundCertificate?.certificateId : undefined,
    expectedBinding: record.certificateId,
    reserveLot: countsInLot ? record.lot : undefined,
  };
}

/**
 * The IoT resources an allowed provisioning names and does not create: its thing type, its thing groups,
 * the existing policies it attaches (a policy the service renders is created, so it is not one), and the
 * groups whose own policies are the rights (they must hold at least one).
 */
export function referencesOf(
  allow: Pick<Allow, "thing" | "policy"> & { groupPolicies?: GroupPolicyChoice[] },
): Reference[] {
  const { thing, policy } = allow;
  const groupPolicies = allow.groupPolicies ?? [];
  const existing = (choice: PolicyChoice | undefined) =>
    choice !== undefined && choice.document === undefined
      ? [{ kind: "policy" as const, name: choice.policyName }]
      : [];
  return [
    ...(thing.thingTypeName !== undefined ? [{ kind: "thingType" as const, name: thing.thingTypeName }] : []),
    ...thing.thingGroups.map((name) => ({ kind: "thingGroup" as const, name })),
    ...existing(policy),
    ...groupPolicies.flatMap((g) => existing(g.policy)),
    ...groupPolicies
      .filter((g) => g.policy === undefined)
      .map((g) => ({ kind: "groupPolicies" as const, name: g.group })),
  ];
}

/** Why a group policy cannot use device placeholders. */
export const GROUP_POLICY_PLACEHOLDER_RULE =
  "a thing group's policy is shared by every member, so it cannot use device placeholders ({{deviceId}}, {{attributes.*}}); use AWS policy variables such as ${iot:Connection.Thing.ThingName}";

/**
 * The policies a mapping grants through thing groups. A group policy is shared by every member, so a
 * template or document is rendered without device placeholders (one that needs them is an error); a
 * document's policy is named after the mapping and the group.
 */
export function chooseGroupPolicies(
  mapping: Pick<PolicyMapping, "selector" | "groupPolicies">,
  settings: DecisionSettings,
): GroupPolicyChoice[] | { error: string } {
  const out: GroupPolicyChoice[] = [];
  for (const [index, entry] of (mapping.groupPolicies ?? []).entries()) {
    const source = entry.policy;
    const at = `mapping ${mapping.selector}: groupPolicies[${index}]`;
    if (source === undefined) {
      out.push({ group: entry.group, policy: undefined });
      continue;
    }
    if ("policyName" in source) {
      out.push({
        group: entry.group,
        policy: { policyName: source.policyName, document: undefined, perDevice: false },
      });
      continue;
    }
    let base: string;
    let document: string | Record<string, unknown>;
    if ("template" in source) {
      const template = policyTemplates[source.template];
      if (template === undefined) return { error: `${at} names unknown template ${source.template}` };
      base = template.name;
      document = template.document;
    } else {
      base = `${mapping.selector}-group-${entry.group}`;
      document = source.document;
    }
    const placeholders = devicePlaceholders(document);
    if (placeholders.length > 0)
      return { error: `${at}: ${GROUP_POLICY_PLACEHOLDER_RULE} (found ${placeholders.join(", ")})` };
    const rendered = renderPolicy(document, {
      deviceId: "-",
      attributes: {},
      region: settings.region,
      accountId: settings.accountId,
    });
    if (!rendered.ok) return { error: `${at}: ${rendered.error}` };
    out.push({
      group: entry.group,
      policy: {
        policyName: policyNameFor(settings.policyPrefix, base),
        document: rendered.document,
        perDevice: false,
      },
    });
  }
  return out;
}

/**
 * The name of a policy the service creates: `<prefix><base>` for a shared policy, `<prefix><base>@<deviceId>`
 * for a per-device one, within AWS's rule `[\w+=,.@-]{1,128}`. Distinct (base, device id) pairs always get
 * distinct names, and no per-device name is a shared one:
 * - a device id keeps `[A-Za-z0-9_-]`, its `:` becomes `.` (never in a thing name), anything else `=` and
 *   four hex digits; a base keeps `[A-Za-z0-9_.-]`, its `:` becomes `+`, anything else `=` and four hex
 *   digits. Neither then holds `@` or `,`, so the one `@` after the prefix separates the two, and each
 *   decodes back;
 * - a name over 128 characters is cut to 63 and followed by `,` and the SHA-256 (hex) of the whole name.
 *   Only a cut name has a `,` at position 64: other names hold a `,` only in the prefix, which the
 *   configuration keeps to 40 characters.
 * A shared policy whose base is made of `[A-Za-z0-9_.-]` keeps the name it always had.
 */
export function policyNameFor(prefix: string, base: string, deviceId?: string): string {
  const encodedBase = escapeName(base, BASE_KEPT, "+");
  const name =
    deviceId === undefined
      ? `${prefix}${encodedBase}`
      : `${prefix}${encodedBase}${DEVICE_SEPARATOR}${escapeName(deviceId, DEVICE_KEPT, ".")}`;
  if (name.length <= POLICY_NAME_MAX) return name;
  const digest = createHash("sha256").update(name).digest("hex");
  return `${name.slice(0, POLICY_NAME_MAX - digest.length - 1)}${SHORTENED_MARKER}${digest}`;
}

/** Separates the base from the device id in a per-device policy name; in neither once escaped. */
const DEVICE_SEPARATOR = "@";
/** Comes before the hash of a shortened name; in no escaped base or device id. */
const SHORTENED_MARKER = ",";
const BASE_KEPT = /^[A-Za-z0-9_.-]$/;
const DEVICE_KEPT = /^[A-Za-z0-9_-]$/;

/** `text` with the characters `kept` as they are, `:` as `colon`, and any other one as `=` and 4 hex digits. */
function escapeName(text: string, kept: RegExp, colon: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const char = text.charAt(i);
    if (kept.test(char)) out += char;
    else if (char === ":") out += colon;
    else out += `=${text.charCodeAt(i).toString(16).padStart(4, "0")}`;
  }
  return out;
}

function choosePolicy(
  mapping: PolicyMapping,
  deviceId: string,
  attributes: Record<string, string>,
  settings: DecisionSettings,
): PolicyChoice | { error: string } {
  const source = mapping.policy;
  if (source === undefined) {
    return {
      error: mapping.provisioningTemplate
        ? `mapping ${mapping.selector}: its provisioning template declares no AWS::IoT::Policy that applies, and the mapping names no policy`
        : `mapping ${mapping.selector} names no policy`,
    };
  }
  if ("policyName" in source) return { policyName: source.policyName, document: undefined, perDevice: false };
  let base: string;
  let document: string | Record<string, unknown>;
  if ("template" in source) {
    const template = policyTemplates[source.template];
    if (template === undefined)
      return { error: `mapping ${mapping.selector} names unknown template ${source.template}` };
    base = template.name;
    document = template.document;
  } else {
    base = mapping.selector;
    document = source.document;
  }
  const rendered = renderPolicy(document, {
    deviceId,
    attributes,
    region: settings.region,
    accountId: settings.accountId,
  });
  if (!rendered.ok) return { error: `mapping ${mapping.selector}: ${rendered.error}` };
  return {
    policyName: policyNameFor(settings.policyPrefix, base, rendered.perDevice ? deviceId : undefined),
    document: rendered.document,
    perDevice: rendered.perDevice,
  };
}

/**
 * The thing a template describes, over the usual one: what the template declares wins (a thing name other
 * than the device id is then denied by row 11a), what it leaves out keeps the mapping's and record's
 * values, and thing groups add up, since membership is additive.
 */
function templateThing(template: EvaluatedTemplate, usual: Allow["thing"]): Allow["thing"] {
  const declared = template.thing;
  if (declared === undefined) return usual;
  const thingTypeName = declared.thingTypeName ?? usual.thingTypeName;
  return {
    thingName: declared.thingName ?? usual.thingName,
    ...(thingTypeName !== undefined ? { thingTypeName } : {}),
    attributes: declared.attributes ?? usual.attributes,
    thingGroups: [...new Set([...(declared.thingGroups ?? []), ...usual.thingGroups])],
  };
}

/**
 * The policy a template's AWS::IoT::Policy resource names: PolicyName is an existing policy; a
 * PolicyDocument becomes a policy the service creates, named after the mapping and the resource, and
 * per device when the document depends on the device (its certificate, record or id).
 */
function templatePolicy(
  policy: TemplatePolicy,
  mapping: PolicyMapping,
  deviceId: string,
  attributes: Record<string, string>,
  settings: DecisionSettings,
): PolicyChoice | { error: string } {
  if ("policyName" in policy) return { policyName: policy.policyName, document: undefined, perDevice: false };
  const rendered = renderPolicy(policy.document, {
    deviceId,
    attributes,
    region: settings.region,
    accountId: settings.accountId,
  });
  const at = `mapping ${mapping.selector}: templateBody.Resources.${policy.logicalName}.Properties.PolicyDocument`;
  if (!rendered.ok) return { error: `${at}: ${rendered.error}` };
  const perDevice = policy.perDevice || rendered.perDevice;
  return {
    policyName: policyNameFor(
      settings.policyPrefix,
      `${mapping.selector}-${policy.logicalName}`,
      perDevice ? deviceId : undefined,
    ),
    document: rendered.document,
    perDevice,
  };
}
