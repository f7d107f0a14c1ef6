import type { ProvisionSettings } from "../domain/provision.ts";
import { readProvisioningConfig } from "./config.ts";

/** Everything the admin API function reads from its environment. */
export interface AdminConfig {
  settings: ProvisionSettings;
  tables: { allowlist: string; mappings: string; lots: string; ledger: string };
  serviceName: string;
}

type Env = Record<string, string | undefined>;

/**
 * Reads the admin configuration once, failing fast with the name of the first variable missing or
 * invalid. The same variables as provisioning, except that the admin has no idempotency table.
 */
export function readAdminConfig(env: Env = process.env): AdminConfig {
  const config = readProvisioningConfig({ ...env, JITR_IDEMPOTENCY_TABLE: "not-used-by-the-admin-api" });
  const { allowlist, mappings, lots, ledger } = config.tables;
  return {
    settings: config.settings,
    tables: { allowlist, mappings, lots, ledger },
    serviceName: config.serviceName,
  };
}
