import { randomBytes, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { X509Certificate } from "@peculiar/x509";
import type { CertificateStatus } from "../../../domain/types.ts";
import { type EvaluationContext, evaluateDetailed, policyDocumentProblem } from "../policy-evaluator.ts";
import {
  alreadyExists,
  certificateState,
  certificateValidation,
  deleteConflict,
  IotError,
  invalid,
  malformedPolicy,
  notFound,
  throttled,
} from "./errors.ts";
import { RateLimiter } from "./limits.ts";
import {
  certificateIdOf,
  commonNameOf,
  isSignedBy,
  isWithinValidity,
  mayBeCa,
  parseCertificate,
  pemBlocks,
  toPem,
} from "./x509.ts";

export type { CertificateStatus };
export type CaCertificateStatus = "ACTIVE" | "INACTIVE";
export type AutoRegistrationStatus = "ENABLE" | "DISABLE";
export type CertificateMode = "DEFAULT" | "SNI_ONLY";

export interface Validity {
  /** epoch seconds */
  notBefore: number;
  /** epoch seconds */
  notAfter: number;
}

export interface CertificateRecord {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  caCertificateId?: string;
  status: CertificateStatus;
  ownedBy: string;
  /** epoch seconds */
  creationDate: number;
  /** epoch seconds */
  lastModifiedDate: number;
  customerVersion: number;
  generationId: string;
  validity: Validity;
  certificateMode: CertificateMode;
}

export interface RegistrationConfig {
  templateBody?: string;
  roleArn?: string;
  templateName?: string;
}

export interface CaCertificateRecord {
  certificateId: string;
  certificateArn: string;
  certificatePem: string;
  status: CaCertificateStatus;
  autoRegistrationStatus: AutoRegistrationStatus;
  ownedBy: string;
  creationDate: number;
  lastModifiedDate: number;
  customerVersion: number;
  generationId: string;
  validity: Validity;
  certificateMode: CertificateMode;
  registrationConfig?: RegistrationConfig;
}

export interface ThingRecord {
  thingName: string;
  thingId: string;
  thingArn: string;
  thingTypeName?: string;
  attributes: Record<string, string>;
  version: number;
  billingGroupName?: string;
}

export interface ThingTypeRecord {
  thingTypeName: string;
  thingTypeId: string;
  thingTypeArn: string;
  thingTypeProperties: { thingTypeDescription?: string; searchableAttributes?: string[] };
  thingTypeMetadata: { deprecated: boolean; creationDate: number };
}

export interface ThingGroupRecord {
  thingGroupName: string;
  thingGroupId: string;
  thingGroupArn: string;
  version: number;
  parentGroupName?: string;
  thingGroupProperties: {
    thingGroupDescription?: string;
    attributePayload?: { attributes?: Record<string, string> };
  };
  creationDate: number;
}

export interface PolicyVersionRecord {
  versionId: string;
  document: string;
  createDate: number;
}

export interface PolicyRecord {
  policyName: string;
  policyArn: string;
  versions: PolicyVersionRecord[];
  defaultVersionId: string;
  nextVersionId: number;
  creationDate: number;
  lastModifiedDate: number;
  generationId: string;
}

export type ThingPrincipalType = "EXCLUSIVE_THING" | "NON_EXCLUSIVE_THING";

interface ThingPrincipal {
  thingName: string;
  principal: string;
  type: ThingPrincipalType;
}

interface PersistedState {
  format: 1;
  registrationCode?: string;
  certificates: CertificateRecord[];
  caCertificates: CaCertificateRecord[];
  things: ThingRecord[];
  thingTypes: ThingTypeRecord[];
  thingGroups: ThingGroupRecord[];
  groupMembers: [string, string[]][];
  policies: PolicyRecord[];
  policyTargets: [string, string[]][];
  thingPrincipals: ThingPrincipal[];
}

/** What `findCaForCertificate` reports about the registered CA that signed a certificate. */
export interface CaMatch {
  caCertificateId: string;
  caCertificateArn: string;
  status: CaCertificateStatus;
  autoRegistrationStatus: AutoRegistrationStatus;
  certificateMode: CertificateMode;
  record: CaCertificateRecord;
}

export interface IotRegistryEvents {
  /** A device certificate's status changed through UpdateCertificate. */
  certificateStatusChanged: [certificateId: string, status: CertificateStatus];
  /** A device certificate was deleted. */
  certificateDeleted: [certificateId: string];
  /** A CA certificate's status or auto-registration status changed, or it was deleted (status undefined). */
  caCertificateChanged: [caCertificateId: string, status: CaCertificateStatus | undefined];
}

export interface IotRegistryOptions {
  region: string;
  accountId: string;
  /** When set, state is loaded from and saved to `<dataDir>/iot.json`. */
  dataDir?: string;
  /** Rate limiter shared with the HTTP layer; used for auto-registration (JITR) throttling. */
  limiter?: RateLimiter;
  /** Host name DescribeEndpoint answers with. */
  endpointAddress?: string;
}

export interface Page<T> {
  items: T[];
  next?: string;
}

const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
const CERTIFICATE_ID = /^[0-9a-f]{64}$/;
const MAX_POLICY_VERSIONS = 5;
const MAX_POLICIES_PER_CERTIFICATE = 10;
const MAX_GROUPS_PER_THING = 10;
const MAX_ATTRIBUTES_UNTYPED = 3;
const MAX_ATTRIBUTES_TYPED = 50;

const nowSeconds = (): number => Date.now() / 1000;
const copy = <T>(value: T): T => structuredClone(value);

function validity(cert: X509Certificate): Validity {
  return { notBefore: cert.notBefore.getTime() / 1000, notAfter: cert.notAfter.getTime() / 1000 };
}

/** Offset-based page tokens, opaque to clients. */
export function paginate<T>(items: T[], token: string | undefined, limit: number): Page<T> {
  let offset = 0;
  if (token !== undefined && token !== "") {
    const decoded = Number(Buffer.from(token, "base64url").toString("utf8"));
    if (!Number.isInteger(decoded) || decoded < 0) throw invalid("The pagination token is invalid");
    offset = decoded;
  }
  const slice = items.slice(offset, offset + limit);
  const end = offset + slice.length;
  return {
    items: slice,
    next: end < items.length ? Buffer.from(String(end)).toString("base64url") : undefined,
  };
}

/** Validates a page size against the operation's modelled range. */
export function pageLimit(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw invalid(`Page size must be an integer between 1 and ${max}`);
  return value;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return value;
}

/**
 * In-process state of the AWS IoT control-plane emulator: certificates, CA certificates,
 * things, thing types and groups, policies and their attachments.
 *
 * The operation methods (named after the AWS operations) throw `IotError`s carrying the
 * AWS error code; the HTTP layer serialises them. The gateway-facing helpers
 * (`findCaForCertificate`, `describeCertificateById`, `autoRegisterCertificate`,
 * `policiesForPrincipal`, `thingsForPrincipal`, ...) are for code in the same process.
 */
export class IotRegistry extends EventEmitter<IotRegistryEvents> {
  readonly region: string;
  readonly accountId: string;
  readonly endpointAddress: string;
  private readonly file: string | undefined;
  private readonly limiter: RateLimiter;

  private registrationCode: string | undefined;
  private readonly certificates = new Map<string, CertificateRecord>();
  private readonly caCertificates = new Map<string, CaCertificateRecord>();
  private readonly things = new Map<string, ThingRecord>();
  private readonly thingTypes = new Map<string, ThingTypeRecord>();
  private readonly thingGroups = new Map<string, ThingGroupRecord>();
  /** group name -> thing names */
  private readonly groupMembers = new Map<string, Set<string>>();
  private readonly policies = new Map<string, PolicyRecord>();
  /** policy name -> targets (certificate ARNs, thing group ARNs, Cognito identity ids) */
  private readonly policyTargets = new Map<string, Set<string>>();
  private thingPrincipals: ThingPrincipal[] = [];

  constructor(options: IotRegistryOptions) {
    super();
    this.region = options.region;
    this.accountId = options.accountId;
    this.endpointAddress = options.endpointAddress ?? "localhost";
    this.limiter = options.limiter ?? new RateLimiter(false);
    this.file = options.dataDir ? `${options.dataDir}/iot.json` : undefined;
    if (this.file) this.load(this.file);
  }

  // ---------------------------------------------------------------- ARNs

  arn(kind: "cert" | "cacert" | "thing" | "thingtype" | "thinggroup" | "policy", id: string): string {
    return `arn:aws:iot:${this.region}:${this.accountId}:${kind}/${id}`;
  }

  /** Certificate id from a certificate ARN of this account and region; undefined otherwise. */
  certificateIdFromArn(arn: string): string | undefined {
    const prefix = this.arn("cert", "");
    if (!arn.startsWith(prefix)) return undefined;
    const id = arn.slice(prefix.length);
    return CERTIFICATE_ID.test(id) ? id : undefined;
  }

  // ------------------------------------------------------ gateway helpers

  /** The certificate record for an id, or undefined. */
  describeCertificateById(certificateId: string): CertificateRecord | undefined {
    const record = this.certificates.get(certificateId);
    return record ? copy(record) : undefined;
  }

  describeCaCertificateById(caCertificateId: string): CaCertificateRecord | undefined {
    const record = this.caCertificates.get(caCertificateId);
    return record ? copy(record) : undefined;
  }

  describeThingByName(thingName: string): ThingRecord | undefined {
    const record = this.things.get(thingName);
    return record ? copy(record) : undefined;
  }

  /** The certificate id (SHA-256 of the DER) of a PEM or DER certificate; undefined if unparsable. */
  certificateIdOf(derOrPem: string | Uint8Array): string | undefined {
    const cert = parseCertificate(derOrPem);
    return cert ? certificateIdOf(cert) : undefined;
  }

  /**
   * The registered CA that issued a certificate (PEM, possibly a bundle whose first block is
   * the leaf, or DER). The CA must be the leaf's direct issuer: name chaining plus a valid
   * signature. Undefined when no registered CA signed it.
   */
  async findCaForCertificate(derOrPem: string | Uint8Array): Promise<CaMatch | undefined> {
    const cert = parseCertificate(derOrPem);
    if (!cert) return undefined;
    for (const ca of [...this.caCertificates.values()]) {
      const caCert = parseCertificate(ca.certificatePem);
      if (caCert && (await isSignedBy(cert, caCert))) {
        const record = this.caCertificates.get(ca.certificateId);
        if (!record) continue; // deleted meanwhile
        return {
          caCertificateId: record.certificateId,
          caCertificateArn: record.certificateArn,
          status: record.status,
          autoRegistrationStatus: record.autoRegistrationStatus,
          certificateMode: record.certificateMode,
          record: copy(record),
        };
      }
    }
    return undefined;
  }

  /**
   * Registers a device certificate as PENDING_ACTIVATION with its CA, as AWS IoT does on a
   * device's first TLS connection (just-in-time registration). Returns the existing record
   * when the certificate is already registered. Throws ThrottlingException beyond the
   * auto-registration quota (15/s) when quotas are enabled, ResourceNotFoundException /
   * CertificateStateException / CertificateValidationException when the CA is unknown,
   * not ACTIVE with auto-registration ENABLE, or did not sign the certificate.
   */
  async autoRegisterCertificate(pem: string, caCertificateId: string): Promise<CertificateRecord> {
    const cert = parseCertificate(pem);
    if (!cert) throw certificateValidation("The certificate is not a valid X.509 certificate");
    const id = certificateIdOf(cert);
    const existing = this.certificates.get(id);
    if (existing) return copy(existing);
    if (!this.limiter.tryAcquire("AutoRegisterCertificate"))
      throw throttled("Auto-registration rate exceeded for the account");
    const ca = this.caCertificates.get(caCertificateId);
    if (!ca) throw notFound(`CA certificate ${caCertificateId} does not exist`);
    if (ca.status !== "ACTIVE") throw certificateState(`CA certificate ${caCertificateId} is not ACTIVE`);
    if (ca.autoRegistrationStatus !== "ENABLE")
      throw certificateState(`CA certificate ${caCertificateId} does not allow auto-registration`);
    const caCert = parseCertificate(ca.certificatePem);
    if (!caCert || !(await isSignedBy(cert, caCert)))
      throw certificateValidation("The certificate is not signed by the given CA certificate");
    if (!isWithinValidity(cert)) throw certificateValidation("The certificate is expired or not yet valid");
    const raced = this.certificates.get(id);
    if (raced) return copy(raced);
    const record = this.newCertificate(cert, "PENDING_ACTIVATION", ca.certificateId, ca.certificateMode);
    this.certificates.set(id, record);
    this.save();
    return copy(record);
  }

  /** Default-version documents of the policies attached directly to a principal (certificate ARN). */
  policiesForPrincipal(principal: string): string[] {
    const documents: string[] = [];
    for (const [policyName, targets] of this.policyTargets) {
      if (!targets.has(principal)) continue;
      const document = this.defaultDocument(policyName);
      if (document !== undefined) documents.push(document);
    }
    return documents;
  }

  /**
   * Default-version documents of the policies attached to the thing groups a thing belongs to, parent
   * groups included: AWS IoT applies them to a connection whose client id is that (attached) thing.
   */
  policiesForThingGroups(thingName: string): string[] {
    const groups = new Set<string>();
    for (const [groupName, members] of this.groupMembers) {
      if (!members.has(thingName)) continue;
      for (let name: string | undefined = groupName; name !== undefined && !groups.has(name); ) {
        groups.add(name);
        name = this.thingGroups.get(name)?.parentGroupName;
      }
    }
    return [...groups].flatMap((name) => this.policiesForPrincipal(this.arn("thinggroup", name)));
  }

  /** Names of the things a principal (certificate ARN) is attached to. */
  thingsForPrincipal(principal: string): string[] {
    return this.thingPrincipals.filter((tp) => tp.principal === principal).map((tp) => tp.thingName);
  }

  private defaultDocument(policyName: string): string | undefined {
    const policy = this.policies.get(policyName);
    return policy?.versions.find((v) => v.versionId === policy.defaultVersionId)?.document;
  }

  // --------------------------------------------------------- certificates

  private newCertificate(
    cert: X509Certificate,
    status: CertificateStatus,
    caCertificateId: string | undefined,
    certificateMode: CertificateMode,
  ): CertificateRecord {
    const id = certificateIdOf(cert);
    const now = nowSeconds();
    return {
      certificateId: id,
      certificateArn: this.arn("cert", id),
      certificatePem: toPem(cert),
      ...(caCertificateId ? { caCertificateId } : {}),
      status,
      ownedBy: this.accountId,
      creationDate: now,
      lastModifiedDate: now,
      customerVersion: 1,
      generationId: randomUUID(),
      validity: validity(cert),
      certificateMode,
    };
  }

  private requireCertificate(certificateId: string): CertificateRecord {
    if (!CERTIFICATE_ID.test(certificateId)) throw invalid(`Invalid certificate id: ${certificateId}`);
    const record = this.certificates.get(certificateId);
    if (!record) throw notFound(`Certificate ${certificateId} does not exist`);
    return record;
  }

  describeCertificate(certificateId: string): CertificateRecord {
    return copy(this.requireCertificate(certificateId));
  }

  private parseDeviceCertificate(pem: string | undefined): X509Certificate {
    if (!pem) throw invalid("certificatePem is required");
    const cert = parseCertificate(pem);
    if (!cert) throw certificateValidation("The certificate is not a valid X.509 certificate");
    // Stricter reading: certificates outside their validity window are refused at registration.
    if (!isWithinValidity(cert)) throw certificateValidation("The certificate is expired or not yet valid");
    return cert;
  }

  /** Status for RegisterCertificate(WithoutCA): ACTIVE or INACTIVE only (stricter reading). */
  private registrationStatus(
    status: string | undefined,
    setAsActive: boolean | undefined,
  ): CertificateStatus {
    if (status === undefined) return setAsActive ? "ACTIVE" : "INACTIVE";
    if (status !== "ACTIVE" && status !== "INACTIVE")
      throw invalid(`Invalid status for registration: ${status} (ACTIVE or INACTIVE)`);
    return status;
  }

  async registerCertificate(input: {
    certificatePem?: string;
    caCertificatePem?: string;
    setAsActive?: boolean;
    status?: string;
  }): Promise<{ certificateArn: string; certificateId: string }> {
    const cert = this.parseDeviceCertificate(input.certificatePem);
    const status = this.registrationStatus(input.status, input.setAsActive);
    let ca: CaCertificateRecord | undefined;
    if (input.caCertificatePem) {
      const caCert = parseCertificate(input.caCertificatePem);
      if (!caCert) throw certificateValidation("caCertificatePem is not a valid X.509 certificate");
      ca = this.caCertificates.get(certificateIdOf(caCert));
      if (!ca) throw certificateValidation("The CA certificate is not registered");
      if (!(await isSignedBy(cert, caCert)))
        throw certificateValidation("The certificate is not signed by the given CA certificate");
    } else {
      const match = await this.findCaForCertificate(new Uint8Array(cert.rawData));
      if (!match) throw certificateValidation("The certificate is not signed by a registered CA certificate");
      ca = this.caCertificates.get(match.caCertificateId);
      if (!ca) throw certificateValidation("The CA certificate is not registered");
    }
    // Stricter reading: the signing CA must be ACTIVE whatever status the certificate is registered with.
    if (ca.status !== "ACTIVE")
      throw certificateValidation(`CA certificate ${ca.certificateId} is not ACTIVE`);
    return this.storeRegistered(cert, status, ca.certificateId, ca.certificateMode);
  }

  registerCertificateWithoutCA(input: { certificatePem?: string; status?: string }): {
    certificateArn: string;
    certificateId: string;
  } {
    const cert = this.parseDeviceCertificate(input.certificatePem);
    const status = this.registrationStatus(input.status, undefined);
    return this.storeRegistered(cert, status, undefined, "SNI_ONLY");
  }

  private storeRegistered(
    cert: X509Certificate,
    status: CertificateStatus,
    caCertificateId: string | undefined,
    mode: CertificateMode,
  ): { certificateArn: string; certificateId: string } {
    const id = certificateIdOf(cert);
    const arn = this.arn("cert", id);
    if (this.certificates.has(id))
      throw alreadyExists("The certificate is already provisioned or registered", id, arn);
    this.certificates.set(id, this.newCertificate(cert, status, caCertificateId, mode));
    this.save();
    return { certificateArn: arn, certificateId: id };
  }

  updateCertificate(certificateId: string, newStatus: string | undefined): void {
    const record = this.requireCertificate(certificateId);
    if (newStatus !== "ACTIVE" && newStatus !== "INACTIVE" && newStatus !== "REVOKED") {
      // PENDING_ACTIVATION, PENDING_TRANSFER and REGISTER_INACTIVE cannot be set through UpdateCertificate.
      throw invalid(`Invalid newStatus: ${newStatus ?? "(missing)"}`);
    }
    if (record.status === "REVOKED")
      throw certificateState(`Certificate ${certificateId} is REVOKED; its status cannot change`);
    if (record.status === "PENDING_TRANSFER")
      throw certificateState(`Certificate ${certificateId} is PENDING_TRANSFER`);
    if (newStatus === "ACTIVE" && record.caCertificateId) {
      // Stricter reading: a certificate cannot be activated while its CA is not ACTIVE.
      const ca = this.caCertificates.get(record.caCertificateId);
      if (ca && ca.status !== "ACTIVE")
        throw certificateState(
          `CA certificate ${ca.certificateId} is not ACTIVE; cannot activate ${certificateId}`,
        );
    }
    if (record.status === newStatus) return;
    record.status = newStatus;
    record.lastModifiedDate = nowSeconds();
    record.customerVersion += 1;
    record.generationId = randomUUID();
    this.save();
    this.emit("certificateStatusChanged", certificateId, newStatus);
  }

  deleteCertificate(certificateId: string, forceDelete: boolean): void {
    const record = this.requireCertificate(certificateId);
    if (record.status === "ACTIVE")
      throw certificateState(
        `Certificate must be deactivated (not ACTIVE) before deletion. Id: ${certificateId}`,
      );
    if (record.status === "PENDING_TRANSFER")
      throw certificateState(`Certificate ${certificateId} is PENDING_TRANSFER and cannot be deleted`);
    const arn = record.certificateArn;
    if (this.thingPrincipals.some((tp) => tp.principal === arn))
      throw deleteConflict(`Certificate ${certificateId} is attached to one or more things`);
    const attached = [...this.policyTargets.values()].some((targets) => targets.has(arn));
    if (attached && !forceDelete)
      throw deleteConflict(`Certificate ${certificateId} has one or more policies attached`);
    for (const targets of this.policyTargets.values()) targets.delete(arn);
    this.certificates.delete(certificateId);
    this.save();
    this.emit("certificateDeleted", certificateId);
  }

  private sortedCertificates(
    filter: (c: CertificateRecord) => boolean,
    ascending: boolean,
  ): CertificateRecord[] {
    const list = [...this.certificates.values()].filter(filter);
    list.sort((a, b) => a.creationDate - b.creationDate || (a.certificateId < b.certificateId ? -1 : 1));
    if (!ascending) list.reverse();
    return list;
  }

  listCertificates(input: {
    pageSize?: number;
    marker?: string;
    ascendingOrder?: boolean;
    caCertificateId?: string;
  }) {
    if (input.caCertificateId !== undefined) this.requireCaCertificate(input.caCertificateId);
    const list = this.sortedCertificates(
      (c) => input.caCertificateId === undefined || c.caCertificateId === input.caCertificateId,
      input.ascendingOrder === true,
    );
    const page = paginate(list, input.marker, pageLimit(input.pageSize, 25, 250));
    return {
      certificates: page.items.map((c) => ({
        certificateArn: c.certificateArn,
        certificateId: c.certificateId,
        status: c.status,
        certificateMode: c.certificateMode,
        creationDate: c.creationDate,
      })),
      nextMarker: page.next,
    };
  }

  // ------------------------------------------------------- CA certificates

  getRegistrationCode(): string {
    if (!this.registrationCode) {
      this.registrationCode = randomBytes(32).toString("hex");
      this.save();
    }
    return this.registrationCode;
  }

  deleteRegistrationCode(): void {
    this.registrationCode = undefined;
    this.save();
  }

  private requireCaCertificate(certificateId: string): CaCertificateRecord {
    if (!CERTIFICATE_ID.test(certificateId)) throw invalid(`Invalid CA certificate id: ${certificateId}`);
    const record = this.caCertificates.get(certificateId);
    if (!record) throw notFound(`CA certificate ${certificateId} does not exist`);
    return record;
  }

  async registerCACertificate(input: {
    caCertificate?: string;
    verificationCertificate?: string;
    setAsActive?: boolean;
    allowAutoRegistration?: boolean;
    registrationConfig?: RegistrationConfig;
    certificateMode?: string;
  }): Promise<{ certificateArn: string; certificateId: string }> {
    if (!input.caCertificate) throw invalid("caCertificate is required");
    const mode = input.certificateMode ?? "DEFAULT";
    if (mode !== "DEFAULT" && mode !== "SNI_ONLY") throw invalid(`Invalid certificateMode: ${mode}`);
    if (pemBlocks(input.caCertificate).length !== 1)
      throw certificateValidation("caCertificate must contain exactly one PEM certificate");
    const caCert = parseCertificate(input.caCertificate);
    if (!caCert) throw certificateValidation("caCertificate is not a valid X.509 certificate");
    if (!mayBeCa(caCert))
      throw certificateValidation("The certificate is not a CA certificate (basicConstraints)");
    if (!isWithinValidity(caCert))
      throw certificateValidation("The CA certificate is expired or not yet valid");
    if (mode === "DEFAULT") {
      if (!input.verificationCertificate)
        throw invalid("verificationCertificate is required when certificateMode is DEFAULT");
      const verification = parseCertificate(input.verificationCertificate);
      if (!verification)
        throw certificateValidation("verificationCertificate is not a valid X.509 certificate");
      if (!this.registrationCode || commonNameOf(verification) !== this.registrationCode)
        throw certificateValidation(
          "The verification certificate's subject common name is not the registration code",
        );
      if (!(await isSignedBy(verification, caCert)))
        throw certificateValidation("The verification certificate is not signed by the CA certificate");
    }
    const id = certificateIdOf(caCert);
    const arn = this.arn("cacert", id);
    if (this.caCertificates.has(id)) throw alreadyExists("The CA certificate is already registered", id, arn);
    const now = nowSeconds();
    this.caCertificates.set(id, {
      certificateId: id,
      certificateArn: arn,
      certificatePem: toPem(caCert),
      status: input.setAsActive ? "ACTIVE" : "INACTIVE",
      autoRegistrationStatus: input.allowAutoRegistration ? "ENABLE" : "DISABLE",
      ownedBy: this.accountId,
      creationDate: now,
      lastModifiedDate: now,
      customerVersion: 1,
      generationId: randomUUID(),
      validity: validity(caCert),
      certificateMode: mode,
      ...(input.registrationConfig ? { registrationConfig: copy(input.registrationConfig) } : {}),
    });
    this.save();
    return { certificateArn: arn, certificateId: id };
  }

  describeCACertificate(certificateId: string): CaCertificateRecord {
    return copy(this.requireCaCertificate(certificateId));
  }

  updateCACertificate(input: {
    certificateId: string;
    newStatus?: string;
    newAutoRegistrationStatus?: string;
    registrationConfig?: RegistrationConfig;
    removeAutoRegistration?: boolean;
  }): void {
    const record = this.requireCaCertificate(input.certificateId);
    const { newStatus, newAutoRegistrationStatus } = input;
    if (newStatus !== undefined && newStatus !== "ACTIVE" && newStatus !== "INACTIVE")
      throw invalid(`Invalid newStatus: ${newStatus}`);
    if (
      newAutoRegistrationStatus !== undefined &&
      newAutoRegistrationStatus !== "ENABLE" &&
      newAutoRegistrationStatus !== "DISABLE"
    )
      throw invalid(`Invalid newAutoRegistrationStatus: ${newAutoRegistrationStatus}`);
    if (input.removeAutoRegistration && input.registrationConfig)
      throw invalid("registrationConfig and removeAutoRegistration are mutually exclusive");
    const before = JSON.stringify(record);
    if (newStatus) record.status = newStatus;
    if (newAutoRegistrationStatus) record.autoRegistrationStatus = newAutoRegistrationStatus;
    if (input.registrationConfig) record.registrationConfig = copy(input.registrationConfig);
    if (input.removeAutoRegistration) delete record.registrationConfig;
    if (JSON.stringify(record) === before) return;
    record.lastModifiedDate = nowSeconds();
    record.customerVersion += 1;
    record.generationId = randomUUID();
    this.save();
    this.emit("caCertificateChanged", record.certificateId, record.status);
  }

  deleteCACertificate(certificateId: string): void {
    const record = this.requireCaCertificate(certificateId);
    if (record.status === "ACTIVE")
      throw certificateState(
        `CA certificate must be deactivated (not ACTIVE) before deletion. Id: ${certificateId}`,
      );
    this.caCertificates.delete(certificateId);
    this.save();
    this.emit("caCertificateChanged", certificateId, undefined);
  }

  listCACertificates(input: {
    pageSize?: number;
    marker?: string;
    ascendingOrder?: boolean;
    templateName?: string;
  }) {
    const list = [...this.caCertificates.values()].filter(
      (c) => input.templateName === undefined || c.registrationConfig?.templateName === input.templateName,
    );
    list.sort((a, b) => a.creationDate - b.creationDate || (a.certificateId < b.certificateId ? -1 : 1));
    if (input.ascendingOrder !== true) list.reverse();
    const page = paginate(list, input.marker, pageLimit(input.pageSize, 25, 250));
    return {
      certificates: page.items.map((c) => ({
        certificateArn: c.certificateArn,
        certificateId: c.certificateId,
        status: c.status,
        creationDate: c.creationDate,
      })),
      nextMarker: page.next,
    };
  }

  // ------------------------------------------------------------- things

  private checkThingName(name: string, what = "thing name"): void {
    if (!THING_NAME.test(name))
      throw invalid(`Invalid ${what}: must match [a-zA-Z0-9:_-]+ with 1 to 128 characters`);
  }

  private requireThing(thingName: string): ThingRecord {
    this.checkThingName(thingName);
    const thing = this.things.get(thingName);
    if (!thing) throw notFound(`Thing ${thingName} cannot be found.`);
    return thing;
  }

  private checkAttributes(attributes: Record<string, string>, typed: boolean): void {
    const names = Object.keys(attributes);
    const max = typed ? MAX_ATTRIBUTES_TYPED : MAX_ATTRIBUTES_UNTYPED;
    if (names.length > max)
      throw invalid(`A thing ${typed ? "with" : "without"} a thing type can have at most ${max} attributes`);
    for (const name of names) {
      const value = attributes[name];
      if (!ATTRIBUTE_NAME.test(name)) throw invalid(`Invalid attribute name: ${name}`);
      if (typeof value !== "string" || !ATTRIBUTE_VALUE.test(value))
        throw invalid(`Invalid value for attribute ${name}`);
    }
  }

  private requireThingType(thingTypeName: string): ThingTypeRecord {
    const type = this.thingTypes.get(thingTypeName);
    if (!type) throw notFound(`Thing type ${thingTypeName} cannot be found.`);
    if (type.thingTypeMetadata.deprecated) throw invalid(`Thing type ${thingTypeName} is deprecated`);
    return type;
  }

  createThing(input: {
    thingName: string;
    thingTypeName?: string;
    attributePayload?: { attributes?: Record<string, string> };
    billingGroupName?: string;
  }): { thingName: string; thingArn: string; thingId: string } {
    this.checkThingName(input.thingName);
    const attributes = Object.fromEntries(
      Object.entries(input.attributePayload?.attributes ?? {}).filter(([, v]) => v !== ""),
    );
    if (input.thingTypeName !== undefined) this.requireThingType(input.thingTypeName);
    this.checkAttributes(attributes, input.thingTypeName !== undefined);
    // Billing groups are not emulated, so no billing group can exist (stricter reading).
    if (input.billingGroupName !== undefined)
      throw notFound(`Billing group ${input.billingGroupName} cannot be found.`);
    const existing = this.things.get(input.thingName);
    if (existing) {
      const same =
        existing.thingTypeName === input.thingTypeName &&
        existing.billingGroupName === input.billingGroupName &&
        sameJson(existing.attributes, attributes);
      if (!same)
        throw alreadyExists(
          `Thing ${input.thingName} already exists in account with different attributes`,
          existing.thingId,
          existing.thingArn,
        );
      return { thingName: existing.thingName, thingArn: existing.thingArn, thingId: existing.thingId };
    }
    const thing: ThingRecord = {
      thingName: input.thingName,
      thingId: randomUUID(),
      thingArn: this.arn("thing", input.thingName),
      ...(input.thingTypeName !== undefined ? { thingTypeName: input.thingTypeName } : {}),
      attributes,
      version: 1,
    };
    this.things.set(thing.thingName, thing);
    this.save();
    return { thingName: thing.thingName, thingArn: thing.thingArn, thingId: thing.thingId };
  }

  describeThing(thingName: string): ThingRecord & { defaultClientId: string } {
    const thing = this.requireThing(thingName);
    return { defaultClientId: thing.thingName, ...copy(thing) };
  }

  updateThing(input: {
    thingName: string;
    thingTypeName?: string;
    attributePayload?: { attributes?: Record<string, string>; merge?: boolean };
    expectedVersion?: number;
    removeThingType?: boolean;
  }): void {
    const thing = this.requireThing(input.thingName);
    if (input.expectedVersion !== undefined && input.expectedVersion !== thing.version)
      throw new IotError(
        "VersionConflictException",
        `The version for thing ${thing.thingName} does not match the expected version.`,
      );
    if (input.removeThingType && input.thingTypeName !== undefined)
      throw invalid("Cannot set thingTypeName and removeThingType together");
    if (input.thingTypeName !== undefined) this.requireThingType(input.thingTypeName);
    const typeName = input.removeThingType ? undefined : (input.thingTypeName ?? thing.thingTypeName);
    let attributes = thing.attributes;
    const payload = input.attributePayload?.attributes;
    if (payload !== undefined) {
      // An empty value removes the attribute; without merge the payload replaces all attributes.
      attributes = input.attributePayload?.merge ? { ...thing.attributes, ...payload } : { ...payload };
      attributes = Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== ""));
    }
    this.checkAttributes(attributes, typeName !== undefined);
    thing.attributes = attributes;
    if (typeName === undefined) delete thing.thingTypeName;
    else thing.thingTypeName = typeName;
    thing.version += 1;
    this.save();
  }

  /** Deleting a thing that does not exist succeeds, as in AWS. */
  deleteThing(thingName: string, expectedVersion: number | undefined): void {
    this.checkThingName(thingName);
    const thing = this.things.get(thingName);
    if (!thing) return;
    if (expectedVersion !== undefined && expectedVersion !== thing.version)
      throw new IotError(
        "VersionConflictException",
        `The version for thing ${thingName} does not match the expected version.`,
      );
    if (this.thingPrincipals.some((tp) => tp.thingName === thingName))
      throw invalid(`Cannot delete. Thing ${thingName} is still attached to one or more principals`);
    this.things.delete(thingName);
    for (const members of this.groupMembers.values()) members.delete(thingName);
    this.save();
  }

  listThings(input: {
    nextToken?: string;
    maxResults?: number;
    attributeName?: string;
    attributeValue?: string;
    thingTypeName?: string;
    usePrefixAttributeValue?: boolean;
  }) {
    if (input.attributeValue !== undefined && input.attributeName === undefined)
      throw invalid("attributeValue requires attributeName");
    const list = [...this.things.values()]
      .filter((t) => input.thingTypeName === undefined || t.thingTypeName === input.thingTypeName)
      .filter((t) => {
        if (input.attributeName === undefined) return true;
        const value = t.attributes[input.attributeName];
        if (value === undefined) return false;
        if (input.attributeValue === undefined) return true;
        return input.usePrefixAttributeValue
          ? value.startsWith(input.attributeValue)
          : value === input.attributeValue;
      })
      .sort((a, b) => (a.thingName < b.thingName ? -1 : 1));
    const page = paginate(list, input.nextToken, pageLimit(input.maxResults, 50, 250));
    return {
      things: page.items.map((t) => ({
        thingName: t.thingName,
        ...(t.thingTypeName !== undefined ? { thingTypeName: t.thingTypeName } : {}),
        thingArn: t.thingArn,
        attributes: { ...t.attributes },
        version: t.version,
      })),
      nextToken: page.next,
    };
  }

  // -------------------------------------------------------- thing types

  /** CreateThingType on an existing name fails even with identical properties (stricter reading). */
  createThingType(input: {
    thingTypeName: string;
    thingTypeProperties?: { thingTypeDescription?: string; searchableAttributes?: string[] };
  }): { thingTypeName: string; thingTypeArn: string; thingTypeId: string } {
    this.checkThingName(input.thingTypeName, "thing type name");
    const props = input.thingTypeProperties ?? {};
    if (props.searchableAttributes && props.searchableAttributes.length > 3)
      throw invalid("A thing type can have at most 3 searchable attributes");
    for (const name of props.searchableAttributes ?? [])
      if (!ATTRIBUTE_NAME.test(name)) throw invalid(`Invalid searchable attribute name: ${name}`);
    const existing = this.thingTypes.get(input.thingTypeName);
    if (existing)
      throw alreadyExists(
        `Thing type ${input.thingTypeName} already exists`,
        existing.thingTypeId,
        existing.thingTypeArn,
      );
    const type: ThingTypeRecord = {
      thingTypeName: input.thingTypeName,
      thingTypeId: randomUUID(),
      thingTypeArn: this.arn("thingtype", input.thingTypeName),
      thingTypeProperties: {
        ...(props.thingTypeDescription !== undefined
          ? { thingTypeDescription: props.thingTypeDescription }
          : {}),
        ...(props.searchableAttributes !== undefined
          ? { searchableAttributes: [...props.searchableAttributes] }
          : {}),
      },
      thingTypeMetadata: { deprecated: false, creationDate: nowSeconds() },
    };
    this.thingTypes.set(type.thingTypeName, type);
    this.save();
    return {
      thingTypeName: type.thingTypeName,
      thingTypeArn: type.thingTypeArn,
      thingTypeId: type.thingTypeId,
    };
  }

  describeThingType(thingTypeName: string): ThingTypeRecord {
    this.checkThingName(thingTypeName, "thing type name");
    const type = this.thingTypes.get(thingTypeName);
    if (!type) throw notFound(`Thing type ${thingTypeName} cannot be found.`);
    return copy(type);
  }

  // ------------------------------------------------------- thing groups

  /** Identical configuration (properties and parent) answers with the existing group, as AWS documents. */
  createThingGroup(input: {
    thingGroupName: string;
    parentGroupName?: string;
    thingGroupProperties?: ThingGroupRecord["thingGroupProperties"];
  }): { thingGroupName: string; thingGroupArn: string; thingGroupId: string } {
    this.checkThingName(input.thingGroupName, "thing group name");
    const props = copy(input.thingGroupProperties ?? {});
    const attributes = props.attributePayload?.attributes;
    if (attributes) this.checkAttributes(attributes, true);
    if (input.parentGroupName !== undefined && !this.thingGroups.has(input.parentGroupName))
      throw notFound(`Thing group ${input.parentGroupName} cannot be found.`);
    const existing = this.thingGroups.get(input.thingGroupName);
    if (existing) {
      if (
        existing.parentGroupName !== input.parentGroupName ||
        !sameJson(existing.thingGroupProperties, props)
      )
        throw alreadyExists(
          `Thing group ${input.thingGroupName} already exists with different properties`,
          existing.thingGroupId,
          existing.thingGroupArn,
        );
      return {
        thingGroupName: existing.thingGroupName,
        thingGroupArn: existing.thingGroupArn,
        thingGroupId: existing.thingGroupId,
      };
    }
    const group: ThingGroupRecord = {
      thingGroupName: input.thingGroupName,
      thingGroupId: randomUUID(),
      thingGroupArn: this.arn("thinggroup", input.thingGroupName),
      version: 1,
      ...(input.parentGroupName !== undefined ? { parentGroupName: input.parentGroupName } : {}),
      thingGroupProperties: props,
      creationDate: nowSeconds(),
    };
    this.thingGroups.set(group.thingGroupName, group);
    this.groupMembers.set(group.thingGroupName, new Set());
    this.save();
    return {
      thingGroupName: group.thingGroupName,
      thingGroupArn: group.thingGroupArn,
      thingGroupId: group.thingGroupId,
    };
  }

  describeThingGroup(thingGroupName: string) {
    const group = this.thingGroups.get(thingGroupName);
    if (!group) throw notFound(`Thing group ${thingGroupName} cannot be found.`);
    const rootToParent: { groupName: string; groupArn: string }[] = [];
    for (let parent = group.parentGroupName; parent !== undefined; ) {
      const p = this.thingGroups.get(parent);
      if (!p) break;
      rootToParent.unshift({ groupName: p.thingGroupName, groupArn: p.thingGroupArn });
      parent = p.parentGroupName;
    }
    return {
      thingGroupName: group.thingGroupName,
      thingGroupId: group.thingGroupId,
      thingGroupArn: group.thingGroupArn,
      version: group.version,
      thingGroupProperties: copy(group.thingGroupProperties),
      thingGroupMetadata: {
        ...(group.parentGroupName !== undefined ? { parentGroupName: group.parentGroupName } : {}),
        rootToParentThingGroups: rootToParent,
        creationDate: group.creationDate,
      },
    };
  }

  private resolveByNameOrArn<T>(
    kind: "thing" | "thinggroup",
    name: string | undefined,
    arn: string | undefined,
    map: Map<string, T>,
  ): T {
    let key = name;
    if (key === undefined && arn !== undefined) {
      const prefix = this.arn(kind, "");
      if (!arn.startsWith(prefix)) throw notFound(`${arn} cannot be found.`);
      key = arn.slice(prefix.length);
    }
    if (key === undefined) throw invalid(`Either the ${kind} name or its ARN is required`);
    const found = map.get(key);
    if (!found) throw notFound(`${kind === "thing" ? "Thing" : "Thing group"} ${key} cannot be found.`);
    return found;
  }

  addThingToThingGroup(input: {
    thingGroupName?: string;
    thingGroupArn?: string;
    thingName?: string;
    thingArn?: string;
  }) {
    const group = this.resolveByNameOrArn(
      "thinggroup",
      input.thingGroupName,
      input.thingGroupArn,
      this.thingGroups,
    );
    const thing = this.resolveByNameOrArn("thing", input.thingName, input.thingArn, this.things);
    const members = this.groupMembers.get(group.thingGroupName) ?? new Set<string>();
    this.groupMembers.set(group.thingGroupName, members);
    if (members.has(thing.thingName)) return;
    const count = [...this.groupMembers.values()].filter((m) => m.has(thing.thingName)).length;
    if (count >= MAX_GROUPS_PER_THING)
      throw new IotError(
        "LimitExceededException",
        `Thing ${thing.thingName} is already in ${count} thing groups`,
      );
    members.add(thing.thingName);
    this.save();
  }

  /** Removing a thing that is not a member succeeds without change (detach-style calls are idempotent). */
  removeThingFromThingGroup(input: {
    thingGroupName?: string;
    thingGroupArn?: string;
    thingName?: string;
    thingArn?: string;
  }) {
    const group = this.resolveByNameOrArn(
      "thinggroup",
      input.thingGroupName,
      input.thingGroupArn,
      this.thingGroups,
    );
    const thing = this.resolveByNameOrArn("thing", input.thingName, input.thingArn, this.things);
    if (this.groupMembers.get(group.thingGroupName)?.delete(thing.thingName)) this.save();
  }

  listThingGroupsForThing(input: { thingName: string; nextToken?: string; maxResults?: number }) {
    const thing = this.requireThing(input.thingName);
    const groups = [...this.groupMembers.entries()]
      .filter(([, members]) => members.has(thing.thingName))
      .map(([name]) => name)
      .sort()
      .map((name) => ({ groupName: name, groupArn: this.arn("thinggroup", name) }));
    const page = paginate(groups, input.nextToken, pageLimit(input.maxResults, 25, 250));
    return { thingGroups: page.items, nextToken: page.next };
  }

  // ----------------------------------------------------------- policies

  private checkPolicyName(name: string): void {
    if (!POLICY_NAME.test(name))
      throw invalid(`Invalid policy name: must match [\\w+=,.@-]+ with 1 to 128 characters`);
  }

  private requirePolicy(policyName: string): PolicyRecord {
    this.checkPolicyName(policyName);
    const policy = this.policies.get(policyName);
    if (!policy) throw notFound(`Policy ${policyName} cannot be found.`);
    return policy;
  }

  private checkDocument(document: string | undefined): string {
    if (document === undefined || document === "") throw invalid("policyDocument is required");
    const problem = policyDocumentProblem(document);
    if (problem) throw malformedPolicy(problem);
    return document;
  }

  /** CreatePolicy on an existing name always fails, even with the same document. */
  createPolicy(input: { policyName: string; policyDocument?: string }) {
    this.checkPolicyName(input.policyName);
    const document = this.checkDocument(input.policyDocument);
    const existing = this.policies.get(input.policyName);
    if (existing)
      throw alreadyExists(
        `Policy ${input.policyName} already exists`,
        existing.policyName,
        existing.policyArn,
      );
    const now = nowSeconds();
    const policy: PolicyRecord = {
      policyName: input.policyName,
      policyArn: this.arn("policy", input.policyName),
      versions: [{ versionId: "1", document, createDate: now }],
      defaultVersionId: "1",
      nextVersionId: 2,
      creationDate: now,
      lastModifiedDate: now,
      generationId: randomUUID(),
    };
    this.policies.set(policy.policyName, policy);
    this.policyTargets.set(policy.policyName, new Set());
    this.save();
    return {
      policyName: policy.policyName,
      policyArn: policy.policyArn,
      policyDocument: document,
      policyVersionId: "1",
    };
  }

  getPolicy(policyName: string) {
    const policy = this.requirePolicy(policyName);
    return {
      policyName: policy.policyName,
      policyArn: policy.policyArn,
      policyDocument: this.defaultDocument(policyName) ?? "",
      defaultVersionId: policy.defaultVersionId,
      creationDate: policy.creationDate,
      lastModifiedDate: policy.lastModifiedDate,
      generationId: policy.generationId,
    };
  }

  createPolicyVersion(input: { policyName: string; policyDocument?: string; setAsDefault?: boolean }) {
    const policy = this.requirePolicy(input.policyName);
    const document = this.checkDocument(input.policyDocument);
    if (policy.versions.length >= MAX_POLICY_VERSIONS)
      throw new IotError(
        "VersionsLimitExceededException",
        `The policy ${policy.policyName} already has the maximum number of versions (${MAX_POLICY_VERSIONS})`,
      );
    const versionId = String(policy.nextVersionId);
    policy.nextVersionId += 1;
    const now = nowSeconds();
    policy.versions.push({ versionId, document, createDate: now });
    if (input.setAsDefault) {
      policy.defaultVersionId = versionId;
      policy.generationId = randomUUID();
    }
    policy.lastModifiedDate = now;
    this.save();
    return {
      policyArn: policy.policyArn,
      policyDocument: document,
      policyVersionId: versionId,
      isDefaultVersion: policy.defaultVersionId === versionId,
    };
  }

  private requireVersion(policy: PolicyRecord, versionId: string): PolicyVersionRecord {
    const version = policy.versions.find((v) => v.versionId === versionId);
    if (!version) throw notFound(`Policy ${policy.policyName} version ${versionId} cannot be found.`);
    return version;
  }

  deletePolicyVersion(policyName: string, versionId: string): void {
    const policy = this.requirePolicy(policyName);
    this.requireVersion(policy, versionId);
    if (policy.defaultVersionId === versionId)
      throw deleteConflict(`Cannot delete the default version ${versionId} of policy ${policyName}`);
    policy.versions = policy.versions.filter((v) => v.versionId !== versionId);
    this.save();
  }

  listPolicyVersions(policyName: string) {
    const policy = this.requirePolicy(policyName);
    return {
      policyVersions: [...policy.versions]
        .sort((a, b) => Number(b.versionId) - Number(a.versionId))
        .map((v) => ({
          versionId: v.versionId,
          isDefaultVersion: v.versionId === policy.defaultVersionId,
          createDate: v.createDate,
        })),
    };
  }

  setDefaultPolicyVersion(policyName: string, versionId: string): void {
    const policy = this.requirePolicy(policyName);
    this.requireVersion(policy, versionId);
    if (policy.defaultVersionId === versionId) return;
    policy.defaultVersionId = versionId;
    policy.lastModifiedDate = nowSeconds();
    policy.generationId = randomUUID();
    this.save();
  }

  deletePolicy(policyName: string): void {
    const policy = this.requirePolicy(policyName);
    if ((this.policyTargets.get(policyName)?.size ?? 0) > 0)
      throw deleteConflict(
        `The policy cannot be deleted as the policy is attached to one or more principals (name=${policyName})`,
      );
    if (policy.versions.length > 1)
      throw deleteConflict(
        `The policy cannot be deleted as versions other than the default version exist (name=${policyName})`,
      );
    this.policies.delete(policyName);
    this.policyTargets.delete(policyName);
    this.save();
  }

  /**
   * Checks a policy target: a certificate ARN or thing group ARN that exists, or a Cognito
   * identity id (accepted as is, identities are not emulated).
   */
  private checkTarget(target: string | undefined): string {
    if (!target) throw invalid("target is required");
    if (target.startsWith("arn:")) {
      const certificateId = this.certificateIdFromArn(target);
      if (certificateId !== undefined) {
        if (!this.certificates.has(certificateId))
          throw notFound(`Certificate ${certificateId} does not exist`);
        return target;
      }
      const groupPrefix = this.arn("thinggroup", "");
      if (target.startsWith(groupPrefix)) {
        if (!this.thingGroups.has(target.slice(groupPrefix.length)))
          throw notFound(`${target} cannot be found.`);
        return target;
      }
      throw invalid(`Invalid target: ${target}`);
    }
    if (/^[a-z]{2}(-[a-z]+)+-\d:[0-9a-f-]{36}$/.test(target)) return target;
    throw invalid(`Invalid target: ${target}`);
  }

  attachPolicy(policyName: string, target: string | undefined): void {
    this.requirePolicy(policyName);
    const checked = this.checkTarget(target);
    const targets = this.policyTargets.get(policyName) ?? new Set<string>();
    this.policyTargets.set(policyName, targets);
    if (targets.has(checked)) return;
    const count = [...this.policyTargets.values()].filter((t) => t.has(checked)).length;
    if (count >= MAX_POLICIES_PER_CERTIFICATE)
      throw new IotError(
        "LimitExceededException",
        `The target ${checked} already has the maximum number of policies attached (${MAX_POLICIES_PER_CERTIFICATE})`,
      );
    targets.add(checked);
    this.save();
  }

  /** Detaching a policy that is not attached succeeds without change (detach calls are idempotent). */
  detachPolicy(policyName: string, target: string | undefined): void {
    this.requirePolicy(policyName);
    const checked = this.checkTarget(target);
    if (this.policyTargets.get(policyName)?.delete(checked)) this.save();
  }

  listAttachedPolicies(input: { target: string; marker?: string; pageSize?: number }) {
    const target = this.checkTarget(input.target);
    const names = [...this.policyTargets.entries()]
      .filter(([, targets]) => targets.has(target))
      .map(([name]) => name)
      .sort();
    const page = paginate(names, input.marker, pageLimit(input.pageSize, 25, 250));
    return {
      policies: page.items.map((name) => ({ policyName: name, policyArn: this.arn("policy", name) })),
      nextMarker: page.next,
    };
  }

  listTargetsForPolicy(input: { policyName: string; marker?: string; pageSize?: number }) {
    this.requirePolicy(input.policyName);
    const targets = [...(this.policyTargets.get(input.policyName) ?? [])].sort();
    const page = paginate(targets, input.marker, pageLimit(input.pageSize, 25, 250));
    return { targets: page.items, nextMarker: page.next };
  }

  // --------------------------------------------------- thing principals

  /** Only certificate ARNs of this account and region are accepted as thing principals (stricter reading). */
  private requirePrincipalCertificate(principal: string | undefined): CertificateRecord {
    if (!principal) throw invalid("principal is required");
    const certificateId = this.certificateIdFromArn(principal);
    if (certificateId === undefined) throw invalid(`Invalid principal: ${principal}`);
    const certificate = this.certificates.get(certificateId);
    if (!certificate) throw notFound(`Certificate ${certificateId} does not exist`);
    return certificate;
  }

  attachThingPrincipal(thingName: string, principal: string | undefined, type: string | undefined): void {
    const thing = this.requireThing(thingName);
    const certificate = this.requirePrincipalCertificate(principal);
    const principalType = type ?? "NON_EXCLUSIVE_THING";
    if (principalType !== "EXCLUSIVE_THING" && principalType !== "NON_EXCLUSIVE_THING")
      throw invalid(`Invalid thingPrincipalType: ${principalType}`);
    const arn = certificate.certificateArn;
    const existing = this.thingPrincipals.filter((tp) => tp.principal === arn);
    const same = existing.find((tp) => tp.thingName === thing.thingName);
    if (same && same.type === principalType) return;
    const others = existing.filter((tp) => tp.thingName !== thing.thingName);
    if (principalType === "EXCLUSIVE_THING" && others.length > 0)
      throw invalid(
        `Principal ${arn} is already attached to another thing; it cannot be attached exclusively`,
      );
    if (others.some((tp) => tp.type === "EXCLUSIVE_THING"))
      throw invalid(`Principal ${arn} is exclusively attached to another thing`);
    if (same) same.type = principalType;
    else this.thingPrincipals.push({ thingName: thing.thingName, principal: arn, type: principalType });
    this.save();
  }

  /** Detaching a principal that is not attached succeeds without change (detach calls are idempotent). */
  detachThingPrincipal(thingName: string, principal: string | undefined): void {
    const thing = this.requireThing(thingName);
    const certificate = this.requirePrincipalCertificate(principal);
    const before = this.thingPrincipals.length;
    this.thingPrincipals = this.thingPrincipals.filter(
      (tp) => !(tp.thingName === thing.thingName && tp.principal === certificate.certificateArn),
    );
    if (this.thingPrincipals.length !== before) this.save();
  }

  listThingPrincipals(input: { thingName: string; nextToken?: string; maxResults?: number }) {
    const thing = this.requireThing(input.thingName);
    const principals = this.thingPrincipals
      .filter((tp) => tp.thingName === thing.thingName)
      .map((tp) => tp.principal)
      .sort();
    const page = paginate(principals, input.nextToken, pageLimit(input.maxResults, 25, 250));
    return { principals: page.items, nextToken: page.next };
  }

  listPrincipalThings(input: { principal?: string; nextToken?: string; maxResults?: number }) {
    const certificate = this.requirePrincipalCertificate(input.principal);
    const things = this.thingsForPrincipal(certificate.certificateArn).sort();
    const page = paginate(things, input.nextToken, pageLimit(input.maxResults, 25, 250));
    return { things: page.items, nextToken: page.next };
  }

  // --------------------------------------------------- authorization

  /**
   * TestAuthorization: evaluates each authInfo against the principal's attached policies
   * (plus policyNamesToAdd, minus policyNamesToSkip). An authInfo is ALLOWED only when every
   * resource is allowed; EXPLICIT_DENY when any resource is explicitly denied.
   * The thing-related variables resolve when the clientId names a thing attached to the principal.
   */
  testAuthorization(input: {
    principal?: string;
    clientId?: string;
    authInfos?: { actionType?: string; resources?: string[] }[];
    policyNamesToAdd?: string[];
    policyNamesToSkip?: string[];
  }) {
    const certificate = this.requirePrincipalCertificate(input.principal);
    const authInfos = input.authInfos ?? [];
    if (authInfos.length < 1 || authInfos.length > 10) throw invalid("authInfos must have 1 to 10 entries");
    const skip = new Set(input.policyNamesToSkip ?? []);
    const names = [...this.policyTargets.entries()]
      .filter(([name, targets]) => targets.has(certificate.certificateArn) && !skip.has(name))
      .map(([name]) => name);
    for (const name of input.policyNamesToAdd ?? []) {
      this.requirePolicy(name);
      if (!names.includes(name)) names.push(name);
    }
    const documents = names.map((name) => this.defaultDocument(name) ?? "");
    const cert = parseCertificate(certificate.certificatePem);
    const context: EvaluationContext = { certificateId: certificate.certificateId };
    if (input.clientId !== undefined) context.clientId = input.clientId;
    if (cert) {
      const cn = commonNameOf(cert);
      if (cn !== undefined) context.subjectCommonName = cn;
      const serial = cert.subjectName.getField("serialNumber")[0];
      if (serial !== undefined) context.subjectSerialNumber = serial;
      context.certificateSerialNumber = cert.serialNumber;
    }
    if (
      input.clientId !== undefined &&
      this.thingsForPrincipal(certificate.certificateArn).includes(input.clientId)
    ) {
      const thing = this.things.get(input.clientId);
      if (thing) {
        context.thingName = thing.thingName;
        context.isAttached = true;
        context.thingAttributes = { ...thing.attributes };
        if (thing.thingTypeName !== undefined) context.thingTypeName = thing.thingTypeName;
      }
    } else {
      context.isAttached = false;
    }
    const actions: Record<string, string> = {
      PUBLISH: "iot:Publish",
      SUBSCRIBE: "iot:Subscribe",
      RECEIVE: "iot:Receive",
      CONNECT: "iot:Connect",
    };
    const policyRef = (index: number) => {
      const name = names[index] ?? "";
      return { policyName: name, policyArn: this.arn("policy", name) };
    };
    return {
      authResults: authInfos.map((authInfo) => {
        const action = actions[authInfo.actionType ?? ""];
        if (!action) throw invalid(`Invalid actionType: ${authInfo.actionType ?? "(missing)"}`);
        const resources = authInfo.resources ?? [];
        if (resources.length === 0) throw invalid("Each authInfo needs at least one resource");
        const allowedBy = new Set<number>();
        const deniedBy = new Set<number>();
        let allAllowed = true;
        for (const resource of resources) {
          const result = evaluateDetailed(documents, { action, resource, context });
          for (const i of result.allowedBy) allowedBy.add(i);
          for (const i of result.deniedBy) deniedBy.add(i);
          if (!result.allowed) allAllowed = false;
        }
        const decision = deniedBy.size > 0 ? "EXPLICIT_DENY" : allAllowed ? "ALLOWED" : "IMPLICIT_DENY";
        const implicit = names.map((_, i) => i).filter((i) => !allowedBy.has(i) && !deniedBy.has(i));
        return {
          authInfo: { actionType: authInfo.actionType, resources: [...resources] },
          allowed: { policies: [...allowedBy].map(policyRef) },
          denied: {
            implicitDeny: { policies: decision === "IMPLICIT_DENY" ? implicit.map(policyRef) : [] },
            explicitDeny: { policies: [...deniedBy].map(policyRef) },
          },
          authDecision: decision,
          missingContextValues: [] as string[],
        };
      }),
    };
  }

  describeEndpoint(endpointType: string | undefined): { endpointAddress: string } {
    const type = endpointType ?? "iot:Data";
    if (!["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"].includes(type))
      throw invalid(`Invalid endpointType: ${type}`);
    return { endpointAddress: this.endpointAddress };
  }

  // --------------------------------------------------------- persistence

  private snapshot(): PersistedState {
    return {
      format: 1,
      ...(this.registrationCode ? { registrationCode: this.registrationCode } : {}),
      certificates: [...this.certificates.values()],
      caCertificates: [...this.caCertificates.values()],
      things: [...this.things.values()],
      thingTypes: [...this.thingTypes.values()],
      thingGroups: [...this.thingGroups.values()],
      groupMembers: [...this.groupMembers.entries()].map(([g, m]) => [g, [...m]]),
      policies: [...this.policies.values()],
      policyTargets: [...this.policyTargets.entries()].map(([p, t]) => [p, [...t]]),
      thingPrincipals: this.thingPrincipals,
    };
  }

  /** Writes `<dataDir>/iot.json` atomically (temp file + rename); no-op without a data dir. */
  private save(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(this.snapshot()));
    renameSync(temp, this.file);
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const state = JSON.parse(text) as PersistedState;
    if (state.format !== 1) throw new Error(`${file}: unsupported state format ${String(state.format)}`);
    this.registrationCode = state.registrationCode;
    for (const c of state.certificates) this.certificates.set(c.certificateId, c);
    for (const c of state.caCertificates) this.caCertificates.set(c.certificateId, c);
    for (const t of state.things) this.things.set(t.thingName, t);
    for (const t of state.thingTypes) this.thingTypes.set(t.thingTypeName, t);
    for (const g of state.thingGroups) this.thingGroups.set(g.thingGroupName, g);
    for (const [g, m] of state.groupMembers) this.groupMembers.set(g, new Set(m));
    for (const p of state.policies) this.policies.set(p.policyName, p);
    for (const [p, t] of state.policyTargets) this.policyTargets.set(p, new Set(t));
    this.thingPrincipals = state.thingPrincipals;
  }
}
