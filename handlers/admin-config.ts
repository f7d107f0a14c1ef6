import { ConfigurationError } from "../domain/errors.ts";
import type { ProvisionSettings } from "../domain/provision.ts";
import { readProvisionSettings, readServiceName, readStoreTables, type StoreTables } from "./config.ts";

/** Where the deployment runs jobs: the jobs table, the queue that feeds the worker, the job bucket. */
export interface JobsConfig {
  table: string;
  queueUrl: string;
  bucket: string;
}

/** Everything the admin API function reads from its environment. */
export interface AdminConfig {
  settings: ProvisionSettings;
  tables: StoreTables;
  serviceName: string;
  /** Absent where the deployment runs no jobs (the job routes answer 404). */
  jobs?: JobsConfig;
}

/** The variables naming the jobs' table, queue and bucket: all three or none. */
export const JOBS_ENV = {
  table: "JITR_JOBS_TABLE",
  queueUrl: "JITR_JOBS_QUEUE_URL",
  bucket: "JITR_JOBS_BUCKET",
} as const;

/**
 * Reads the admin configuration once, failing fast with the name of the first variable missing or
 * invalid: the settings and store tables provisioning reads too (the admin has no idempotency table),
 * and the jobs' table, queue and bucket when any of them is named.
 */
export function readAdminConfig(env: Record<string, string | undefined> = process.env): AdminConfig {
  const jobs = readJobsConfig(env);
  return {
    settings: readProvisionSettings(env),
    tables: readStoreTables(env),
    serviceName: readServiceName(env),
    ...(jobs !== undefined ? { jobs } : {}),
  };
}

/** The jobs' table, queue and bucket; undefined when none is named, ConfigurationError when only some are. */
export function readJobsConfig(env: Record<string, string | undefined>): JobsConfig | undefined {
  const values = Object.fromEntries(
    Object.entries(JOBS_ENV).map(([key, name]) => [key, env[name]?.trim() || undefined]),
  ) as Record<keyof JobsConfig, string | undefined>;
  const missing = Object.entries(JOBS_ENV).filter(([key]) => values[key as keyof JobsConfig] === undefined);
  if (missing.length === Object.keys(JOBS_ENV).length) return undefined;
  if (missing.length > 0)
    throw new ConfigurationError(
      `environment variable ${missing[0]?.[1]} is required with ${Object.values(JOBS_ENV).join(", ")}`,
    );
  if (!/^https:\/\/\S+$/.test(values.queueUrl ?? ""))
    throw new ConfigurationError(`${JOBS_ENV.queueUrl} must be the queue's https URL`);
  return { table: values.table ?? "", queueUrl: values.queueUrl ?? "", bucket: values.bucket ?? "" };
}
