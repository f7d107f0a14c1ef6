import {
  devicePlaceholders,
  POLICY_DOCUMENT_MAX_CHARS,
  policyTemplates,
  renderPolicy,
} from "../../policies/index.ts";
import { type DecisionSettings, GROUP_POLICY_PLACEHOLDER_RULE } from "../decide.ts";
import { invalidFields } from "../errors.ts";
import { validateProvisioningTemplate } from "../jitp/index.ts";
import {
  ATTRIBUTE_NAME_PATTERN,
  ATTRIBUTE_NAME_RULE,
  ATTRIBUTE_VALUE_PATTERN,
  ATTRIBUTE_VALUE_RULE,
  isThingName,
  POLICY_NAME_PATTERN,
  POLICY_NAME_RULE,
  THING_NAME_PATTERN,
  THING_NAME_RULE,
} from "../naming.ts";
import {
  ALLOWLIST_FIELDS,
  ALLOWLIST_SERVICE_FIELDS,
  type AllowlistFields,
  AUDIT_FIELDS,
  LOT_FIELDS,
  LOT_SERVICE_FIELDS,
  type LotFields,
  MAPPING_FIELDS,
  type MappingFields,
} from "../records.ts";
import type { AllowlistStatus, GroupPolicySource, PolicyMapping, PolicySource, Rotation } from "../types.ts";

/** One problem with one field of an admin request. */
export interface Issue {
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; issues: Issue[] };

/** The validated value, or its issues thrown as a ValidationError. */
export function valid<T>(validated: Validated<T>): T {
  if (!validated.ok) throw invalidFields(validated.issues);
  return validated.value;
}

/** A device id must be a thing name; ValidationError otherwise. */
export function requireDeviceId(deviceId: string): void {
  if (!isThingName(deviceId)) {
    throw invalidFields([{ path: "deviceId", message: `must be a thing name (${THING_NAME_RULE})` }]);
  }
}

/** A mapping selector must be one of the five forms; ValidationError otherwise. */
export function requireSelector(selector: string): void {
  const problem = selectorProblem(selector);
  if (problem !== undefined) throw invalidFields([{ path: "selector", message: problem }]);
}

/** A lot must have a lot name; ValidationError otherwise. */
export function requireLotName(lot: string): void {
  if (!isLotName(lot)) throw invalidFields([{ path: "lot", message: LOT_NAME_MESSAGE }]);
}

/** Profiles and lots. */
const NAME = /^[a-zA-Z0-9:_.-]{1,128}$/;
/** The rule of lot (and profile) names, as messages quote it. */
export const LOT_NAME_RULE = "[a-zA-Z0-9:_.-]{1,128}";
const LOT_NAME_MESSAGE = `must be a lot name (${LOT_NAME_RULE})`;
const HEX64 = /^[0-9a-fA-F]{64}$/;
const FINGERPRINT_COLONS = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){31}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const MAX_ATTRIBUTES = 50;
const MAX_THING_GROUPS = 10;
const MAX_NOTE = 1024;
const ROTATIONS = ["reject", "replace", "allow-multiple"] as const satisfies readonly Rotation[];
const STATUSES = ["allowed", "blocked"] as const satisfies readonly AllowlistStatus[];

/** True for a valid lot name. */
export const isLotName = (value: string): boolean => NAME.test(value);

/** Why a mapping selector is invalid, or undefined when it is one of the five forms. */
export function selectorProblem(selector: string): string | undefined {
  if (selector === "default") return undefined;
  const colon = selector.indexOf(":");
  const kind = colon < 0 ? selector : selector.slice(0, colon);
  const rest = colon < 0 ? "" : selector.slice(colon + 1);
  const forms = "device:<id>, profile:<profile>, thingType:<type>, ca:<64 hex>, default";
  switch (kind) {
    case "device":
      return THING_NAME_PATTERN.test(rest)
        ? undefined
        : `device:<id> needs a thing name (${THING_NAME_RULE})`;
    case "profile":
      return NAME.test(rest) ? undefined : `profile:<profile> needs a name (${LOT_NAME_RULE})`;
    case "thingType":
      return THING_NAME_PATTERN.test(rest) ? undefined : "thingType:<type> needs a thing type name";
    case "ca":
      return /^[0-9a-f]{64}$/.test(rest) ? undefined : "ca:<id> needs 64 lowercase hex digits";
    default:
      return `must be one of ${forms}`;
  }
}

/** Collects issues while reading an untrusted object field by field. */
class Reader {
  readonly issues: Issue[] = [];
  constructor(readonly body: Record<string, unknown>) {}

  fail(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  /** Refuses unknown fields and service-written ones. */
  fields(allowed: readonly string[], serviceWritten: readonly string[]): void {
    for (const key of Object.keys(this.body)) {
      if (serviceWritten.includes(key)) this.fail(key, "is written by the service and cannot be set");
      else if (!allowed.includes(key)) this.fail(key, `is not a known field (known: ${allowed.join(", ")})`);
    }
  }

  string(key: string, pattern: RegExp, what: string): string | undefined {
    const value = this.body[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") this.fail(key, `must be a string: ${what}`);
    else if (!pattern.test(value)) this.fail(key, `must be ${what}`);
    else return value;
    return undefined;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T | undefined {
    const value = this.body[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string" && (values as readonly string[]).includes(value)) return value as T;
    this.fail(key, `must be one of ${values.join(", ")}`);
    return undefined;
  }

  date(key: string): string | undefined {
    const value = this.string(
      key,
      ISO_DATE,
      "an ISO 8601 date or date-time (2026-01-31 or 2026-01-31T12:00:00Z)",
    );
    if (value !== undefined && (Number.isNaN(Date.parse(value)) || !isCalendarDay(value))) {
      this.fail(key, "is not a real date");
      return undefined;
    }
    return value;
  }

  window(): { notBefore?: string; notAfter?: string } {
    const notBefore = this.date("notBefore");
    const notAfter = this.date("notAfter");
    if (notBefore !== undefined && notAfter !== undefined && Date.parse(notBefore) >= Date.parse(notAfter)) {
      this.fail("notBefore", "must be earlier than notAfter");
    }
    return {
      ...(notBefore !== undefined ? { notBefore } : {}),
      ...(notAfter !== undefined ? { notAfter } : {}),
    };
  }

  thingGroups(): string[] | undefined {
    const value = this.body.thingGroups;
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) {
      this.fail("thingGroups", "must be an array of thing group names");
      return undefined;
    }
    if (value.length > MAX_THING_GROUPS)
      this.fail("thingGroups", `may name at most ${MAX_THING_GROUPS} groups`);
    value.forEach((group, i) => {
      if (typeof group !== "string" || !THING_NAME_PATTERN.test(group)) {
        this.fail(`thingGroups[${i}]`, `must be a thing group name (${THING_NAME_RULE})`);
      }
    });
    return [...new Set(value.filter((g): g is string => typeof g === "string"))];
  }

  attributes(): Record<string, string> | undefined {
    const value = this.body.attributes;
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) {
      this.fail("attributes", "must be an object of string names to string values");
      return undefined;
    }
    const entries = Object.entries(value);
    if (entries.length > MAX_ATTRIBUTES)
      this.fail("attributes", `may hold at most ${MAX_ATTRIBUTES} attributes`);
    const attributes: Record<string, string> = {};
    for (const [name, v] of entries) {
      if (!ATTRIBUTE_NAME_PATTERN.test(name)) {
        this.fail(`attributes.${name}`, `name must match ${ATTRIBUTE_NAME_RULE}`);
      } else if (typeof v !== "string") {
        this.fail(`attributes.${name}`, "value must be a string");
      } else if (!ATTRIBUTE_VALUE_PATTERN.test(v)) {
        this.fail(`attributes.${name}`, `value must match ${ATTRIBUTE_VALUE_RULE}`);
      } else {
        attributes[name] = v;
      }
    }
    return attributes;
  }
}

/**
 * True when an ISO date's day exists in its month: `Date.parse` rolls 2026-02-30 over to March 2 instead
 * of refusing it, and a record's window must not move silently.
 */
function isCalendarDay(value: string): boolean {
  const [year, month, day] = value.slice(0, 10).split("-").map(Number);
  if (year === undefined || month === undefined || day === undefined) return false;
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

const asObject = (body: unknown): Record<string, unknown> | undefined =>
  typeof body === "object" && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : undefined;

const result = <T>(reader: Reader, value: T): Validated<T> =>
  reader.issues.length > 0 ? { ok: false, issues: reader.issues } : { ok: true, value };

const notAnObject = <T>(): Validated<T> => ({
  ok: false,
  issues: [{ path: "", message: "the body must be a JSON object" }],
});

/**
 * Validates the admin fields of an allowlist record. `deviceId` comes from the path when given (a body
 * `deviceId` must then agree); `status` defaults to `allowed` (see {@link statusOmitted}).
 */
export function validateAllowlistRecord(body: unknown, pathDeviceId?: string): Validated<AllowlistFields> {
  const object = asObject(body);
  if (object === undefined) return notAnObject();
  const r = new Reader(object);
  r.fields(ALLOWLIST_FIELDS, ALLOWLIST_SERVICE_FIELDS);
  const bodyId = r.string("deviceId", THING_NAME_PATTERN, `a thing name (${THING_NAME_RULE})`);
  let deviceId = bodyId;
  if (pathDeviceId !== undefined) {
    if (!THING_NAME_PATTERN.test(pathDeviceId))
      r.fail("deviceId", `must be a thing name (${THING_NAME_RULE})`);
    else if (object.deviceId !== undefined && object.deviceId !== pathDeviceId) {
      r.fail("deviceId", `differs from the device id in the path (${pathDeviceId})`);
    }
    deviceId = pathDeviceId;
  } else if (object.deviceId === undefined) {
    r.fail("deviceId", "is required");
  }
  const status = r.oneOf("status", STATUSES) ?? "allowed";
  const caCertificateId = r.string("caCertificateId", HEX64, "a CA certificate id (64 hex digits)");
  const fingerprint = object.certificateFingerprint;
  let certificateFingerprint: string | undefined;
  if (fingerprint !== undefined && fingerprint !== null) {
    if (
      typeof fingerprint === "string" &&
      (HEX64.test(fingerprint) || FINGERPRINT_COLONS.test(fingerprint))
    ) {
      certificateFingerprint = fingerprint.replace(/:/g, "").toLowerCase();
    } else {
      r.fail(
        "certificateFingerprint",
        "must be a SHA-256 fingerprint: 64 hex digits, colons between bytes allowed",
      );
    }
  }
  const note = object.note;
  if (note !== undefined && note !== null && (typeof note !== "string" || note.length > MAX_NOTE)) {
    r.fail("note", `must be a string of at most ${MAX_NOTE} characters`);
  }
  const fields: AllowlistFields = {
    deviceId: deviceId ?? "",
    status,
    profile: r.string("profile", NAME, `a profile name (${LOT_NAME_RULE})`),
    thingType: r.string("thingType", THING_NAME_PATTERN, `a thing type name (${THING_NAME_RULE})`),
    thingGroups: r.thingGroups(),
    attributes: r.attributes(),
    caCertificateId: caCertificateId?.toLowerCase(),
    certificateFingerprint,
    ...r.window(),
    lot: r.string("lot", NAME, `a lot name (${LOT_NAME_RULE})`),
    rotation: r.oneOf("rotation", ROTATIONS),
    note: typeof note === "string" ? note : undefined,
  };
  return result(r, compact(fields));
}

/** A sample device the policy of a mapping is rendered for when the mapping is validated. */
const SAMPLE_DEVICE = "sample-device-0001";

/** Validates an admin's policy mapping; an inline document must render within AWS's limit for a sample device. */
export function validateMapping(
  body: unknown,
  pathSelector: string,
  settings: Pick<DecisionSettings, "region" | "accountId">,
): Validated<MappingFields> {
  const object = asObject(body);
  if (object === undefined) return notAnObject();
  const r = new Reader(object);
  r.fields(MAPPING_FIELDS, AUDIT_FIELDS);
  const problem = selectorProblem(pathSelector);
  if (problem !== undefined) r.fail("selector", problem);
  if (object.selector !== undefined && object.selector !== pathSelector) {
    r.fail("selector", `differs from the selector in the path (${pathSelector})`);
  }
  const provisioningTemplate = readProvisioningTemplate(r, object.provisioningTemplate);
  const attributes = r.attributes();
  const groupPolicies = readGroupPolicies(r, object.groupPolicies, settings);
  // A template may bring its own policy (AWS::IoT::Policy), and thing groups may carry the rights; without
  // either the mapping's `policy` is required.
  const policy =
    object.policy === undefined &&
    (object.provisioningTemplate !== undefined || grantsThroughGroups(object.groupPolicies))
      ? undefined
      : readPolicy(r, object.policy, attributes ?? {}, settings);
  const thingGroups = r.thingGroups();
  const joined = new Set([...(thingGroups ?? []), ...(groupPolicies ?? []).map((g) => g.group)]);
  if (joined.size > MAX_THING_GROUPS) {
    r.fail(
      "groupPolicies",
      `with thingGroups names ${joined.size} thing groups; a thing is in at most ${MAX_THING_GROUPS}`,
    );
  }
  const fields: MappingFields = {
    selector: pathSelector,
    policy,
    provisioningTemplate,
    thingType: r.string("thingType", THING_NAME_PATTERN, `a thing type name (${THING_NAME_RULE})`),
    thingGroups,
    attributes,
    groupPolicies,
  };
  return result(r, compact(fields));
}

/** A JITP-format template, as `{templateBody, parameters}` or a bare template body; refused with each problem's path. */
function readProvisioningTemplate(
  r: Reader,
  value: unknown,
): PolicyMapping["provisioningTemplate"] | undefined {
  if (value === undefined) return undefined;
  const validation = validateProvisioningTemplate(value);
  if (!validation.ok) {
    for (const problem of validation.errors) {
      r.fail(problem.path ? `provisioningTemplate.${problem.path}` : "provisioningTemplate", problem.message);
    }
    return undefined;
  }
  const object = asObject(value);
  if (object !== undefined && Object.hasOwn(object, "templateBody")) {
    return value as NonNullable<PolicyMapping["provisioningTemplate"]>;
  }
  return { templateBody: value as string | Record<string, unknown> };
}

/** True when `groupPolicies` is given and not empty (its entries are checked on their own). */
const grantsThroughGroups = (value: unknown): boolean =>
  value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0);

/**
 * Validates `groupPolicies`: a list of `{group, policy?}`, where `policy` takes the forms of the mapping's
 * `policy` but, shared by every member of the group, may not use device placeholders.
 */
function readGroupPolicies(
  r: Reader,
  value: unknown,
  settings: Pick<DecisionSettings, "region" | "accountId">,
): GroupPolicySource[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) {
    r.fail("groupPolicies", "must be an array of {group, policy?}");
    return undefined;
  }
  if (value.length > MAX_THING_GROUPS)
    r.fail("groupPolicies", `may have at most ${MAX_THING_GROUPS} entries`);
  const out: GroupPolicySource[] = [];
  value.forEach((item, i) => {
    const path = `groupPolicies[${i}]`;
    const entry = asObject(item);
    if (entry === undefined) {
      r.fail(path, "must be an object {group, policy?}");
      return;
    }
    for (const key of Object.keys(entry)) {
      if (key !== "group" && key !== "policy")
        r.fail(`${path}.${key}`, "is not a known field (known: group, policy)");
    }
    const group = entry.group;
    if (typeof group !== "string" || !THING_NAME_PATTERN.test(group)) {
      r.fail(`${path}.group`, `must be a thing group name (${THING_NAME_RULE})`);
      return;
    }
    if (entry.policy === undefined) {
      out.push({ group });
      return;
    }
    const policy = readPolicy(r, entry.policy, {}, settings, `${path}.policy`, true);
    if (policy !== undefined) out.push({ group, policy });
  });
  return out;
}

function readPolicy(
  r: Reader,
  value: unknown,
  attributes: Record<string, string>,
  settings: Pick<DecisionSettings, "region" | "accountId">,
  at = "policy",
  shared = false,
): PolicySource | undefined {
  const policy = asObject(value);
  const forms = "exactly one of {template}, {document} or {policyName}";
  if (value === undefined) {
    r.fail(
      at,
      `is required: ${forms}${at === "policy" ? " (or groupPolicies, or a provisioningTemplate)" : ""}`,
    );
    return undefined;
  }
  const keys = policy === undefined ? [] : Object.keys(policy);
  if (policy === undefined || keys.length !== 1) {
    r.fail(at, `must be ${forms}`);
    return undefined;
  }
  if (typeof policy.template === "string") {
    const template = policyTemplates[policy.template];
    if (template === undefined) {
      r.fail(
        `${at}.template`,
        `is not a template in policies/ (known: ${Object.keys(policyTemplates).join(", ")})`,
      );
      return undefined;
    }
    if (shared && devicePlaceholders(template.document).length > 0) {
      r.fail(
        `${at}.template`,
        `${GROUP_POLICY_PLACEHOLDER_RULE}; template ${policy.template} uses ${devicePlaceholders(template.document).join(", ")}`,
      );
      return undefined;
    }
    return { template: policy.template };
  }
  if (typeof policy.policyName === "string") {
    if (!POLICY_NAME_PATTERN.test(policy.policyName)) {
      r.fail(`${at}.policyName`, `must be an IoT policy name (${POLICY_NAME_RULE})`);
      return undefined;
    }
    return { policyName: policy.policyName };
  }
  const document = policy.document;
  if (typeof document === "string" || asObject(document) !== undefined) {
    const source = document as string | Record<string, unknown>;
    if (shared && devicePlaceholders(source).length > 0) {
      r.fail(
        `${at}.document`,
        `${GROUP_POLICY_PLACEHOLDER_RULE}; found ${devicePlaceholders(source).join(", ")}`,
      );
      return undefined;
    }
    const rendered = renderPolicy(source, {
      deviceId: SAMPLE_DEVICE,
      region: settings.region,
      accountId: settings.accountId,
      attributes: { ...sampleAttributes(source), ...attributes },
    });
    if (!rendered.ok) {
      r.fail(
        `${at}.document`,
        `${rendered.error} (rendered for a sample device, limit ${POLICY_DOCUMENT_MAX_CHARS})`,
      );
      return undefined;
    }
    return { document: source };
  }
  r.fail(at, `must be ${forms}, each a string (a document may also be a JSON object)`);
  return undefined;
}

/** A plausible value for every `{{attributes.<name>}}` a document uses. */
function sampleAttributes(document: string | Record<string, unknown>): Record<string, string> {
  const text = typeof document === "string" ? document : JSON.stringify(document);
  const names = [...text.matchAll(/\{\{\s*attributes\.([A-Za-z0-9_.:-]+)\s*\}\}/g)].map((m) => m[1] ?? "");
  return Object.fromEntries(names.map((name) => [name, "sample-value"]));
}

/** Validates an admin's lot: `maxDevices` a non-negative whole number, an optional validity window. */
export function validateLot(body: unknown, pathLot: string): Validated<LotFields> {
  const object = asObject(body);
  if (object === undefined) return notAnObject();
  const r = new Reader(object);
  r.fields(LOT_FIELDS, LOT_SERVICE_FIELDS);
  if (!NAME.test(pathLot)) r.fail("lot", LOT_NAME_MESSAGE);
  if (object.lot !== undefined && object.lot !== pathLot) {
    r.fail("lot", `differs from the lot in the path (${pathLot})`);
  }
  const max = object.maxDevices;
  let maxDevices: number | undefined;
  if (max !== undefined && max !== null) {
    if (typeof max === "number" && Number.isSafeInteger(max) && max >= 0) maxDevices = max;
    else r.fail("maxDevices", "must be a non-negative whole number");
  }
  return result(r, compact({ lot: pathLot, maxDevices, ...r.window() }));
}

/**
 * True when an admin body leaves `status` out: a new record is then `allowed`, but an existing one keeps
 * its status, so that re-importing a list without statuses never unblocks a blocked device.
 */
export const statusOmitted = (body: unknown): boolean =>
  typeof body === "object" && body !== null && (body as Record<string, unknown>).status === undefined;

/** The object without its undefined fields. */
export function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
