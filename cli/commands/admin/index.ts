import type { Command } from "commander";
import { registerAllowlist } from "./allowlist.ts";
import { registerBackup } from "./backup.ts";
import { registerDevices } from "./devices.ts";
import { registerFleet } from "./fleet.ts";
import { registerJobs } from "./jobs.ts";
import { registerLots } from "./lots.ts";
import { registerMappings } from "./mappings.ts";
import { registerReconcile } from "./reconcile.ts";

/** Registers `jitr allowlist|mappings|lots|explain|approve|deprovision|history|ledger|approvals|reconcile`. */
export function registerAdminCommands(program: Command): void {
  registerAllowlist(program);
  registerMappings(program);
  registerLots(program);
  registerDevices(program);
  registerFleet(program);
  registerReconcile(program);
  registerJobs(program);
  registerBackup(program);
}
