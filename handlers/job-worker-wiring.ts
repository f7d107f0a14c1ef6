import { Logger } from "@aws-lambda-powertools/logger";
import { IotRegistryAdapter } from "../adapters/iot.ts";
import type { AdminDeps } from "../domain/admin/index.ts";
import { ConfigurationError } from "../domain/errors.ts";
import { systemClock } from "../domain/ports.ts";
import type { AdminConfig } from "./admin-config.ts";
import { buildJobDeps, defaultJobClients, type JobClients } from "./admin-wiring.ts";
import type { JobWorkerDeps } from "./job-worker.ts";
import { type AwsClients, buildStores, defaultClients } from "./wiring.ts";

/**
 * The IoT port every IoT-changing job step (reconcile, block of many) goes through: the ONE place the worker
 * builds it, so rate control shared with provisioning can wrap it here.
 */
export function jobWorkerIot(clients: AwsClients): AdminDeps["iot"] {
  return new IotRegistryAdapter(clients.iot);
}

/** Builds the job worker's dependencies (the admin config with its jobs part), once per cold start. */
export function buildJobWorker(
  config: AdminConfig,
  owner: string,
  clients: AwsClients = defaultClients(),
  jobClients: JobClients = defaultJobClients(),
): JobWorkerDeps {
  if (config.jobs === undefined)
    throw new ConfigurationError(
      "the job worker needs JITR_JOBS_TABLE, JITR_JOBS_QUEUE_URL and JITR_JOBS_BUCKET",
    );
  const jobs = buildJobDeps(config.jobs, clients.dynamo, jobClients);
  const logger = new Logger({ serviceName: config.serviceName });
  return {
    admin: {
      iot: jobWorkerIot(clients),
      ...buildStores(clients.dynamo, config.tables),
      clock: systemClock,
      settings: config.settings,
      jobs,
    },
    queue: jobs.queue,
    owner,
    logError: (message, details) => logger.error(message, details),
  };
}
