import { PreconditionFailedError, PreconditionRequiredError, StateConflictError } from "./admin-errors.ts";
import { readCertificate } from "./certificate.ts";
import { type Decision, type DecisionInput, decide } from "./decide.ts";
import { deriveDeviceId } from "./device-id.ts";
import { describeError, NotFoundError, ValidationError } from "./errors.ts";
import type {
  AllowlistStore,
  CertificateDescription,
  ClockPort,
  IotInventoryPort,
  IotPort,
  LedgerStore,
  LotStore,
  MappingStore,
  Page,
  PageRequest,
} from "./ports.ts";
import { gatherDecisionInput, type ProvisionResult, type ProvisionSettings, provision } from "./provision.ts";
import {
  allowlistFieldsOf,
  compact,
  type Issue,
  isLotName,
  isThingName,
  selectorProblem,
  statusOmitted,
  type Validated,
  validateAllowlistRecord,
  validateLot,
  validateMapping,
} from "./records.ts";
import { withRetry } from "./retry.ts";
import { mappingSelectors, selectMapping } from "./select-policy.ts";
import type {
  AllowlistRecord,
  CertificateFacts,
  LedgerEntry,
  Lot,
  PolicyMapping,
  RegisteredEvent,
} from "./types.ts";

/*
 * The admin use cases. Every change:
 *  1. validates its input (ValidationError naming each field at fault),
 *  2. checks the caller's precondition (create: none may exist; update: the version they read),
 *  3. writes conditionally (a lost race is PreconditionFailedError, never a silent overwrite),
 *  4. stamps version, createdAt, updatedAt and updatedBy, and
 *  5. appends a ledger entry of kind "admin" naming the actor and the change.
 */

/** What the admin use cases run against. */
export interface AdminDeps {
  iot: IotPort & IotInventoryPort;
  allowlist: AllowlistStore;
  mappings: MappingStore;
  lots: LotStore;
  ledger: LedgerStore;
  clock: ClockPort;
  settings: ProvisionSettings;
}

/** The caller's precondition on a write: create (`If-None-Match: *`) or update (`If-Match: <version>`). */
export type Precondition = { create: true } | { version: number } | undefined;

/** A record with the answer to "was it created?". */
export interface Written<T> {
  value: T;
  created: boolean;
}

/** Ledger key of changes to a mapping ('#' is outside the thing-name set, so no device collides). */
export const mappingLedgerKey = (selector: string): string => `#mapping:${selector}`;
/** Ledger key of changes to a lot. */
export const lotLedgerKey = (lot: string): string => `#lot:${lot}`;

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

const invalid = (issues: Issue[]): ValidationError =>
  new ValidationError(
    issues.length === 1 && issues[0]
      ? `${issues[0].path}: ${issues[0].message}`
      : `${issues.length} fields are invalid`,
    issues,
  );

function valid<T>(validated: Validated<T>): T {
  if (!validated.ok) throw invalid(validated.issues);
  return validated.value;
}

/** Reads `limit` and `cursor` from query parameters: limit 1..1000, default 100. */
export function pageRequest(query: { limit?: string; cursor?: string }): PageRequest {
  let limit = DEFAULT_LIMIT;
  if (query.limit !== undefined) {
    const n = Number(query.limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
      throw invalid([{ path: "limit", message: `must be a whole number from 1 to ${MAX_LIMIT}` }]);
    }
    limit = n;
  }
  return query.cursor === undefined || query.cursor === "" ? { limit } : { limit, cursor: query.cursor };
}

function requireDeviceId(deviceId: string): void {
  if (!isThingName(deviceId)) {
    throw invalid([{ path: "deviceId", message: "must be a thing name ([a-zA-Z0-9:_-]{1,128})" }]);
  }
}

function requirePrecondition(
  precondition: Precondition,
  what: string,
): { create: true } | { version: number } {
  if (precondition === undefined) {
    throw new PreconditionRequiredError(
      `writing ${what} needs If-None-Match: * (to create it) or If-Match: <version> (to update it)`,
    );
  }
  return precondition;
}

/** Checks that an update names the stored version; answers the stored record. */
function checkVersion<T extends { version?: number }>(
  current: T | undefined,
  version: number,
  what: string,
): T {
  if (current === undefined)
    throw new PreconditionFailedError(`${what} does not exist (If-Match: ${version})`);
  const stored = current.version ?? 0;
  if (stored !== version) {
    throw new PreconditionFailedError(
      `${what} is at version ${stored}, not ${version}; read it again and retry`,
    );
  }
  return current;
}

const lostRace = (what: string): PreconditionFailedError =>
  new PreconditionFailedError(`${what} was changed by someone else meanwhile; read it again and retry`);

// ---------------------------------------------------------------- allowlist

/** The allowlist use cases. */
export class AllowlistAdmin {
  constructor(private readonly deps: AdminDeps) {}

  /** One record; NotFoundError when there is none. */
  async get(deviceId: string): Promise<AllowlistRecord> {
    requireDeviceId(deviceId);
    const record = await this.deps.allowlist.get(deviceId);
    if (record === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    return record;
  }

  /** A page of records, filtered by status and/or lot. */
  async list(query: {
    status?: string;
    lot?: string;
    limit?: string;
    cursor?: string;
  }): Promise<Page<AllowlistRecord>> {
    const issues: Issue[] = [];
    if (query.status !== undefined && query.status !== "allowed" && query.status !== "blocked") {
      issues.push({ path: "status", message: "must be allowed or blocked" });
    }
    if (query.lot !== undefined && !isLotName(query.lot)) {
      issues.push({ path: "lot", message: "must be a lot name ([a-zA-Z0-9:_.-]{1,128})" });
    }
    if (issues.length > 0) throw invalid(issues);
    const page = pageRequest(query);
    return this.deps.allowlist.list(
      compact({ status: query.status as AllowlistRecord["status"] | undefined, lot: query.lot }),
      page,
    );
  }

  /** Creates or updates a record (the admin fields; the binding stays the service's). */
  async put(
    actor: string,
    deviceId: string,
    body: unknown,
    precondition: Precondition,
  ): Promise<Written<AllowlistRecord>> {
    const fields = valid(validateAllowlistRecord(body, deviceId));
    const condition = requirePrecondition(precondition, `allowlist record ${deviceId}`);
    const { allowlist, clock } = this.deps;
    const now = clock.now().toISOString();
    const what = `allowlist record ${deviceId}`;
    if ("create" in condition) {
      const record: AllowlistRecord = {
        ...fields,
        version: 1,
        createdAt: now,
        updatedAt: now,
        updatedBy: actor,
      };
      if (!(await allowlist.create(record))) {
        throw new PreconditionFailedError(
          `${what} exists already (If-None-Match: *); update it with If-Match`,
        );
      }
      await this.#ledger(actor, deviceId, { action: "create", after: fields, version: 1 }, now);
      return { value: record, created: true };
    }
    const current = checkVersion(await allowlist.get(deviceId), condition.version, what);
    if (statusOmitted(body)) fields.status = current.status;
    const record: AllowlistRecord = {
      ...bindingOf(current),
      ...fields,
      version: condition.version + 1,
      ...(current.createdAt !== undefined ? { createdAt: current.createdAt } : {}),
      updatedAt: now,
      updatedBy: actor,
    };
    if (!(await allowlist.update(record, condition.version))) throw lostRace(what);
    await this.#ledger(
      actor,
      deviceId,
      { action: "update", before: allowlistFieldsOf(current), after: fields, version: record.version },
      now,
    );
    return { value: record, created: false };
  }

  /** Deletes a record; refused (409) while it is bound to an ACTIVE certificate. */
  async remove(actor: string, deviceId: string, version: number | undefined): Promise<void> {
    requireDeviceId(deviceId);
    const { allowlist, clock } = this.deps;
    const what = `allowlist record ${deviceId}`;
    const current = await allowlist.get(deviceId);
    if (current === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    if (version !== undefined) checkVersion(current, version, what);
    if (current.certificateId !== undefined) {
      const certificateId = current.certificateId;
      const bound = await this.#retry(() => this.deps.iot.describeCertificate(certificateId));
      if (bound?.status === "ACTIVE" || bound?.status === "PENDING_ACTIVATION") {
        throw new StateConflictError(
          `device ${deviceId} is bound to ${bound.status} certificate ${certificateId}; ` +
            `deprovision it first (POST /devices/${deviceId}/deprovision, or jitr deprovision ${deviceId})`,
        );
      }
    }
    if (
      !(await allowlist.remove(deviceId, { version: current.version, certificateId: current.certificateId }))
    ) {
      throw lostRace(what);
    }
    await this.#ledger(
      actor,
      deviceId,
      { action: "delete", before: allowlistFieldsOf(current) },
      clock.now().toISOString(),
    );
  }

  /** Every record's admin fields as JSON lines, in the form import reads back. */
  async *export(): AsyncGenerator<string> {
    let cursor: string | undefined;
    do {
      const page = await this.deps.allowlist.list(
        {},
        cursor === undefined ? { limit: 500 } : { limit: 500, cursor },
      );
      for (const record of page.items) yield JSON.stringify(allowlistFieldsOf(record));
      cursor = page.cursor;
    } while (cursor !== undefined);
  }

  #ledger(actor: string, deviceId: string, change: Record<string, unknown>, at: string): Promise<void> {
    return this.#retry(() => this.deps.ledger.append({ deviceId, at, kind: "admin", actor, change }));
  }

  #retry<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, this.deps.settings.retry, this.deps.clock);
  }
}

/** The service-written binding fields of a record. */
function bindingOf(record: AllowlistRecord): Partial<AllowlistRecord> {
  const { certificateId, thingName, policyName, provisionedAt } = record;
  return compact({ certificateId, thingName, policyName, provisionedAt });
}

// ---------------------------------------------------------------- mappings

/** A provisioned device whose policy a mapping change would change. */
export interface MappingImpact {
  deviceId: string;
  certificateId: string | undefined;
  from: { selector: string | undefined; policyName: string | undefined };
  to: { selector: string | undefined; policyName: string | undefined };
  documentChanged: boolean;
}

/** What a mapping change would do, without saving it. */
export interface MappingWhatIf {
  dryRun: true;
  mapping: PolicyMapping | undefined;
  devicesExamined: number;
  affected: MappingImpact[];
  affectedCount: number;
}

const MAX_IMPACTS_LISTED = 1000;

/** The policy-mapping use cases. */
export class MappingAdmin {
  constructor(private readonly deps: AdminDeps) {}

  /** One mapping; NotFoundError when there is none. */
  async get(selector: string): Promise<PolicyMapping> {
    requireSelector(selector);
    const mapping = await this.deps.mappings.get(selector);
    if (mapping === undefined) throw new NotFoundError(`no policy mapping for selector ${selector}`);
    return mapping;
  }

  /** A page of mappings. */
  list(query: { limit?: string; cursor?: string }): Promise<Page<PolicyMapping>> {
    return this.deps.mappings.list(pageRequest(query));
  }

  /** Creates or updates a mapping. */
  async put(
    actor: string,
    selector: string,
    body: unknown,
    precondition: Precondition,
  ): Promise<Written<PolicyMapping>> {
    const fields = valid(validateMapping(body, selector, this.deps.settings));
    const condition = requirePrecondition(precondition, `policy mapping ${selector}`);
    const { mappings, clock } = this.deps;
    const now = clock.now().toISOString();
    const what = `policy mapping ${selector}`;
    if ("create" in condition) {
      const mapping: PolicyMapping = {
        ...fields,
        version: 1,
        createdAt: now,
        updatedAt: now,
        updatedBy: actor,
      } as PolicyMapping;
      if (!(await mappings.create(mapping))) {
        throw new PreconditionFailedError(
          `${what} exists already (If-None-Match: *); update it with If-Match`,
        );
      }
      await this.#ledger(actor, selector, { action: "create", after: fields, version: 1 }, now);
      return { value: mapping, created: true };
    }
    const current = checkVersion(await mappings.get(selector), condition.version, what);
    const mapping = {
      ...fields,
      version: condition.version + 1,
      ...("createdAt" in current ? { createdAt: current.createdAt } : {}),
      updatedAt: now,
      updatedBy: actor,
    } as PolicyMapping;
    if (!(await mappings.update(mapping, condition.version))) throw lostRace(what);
    await this.#ledger(
      actor,
      selector,
      { action: "update", before: mappingFieldsOf(current), after: fields, version: mapping.version },
      now,
    );
    return { value: mapping, created: false };
  }

  /** What saving the mapping would change for provisioned devices; nothing is saved. */
  async whatIf(selector: string, body: unknown): Promise<MappingWhatIf> {
    const fields = valid(validateMapping(body, selector, this.deps.settings));
    const proposed = { ...fields, version: 0 } as PolicyMapping;
    return impactOf(this.deps, selector, proposed);
  }

  /** Deletes a mapping (If-Match optional). */
  async remove(actor: string, selector: string, version: number | undefined): Promise<void> {
    requireSelector(selector);
    const what = `policy mapping ${selector}`;
    const current = await this.deps.mappings.get(selector);
    if (current === undefined) throw new NotFoundError(`no policy mapping for selector ${selector}`);
    if (version !== undefined) checkVersion(current, version, what);
    if (!(await this.deps.mappings.remove(selector, current.version))) throw lostRace(what);
    await this.#ledger(
      actor,
      selector,
      { action: "delete", before: mappingFieldsOf(current) },
      this.deps.clock.now().toISOString(),
    );
  }

  #ledger(actor: string, selector: string, change: Record<string, unknown>, at: string): Promise<void> {
    return withRetry(
      () =>
        this.deps.ledger.append({ deviceId: mappingLedgerKey(selector), at, kind: "admin", actor, change }),
      this.deps.settings.retry,
      this.deps.clock,
    );
  }
}

function requireSelector(selector: string): void {
  const problem = selectorProblem(selector);
  if (problem !== undefined) throw invalid([{ path: "selector", message: problem }]);
}

function mappingFieldsOf(mapping: PolicyMapping): Record<string, unknown> {
  const {
    version: _v,
    updatedAt: _u,
    updatedBy: _b,
    ...fields
  } = mapping as PolicyMapping & { createdAt?: string };
  const { createdAt: _c, ...rest } = fields as typeof fields & { createdAt?: string };
  return rest;
}

/** Every page of a listing, in order. */
async function* everything<T>(read: (page: PageRequest) => Promise<Page<T>>, limit = 500): AsyncGenerator<T> {
  let cursor: string | undefined;
  do {
    const page = await read(cursor === undefined ? { limit } : { limit, cursor });
    yield* page.items;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

const NO_CERTIFICATE = "0".repeat(64);

/** A certificate valid at any time, for decisions about a device's policy rather than its certificate. */
const anyCertificate = (fingerprint = NO_CERTIFICATE): CertificateFacts => ({
  fingerprint,
  subject: "",
  issuer: "",
  subjectAttributes: {},
  sanUris: [],
  sanDnsNames: [],
  notBefore: new Date(0),
  notAfter: new Date(8.64e15),
});

const eventFor = (
  certificateId: string,
  caCertificateId: string,
  accountId: string,
  now: Date,
): RegisteredEvent => ({
  certificateId,
  caCertificateId,
  timestamp: now.getTime(),
  certificateStatus: "PENDING_ACTIVATION",
  awsAccountId: accountId,
  certificateRegistrationTimestamp: null,
});

/** The per-device policy the certificate was provisioned with, from its `provisioned` ledger entry. */
async function perDevicePolicyOf(
  deps: AdminDeps,
  deviceId: string,
  certificateId: string,
): Promise<string | undefined> {
  for await (const entry of everything((page) => deps.ledger.history(deviceId, page), 25)) {
    if (entry.certificateId === certificateId && entry.kind === "provisioned") {
      return entry.perDevicePolicy === true ? entry.policyName : undefined;
    }
  }
  return undefined;
}

/** The CA of the certificate a device is bound to, from its ledger (pinned on the record when it is). */
async function caOf(deps: AdminDeps, record: AllowlistRecord): Promise<string | undefined> {
  if (record.caCertificateId !== undefined) return record.caCertificateId;
  for await (const entry of everything((page) => deps.ledger.history(record.deviceId, page), 25)) {
    if (
      entry.caCertificateId !== undefined &&
      (record.certificateId === undefined || entry.certificateId === record.certificateId)
    ) {
      return entry.caCertificateId;
    }
  }
  return undefined;
}

/** The policy a provisioned device gets from a set of mappings, its validity aside. */
function policyFor(
  deps: AdminDeps,
  record: AllowlistRecord,
  caCertificateId: string,
  mappings: Map<string, PolicyMapping>,
): { selector: string | undefined; policyName: string | undefined; document: string | undefined } {
  const selectors = mappingSelectors(record.deviceId, record, caCertificateId);
  const found = selectors.flatMap((s) => {
    const m = mappings.get(s);
    return m ? [m] : [];
  });
  const now = deps.clock.now();
  const { notBefore: _b, notAfter: _a, certificateFingerprint: _f, lot: _l, ...rest } = record;
  const decision = decide({
    event: eventFor(NO_CERTIFICATE, caCertificateId, deps.settings.accountId, now),
    certificate: anyCertificate(),
    deviceId: record.deviceId,
    record: { ...rest, status: "allowed", caCertificateId },
    boundCertificate: undefined,
    lot: undefined,
    mappings: found,
    now,
    settings: deps.settings,
  });
  if (decision.outcome === "deny") {
    return {
      selector: selectMapping(selectors, found)?.selector,
      policyName: undefined,
      document: undefined,
    };
  }
  return {
    selector: decision.mapping.selector,
    policyName: decision.policy.policyName,
    document: decision.policy.document,
  };
}

/** Which provisioned devices would get another policy if `selector` held `proposed` (undefined: deleted). */
async function impactOf(
  deps: AdminDeps,
  selector: string,
  proposed: PolicyMapping | undefined,
): Promise<MappingWhatIf> {
  const current = new Map<string, PolicyMapping>();
  for await (const mapping of everything((page) => deps.mappings.list(page)))
    current.set(mapping.selector, mapping);
  const next = new Map(current);
  if (proposed === undefined) next.delete(selector);
  else next.set(selector, proposed);
  const caMatters = [...next.keys()].some((s) => s.startsWith("ca:"));
  const affected: MappingImpact[] = [];
  let examined = 0;
  let affectedCount = 0;
  for await (const record of everything((page) => deps.allowlist.list({ bound: true }, page))) {
    examined += 1;
    const ca = (caMatters ? await caOf(deps, record) : record.caCertificateId) ?? "unknown";
    const before = policyFor(deps, record, ca, current);
    const after = policyFor(deps, record, ca, next);
    const documentChanged = before.document !== after.document;
    if (before.policyName === after.policyName && !documentChanged) continue;
    affectedCount += 1;
    if (affected.length < MAX_IMPACTS_LISTED) {
      affected.push({
        deviceId: record.deviceId,
        certificateId: record.certificateId,
        from: { selector: before.selector, policyName: before.policyName },
        to: { selector: after.selector, policyName: after.policyName },
        documentChanged,
      });
    }
  }
  return { dryRun: true, mapping: proposed, devicesExamined: examined, affected, affectedCount };
}

// ---------------------------------------------------------------- lots

/** The lot use cases; `provisionedCount` is the service's. */
export class LotAdmin {
  constructor(private readonly deps: AdminDeps) {}

  /** One lot; NotFoundError when there is none. */
  async get(lot: string): Promise<Lot> {
    if (!isLotName(lot))
      throw invalid([{ path: "lot", message: "must be a lot name ([a-zA-Z0-9:_.-]{1,128})" }]);
    const found = await this.deps.lots.get(lot);
    if (found === undefined) throw new NotFoundError(`no lot ${lot}`);
    return found;
  }

  /** A page of lots. */
  list(query: { limit?: string; cursor?: string }): Promise<Page<Lot>> {
    return this.deps.lots.list(pageRequest(query));
  }

  /** Creates or updates a lot's quota and window. */
  async put(actor: string, name: string, body: unknown, precondition: Precondition): Promise<Written<Lot>> {
    const fields = valid(validateLot(body, name));
    const condition = requirePrecondition(precondition, `lot ${name}`);
    const { lots, clock } = this.deps;
    const now = clock.now().toISOString();
    const what = `lot ${name}`;
    let lot: Lot;
    if ("create" in condition) {
      lot = {
        ...fields,
        provisionedCount: 0,
        version: 1,
        createdAt: now,
        updatedAt: now,
        updatedBy: actor,
      } as Lot;
      if (!(await lots.create(lot))) {
        throw new PreconditionFailedError(
          `${what} exists already (If-None-Match: *); update it with If-Match`,
        );
      }
    } else {
      const current = checkVersion(await lots.get(name), condition.version, what);
      const createdAt = (current as Lot & { createdAt?: string }).createdAt;
      lot = {
        ...fields,
        provisionedCount: current.provisionedCount,
        version: condition.version + 1,
        ...(createdAt !== undefined ? { createdAt } : {}),
        updatedAt: now,
        updatedBy: actor,
      } as Lot;
      if (!(await lots.update(lot, condition.version))) throw lostRace(what);
    }
    await withRetry(
      () =>
        this.deps.ledger.append({
          deviceId: lotLedgerKey(name),
          at: now,
          kind: "admin",
          actor,
          change: {
            action: "create" in condition ? "create" : "update",
            after: fields,
            version: lot.version,
          },
        }),
      this.deps.settings.retry,
      this.deps.clock,
    );
    return { value: lot, created: "create" in condition };
  }
}

// ---------------------------------------------------------------- devices

/** The explain answer: what would happen, and why. */
export interface Explanation {
  deviceId: string | undefined;
  decision: "allow" | "deny";
  reason?: string;
  detail?: string;
  /** What the certificate would become. */
  certificateStatus: "ACTIVE" | "INACTIVE" | "REVOKED";
  certificate: { source: "pem" | "bound" | "hypothetical"; certificateId?: string; status?: string };
  caCertificateId: string | undefined;
  selectors: string[];
  record: AllowlistRecord | undefined;
  mapping: PolicyMapping | undefined;
  policy?: { policyName: string; document: string | undefined; perDevice: boolean; existing?: boolean };
  thing?: {
    thingName: string;
    thingTypeName?: string;
    thingGroups: string[];
    attributes: Record<string, string>;
  };
  assumptions: string[];
}

/** What deprovisioning took apart. */
export interface Deprovisioned {
  deviceId: string;
  certificateId: string;
  revoked: boolean;
  detachedPolicies: string[];
  /** The device's own (per-device) policy, deleted once detached. */
  deletedPolicies: string[];
  detachedThings: string[];
  thingDeleted: boolean;
  lotReleased: string | undefined;
  warnings: string[];
}

/** Explain, approve, deprovision and history: the use cases about one device's certificates. */
export class DeviceAdmin {
  constructor(private readonly deps: AdminDeps) {}

  /** A dry run of the decision for a device id or a certificate PEM; changes nothing. */
  async explain(body: unknown): Promise<Explanation> {
    const request = readExplainRequest(body);
    const { deps } = this;
    const assumptions: string[] = [];
    let pem = request.certificatePem;
    let source: Explanation["certificate"]["source"] = "pem";
    let description: CertificateDescription | undefined;
    if (pem === undefined) {
      const deviceId = request.deviceId ?? "";
      const record = await this.#retry(() => deps.allowlist.get(deviceId));
      const boundId = record?.certificateId;
      description =
        boundId === undefined ? undefined : await this.#retry(() => deps.iot.describeCertificate(boundId));
      if (description !== undefined) {
        pem = description.certificatePem;
        source = "bound";
        assumptions.push(
          `explained for the certificate the device is bound to (${description.certificateId})`,
        );
      } else {
        return this.#explainHypothetical(deviceId, record, request.caCertificateId, assumptions);
      }
    }
    let facts: CertificateFacts;
    try {
      facts = readCertificate(pem);
    } catch (error) {
      throw invalid([
        { path: "certificatePem", message: `is not a readable X.509 certificate (${describeError(error)})` },
      ]);
    }
    const certificateId = facts.fingerprint;
    description ??= await this.#retry(() => deps.iot.describeCertificate(certificateId));
    const deviceId = deriveDeviceId(facts, deps.settings.deviceIdStrategy);
    const record = deviceId === undefined ? undefined : await this.#retry(() => deps.allowlist.get(deviceId));
    let ca = request.caCertificateId ?? description?.caCertificateId;
    if (ca === undefined) {
      ca = record?.caCertificateId;
      assumptions.push(
        ca === undefined
          ? "the certificate is not registered and no caCertificateId was given: ca:<id> mappings are not considered"
          : "the certificate is not registered: assumed issued by the CA the record pins",
      );
    }
    const input = await gatherDecisionInput(
      eventFor(certificateId, ca ?? "unknown", deps.settings.accountId, deps.clock.now()),
      facts,
      deviceId,
      { certificateId },
      deps,
    );
    const status = description?.status;
    return this.#answer(
      input,
      decide(input),
      { source, certificateId, ...(status ? { status } : {}) },
      assumptions,
    );
  }

  async #explainHypothetical(
    deviceId: string,
    record: AllowlistRecord | undefined,
    requestedCa: string | undefined,
    assumptions: string[],
  ): Promise<Explanation> {
    const { deps } = this;
    const ca = requestedCa ?? (record === undefined ? undefined : await caOf(deps, record));
    assumptions.push(
      "no certificate given: explained for a new certificate for this device, valid now" +
        (record?.certificateFingerprint ? ", matching the pinned fingerprint" : ""),
    );
    if (ca === undefined) assumptions.push("no CA known for the device: ca:<id> mappings are not considered");
    else if (requestedCa === undefined) assumptions.push(`assumed issued by CA ${ca}`);
    const fingerprint = record?.certificateFingerprint ?? NO_CERTIFICATE;
    const input = await gatherDecisionInput(
      eventFor(fingerprint, ca ?? "unknown", deps.settings.accountId, deps.clock.now()),
      anyCertificate(fingerprint),
      deviceId,
      { certificateId: fingerprint },
      deps,
    );
    return this.#answer(input, decide(input), { source: "hypothetical" }, assumptions);
  }

  async #answer(
    input: DecisionInput,
    decision: Decision,
    certificate: Explanation["certificate"],
    assumptions: string[],
  ): Promise<Explanation> {
    const selectors =
      input.deviceId === undefined
        ? []
        : mappingSelectors(input.deviceId, input.record, input.event.caCertificateId);
    const mapping = selectMapping(selectors, input.mappings);
    const base = {
      deviceId: input.deviceId,
      certificate,
      caCertificateId: input.event.caCertificateId === "unknown" ? undefined : input.event.caCertificateId,
      selectors,
      record: input.record,
      mapping,
      assumptions,
    };
    if (decision.outcome === "deny") {
      return {
        ...base,
        decision: "deny",
        reason: decision.reason,
        detail: decision.detail,
        certificateStatus: decision.certificateStatus,
      };
    }
    let policy: Explanation["policy"] = { ...decision.policy };
    if (decision.policy.document === undefined) {
      const name = decision.policy.policyName;
      const existing = await this.#retry(() => this.deps.iot.getPolicy(name));
      policy = { ...decision.policy, document: existing?.document, existing: existing !== undefined };
    }
    return {
      ...base,
      decision: "allow",
      certificateStatus: "ACTIVE",
      mapping: decision.mapping,
      policy,
      thing: decision.thing,
    };
  }

  /** Re-decides the device's latest quarantined (INACTIVE) certificate and provisions it when now allowed. */
  async approve(actor: string, deviceId: string): Promise<ProvisionResult> {
    requireDeviceId(deviceId);
    const { deps } = this;
    const seen = new Set<string>();
    let scanned = 0;
    for await (const entry of everything((page) => deps.ledger.history(deviceId, page), 50)) {
      if (++scanned > 500) break;
      const certificateId = entry.certificateId;
      if (entry.kind !== "denied" || entry.certificateStatus !== "INACTIVE" || certificateId === undefined)
        continue;
      if (seen.has(certificateId)) continue;
      seen.add(certificateId);
      const description = await this.#retry(() => deps.iot.describeCertificate(certificateId));
      if (description?.status !== "INACTIVE") continue;
      const event = eventFor(
        certificateId,
        description.caCertificateId ?? entry.caCertificateId ?? "unknown",
        deps.settings.accountId,
        deps.clock.now(),
      );
      return provision({ ...event, certificateStatus: "INACTIVE" }, deps, { from: "INACTIVE", actor });
    }
    throw new NotFoundError(`device ${deviceId} has no quarantined (INACTIVE) certificate to approve`);
  }

  /** Revokes the bound certificate, detaches its policies and thing, deletes the thing, unbinds and records. */
  async deprovision(actor: string, deviceId: string): Promise<Deprovisioned> {
    requireDeviceId(deviceId);
    const { deps } = this;
    const record = await this.#retry(() => deps.allowlist.get(deviceId));
    if (record === undefined) throw new NotFoundError(`no allowlist record for device ${deviceId}`);
    const certificateId = record.certificateId;
    if (certificateId === undefined)
      throw new StateConflictError(`device ${deviceId} is not provisioned (no certificate bound)`);
    const warnings: string[] = [];
    const result: Deprovisioned = {
      deviceId,
      certificateId,
      revoked: false,
      detachedPolicies: [],
      deletedPolicies: [],
      detachedThings: [],
      thingDeleted: false,
      lotReleased: undefined,
      warnings,
    };
    const certificate = await this.#retry(() => deps.iot.describeCertificate(certificateId));
    if (certificate === undefined) {
      warnings.push(`certificate ${certificateId} no longer exists in the registry`);
    } else {
      const arn = certificate.certificateArn;
      // Revoke first: from here on the device cannot connect, whatever else fails.
      if (certificate.status !== "REVOKED") {
        await this.#retry(() => deps.iot.updateCertificateStatus(certificateId, "REVOKED"));
        result.revoked = true;
      }
      for (const policyName of await this.#retry(() => deps.iot.listAttachedPolicies(arn))) {
        await this.#retry(() => deps.iot.detachPolicy(policyName, arn));
        result.detachedPolicies.push(policyName);
      }
      for (const thingName of await this.#retry(() => deps.iot.listPrincipalThings(arn))) {
        await this.#retry(() => deps.iot.detachThingPrincipal(thingName, arn));
        result.detachedThings.push(thingName);
      }
    }
    const perDevice = await perDevicePolicyOf(deps, deviceId, certificateId);
    if (perDevice !== undefined && result.detachedPolicies.includes(perDevice)) {
      try {
        await this.#deletePolicy(perDevice);
        result.deletedPolicies.push(perDevice);
      } catch (error) {
        warnings.push(`policy ${perDevice} kept: ${describeError(error)}`);
      }
    }
    const thingName = record.thingName ?? deviceId;
    const thing = await this.#retry(() => deps.iot.describeThing(thingName));
    if (thing !== undefined) {
      const others = await this.#retry(() => deps.iot.listThingPrincipals(thingName));
      if (others.length === 0) {
        await this.#retry(() => deps.iot.deleteThing(thingName));
        result.thingDeleted = true;
      } else {
        warnings.push(`thing ${thingName} kept: ${others.length} other certificate(s) still attached`);
      }
    }
    if (!(await this.#retry(() => deps.allowlist.unbind(deviceId, certificateId)))) {
      throw new StateConflictError(
        `device ${deviceId} was bound to another certificate meanwhile; nothing unbound`,
      );
    }
    if (record.lot !== undefined && record.provisionedAt !== undefined) {
      const lot = record.lot;
      await this.#retry(() => deps.lots.release(lot));
      result.lotReleased = lot;
    }
    await this.#retry(() =>
      deps.ledger.append({
        deviceId,
        at: deps.clock.now().toISOString(),
        certificateId,
        kind: "admin",
        actor,
        change: {
          action: "deprovision",
          revoked: result.revoked,
          detachedPolicies: result.detachedPolicies,
          deletedPolicies: result.deletedPolicies,
          thingDeleted: result.thingDeleted,
          ...(warnings.length > 0 ? { warnings } : {}),
        },
      }),
    );
    return result;
  }

  /** Deletes a policy: its non-default versions first, as AWS IoT requires. */
  async #deletePolicy(policyName: string): Promise<void> {
    const { iot } = this.deps;
    for (const version of await this.#retry(() => iot.listPolicyVersions(policyName))) {
      if (!version.isDefault) await this.#retry(() => iot.deletePolicyVersion(policyName, version.versionId));
    }
    await this.#retry(() => iot.deletePolicy(policyName));
  }

  /** The device's ledger entries, newest first. */
  history(deviceId: string, query: { limit?: string; cursor?: string }): Promise<Page<LedgerEntry>> {
    requireDeviceId(deviceId);
    return this.deps.ledger.history(deviceId, pageRequest(query));
  }

  #retry<T>(fn: () => Promise<T>): Promise<T> {
    return withRetry(fn, this.deps.settings.retry, this.deps.clock);
  }
}

function readExplainRequest(body: unknown): {
  deviceId?: string;
  certificatePem?: string;
  caCertificateId?: string;
} {
  const object =
    typeof body === "object" && body !== null && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined;
  if (object === undefined) throw invalid([{ path: "", message: "the body must be a JSON object" }]);
  const issues: Issue[] = [];
  for (const key of Object.keys(object)) {
    if (!["deviceId", "certificatePem", "caCertificateId"].includes(key)) {
      issues.push({
        path: key,
        message: "is not a known field (known: deviceId, certificatePem, caCertificateId)",
      });
    }
  }
  const { deviceId, certificatePem, caCertificateId } = object;
  if ((deviceId === undefined) === (certificatePem === undefined)) {
    issues.push({ path: "deviceId", message: "give exactly one of deviceId or certificatePem" });
  }
  if (deviceId !== undefined && (typeof deviceId !== "string" || !isThingName(deviceId))) {
    issues.push({ path: "deviceId", message: "must be a thing name ([a-zA-Z0-9:_-]{1,128})" });
  }
  if (
    certificatePem !== undefined &&
    (typeof certificatePem !== "string" || !certificatePem.includes("BEGIN CERTIFICATE"))
  ) {
    issues.push({
      path: "certificatePem",
      message: "must be a PEM certificate (-----BEGIN CERTIFICATE-----)",
    });
  }
  if (
    caCertificateId !== undefined &&
    (typeof caCertificateId !== "string" || !/^[0-9a-f]{64}$/.test(caCertificateId))
  ) {
    issues.push({
      path: "caCertificateId",
      message: "must be a CA certificate id (64 lowercase hex digits)",
    });
  }
  if (issues.length > 0) throw invalid(issues);
  return compact({
    deviceId: deviceId as string | undefined,
    certificatePem: certificatePem as string | undefined,
    caCertificateId: caCertificateId as string | undefined,
  });
}

/** The admin module: every admin use case over one set of ports. */
export class Admin {
  readonly allowlist: AllowlistAdmin;
  readonly mappings: MappingAdmin;
  readonly lots: LotAdmin;
  readonly devices: DeviceAdmin;

  constructor(readonly deps: AdminDeps) {
    this.allowlist = new AllowlistAdmin(deps);
    this.mappings = new MappingAdmin(deps);
    this.lots = new LotAdmin(deps);
    this.devices = new DeviceAdmin(deps);
  }
}
