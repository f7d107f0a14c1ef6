import type { Command } from "commander";
import { registerAllowlist } from "./allowlist.ts";
import { registerDevices } from "./devices.ts";
import { registerJobs } from "./jobs.ts";
import { registerLots } from "./lots.ts";
import { registerMappings } from "./mappings.ts";

/** Registers `jitr allowlist|mappings|lots|explain|approve|deprovision|history`. */
export function registerAdminCommands(program: Command): void {
  registerAllowlist(program);
  registerMappings(program);
  registerLots(program);
  registerDevices(program);
  registerJobs(program);
}
