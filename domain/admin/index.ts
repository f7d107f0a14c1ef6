/*
 * The admin use cases, one entry point: the `Admin` facade over one set of ports, and the types the
 * admin API, the CLI and the local server speak. Each use case lives in its own module beside this one;
 * every versioned write (allowlist record, mapping, lot) goes through ./versioned.ts.
 */
import { JobsAdmin } from "../jobs/admin.ts";
import { AllowlistAdmin } from "./allowlist.ts";
import { type AdminDeps, adminContext } from "./deps.ts";
import { DeviceAdmin } from "./devices.ts";
import { FleetAdmin } from "./fleet.ts";
import { LotAdmin } from "./lots.ts";
import { MappingAdmin } from "./mappings.ts";
import { ReconcileAdmin } from "./reconcile.ts";

export type { MappingWarning } from "../jitp/index.ts";
export type { ProvisionResult } from "../provision.ts";
export type { AllowlistFields, LotFields, MappingFields } from "../records.ts";
export type { AllowlistAdmin, AllowlistQuery, RecordWarning } from "./allowlist.ts";
export type { BlockedCertificate, BlockMode, CutOff } from "./block.ts";
export type { AdminDeps } from "./deps.ts";
export type { Deprovisioned, DeviceAdmin } from "./devices.ts";
export type { ExplainRequest, Explanation } from "./explain.ts";
export { type Approval, type FleetAdmin, LEDGER_KINDS, ledgerFilterOf } from "./fleet.ts";
export type {
  ImportFormat,
  ImportLimit,
  ImportMode,
  ImportOptions,
  ImportOutcome,
  ImportReport,
} from "./import.ts";
export { ImportLimitError } from "./import.ts";
export { lotLedgerKey, mappingLedgerKey } from "./ledger.ts";
export type { LotAdmin } from "./lots.ts";
export { type MappingSaveOptions, MissingReferenceError } from "./mapping-checks.ts";
export type { ImpactChange, MappingImpact, MappingWhatIf } from "./mapping-impact.ts";
export type { MappingAdmin } from "./mappings.ts";
export type {
  DeviceReconciliation,
  ReconcileAdmin,
  ReconciledState,
  ReconcileOptions,
  ReconcileOutcome,
  ReconcileSlice,
} from "./reconcile.ts";
export { RECONCILE_LIMITS } from "./reconcile.ts";
export { type Issue, isLotName, LOT_NAME_RULE } from "./validation.ts";
export type { Precondition, Written } from "./versioned.ts";

/** The admin module: every admin use case over one set of ports (each retried through one view, built once). */
export class Admin {
  readonly allowlist: AllowlistAdmin;
  readonly mappings: MappingAdmin;
  readonly lots: LotAdmin;
  readonly devices: DeviceAdmin;
  readonly fleet: FleetAdmin;
  readonly reconcile: ReconcileAdmin;
  /** Long work as jobs, when the deployment has a jobs table, queue and bucket. */
  readonly jobs: JobsAdmin | undefined;

  constructor(readonly deps: AdminDeps) {
    const context = adminContext(deps);
    this.allowlist = new AllowlistAdmin(context);
    this.mappings = new MappingAdmin(context);
    this.lots = new LotAdmin(context);
    this.devices = new DeviceAdmin(context);
    this.fleet = new FleetAdmin(context);
    this.reconcile = new ReconcileAdmin(context);
    this.jobs =
      deps.jobs && new JobsAdmin({ ...deps.jobs, clock: deps.clock, ledger: context.retried.ledger });
  }
}
