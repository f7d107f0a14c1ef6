import { Logger } from "@aws-lambda-powertools/logger";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoJobs } from "../adapters/dynamo/jobs.ts";
import { createDocumentClient } from "../adapters/dynamo/table.ts";
import { IotRegistryAdapter } from "../adapters/iot.ts";
import { S3JobFiles } from "../adapters/s3.ts";
import { SqsJobQueue } from "../adapters/sqs.ts";
import type { AdminDeps } from "../domain/admin/index.ts";
import type { JobDeps } from "../domain/jobs/index.ts";
import { systemClock } from "../domain/ports.ts";
import type { AdminHandlerDeps } from "./admin.ts";
import type { AdminConfig, JobsConfig } from "./admin-config.ts";
import { type AwsClients, buildStores, defaultClients } from "./wiring.ts";

/** The clients jobs add: the job bucket (S3) and the jobs queue (SQS). */
export interface JobClients {
  s3: S3Client;
  sqs: SQSClient;
}

/**
 * S3 and SQS clients for jobs. No domain retry wraps their calls (a failed job slice is retried by the
 * queue), so they keep the SDK's own retries.
 */
export const defaultJobClients = (): JobClients => ({ s3: new S3Client({}), sqs: new SQSClient({}) });

/** The jobs table, queue and bucket over real AWS clients. */
export function buildJobDeps(config: JobsConfig, dynamo: AwsClients["dynamo"], clients: JobClients): JobDeps {
  return {
    jobs: new DynamoJobs({ doc: createDocumentClient(dynamo), table: config.table }),
    queue: new SqsJobQueue(clients.sqs, config.queueUrl),
    files: new S3JobFiles(clients.s3, config.bucket),
  };
}

/** The admin use cases' ports over real AWS clients (or local mode's, through AWS_ENDPOINT_URL). */
export function buildAdminDeps(
  config: AdminConfig,
  clients: AwsClients = defaultClients(),
  jobClients: () => JobClients = defaultJobClients,
): AdminDeps {
  return {
    iot: new IotRegistryAdapter(clients.iot),
    ...buildStores(clients.dynamo, config.tables),
    clock: systemClock,
    settings: config.settings,
    ...(config.jobs !== undefined ? { jobs: buildJobDeps(config.jobs, clients.dynamo, jobClients()) } : {}),
  };
}

/** Builds everything the admin handler needs, once per cold start. */
export function buildAdmin(
  config: AdminConfig,
  clients: AwsClients = defaultClients(),
  jobClients: () => JobClients = defaultJobClients,
): AdminHandlerDeps {
  const logger = new Logger({ serviceName: config.serviceName });
  return {
    admin: buildAdminDeps(config, clients, jobClients),
    logError: (message, details) => logger.error(message, details),
  };
}
