import { Logger } from "@aws-lambda-powertools/logger";
import { IotRegistryAdapter } from "../adapters/iot.ts";
import type { AdminDeps } from "../domain/admin/index.ts";
import { systemClock } from "../domain/ports.ts";
import type { AdminHandlerDeps } from "./admin.ts";
import type { AdminConfig } from "./admin-config.ts";
import { type AwsClients, buildStores, defaultClients } from "./wiring.ts";

/** The admin use cases' ports over real AWS clients (or local mode's, through AWS_ENDPOINT_URL). */
export function buildAdminDeps(config: AdminConfig, clients: AwsClients = defaultClients()): AdminDeps {
  return {
    iot: new IotRegistryAdapter(clients.iot),
    ...buildStores(clients.dynamo, config.tables),
    clock: systemClock,
    settings: config.settings,
  };
}

/** Builds everything the admin handler needs, once per cold start. */
export function buildAdmin(config: AdminConfig, clients: AwsClients = defaultClients()): AdminHandlerDeps {
  const logger = new Logger({ serviceName: config.serviceName });
  return {
    admin: buildAdminDeps(config, clients),
    logError: (message, details) => logger.error(message, details),
  };
}
