import { EventEmitter } from "node:events";
import type { CertificateVariables, Connection, TestAuthorizationInput } from "./authorization.ts";
import * as authorization from "./authorization.ts";
import type {
  CaMatch,
  ListCaCertificatesInput,
  RegisterCaCertificateInput,
  UpdateCaCertificateInput,
} from "./ca-certificates.ts";
import * as caCertificates from "./ca-certificates.ts";
import type { ListCertificatesInput, RegisterCertificateInput } from "./certificates.ts";
import * as certificates from "./certificates.ts";
import { invalid } from "./errors.ts";
import { RateLimiter } from "./limits.ts";
import type { CreatePolicyVersionInput, PagedByMarker } from "./policies.ts";
import * as policies from "./policies.ts";
import type { PagedByToken } from "./principals.ts";
import * as principals from "./principals.ts";
import {
  type ArnKind,
  type CaCertificateRecord,
  type CertificateRecord,
  type IotRegistryEvents,
  IotState,
  type PersistedState,
  type ThingRecord,
  type ThingTypeRecord,
} from "./state.ts";
import type { CreateThingGroupInput, MembershipInput } from "./thing-groups.ts";
import * as thingGroups from "./thing-groups.ts";
import type { CreateThingTypeInput } from "./thing-types.ts";
import * as thingTypes from "./thing-types.ts";
import type { CreateThingInput, ListThingsInput, UpdateThingInput } from "./things.ts";
import * as things from "./things.ts";
import { certificateIdOf, parseCertificate } from "./x509.ts";

export type { CertificateVariables, Connection } from "./authorization.ts";
export type { CaMatch } from "./ca-certificates.ts";
export type {
  AutoRegistrationStatus,
  CaCertificateRecord,
  CaCertificateStatus,
  CertificateMode,
  CertificateRecord,
  CertificateStatus,
  IotRegistryEvents,
  PolicyRecord,
  RegistrationConfig,
  ThingGroupRecord,
  ThingPrincipalType,
  ThingRecord,
  ThingTypeRecord,
  Validity,
} from "./state.ts";

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

const ENDPOINT_TYPES = ["iot:Data", "iot:Data-ATS", "iot:CredentialProvider", "iot:Jobs"];

/**
 * The AWS IoT control-plane emulator of one account and region: certificates, CA certificates,
 * things, thing types and groups, policies and their attachments, each family in its own module
 * over one shared state.
 *
 * The operation methods (named after the AWS operations) throw `IotError`s carrying the
 * AWS error code; the HTTP layer serialises them. The gateway-facing helpers
 * (`findCaForCertificate`, `describeCertificateById`, `autoRegisterCertificate`, `authorize`,
 * `policiesForPrincipal`, `thingsForPrincipal`, ...) are for code in the same process.
 */
export class IotRegistry extends EventEmitter<IotRegistryEvents> {
  readonly region: string;
  readonly accountId: string;
  readonly endpointAddress: string;
  private readonly limiter: RateLimiter;
  private readonly state: IotState;

  constructor(options: IotRegistryOptions) {
    super();
    this.region = options.region;
    this.accountId = options.accountId;
    this.endpointAddress = options.endpointAddress ?? "localhost";
    this.limiter = options.limiter ?? new RateLimiter(false);
    this.state = new IotState({
      region: options.region,
      accountId: options.accountId,
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      events: this,
    });
  }

  /** The ARN of a resource of this account and region. */
  arn(kind: ArnKind, id: string): string {
    return this.state.arn(kind, id);
  }

  /** Certificate id from a certificate ARN of this account and region; undefined otherwise. */
  certificateIdFromArn(arn: string): string | undefined {
    return this.state.certificateIdFromArn(arn);
  }

  // ------------------------------------------------------ gateway helpers

  /** A deep copy of everything the registry holds (what `iot.json` persists), for checks and tests. */
  inventory(): PersistedState {
    return structuredClone(this.state.snapshot());
  }

  /** The certificate record for an id, or undefined. */
  describeCertificateById(certificateId: string): CertificateRecord | undefined {
    return certificates.describeCertificateById(this.state, certificateId);
  }

  /** The CA certificate record for an id, or undefined. */
  describeCaCertificateById(caCertificateId: string): CaCertificateRecord | undefined {
    return caCertificates.describeCaCertificateById(this.state, caCertificateId);
  }

  /** The thing record for a name, or undefined. */
  describeThingByName(thingName: string): ThingRecord | undefined {
    return things.describeThingByName(this.state, thingName);
  }

  /** The certificate id (SHA-256 of the DER) of a PEM or DER certificate; undefined if unparsable. */
  certificateIdOf(derOrPem: string | Uint8Array): string | undefined {
    const cert = parseCertificate(derOrPem);
    return cert ? certificateIdOf(cert) : undefined;
  }

  /** The registered CA that directly issued a certificate (PEM or DER), or undefined. */
  findCaForCertificate(derOrPem: string | Uint8Array): Promise<CaMatch | undefined> {
    return caCertificates.findCaForCertificate(this.state, derOrPem);
  }

  /** Just-in-time registration of a device certificate as PENDING_ACTIVATION with its CA. */
  autoRegisterCertificate(pem: string, caCertificateId: string): Promise<CertificateRecord> {
    return certificates.autoRegisterCertificate(this.state, this.limiter, pem, caCertificateId);
  }

  /** Default-version documents of the policies attached directly to a principal (certificate ARN). */
  policiesForPrincipal(principal: string): string[] {
    return policies.policiesForPrincipal(this.state, principal);
  }

  /** Names of the things a principal (certificate ARN) is attached to. */
  thingsForPrincipal(principal: string): string[] {
    return principals.thingsForPrincipal(this.state, principal);
  }

  /** The policy variables a certificate (PEM or DER) provides; undefined when it does not parse. */
  certificateVariables(derOrPem: string | Uint8Array): CertificateVariables | undefined {
    return authorization.certificateVariables(derOrPem);
  }

  /** Whether a connection's effective policies allow an action on a resource, as AWS IoT Core decides. */
  authorize(connection: Connection, action: string, resource: string) {
    return authorization.authorize(this.state, connection, action, resource);
  }

  // --------------------------------------------------------- certificates

  /** DescribeCertificate. */
  describeCertificate(certificateId: string): CertificateRecord {
    return certificates.describeCertificate(this.state, certificateId);
  }

  /** RegisterCertificate. */
  registerCertificate(input: RegisterCertificateInput) {
    return certificates.registerCertificate(this.state, input);
  }

  /** RegisterCertificateWithoutCA. */
  registerCertificateWithoutCA(input: { certificatePem?: string; status?: string }) {
    return certificates.registerCertificateWithoutCA(this.state, input);
  }

  /** UpdateCertificate. */
  updateCertificate(certificateId: string, newStatus: string | undefined): void {
    certificates.updateCertificate(this.state, certificateId, newStatus);
  }

  /** DeleteCertificate. */
  deleteCertificate(certificateId: string, forceDelete: boolean): void {
    certificates.deleteCertificate(this.state, certificateId, forceDelete);
  }

  /** ListCertificates and ListCertificatesByCA. */
  listCertificates(input: ListCertificatesInput) {
    return certificates.listCertificates(this.state, input);
  }

  // ------------------------------------------------------- CA certificates

  /** GetRegistrationCode. */
  getRegistrationCode(): string {
    return caCertificates.getRegistrationCode(this.state);
  }

  /** DeleteRegistrationCode. */
  deleteRegistrationCode(): void {
    caCertificates.deleteRegistrationCode(this.state);
  }

  /** RegisterCACertificate. */
  registerCACertificate(input: RegisterCaCertificateInput) {
    return caCertificates.registerCACertificate(this.state, input);
  }

  /** DescribeCACertificate. */
  describeCACertificate(certificateId: string): CaCertificateRecord {
    return caCertificates.describeCACertificate(this.state, certificateId);
  }

  /** UpdateCACertificate. */
  updateCACertificate(input: UpdateCaCertificateInput): void {
    caCertificates.updateCACertificate(this.state, input);
  }

  /** DeleteCACertificate. */
  deleteCACertificate(certificateId: string): void {
    caCertificates.deleteCACertificate(this.state, certificateId);
  }

  /** ListCACertificates. */
  listCACertificates(input: ListCaCertificatesInput) {
    return caCertificates.listCACertificates(this.state, input);
  }

  // ------------------------------------------------------------- things

  /** CreateThing. */
  createThing(input: CreateThingInput) {
    return things.createThing(this.state, input);
  }

  /** DescribeThing. */
  describeThing(thingName: string) {
    return things.describeThing(this.state, thingName);
  }

  /** UpdateThing. */
  updateThing(input: UpdateThingInput): void {
    things.updateThing(this.state, input);
  }

  /** DeleteThing (a thing that does not exist is deleted without error, as in AWS). */
  deleteThing(thingName: string, expectedVersion: number | undefined): void {
    things.deleteThing(this.state, thingName, expectedVersion);
  }

  /** ListThings. */
  listThings(input: ListThingsInput) {
    return things.listThings(this.state, input);
  }

  // -------------------------------------------------------- thing types

  /** CreateThingType. */
  createThingType(input: CreateThingTypeInput) {
    return thingTypes.createThingType(this.state, input);
  }

  /** DescribeThingType. */
  describeThingType(thingTypeName: string): ThingTypeRecord {
    return thingTypes.describeThingType(this.state, thingTypeName);
  }

  // ------------------------------------------------------- thing groups

  /** CreateThingGroup. */
  createThingGroup(input: CreateThingGroupInput) {
    return thingGroups.createThingGroup(this.state, input);
  }

  /** DescribeThingGroup. */
  describeThingGroup(thingGroupName: string) {
    return thingGroups.describeThingGroup(this.state, thingGroupName);
  }

  /** AddThingToThingGroup. */
  addThingToThingGroup(input: MembershipInput): void {
    thingGroups.addThingToThingGroup(this.state, input);
  }

  /** RemoveThingFromThingGroup. */
  removeThingFromThingGroup(input: MembershipInput): void {
    thingGroups.removeThingFromThingGroup(this.state, input);
  }

  /** ListThingGroupsForThing. */
  listThingGroupsForThing(input: PagedByToken & { thingName: string }) {
    return thingGroups.listThingGroupsForThing(this.state, input);
  }

  // ----------------------------------------------------------- policies

  /** CreatePolicy. */
  createPolicy(input: { policyName: string; policyDocument?: string }) {
    return policies.createPolicy(this.state, input);
  }

  /** GetPolicy. */
  getPolicy(policyName: string) {
    return policies.getPolicy(this.state, policyName);
  }

  /** CreatePolicyVersion. */
  createPolicyVersion(input: CreatePolicyVersionInput) {
    return policies.createPolicyVersion(this.state, input);
  }

  /** DeletePolicyVersion. */
  deletePolicyVersion(policyName: string, versionId: string): void {
    policies.deletePolicyVersion(this.state, policyName, versionId);
  }

  /** ListPolicyVersions. */
  listPolicyVersions(policyName: string) {
    return policies.listPolicyVersions(this.state, policyName);
  }

  /** SetDefaultPolicyVersion. */
  setDefaultPolicyVersion(policyName: string, versionId: string): void {
    policies.setDefaultPolicyVersion(this.state, policyName, versionId);
  }

  /** DeletePolicy. */
  deletePolicy(policyName: string): void {
    policies.deletePolicy(this.state, policyName);
  }

  /** AttachPolicy. */
  attachPolicy(policyName: string, target: string | undefined): void {
    policies.attachPolicy(this.state, policyName, target);
  }

  /** DetachPolicy. */
  detachPolicy(policyName: string, target: string | undefined): void {
    policies.detachPolicy(this.state, policyName, target);
  }

  /** ListAttachedPolicies (recursive: a thing group's parents' policies too). */
  listAttachedPolicies(input: PagedByMarker & { target: string; recursive?: boolean }) {
    return policies.listAttachedPolicies(this.state, input);
  }

  /** ListTargetsForPolicy. */
  listTargetsForPolicy(input: PagedByMarker & { policyName: string }) {
    return policies.listTargetsForPolicy(this.state, input);
  }

  // --------------------------------------------------- thing principals

  /** AttachThingPrincipal. */
  attachThingPrincipal(thingName: string, principal: string | undefined, type: string | undefined): void {
    principals.attachThingPrincipal(this.state, thingName, principal, type);
  }

  /** DetachThingPrincipal. */
  detachThingPrincipal(thingName: string, principal: string | undefined): void {
    principals.detachThingPrincipal(this.state, thingName, principal);
  }

  /** ListThingPrincipals. */
  listThingPrincipals(input: PagedByToken & { thingName: string }) {
    return principals.listThingPrincipals(this.state, input);
  }

  /** ListPrincipalThings. */
  listPrincipalThings(input: PagedByToken & { principal?: string }) {
    return principals.listPrincipalThings(this.state, input);
  }

  /** ListThingPrincipalsV2. */
  listThingPrincipalsV2(input: PagedByToken & { thingName: string; thingPrincipalType?: string }) {
    return principals.listThingPrincipalsV2(this.state, input);
  }

  /** ListPrincipalThingsV2. */
  listPrincipalThingsV2(input: PagedByToken & { principal?: string; thingPrincipalType?: string }) {
    return principals.listPrincipalThingsV2(this.state, input);
  }

  // ------------------------------------------------------ authorization

  /** TestAuthorization, over the same effective policies as the device gateway. */
  /** GetEffectivePolicies: the principal's policies and those of the thing's groups (parents included). */
  getEffectivePolicies(input: { principal?: string; thingName?: string }) {
    return authorization.getEffectivePolicies(this.state, input);
  }

  testAuthorization(input: TestAuthorizationInput) {
    return authorization.testAuthorization(this.state, input);
  }

  /** DescribeEndpoint: every endpoint type answers with the configured host name. */
  describeEndpoint(endpointType: string | undefined): { endpointAddress: string } {
    const type = endpointType ?? "iot:Data";
    if (!ENDPOINT_TYPES.includes(type)) throw invalid(`Invalid endpointType: ${type}`);
    return { endpointAddress: this.endpointAddress };
  }
}
