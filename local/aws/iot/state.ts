import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { CertificateStatus } from "../../../domain/types.ts";
import { CERTIFICATE_ID } from "./common.ts";

/**
 * The IoT emulator's records and their store: one in-process state shared by the resource
 * families (certificates, CA certificates, things, thing types, thing groups, policies,
 * thing principals), saved to `<dataDir>/iot.json` after every change when a data dir is set.
 */

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

export interface ThingPrincipal {
  thingName: string;
  principal: string;
  type: ThingPrincipalType;
}

export interface IotRegistryEvents {
  /** A device certificate's status changed through UpdateCertificate. */
  certificateStatusChanged: [certificateId: string, status: CertificateStatus];
  /** A device certificate was deleted. */
  certificateDeleted: [certificateId: string];
  /** A CA certificate's status or auto-registration status changed, or it was deleted (status undefined). */
  caCertificateChanged: [caCertificateId: string, status: CaCertificateStatus | undefined];
}

/** Where the resource families announce changes that code in the same process listens to. */
export interface IotAnnouncer {
  emit<K extends keyof IotRegistryEvents>(event: K, ...args: IotRegistryEvents[K]): boolean;
}

export type ArnKind = "cert" | "cacert" | "thing" | "thingtype" | "thinggroup" | "policy";

/** Everything the emulator holds, as plain data: what `iot.json` persists. */
export interface PersistedState {
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

/** The emulator's records of one account and region, with their persistence. */
export class IotState {
  readonly region: string;
  readonly accountId: string;
  readonly events: IotAnnouncer;
  private readonly file: string | undefined;

  registrationCode: string | undefined;
  readonly certificates = new Map<string, CertificateRecord>();
  readonly caCertificates = new Map<string, CaCertificateRecord>();
  readonly things = new Map<string, ThingRecord>();
  readonly thingTypes = new Map<string, ThingTypeRecord>();
  readonly thingGroups = new Map<string, ThingGroupRecord>();
  /** group name -> thing names */
  readonly groupMembers = new Map<string, Set<string>>();
  readonly policies = new Map<string, PolicyRecord>();
  /** policy name -> targets (certificate ARNs, thing group ARNs, Cognito identity ids) */
  readonly policyTargets = new Map<string, Set<string>>();
  thingPrincipals: ThingPrincipal[] = [];

  constructor(options: { region: string; accountId: string; dataDir?: string; events: IotAnnouncer }) {
    this.region = options.region;
    this.accountId = options.accountId;
    this.events = options.events;
    this.file = options.dataDir ? `${options.dataDir}/iot.json` : undefined;
    if (this.file) this.load(this.file);
  }

  /** The ARN of a resource of this account and region. */
  arn(kind: ArnKind, id: string): string {
    return `arn:aws:iot:${this.region}:${this.accountId}:${kind}/${id}`;
  }

  /** Certificate id from a certificate ARN of this account and region; undefined otherwise. */
  certificateIdFromArn(arn: string): string | undefined {
    const prefix = this.arn("cert", "");
    if (!arn.startsWith(prefix)) return undefined;
    const id = arn.slice(prefix.length);
    return CERTIFICATE_ID.test(id) ? id : undefined;
  }

  /** Writes `<dataDir>/iot.json` atomically (temp file + rename); no-op without a data dir. */
  save(): void {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const temp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(this.snapshot()));
    renameSync(temp, this.file);
  }

  /** The state as plain data (shared objects: copy before changing them). */
  snapshot(): PersistedState {
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
