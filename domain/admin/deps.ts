import type { JobDeps } from "../jobs/admin.ts";
import type {
  AllowlistStore,
  ClockPort,
  IotInventoryPort,
  IotPort,
  LedgerStore,
  LotStore,
  MappingStore,
} from "../ports.ts";
import type { ProvisionSettings } from "../provision.ts";
import { retryingEach } from "../retry.ts";

/** What the admin use cases run against. */
export interface AdminDeps {
  iot: IotPort & IotInventoryPort;
  allowlist: AllowlistStore;
  mappings: MappingStore;
  lots: LotStore;
  ledger: LedgerStore;
  clock: ClockPort;
  settings: ProvisionSettings;
  /** The jobs table, queue and bucket; without them the job routes answer 404. */
  jobs?: JobDeps;
}

/** The stores and the registry with every call retried on transient errors, built once per `Admin`. */
export interface RetryingPorts {
  iot: AdminDeps["iot"];
  allowlist: AllowlistStore;
  mappings: MappingStore;
  lots: LotStore;
  ledger: LedgerStore;
}

/**
 * The admin use cases' view of their dependencies: `deps` as given, and `retried`, the same ports with
 * every call retried on transient errors. Reads and idempotent writes go through `retried`. A single
 * versioned write (create, update, delete of one record) goes to `deps` once: a retried create whose
 * first attempt landed would report a conflict of the caller's own making. Import does retry its
 * writes: when a retried write fails its condition, it reads the record back and counts the line
 * written if the stored record is its own first attempt (same version, time, actor and fields).
 * Provisioning (approve) retries on its own.
 */
export interface AdminContext {
  deps: AdminDeps;
  retried: RetryingPorts;
}

/** Builds the retrying view of each port once. */
export function adminContext(deps: AdminDeps): AdminContext {
  const { iot, allowlist, mappings, lots, ledger } = deps;
  return {
    deps,
    retried: retryingEach({ iot, allowlist, mappings, lots, ledger }, deps.settings.retry, deps.clock),
  };
}
