/**
 * In-memory admin stores (allowlist, mappings, lots, ledger) with the conditional-write semantics of
 * the DynamoDB adapters, paging by an opaque cursor, and two kinds of interference for tests: a fault
 * thrown by the next calls of a method, and a concurrent change made just before the next write.
 */
import type { AdminDeps } from "../../domain/admin/index.ts";
import { ValidationError } from "../../domain/errors.ts";
import type {
  AllowlistFilter,
  AllowlistStore,
  LedgerFilter,
  LedgerStore,
  LotStore,
  MappingStore,
  Page,
  PageRequest,
} from "../../domain/ports.ts";
import type { AllowlistRecord, LedgerEntry, Lot, PolicyMapping } from "../../domain/types.ts";
import {
  FakeClock,
  FakeIot,
  MemoryAllowlist,
  MemoryLedger,
  MemoryLots,
  MemoryMappings,
  testSettings,
} from "./fakes.ts";

/** One page of `items` (in key order) after the cursor: the cursor is the index to read from. */
function pageOf<T>(items: T[], page: PageRequest): Page<T> {
  const start = page.cursor === undefined ? 0 : Number(page.cursor);
  if (!Number.isInteger(start) || start < 0) {
    throw new ValidationError("invalid cursor", [{ path: "cursor", message: "not a cursor" }]);
  }
  const end = start + (page.limit ?? 100);
  const slice = items.slice(start, end).map((item) => structuredClone(item));
  return end < items.length ? { items: slice, cursor: String(end) } : { items: slice };
}

const byKey = <T>(map: Map<string, T>): T[] =>
  [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, value]) => value);

const BINDING_FIELDS = ["certificateId", "thingName", "policyName", "provisionedAt"] as const;
/** The service fields an admin write keeps: the binding and the lot place. */
const SERVICE_KEPT = [...BINDING_FIELDS, "lotCounted", "lotReleaseStartedAt"] as const;

/** Allowlist records in memory: admin writes conditional on version, the binding on the certificate. */
export class MemoryAllowlistStore extends MemoryAllowlist implements AllowlistStore {
  async getMany(deviceIds: string[]) {
    this.enter("getMany");
    return deviceIds.flatMap((id) => {
      const record = this.records.get(id);
      return record ? [structuredClone(record)] : [];
    });
  }
  async list(filter: AllowlistFilter, page: PageRequest) {
    this.enter("list");
    const matching = byKey(this.records).filter(
      (r) =>
        (filter.status === undefined || r.status === filter.status) &&
        (filter.lot === undefined || r.lot === filter.lot) &&
        (filter.prefix === undefined || r.deviceId.startsWith(filter.prefix)) &&
        (filter.profile === undefined || r.profile === filter.profile) &&
        (filter.bound !== true || r.certificateId !== undefined),
    );
    return pageOf(matching, page);
  }
  async create(record: AllowlistRecord) {
    this.enter("create");
    this.write();
    if (this.records.has(record.deviceId)) return false;
    this.records.set(record.deviceId, structuredClone(record));
    return true;
  }
  async update(record: AllowlistRecord, expectedVersion: number) {
    this.enter("update");
    this.write();
    const stored = this.records.get(record.deviceId);
    if (stored === undefined || stored.version !== expectedVersion) return false;
    const next: AllowlistRecord = structuredClone(record);
    for (const field of SERVICE_KEPT) {
      if (stored[field] !== undefined) next[field] = stored[field];
      else delete next[field];
    }
    this.records.set(record.deviceId, next);
    return true;
  }
  async remove(deviceId: string, expected: { version: number; certificateId: string | undefined }) {
    this.enter("remove");
    this.write();
    const stored = this.records.get(deviceId);
    if (stored?.version !== expected.version || stored.certificateId !== expected.certificateId) return false;
    if (stored.lotCounted !== undefined) return false;
    this.records.delete(deviceId);
    return true;
  }
  async unbind(deviceId: string, certificateId: string) {
    this.enter("unbind");
    const stored = this.records.get(deviceId);
    if (stored?.certificateId !== certificateId || stored.lotCounted !== undefined) return false;
    for (const field of BINDING_FIELDS) delete stored[field];
    return true;
  }
}

/** Policy mappings in memory, written conditionally on version. */
export class MemoryMappingStore extends MemoryMappings implements MappingStore {
  async get(selector: string) {
    this.enter("get");
    const mapping = this.mappings.get(selector);
    return mapping ? structuredClone(mapping) : undefined;
  }
  async list(page: PageRequest) {
    this.enter("list");
    return pageOf(byKey(this.mappings), page);
  }
  async create(mapping: PolicyMapping) {
    this.enter("create");
    this.write();
    if (this.mappings.has(mapping.selector)) return false;
    this.mappings.set(mapping.selector, structuredClone(mapping));
    return true;
  }
  async update(mapping: PolicyMapping, expectedVersion: number) {
    this.enter("update");
    this.write();
    if (this.mappings.get(mapping.selector)?.version !== expectedVersion) return false;
    this.mappings.set(mapping.selector, structuredClone(mapping));
    return true;
  }
  async remove(selector: string, expectedVersion: number) {
    this.enter("remove");
    this.write();
    if (this.mappings.get(selector)?.version !== expectedVersion) return false;
    this.mappings.delete(selector);
    return true;
  }
}

/** Lots in memory: admin writes conditional on version (0: none stored), the count the service's. */
export class MemoryLotStore extends MemoryLots implements LotStore {
  async list(page: PageRequest) {
    this.enter("list");
    return pageOf(byKey(this.lots), page);
  }
  async create(lot: Lot) {
    this.enter("create");
    this.write();
    if (this.lots.has(lot.lot)) return false;
    this.lots.set(lot.lot, structuredClone(lot));
    return true;
  }
  async update(lot: Lot, expectedVersion: number) {
    this.enter("update");
    this.write();
    const stored = this.lots.get(lot.lot);
    if (stored === undefined || (stored.version ?? 0) !== expectedVersion) return false;
    this.lots.set(lot.lot, { ...structuredClone(lot), provisionedCount: stored.provisionedCount });
    return true;
  }
  async remove(lot: string, expectedVersion: number) {
    this.enter("remove");
    this.write();
    const stored = this.lots.get(lot);
    if (stored === undefined || (stored.version ?? 0) !== expectedVersion || stored.provisionedCount !== 0)
      return false;
    this.lots.delete(lot);
    return true;
  }
  async recount(lot: string, count: number, expected: number) {
    this.enter("recount");
    this.write();
    const stored = this.lots.get(lot);
    if (stored === undefined || stored.provisionedCount !== expected) return false;
    stored.provisionedCount = count;
    return true;
  }
}

/** The ledger in memory: entries in the order appended, a device's history newest first. */
export class MemoryLedgerStore extends MemoryLedger implements LedgerStore {
  async appendMany(entries: LedgerEntry[]) {
    this.enter("appendMany");
    for (const entry of entries) this.entries.push(structuredClone(entry));
  }
  async history(deviceId: string, page: PageRequest) {
    this.enter("history");
    return pageOf(this.entries.filter((e) => e.deviceId === deviceId).reverse(), page);
  }
  async fleet(filter: LedgerFilter, page: PageRequest) {
    this.enter("fleet");
    const matches = (e: LedgerEntry) =>
      (filter.kind === undefined || e.kind === filter.kind) &&
      (filter.reason === undefined || e.reason === filter.reason) &&
      (filter.lot === undefined || e.lot === filter.lot) &&
      (filter.certificateStatus === undefined || e.certificateStatus === filter.certificateStatus) &&
      (filter.since === undefined || e.at >= filter.since);
    const newestFirst = this.entries.filter(matches).reverse();
    return pageOf(
      newestFirst.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)),
      page,
    );
  }
  /** The changes recorded under a ledger key, oldest first. */
  changes(ledgerKey: string): Record<string, unknown>[] {
    return this.entries.flatMap((e) => (e.deviceId === ledgerKey && e.change ? [e.change] : []));
  }
}

/** A fresh admin world in memory: every store, a FakeIot and a FakeClock, and the deps over them. */
export function makeAdminWorld(
  seed: { records?: AllowlistRecord[]; mappings?: PolicyMapping[]; lots?: Lot[] } = {},
) {
  const iot = new FakeIot();
  const allowlist = new MemoryAllowlistStore(seed.records);
  const mappings = new MemoryMappingStore(seed.mappings);
  const lots = new MemoryLotStore(seed.lots, allowlist);
  const ledger = new MemoryLedgerStore();
  const clock = new FakeClock(new Date());
  const deps: AdminDeps = {
    iot,
    allowlist,
    mappings,
    lots,
    ledger,
    clock,
    settings: testSettings({ attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }),
  };
  return { iot, allowlist, mappings, lots, ledger, clock, deps };
}
