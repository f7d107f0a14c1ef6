import type { ProvisionSettings } from "../domain/provision.ts";
import { readProvisionSettings, readServiceName, readStoreTables, type StoreTables } from "./config.ts";

/** Everything the admin API function reads from its environment. */
export interface AdminConfig {
  settings: ProvisionSettings;
  tables: StoreTables;
  serviceName: string;
}

/**
 * Reads the admin configuration once, failing fast with the name of the first variable missing or
 * invalid: the settings and store tables provisioning reads too (the admin has no idempotency table).
 */
export function readAdminConfig(env: Record<string, string | undefined> = process.env): AdminConfig {
  return {
    settings: readProvisionSettings(env),
    tables: readStoreTables(env),
    serviceName: readServiceName(env),
  };
}
