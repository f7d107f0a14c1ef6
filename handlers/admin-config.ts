import type { ProvisionSettings } from "../domain/provision.ts";
import { readProvisioningConfig } from "./config.ts";

/** Everything the admin API function reads from its environment. */
export interface AdminConfig {
  settings: ProvisionSettings;
  tables: { allowlist: string; mappings: string; lots: string; ledger: string };
}

type Env = Record<string, string | undefined>;

/** Reads the admin configuration, failing fast with the name of the first variable missing or invalid. */
export function readAdminConfig(env: Env = process.env): AdminConfig {
  // The admin has no idempotency table; everything else is read and validated as for provisioning.
  const config = readProvisioningConfig({ ...env, JITR_IDEMPOTENCY_TABLE: "unused-by-the-admin-api" });
  const { allowlist, mappings, lots, ledger } = config.tables;
  return { settings: config.settings, tables: { allowlist, mappings, lots, ledger } };
}
