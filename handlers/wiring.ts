import { DynamoDBPersistenceLayer } from "@aws-lambda-powertools/idempotency/dynamodb";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { IoTClient } from "@aws-sdk/client-iot";
import { DynamoAllowlist } from "../adapters/dynamo/allowlist.ts";
import { DynamoLedger } from "../adapters/dynamo/ledger.ts";
import { DynamoLots } from "../adapters/dynamo/lots.ts";
import { DynamoMappings } from "../adapters/dynamo/mappings.ts";
import { createDocumentClient } from "../adapters/dynamo/table.ts";
import { IotRegistryAdapter } from "../adapters/iot.ts";
import { KnownPolicies } from "../domain/known-policies.ts";
import { type ClockPort, systemClock } from "../domain/ports.ts";
import { rateControlledIot } from "../domain/rate.ts";
import { KnownReferences } from "../domain/references.ts";
import type { ProvisioningConfig } from "./config.ts";
import type { ProvisionHandlerDeps } from "./provision.ts";

export interface AwsClients {
  iot: IoTClient;
  dynamo: DynamoDBClient;
}

/**
 * SDK clients for the service. The domain retries transient errors with its own backoff, so the SDK makes
 * one attempt per call (two retry layers would multiply). AWS_ENDPOINT_URL, when set, points them at local mode.
 */
export const defaultClients = (): AwsClients => ({
  iot: new IoTClient({ maxAttempts: 1 }),
  dynamo: new DynamoDBClient({ maxAttempts: 1 }),
});

/** The service's DynamoDB stores over one document client; `clock` paces their batch retries. */
export function buildStores(
  dynamo: DynamoDBClient,
  tables: { allowlist: string; mappings: string; lots: string; ledger: string },
  clock: ClockPort = systemClock,
) {
  const doc = createDocumentClient(dynamo);
  return {
    allowlist: new DynamoAllowlist({ doc, table: tables.allowlist, clock }),
    mappings: new DynamoMappings({ doc, table: tables.mappings, clock }),
    lots: new DynamoLots({ doc, table: tables.lots, recordsTable: tables.allowlist, clock }),
    ledger: new DynamoLedger({ doc, table: tables.ledger, clock }),
  };
}

/** Builds everything the provisioning handler needs, once per cold start. */
export function buildProvisioning(
  config: ProvisioningConfig,
  clients: AwsClients = defaultClients(),
  observability: { logger?: Logger; metrics?: Metrics } = {},
): ProvisionHandlerDeps {
  return {
    provision: {
      // Paced by the account's quotas, backing off when IoT throttles; one set of rates per instance.
      iot: rateControlledIot(new IotRegistryAdapter(clients.iot), {
        priority: "provisioning",
        quotas: config.iotQuotas,
        clock: systemClock,
        tuning: { instances: config.provisionConcurrency },
      }),
      ...buildStores(clients.dynamo, config.tables, systemClock),
      clock: systemClock,
      settings: config.settings,
      knownPolicies: new KnownPolicies(systemClock),
      knownReferences: new KnownReferences(systemClock),
    },
    persistenceStore: new DynamoDBPersistenceLayer({
      tableName: config.tables.idempotency,
      awsSdkV3Client: clients.dynamo,
    }),
    idempotencyTtlSeconds: config.idempotencyTtlSeconds,
    logger: observability.logger ?? new Logger({ serviceName: config.serviceName }),
    metrics:
      observability.metrics ??
      new Metrics({ namespace: config.metricsNamespace, serviceName: config.serviceName }),
  };
}
