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
  getPolicy(policyName: string): Promise<PolicyDescription | undefined>;
  createPolicy(policyName: string, document: string): Promise<void>;
  listPolicyVersions(policyName: string): Promise<PolicyVersion[]>;
  createPolicyVersion(policyName: string, document: string): Promise<void>;
  deletePolicyVersion(policyName: string, versionId: string): Promise<void>;
  deletePolicy(policyName: string): Promise<void>;
  attachPolicy(policyName: string, certificateArn: string): Promise<void>;
  detachPolicy(policyName: string, certificateArn: string): Promise<void>;
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

/** Allowlist records and the device-to-certificate binding. */
export interface AllowlistPort {
  get(deviceId: string): Promise<AllowlistRecord | undefined>;
  /** Conditionally bind; false when another certificate won the race. */
  claimBinding(claim: BindingClaim): Promise<boolean>;
  /** Record what was provisioned for a claimed binding. */
  completeBinding(binding: {
    deviceId: string;
    certificateId: string;
    thingName: string;
    policyName: string;
    provisionedAt: string;
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
  /** Count one more provisioned device if under `maxDevices`; false when the lot is full. */
  reserve(lot: string): Promise<boolean>;
  /** Give back a reservation. */
  release(lot: string): Promise<void>;
}

export interface LedgerPort {
  append(entry: LedgerEntry): Promise<void>;
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
}

/** Filters of an allowlist listing. */
export interface AllowlistFilter {
  status?: AllowlistRecord["status"];
  lot?: string;
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
  /** Deletes the record if its version and binding are still as expected; false otherwise. */
  remove(
    deviceId: string,
    expected: { version: number; certificateId: string | undefined },
  ): Promise<boolean>;
  /** Removes the binding fields if the record is still bound to `certificateId`; false otherwise. */
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
}

/** The ledger as admins read it. */
export interface LedgerStore extends LedgerPort {
  /** Adds many entries at once (bulk import). */
  appendMany(entries: LedgerEntry[]): Promise<void>;
  /** A device's entries, newest first. */
  history(deviceId: string, page: PageRequest): Promise<Page<LedgerEntry>>;
}
