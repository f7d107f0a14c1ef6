import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  makeIdempotent,
} from "@aws-lambda-powertools/idempotency";
import type { BasePersistenceLayer } from "@aws-lambda-powertools/idempotency/persistence";
import type { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { type Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { describeError, ValidationError } from "../domain/errors.ts";
import { parseRegisteredEvent } from "../domain/event.ts";
import { type ProvisionDeps, type ProvisionResult, provision } from "../domain/provision.ts";
import type { RegisteredEvent } from "../domain/types.ts";

export interface ProvisionHandlerDeps {
  provision: ProvisionDeps;
  persistenceStore: BasePersistenceLayer;
  idempotencyTtlSeconds: number;
  logger: Logger;
  metrics: Metrics;
}

/** What one event came to; stored by the idempotency layer, so plain JSON. */
export type EventSummary =
  | { outcome: "malformed"; error: string }
  /** Another run is deciding this certificate now; its own message is retried if it fails. */
  | { outcome: "in-progress"; certificateId: string }
  | {
      outcome: ProvisionResult["outcome"];
      certificateId: string;
      deviceId?: string;
      reason?: string;
      policyName?: string;
    };

export type ProvisionHandler = (event: unknown, context: Context) => Promise<EventSummary | SQSBatchResponse>;

/** Settled certificate ids an instance remembers (a few hundred bytes each). */
const LOCAL_CACHE_SIZE = 10_000;

const isSqsEvent = (event: unknown): event is SQSEvent =>
  typeof event === "object" &&
  event !== null &&
  Array.isArray((event as { Records?: unknown }).Records) &&
  (event as SQSEvent).Records.every((r) => r?.eventSource === "aws:sqs");

/**
 * The provisioning Lambda: takes a certificate-registered event from a topic rule directly, or an SQS
 * batch of them (reporting partial batch failures), and provisions each once (idempotent by certificate id).
 */
export function makeProvisionHandler(deps: ProvisionHandlerDeps): ProvisionHandler {
  const { logger, metrics } = deps;
  const idempotency = new IdempotencyConfig({
    eventKeyJmesPath: "certificateId",
    expiresAfterSeconds: deps.idempotencyTtlSeconds,
    throwOnNoIdempotencyKey: true,
    // Certificates this instance settled answer from memory: a duplicate event (AWS re-publishes a pending
    // certificate's event on every reconnect) costs no table write. Keyed by certificate id, so one
    // device's result is never another's.
    useLocalCache: true,
    maxLocalCacheSize: LOCAL_CACHE_SIZE,
  });
  /** Certificate ids this instance is deciding now. */
  const inFlight = new Set<string>();

  // Runs once per certificate id: metrics and outcome logs live inside, so a replay counts nothing twice.
  const provisionOnce = makeIdempotent(
    async (event: RegisteredEvent): Promise<EventSummary> => {
      const log = logger.createChild({
        persistentKeys: { certificateId: event.certificateId, caCertificateId: event.caCertificateId },
      });
      const started = Date.now();
      try {
        const result = await provision(event, deps.provision);
        log.appendKeys({ deviceId: result.deviceId ?? null });
        record(result, Date.now() - started, log);
        return summarize(result);
      } catch (error) {
        metrics.addMetric("Failed", MetricUnit.Count, 1);
        log.error("provisioning failed", { error: describeError(error) });
        throw error;
      }
    },
    { persistenceStore: deps.persistenceStore, config: idempotency },
  );

  function record(result: ProvisionResult, durationMs: number, log: Logger): void {
    switch (result.outcome) {
      case "provisioned":
        metrics.addMetric("Provisioned", MetricUnit.Count, 1);
        metrics.addMetric("ProvisioningDuration", MetricUnit.Milliseconds, durationMs);
        log.info("certificate provisioned", {
          thingName: result.thingName,
          policyName: result.policyName,
          timings: result.timings,
          ...(result.replaced ? { replaced: result.replaced } : {}),
        });
        for (const warning of result.warnings)
          log.warn("retiring the replaced certificate was incomplete", { warning });
        return;
      case "denied": {
        const single = metrics.singleMetric();
        single.addDimension("reason", result.reason);
        single.addMetric("Denied", MetricUnit.Count, 1);
        log.warn("certificate denied", {
          reason: result.reason,
          certificateStatus: result.certificateStatus,
          detail: result.detail,
        });
        return;
      }
      case "skipped":
        log.info("event skipped", { detail: result.detail });
        return;
    }
  }

  async function processOne(raw: unknown): Promise<EventSummary> {
    let event: RegisteredEvent;
    try {
      event = parseRegisteredEvent(raw);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      // Retrying cannot fix a malformed event: count it, log it, finish.
      metrics.addMetric("Malformed", MetricUnit.Count, 1);
      logger.error("malformed event dropped", { error: error.message });
      return { outcome: "malformed", error: error.message };
    }
    // A duplicate of a certificate being decided (here or by another instance) drains at once: the run
    // under way records the outcome, and if it fails its own message comes back, so nothing is lost.
    if (inFlight.has(event.certificateId)) return inProgress(event.certificateId);
    inFlight.add(event.certificateId);
    try {
      return await provisionOnce(event);
    } catch (error) {
      if (error instanceof IdempotencyAlreadyInProgressError) return inProgress(event.certificateId);
      throw error;
    } finally {
      inFlight.delete(event.certificateId);
    }
  }

  function inProgress(certificateId: string): EventSummary {
    metrics.addMetric("DuplicateInProgress", MetricUnit.Count, 1);
    return { outcome: "in-progress", certificateId };
  }

  const processor = new BatchProcessor(EventType.SQS);
  const handler = async (event: unknown, context: Context): Promise<EventSummary | SQSBatchResponse> => {
    idempotency.registerLambdaContext(context);
    if (isSqsEvent(event)) {
      const processRecord = (record: SQSRecord): Promise<EventSummary> => processOne(record.body);
      return processPartialResponse(event, processRecord, processor, {
        context,
        throwOnFullBatchFailure: false,
      });
    }
    return processOne(event);
  };

  return middy(handler)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true })) as unknown as ProvisionHandler;
}

function summarize(result: ProvisionResult): EventSummary {
  switch (result.outcome) {
    case "provisioned":
      return {
        outcome: result.outcome,
        certificateId: result.certificateId,
        deviceId: result.deviceId,
        policyName: result.policyName,
      };
    case "denied":
      return {
        outcome: result.outcome,
        certificateId: result.certificateId,
        ...(result.deviceId ? { deviceId: result.deviceId } : {}),
        reason: result.reason,
      };
    case "skipped":
      return { outcome: result.outcome, certificateId: result.certificateId };
  }
}
