import type { AllowlistRecord, Lot, PolicyMapping } from "./types.ts";

/*
 * Which fields of each stored record an admin writes, and which the service writes (the binding, the
 * lot count, and the audit fields version, createdAt, updatedAt, updatedBy). The admin use cases
 * validate against these lists; the stores replace exactly the admin fields on an update.
 */

/** The allowlist fields an admin writes; the rest are the service's. */
export type AllowlistFields = Pick<
  AllowlistRecord,
  | "deviceId"
  | "status"
  | "profile"
  | "thingType"
  | "thingGroups"
  | "attributes"
  | "caCertificateId"
  | "certificateFingerprint"
  | "notBefore"
  | "notAfter"
  | "lot"
  | "rotation"
  | "note"
>;

/** The mapping fields an admin writes. */
export type MappingFields = Pick<
  PolicyMapping,
  | "selector"
  | "policy"
  | "provisioningTemplate"
  | "thingType"
  | "thingGroups"
  | "attributes"
  | "groupPolicies"
>;

/** The lot fields an admin writes. */
export type LotFields = Pick<Lot, "lot" | "maxDevices" | "notBefore" | "notAfter">;

/** Admin-editable allowlist fields, in the order exports print them. */
export const ALLOWLIST_FIELDS = [
  "deviceId",
  "status",
  "profile",
  "thingType",
  "thingGroups",
  "attributes",
  "caCertificateId",
  "certificateFingerprint",
  "notBefore",
  "notAfter",
  "lot",
  "rotation",
  "note",
] as const satisfies readonly (keyof AllowlistFields)[];

/** The fields every versioned record carries for its audit, all written by the service. */
export const AUDIT_FIELDS = ["version", "createdAt", "updatedAt", "updatedBy"] as const;

/** Allowlist fields only the service writes: the binding, the lot place and the audit fields. */
export const ALLOWLIST_SERVICE_FIELDS = [
  "certificateId",
  "thingName",
  "policyName",
  "provisionedAt",
  "lotCounted",
  "lotReleaseStartedAt",
  ...AUDIT_FIELDS,
] as const satisfies readonly (keyof AllowlistRecord)[];

/** Admin-editable mapping fields. */
export const MAPPING_FIELDS = [
  "selector",
  "policy",
  "provisioningTemplate",
  "thingType",
  "thingGroups",
  "attributes",
  "groupPolicies",
] as const satisfies readonly (keyof MappingFields)[];

/** Admin-editable lot fields. */
export const LOT_FIELDS = [
  "lot",
  "maxDevices",
  "notBefore",
  "notAfter",
] as const satisfies readonly (keyof LotFields)[];

/** Lot fields only the service writes: the count of provisioned devices and the audit fields. */
export const LOT_SERVICE_FIELDS = [
  "provisionedCount",
  ...AUDIT_FIELDS,
] as const satisfies readonly (keyof Lot)[];

/** The admin-editable fields of a stored allowlist record, in export order. */
export function allowlistFieldsOf(record: AllowlistFields): AllowlistFields {
  return pick(record, ALLOWLIST_FIELDS);
}

/** The admin-editable fields of a stored mapping. */
export function mappingFieldsOf(mapping: MappingFields): MappingFields {
  return pick(mapping, MAPPING_FIELDS);
}

/** The admin-editable fields of a stored lot (not its count). */
export function lotFieldsOf(lot: LotFields): LotFields {
  return pick(lot, LOT_FIELDS);
}

/** The fields of `value` named in `keys` (those present), in the order of `keys`. */
function pick<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) if (value[key] !== undefined) picked[key] = value[key];
  return picked as Pick<T, K>;
}
