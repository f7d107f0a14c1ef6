import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { UpdateCertificateCommand } from "@aws-sdk/client-iot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readProvisioningConfig } from "../../handlers/config.ts";
import { makeProvisionHandler, type ProvisionHandler } from "../../handlers/provision.ts";
import { buildProvisioning } from "../../handlers/wiring.ts";
import { localHandlerEnvironment } from "../../local/stack.ts";
import { CertificateFactory, type CertificateSpec, expand } from "../support/certificate-specs.ts";
import { lambdaContext } from "../support/lambda.ts";
import { startTestStack } from "../support/local-stack.ts";
import {
  newLedgerEntries,
  readCases,
  type Snapshot,
  snapshot,
  type TestStack,
  withoutLedgerGrowth,
} from "./corpus.ts";

/*
 * The bad-input corpus, events and certificates: each case goes to the deployed provisioning handler
 * against the local stack, and gets the answer it names; the tables and the IoT registry then differ from
 * before only by that answer (a denied certificate's status and its one ledger entry), nothing else.
 */

interface Expected {
  outcome: "malformed" | "skipped" | "denied";
  reason?: string;
  status?: "INACTIVE" | "REVOKED";
  /** The CA id the ledger entry names (the registry's, whatever the event says). */
  ledgerCa?: string;
}

interface EventCase {
  name: string;
  event?: unknown;
  raw?: string;
  expect: Expected;
}

interface CertificateCase {
  name: string;
  certificate: CertificateSpec;
  record?: Record<string, unknown> & { deviceId: string };
  sendAfterMs?: number;
  expect: Expected | { registration: "refused" };
}

const eventCases = readCases<EventCase>("events.jsonl");
const certificateCases = readCases<CertificateCase>("certificates.jsonl");

let t: TestStack;
let handler: ProvisionHandler;
let certificates: CertificateFactory;

beforeAll(async () => {
  t = await startTestStack();
  const { region, accountId } = t.stack.endpoints;
  const config = readProvisioningConfig(localHandlerEnvironment(region, accountId, t.stack.tables));
  handler = makeProvisionHandler(
    buildProvisioning(config, t.stack.clients, {
      logger: new Logger({ serviceName: "jitr-corpus", logLevel: "SILENT" }),
      metrics: new Metrics({ namespace: "JitrCorpus", serviceName: "jitr-corpus" }),
    }),
  );
  certificates = new CertificateFactory(t.ca);
});
afterAll(async () => {
  await t.close();
});

let serial = 0;
/** Registers a fresh certificate (PENDING_ACTIVATION), then moves it to `status` when given. */
async function registered(status?: "REVOKED" | "INACTIVE" | "ACTIVE"): Promise<string> {
  serial += 1;
  const pem = await certificates.build({ subject: [{ CN: [`corpus-event-${serial}`] }] });
  const { certificateId } = await t.stack.aws.iot.autoRegisterCertificate(pem, t.caId);
  if (status !== undefined) {
    await t.stack.clients.iot.send(new UpdateCertificateCommand({ certificateId, newStatus: status }));
  }
  return certificateId;
}

/** Replaces the case's placeholders with this run's ids. */
function fill(text: string, ids: Record<string, string>): string {
  return text.replace(/\{\{(pending|pendingUpper|revoked|inactive|active|fleetCa)\}\}/g, (_, key: string) => {
    const id = ids[key];
    if (id === undefined) throw new Error(`no id for {{${key}}}`);
    return id;
  });
}

async function idsFor(text: string): Promise<Record<string, string>> {
  const ids: Record<string, string> = { fleetCa: t.caId };
  if (/\{\{pending(Upper)?\}\}/.test(text)) {
    ids.pending = await registered();
    ids.pendingUpper = ids.pending.toUpperCase();
  }
  for (const status of ["revoked", "inactive", "active"] as const) {
    if (text.includes(`{{${status}}}`)) ids[status] = await registered(status.toUpperCase() as "REVOKED");
  }
  return ids;
}

/** Asserts the handler's answer, and that the state moved by exactly that answer. */
function assessAnswer(
  answer: unknown,
  expected: Expected,
  before: Snapshot,
  after: Snapshot,
  certificateId: string | undefined,
) {
  expect(answer).toMatchObject({
    outcome: expected.outcome,
    ...(expected.reason !== undefined ? { reason: expected.reason } : {}),
  });
  const entries = newLedgerEntries(t, before, after);
  const rest = withoutLedgerGrowth(t, before, after);
  if (expected.outcome !== "denied" || certificateId === undefined) {
    expect(entries).toEqual([]);
    expect(rest).toEqual(before);
    return;
  }
  // a denied certificate: its status set, one ledger entry, nothing else
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({
    kind: "denied",
    certificateId,
    reason: expected.reason,
    certificateStatus: expected.status,
    ...(expected.ledgerCa !== undefined
      ? { caCertificateId: fill(expected.ledgerCa, { fleetCa: t.caId }) }
      : {}),
  });
  const certificate = before.certificates[certificateId];
  expect(certificate?.status).toBe("PENDING_ACTIVATION");
  expect(rest).toEqual({
    ...before,
    certificates: { ...before.certificates, [certificateId]: { ...certificate, status: expected.status } },
  });
}

describe("registered events", () => {
  it.each(eventCases.map((c) => [`${c.line}: ${c.name}`, c] as const))("%s", async (_, c) => {
    // Prepare
    const text = c.raw ?? JSON.stringify(c.event ?? null);
    const ids = await idsFor(text);
    const event = c.raw !== undefined ? fill(c.raw, ids) : expand(JSON.parse(fill(text, ids)));
    const before = await snapshot(t);

    // Act
    const answer = await handler(event, lambdaContext());

    // Assess
    assessAnswer(
      answer,
      c.expect,
      before,
      await snapshot(t),
      c.expect.outcome === "denied" ? ids.pending : undefined,
    );
  });

  it("answers a batch of malformed events from the queue without a retry", async () => {
    const malformed = eventCases.filter(
      (c) => c.expect.outcome === "malformed" && !/\{\{/.test(c.raw ?? JSON.stringify(c.event ?? null)),
    );
    const before = await snapshot(t);
    const answer = await handler(
      {
        Records: malformed.map((c, i) => ({
          messageId: `m-${i}`,
          receiptHandle: `m-${i}`,
          body: c.raw ?? JSON.stringify(expand(c.event ?? null)),
          attributes: {},
          messageAttributes: {},
          md5OfBody: "",
          eventSource: "aws:sqs",
          eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:jitr-events",
          awsRegion: "us-east-1",
        })),
      },
      lambdaContext(),
    );
    expect(malformed.length).toBeGreaterThan(8);
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(await snapshot(t)).toEqual(before);
  });
});

describe("device certificates", () => {
  it.each(certificateCases.map((c) => [`${c.line}: ${c.name}`, c] as const))("%s", async (_, c) => {
    // Prepare
    if (c.record !== undefined) await t.allow(c.record.deviceId, expand(c.record) as Record<string, never>);
    const pem = await certificates.build(c.certificate);
    const before = await snapshot(t);
    const registration = t.stack.aws.iot.autoRegisterCertificate(pem, t.caId);
    if ("registration" in c.expect) {
      await expect(registration).rejects.toMatchObject({ code: "CertificateValidationException" });
      expect(await snapshot(t)).toEqual(before);
      return;
    }
    const { certificateId } = await registration;
    const registered = await snapshot(t);
    expect(registered.certificates[certificateId]?.status).toBe("PENDING_ACTIVATION");
    if (c.sendAfterMs !== undefined) await new Promise((resolve) => setTimeout(resolve, c.sendAfterMs));

    // Act
    const answer = await handler(
      {
        certificateId,
        caCertificateId: t.caId,
        timestamp: Date.now(),
        certificateStatus: "PENDING_ACTIVATION",
        awsAccountId: t.stack.endpoints.accountId,
        certificateRegistrationTimestamp: String(Date.now()),
      },
      lambdaContext(),
    );

    // Assess
    assessAnswer(answer, c.expect, registered, await snapshot(t), certificateId);
  });
});
