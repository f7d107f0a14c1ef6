import { AlreadyExistsError, ConflictError, JitrError, NotFoundError } from "../../domain/errors.ts";
import type {
  AllowlistPort,
  AllowlistStore,
  BindingClaim,
  CertificateDescription,
  ClockPort,
  IotInventoryPort,
  IotPort,
  LedgerPort,
  LedgerStore,
  LotMark,
  LotPlace,
  LotPort,
  LotStore,
  MappingPort,
  MappingStore,
  PolicyDescription,
  PolicyVersion,
  TakeOutcome,
  ThingDescription,
} from "../../domain/ports.ts";
import type { ProvisionSettings } from "../../domain/provision.ts";
import type { RetryPolicy } from "../../domain/retry.ts";
import type {
  AllowlistRecord,
  CertificateStatus,
  LedgerEntry,
  Lot,
  PolicyMapping,
} from "../../domain/types.ts";

type IotMethod = keyof IotPort | keyof IotInventoryPort;

/** The ARN the fake gives a thing group. */
export const groupArn = (name: string): string => `arn:aws:iot:eu-west-1:123456789012:thinggroup/${name}`;

/** An in-memory IoT registry with the semantics the domain relies on, and fault injection per method. */
export class FakeIot implements IotPort, IotInventoryPort {
  readonly calls: { method: IotMethod; args: unknown[] }[] = [];
  readonly certificates = new Map<string, CertificateDescription>();
  readonly things = new Map<string, ThingDescription>();
  readonly thingTypes = new Map<string, { deprecated: boolean }>();
  readonly thingGroups = new Map<string, Set<string>>();
  /** group name -> its parent group */
  readonly groupParents = new Map<string, string>();
  readonly policies = new Map<
    string,
    { versions: { id: string; document: string; createdAt: Date }[]; defaultId: string }
  >();
  /** policy name -> certificate ARNs */
  readonly policyTargets = new Map<string, Set<string>>();
  /** thing name -> certificate ARNs */
  readonly thingPrincipals = new Map<string, Set<string>>();
  private readonly faults = new Map<IotMethod, { error: () => Error; times: number }[]>();
  private versionCounter = 0;

  /** Makes the next `times` calls of `method` throw. */
  failOn(method: IotMethod, error: () => Error, times = Number.POSITIVE_INFINITY): void {
    const list = this.faults.get(method) ?? [];
    list.push({ error, times });
    this.faults.set(method, list);
  }

  addCertificate(
    certificateId: string,
    pem: string,
    caCertificateId: string,
    status: CertificateStatus = "PENDING_ACTIVATION",
  ): string {
    const certificateArn = `arn:aws:iot:us-east-1:123456789012:cert/${certificateId}`;
    this.certificates.set(certificateId, {
      certificateId,
      certificateArn,
      status,
      certificatePem: pem,
      caCertificateId,
    });
    return certificateArn;
  }

  statusOf(certificateId: string): CertificateStatus | undefined {
    return this.certificates.get(certificateId)?.status;
  }

  private enter(method: IotMethod, args: unknown[]): void {
    this.calls.push({ method, args });
    const fault = this.faults.get(method)?.find((f) => f.times > 0);
    if (fault) {
      fault.times -= 1;
      throw fault.error();
    }
  }

  methods(): IotMethod[] {
    return this.calls.map((c) => c.method);
  }

  async describeCertificate(certificateId: string) {
    this.enter("describeCertificate", [certificateId]);
    const cert = this.certificates.get(certificateId);
    return cert ? { ...cert } : undefined;
  }
  async updateCertificateStatus(certificateId: string, status: "ACTIVE" | "INACTIVE" | "REVOKED") {
    this.enter("updateCertificateStatus", [certificateId, status]);
    const cert = this.certificates.get(certificateId);
    if (!cert) throw new NotFoundError(`certificate ${certificateId}`);
    if (cert.status === "REVOKED") throw new JitrError("certificate is revoked");
    cert.status = status;
  }
  async describeThingType(name: string) {
    this.enter("describeThingType", [name]);
    return this.thingTypes.get(name);
  }
  async describeThing(name: string) {
    this.enter("describeThing", [name]);
    return this.things.get(name);
  }
  async createThing(thing: ThingDescription) {
    this.enter("createThing", [thing]);
    const existing = this.things.get(thing.thingName);
    if (existing) {
      if (JSON.stringify(existing) === JSON.stringify(thing)) return;
      throw new AlreadyExistsError(`thing ${thing.thingName}`);
    }
    this.things.set(thing.thingName, { ...thing, attributes: { ...thing.attributes } });
  }
  async updateThing(thing: ThingDescription) {
    this.enter("updateThing", [thing]);
    if (!this.things.has(thing.thingName)) throw new NotFoundError(`thing ${thing.thingName}`);
    this.things.set(thing.thingName, { ...thing });
  }
  async deleteThing(name: string) {
    this.enter("deleteThing", [name]);
    if ((this.thingPrincipals.get(name)?.size ?? 0) > 0) throw new JitrError(`thing ${name} has principals`);
    this.things.delete(name);
    for (const members of this.thingGroups.values()) members.delete(name);
  }
  async addThingToThingGroup(thingName: string, group: string) {
    this.enter("addThingToThingGroup", [thingName, group]);
    const members = this.thingGroups.get(group);
    if (!members) throw new NotFoundError(`thing group ${group}`);
    if (!this.things.has(thingName)) throw new NotFoundError(`thing ${thingName}`);
    members.add(thingName);
  }
  async describeThingGroup(name: string) {
    this.enter("describeThingGroup", [name]);
    return this.thingGroups.has(name)
      ? { thingGroupName: name, thingGroupArn: groupArn(name), parentGroupNames: this.parentsOf(name) }
      : undefined;
  }
  async getPolicy(name: string): Promise<PolicyDescription | undefined> {
    this.enter("getPolicy", [name]);
    const policy = this.policies.get(name);
    if (!policy) return undefined;
    const current = policy.versions.find((v) => v.id === policy.defaultId);
    return { policyName: name, document: current?.document ?? "", defaultVersionId: policy.defaultId };
  }
  async createPolicy(name: string, document: string) {
    this.enter("createPolicy", [name, document]);
    if (this.policies.has(name)) throw new AlreadyExistsError(`policy ${name}`);
    this.policies.set(name, {
      versions: [{ id: "1", document, createdAt: new Date(this.versionCounter++) }],
      defaultId: "1",
    });
  }
  async listPolicyVersions(name: string): Promise<PolicyVersion[]> {
    this.enter("listPolicyVersions", [name]);
    const policy = this.policies.get(name);
    if (!policy) throw new NotFoundError(`policy ${name}`);
    return policy.versions.map((v) => ({
      versionId: v.id,
      isDefault: v.id === policy.defaultId,
      createdAt: v.createdAt,
    }));
  }
  async createPolicyVersion(name: string, document: string) {
    this.enter("createPolicyVersion", [name, document]);
    const policy = this.policies.get(name);
    if (!policy) throw new NotFoundError(`policy ${name}`);
    if (policy.versions.length >= 5) throw new JitrError("VersionsLimitExceeded");
    const id = String(Math.max(...policy.versions.map((v) => Number(v.id))) + 1);
    policy.versions.push({ id, document, createdAt: new Date(this.versionCounter++) });
    policy.defaultId = id;
  }
  async deletePolicyVersion(name: string, versionId: string) {
    this.enter("deletePolicyVersion", [name, versionId]);
    const policy = this.policies.get(name);
    if (!policy) throw new NotFoundError(`policy ${name}`);
    policy.versions = policy.versions.filter((v) => v.id !== versionId);
  }
  async deletePolicy(name: string) {
    this.enter("deletePolicy", [name]);
    if ((this.policyTargets.get(name)?.size ?? 0) > 0) throw new JitrError(`policy ${name} is attached`);
    this.policies.delete(name);
  }
  async attachPolicy(name: string, arn: string) {
    this.enter("attachPolicy", [name, arn]);
    if (!this.policies.has(name)) throw new NotFoundError(`policy ${name}`);
    this.policyTargets.set(name, (this.policyTargets.get(name) ?? new Set()).add(arn));
  }
  async detachPolicy(name: string, arn: string) {
    this.enter("detachPolicy", [name, arn]);
    this.policyTargets.get(name)?.delete(arn);
  }
  async attachThingPrincipal(thingName: string, arn: string) {
    this.enter("attachThingPrincipal", [thingName, arn]);
    if (!this.things.has(thingName)) throw new NotFoundError(`thing ${thingName}`);
    // Attached exclusively (EXCLUSIVE_THING), as the adapter does: never to a second thing.
    const other = [...this.thingPrincipals].find(([name, arns]) => name !== thingName && arns.has(arn));
    if (other) throw new JitrError(`certificate ${arn} is attached to thing ${other[0]}`);
    this.thingPrincipals.set(thingName, (this.thingPrincipals.get(thingName) ?? new Set()).add(arn));
  }
  async detachThingPrincipal(thingName: string, arn: string) {
    this.enter("detachThingPrincipal", [thingName, arn]);
    this.thingPrincipals.get(thingName)?.delete(arn);
  }
  /** The parents of a group, nearest first. */
  parentsOf(name: string): string[] {
    const out: string[] = [];
    for (
      let p = this.groupParents.get(name);
      p !== undefined && !out.includes(p);
      p = this.groupParents.get(p)
    )
      out.push(p);
    return out;
  }
  async listAttachedPolicies(target: string) {
    this.enter("listAttachedPolicies", [target]);
    return [...this.policyTargets].filter(([, targets]) => targets.has(target)).map(([name]) => name);
  }
  async listPrincipalThings(principal: string) {
    this.enter("listPrincipalThings", [principal]);
    return [...this.thingPrincipals].filter(([, arns]) => arns.has(principal)).map(([name]) => name);
  }
  async listThingPrincipals(thingName: string) {
    this.enter("listThingPrincipals", [thingName]);
    if (!this.things.has(thingName)) throw new NotFoundError(`thing ${thingName}`);
    return [...(this.thingPrincipals.get(thingName) ?? [])];
  }
  async listThingGroupsForThing(thingName: string) {
    this.enter("listThingGroupsForThing", [thingName]);
    if (!this.things.has(thingName)) throw new NotFoundError(`thing ${thingName}`);
    return [...this.thingGroups].filter(([, members]) => members.has(thingName)).map(([name]) => name);
  }
  async removeThingFromThingGroup(thingName: string, group: string) {
    this.enter("removeThingFromThingGroup", [thingName, group]);
    const members = this.thingGroups.get(group);
    if (!members) throw new NotFoundError(`thing group ${group}`);
    members.delete(thingName);
  }
}

/** Faults and interference for one fake store. */
export class Interference<M extends string> {
  readonly calls: M[] = [];
  readonly #faults = new Map<M, { error: () => Error; times: number }[]>();
  #beforeWrite: (() => void) | undefined;

  /** Makes the next `times` calls of `method` throw. */
  failOn(method: M, error: () => Error, times = Number.POSITIVE_INFINITY): void {
    this.#faults.set(method, [...(this.#faults.get(method) ?? []), { error, times }]);
  }

  /** Runs `change` just before the next conditional write, as another writer would. */
  beforeNextWrite(change: () => void): void {
    this.#beforeWrite = change;
  }

  enter(method: M): void {
    this.calls.push(method);
    const fault = this.#faults.get(method)?.find((f) => f.times > 0);
    if (fault) {
      fault.times -= 1;
      throw fault.error();
    }
  }

  write(): void {
    const change = this.#beforeWrite;
    this.#beforeWrite = undefined;
    change?.();
  }
}

/**
 * Allowlist records in memory, with the binding's conditional-write semantics (those of the DynamoDB
 * adapter: a claim succeeds when the record is still bound as the claim expects).
 */
export class MemoryAllowlist extends Interference<keyof AllowlistStore> implements AllowlistPort {
  readonly records = new Map<string, AllowlistRecord>();
  constructor(records: AllowlistRecord[] = []) {
    super();
    for (const r of records) this.records.set(r.deviceId, structuredClone(r));
  }
  async get(deviceId: string) {
    this.enter("get");
    const r = this.records.get(deviceId);
    return r ? structuredClone(r) : undefined;
  }
  async claimBinding(claim: BindingClaim) {
    this.enter("claimBinding");
    // Yield first, so concurrent runs interleave as they would against a remote table.
    await Promise.resolve();
    if (claim.certificateId === claim.expectedCertificateId) return true;
    const r = this.records.get(claim.deviceId);
    if (!r || r.certificateId !== claim.expectedCertificateId) return false;
    r.certificateId = claim.certificateId;
    return true;
  }
  async completeBinding(b: {
    deviceId: string;
    certificateId: string;
    thingName: string;
    policyName?: string;
    provisionedAt: string;
    lot?: string;
  }) {
    this.enter("completeBinding");
    const r = this.records.get(b.deviceId);
    if (!r || r.certificateId !== b.certificateId) throw new ConflictError("binding lost");
    if (r.status === "blocked") throw new ConflictError("record blocked");
    if (b.lot !== undefined && (r.lotCounted !== b.lot || r.lotReleaseStartedAt !== undefined))
      throw new ConflictError("lot place lost");
    Object.assign(r, { thingName: b.thingName, policyName: b.policyName, provisionedAt: b.provisionedAt });
    if (b.policyName === undefined) delete r.policyName;
  }
  async releaseBinding(claim: BindingClaim) {
    this.enter("releaseBinding");
    const r = this.records.get(claim.deviceId);
    if (!r || r.certificateId !== claim.certificateId) return;
    if (claim.expectedCertificateId === undefined) delete r.certificateId;
    else r.certificateId = claim.expectedCertificateId;
  }
}

/** Policy mappings in memory. */
export class MemoryMappings extends Interference<keyof MappingStore> implements MappingPort {
  readonly mappings = new Map<string, PolicyMapping>();
  constructor(mappings: PolicyMapping[] = []) {
    super();
    for (const m of mappings) this.mappings.set(m.selector, structuredClone(m));
  }
  async getMany(selectors: string[]) {
    this.enter("getMany");
    return selectors.flatMap((s) => {
      const m = this.mappings.get(s);
      return m ? [structuredClone(m)] : [];
    });
  }
}

/** Lots in memory, with the count's conditional increment. */
export class MemoryLots extends Interference<keyof LotStore> implements LotPort {
  readonly lots = new Map<string, Lot>();
  constructor(
    lots: Lot[] = [],
    private readonly allowlist?: { records: Map<string, AllowlistRecord> },
  ) {
    super();
    for (const l of lots) this.lots.set(l.lot, structuredClone(l));
  }
  async get(lot: string) {
    this.enter("get");
    const l = this.lots.get(lot);
    return l ? structuredClone(l) : undefined;
  }
  /**
   * Marks the record and counts the device in one step (nothing between them can run), as the
   * DynamoDB transaction writes both items or neither.
   */
  async takePlace(mark: LotMark): Promise<TakeOutcome> {
    this.enter("takePlace");
    // Yield first, so concurrent runs interleave as they would against a remote table.
    await Promise.resolve();
    const r = this.records().get(mark.deviceId);
    if (!r || r.certificateId !== mark.certificateId || r.lotCounted !== undefined) return "lost";
    const l = this.lots.get(mark.lot);
    if (!l || (l.maxDevices !== undefined && l.provisionedCount >= l.maxDevices)) return "full";
    r.lotCounted = mark.lot;
    l.provisionedCount += 1;
    return "counted";
  }
  /** Removes the mark (if the record is as read) and counts one less, in one step. */
  async givePlaceBack(place: LotPlace): Promise<boolean> {
    this.enter("givePlaceBack");
    await Promise.resolve();
    const r = this.records().get(place.deviceId);
    if (
      !r ||
      r.lotCounted !== place.lot ||
      r.certificateId !== place.boundTo ||
      r.lotReleaseStartedAt !== place.releaseClaim
    )
      return false;
    delete r.lotCounted;
    delete r.lotReleaseStartedAt;
    const l = this.lots.get(place.lot);
    if (l) l.provisionedCount -= 1;
    return true;
  }
  /** The allowlist records the places are marked in (the world's allowlist). */
  private records(): Map<string, AllowlistRecord> {
    if (this.allowlist === undefined) throw new Error("MemoryLots: no allowlist to mark places in");
    return this.allowlist.records;
  }
}

/** The ledger in memory, entries in the order appended. */
export class MemoryLedger extends Interference<keyof LedgerStore> implements LedgerPort {
  readonly entries: LedgerEntry[] = [];
  async append(entry: LedgerEntry) {
    this.enter("append");
    this.entries.push(structuredClone(entry));
  }
  async hasTerminalOutcome(certificateId: string) {
    this.enter("hasTerminalOutcome");
    return this.entries.some(
      (e) => e.certificateId === certificateId && (e.kind === "provisioned" || e.kind === "denied"),
    );
  }
}

/** A clock that never waits: sleeping advances time and is recorded. */
export class FakeClock implements ClockPort {
  readonly sleeps: number[] = [];
  constructor(private current = new Date("2026-06-01T12:00:00Z")) {}
  now() {
    return new Date(this.current);
  }
  async sleep(ms: number) {
    this.sleeps.push(ms);
    this.current = new Date(this.current.getTime() + ms);
  }
  set(date: Date) {
    this.current = date;
  }
}

/** The provisioning settings tests run with (us-east-1, account 123456789012, prefix `jitr-`, CN ids). */
export function testSettings(retry: RetryPolicy): ProvisionSettings {
  return {
    region: "us-east-1",
    accountId: "123456789012",
    policyPrefix: "jitr-",
    deviceIdStrategy: "cn",
    retry,
  };
}
