import type { AllowlistRecord, CertificateStatus, LedgerEntry, Lot, PolicyMapping } from "./types.ts";

/** A certificate as the IoT registry describes it. */
export interface CertificateDescription {
  certificateId: string;
  certificateArn: string;
  status: CertificateStatus;
  certificatePem: string;
  caCertificateId?: string;
}

export interface ThingDescription {
  thingName: string;
  thingTypeName?: string;
  attributes: Record<string, string>;
}

export interface PolicyDescription {
  policyName: string;
  document: string;
  defaultVersionId: string;
}

export interface PolicyVersion {
  versionId: string;
  isDefault: boolean;
  createdAt: Date;
}

export interface ThingGroupDescription {
  thingGroupName: string;
  thingGroupArn: string;
  /** Its parent groups, nearest first (a member has their policies too). */
  parentGroupNames: string[];
}

/**
 * The IoT registry operations the service uses, one call each. Adapters map service errors to
 * NotFoundError, AlreadyExistsError, TransientError (throttling, 5xx) or JitrError (anything else).
 */
export interface IotPort {
  describeCertificate(certificateId: string): Promise<CertificateDescription | undefined>;
  updateCertificateStatus(certificateId: string, status: "ACTIVE" | "INACTIVE" | "REVOKED"): Promise<void>;
  describeThingType(thingTypeName: string): Promise<{ deprecated: boolean } | undefined>;
  describeThing(thingName: string): Promise<ThingDescription | undefined>;
  createThing(thing: ThingDescription): Promise<void>;
  updateThing(thing: ThingDescription): Promise<void>;
  deleteThing(thingName: string): Promise<void>;
  addThingToThingGroup(thingName: string, thingGroupName: string): Promise<void>;
  /** The thing group, or undefined when it does not exist. */
  describeThingGroup(thingGroupName: string): Promise<ThingGroupDescription | undefined>;
  getPolicy(policyName: string): Promise<PolicyDescription | undefined>;
  createPolicy(policyName: string, document: string): Promise<void>;
  listPolicyVersions(policyName: string): Promise<PolicyVersion[]>;
  createPolicyVersion(policyName: string, document: string): Promise<void>;
  deletePolicyVersion(policyName: string, versionId: string): Promise<void>;
  deletePolicy(policyName: string): Promise<void>;
  /** Attaches a policy to a target: a certificate ARN, or a thing group ARN. */
  attachPolicy(policyName: string, target: string): Promise<void>;
  detachPolicy(policyName: string, target: string): Promise<void>;
  /** Policy names attached directly to a target (a certificate or thing group ARN). */
  listAttachedPolicies(target: string): Promise<string[]>;
  /** Attaches the certificate to the thing exclusively; fails when it is attached to another thing. */
  attachThingPrincipal(thingName: string, certificateArn: string): Promise<void>;
  detachThingPrincipal(thingName: string, certificateArn: string): Promise<void>;
}

/** A request to bind a device to a certificate before it is activated. */
export interface BindingClaim {
  deviceId: string;
  certificateId: string;
  /** The certificate bound now (undefined: none); the claim succeeds only if that is still so. */
  expectedCertificateId: string | undefined;
}

/** A device's place in its lot, taken for the certificate bound to it (see domain/lot-place.ts). */
export interface LotMark {
  deviceId: string;
  certificateId: string;
  lot: string;
}

/** A device's lot place as read from its record, to be given back if the record is still so. */
export interface LotPlace {
  deviceId: string;
  /** The lot the record holds a place in (`lotCounted`). */
  lot: string;
  /** The certificate the record is bound to (undefined: none). */
  boundTo: string | undefined;
  /**
   * A release claim left on the record by an earlier version, which gave places back in three writes
   * (`lotReleaseStartedAt` as read; undefined: none). The place is given back over it.
   */
  releaseClaim: string | undefined;
}

/**
 * What taking a lot place ended in: `counted` (the record is marked and the lot counts the device),
 * `lost` (the record was not as the run expected: another run marked it, or the binding moved; decide
 * again), `full` (the lot refused the device: full, or gone). Nothing is written unless `counted`.
 */
export type TakeOutcome = "counted" | "lost" | "full";

/** Allowlist records and the device-to-certificate binding. */
export interface AllowlistPort {
  get(deviceId: string): Promise<AllowlistRecord | undefined>;
  /** Conditionally bind; false when another certificate won the race. */
  claimBinding(claim: BindingClaim): Promise<boolean>;
  /**
   * Record what was provisioned for a claimed binding; ConflictError when the binding is no longer
   * this certificate's, or when `lot` is given and the record no longer holds that lot place (or it is
   * being given back).
   */
  completeBinding(binding: {
    deviceId: string;
    certificateId: string;
    thingName: string;
    /** The certificate's policy; absent when the rights come through thing groups alone. */
    policyName?: string;
    provisionedAt: string;
    lot?: string;
  }): Promise<void>;
  /** Undo a claim (only if it is still this certificate's), restoring the previous binding. */
  releaseBinding(claim: BindingClaim): Promise<void>;
}

export interface MappingPort {
  /** The mappings that exist among the given selectors. */
  getMany(selectors: string[]): Promise<PolicyMapping[]>;
}

export interface LotPort {
  get(lot: string): Promise<Lot | undefined>;
  /**
   * Takes the device's place in the lot (invariant I6) in one write of two items: the record's mark
   * `lotCounted` (if the record is bound to the certificate and holds no place) and one more in the lot's
   * count (if the lot exists and is under `maxDevices`); both or neither. OutcomeUnknownError when the write
   * may or may not have been applied (a retry reads the record: marked means counted).
   */
  takePlace(mark: LotMark): Promise<TakeOutcome>;
  /**
   * Gives the place back in one write of two items: the record's mark (and a release claim left by an
   * earlier version) goes if the record is still as read, and the lot counts one less (the mark alone
   * when the lot is gone); both or neither. False when the record is not as read.
   */
  givePlaceBack(place: LotPlace): Promise<boolean>;
}

export interface LedgerPort {
  append(entry: LedgerEntry): Promise<void>;
  /** Whether the certificate's terminal outcome (`provisioned` or `denied`) is recorded. */
  hasTerminalOutcome(certificateId: string): Promise<boolean>;
}

export interface ClockPort {
  now(): Date;
  sleep(ms: number): Promise<void>;
}

/** The real clock. */
export const systemClock: ClockPort = {
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** One page of a listing; `cursor` is set when there are more. */
export interface Page<T> {
  items: T[];
  cursor?: string;
}

/** Which page to read: at most `limit` items, after the `cursor` of the previous page. */
export interface PageRequest {
  limit?: number;
  cursor?: string;
}

/** The IoT registry listings the admin needs to take a certificate apart. */
export interface IotInventoryPort {
  /** Policy names attached to a target (a certificate ARN). */
  listAttachedPolicies(target: string): Promise<string[]>;
  /** Thing names attached to a principal (a certificate ARN). */
  listPrincipalThings(principal: string): Promise<string[]>;
  /** Principals (certificate ARNs) attached to a thing. */
  listThingPrincipals(thingName: string): Promise<string[]>;
  /** The thing groups a thing is a direct member of. */
  listThingGroupsForThing(thingName: string): Promise<string[]>;
  /** Takes a thing out of a thing group. */
  removeThingFromThingGroup(thingName: string, thingGroupName: string): Promise<void>;
}

/** Filters of an allowlist listing. */
export interface AllowlistFilter {
  status?: AllowlistRecord["status"];
  lot?: string;
  /** Only device ids starting with this. */
  prefix?: string;
  /** Only records of this profile. */
  profile?: string;
  /** Only records bound to a certificate. */
  bound?: boolean;
}

/** The allowlist as admins edit it: conditional writes on `version`; the binding fields stay the service's. */
export interface AllowlistStore extends AllowlistPort {
  list(filter: AllowlistFilter, page: PageRequest): Promise<Page<AllowlistRecord>>;
  /** Several records by id (missing ones left out). */
  getMany(deviceIds: string[]): Promise<AllowlistRecord[]>;
  /** Writes a new record; false when one exists already. */
  create(record: AllowlistRecord): Promise<boolean>;
  /** Replaces the admin fields if the stored version is `expectedVersion`; false otherwise. */
  update(record: AllowlistRecord, expectedVersion: number): Promise<boolean>;
  /** Deletes the record if its version and binding are still as expected and it holds no lot place; false otherwise. */
  remove(
    deviceId: string,
    expected: { version: number; certificateId: string | undefined },
  ): Promise<boolean>;
  /**
   * Removes the binding fields if the record is still bound to `certificateId` and holds no lot place
   * (give it back first); false otherwise.
   */
  unbind(deviceId: string, certificateId: string): Promise<boolean>;
}

/** Policy mappings as admins edit them. */
export interface MappingStore extends MappingPort {
  get(selector: string): Promise<PolicyMapping | undefined>;
  list(page: PageRequest): Promise<Page<PolicyMapping>>;
  create(mapping: PolicyMapping): Promise<boolean>;
  update(mapping: PolicyMapping, expectedVersion: number): Promise<boolean>;
  remove(selector: string, expectedVersion: number): Promise<boolean>;
}

/** Lots as admins edit them; `provisionedCount` stays the service's. */
export interface LotStore extends LotPort {
  list(page: PageRequest): Promise<Page<Lot>>;
  create(lot: Lot): Promise<boolean>;
  /** Replaces the admin fields (not the count) if the stored version is `expectedVersion` (0: none). */
  update(lot: Lot, expectedVersion: number): Promise<boolean>;
  /** Deletes the lot if it is at `expectedVersion` (0: none) and counts no device; false otherwise. */
  remove(lot: string, expectedVersion: number): Promise<boolean>;
  /**
   * Sets the lot's `provisionedCount` to `count` (a recount from the records' `lotCounted` marks) if it is
   * `expected` now (a missing count reads as 0); false when the lot is gone or its count moved.
   */
  recount(lot: string, count: number, expected: number): Promise<boolean>;
}

/** The ledger as admins read it. */
export interface LedgerStore extends LedgerPort {
  /** Adds many entries at once (bulk import). */
  appendMany(entries: LedgerEntry[]): Promise<void>;
  /** A device's entries, newest first. */
  history(deviceId: string, page: PageRequest): Promise<Page<LedgerEntry>>;
  /** Entries of every device (and every mapping and lot change) matching the filter, newest first. */
  fleet(filter: LedgerFilter, page: PageRequest): Promise<Page<LedgerEntry>>;
}

/** Filters of the fleet-wide ledger: every one given must match. */
export interface LedgerFilter {
  kind?: LedgerEntry["kind"];
  reason?: string;
  lot?: string;
  /** Only a denial that gave the certificate this status. */
  certificateStatus?: CertificateStatus;
  /** ISO 8601 (as `toISOString` writes it): only entries at or after it. */
  since?: string;
}
