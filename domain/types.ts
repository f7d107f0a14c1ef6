/** Certificate states as AWS IoT names them. */
export type CertificateStatus =
  | "ACTIVE"
  | "INACTIVE"
  | "REVOKED"
  | "PENDING_TRANSFER"
  | "REGISTER_INACTIVE"
  | "PENDING_ACTIVATION";

/** The `$aws/events/certificates/registered/<caId>` event, as parsed. */
export interface RegisteredEvent {
  certificateId: string;
  caCertificateId: string;
  timestamp: number;
  certificateStatus: string;
  awsAccountId: string;
  certificateRegistrationTimestamp: string | null;
}

/** What the service reads from a device certificate. */
export interface CertificateFacts {
  /** Lowercase hex SHA-256 of the DER bytes (equals the AWS certificate id). */
  fingerprint: string;
  subject: string;
  issuer: string;
  /** Subject attributes by short name (CN, O, OU, C, ST, L, serialNumber, title, dnQualifier). */
  subjectAttributes: Record<string, string>;
  commonName?: string;
  serialNumber?: string;
  sanUris: string[];
  sanDnsNames: string[];
  notBefore: Date;
  notAfter: Date;
}

export type DeviceIdStrategy = "cn" | "serialNumber" | "san-uri";
export type Rotation = "reject" | "replace" | "allow-multiple";
export type AllowlistStatus = "allowed" | "blocked";

/** An allowlist record (DynamoDB table keyed by `deviceId`). */
export interface AllowlistRecord {
  deviceId: string;
  status: AllowlistStatus;
  profile?: string;
  thingType?: string;
  thingGroups?: string[];
  attributes?: Record<string, string>;
  caCertificateId?: string;
  certificateFingerprint?: string;
  notBefore?: string;
  notAfter?: string;
  lot?: string;
  rotation?: Rotation;
  note?: string;
  version: number;
  createdAt?: string;
  updatedAt?: string;
  updatedBy?: string;
  /** Written by the service: the certificate bound to this device. */
  certificateId?: string;
  thingName?: string;
  policyName?: string;
  provisionedAt?: string;
  /** Written by the service: the lot the device is counted in (set before the count; invariant I6). */
  lotCounted?: string;
  /** Written by the service: when giving back the device's lot place began (under way, or interrupted). */
  lotReleaseStartedAt?: string;
}

/** Where a mapping's policy comes from. */
export type PolicySource =
  | { template: string }
  | { document: string | Record<string, unknown> }
  | { policyName: string };

/**
 * Rights a mapping grants through a thing group: the device's thing joins `group`, and every member has the
 * group's policies. With `policy`, the service keeps that policy attached to the group (a template or
 * document is rendered without device placeholders, since all members share it); without, the group's own
 * policies (attached to it or its parent groups by an admin) are the rights.
 */
export interface GroupPolicySource {
  group: string;
  policy?: PolicySource;
}

/** A policy-mapping record (DynamoDB table keyed by `selector`). */
export interface PolicyMapping {
  selector: string;
  policy?: PolicySource;
  provisioningTemplate?: {
    templateBody: string | Record<string, unknown>;
    parameters?: Record<string, string>;
  };
  thingType?: string;
  thingGroups?: string[];
  attributes?: Record<string, string>;
  /** Rights through thing groups, in addition to (or instead of) the certificate's `policy`. */
  groupPolicies?: GroupPolicySource[];
  version: number;
  createdAt?: string;
  updatedAt?: string;
  updatedBy?: string;
}

/** A manufacturing lot and its quota (DynamoDB table keyed by `lot`). */
export interface Lot {
  lot: string;
  maxDevices?: number;
  provisionedCount: number;
  notBefore?: string;
  notAfter?: string;
  /** Absent on a lot written before versions (an update then names version 0). */
  version?: number;
  createdAt?: string;
  updatedAt?: string;
  updatedBy?: string;
}

export type DenialReason =
  | "invalid-device-id"
  | "certificate-expired"
  | "certificate-not-yet-valid"
  | "not-allowlisted"
  | "blocked"
  | "wrong-ca"
  | "entry-not-valid-now"
  | "fingerprint-mismatch"
  | "already-provisioned"
  | "lot-quota-exceeded"
  | "no-policy"
  | "template-parameter-invalid"
  | "thing-name-mismatch"
  | "missing-reference";

export type Outcome = "provisioned" | "denied" | "failed";

/** One ledger entry: an outcome of an event, or an admin change. */
export interface LedgerEntry {
  deviceId: string;
  at: string;
  certificateId?: string;
  kind: Outcome | "admin";
  reason?: string;
  /** For a denial: the status the certificate was given. */
  certificateStatus?: CertificateStatus;
  error?: string;
  caCertificateId?: string;
  fingerprint?: string;
  policyName?: string;
  /** For a provisioning: the policy was made for this device alone (deprovisioning deletes it). */
  perDevicePolicy?: boolean;
  /** For a provisioning: the policies granted through thing groups (a group's own policies: no policyName). */
  groupPolicies?: { group: string; policyName?: string }[];
  thingName?: string;
  recordVersion?: number;
  /** The lot the device's record named when the entry was written (for the fleet-wide view's filter). */
  lot?: string;
  mappingSelector?: string;
  mappingVersion?: number;
  timings?: Record<string, number>;
  actor?: string;
  change?: Record<string, unknown>;
}
