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
  removeThingFromThingGroup(thingName: string, thingGroupName: string): Promise<void>;
  getPolicy(policyName: string): Promise<PolicyDescription | undefined>;
  createPolicy(policyName: string, document: string): Promise<void>;
  listPolicyVersions(policyName: string): Promise<PolicyVersion[]>;
  createPolicyVersion(policyName: string, document: string): Promise<void>;
  deletePolicyVersion(policyName: string, versionId: string): Promise<void>;
  deletePolicy(policyName: string): Promise<void>;
  attachPolicy(policyName: string, certificateArn: string): Promise<void>;
  detachPolicy(policyName: string, certificateArn: string): Promise<void>;
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
