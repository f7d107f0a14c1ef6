import { ConfigurationError } from "../domain/errors.ts";
import type { ProvisionSettings } from "../domain/provision.ts";
import { type IotQuotas, parseIotQuotas } from "../domain/rate.ts";
import { defaultRetryPolicy } from "../domain/retry.ts";
import type { DeviceIdStrategy } from "../domain/types.ts";

/** Provisioning instances sharing the quotas when nothing says otherwise: serverless.yml's provisionMaxConcurrency. */
export const DEFAULT_PROVISION_CONCURRENCY = 4;

/** Everything the provisioning function reads from its environment. */
export interface ProvisioningConfig {
  settings: ProvisionSettings;
  tables: StoreTables & { idempotency: string };
  idempotencyTtlSeconds: number;
  serviceName: string;
  metricsNamespace: string;
  /** The account's IoT API quotas the provisioning calls are paced by (JITR_IOT_QUOTAS). */
  iotQuotas: IotQuotas;
  /** Instances expected to share the quotas: the queue's concurrency cap (JITR_PROVISION_CONCURRENCY). */
  provisionConcurrency: number;
}

/** The tables of the service's stores. */
export interface StoreTables {
  allowlist: string;
  mappings: string;
  lots: string;
  ledger: string;
}

type Env = Record<string, string | undefined>;

const STRATEGIES: DeviceIdStrategy[] = ["cn", "serialNumber", "san-uri"];

/** Reads the configuration once, failing fast with the name of the first variable missing or invalid. */
export function readProvisioningConfig(env: Env = process.env): ProvisioningConfig {
  return {
    settings: readProvisionSettings(env),
    tables: { ...readStoreTables(env), idempotency: required(env, "JITR_IDEMPOTENCY_TABLE") },
    idempotencyTtlSeconds: integer(env, "JITR_IDEMPOTENCY_TTL_SECONDS", 3600, 60, 7 * 86_400),
    serviceName: readServiceName(env),
    metricsNamespace: optional(env, "POWERTOOLS_METRICS_NAMESPACE") ?? "Jitr",
    iotQuotas: readIotQuotas(env),
    provisionConcurrency: integer(env, "JITR_PROVISION_CONCURRENCY", DEFAULT_PROVISION_CONCURRENCY, 1, 1000),
  };
}

/** The account's IoT API quotas: JITR_IOT_QUOTAS, a JSON object (`{"factor":2}`, `{"UpdateCertificate":20}`). */
export function readIotQuotas(env: Env = process.env): IotQuotas {
  try {
    return parseIotQuotas(optional(env, "JITR_IOT_QUOTAS"));
  } catch (error) {
    throw new ConfigurationError(`JITR_IOT_QUOTAS ${(error as Error).message}`, { cause: error });
  }
}

/** The settings provisioning decides and retries by (the admin API decides by the same ones). */
export function readProvisionSettings(env: Env = process.env): ProvisionSettings {
  const strategy = optional(env, "JITR_DEVICE_ID_STRATEGY") ?? "cn";
  if (!STRATEGIES.includes(strategy as DeviceIdStrategy)) {
    throw new ConfigurationError(
      `JITR_DEVICE_ID_STRATEGY must be one of ${STRATEGIES.join(", ")}; got "${strategy}"`,
    );
  }
  const accountId = required(env, "JITR_ACCOUNT_ID");
  if (!/^\d{12}$/.test(accountId))
    throw new ConfigurationError("JITR_ACCOUNT_ID must be a 12-digit AWS account id");
  const policyPrefix = optional(env, "JITR_POLICY_PREFIX") ?? "jitr-";
  if (!/^[\w+=,.@-]{0,40}$/.test(policyPrefix)) {
    throw new ConfigurationError("JITR_POLICY_PREFIX may hold at most 40 characters of [A-Za-z0-9_+=,.@-]");
  }
  const quarantine = optional(env, "JITR_QUARANTINE") ?? "inactive";
  if (quarantine !== "inactive" && quarantine !== "revoke") {
    throw new ConfigurationError(`JITR_QUARANTINE must be "inactive" or "revoke"; got "${quarantine}"`);
  }
  return {
    region: required(env, "AWS_REGION"),
    quarantine,
    accountId,
    policyPrefix,
    deviceIdStrategy: strategy as DeviceIdStrategy,
    retry: {
      attempts: integer(env, "JITR_RETRY_ATTEMPTS", defaultRetryPolicy.attempts, 1, 20),
      baseDelayMs: integer(env, "JITR_RETRY_BASE_DELAY_MS", defaultRetryPolicy.baseDelayMs, 1, 60_000),
      maxDelayMs: integer(env, "JITR_RETRY_MAX_DELAY_MS", defaultRetryPolicy.maxDelayMs, 1, 300_000),
    },
  };
}

/** The names of the allowlist, mappings, lots and ledger tables. */
export function readStoreTables(env: Env = process.env): StoreTables {
  return {
    allowlist: required(env, "JITR_ALLOWLIST_TABLE"),
    mappings: required(env, "JITR_MAPPINGS_TABLE"),
    lots: required(env, "JITR_LOTS_TABLE"),
    ledger: required(env, "JITR_LEDGER_TABLE"),
  };
}

/** The service name logs carry. */
export const readServiceName = (env: Env = process.env): string =>
  optional(env, "POWERTOOLS_SERVICE_NAME") ?? "jitr";

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function required(env: Env, name: string): string {
  const value = optional(env, name);
  if (value === undefined) throw new ConfigurationError(`environment variable ${name} is required`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigurationError(`${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  }
  return value;
}
